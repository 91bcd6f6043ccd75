package torcrypto

import (
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/curve25519"
)

func basepoint() []byte { return curve25519.Basepoint }

func mustX(k, p []byte) []byte {
	o, err := curve25519.X25519(k, p)
	if err != nil {
		panic(err)
	}
	return o
}

// fakeServer is a test-only ntor server (tor-spec §5.1.4) used to
// produce valid replies for benchmarks and round-trip tests.
func fakeServer(tb testing.TB, bsk [32]byte, bpub [32]byte, id [20]byte, msg []byte) []byte {
	var ysk [32]byte
	rand.Read(ysk[:])
	y := mustX(ysk[:], basepoint())
	x := msg[52:84]
	si := append([]byte(nil), mustX(ysk[:], x)...)
	si = append(si, mustX(bsk[:], x)...)
	si = append(si, id[:]...)
	si = append(si, bpub[:]...)
	si = append(si, x...)
	si = append(si, y...)
	si = append(si, ntorProtoID...)
	verify := hmacSHA256(ntorTVerify, si)
	ai := append([]byte(nil), verify...)
	ai = append(ai, id[:]...)
	ai = append(ai, bpub[:]...)
	ai = append(ai, y...)
	ai = append(ai, x...)
	ai = append(ai, ntorProtoID...)
	ai = append(ai, "Server"...)
	return append(y, hmacSHA256(ntorTMac, ai)...)
}

func TestNtorRoundTrip(t *testing.T) {
	var bsk [32]byte
	rand.Read(bsk[:])
	bpub := [32]byte(mustX(bsk[:], basepoint()))
	c, err := NewNtorClient(nil, [20]byte{3}, bpub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(fakeServer(t, bsk, bpub, [20]byte{3}, c.ClientMessage())); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(fakeServer(t, bsk, bpub, [20]byte{4}, c.ClientMessage())); err == nil {
		t.Fatal("wrong id accepted")
	}
}
