package circuit

// Circuit-level flow control (tor-spec §7.3): the package window that
// paces our RELAY_DATA cells, the deliver window that makes us send a
// SENDME every CircWindowIncrement cells, and authenticated SENDMEs
// (prop 289: SENDME v1 carries the digest of the cell it acknowledges).
// With congestion control (prop 324) the increment is the negotiated
// cc_sendme_inc; the window itself stays CircWindowStart.

import (
	"context"
	"crypto/subtle"

	"github.com/gotor/gotor/internal/cell"
)

// Flow-control constants (tor-spec §7.3).
const (
	CircWindowStart     = 1000
	CircWindowIncrement = 100
)

// SendRelay sends a relay message to the last hop. RELAY_DATA waits for
// the circuit package window (ctx bounds the wait).
func (c *Circuit) SendRelay(ctx context.Context, msg cell.Relay) error {
	if msg.Command != cell.RELAY_DATA {
		return c.send(cell.RELAY, msg)
	}
	for {
		c.smu.Lock()
		if c.packageWindow > 0 {
			err := c.sendLocked(cell.RELAY, msg, true)
			if c.packageWindow > 0 {
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
		if err := c.send(cell.RELAY, cell.Relay{Command: cell.RELAY_SENDME, Data: s.Encode()}); err != nil {
			return err
		}
		c.deliverWindow += c.sendmeInc
	}
	return nil
}

func (c *Circuit) handleCircSendme(msg cell.Relay, hop, last int) error {
	if hop != last {
		return &ProtocolError{Msg: "circuit SENDME from a middle hop"}
	}
	s, err := cell.DecodeSendme(msg.Data)
	if err != nil {
		return &ProtocolError{Msg: err.Error()}
	}
	c.smu.Lock()
	if len(c.sentDigests) == 0 || c.packageWindow+c.sendmeInc > CircWindowStart {
		c.smu.Unlock()
		return &ProtocolError{Msg: "unexpected circuit SENDME (window would exceed 1000)"}
	}
	want := c.sentDigests[0]
	c.sentDigests = c.sentDigests[1:]
	if s.Version == 1 && subtle.ConstantTimeCompare(s.Digest, want[:]) != 1 {
		c.smu.Unlock()
		return &ProtocolError{Msg: "authenticated SENDME digest mismatch"}
	}
	c.packageWindow += c.sendmeInc
	c.smu.Unlock()
	select {
	case c.windowOpen <- struct{}{}:
	default:
	}
	return nil
}
