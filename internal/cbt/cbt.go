// Package cbt learns the circuit build timeout (path-spec §2.4, "Learning
// when to give up ('timeout') on circuit construction"): the build times
// of the last 1000 three-hop circuits (§2.4.2), the tail of their
// distribution fitted with a Pareto curve whose Xm is the weighted
// average of the most frequent 10 ms bins (§2.4.3), the timeout and close
// timeout as its cbtquantile and cbtclosequantile points, a reset when
// most recent circuits time out (§2.4.5), no learning while the network
// is not live, the consensus parameters of §2.4.6, and the
// CircuitBuildTimeout and LearnCircuitBuildTimeout options. The history
// is persisted as C tor persists it, as a histogram (state.go).
//
// Arithmetic and edge cases follow C tor's circuitstats.c, whose unit
// test samples the tests reuse. An Estimator is not safe for concurrent
// use; its owner locks.
package cbt

import (
	"math"
	"slices"
	"time"
)

// Constants of path-spec §2.4.2 and C tor (circuitstats.h).
const (
	// NumObserved is the number of build times kept (CBT_NCIRCUITS_TO_OBSERVE).
	NumObserved = 1000
	// BinWidth is the histogram bin width (CBT_BIN_WIDTH).
	BinWidth = 10 * time.Millisecond

	binMS        = 10
	abandonedMS  = math.MaxInt32 - 1 // CBT_BUILD_ABANDONED: a circuit closed at the close timeout
	buildTimeMax = math.MaxInt32     // CBT_BUILD_TIME_MAX
)

// ParamFunc returns consensus parameter name, or def when absent, clamped
// to [min, max] (netdir.NetDir.Param has this signature).
type ParamFunc func(name string, def, min, max int32) int32

// Params are the consensus parameters of path-spec §2.4.6 together with
// the CircuitBuildTimeout and LearnCircuitBuildTimeout options.
type Params struct {
	Disabled       bool          // cbtdisabled, or LearnCircuitBuildTimeout 0: no learning
	NumModes       int           // cbtnummodes
	RecentCount    int           // cbtrecentcount
	MaxTimeouts    int           // cbtmaxtimeouts
	MinCircs       int           // cbtmincircs
	Quantile       float64       // cbtquantile / 100
	CloseQuantile  float64       // cbtclosequantile / 100 (at least Quantile)
	TestFreq       time.Duration // cbttestfreq
	MinTimeout     time.Duration // cbtmintimeout
	InitialTimeout time.Duration // cbtinitialtimeout, or CircuitBuildTimeout
	CloseFloor     time.Duration // cbtinitialtimeout: the least learned close timeout
	LearnTimeout   time.Duration // cbtlearntimeout
	MaxOpenCircs   int           // cbtmaxopencircs
}

// ParamsFrom reads the parameters from the consensus (get is
// netdir.NetDir.Param or equivalent), then applies the options: learn is
// LearnCircuitBuildTimeout; buildTimeout, when positive, is
// CircuitBuildTimeout, which replaces the initial timeout (and, without
// learning, is the only timeout; with learning it is raised to
// cbtmintimeout if lower), as C tor's
// circuit_build_times_get_initial_timeout does.
func ParamsFrom(get ParamFunc, learn bool, buildTimeout time.Duration) Params {
	const int32Max = math.MaxInt32
	ms := func(v int32) time.Duration { return time.Duration(v) * time.Millisecond }
	p := Params{
		Disabled:     get("cbtdisabled", 0, 0, 1) == 1 || !learn,
		NumModes:     int(get("cbtnummodes", 10, 1, 20)),
		RecentCount:  int(get("cbtrecentcount", 20, 3, 1000)),
		MaxTimeouts:  int(get("cbtmaxtimeouts", 18, 3, 10000)),
		MinCircs:     int(get("cbtmincircs", 100, 1, 10000)),
		TestFreq:     time.Duration(get("cbttestfreq", 10, 1, int32Max)) * time.Second,
		LearnTimeout: time.Duration(get("cbtlearntimeout", 180, 10, 60000)) * time.Second,
		MaxOpenCircs: int(get("cbtmaxopencircs", 10, 0, 14)),
	}
	q := get("cbtquantile", 80, 10, 99)
	p.Quantile = float64(q) / 100
	p.CloseQuantile = float64(max(get("cbtclosequantile", 99, 10, 99), q)) / 100
	minT := get("cbtmintimeout", binMS, binMS, int32Max)
	p.MinTimeout = ms(minT)
	p.InitialTimeout = ms(get("cbtinitialtimeout", 60*1000, minT, int32Max))
	p.CloseFloor = p.InitialTimeout
	if buildTimeout > 0 {
		p.InitialTimeout = buildTimeout
		if !p.Disabled && p.InitialTimeout < p.MinTimeout {
			p.InitialTimeout = p.MinTimeout
		}
	}
	return p
}

// Estimator is the learned circuit build timeout of one client.
type Estimator struct {
	p Params

	times [NumObserved]uint32 // milliseconds; 0 unused, abandonedMS for abandoned circuits
	idx   int                 // next slot of the circular array
	total int                 // slots used

	xm       uint32  // Pareto Xm, ms
	alpha    float64 // Pareto alpha
	timeout  time.Duration
	close    time.Duration
	computed bool

	// Network liveness (§2.4.5).
	recent          []bool // timed out after the first hop, per recent circuit
	recentIdx       int
	lastLive        time.Time
	nonliveTimeouts int
}

// New returns an estimator with no history: both timeouts are the
// initial timeout until MinCircs build times are known.
func New(p Params) *Estimator {
	e := &Estimator{p: p, timeout: p.InitialTimeout, close: p.InitialTimeout}
	if !p.Disabled {
		e.recent = make([]bool, p.RecentCount)
	}
	return e
}

// Timeout is how long a circuit may take to build before it is not used
// (it may go on building, as a measurement, until CloseTimeout).
func (e *Estimator) Timeout() time.Duration { return e.timeout }

// CloseTimeout is how long a circuit may take to build before it is
// abandoned.
func (e *Estimator) CloseTimeout() time.Duration { return e.close }

// Learned reports whether the timeouts come from build times rather than
// the initial timeout.
func (e *Estimator) Learned() bool { return e.computed }

// NeedsCircuits reports whether the client should build test circuits
// (every TestFreq, at most MaxOpenCircs at once) to learn a timeout.
func (e *Estimator) NeedsCircuits() bool {
	return !e.p.Disabled && e.total < e.p.MinCircs
}

// Built records a circuit that reached its third hop after took, the
// hops counted as path-spec §2.4.2 says (the first three hops of longer
// circuits; shorter circuits are not recorded). An implausible time
// (negative, or beyond twice the close timeout plus a second: a suspend)
// is ignored, and none is recorded while the network is not live
// (C tor: circuit_build_times_handle_completed_hop).
func (e *Estimator) Built(took time.Duration) {
	if e.p.Disabled {
		return
	}
	ms := took.Milliseconds()
	if ms < 0 || took > 2*e.close+time.Second {
		return
	}
	if e.live() {
		e.add(uint32(max(ms, 1)))
		e.setTimeout()
	}
	e.success()
}

// TimedOut records a circuit that passed Timeout while building;
// firstHop says whether it had completed its first hop. Too many of
// those among the last RecentCount circuits means the network changed:
// the history is discarded and the timeout goes back to the initial
// one, or doubles if it already was at least that (§2.4.5).
func (e *Estimator) TimedOut(firstHop bool) {
	if e.p.Disabled {
		return
	}
	if firstHop {
		e.recent[e.recentIdx] = true
		e.recentIdx = (e.recentIdx + 1) % len(e.recent)
	}
	e.checkChanged()
}

// Abandoned records a circuit closed at CloseTimeout, launched at
// started. If the network showed no activity since then, it is not live
// and nothing is recorded (the relays are not to blame); else the
// circuit counts as abandoned in the history.
func (e *Estimator) Abandoned(firstHop bool, started time.Time) {
	if e.p.Disabled {
		return
	}
	if e.lastLive.Before(started) {
		e.nonliveTimeouts++
	}
	if !e.live() {
		return
	}
	e.add(abandonedMS)
	e.setTimeout()
}

// NetworkLive notes network activity at now (a cell received): the
// network is live again.
func (e *Estimator) NetworkLive(now time.Time) {
	e.lastLive = now
	e.nonliveTimeouts = 0
}

func (e *Estimator) live() bool { return e.nonliveTimeouts == 0 }

func (e *Estimator) success() {
	e.recent[e.recentIdx] = false
	e.recentIdx = (e.recentIdx + 1) % len(e.recent)
}

func (e *Estimator) add(ms uint32) {
	e.times[e.idx] = ms
	e.idx = (e.idx + 1) % NumObserved
	if e.total < NumObserved {
		e.total++
	}
}

// reset discards the history, keeping the timeouts and liveness
// (circuit_build_times_reset).
func (e *Estimator) reset() {
	e.times = [NumObserved]uint32{}
	e.idx, e.total, e.computed = 0, 0, false
}

// checkChanged is circuit_build_times_network_check_changed.
func (e *Estimator) checkChanged() {
	n := 0
	for _, t := range e.recent {
		if t {
			n++
		}
	}
	if n < e.p.MaxTimeouts {
		return
	}
	e.reset()
	clear(e.recent)
	e.recentIdx = 0
	if e.timeout >= e.p.InitialTimeout {
		if e.timeout <= math.MaxInt32/2*time.Millisecond && e.close <= math.MaxInt32/2*time.Millisecond {
			e.timeout *= 2
			e.close *= 2
		}
	} else {
		e.timeout, e.close = e.p.InitialTimeout, e.p.InitialTimeout
	}
}

// maxTime is the largest recorded build time, abandoned ones aside.
func (e *Estimator) maxTime() uint32 {
	var m uint32
	for _, t := range e.times {
		if t != abandonedMS && t > m {
			m = t
		}
	}
	return m
}

// histogram counts the recorded times per 10 ms bin, abandoned aside:
// the non-empty bins in increasing order (sparse, as the bins span up
// to the largest build time while at most NumObserved are used).
func (e *Estimator) histogram() []Bin {
	var ts []uint32
	for _, t := range e.times {
		if t != 0 && t != abandonedMS {
			ts = append(ts, t/binMS)
		}
	}
	slices.Sort(ts)
	var h []Bin
	for _, b := range ts {
		if n := len(h); n > 0 && h[n-1].MS == b {
			h[n-1].Count++
		} else {
			h = append(h, Bin{MS: b, Count: 1})
		}
	}
	for i := range h {
		h[i].MS = binMid(int(h[i].MS))
	}
	return h
}

func binMid(bin int) uint32 { return uint32(bin)*binMS + binMS/2 }

// computeXm is §2.4.3's Xm: the count-weighted average of the midpoints
// of the NumModes most frequent bins, ties to the earlier bin
// (circuit_build_times_get_xm). 0 when nothing but abandoned circuits is
// recorded.
func (e *Estimator) computeXm() uint32 {
	h := e.histogram()
	var total, counts uint64
	for range e.p.NumModes {
		best := -1
		for i := range h {
			if h[i].Count > 0 && (best < 0 || h[i].Count > h[best].Count) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		counts += uint64(h[best].Count)
		total += uint64(h[best].MS) * uint64(h[best].Count)
		h[best].Count = 0
	}
	if counts == 0 {
		return 0
	}
	return uint32(total / counts)
}

// updateAlpha fits the Pareto curve (circuit_build_times_update_alpha):
// alpha = n / (Sum ln(max(Xm, x_i)) - n ln(Xm)) over the completed
// circuits; abandoned ones are not in the sum. It reports false when no
// Xm can be had.
func (e *Estimator) updateAlpha() bool {
	e.xm = e.computeXm()
	if e.xm == 0 {
		return false
	}
	lnXm := math.Log(float64(e.xm))
	var a float64
	n := 0
	for _, t := range e.times {
		switch {
		case t == 0 || t == abandonedMS:
		case t < e.xm:
			a += lnXm
			n++
		default:
			a += math.Log(float64(t))
			n++
		}
	}
	a -= float64(n) * lnXm
	e.alpha = float64(n) / a
	return true
}

// quantile is the Pareto quantile function Xm / (1-q)^(1/alpha), in ms,
// at most MaxInt32 (circuit_build_times_calculate_timeout).
func (e *Estimator) quantile(q float64) float64 {
	ret := float64(math.MaxInt32)
	if e.alpha > 0 {
		if p := math.Pow(1-q, 1/e.alpha); p > 0 {
			ret = float64(e.xm) / p
		}
	}
	return min(ret, math.MaxInt32)
}

// setTimeout recomputes both timeouts once MinCircs times are known
// (circuit_build_times_set_timeout): the timeout at most the largest
// build time seen, the close timeout at most twice that but at least
// cbtinitialtimeout, and the timeout at least cbtmintimeout.
func (e *Estimator) setTimeout() {
	if e.p.Disabled || e.total < e.p.MinCircs || !e.updateAlpha() {
		return
	}
	timeout := e.quantile(e.p.Quantile)
	closeT := e.quantile(e.p.CloseQuantile)
	mx := float64(e.maxTime())
	timeout = min(timeout, mx)
	if mx < math.MaxInt32/2 && closeT > 2*mx {
		closeT = 2 * mx
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	e.timeout, e.close = ms(timeout), max(ms(closeT), e.p.CloseFloor)
	if e.timeout < e.p.MinTimeout {
		e.timeout = e.p.MinTimeout
		if e.close < e.timeout {
			e.close = e.p.CloseFloor
		}
	}
	e.computed = true
}
