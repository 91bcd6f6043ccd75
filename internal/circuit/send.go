package circuit

// Outbound relay cells: relay cell encoding and the forward crypto
// layers (tor-spec §6.1), RELAY_EARLY accounting (§5.6).

import (
	"errors"

	"github.com/gotor/gotor/internal/cell"
)

// MaxRelayEarly is the number of RELAY_EARLY cells a circuit may carry
// (tor-spec §5.6).
const MaxRelayEarly = 8

func (c *Circuit) send(cmd cell.Command, msg cell.RelayMsg) error {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.sendLocked(cmd, msg, false)
}

func (c *Circuit) sendLocked(cmd cell.Command, msg cell.RelayMsg, data bool) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	hops := c.layers()
	if len(hops) == 0 {
		return errors.New("circuit: no hops")
	}
	// The scratch payload is reused under smu: a local array escapes
	// through the crypto layers' interface calls (one allocation per
	// cell sent), and ep.Send copies it out before returning.
	p := &c.sendBuf
	if err := cell.EncodeRelay(p, msg); err != nil {
		return err
	}
	// EXTEND2 must travel in RELAY_EARLY; like C tor we also send the
	// first cells for hops beyond the first as RELAY_EARLY, to hide the
	// circuit length from the first hop (tor-spec §5.6).
	if cmd == cell.RELAY_EARLY && c.earlyLeft == 0 {
		return errors.New("circuit: no RELAY_EARLY cells left to extend with")
	}
	if len(hops) > 1 && c.earlyLeft > 0 {
		cmd = cell.RELAY_EARLY
	}
	if cmd == cell.RELAY_EARLY {
		c.earlyLeft--
	}
	d := hops.Encrypt(p, len(hops)-1)
	if data {
		c.sentData(d)
	}
	return c.ep.Send(cmd, p[:])
}
