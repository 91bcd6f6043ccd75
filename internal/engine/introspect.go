package engine

import (
	"fmt"
)

// Circuits lists the circuits of the exit pool.
func (c *Engine) Circuits() []CircuitInfo {
	if c.circs == nil {
		return nil
	}
	var out []CircuitInfo
	for _, in := range c.circs.Circuits() {
		ci := CircuitInfo{ID: in.ID, State: in.State, Purpose: in.Purpose, Streams: in.Streams}
		if ec, ok := c.circs.Lookup(in.ID); ok {
			ci.CongestionControl, _ = ec.CongestionControl()
			for _, r := range ec.relays {
				ci.Path = append(ci.Path, Hop{Fingerprint: fmt.Sprintf("%X", r.RSAID), Nickname: r.Nickname, Addr: r.ORAddrPort().String()})
			}
		}
		out = append(out, ci)
	}
	return out
}
