package circuit_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/torcrypto"
)

func TestHandshakeNonce(t *testing.T) {
	f, c := newCirc(t)
	kh, ok := c.HandshakeNonce()
	if !ok || kh != f.KH() || kh == ([20]byte{}) {
		t.Fatalf("nonce %x (%v), relay derived %x", kh, ok, f.KH())
	}
}

// virtualCirc is a circuit with a virtual hop whose other end (the
// "client" of an onion service) is vs.
func virtualCirc(t *testing.T) (*circuitFixture, *circuit.Circuit) {
	f, c := newCirc(t)
	keys := bytes.Repeat([]byte{9}, torcrypto.RelayKeyMaterialLen)
	vc, _ := torcrypto.NewHop(bytes.NewReader(keys))
	vs, _ := torcrypto.NewRelayHop(bytes.NewReader(keys))
	if err := c.ExtendVirtual(vc); err != nil {
		t.Fatal(err)
	}
	return &circuitFixture{f: f, vs: vs}, c
}

type circuitFixture struct {
	f interface {
		SendFromLaterHop(*[cell.PayloadLen]byte) error
	}
	vs *torcrypto.RelayHop
}

// fromVirtual sends msg as the far end of the virtual hop.
func (x *circuitFixture) fromVirtual(t *testing.T, msg cell.RelayMsg) {
	t.Helper()
	var p [cell.PayloadLen]byte
	if err := cell.EncodeRelay(&p, msg); err != nil {
		t.Fatal(err)
	}
	x.vs.Originate(&p)
	if err := x.f.SendFromLaterHop(&p); err != nil {
		t.Fatal(err)
	}
}

type recorder struct{ got chan cell.RelayMsg }

func (r *recorder) HandleRelay(m cell.RelayMsg) error {
	m.Data = append([]byte(nil), m.Data...)
	r.got <- m
	return nil
}
func (r *recorder) CircuitClosed(error) {}

// BEGIN through the virtual hop reaches AcceptStreams' function, which
// attaches the stream under the client's ID; later cells for it go there.
func TestAcceptStreams(t *testing.T) {
	x, c := virtualCirc(t)
	begins := make(chan cell.RelayMsg, 4)
	rec := &recorder{got: make(chan cell.RelayMsg, 4)}
	c.AcceptStreams(func(m cell.RelayMsg) error {
		m.Data = append([]byte(nil), m.Data...)
		begins <- m
		return c.AttachStreamID(m.StreamID, rec)
	})
	body, _ := (&cell.Begin{Port: 80}).Encode()
	x.fromVirtual(t, cell.RelayMsg{Command: cell.RELAY_BEGIN, StreamID: 77, Data: body})
	select {
	case m := <-begins:
		if b, err := cell.DecodeBegin(m.Data); m.StreamID != 77 || err != nil || b.Port != 80 {
			t.Fatalf("%+v %v", m, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("BEGIN not delivered")
	}
	x.fromVirtual(t, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 77, Data: []byte("hello")})
	select {
	case m := <-rec.got:
		if string(m.Data) != "hello" {
			t.Fatalf("%q", m.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("DATA not delivered to the accepted stream")
	}
	if err := c.AttachStreamID(77, rec); !errors.Is(err, circuit.ErrStreamIDInUse) {
		t.Fatalf("second attach: %v", err)
	}
	// A BEGIN for the ID in use is a protocol violation.
	x.fromVirtual(t, cell.RelayMsg{Command: cell.RELAY_BEGIN, StreamID: 77, Data: body})
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("duplicate BEGIN did not close the circuit")
	}
	var pe *circuit.ProtocolError
	if !errors.As(c.Err(), &pe) {
		t.Fatalf("%v", c.Err())
	}
}

// BEGIN from the relay itself (not the virtual hop) is refused even when
// streams are accepted, and without AcceptStreams BEGIN stays a violation.
func TestBeginOnlyFromVirtualHop(t *testing.T) {
	f, c := newCirc(t)
	c.AcceptStreams(func(cell.RelayMsg) error { t.Error("BEGIN from the relay accepted"); return nil })
	body, _ := (&cell.Begin{Port: 80}).Encode()
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_BEGIN, StreamID: 5, Data: body})
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("BEGIN from a non-virtual hop did not close the circuit")
	}
	x, c2 := virtualCirc(t)
	x.fromVirtual(t, cell.RelayMsg{Command: cell.RELAY_BEGIN, StreamID: 5, Data: body})
	select {
	case <-c2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("BEGIN without AcceptStreams did not close the circuit")
	}
}
