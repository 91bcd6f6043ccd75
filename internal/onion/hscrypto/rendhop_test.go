package hscrypto

import (
	"bytes"
	"testing"
)

func TestRendHopBothWays(t *testing.T) {
	keys := ExpandRendKeys(bytes.Repeat([]byte{5}, 32))
	cl, sv := NewRendHop(keys), NewRendHopServiceSide(keys)
	for i := 0; i < 5; i++ {
		// client -> service
		var p [509]byte
		p[0] = 2
		copy(p[11:], "hello")
		orig := p
		cl.SetForwardDigest(&p)
		cl.EncryptForward(&p)
		if bytes.Equal(p[11:16], orig[11:16]) {
			t.Fatal("not encrypted")
		}
		sv.DecryptBackward(&p)
		if ok, _ := sv.CheckBackward(&p); !ok || !bytes.Equal(p[11:16], orig[11:16]) {
			t.Fatalf("service did not recognize cell %d", i)
		}
		// service -> client
		var q [509]byte
		copy(q[11:], "world")
		sv.ServiceEncryptBackward(&q)
		cl.DecryptBackward(&q)
		if ok, _ := cl.CheckBackward(&q); !ok || string(q[11:16]) != "world" {
			t.Fatalf("client did not recognize cell %d", i)
		}
	}
	// A garbage cell is not recognized and does not disturb the state.
	var g [509]byte
	g[5] = 1
	if ok, _ := cl.CheckBackward(&g); ok {
		t.Fatal("garbage recognized")
	}
	var q [509]byte
	sv.ServiceEncryptBackward(&q)
	cl.DecryptBackward(&q)
	if ok, _ := cl.CheckBackward(&q); !ok {
		t.Fatal("state disturbed by failed check")
	}
}
