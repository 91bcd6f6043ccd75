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
	"github.com/gotor/gotor/internal/realdocs"
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

// realKeys are the C tor descriptors of testdata with the blinded key
// and subcredential they decrypt with (see desc_test.go).
func realKeys(tb testing.TB) (docs [][]byte, blinded, subcred [][32]byte) {
	docs = append(docs, readTestdata(tb, "hsdesc1.txt"))
	blinded = append(blinded, h32(tb, "43cc0d62fc6252f578705ca645a46109e265290343b1137e90189744b20b3f2d"))
	subcred = append(subcred, h32(tb, "78210A0D2C72BB7A0CAF606BCD938B9A3696894FDDDBC3B87D424753A7E3DF37"))
	addr, err := hscrypto.ParseAddress("paozpdhgz2okvc6kgbxvh2bnfsmt4xergrtcl4obkhopyvwxkpjzvoad.onion")
	if err != nil {
		tb.Fatal(err)
	}
	b2, err := hscrypto.BlindPublicKey(addr.PubKey, 19397, 1440)
	if err != nil {
		tb.Fatal(err)
	}
	docs = append(docs, readTestdata(tb, "hsdesc2.txt"))
	blinded = append(blinded, b2)
	subcred = append(subcred, hscrypto.Subcredential(addr.PubKey, b2))
	return docs, blinded, subcred
}

// FuzzDecode feeds whole descriptors, seeded with C tor's (testdata)
// and gotor's, to Decode under each seed's keys: mutations of the outer
// document reach the signature check.
func FuzzDecode(f *testing.F) {
	p, blinded, sub := testParams(f, nil)
	p.NoPadding = true
	doc, _ := Build(p)
	docs, bl, sc := realKeys(f)
	bl, sc = append(bl, blinded), append(sc, sub)
	for _, d := range append(docs, doc) {
		f.Add(d)
	}
	f.Add([]byte("hs-descriptor 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := range bl {
			if d, err := Decode(b, bl[i], sc[i], nil, time.Time{}); err == nil && d.SigningCert == nil {
				t.Fatal("decoded descriptor without signing certificate")
			}
		}
	})
}

// FuzzLayers fuzzes the decrypted layers, which a MAC protects in a
// whole descriptor: seeded with the plaintext first and inner layers of
// the C tor descriptors and with the real inner layers of stem and arti.
// A parsed inner layer builds into a descriptor that decodes to the
// same introduction points (decode, encode, decode).
func FuzzLayers(f *testing.F) {
	docs, bl, sc := realKeys(f)
	var signers [][32]byte
	for i, doc := range docs {
		o, err := ParseOuter(doc, bl[i], time.Time{})
		if err != nil {
			f.Fatal(err)
		}
		pt, err := hscrypto.DecryptDescLayer(o.Superencrypted, o.BlindedKey[:], sc[i], o.RevisionCounter, hscrypto.SuperencryptedConstant)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pt)
		if fl, err := o.DecryptFirstLayer(sc[i]); err == nil {
			if in, err := o.DecryptSecondLayer(fl, sc[i], nil); err == nil {
				f.Add(in)
			}
		}
		signers = append(signers, o.SigningKey)
	}
	for _, name := range []string{"hsdesc/stem-hidden_service_v3_inner_layer.txt", "hsdesc/arti-hsdesc-inner.txt", "hsdesc/arti-hsdesc-inner-pow-v1.txt"} {
		pt := realdocs.Read(f, name)
		f.Add([]byte(pt))
		items, err := tokenize(name, pt)
		if err != nil {
			f.Fatal(err)
		}
		for _, it := range items {
			if it.Keyword == "auth-key" && hasObject(&it, "ED25519 CERT") {
				if c, err := ParseCert(it.Object.Data); err == nil {
					signers = append(signers, c.SigningKey)
				}
				break
			}
		}
	}
	p, _, _ := testParams(f, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		parseFirstLayer(b)
		ParseCert(b)
		for _, sk := range signers {
			in, err := ParseInner(b, sk)
			if err != nil || len(in.IntroPoints) == 0 {
				continue
			}
			q := p
			q.IntroPoints = nil
			for _, ip := range in.IntroPoints {
				q.IntroPoints = append(q.IntroPoints, BuildIntroPoint{LinkSpecs: ip.LinkSpecs, OnionKey: ip.OnionKey, AuthKey: ip.AuthKey, EncKey: ip.EncKey})
			}
			doc, err := Build(q)
			if err != nil {
				t.Fatalf("Build of a parsed inner layer: %v", err)
			}
			blinded, _ := hscrypto.BlindPublicKey(q.Identity.Public, q.PeriodNum, q.PeriodLength)
			d, err := Decode(doc, blinded, hscrypto.Subcredential(q.Identity.Public, blinded), nil, time.Time{})
			if err != nil || len(d.IntroPoints) != len(in.IntroPoints) {
				t.Fatalf("round trip: %v", err)
			}
			for i, ip := range d.IntroPoints {
				w := in.IntroPoints[i]
				if ip.OnionKey != w.OnionKey || ip.AuthKey != w.AuthKey || ip.EncKey != w.EncKey || len(ip.LinkSpecs) != len(w.LinkSpecs) {
					t.Fatalf("introduction point %d changed in the round trip", i)
				}
			}
		}
	})
}
