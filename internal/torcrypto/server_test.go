package torcrypto

import (
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/curve25519"
)

func TestNtorServerAndRelayHop(t *testing.T) {
	var bsk [32]byte
	rand.Read(bsk[:])
	bpub, _ := curve25519.X25519(bsk[:], curve25519.Basepoint)
	id := [20]byte{9}
	c, _ := NewNtorClient(nil, id, [32]byte(bpub))
	reply, sks, err := NtorServerHandshake(nil, bsk, id, c.ClientMessage())
	if err != nil {
		t.Fatal(err)
	}
	cks, err := c.Complete(reply)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := NewHop(cks)
	rh, _ := NewRelayHop(sks)
	l := Layers{ch}
	for i := 0; i < 10; i++ {
		var p [payloadLen]byte
		p[20] = byte(i)
		cd := l.Encrypt(&p, 0)
		ok, rd := rh.Receive(&p)
		if !ok || rd != cd || p[20] != byte(i) {
			t.Fatalf("forward %d", i)
		}
		var q [payloadLen]byte
		q[30] = byte(i)
		od := rh.Originate(&q)
		hop, d, err := l.Decrypt(&q)
		if err != nil || hop != 0 || d != od || q[30] != byte(i) {
			t.Fatalf("backward %d: %v", i, err)
		}
	}
	if _, _, err := NtorServerHandshake(nil, bsk, [20]byte{1}, c.ClientMessage()); err == nil {
		t.Fatal("wrong id accepted")
	}
}
