package circuit

// Half-closed streams and dropped cells. tor-spec §6.3: after sending
// END, "the sender SHOULD remember how many cells of which types
// (CONNECTED, SENDME, DATA) that it would have accepted on that stream".
// As C tor (connection_half_edge_add and connection_half_edge_is_valid_*
// in connection_edge.c, used by handle_relay_cell_command in relay.c),
// a stream we ended stays known to its circuit: the cells its exit sent
// before it saw our END are accepted and dropped, up to what the
// stream's windows allowed; an END or RESOLVED forgets it. Cells beyond
// that, for streams the circuit never had, and relay commands a client
// does not use are dropped as C tor drops them, but counted (Dropped):
// a relay that sends cells the client silently drops can use them as a
// covert signal ("dropmark"), and the counts make that visible. What C
// tor closes the circuit on is a ProtocolError here (see dispatch.go).

import (
	"sync/atomic"
	"time"

	"github.com/gotor/gotor/internal/cell"
)

// InFlight is what the exit may still send on a stream after we ended
// it (C tor's half_edge_t).
type InFlight struct {
	// Connected: the stream was still waiting for CONNECTED.
	Connected bool
	// Data is the number of DATA cells the exit may still send: the
	// stream's deliver window (0 for a RESOLVE).
	Data int
	// Sendmes is the number of stream SENDMEs the exit may still send:
	// (StreamWindowStart - package window) / StreamWindowIncrement.
	Sendmes int
	// CC: the stream used congestion control (prop 324), so it has no
	// windows; DATA, XON and XOFF are accepted for HalfClosedCCTime.
	CC bool
}

const (
	// MaxHalfClosed bounds the half-closed streams a circuit remembers;
	// past it the oldest is forgotten (its late cells then count as
	// dropped). Their stream IDs are not reused while remembered.
	MaxHalfClosed = 1024
	// HalfClosedCCTime is how long a congestion-controlled stream
	// accepts cells after we ended it: C tor's bound is the larger of
	// the circuit build timeout and the stream's maximum RTT, and the
	// build timeout starts at 60 s (CBT_DEFAULT_TIMEOUT_INITIAL_VALUE).
	HalfClosedCCTime = 60 * time.Second
)

// now is the clock of HalfClosedCCTime (a test replaces it).
var now = time.Now

type halfStream struct {
	InFlight
	hop   int
	until time.Time // CC only
	seq   uint64
}

// halfKey orders half-closed streams for MaxHalfClosed.
type halfKey struct {
	id  uint16
	seq uint64
}

// accept reports whether the half-closed stream may still receive cmd,
// counting it off, and whether the stream is now forgotten (END and
// RESOLVED close it for good). Called with c.mu held.
func (h *halfStream) accept(cmd cell.RelayCommand, now time.Time) (ok, forget bool) {
	switch cmd {
	case cell.RELAY_END, cell.RELAY_RESOLVED:
		return true, true
	case cell.RELAY_CONNECTED:
		ok, h.Connected = h.Connected, false
		return ok, false
	case cell.RELAY_SENDME:
		if h.CC || h.Sendmes == 0 {
			return false, false
		}
		h.Sendmes--
		return true, false
	case cell.RELAY_DATA, cell.RELAY_XON, cell.RELAY_XOFF:
		// C tor counts XON and XOFF as data (connection_half_edge_is_valid_data).
		if h.CC {
			return now.Before(h.until), false
		}
		if h.Data == 0 {
			return false, false
		}
		h.Data--
		return true, false
	}
	return false, false
}

// EndStream detaches stream id, which we ended (we send END, or gave up
// waiting for a RESOLVED), and remembers what its exit may still send
// (tor-spec §6.3). Call it before sending the END.
func (c *Circuit) EndStream(id uint16, f InFlight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.streams[id]
	if !ok || c.err != nil {
		return
	}
	delete(c.streams, id)
	c.halfSeq++
	h := &halfStream{InFlight: f, hop: a.hop, seq: c.halfSeq}
	if f.CC {
		h.until = now().Add(HalfClosedCCTime)
	}
	if c.half == nil {
		c.half = map[uint16]*halfStream{}
	}
	c.half[id] = h
	c.halfOrder = append(c.halfOrder, halfKey{id, h.seq})
	for len(c.half) > MaxHalfClosed {
		k := c.halfOrder[0]
		c.halfOrder = c.halfOrder[1:]
		if e := c.half[k.id]; e != nil && e.seq == k.seq {
			delete(c.half, k.id)
		}
	}
	if len(c.halfOrder) > 2*MaxHalfClosed {
		// Drop the entries of streams forgotten by END or RESOLVED.
		live := c.halfOrder[:0]
		for _, k := range c.halfOrder {
			if e := c.half[k.id]; e != nil && e.seq == k.seq {
				live = append(live, k)
			}
		}
		c.halfOrder = append([]halfKey(nil), live...)
	}
}

// NumHalfClosed returns the number of half-closed streams remembered.
func (c *Circuit) NumHalfClosed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.half)
}

// Dropped counts the relay cells a circuit received and dropped without
// effect.
type Dropped struct {
	// UnknownStream: stream messages for a stream the circuit does not
	// have, or beyond what a half-closed stream may still receive.
	UnknownStream uint64
	// UnknownCommand: relay commands a client does not use.
	UnknownCommand uint64
	// HalfClosed: cells a half-closed stream could still receive
	// (expected, not suspicious).
	HalfClosed uint64
	// Padding: RELAY_DROP cells (long-range padding, tor-spec §6.1).
	Padding uint64
}

// dropCounts are the circuit's Dropped counters.
type dropCounts struct {
	unknownStream, unknownCommand, halfClosed, padding atomic.Uint64
}

// Dropped returns the counts of cells the circuit dropped so far.
func (c *Circuit) Dropped() Dropped {
	return Dropped{
		UnknownStream:  c.dropped.unknownStream.Load(),
		UnknownCommand: c.dropped.unknownCommand.Load(),
		HalfClosed:     c.dropped.halfClosed.Load(),
		Padding:        c.dropped.padding.Load(),
	}
}
