package hsdesc

import (
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/realdocs"
)

func h32(t testing.TB, s string) (a [32]byte) {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatal("bad hex")
	}
	copy(a[:], b)
	return a
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testdata/hsdesc1.txt: a descriptor made by C tor (from arti's tests),
// blinded key and subcredential as published there.
func TestRealDescriptor(t *testing.T) {
	doc := readTestdata(t, "hsdesc1.txt")
	blinded := h32(t, "43cc0d62fc6252f578705ca645a46109e265290343b1137e90189744b20b3f2d")
	sub := h32(t, "78210A0D2C72BB7A0CAF606BCD938B9A3696894FDDDBC3B87D424753A7E3DF37")
	now := time.Date(2023, 1, 23, 15, 0, 0, 0, time.UTC)
	d, err := Decode(doc, blinded, sub, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Lifetime != 180*time.Minute || d.RevisionCounter != 19655750 {
		t.Errorf("outer %v %d", d.Lifetime, d.RevisionCounter)
	}
	if !d.SigningCert.Expires.Equal(time.Date(2023, 1, 26, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("cert expiry %v", d.SigningCert.Expires)
	}
	if len(d.IntroPoints) != 3 || d.SingleOnion || len(d.IntroAuthRequired) != 0 {
		t.Fatalf("inner %+v", d.Inner)
	}
	if d.IntroPoints[0].OnionKey != h32(t, "553BF9F9E1979D6F5D5D7D20BB3FE7272E32E22B6E86E35C76A7CA8A377E402F") {
		t.Errorf("ipt0 onion key %x", d.IntroPoints[0].OnionKey)
	}
	for i, ip := range d.IntroPoints {
		if len(ip.LinkSpecs) < 2 {
			t.Errorf("ipt %d: %d link specs", i, len(ip.LinkSpecs))
		}
	}
	// Wrong blinded key, expired, wrong subcredential.
	if _, err := Decode(doc, [32]byte{12}, sub, nil, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("wrong blinded key: %v", err)
	}
	if _, err := Decode(doc, blinded, sub, nil, now.Add(30*24*time.Hour)); !errors.Is(err, ErrCertExpired) {
		t.Errorf("expired: %v", err)
	}
	if _, err := Decode(doc, blinded, [32]byte{1}, nil, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("wrong subcred: %v", err)
	}
	// Tampering with any byte before the signature breaks it.
	bad := append([]byte(nil), doc...)
	bad[len("hs-descriptor 3\ndescriptor-lifetime 1")] = '9'
	if _, err := Decode(bad, blinded, sub, nil, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("tampered: %v", err)
	}
}

// testdata/hsdesc2.txt: C tor descriptor with client authorization (arti
// test data): paozpdhgz2okvc6kgbxvh2bnfsmt4xergrtcl4obkhopyvwxkpjzvoad.onion.
func TestRealDescriptorClientAuth(t *testing.T) {
	doc := readTestdata(t, "hsdesc2.txt")
	addr, err := hscrypto.ParseAddress("paozpdhgz2okvc6kgbxvh2bnfsmt4xergrtcl4obkhopyvwxkpjzvoad.onion")
	if err != nil {
		t.Fatal(err)
	}
	blinded, err := hscrypto.BlindPublicKey(addr.PubKey, 19397, 1440)
	if err != nil {
		t.Fatal(err)
	}
	sub := hscrypto.Subcredential(addr.PubKey, blinded)
	now := time.Date(2023, 2, 9, 12, 0, 0, 0, time.UTC)
	if _, err := Decode(doc, blinded, sub, nil, now); !errors.Is(err, ErrClientAuthRequired) {
		t.Fatalf("no key: %v", err)
	}
	wrong := [32]byte{1, 2, 3}
	if _, err := Decode(doc, blinded, sub, &wrong, now); !errors.Is(err, ErrClientAuthBad) {
		t.Fatalf("wrong key: %v", err)
	}
	sk := h32(t, "90F2D60F917F2423F0989CE9979639435A5B01CF7AB3E0A1B900BEB892BAE443")
	d, err := Decode(doc, blinded, sub, &sk, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.IntroPoints) != 3 {
		t.Fatalf("%d intro points", len(d.IntroPoints))
	}
}

// signerOf returns the key that signed the first certificate object
// labelled ED25519 CERT after keyword kw in doc.
func signerOf(t *testing.T, kind, doc, kw string) [32]byte {
	t.Helper()
	items, err := tokenize(kind, doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Keyword == kw && hasObject(&it, "ED25519 CERT") {
			c, err := ParseCert(it.Object.Data)
			if err != nil || !c.HasSigningKey {
				t.Fatalf("%s cert: %v", kw, err)
			}
			return c.SigningKey
		}
	}
	t.Fatalf("no %s certificate", kw)
	return [32]byte{}
}

// Real descriptors from ../shared/realdocs/data: stem's v3 descriptor
// (decrypted with the blinded key its signing-key certificate names) and
// the decrypted inner layers of stem and arti (one with pow-params).
func TestRealDocuments(t *testing.T) {
	doc := realdocs.Read(t, "hsdesc/stem-hidden_service_v3.txt")
	addr, err := hscrypto.ParseAddress("sltib6sxkuxh2scmtuvd5w2g7pahnzkovefxpo4e4ptnkzl5kkq5h2ad.onion")
	if err != nil {
		t.Fatal(err)
	}
	blinded := signerOf(t, "outer", doc, "descriptor-signing-key-cert")
	d, err := Decode([]byte(doc), blinded, hscrypto.Subcredential(addr.PubKey, blinded), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.IntroPoints) != 4 {
		t.Errorf("stem descriptor: %d introduction points, want 4", len(d.IntroPoints))
	}
	for name, want := range map[string]int{
		"hsdesc/stem-hidden_service_v3_inner_layer.txt": 4,
		"hsdesc/arti-hsdesc-inner.txt":                  3,
		"hsdesc/arti-hsdesc-inner-pow-v1.txt":           3,
	} {
		pt := realdocs.Read(t, name)
		in, err := ParseInner([]byte(pt), signerOf(t, name, pt, "auth-key"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(in.IntroPoints) != want || len(in.Create2Formats) == 0 {
			t.Errorf("%s: %d introduction points, create2-formats %v", name, len(in.IntroPoints), in.Create2Formats)
		}
	}
}
