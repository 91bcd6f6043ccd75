package circuit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/congestion"
	"github.com/gotor/gotor/internal/netdir"
)

// ccAccept answers a congestion control request with sendme_inc inc, as
// an exit whose consensus has cc_alg != 0 (prop 324 §10.3).
func ccAccept(inc byte) func([]cell.Extension) []cell.Extension {
	return func(client []cell.Extension) []cell.Extension {
		for _, e := range client {
			if e.Type == cell.ExtCCRequest {
				return []cell.Extension{{Type: cell.ExtCCResponse, Data: []byte{inc}}}
			}
		}
		return nil
	}
}

// newCCCirc creates a one-hop circuit with handshake kind to a fake relay
// that answers ntor v3 with ext (nil: no extensions).
func newCCCirc(t *testing.T, kind circuit.Handshake, ext func([]cell.Extension) []cell.Extension) (*circtest.FakeRelay, *circuit.Circuit, error) {
	t.Helper()
	f := circtest.NewFakeRelay()
	f.ServerExtensions = ext
	t.Cleanup(func() {
		f.Channel.Close()
		f.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := circuit.CreateWith(ctx, f.Channel, f.Target, kind)
	if r := next(t, f); r.Cell.Command != cell.CREATE2 {
		t.Fatalf("first cell %v", r.Cell.Command)
	}
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return f, c, err
}

// sendData sends n DATA cells and returns the relay's digests of the
// cells that elicit a SENDME (every inc-th).
func sendData(t *testing.T, f *circtest.FakeRelay, c *circuit.Circuit, n, inc int, sent *int) [][20]byte {
	t.Helper()
	var ds [][20]byte
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 1, Data: []byte{1}})
		cancel()
		if err != nil {
			t.Fatalf("cell %d: %v", *sent+1, err)
		}
		r := next(t, f)
		*sent++
		if *sent%inc == 0 {
			ds = append(ds, r.Digest)
		}
	}
	return ds
}

func blocked(c *circuit.Circuit) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	return errors.Is(c.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 1, Data: []byte{1}}), context.DeadlineExceeded)
}

func sendme(f *circtest.FakeRelay, d [20]byte) {
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, Data: (&cell.Sendme{Version: 1, Digest: d[:]}).Encode()})
}

func wantProtocolError(t *testing.T, c *circuit.Circuit, what string) {
	t.Helper()
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("%s: circuit ended with %v, want a ProtocolError", what, err)
	}
}

// TestCCNegotiatedRunsVegas: an accepted request turns on TOR_VEGAS with
// the exit's sendme_inc: the window is cc_cwnd_init (124), a SENDME is
// due every 31 cells, and a full window acknowledged grows it in slow
// start.
func TestCCNegotiatedRunsVegas(t *testing.T) {
	f, c, err := newCCCirc(t, circuit.NtorV3CC, ccAccept(31))
	if err != nil {
		t.Fatal(err)
	}
	if on, inc := c.CongestionControl(); !on || inc != 31 {
		t.Fatalf("CongestionControl() = %v, %d; want true, 31", on, inc)
	}
	sent := 0
	ds := sendData(t, f, c, 124, 31, &sent)
	if len(ds) != 4 || !blocked(c) {
		t.Fatalf("%d SENDMEs due after 124 cells, blocked %v; want 4 and the window closed", len(ds), blocked(c))
	}
	sendme(f, ds[0])
	// Slow start: cwnd 124 + 31 = 155; 93 in flight: 62 more may go.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if st, _ := c.Vegas(); st.Cwnd == 155 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	st, ok := c.Vegas()
	if !ok || st.Cwnd != 155 || st.Inflight != 93 || !st.InSlowStart || st.EwmaRTT <= 0 {
		t.Fatalf("after one SENDME: %+v (ok %v)", st, ok)
	}
	sendData(t, f, c, 62, 31, &sent)
	if !blocked(c) {
		t.Fatal("window open beyond cwnd 155")
	}
	// The client's own SENDMEs come every 31 DATA cells it receives.
	for range 31 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 7, Data: []byte("x")})
	}
	if r := next(t, f); r.Msg.Command != cell.RELAY_SENDME {
		t.Fatalf("after 31 DATA cells the client sent %v, want SENDME", r.Msg.Command)
	}
}

// TestCCRefusedFallsBack: a relay that answers the request without a CC
// response (its consensus says cc_alg=0) leaves fixed windows: 1000
// cells, SENDMEs every 100.
func TestCCRefusedFallsBack(t *testing.T) {
	f, c, err := newCCCirc(t, circuit.NtorV3CC, nil)
	if err != nil {
		t.Fatal(err)
	}
	if on, inc := c.CongestionControl(); on || inc != 100 {
		t.Fatalf("CongestionControl() = %v, %d; want false, 100", on, inc)
	}
	if _, ok := c.Vegas(); ok {
		t.Fatal("Vegas state on a fixed-window circuit")
	}
	sent := 0
	ds := sendData(t, f, c, 1000, 100, &sent)
	if len(ds) != 10 || !blocked(c) {
		t.Fatalf("%d SENDMEs due after 1000 cells, blocked %v", len(ds), blocked(c))
	}
}

// TestCCHostileNegotiation: a CC response we did not ask for, a
// sendme_inc more than one from the consensus's (C tor since 0.4.8), zero, or a
// malformed field each fail the handshake (prop 324 §10.5: the client
// MUST close).
func TestCCHostileNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind circuit.Handshake
		ext  func([]cell.Extension) []cell.Extension
	}{
		{"unrequested", circuit.NtorV3, func([]cell.Extension) []cell.Extension {
			return []cell.Extension{{Type: cell.ExtCCResponse, Data: []byte{31}}}
		}},
		{"sendme_inc 33", circuit.NtorV3CC, ccAccept(33)},
		{"sendme_inc 29", circuit.NtorV3CC, ccAccept(29)},
		{"sendme_inc 0", circuit.NtorV3CC, ccAccept(0)},
		{"two bytes", circuit.NtorV3CC, func([]cell.Extension) []cell.Extension {
			return []cell.Extension{{Type: cell.ExtCCResponse, Data: []byte{31, 0}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := newCCCirc(t, tc.kind, tc.ext)
			var pe *circuit.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a ProtocolError", err)
			}
		})
	}
	// Unknown extensions are ignored; the first CC response counts.
	_, c, err := newCCCirc(t, circuit.NtorV3CC, func([]cell.Extension) []cell.Extension {
		return []cell.Extension{{Type: 99, Data: []byte("?")}, {Type: cell.ExtCCResponse, Data: []byte{32}}, {Type: cell.ExtCCResponse, Data: []byte{0}}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if on, inc := c.CongestionControl(); !on || inc != 32 {
		t.Fatalf("CongestionControl() = %v, %d; want true, 32", on, inc)
	}
}

// TestCCHostileSendmes: on a congestion-controlled circuit, an extra
// SENDME (no cell awaits one), a SENDME with the wrong digest and a
// SENDME v0 each close the circuit with a protocol violation.
func TestCCHostileSendmes(t *testing.T) {
	t.Run("extra", func(t *testing.T) {
		f, c, err := newCCCirc(t, circuit.NtorV3CC, ccAccept(31))
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		ds := sendData(t, f, c, 31, 31, &sent)
		sendme(f, ds[0])
		sendme(f, ds[0]) // nothing awaits a second one
		wantProtocolError(t, c, "extra SENDME")
	})
	t.Run("wrong digest", func(t *testing.T) {
		f, c, err := newCCCirc(t, circuit.NtorV3CC, ccAccept(31))
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		ds := sendData(t, f, c, 62, 31, &sent)
		sendme(f, ds[1]) // the second cell's digest for the first SENDME
		wantProtocolError(t, c, "SENDME with the wrong digest")
	})
	t.Run("v0", func(t *testing.T) {
		f, c, err := newCCCirc(t, circuit.NtorV3CC, ccAccept(31))
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		sendData(t, f, c, 31, 31, &sent)
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME})
		wantProtocolError(t, c, "SENDME v0")
	})
	t.Run("before any data", func(t *testing.T) {
		f, c, err := newCCCirc(t, circuit.NtorV3CC, ccAccept(31))
		if err != nil {
			t.Fatal(err)
		}
		var d [20]byte
		sendme(f, d)
		wantProtocolError(t, c, "SENDME before data")
	})
}

// TestCCNoExtendPast: a circuit whose last hop runs congestion control
// cannot be extended.
func TestCCNoExtendPast(t *testing.T) {
	f, c, err := newCCCirc(t, circuit.NtorV3CC, ccAccept(31))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Extend(context.Background(), f.Target); !errors.Is(err, circuit.ErrExtendPastCC) {
		t.Fatalf("Extend past the CC hop: %v", err)
	}
}

// TestCCParamsFromTarget: the target's consensus parameters drive the
// negotiation check and Vegas (here cc_sendme_inc 50, cc_cwnd_init 200).
func TestCCParamsFromTarget(t *testing.T) {
	f := circtest.NewFakeRelay()
	defer f.Close()
	defer f.Channel.Close()
	f.ServerExtensions = ccAccept(50)
	p := congestion.DefaultParams(congestion.PathExit)
	p.Alg, p.SendmeInc, p.CwndInit = congestion.AlgVegas, 50, 200
	tg := f.Target
	tg.Handshake, tg.CC = circuit.NtorV3CC, &p
	c, err := circuit.Create(context.Background(), f.Channel, tg) // Create uses tg.Handshake
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, ok := c.Vegas(); !ok || st.Cwnd != 200 || st.SendmeIncrement != 50 {
		t.Fatalf("Vegas %+v ok %v", st, ok)
	}
}

// TestHopFor: ntor v3 where Relay=4, the CC request only on an exit hop
// with FlowCtrl=2 and a consensus that enables it.
func TestHopFor(t *testing.T) {
	const modern = "FlowCtrl=1-2 Relay=1-4"
	on := congestion.DefaultParams(congestion.PathExit) // cc_alg absent: 2
	off := on
	off.Alg = congestion.AlgFixed // consensus cc_alg=0
	relay := func(pr string) *netdir.Relay {
		return &netdir.Relay{Protocols: pr, HasEd25519: true, NtorOnionKey: [32]byte{1}}
	}
	for _, tc := range []struct {
		name string
		r    *netdir.Relay
		exit bool
		cc   congestion.Params
		want circuit.Handshake
	}{
		{"exit, cc_alg 2", relay(modern), true, on, circuit.NtorV3CC},
		{"middle, cc_alg 2", relay(modern), false, on, circuit.NtorV3},
		{"exit, cc_alg 0", relay(modern), true, off, circuit.NtorV3},
		{"exit without FlowCtrl=2", relay("FlowCtrl=1 Relay=1-4"), true, on, circuit.NtorV3},
		{"Relay=1-3", relay("FlowCtrl=1-2 Relay=1-3"), true, on, circuit.Ntor},
		{"no Ed25519", &netdir.Relay{Protocols: modern}, true, on, circuit.Ntor},
	} {
		tg := circuit.HopFor(tc.r, tc.exit, tc.cc)
		if tg.Handshake != tc.want {
			t.Errorf("%s: handshake %d, want %d", tc.name, tg.Handshake, tc.want)
		}
		if (tg.CC != nil) != (tc.want == circuit.NtorV3CC) {
			t.Errorf("%s: CC params %v", tc.name, tg.CC)
		}
	}
}
