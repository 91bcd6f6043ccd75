package circuit_test

// Hostile relays on a two-hop circuit: the fake relay is the guard, a
// LaterHop held by the test is the exit (or rendezvous point). The guard
// can originate cells of its own on the circuit; it must not be able to
// speak for the exit's streams (issue 17 item 1; C tor relay_lookup_conn
// with edge_uses_cpath).

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
)

// recHandler records what reaches one stream.
type recHandler struct {
	msgs   chan cell.Relay
	closed chan error
}

func newRecHandler() *recHandler {
	return &recHandler{msgs: make(chan cell.Relay, 100), closed: make(chan error, 1)}
}

func (h *recHandler) HandleRelay(m cell.Relay) error {
	m.Data = append([]byte(nil), m.Data...)
	h.msgs <- m
	return nil
}

func (h *recHandler) CircuitClosed(err error) { h.closed <- err }

func twoHops(t *testing.T) (*circtest.FakeRelay, *circtest.LaterHop, *circuit.Circuit) {
	t.Helper()
	f, c := newCirc(t)
	exit, err := f.ExtendLaterHop(c)
	if err != nil {
		t.Fatal(err)
	}
	return f, exit, c
}

// A valid body for each stream message, so that only its origin is wrong.
func streamMsgBody(cmd cell.RelayCommand) []byte {
	switch cmd {
	case cell.RELAY_CONNECTED:
		return (&cell.Connected{Addr: netip.MustParseAddr("192.0.2.1"), TTL: 60}).Encode()
	case cell.RELAY_DATA:
		return []byte("forged")
	case cell.RELAY_END:
		return (&cell.End{Reason: cell.EndDone}).Encode()
	case cell.RELAY_RESOLVED:
		return []byte{4, 4, 192, 0, 2, 1, 0, 0, 0, 60}
	case cell.RELAY_XON:
		return (&cell.Xon{}).Encode()
	case cell.RELAY_XOFF:
		return cell.EncodeXoff()
	}
	return nil
}

var streamCommands = []cell.RelayCommand{cell.RELAY_CONNECTED, cell.RELAY_DATA, cell.RELAY_END,
	cell.RELAY_RESOLVED, cell.RELAY_SENDME, cell.RELAY_XON, cell.RELAY_XOFF}

func TestStreamMessageFromAnotherHopClosesCircuit(t *testing.T) {
	for _, cmd := range streamCommands {
		t.Run(cmd.String(), func(t *testing.T) {
			f, exit, c := twoHops(t)
			h := newRecHandler()
			id, err := c.AttachStream(h)
			if err != nil {
				t.Fatal(err)
			}
			// From the stream's own hop the message reaches the stream.
			if err := exit.SendRelay(cell.Relay{Command: cmd, StreamID: id, Data: streamMsgBody(cmd)}); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-h.msgs:
				if m.Command != cmd {
					t.Fatalf("stream got %v", m.Command)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the exit's %v did not reach the stream", cmd)
			}
			// The guard forges the same message for the exit's stream.
			f.SendRelay(cell.Relay{Command: cmd, StreamID: id, Data: streamMsgBody(cmd)})
			var pe *circuit.ProtocolError
			if err := waitDone(t, c); !errors.As(err, &pe) {
				t.Fatalf("circuit error %v, want a ProtocolError", err)
			}
			t.Log(c.Err())
			select {
			case m := <-h.msgs:
				t.Fatalf("forged %v reached the stream", m.Command)
			default:
			}
			if err := <-h.closed; err == nil {
				t.Fatal("stream not told of the circuit's end")
			}
		})
	}
}

// Onion service messages come only from the circuit's last hop (the
// introduction or rendezvous point; C tor rend_process_relay_cell).
func TestOnionMessageFromAnotherHopClosesCircuit(t *testing.T) {
	f, rp, c := twoHops(t)
	ctx := t.Context()
	if err := rp.SendRelay(cell.Relay{Command: 39, Data: []byte("rendezvous established")}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReceiveControl(ctx); err != nil || m.Command != 39 {
		t.Fatalf("%+v %v", m, err)
	}
	// The guard forges RENDEZVOUS2 (a fake onion service handshake).
	f.SendRelay(cell.Relay{Command: 37, Data: make([]byte, 64)})
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("circuit error %v, want a ProtocolError", err)
	}
	t.Log(c.Err())
	if m, err := c.ReceiveControl(ctx); err == nil {
		t.Fatalf("forged %v delivered", m.Command)
	}
}
