package circuit_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/torcrypto"
)

func newCirc(t *testing.T) (*circtest.FakeRelay, *circuit.Circuit) {
	t.Helper()
	f := circtest.NewFakeRelay()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := circuit.Create(ctx, f.Channel, f.Target)
	if err != nil {
		t.Fatal(err)
	}
	r := <-f.Received
	if r.Cell.Command != cell.CREATE2 {
		t.Fatalf("first cell %v", r.Cell.Command)
	}
	if r.Cell.CircID&0x80000000 == 0 {
		t.Fatalf("circuit ID %#x lacks the high bit", r.Cell.CircID)
	}
	t.Cleanup(func() {
		c.Close()
		f.Channel.Close()
		f.Close()
	})
	return f, c
}

// next returns the next relay message the client sent.
func next(t *testing.T, f *circtest.FakeRelay) circtest.Received {
	t.Helper()
	select {
	case r, ok := <-f.Received:
		if !ok {
			t.Fatal("connection closed")
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("timeout waiting for a cell from the client")
	}
	panic("unreachable")
}

func waitDone(t *testing.T, c *circuit.Circuit) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(5 * time.Second):
		t.Fatal("circuit not closed")
	}
	return nil
}

// The client answers every 100 DATA cells with an authenticated SENDME
// carrying the digest of the 100th cell (prop 289).
func TestClientSendsSendmeV1(t *testing.T) {
	f, _ := newCirc(t)
	var d100 [20]byte
	for i := 1; i <= 200; i++ {
		d, err := f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 7, Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if i == 100 {
			d100 = d
		}
	}
	r := next(t, f)
	if !r.Recognized || r.Msg.Command != cell.RELAY_SENDME || r.Msg.StreamID != 0 {
		t.Fatalf("got %+v", r.Msg)
	}
	s, err := cell.DecodeSendme(r.Msg.Data)
	if err != nil || s.Version != 1 || !bytes.Equal(s.Digest, d100[:]) {
		t.Fatalf("SENDME %+v %v, want v1 digest %x", s, err, d100)
	}
	if r := next(t, f); r.Msg.Command != cell.RELAY_SENDME {
		t.Fatalf("second SENDME: %+v", r.Msg)
	}
}

// The client stops at 1000 DATA cells until the exit's SENDME, whose v1
// digest must match the 100th cell's.
func TestPackageWindowAndSendmeDigest(t *testing.T) {
	f, c := newCirc(t)
	ctx := context.Background()
	var digests [][20]byte
	for i := 1; i <= 1000; i++ {
		if err := c.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 1, Data: []byte{1}}); err != nil {
			t.Fatal(err)
		}
		r := next(t, f)
		if !r.Recognized {
			t.Fatal("cell not recognized by relay")
		}
		if i%100 == 0 {
			digests = append(digests, r.Digest)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := c.SendRelay(short, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 1, Data: []byte{1}})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("1001st cell: %v, want blocked", err)
	}
	// v0 SENDME accepted.
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME})
	if err := c.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 1, Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	next(t, f)
	// v1 SENDME with the right digest (of the 200th cell).
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, Data: (&cell.Sendme{Version: 1, Digest: digests[1][:]}).Encode()})
	// v1 SENDME with a wrong digest closes the circuit.
	bad := digests[3]
	bad[0] ^= 1
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, Data: (&cell.Sendme{Version: 1, Digest: bad[:]}).Encode()})
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("got %v, want ProtocolError", err)
	}
	// The client sent DESTROY(PROTOCOL).
	for {
		r := next(t, f)
		if r.Cell.Command == cell.DESTROY {
			if cell.DestroyReason(r.Cell.Payload[0]) != cell.DestroyProtocol {
				t.Fatalf("DESTROY reason %v", cell.DestroyReason(r.Cell.Payload[0]))
			}
			break
		}
	}
}

func TestUnexpectedSendmeClosesCircuit(t *testing.T) {
	f, c := newCirc(t)
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME})
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("got %v", err)
	}
}

func TestDestroyAndTruncatedAreTyped(t *testing.T) {
	f, c := newCirc(t)
	f.SendCell(f.CircID(), cell.DESTROY, []byte{byte(cell.DestroyResourceLimit)})
	var de *circuit.DestroyedError
	if err := waitDone(t, c); !errors.As(err, &de) || de.Reason != cell.DestroyResourceLimit || de.Truncated {
		t.Fatalf("got %v", err)
	}
	f2, c2 := newCirc(t)
	f2.SendRelay(cell.RelayMsg{Command: cell.RELAY_TRUNCATED, Data: []byte{byte(cell.DestroyConnectFailed)}})
	if err := waitDone(t, c2); !errors.As(err, &de) || de.Reason != cell.DestroyConnectFailed || !de.Truncated {
		t.Fatalf("got %v", err)
	}
}

func TestGarbageRelayCellClosesCircuit(t *testing.T) {
	f, c := newCirc(t)
	f.SendCell(f.CircID(), cell.RELAY, bytes.Repeat([]byte{0xAA}, cell.PayloadLen))
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("got %v", err)
	}
}

func TestChannelCloseFailsCircuits(t *testing.T) {
	before := runtime.NumGoroutine()
	f := circtest.NewFakeRelay()
	ctx := context.Background()
	var circs []*circuit.Circuit
	for range 3 {
		c, err := circuit.Create(ctx, f.Channel, f.Target)
		if err != nil {
			t.Fatal(err)
		}
		circs = append(circs, c)
	}
	f.Close()
	for _, c := range circs {
		if err := waitDone(t, c); err == nil {
			t.Fatal("nil error")
		}
	}
	<-f.Channel.Done()
	if f.Channel.Err() == nil || errors.Is(f.Channel.Err(), channel.ErrClosed) {
		t.Fatalf("channel error %v", f.Channel.Err())
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines %d > %d", n, before)
	}
}

func TestCreateTimeout(t *testing.T) {
	f := circtest.NewFakeRelay()
	defer f.Close()
	defer f.Channel.Close()
	tg := f.Target
	tg.RSAID[0] ^= 1 // the fake relay refuses: DESTROY
	_, err := circuit.Create(context.Background(), f.Channel, tg)
	var de *circuit.DestroyedError
	if !errors.As(err, &de) {
		t.Fatalf("got %v", err)
	}
	if n := f.Channel.NumCircuits(); n != 0 {
		t.Fatalf("%d circuits left on channel", n)
	}
}

func TestControlMessagesAndVirtualHop(t *testing.T) {
	f, c := newCirc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Onion-service control messages reach ReceiveControl; unknown
	// stream-0 commands are dropped.
	f.SendRelay(cell.RelayMsg{Command: 200, Data: []byte("future")})
	f.SendRelay(cell.RelayMsg{Command: 39, Data: []byte("rendezvous established")})
	m, err := c.ReceiveControl(ctx)
	if err != nil || m.Command != 39 || string(m.Data) != "rendezvous established" {
		t.Fatalf("%+v %v", m, err)
	}
	// A virtual hop with its own keys, shared with a "service" behind
	// the fake relay.
	keys := bytes.Repeat([]byte{7}, torcrypto.RelayKeyMaterialLen)
	vc, _ := torcrypto.NewHop(bytes.NewReader(keys))
	vs, _ := torcrypto.NewRelayHop(bytes.NewReader(keys))
	if err := c.ExtendVirtual(vc); err != nil {
		t.Fatal(err)
	}
	if c.NumHops() != 2 {
		t.Fatal(c.NumHops())
	}
	if err := c.SendRelay(ctx, cell.RelayMsg{Command: 34, Data: []byte("to service")}); err != nil {
		t.Fatal(err)
	}
	r := next(t, f)
	if r.Recognized {
		t.Fatal("cell for the virtual hop recognized by the relay")
	}
	p := (*[cell.PayloadLen]byte)(r.Cell.Payload)
	if ok, _ := vs.Receive(p); !ok {
		t.Fatal("service did not recognize the cell")
	}
	if msg, _ := cell.DecodeRelay(p[:]); string(msg.Data) != "to service" {
		t.Fatalf("%q", msg.Data)
	}
	var q [cell.PayloadLen]byte
	cell.EncodeRelay(&q, cell.RelayMsg{Command: 40, Data: []byte("from service")})
	vs.Originate(&q)
	f.SendFromLaterHop(&q)
	m, err = c.ReceiveControl(ctx)
	if err != nil || string(m.Data) != "from service" {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestRelayEarly(t *testing.T) {
	f, c := newCirc(t)
	ctx := context.Background()
	// On a one-hop circuit nothing is RELAY_EARLY.
	c.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_DROP})
	if r := next(t, f); r.Cell.Command != cell.RELAY {
		t.Fatalf("got %v", r.Cell.Command)
	}
	keys := bytes.Repeat([]byte{1}, torcrypto.RelayKeyMaterialLen)
	vc, _ := torcrypto.NewHop(bytes.NewReader(keys))
	c.ExtendVirtual(vc)
	for i := range 10 {
		c.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_DROP})
		want := cell.RELAY_EARLY
		if i >= circuit.MaxRelayEarly {
			want = cell.RELAY
		}
		if r := next(t, f); r.Cell.Command != want {
			t.Fatalf("cell %d: %v, want %v", i, r.Cell.Command, want)
		}
	}
	// Extending needs RELAY_EARLY: none left.
	ctx2, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Extend(ctx2, f.Target); err == nil {
		t.Fatal("extend without RELAY_EARLY budget")
	}
	// An inbound RELAY_EARLY closes the circuit.
	f.SendCell(f.CircID(), cell.RELAY_EARLY, make([]byte, cell.PayloadLen))
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("got %v", err)
	}
}

// With sendme_accept_min_version 1 (the public network's value) an
// unauthenticated SENDME v0 closes the circuit; a v1 is accepted. The
// spec's default, 0, accepts v0 (TestPackageWindowAndSendmeDigest).
func TestSendmeAcceptMinVersion(t *testing.T) {
	f, c := newCirc(t)
	c.SetSendmeAcceptMinVersion(1)
	sent := 0
	d := sendData(t, f, c, 200, circuit.CircWindowIncrement, &sent)
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, Data: (&cell.Sendme{Version: 1, Digest: d[0][:]}).Encode()})
	sendData(t, f, c, 1, circuit.CircWindowIncrement, &sent) // a round trip: the v1 SENDME was taken
	if err := c.Err(); err != nil {
		t.Fatalf("v1 SENDME refused: %v", err)
	}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME}) // v0
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) || !strings.Contains(err.Error(), "sendme_accept_min_version") {
		t.Fatalf("got %v, want a ProtocolError naming sendme_accept_min_version", err)
	}
}
