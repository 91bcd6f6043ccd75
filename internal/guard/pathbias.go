// Path bias: path-spec §7 (a guard that fails or chokes circuits to
// steer its users onto paths it likes shows up as a low success rate).
// Per guard, two pairs of counts: circuits extended to a second hop and
// circuits that then completed and closed well (§7.1), circuits a stream
// was attached to and circuits that carried one (§7.2); both scaled down
// by pb_multfactor/pb_scalefactor past pb_scalecircs and pb_scaleuse
// attempts, with the circuits still open taken out and put back (§7.3);
// a notice, warn and extreme rate below which the client logs once, and
// with pb_dropguards disables the guard (§7.4).
//
// The arithmetic, the order of its steps, the circuit path states and
// what counts follow C tor's circpathbias.c (pathbias_count_build_attempt,
// _build_success, _use_attempt, pathbias_mark_use_success, _rollback,
// pathbias_check_close, pathbias_measure_close_rate, _use_rate,
// pathbias_scale_close_rates, _use_rates) and entrynodes.c (the pb_*
// fields of the state file, entry_guard_passes_filter refusing a
// disabled guard). gotor does not send C tor's end-of-life probe on
// circuits whose streams all failed: they count as unusable.

package guard

import (
	"errors"
	"fmt"
	"math"
)

// ErrPathBias is returned by Attempt.BuildAttempted when path bias has
// disabled the guard (pb_dropguards): close the circuit.
var ErrPathBias = errors.New("guard: disabled for path bias")

// pathState is a circuit's path bias state (C tor path_state_t).
type pathState int8

const (
	psNew            pathState = iota // PATH_STATE_NEW_CIRC
	psBuildAttempted                  // extended to a second hop
	psBuildSucceeded                  // all hops built
	psUseAttempted                    // a stream was attached
	psUseSucceeded                    // a stream got its answer
	psUseFailed                       // a stream's answer showed tampering
	psCounted                         // closed and counted
	numPathStates
)

// pathBias is one guard's counts (C tor guard_pathbias_t). The counts are
// persistent; the flags are not (C tor recomputes them).
type pathBias struct {
	circAttempts, circSuccesses float64
	successfulClosed, collapsed float64
	unusable, timeouts          float64
	useAttempts, useSuccesses   float64

	disabled                 bool
	noticed, warned, extreme bool
	useNoticed, useExtreme   bool
	open                     [numPathStates]int // open circuits per state
}

// PathBiasCounts are a guard's path bias counts as the state file holds
// them (C tor's pb_* fields): the successes include the circuits still
// open. Disabled: path bias has disabled the guard.
type PathBiasCounts struct {
	CircAttempts, CircSuccesses, SuccessfulClosed, Collapsed, Unusable, Timeouts float64
	UseAttempts, UseSuccesses                                                    float64
	Disabled                                                                     bool
}

func (pb *pathBias) export() PathBiasCounts {
	return PathBiasCounts{pb.circAttempts, pb.circSuccesses, pb.closeSuccess(), pb.collapsed, pb.unusable,
		pb.timeouts, pb.useAttempts, pb.useSuccess(), pb.disabled}
}

// pbFields are the state file's path bias fields, in C tor's order.
var pbFields = []string{"pb_use_attempts", "pb_use_successes", "pb_circ_attempts", "pb_circ_successes",
	"pb_successful_circuits_closed", "pb_collapsed_circuits", "pb_unusable_circuits", "pb_timeouts"}

// field is the count a state-file field holds.
func (pb *pathBias) field(name string) *float64 {
	switch name {
	case "pb_use_attempts":
		return &pb.useAttempts
	case "pb_use_successes":
		return &pb.useSuccesses
	case "pb_circ_attempts":
		return &pb.circAttempts
	case "pb_circ_successes":
		return &pb.circSuccesses
	case "pb_successful_circuits_closed":
		return &pb.successfulClosed
	case "pb_collapsed_circuits":
		return &pb.collapsed
	case "pb_unusable_circuits":
		return &pb.unusable
	}
	return &pb.timeouts
}

func (pb *pathBias) openIn(from, to pathState) float64 {
	n := 0
	for s := from; s <= to; s++ {
		n += pb.open[s]
	}
	return float64(n)
}

// closeSuccess and useSuccess give the open circuits the benefit of the
// doubt (C tor pathbias_get_close_success_count, _use_success_count).
func (pb *pathBias) closeSuccess() float64 {
	return pb.successfulClosed + pb.openIn(psBuildSucceeded, psUseSucceeded)
}

func (pb *pathBias) useSuccess() float64 {
	return pb.useSuccesses + pb.openIn(psUseAttempted, psUseSucceeded)
}

// pbParams are the path-spec §7.4 consensus parameters, with C tor's
// defaults and bounds.
type pbParams struct {
	minCircs              float64
	notice, warn, extreme float64
	dropGuards            bool
	scaleCircs            float64
	scaleRatio            float64
	minUse                float64
	noticeUse, extremeUse float64
	scaleUse              float64
}

func (m *Manager) pbParams() pbParams {
	pct := func(name string, def int32) float64 { return float64(m.param(name, def, 0, 100)) / 100 }
	den := m.param("pb_scalefactor", 2, 2, math.MaxInt32)
	return pbParams{
		minCircs:   float64(m.param("pb_mincircs", 150, 5, math.MaxInt32)),
		notice:     pct("pb_noticepct", 70),
		warn:       pct("pb_warnpct", 50),
		extreme:    pct("pb_extremepct", 30),
		dropGuards: m.param("pb_dropguards", 0, 0, 1) == 1,
		scaleCircs: float64(m.param("pb_scalecircs", 300, 10, math.MaxInt32)),
		scaleRatio: float64(m.param("pb_multfactor", 1, 1, int32(den))) / float64(den),
		minUse:     float64(m.param("pb_minuse", 20, 3, math.MaxInt32)),
		noticeUse:  pct("pb_noticeusepct", 80),
		extremeUse: pct("pb_extremeusepct", 60),
		scaleUse:   float64(m.param("pb_scaleuse", 100, 10, math.MaxInt32)),
	}
}

// setPathState moves the attempt's circuit to st, keeping the guard's
// open-circuit counts.
func (a *Attempt) setPathState(st pathState) {
	pb := &a.e.pb
	if a.ps != psNew && a.ps != psCounted {
		pb.open[a.ps]--
	}
	a.ps = st
	if st != psNew && st != psCounted {
		pb.open[st]++
	}
}

func (m *Manager) describe(e *entry, pb *pathBias) string {
	return fmt.Sprintf("%s: success counts %.0f/%.0f, use counts %.0f/%.0f; %.0f circuits completed, %.0f were unusable, %.0f collapsed, %.0f timed out",
		e, pb.closeSuccess(), pb.circAttempts, pb.useSuccess(), pb.useAttempts,
		pb.circSuccesses, pb.unusable, pb.collapsed, pb.timeouts)
}

// measureCloseRate is C tor's pathbias_measure_close_rate. The strict <
// comparisons let a rate of 0 turn a level off.
func (m *Manager) measureCloseRate(e *entry, p pbParams) {
	pb := &e.pb
	if pb.circAttempts <= p.minCircs {
		return
	}
	rate := pb.closeSuccess() / pb.circAttempts
	switch {
	case rate < p.extreme:
		if p.dropGuards {
			if !pb.disabled {
				m.logf("guard: guard %s is failing an extremely large amount of circuits; to avoid potential route manipulation attacks, gotor has disabled use of this guard (path bias). %s", e, m.describe(e, pb))
				m.disable(e)
			}
		} else if !pb.extreme {
			pb.extreme = true
			m.logf("guard: guard %s is failing an extremely large amount of circuits: this could indicate a route manipulation attack, extreme network overload, or a bug (path bias). %s", e, m.describe(e, pb))
		}
	case rate < p.warn:
		if !pb.warned {
			pb.warned = true
			m.logf("guard: guard %s is failing a very large amount of circuits: most likely the network is overloaded, but it could also be an attack against you or the guard (path bias). %s", e, m.describe(e, pb))
		}
	case rate < p.notice:
		if !pb.noticed {
			pb.noticed = true
			m.noticef("guard: guard %s is failing more circuits than usual: most likely the network is overloaded (path bias). %s", e, m.describe(e, pb))
		}
	}
}

// measureUseRate is C tor's pathbias_measure_use_rate.
func (m *Manager) measureUseRate(e *entry, p pbParams) {
	pb := &e.pb
	if pb.useAttempts <= p.minUse {
		return
	}
	rate := pb.useSuccess() / pb.useAttempts
	switch {
	case rate < p.extremeUse:
		if p.dropGuards {
			if !pb.disabled {
				m.logf("guard: guard %s is failing to carry an extremely large amount of streams on its circuits; to avoid potential route manipulation attacks, gotor has disabled use of this guard (path bias). %s", e, m.describe(e, pb))
				m.disable(e)
			}
		} else if !pb.useExtreme {
			pb.useExtreme = true
			m.logf("guard: guard %s is failing to carry an extremely large amount of streams on its circuits: this could indicate a route manipulation attack, network overload, bad local network connectivity, or a bug (path bias). %s", e, m.describe(e, pb))
		}
	case rate < p.noticeUse:
		if !pb.useNoticed {
			pb.useNoticed = true
			m.noticef("guard: guard %s is failing to carry more streams on its circuits than usual: most likely the network is overloaded or your connection is poor (path bias). %s", e, m.describe(e, pb))
		}
	}
}

// disable takes the guard out of {FILTERED_GUARDS} (C tor
// entry_guard_passes_filter) and recomputes the primary guards.
func (m *Manager) disable(e *entry) {
	e.pb.disabled = true
	m.updatePrimary()
	m.dirty = true
}

// scaleCloseRates is C tor's pathbias_scale_close_rates.
func scaleCloseRates(pb *pathBias, p pbParams) {
	if pb.circAttempts <= p.scaleCircs {
		return
	}
	openAttempts := pb.openIn(psBuildAttempted, psBuildAttempted)
	openBuilt := pb.openIn(psBuildSucceeded, psUseFailed)
	pb.circAttempts -= openAttempts + openBuilt
	pb.circSuccesses -= openBuilt
	for _, v := range []*float64{&pb.circAttempts, &pb.circSuccesses, &pb.timeouts,
		&pb.successfulClosed, &pb.collapsed, &pb.unusable} {
		*v *= p.scaleRatio
	}
	pb.circAttempts += openAttempts + openBuilt
	pb.circSuccesses += openBuilt
}

// scaleUseRates is C tor's pathbias_scale_use_rates.
func scaleUseRates(pb *pathBias, p pbParams) {
	if pb.useAttempts <= p.scaleUse {
		return
	}
	open := pb.openIn(psUseAttempted, psUseSucceeded)
	pb.useAttempts -= open
	pb.useAttempts *= p.scaleRatio
	pb.useSuccesses *= p.scaleRatio
	pb.useAttempts += open
}

// The circuit's side. A circuit counts for path bias if the caller
// reports its steps: C tor counts every circuit of more than one hop
// whose path the client chose, not one-hop directory circuits, not
// introduction circuits (the service chose the last hop's link
// specifiers and a web page can make the client connect to many), not a
// circuit whose hops a controller picked.

// BuildAttempted records that the circuit is being extended to its second
// hop (path-spec §7.1; C tor pathbias_count_build_attempt, called as the
// second EXTEND goes out). It returns ErrPathBias if the guard's
// success rate has made path bias disable it: close the circuit then.
func (a *Attempt) BuildAttempted() error {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.ps != psNew {
		return nil
	}
	a.setPathState(psBuildAttempted)
	p := m.pbParams()
	e := a.e
	m.measureCloseRate(e, p)
	if e.pb.disabled {
		return ErrPathBias
	}
	scaleCloseRates(&e.pb, p)
	e.pb.circAttempts++
	m.dirty = true
	return nil
}

// BuildSucceeded records that every hop of the circuit was built
// (pathbias_count_build_success).
func (a *Attempt) BuildSucceeded() {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.ps != psBuildAttempted {
		return
	}
	a.setPathState(psBuildSucceeded)
	a.e.pb.circSuccesses++
	m.dirty = true
}

// BuildTimedOut records a circuit given up for taking too long
// (pathbias_count_timeout; informational).
func (a *Attempt) BuildTimedOut() {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.ps == psUseSucceeded || a.ps == psCounted {
		return
	}
	a.e.pb.timeouts++
	m.dirty = true
}

// UseAttempted records a stream attached to the circuit (path-spec §7.2;
// pathbias_count_use_attempt): counted once per circuit.
func (a *Attempt) UseAttempted() {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	a.useAttemptedLocked()
}

func (a *Attempt) useAttemptedLocked() {
	if a.ps < psBuildSucceeded || a.ps >= psUseAttempted {
		return
	}
	m, e := a.m, a.e
	p := m.pbParams()
	m.measureUseRate(e, p)
	scaleUseRates(&e.pb, p)
	e.pb.useAttempts++
	m.dirty = true
	a.setPathState(psUseAttempted)
}

// UseSucceeded records that a stream on the circuit got the answer it
// expected: CONNECTED, RESOLVED, or an END whose reason the exit must
// have sent (not TORPROTOCOL, DESTROY or INTERNAL); pathbias_mark_use_success.
// The guard's count moves when the circuit closes.
func (a *Attempt) UseSucceeded() {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.ps == psCounted || a.ps == psNew {
		return
	}
	if a.ps < psUseAttempted {
		a.useAttemptedLocked()
	}
	a.setPathState(psUseSucceeded)
}

// UseFailed records a stream answer that points at tampering: an END
// with reason TORPROTOCOL or DESTROY (C tor then fails the circuit).
func (a *Attempt) UseFailed() {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.ps >= psBuildSucceeded && a.ps != psCounted {
		a.setPathState(psUseFailed)
	}
}

// UseRolledBack records a stream that timed out or was retried
// elsewhere after an earlier success on the circuit
// (pathbias_mark_use_rollback): the circuit is again only attempted.
func (a *Attempt) UseRolledBack() {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.ps == psUseSucceeded {
		a.setPathState(psUseAttempted)
	}
}

// pathBiasClose is C tor's pathbias_check_close, without the probe.
// remote: the relay side ended the circuit (DESTROY, TRUNCATED) or its
// channel closed other than by us.
func (a *Attempt) pathBiasClose(remote bool) {
	pb := &a.e.pb
	switch a.ps {
	case psNew, psBuildAttempted, psCounted:
		a.setPathState(psCounted)
		return
	case psBuildSucceeded:
		if remote {
			pb.collapsed++
		} else {
			pb.successfulClosed++
		}
	case psUseAttempted, psUseFailed:
		pb.unusable++
	case psUseSucceeded:
		pb.successfulClosed++
		pb.useSuccesses++
	}
	a.setPathState(psCounted)
	a.m.dirty = true
}

// Flush writes the state file if path bias counts changed since the last
// write (they are otherwise written at most every 10 minutes). Call it
// on shutdown.
func (m *Manager) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirty {
		m.save()
	}
}
