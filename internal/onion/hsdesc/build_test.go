package hsdesc

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"golang.org/x/crypto/curve25519"
)

type detRand struct{ r *rand.ChaCha8 }

func (d detRand) Read(b []byte) (int, error) { return d.r.Read(b) }

func newRand(seed byte) detRand { return detRand{rand.NewChaCha8([32]byte{seed})} }

func testParams(t testing.TB, clients [][32]byte) (BuildParams, [32]byte, [32]byte) {
	rnd := newRand(1)
	seed := make([]byte, 32)
	rnd.Read(seed)
	id, _ := hscrypto.ExpandSeed(seed)
	_, sk, _ := ed25519.GenerateKey(rnd)
	var ips []BuildIntroPoint
	for i := 0; i < 3; i++ {
		ip := BuildIntroPoint{LinkSpecs: []hscell.LinkSpec{{Type: 0, Data: []byte{127, 0, 0, 1, 0x23, byte(i)}}, {Type: 2, Data: bytes.Repeat([]byte{byte(i)}, 20)}, {Type: 77, Data: []byte("x")}}}
		rnd.Read(ip.OnionKey[:])
		rnd.Read(ip.AuthKey[:])
		rnd.Read(ip.EncKey[:])
		ips = append(ips, ip)
	}
	p := BuildParams{Identity: id, PeriodNum: 100, PeriodLength: 1440, SigningKey: sk, RevisionCounter: 42,
		CertExpires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), IntroPoints: ips, AuthorizedClients: clients, Rand: rnd}
	blinded, _ := hscrypto.BlindPublicKey(id.Public, 100, 1440)
	return p, blinded, hscrypto.Subcredential(id.Public, blinded)
}

func TestBuildRoundTrip(t *testing.T) {
	p, blinded, sub := testParams(t, nil)
	doc, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	d, err := Decode(doc, blinded, sub, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.IntroPoints) != 3 || d.RevisionCounter != 42 || len(d.First.AuthClients) != 16 {
		t.Fatalf("%+v", d)
	}
	for i, ip := range d.IntroPoints {
		w := p.IntroPoints[i]
		if ip.AuthKey != w.AuthKey || ip.EncKey != w.EncKey || ip.OnionKey != w.OnionKey || len(ip.LinkSpecs) != 3 || ip.LinkSpecs[2].Type != 77 {
			t.Errorf("ip %d mismatch", i)
		}
	}
	// A client key when none is needed still works.
	k := [32]byte{9}
	if _, err := Decode(doc, blinded, sub, &k, now); err != nil {
		t.Fatal(err)
	}
}

func TestBuildClientAuth(t *testing.T) {
	var sk1, sk2 [32]byte
	sk1[5], sk2[5] = 1, 2
	pk1, _ := curve25519.X25519(sk1[:], curve25519.Basepoint)
	p, blinded, sub := testParams(t, [][32]byte{[32]byte(pk1)})
	doc, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := Decode(doc, blinded, sub, &sk1, now); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(doc, blinded, sub, nil, now); !errors.Is(err, ErrClientAuthRequired) {
		t.Fatal(err)
	}
	if _, err := Decode(doc, blinded, sub, &sk2, now); !errors.Is(err, ErrClientAuthBad) {
		t.Fatal(err)
	}
}

func TestParseNeverPanics(t *testing.T) {
	p, blinded, sub := testParams(t, nil)
	p.NoPadding = true
	doc, _ := Build(p)
	for i := 0; i < len(doc); i += 7 {
		for _, c := range []byte{0, '\n', '-', 'A', ' '} {
			m := append([]byte(nil), doc...)
			m[i] = c
			Decode(m, blinded, sub, nil, time.Time{})
		}
		Decode(doc[:i], blinded, sub, nil, time.Time{})
	}
}

func FuzzDecode(f *testing.F) {
	p, blinded, sub := testParams(f, nil)
	p.NoPadding = true
	doc, _ := Build(p)
	f.Add(doc)
	f.Add([]byte("hs-descriptor 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(b, blinded, sub, nil, time.Time{})
		ParseInner(b, blinded)
		parseFirstLayer(b)
		ParseCert(b)
	})
}
