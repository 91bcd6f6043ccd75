package circuit_test

// Hostile relays on a two-hop circuit: the fake relay is the guard, a
// LaterHop held by the test is the exit (or rendezvous point). The guard
// can originate cells of its own on the circuit; it must not be able to
// speak for the exit's streams (issue 17 item 1; C tor relay_lookup_conn
// with edge_uses_cpath).

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
)

// recHandler records what reaches one stream.
type recHandler struct {
	msgs   chan cell.RelayMsg
	closed chan error
}

func newRecHandler() *recHandler {
	return &recHandler{msgs: make(chan cell.RelayMsg, 100), closed: make(chan error, 1)}
}

func (h *recHandler) HandleRelay(m cell.RelayMsg) error {
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
			if err := exit.SendRelay(cell.RelayMsg{Command: cmd, StreamID: id, Data: streamMsgBody(cmd)}); err != nil {
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
			f.SendRelay(cell.RelayMsg{Command: cmd, StreamID: id, Data: streamMsgBody(cmd)})
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
	if err := rp.SendRelay(cell.RelayMsg{Command: 39, Data: []byte("rendezvous established")}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReceiveControl(ctx); err != nil || m.Command != 39 {
		t.Fatalf("%+v %v", m, err)
	}
	// The guard forges RENDEZVOUS2 (a fake onion service handshake).
	f.SendRelay(cell.RelayMsg{Command: 37, Data: make([]byte, 64)})
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("circuit error %v, want a ProtocolError", err)
	}
	t.Log(c.Err())
	if m, err := c.ReceiveControl(ctx); err == nil {
		t.Fatalf("forged %v delivered", m.Command)
	}
}

// aliveAfter checks, with a round trip through the exit, that the
// circuit still works after what was sent before, and that it kept the
// stream h attached at id.
func aliveAfter(t *testing.T, exit *circtest.LaterHop, c *circuit.Circuit, h *recHandler, id uint16) {
	t.Helper()
	if err := exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: id, Data: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-h.msgs:
		if string(m.Data) != "ping" {
			t.Fatalf("got %v %q", m.Command, m.Data)
		}
	case <-c.Done():
		t.Fatalf("circuit closed: %v", c.Err())
	case <-time.After(5 * time.Second):
		t.Fatal("no round trip")
	}
}

// After we end a stream its exit may still send what it sent before it
// saw our END, up to the stream's windows (tor-spec §6.3; C tor
// connection_half_edge_is_valid_*): accepted and dropped; more is
// dropped and counted; nothing of it closes the circuit.
func TestHalfClosedStream(t *testing.T) {
	_, exit, c := twoHops(t)
	other := newRecHandler()
	otherID, _ := c.AttachStream(other)
	id, _ := c.AttachStream(newRecHandler())
	c.EndStream(id, circuit.InFlight{Connected: true, Data: 3, Sendmes: 1})
	if n := c.NumHalfClosed(); n != 1 || c.NumStreams() != 1 {
		t.Fatalf("%d half-closed, %d streams", n, c.NumStreams())
	}
	send := func(cmd cell.RelayCommand) {
		t.Helper()
		if err := exit.SendRelay(cell.RelayMsg{Command: cmd, StreamID: id, Data: streamMsgBody(cmd)}); err != nil {
			t.Fatal(err)
		}
	}
	send(cell.RELAY_CONNECTED)
	for range 3 {
		send(cell.RELAY_DATA)
	}
	send(cell.RELAY_SENDME)
	aliveAfter(t, exit, c, other, otherID)
	if d := c.Dropped(); d != (circuit.Dropped{HalfClosed: 5}) {
		t.Fatalf("dropped %+v, want 5 half-closed", d)
	}
	// Beyond what the windows allowed: dropped and counted.
	send(cell.RELAY_DATA)
	send(cell.RELAY_CONNECTED)
	send(cell.RELAY_SENDME)
	aliveAfter(t, exit, c, other, otherID)
	if d := c.Dropped(); d != (circuit.Dropped{HalfClosed: 5, UnknownStream: 3}) {
		t.Fatalf("dropped %+v", d)
	}
	// END forgets the stream; later cells are for an unknown stream.
	send(cell.RELAY_END)
	send(cell.RELAY_END)
	aliveAfter(t, exit, c, other, otherID)
	if d := c.Dropped(); d != (circuit.Dropped{HalfClosed: 6, UnknownStream: 4}) || c.NumHalfClosed() != 0 {
		t.Fatalf("dropped %+v, %d half-closed", d, c.NumHalfClosed())
	}
}

// A half-closed stream, like an open one, belongs to its hop.
func TestHalfClosedStreamFromAnotherHopClosesCircuit(t *testing.T) {
	f, _, c := twoHops(t)
	id, _ := c.AttachStream(newRecHandler())
	c.EndStream(id, circuit.InFlight{Data: 500})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: id, Data: []byte("x")})
	var pe *circuit.ProtocolError
	if err := waitDone(t, c); !errors.As(err, &pe) {
		t.Fatalf("circuit error %v, want a ProtocolError", err)
	}
}

// A congestion-controlled stream has no windows: what it may still get
// after our END is bounded in time (C tor: end_ack_expected_usec).
func TestHalfClosedCCStreamTimeBound(t *testing.T) {
	var mu sync.Mutex
	clock := time.Unix(1e9, 0)
	defer circuit.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })()
	_, exit, c := twoHops(t)
	other := newRecHandler()
	otherID, _ := c.AttachStream(other)
	id, _ := c.AttachStream(newRecHandler())
	c.EndStream(id, circuit.InFlight{CC: true})
	for range 1000 {
		exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: id, Data: []byte("x")})
	}
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_XOFF, StreamID: id, Data: cell.EncodeXoff()})
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, StreamID: id}) // no SENDMEs with CC
	aliveAfter(t, exit, c, other, otherID)
	if d := c.Dropped(); d != (circuit.Dropped{HalfClosed: 1001, UnknownStream: 1}) {
		t.Fatalf("dropped %+v", d)
	}
	mu.Lock()
	clock = clock.Add(circuit.HalfClosedCCTime + time.Second)
	mu.Unlock()
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: id, Data: []byte("x")})
	aliveAfter(t, exit, c, other, otherID)
	if d := c.Dropped(); d != (circuit.Dropped{HalfClosed: 1001, UnknownStream: 2}) {
		t.Fatalf("dropped %+v", d)
	}
}

// A circuit remembers at most MaxHalfClosed half-closed streams, the
// newest.
func TestHalfClosedBound(t *testing.T) {
	_, exit, c := twoHops(t)
	other := newRecHandler()
	otherID, _ := c.AttachStream(other)
	var ids []uint16
	for range circuit.MaxHalfClosed + 10 {
		id, err := c.AttachStream(newRecHandler())
		if err != nil {
			t.Fatal(err)
		}
		c.EndStream(id, circuit.InFlight{Data: 1})
		ids = append(ids, id)
	}
	if n := c.NumHalfClosed(); n != circuit.MaxHalfClosed {
		t.Fatalf("%d half-closed", n)
	}
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: ids[0], Data: []byte("x")})          // forgotten
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: ids[len(ids)-1], Data: []byte("x")}) // kept
	aliveAfter(t, exit, c, other, otherID)
	if d := c.Dropped(); d != (circuit.Dropped{HalfClosed: 1, UnknownStream: 1}) {
		t.Fatalf("dropped %+v", d)
	}
}

// Cells the client drops are counted, whichever hop sends them: a
// dropmark (a silently dropped cell used as a signal) shows.
func TestDroppedCellsCounted(t *testing.T) {
	f, exit, c := twoHops(t)
	other := newRecHandler()
	otherID, _ := c.AttachStream(other)
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 999, Data: []byte("x")}) // no such stream
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_END, StreamID: 998, Data: []byte{6}})
	f.SendRelay(cell.RelayMsg{Command: 200, Data: []byte("?")})                       // unknown command, stream 0
	exit.SendRelay(cell.RelayMsg{Command: 201, StreamID: otherID, Data: []byte("?")}) // and on a stream
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_TRUNCATE, StreamID: 0})          // never for a client
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DROP})
	exit.SendRelay(cell.RelayMsg{Command: cell.RELAY_DROP, StreamID: otherID})
	aliveAfter(t, exit, c, other, otherID)
	want := circuit.Dropped{UnknownStream: 2, UnknownCommand: 3, Padding: 2}
	if d := c.Dropped(); d != want {
		t.Fatalf("dropped %+v, want %+v", d, want)
	}
	select {
	case m := <-other.msgs:
		t.Fatalf("stream got %v", m.Command)
	default:
	}
}

// What C tor closes a circuit on (relay.c handle_relay_cell_command and
// circuit_extend) closes it here too.
func TestCommandsThatCloseTheCircuit(t *testing.T) {
	cases := []struct {
		name string
		msg  cell.RelayMsg
	}{
		{"EXTEND2 to a client", cell.RelayMsg{Command: cell.RELAY_EXTEND2}},
		{"EXTEND to a client", cell.RelayMsg{Command: cell.RELAY_EXTEND}},
		{"EXTENDED, never asked for", cell.RelayMsg{Command: cell.RELAY_EXTENDED, Data: make([]byte, 148)}},
		{"EXTENDED2 with a stream ID", cell.RelayMsg{Command: cell.RELAY_EXTENDED2, StreamID: 3, Data: []byte{0, 0}}},
		{"TRUNCATED with a stream ID", cell.RelayMsg{Command: cell.RELAY_TRUNCATED, StreamID: 3, Data: []byte{1}}},
		{"XOFF with stream ID 0", cell.RelayMsg{Command: cell.RELAY_XOFF, Data: cell.EncodeXoff()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, exit, c := twoHops(t)
			exit.SendRelay(tc.msg)
			err := waitDone(t, c)
			var pe *circuit.ProtocolError
			var de *circuit.DestroyedError
			if !errors.As(err, &pe) && !errors.As(err, &de) {
				t.Fatalf("circuit error %v", err)
			}
			t.Log(err)
		})
	}
}
