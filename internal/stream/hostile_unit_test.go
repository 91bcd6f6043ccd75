package stream_test

// A hostile guard on a two-hop circuit (fake relay as guard, a LaterHop
// as exit) forges the exit's half of a stream (issue 17 item 1).

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
)

// exitMsg returns the next relay message the client sent to the later
// hop, skipping circuit SENDMEs.
func exitMsg(t *testing.T, f *circtest.FakeRelay, exit *circtest.LaterHop) cell.RelayMsg {
	t.Helper()
	for {
		select {
		case r, ok := <-f.Received:
			if !ok {
				t.Fatal("closed")
			}
			m, ok := exit.Receive(r)
			if !ok || (m.Command == cell.RELAY_SENDME && m.StreamID == 0) {
				continue
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("timeout")
		}
	}
}

func connected(addr string) []byte {
	return (&cell.Connected{Addr: netip.MustParseAddr(addr), TTL: 60}).Encode()
}

// The guard answers BEGIN with its own CONNECTED before the exit does:
// the stream must not open on it.
func TestGuardForgedConnectedFailsStream(t *testing.T) {
	f, c := fakeCirc(t)
	exit, err := f.ExtendLaterHop(c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		s, err := stream.Begin(context.Background(), c, "example.com", 443, 0)
		if err == nil {
			err = errors.New("opened with CONNECTED " + s.Connected().Addr.String())
		}
		done <- err
	}()
	m := exitMsg(t, f, exit)
	if m.Command != cell.RELAY_BEGIN {
		t.Fatalf("%+v", m)
	}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: m.StreamID, Data: connected("203.0.113.66")})
	select {
	case err := <-done:
		var pe *circuit.ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("Begin: %v, want the circuit's ProtocolError", err)
		}
		t.Log(err)
	case <-time.After(5 * time.Second):
		t.Fatal("Begin still waiting")
	}
}

// The guard injects DATA into an open exit stream: the application must
// never read it.
func TestGuardForgedDataNeverRead(t *testing.T) {
	f, c := fakeCirc(t)
	exit, err := f.ExtendLaterHop(c)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		s   *stream.Conn
		err error
	}
	opened := make(chan res, 1)
	go func() {
		s, err := stream.Begin(context.Background(), c, "example.com", 80, 0)
		opened <- res{s, err}
	}()
	m := exitMsg(t, f, exit)
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: m.StreamID, Data: connected("192.0.2.80")})
	r := <-opened
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := r.s
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: []byte("real ")})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: []byte("FORGED")})
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	var got []byte
	for {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var pe *circuit.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("read %q, then %v; want the circuit's ProtocolError", got, err)
			}
			break
		}
	}
	if string(got) != "real " {
		t.Fatalf("read %q", got)
	}
}
