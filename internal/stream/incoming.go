package stream

// Streams opened by the far end: an onion service receives RELAY_BEGIN
// from its client through the virtual hop of a rendezvous circuit
// (rend-spec-v3 §4.2.1, tor-spec §6.2) and answers with RELAY_CONNECTED
// (empty, as C tor sends for rendezvous streams: there is no address to
// report) or RELAY_END.

import (
	"context"
	"errors"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
)

// Incoming is a RELAY_BEGIN waiting for Accept or Reject.
type Incoming struct {
	Host  string // as the client sent it ("" for onion services' ":port")
	Port  uint16
	Flags Flags
	conn  *Conn
}

// AcceptStreams makes circ accept streams from its virtual hop (see
// circuit.AcceptStreams) and passes each to fn. fn runs on the channel
// reader goroutine and must not block; it must eventually Accept or
// Reject the stream. A BEGIN that does not parse is answered with END
// (TORPROTOCOL). Data the client sends before Accept (optimistic data,
// which C tor clients may send on rendezvous circuits) is buffered,
// bounded by the stream window.
func AcceptStreams(circ *circuit.Circuit, fn func(*Incoming)) {
	circ.AcceptStreams(func(msg cell.RelayMsg) error {
		b, err := cell.DecodeBegin(msg.Data)
		if err != nil {
			// Refuse the stream, keep the circuit.
			circ.SendRelay(context.Background(), cell.RelayMsg{Command: cell.RELAY_END, StreamID: msg.StreamID,
				Data: (&cell.End{Reason: cell.EndTorProtocol}).Encode()})
			return nil
		}
		s := newConn(circ, Addr{Host: b.Host, Port: b.Port}, stOpen) // DATA is accepted from now on
		s.id = msg.StreamID
		close(s.ready)
		if err := circ.AttachStreamID(msg.StreamID, s); err != nil {
			return err
		}
		fn(&Incoming{Host: b.Host, Port: b.Port, Flags: Flags(b.Flags), conn: s})
		return nil
	})
}

// ErrStreamGone is returned by Accept when the client ended the stream
// (or the circuit closed) before it was accepted.
var ErrStreamGone = errors.New("stream: ended before it was accepted")

// Accept sends RELAY_CONNECTED and returns the stream.
func (in *Incoming) Accept() (*Conn, error) {
	s := in.conn
	s.mu.Lock()
	over := s.st.over()
	s.mu.Unlock()
	if over {
		return nil, ErrStreamGone
	}
	if err := s.circ.SendRelay(context.Background(), cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: s.id}); err != nil {
		s.abort(cell.EndMisc, false)
		return nil, err
	}
	return s, nil
}

// Reject ends the stream with RELAY_END and reason.
func (in *Incoming) Reject(reason Reason) { in.conn.abort(reason, true) }
