package circuit

// Dispatch of inbound cells (tor-spec §5, §6.1): CREATED2/CREATED_FAST
// complete the pending handshake; relay cells are decrypted, recognized
// by one hop, and handed to the circuit (stream 0: EXTENDED2, TRUNCATED,
// SENDME, DROP, onion service messages) or to their stream.

import (
	"context"
	"fmt"

	"github.com/gotor/gotor/internal/cell"
)

// ControlQueueLen bounds the queue of stream-0 messages awaiting
// ReceiveControl; a relay that overflows it violates the protocol.
const ControlQueueLen = 32

// ReceiveControl returns the next circuit-level (stream 0) relay
// message that the circuit does not handle itself: the onion service
// messages (RELAY commands 32-40: INTRO_ESTABLISHED, RENDEZVOUS2, ...).
// Other unknown stream-0 commands are dropped, as C tor does.
func (c *Circuit) ReceiveControl(ctx context.Context) (cell.RelayMsg, error) {
	select {
	case m := <-c.ctrl:
		return m, nil
	default:
	}
	select {
	case m := <-c.ctrl:
		return m, nil
	case <-c.done:
		return cell.RelayMsg{}, c.Err()
	case <-ctx.Done():
		return cell.RelayMsg{}, ctx.Err()
	}
}

// handle is the endpoint's cell handler: it processes one cell on the
// channel's reader goroutine (see channel.Channel.NewEndpoint).
// Decrypting and delivering relay cells there, and sending circuit
// SENDMEs from there, saves a goroutine hand-off per batch of cells,
// which on a loaded machine shows up as round-trip time to the relays.
// Stream handlers never block; the only blocking calls are writes to the
// channel (bounded by its write deadline).
func (c *Circuit) handle(cl *cell.Cell) {
	err := c.handleCell(cl)
	cl.Release() // handlers copy what they keep
	if err != nil {
		c.closeWith(err, true)
	}
}

func (c *Circuit) handleCell(cl *cell.Cell) error {
	switch cl.Command {
	case cell.CREATED2, cell.CREATED_FAST:
		c.mu.Lock()
		p := c.pending
		if p == nil || p.cmd != cl.Command {
			c.mu.Unlock()
			return &ProtocolError{Msg: "unexpected " + cl.Command.String()}
		}
		c.pending = nil
		c.mu.Unlock()
		hdata := cl.Payload // CREATED_FAST: Y | KH
		if cl.Command == cell.CREATED2 {
			var err error
			if hdata, err = cell.DecodeCreated2(cl.Payload); err != nil {
				return &ProtocolError{Msg: err.Error()}
			}
		}
		return c.completeHop(p, hdata)
	case cell.RELAY:
		return c.handleRelay(cl)
	case cell.RELAY_EARLY:
		return &ProtocolError{Msg: "inbound RELAY_EARLY"} // tor-spec §5.6: MUST close
	case cell.PADDING:
		return nil
	}
	return &ProtocolError{Msg: "unexpected " + cl.Command.String() + " on circuit"}
}

func (c *Circuit) handleRelay(cl *cell.Cell) error {
	if len(cl.Payload) != cell.PayloadLen {
		return &ProtocolError{Msg: "short relay cell"}
	}
	p := (*[cell.PayloadLen]byte)(cl.Payload)
	hops := c.layers()
	hop, digest, err := hops.Decrypt(p)
	if err != nil {
		return &ProtocolError{Msg: err.Error()}
	}
	msg, err := cell.DecodeRelay(p[:])
	if err != nil {
		return &ProtocolError{Msg: err.Error()}
	}
	last := len(hops) - 1
	switch msg.Command {
	case cell.RELAY_BEGIN, cell.RELAY_BEGIN_DIR, cell.RELAY_RESOLVE, cell.RELAY_EXTEND, cell.RELAY_EXTEND2:
		if msg.Command == cell.RELAY_BEGIN && msg.StreamID != 0 {
			if accepted, err := c.incomingBegin(msg, hop, last); accepted {
				return err // an onion service's client (onionservice.go)
			}
		}
		// C tor closes on EXTEND at a client (circuit_extend fails);
		// BEGIN and RESOLVE it drops, here they close too.
		return &ProtocolError{Msg: msg.Command.String() + " sent to a client"}
	case cell.RELAY_TRUNCATED:
		// Whatever the stream ID (C tor circuit_truncated).
		reason := cell.DestroyNone
		if len(msg.Data) > 0 {
			reason = cell.DestroyReason(msg.Data[0])
		}
		return &DestroyedError{Reason: reason, Truncated: true, Hop: hop}
	case cell.RELAY_DROP:
		c.dropped.padding.Add(1)
		return nil
	}
	if msg.StreamID == 0 {
		return c.handleControl(msg, hop, last)
	}
	switch msg.Command {
	case cell.RELAY_CONNECTED, cell.RELAY_DATA, cell.RELAY_END, cell.RELAY_RESOLVED,
		cell.RELAY_SENDME, cell.RELAY_XON, cell.RELAY_XOFF:
		return c.handleStreamMsg(msg, hop, last, digest)
	case cell.RELAY_EXTENDED, cell.RELAY_EXTENDED2:
		return &ProtocolError{Msg: msg.Command.String() + " with a stream ID"}
	}
	c.dropped.unknownCommand.Add(1)
	return nil
}

// handleControl handles a circuit-level (stream 0) message.
func (c *Circuit) handleControl(msg cell.RelayMsg, hop, last int) error {
	switch msg.Command {
	case cell.RELAY_EXTENDED2:
		c.mu.Lock()
		pd := c.pending
		if pd == nil || pd.cmd != cell.RELAY || hop != last {
			c.mu.Unlock()
			return &ProtocolError{Msg: "unexpected EXTENDED2"}
		}
		c.pending = nil
		c.mu.Unlock()
		hdata, err := cell.DecodeCreated2(msg.Data)
		if err != nil {
			return &ProtocolError{Msg: err.Error()}
		}
		return c.completeHop(pd, hdata)
	case cell.RELAY_EXTENDED:
		return &ProtocolError{Msg: "unexpected EXTENDED"} // we send EXTEND2 only
	case cell.RELAY_SENDME:
		return c.handleCircSendme(msg, hop, last)
	case cell.RELAY_DATA, cell.RELAY_END, cell.RELAY_CONNECTED, cell.RELAY_RESOLVED,
		cell.RELAY_XON, cell.RELAY_XOFF:
		// C tor drops these (DATA after counting it against the circuit
		// window); a stream message without a stream closes here.
		return &ProtocolError{Msg: msg.Command.String() + " with stream ID 0"}
	}
	if msg.Command >= 32 && msg.Command <= 40 {
		// Onion service messages (rend-spec-v3): only the circuit's
		// last hop, the introduction or rendezvous point, sends them
		// (C tor rend_process_relay_cell: layer_hint == cpath->prev).
		if hop != last {
			return &ProtocolError{Msg: fmt.Sprintf("onion service message %d from hop %d of %d", msg.Command, hop+1, last+1)}
		}
		msg.Data = append([]byte(nil), msg.Data...) // the cell is recycled
		select {
		case c.ctrl <- msg:
			return nil
		default:
			return &ProtocolError{Msg: "control message queue overflow"}
		}
	}
	c.dropped.unknownCommand.Add(1) // tor-spec §6.1: unknown commands are dropped
	return nil
}

// handleStreamMsg hands a stream message to its stream, which only the
// stream's hop may send (C tor relay_lookup_conn with edge_uses_cpath).
func (c *Circuit) handleStreamMsg(msg cell.RelayMsg, hop, last int, digest [20]byte) error {
	if msg.Command == cell.RELAY_DATA && hop == last {
		// The circuit window is the last hop's: DATA from another hop
		// is never legitimate and does not touch it.
		if err := c.delivered(digest); err != nil {
			return err
		}
	}
	c.mu.Lock()
	a, ok := c.streams[msg.StreamID]
	if !ok {
		h := c.half[msg.StreamID]
		if h == nil {
			c.mu.Unlock()
			c.dropped.unknownStream.Add(1)
			return nil
		}
		if hop != h.hop {
			c.mu.Unlock()
			return wrongHop(msg, hop, h.hop)
		}
		valid, forget := h.accept(msg.Command, now())
		if forget {
			delete(c.half, msg.StreamID)
		}
		c.mu.Unlock()
		if valid {
			c.dropped.halfClosed.Add(1)
		} else {
			c.dropped.unknownStream.Add(1)
		}
		return nil
	}
	c.mu.Unlock()
	if hop != a.hop {
		// A guard or middle speaking for the exit's stream (or, on a
		// rendezvous circuit, for the onion service).
		return wrongHop(msg, hop, a.hop)
	}
	if err := a.h.HandleRelay(msg); err != nil {
		return &ProtocolError{Msg: fmt.Sprintf("stream %d: %v", msg.StreamID, err), Err: err}
	}
	return nil
}

func wrongHop(msg cell.RelayMsg, hop, want int) error {
	return &ProtocolError{Msg: fmt.Sprintf("%v for stream %d from hop %d; the stream is at hop %d", msg.Command, msg.StreamID, hop+1, want+1)}
}
