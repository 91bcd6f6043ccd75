package channel

// Connection-level padding, keepalives and idle expiry of a client's
// channels.
//
// padding-spec §2 (netflow padding, proposal 251): a channel that has
// carried a multi-hop circuit sends a PADDING cell whenever it has been
// idle, in either direction, for a timeout drawn afresh after every
// cell from max(X, X) with X uniform on [nf_ito_low, nf_ito_high) ms
// (§2.3), so that a netflow record never sees it idle for 10 s; §2.5
// PADDING_NEGOTIATE (tor-spec §7.2): a client negotiates only to reduce
// or disable padding (ReducedConnectionPadding, ConnectionPadding 0) and
// must close a channel on which a relay sends one; §2.6 the nf_*
// consensus parameters.
//
// The decisions follow C tor, the reference the spec describes:
// channelpadding.c (channelpadding_get_netflow_inactive_timeout_ms,
// channelpadding_decide_to_pad_channel, the reduce and disable
// commands, channelpadding_get_channel_idle_timeout), channel.c
// channel_do_open_actions (a default client sends no PADDING_NEGOTIATE
// at all), relay.c circuit_update_channel_usage and circuitbuild.c
// (a channel is padded once it carries a circuit of more than one hop,
// or, with nf_pad_before_usage=0, once such a circuit carries a RELAY
// cell), and mainloop.c run_connection_housekeeping (a PADDING cell as
// keepalive after KeepalivePeriod without a write; a client channel
// without circuits closed after 3 to 4.5 minutes).
//
// One goroutine per channel (padLoop) sleeps until the next deadline;
// the data path only stores a monotonic timestamp per cell.

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gotor/gotor/internal/cell"
)

// minLinkProtoPadding is C tor's MIN_LINK_PROTO_FOR_CHANNEL_PADDING: a
// relay pads (and understands PADDING_NEGOTIATE) from link protocol 5.
const minLinkProtoPadding = 5

// PADDING_NEGOTIATE commands (tor-spec §7.2).
const (
	negotiateStop  = 1
	negotiateStart = 2
)

// Tunables, variables for tests.
var (
	// channelIdleBase is C tor's CONNTIMEOUT_CLIENTS_BASE: a client
	// channel without circuits closes after channelIdleBase plus a
	// random part of up to half of it.
	channelIdleBase = 180 * time.Second
)

// DefaultKeepalivePeriod is C tor's KeepalivePeriod default.
const DefaultKeepalivePeriod = 5 * time.Minute

var errIdle = errors.New("channel: closed: no circuits for the idle timeout")

// PaddingParams are the consensus parameters of connection padding
// (padding-spec §2.6), in milliseconds.
type PaddingParams struct {
	ItoLow, ItoHigh               int  // nf_ito_low, nf_ito_high
	ItoLowReduced, ItoHighReduced int  // nf_ito_low_reduced, nf_ito_high_reduced
	PadBeforeUsage                bool // nf_pad_before_usage
}

// ParamFunc returns consensus parameter name, or def when absent, clamped
// to [min, max] (netdir.NetDir.Param has this signature).
type ParamFunc func(name string, def, min, max int32) int32

// DefaultPaddingParams are the parameters of a consensus that sets none.
func DefaultPaddingParams() PaddingParams {
	return PaddingParamsFrom(func(_ string, def, _, _ int32) int32 { return def })
}

// PaddingParamsFrom reads the nf_* parameters with C tor's defaults and
// bounds (channelpadding_new_consensus_params): each high end is at least
// its low end.
func PaddingParamsFrom(param ParamFunc) PaddingParams {
	const maxMS = 60000
	var p PaddingParams
	p.ItoLow = int(param("nf_ito_low", 1500, 0, maxMS))
	p.ItoHigh = int(param("nf_ito_high", 9500, int32(p.ItoLow), maxMS))
	p.ItoLowReduced = int(param("nf_ito_low_reduced", 9000, 0, maxMS))
	p.ItoHighReduced = int(param("nf_ito_high_reduced", 14000, int32(p.ItoLowReduced), maxMS))
	p.PadBeforeUsage = param("nf_pad_before_usage", 1, 0, 1) == 1
	return p
}

// timeout draws the next inactivity timeout in milliseconds, 0 when the
// consensus disables padding (C tor
// channelpadding_get_netflow_inactive_timeout_ms): the larger of two
// uniform draws over [low, high), so that with both ends padding, each
// resetting its timer on the other's cells, the mean gap is near the
// middle of the range (padding-spec §2.3). A reduced channel uses the
// reduced range where it is higher. randN(n) is uniform on [0, n).
func (p PaddingParams) timeout(reduced bool, randN func(int) int) int {
	low, high := p.ItoLow, p.ItoHigh
	if low == 0 && high == 0 {
		return 0
	}
	if reduced && p.ItoLowReduced != 0 && p.ItoHighReduced != 0 {
		low, high = max(low, p.ItoLowReduced), max(high, p.ItoHighReduced)
	}
	if low >= high {
		return low
	}
	return low + max(randN(high-low), randN(high-low))
}

// PaddingMode is the ConnectionPadding option.
type PaddingMode int8

// Padding modes.
const (
	// PaddingAuto ("auto", the default): pad channels whose relay
	// supports padding (link protocol 5 or later).
	PaddingAuto PaddingMode = iota
	// PaddingAlways (1): pad even when the relay does not support it.
	PaddingAlways
	// PaddingNever (0): ask the relay to stop padding and never pad.
	PaddingNever
)

// PaddingConfig is the client's padding configuration: C tor's
// ConnectionPadding, ReducedConnectionPadding and KeepalivePeriod.
type PaddingConfig struct {
	Mode PaddingMode
	// Reduced pads less (the reduced nf_ito range), asks the relay to
	// stop padding, and halves the idle timeout of channels (for
	// mobile clients).
	Reduced bool
	// KeepalivePeriod: a PADDING cell goes out on any channel that has
	// written nothing for this long. Default DefaultKeepalivePeriod.
	KeepalivePeriod time.Duration
}

// padShared is what a Manager's channels read their padding settings
// from; the consensus parameters change under them.
type padShared struct {
	cfg    atomic.Pointer[PaddingConfig]
	params atomic.Pointer[PaddingParams]
}

func newPadShared() *padShared {
	s := &padShared{}
	s.cfg.Store(&PaddingConfig{})
	p := DefaultPaddingParams()
	s.params.Store(&p)
	return s
}

// Channel usage, as C tor's channel_usage_info_t.
const (
	usageNone        = iota // no circuit of more than one hop yet
	usageFullCircs          // a multi-hop circuit was extended through it
	usageUserTraffic        // a RELAY cell went out after that
)

// chanEpoch anchors monoNow's monotonic readings.
var chanEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(chanEpoch)) }

// padState is a channel's padding bookkeeping.
type padState struct {
	lastXfer  atomic.Int64 // monoNow of the last cell sent or received
	lastWrite atomic.Int64 // monoNow of the last cell sent
	usage     atomic.Int32
	wake      chan struct{} // capacity 1: re-evaluate deadlines
	sent      atomic.Uint64 // PADDING cells sent (padding and keepalives)
	recv      atomic.Uint64 // PADDING and VPADDING cells received

	// Under Channel.mu.
	lastHadCircs int64 // monoNow when the channel last had a circuit or was handed out
	started      bool
}

func (p *padState) init() {
	now := monoNow()
	p.lastXfer.Store(now)
	p.lastWrite.Store(now)
	p.lastHadCircs = now
	p.wake = make(chan struct{}, 1)
}

func (p *padState) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// noteSent records a cell written to the link. The caller holds the
// channel's write lock. A RELAY_EARLY cell is sent only by a circuit of
// more than one hop (circuit's send), as C tor marks the channel when it
// starts such a circuit; a RELAY cell after that is user traffic.
func (p *padState) noteSent(cmd cell.Command) {
	now := monoNow()
	p.lastXfer.Store(now)
	p.lastWrite.Store(now)
	switch cmd {
	case cell.RELAY_EARLY:
		if p.usage.Load() == usageNone {
			p.usage.Store(usageFullCircs)
			p.poke()
		}
	case cell.RELAY:
		if p.usage.Load() == usageFullCircs {
			p.usage.Store(usageUserTraffic)
			p.poke()
		}
	}
}

func (p *padState) noteReceived() { p.lastXfer.Store(monoNow()) }

// PaddingStats counts a channel's connection-level padding cells.
type PaddingStats struct {
	Sent     uint64 // PADDING cells sent: netflow padding and keepalives
	Received uint64 // PADDING and VPADDING cells received outside circuits
}

// PaddingStats returns the channel's padding counts.
func (c *Channel) PaddingStats() PaddingStats {
	return PaddingStats{Sent: c.pad.sent.Load(), Received: c.pad.recv.Load()}
}

// encodeNegotiate is a PADDING_NEGOTIATE body (tor-spec §7.2, C tor's
// trunnel channelpadding_negotiate): version 0, command, ito_low_ms,
// ito_high_ms.
func encodeNegotiate(cmd byte, low, high uint16) []byte {
	return []byte{0, cmd, byte(low >> 8), byte(low), byte(high >> 8), byte(high)}
}

// startPadding negotiates padding as C tor's channel_do_open_actions
// does and starts the channel's padding goroutine. Manager.Get calls it
// once on each channel it opens.
func (c *Channel) startPadding(sh *padShared) {
	c.mu.Lock()
	if c.pad.started || c.closed {
		c.mu.Unlock()
		return
	}
	c.pad.started = true
	c.pad.lastHadCircs = monoNow()
	c.mu.Unlock()

	cfg := *sh.cfg.Load()
	if cfg.KeepalivePeriod <= 0 {
		cfg.KeepalivePeriod = DefaultKeepalivePeriod
	}
	enabled := c.linkProto >= minLinkProtoPadding // C tor padding_enabled
	reduced := false
	if enabled || cfg.Mode == PaddingAlways {
		switch {
		case cfg.Mode == PaddingNever:
			enabled = false
			c.Send(&cell.Cell{Command: cell.PADDING_NEGOTIATE, Payload: encodeNegotiate(negotiateStop, 0, 0)})
		case cfg.Reduced:
			if enabled {
				c.Send(&cell.Cell{Command: cell.PADDING_NEGOTIATE, Payload: encodeNegotiate(negotiateStop, 0, 0)})
			}
			reduced = true
		}
	}
	idle := channelIdleBase + rand.N(channelIdleBase/2)
	if cfg.Reduced {
		idle /= 2
	}
	go c.padLoop(sh, cfg, enabled || cfg.Mode == PaddingAlways, reduced, idle)
}

// reserve marks the channel as just handed out for a new circuit, so
// that it is not closed as idle before the circuit attaches; false if
// the channel is closed.
func (c *Channel) reserve() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.pad.lastHadCircs = monoNow()
	return true
}

// noteCircuitGone records that a circuit left; c.mu is held.
func (c *Channel) noteCircuitGone() {
	if len(c.circs) == 0 {
		c.pad.lastHadCircs = monoNow()
		c.pad.poke()
	}
}

// padLoop sends netflow padding and keepalives and closes the channel
// once it has had no circuit for idle. It returns when the channel
// closes. mayPad is C tor's "padding_enabled or ConnectionPadding 1".
func (c *Channel) padLoop(sh *padShared, cfg PaddingConfig, mayPad, reduced bool, idle time.Duration) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	sampledFor, padAt := int64(-1), int64(-1)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		now := monoNow()
		next := now + int64(time.Hour)

		// Idle expiry (a client channel, C tor's CHANNEL_IS_CLIENT case).
		var expired bool
		var idleAt int64
		c.failWhen(errIdle, func() bool {
			if len(c.circs) > 0 {
				idleAt = -1
				return false
			}
			idleAt = c.pad.lastHadCircs + int64(idle)
			expired = now >= idleAt
			return expired
		})
		if expired {
			return
		}
		if idleAt >= 0 {
			next = min(next, idleAt)
		}

		// Keepalive: nothing written for KeepalivePeriod.
		lw := c.pad.lastWrite.Load()
		if ka := lw + int64(cfg.KeepalivePeriod); now >= ka {
			c.sendPaddingIf(func() bool { return c.pad.lastWrite.Load() == lw })
			continue
		} else {
			next = min(next, ka)
		}

		// Netflow padding: idle in both directions for the drawn timeout.
		if mayPad && c.padsForUsage(sh.params.Load()) {
			x := c.pad.lastXfer.Load()
			if x != sampledFor {
				sampledFor, padAt = x, -1
				if ms := sh.params.Load().timeout(reduced, rand.IntN); ms > 0 {
					padAt = x + int64(ms)*int64(time.Millisecond)
				}
			}
			if padAt >= 0 {
				if now >= padAt {
					c.sendPaddingIf(func() bool { return c.pad.lastXfer.Load() == x })
					continue
				}
				next = min(next, padAt)
			}
		}

		t.Reset(time.Duration(next - now))
		select {
		case <-c.done:
			return
		case <-t.C:
		case <-c.pad.wake:
			sampledFor = -1 // usage, circuits or parameters changed: decide afresh
		}
	}
}

// padsForUsage is C tor's channel_usage test: pad once a multi-hop
// circuit uses the channel (if nf_pad_before_usage), else once such a
// circuit carried user traffic.
func (c *Channel) padsForUsage(p *PaddingParams) bool {
	switch c.pad.usage.Load() {
	case usageFullCircs:
		return p.PadBeforeUsage
	case usageUserTraffic:
		return true
	}
	return false
}

// sendPaddingIf writes a PADDING cell unless unchanged reports, under the
// write lock, that the channel became active since the decision (the
// spec's "if another cell is sent for any reason before this timer
// expires, the timer is reset").
func (c *Channel) sendPaddingIf(unchanged func() bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !unchanged() {
		return
	}
	if c.sendLocked(&cell.Cell{Command: cell.PADDING}) == nil {
		c.pad.sent.Add(1)
	}
}
