package circuit

// Circuit-level flow control (tor-spec §7.3) and congestion control
// (prop 324): how many RELAY_DATA cells we may have in flight is decided
// by a congestion.Controller, the fixed 1000-cell window or, once
// negotiated with the last hop, TOR_VEGAS (prop 324 §3.3) fed with the
// RTT of every SENDME. SENDMEs are authenticated (prop 289: SENDME v1
// carries the digest of the cell it acknowledges, so we keep the digest,
// and the send time, of every cell that elicits one). Inbound, the
// deliver window makes us send a SENDME every CircWindowIncrement cells,
// or every negotiated cc_sendme_inc cells.
//
// Hostile SENDMEs have defined outcomes, each a protocol violation that
// closes the circuit: a SENDME from a middle hop, one that acknowledges
// cells we never sent (no digest awaiting one, C tor's "no cell digests
// to match"), one whose digest differs from the cell's, and, on a
// congestion-controlled circuit, a SENDME v0 (no digest to check).
//
// A SENDME of a version below the consensus parameter
// sendme_accept_min_version (tor-spec §7.3.1, param-spec) closes the
// circuit too.

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/congestion"
)

// Flow-control constants (tor-spec §7.3).
const (
	CircWindowStart     = congestion.FixedWindow
	CircWindowIncrement = congestion.FixedIncrement
)

// awaitingSendme is a sent cell the other end will acknowledge with a
// SENDME: its digest (prop 289) and when it was sent (prop 324 §2.1).
type awaitingSendme struct {
	digest [20]byte
	at     time.Time
}

// SendRelay sends a relay message to the last hop. RELAY_DATA waits for
// the circuit's congestion window (ctx bounds the wait).
func (c *Circuit) SendRelay(ctx context.Context, msg cell.RelayMsg) error {
	if msg.Command != cell.RELAY_DATA {
		return c.send(cell.RELAY, msg)
	}
	for {
		c.smu.Lock()
		if c.fc.Window() > 0 {
			err := c.sendLocked(cell.RELAY, msg, true)
			if c.fc.Window() > 0 {
				// Pass the wake-up on to other waiting senders.
				select {
				case c.windowOpen <- struct{}{}:
				default:
				}
			}
			c.smu.Unlock()
			return err
		}
		c.smu.Unlock()
		select {
		case <-c.windowOpen:
		case <-c.done:
			return c.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sentData accounts one RELAY_DATA cell with digest d; smu held.
func (c *Circuit) sentData(d [20]byte) {
	if c.fc.Sent() {
		c.awaiting = append(c.awaiting, awaitingSendme{digest: d, at: time.Now()})
	}
}

// delivered counts one inbound RELAY_DATA cell (of any stream) against
// the deliver window and, every sendmeInc cells, sends an authenticated
// SENDME v1 with the cell's digest. Reader goroutine only.
func (c *Circuit) delivered(digest [20]byte) error {
	c.deliverWindow--
	if c.deliverWindow < 0 {
		return &ProtocolError{Msg: "circuit deliver window exceeded"}
	}
	if c.deliverWindow <= CircWindowStart-c.sendmeInc {
		s := &cell.Sendme{Version: 1, Digest: digest[:]}
		if err := c.send(cell.RELAY, cell.RelayMsg{Command: cell.RELAY_SENDME, Data: s.Encode()}); err != nil {
			return err
		}
		c.deliverWindow += c.sendmeInc
	}
	return nil
}

// SetSendmeAcceptMinVersion sets the lowest circuit SENDME version the
// circuit accepts: the consensus parameter sendme_accept_min_version
// (param-spec: 0 to 255, default 0, which accepts unauthenticated
// SENDME v0; the public network sets 1). A SENDME below it closes the
// circuit (tor-spec §7.3.1). Set it right after Create, before data
// flows.
func (c *Circuit) SetSendmeAcceptMinVersion(v int) {
	c.smu.Lock()
	c.minSendme = min(max(v, 0), 255)
	c.smu.Unlock()
}

func (c *Circuit) handleCircSendme(msg cell.RelayMsg, hop, last int) error {
	now := time.Now()
	if hop != last {
		return &ProtocolError{Msg: "circuit SENDME from a middle hop"}
	}
	s, err := cell.DecodeSendme(msg.Data)
	if err != nil {
		return &ProtocolError{Msg: err.Error()}
	}
	c.smu.Lock()
	if int(s.Version) < c.minSendme {
		c.smu.Unlock()
		return &ProtocolError{Msg: fmt.Sprintf("SENDME version %d below sendme_accept_min_version %d", s.Version, c.minSendme)}
	}
	if len(c.awaiting) == 0 {
		c.smu.Unlock()
		return &ProtocolError{Msg: "unexpected circuit SENDME: no cell awaits one"}
	}
	want := c.awaiting[0]
	c.awaiting = c.awaiting[1:]
	switch {
	case s.Version == 0 && c.cc:
		c.smu.Unlock()
		return &ProtocolError{Msg: "SENDME v0 on a congestion-controlled circuit"}
	case s.Version == 1 && subtle.ConstantTimeCompare(s.Digest, want.digest[:]) != 1:
		c.smu.Unlock()
		return &ProtocolError{Msg: "authenticated SENDME digest mismatch"}
	}
	if err := c.fc.OnSendme(want.at, now); err != nil {
		c.smu.Unlock()
		return &ProtocolError{Msg: "unexpected circuit SENDME", Err: err}
	}
	c.smu.Unlock()
	select {
	case c.windowOpen <- struct{}{}:
	default:
	}
	return nil
}

// CongestionControl reports whether congestion control was negotiated
// with the last hop (NtorV3CC accepted) and the circuit's SENDME
// increment (the negotiated cc_sendme_inc, else CircWindowIncrement).
func (c *Circuit) CongestionControl() (enabled bool, sendmeInc int) {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.cc, c.sendmeInc
}

// Vegas returns the state of the circuit's TOR_VEGAS controller; ok is
// false on a circuit with fixed windows.
func (c *Circuit) Vegas() (st congestion.VegasState, ok bool) {
	c.smu.Lock()
	defer c.smu.Unlock()
	v, ok := c.fc.(*congestion.Vegas)
	if !ok {
		return st, false
	}
	return v.State(), true
}
