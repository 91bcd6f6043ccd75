package torcrypto

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"testing"
	"time"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Test vector from tor's ntor reference implementation (as published in
// arti's tor-proto tests).
func TestNtorVector(t *testing.T) {
	bPub := [32]byte(unhex("ccbc8541904d18af08753eae967874749e6149f873de937f57f8fd903a21c471"))
	xSk := [32]byte(unhex("706f6461792069207075742e2e2e2e2e2e2e2e4a454c4c59206f6e2074686973"))
	id := [20]byte(unhex("69546f6c64596f7541626f75745374616972732e"))
	clientHS := unhex("69546f6c64596f7541626f75745374616972732eccbc8541904d18af08753eae967874749e6149f873de937f57f8fd903a21c471e65dfdbef8b2635837fe2cebc086a8096eae3213e6830dc407516083d412b078")
	serverHS := unhex("390480a14362761d6aec1fea840f6e9e928fb2adb7b25c670be1045e35133a371cbdf68b89923e1f85e8e18ee6e805ea333fe4849c790ffd2670bd80fec95cc8")
	keys := unhex("0c62dee7f48893370d0ef896758d35729867beef1a5121df80e00f79ed349af39b51cae125719182f19d932a667dae1afbf2e336e6910e7822223e763afad0a13342157969dc6b79")

	c, err := newNtorClientWithKey(xSk, id, bPub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.ClientMessage(), clientHS) {
		t.Fatalf("client handshake\n got %x\nwant %x", c.ClientMessage(), clientHS)
	}
	ks, err := c.Complete(serverHS)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(keys))
	io.ReadFull(ks, got)
	if !bytes.Equal(got, keys) {
		t.Fatalf("keys\n got %x\nwant %x", got, keys)
	}
	bad := append([]byte(nil), serverHS...)
	bad[40] ^= 1
	c2, _ := newNtorClientWithKey(xSk, id, bPub)
	if _, err := c2.Complete(bad); err != ErrNtorAuth {
		t.Fatalf("bad AUTH: %v", err)
	}
	if _, err := c2.Complete(make([]byte, 64)); err != ErrNtorAuth {
		t.Fatalf("zero Y: %v", err)
	}
	if _, err := c2.Complete(serverHS[:10]); err == nil {
		t.Fatal("short reply accepted")
	}
}

func TestKDFTor(t *testing.T) {
	// tor-spec §5.2.1: K = H(K0|00) | H(K0|01) ...
	k0 := []byte("abc")
	h0 := sha1.Sum([]byte("abc\x00"))
	h1 := sha1.Sum([]byte("abc\x01"))
	want := append(h0[:], h1[:]...)[:30]
	if got := KDFTor(k0, 30); !bytes.Equal(got, want) {
		t.Fatalf("%x", got)
	}
}

// relaySide mirrors one relay's view of a hop, for tests and benchmarks.
type relaySide struct {
	fwd, bwd             cipher.Stream
	fwdDigest, bwdDigest hash.Hash
}

func newRelaySide(k []byte) *relaySide {
	r := &relaySide{fwdDigest: sha1.New(), bwdDigest: sha1.New()}
	r.fwdDigest.Write(k[:20])
	r.bwdDigest.Write(k[20:40])
	var iv [16]byte
	a, _ := aes.NewCipher(k[40:56])
	b, _ := aes.NewCipher(k[56:72])
	r.fwd = cipher.NewCTR(a, iv[:])
	r.bwd = cipher.NewCTR(b, iv[:])
	return r
}

// originate builds a backward cell at this relay.
func (r *relaySide) originate(p *[payloadLen]byte) {
	clear(p[digestOff : digestOff+4])
	r.bwdDigest.Write(p[:])
	d := r.bwdDigest.Sum(nil)
	copy(p[digestOff:], d[:4])
	r.bwd.XORKeyStream(p[:], p[:])
}

// recv decrypts a forward cell and reports whether it is for this relay.
func (r *relaySide) recv(p *[payloadLen]byte) bool {
	r.fwd.XORKeyStream(p[:], p[:])
	if p[1] != 0 || p[2] != 0 {
		return false
	}
	var got [4]byte
	copy(got[:], p[digestOff:])
	clear(p[digestOff : digestOff+4])
	r.fwdDigest.Write(p[:])
	d := r.fwdDigest.Sum(nil)
	copy(p[digestOff:], got[:])
	return bytes.Equal(d[:4], got[:])
}

func (r *relaySide) relayBack(p *[payloadLen]byte) { r.bwd.XORKeyStream(p[:], p[:]) }

func threeHops(t testing.TB) (Layers, []*relaySide) {
	var l Layers
	var rs []*relaySide
	for i := 0; i < 3; i++ {
		k := make([]byte, RelayKeyMaterialLen)
		rand.Read(k)
		h, err := NewHop(bytes.NewReader(k))
		if err != nil {
			t.Fatal(err)
		}
		l = append(l, h)
		rs = append(rs, newRelaySide(k))
	}
	return l, rs
}

func TestRelayCryptoThreeHops(t *testing.T) {
	l, rs := threeHops(t)
	for n := 0; n < 50; n++ {
		target := n % 3
		var p [payloadLen]byte
		p[0] = 2
		copy(p[11:], []byte("hello"))
		p[10] = 5
		l.Encrypt(&p, target)
		for i := 0; i <= target; i++ {
			ok := rs[i].recv(&p)
			if ok != (i == target) {
				t.Fatalf("cell %d: hop %d recognized=%v", n, i, ok)
			}
		}
		if string(p[11:16]) != "hello" {
			t.Fatal("forward plaintext mismatch")
		}
		// backward from target
		var q [payloadLen]byte
		q[0] = 2
		copy(q[11:], []byte("world"))
		rs[target].originate(&q)
		for i := target - 1; i >= 0; i-- {
			rs[i].relayBack(&q)
		}
		hop, _, err := l.Decrypt(&q)
		if err != nil || hop != target || string(q[11:16]) != "world" {
			t.Fatalf("cell %d: decrypt hop=%d err=%v", n, hop, err)
		}
	}
	// A corrupted cell is not recognized and does not break later cells.
	var q [payloadLen]byte
	rs[2].originate(&q)
	rs[1].relayBack(&q)
	rs[0].relayBack(&q)
	q[100] ^= 1
	if _, _, err := l.Decrypt(&q); err != ErrUnrecognized {
		t.Fatal(err)
	}
}

func TestEd25519Cert(t *testing.T) {
	idPub, idPriv, _ := ed25519.GenerateKey(nil)
	sigPub, _, _ := ed25519.GenerateKey(nil)
	mk := func(exp time.Time, ext bool, critical uint8) []byte {
		b := []byte{1, CertTypeIdentitySigning}
		b = binary.BigEndian.AppendUint32(b, uint32(exp.Unix()/3600))
		b = append(b, CertKeyEd25519)
		b = append(b, sigPub...)
		n := byte(0)
		if ext {
			n++
		}
		if critical != 0 {
			n++
		}
		b = append(b, n)
		if ext {
			b = append(b, 0, 32, ExtSignedWithEd25519Key, 0)
			b = append(b, idPub...)
		}
		if critical != 0 {
			b = append(b, 0, 1, critical, ExtFlagAffectsValidation, 0)
		}
		return append(b, ed25519.Sign(idPriv, b)...)
	}
	now := time.Now()
	c, err := ParseEd25519Cert(mk(now.Add(48*time.Hour), true, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.SigningKey, idPub) || !bytes.Equal(c.CertifiedKey[:], sigPub) {
		t.Fatal("keys")
	}
	if err := c.Verify(nil, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(nil, now.Add(72*time.Hour)); err == nil {
		t.Fatal("expired accepted")
	}
	if err := c.Verify(sigPub, now); err == nil {
		t.Fatal("wrong signer accepted")
	}
	raw := mk(now.Add(48*time.Hour), true, 0)
	raw[10] ^= 1
	if c, err := ParseEd25519Cert(raw); err != nil || c.Verify(nil, now) == nil {
		t.Fatal("tampered accepted")
	}
	if _, err := ParseEd25519Cert(mk(now.Add(time.Hour), false, 0x77)); err == nil {
		t.Fatal("unknown critical extension accepted")
	}
	if _, err := ParseEd25519Cert(raw[:50]); err == nil {
		t.Fatal("truncated accepted")
	}
}

func TestRSACrossCert(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ed, _, _ := ed25519.GenerateKey(nil)
	b := append([]byte(nil), ed...)
	b = binary.BigEndian.AppendUint32(b, uint32(time.Now().Add(24*time.Hour).Unix()/3600))
	h := sha256.Sum256(append([]byte(crossCertPrefix), b...))
	sig, err := rsa.SignPKCS1v15(nil, k, crypto.Hash(0), h[:])
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, byte(len(sig)))
	b = append(b, sig...)
	c, err := ParseRSACrossCert(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(&k.PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	k2, _ := rsa.GenerateKey(rand.Reader, 1024)
	if err := c.Verify(&k2.PublicKey, time.Now()); err == nil {
		t.Fatal("wrong key accepted")
	}
	if _, err := ParseRSACrossCert(b[:40]); err == nil {
		t.Fatal("truncated accepted")
	}
}

// BenchmarkClientRelayCrypto3Hops measures only the client's work per
// cell pair (one outbound encrypt + one inbound decrypt through 3 hops).
func BenchmarkClientRelayCrypto3Hops(b *testing.B) {
	l, rs := threeHops(b)
	// Precompute backward cells outside the timer in batches.
	const batch = 1024
	cells := make([][payloadLen]byte, batch)
	b.SetBytes(2 * payloadLen)
	b.ReportAllocs()
	var p [payloadLen]byte
	i := batch
	for b.Loop() {
		if i == batch {
			b.StopTimer()
			for j := range cells {
				clear(cells[j][:])
				rs[2].originate(&cells[j])
				rs[1].relayBack(&cells[j])
				rs[0].relayBack(&cells[j])
			}
			i = 0
			b.StartTimer()
		}
		l.Encrypt(&p, 2)
		if _, _, err := l.Decrypt(&cells[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkNtorClientHandshake measures the client's side of ntor:
// creating the onionskin and completing with the server's reply (three
// X25519 operations, HMACs, HKDF); the server's work is excluded.
func BenchmarkNtorClientHandshake(b *testing.B) {
	var bsk [32]byte
	rand.Read(bsk[:])
	bpub := mustX(bsk[:], basepoint())
	id := [20]byte{1}
	b.ReportAllocs()
	for b.Loop() {
		c, err := NewNtorClient(nil, id, [32]byte(bpub))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer() // the server's half is not the client's cost
		reply := fakeServer(b, bsk, [32]byte(bpub), id, c.ClientMessage())
		b.StartTimer()
		if _, err := c.Complete(reply); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAESCTR509(b *testing.B) {
	a, _ := aes.NewCipher(make([]byte, 16))
	s := cipher.NewCTR(a, make([]byte, 16))
	var p [payloadLen]byte
	b.SetBytes(payloadLen)
	for b.Loop() {
		s.XORKeyStream(p[:], p[:])
	}
}

func BenchmarkSHA1509(b *testing.B) {
	h := sha1.New()
	var p [payloadLen]byte
	var sum [20]byte
	b.SetBytes(payloadLen)
	for b.Loop() {
		h.Write(p[:])
		h.Sum(sum[:0])
	}
}

func BenchmarkAESCTRSHA1Raw509(b *testing.B) {
	a, _ := aes.NewCipher(make([]byte, 16))
	s := cipher.NewCTR(a, make([]byte, 16))
	h := sha1.New()
	var p [payloadLen]byte
	var sum [20]byte
	b.SetBytes(payloadLen)
	for b.Loop() {
		s.XORKeyStream(p[:], p[:])
		h.Write(p[:])
		h.Sum(sum[:0])
	}
}
