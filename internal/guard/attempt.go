// Circuit attempts through guards: guard-spec §4.6 circuit states
// (usable_on_completion, usable_if_no_better_guard,
// waiting_for_better_guard, complete), §4.7 failure, §4.8 success, §4.9
// updating waiting circuits (NONPRIMARY_GUARD_CONNECT_TIMEOUT,
// NONPRIMARY_GUARD_IDLE_TIMEOUT) and the priority order of §4.3.

package guard

import (
	"context"
	"slices"
	"time"
)

// Status is the guard-spec §4.6 state of a circuit attempt.
type Status int

// Attempt states.
const (
	// StatusPending: the first hop has not been reported yet.
	StatusPending Status = iota
	// StatusWaiting: the circuit is built through a non-primary guard
	// and must not be used until better guards are known to be down
	// (waiting_for_better_guard).
	StatusWaiting
	// StatusUsable: the circuit may carry streams (complete).
	StatusUsable
	// StatusDiscard: the attempt failed, timed out waiting, or was
	// closed; do not use the circuit.
	StatusDiscard
)

func (s Status) String() string {
	return [...]string{"pending", "waiting", "usable", "discard"}[s]
}

type attemptState int

const (
	stateOnCompletion attemptState = iota // usable_on_completion
	stateIfNoBetter                       // usable_if_no_better_guard
	stateWaiting                          // waiting_for_better_guard
	stateComplete
	stateDone // failed or closed
)

// Attempt is one circuit's use of a guard. Its life:
//
//   - Report(true) once the circuit is built (C tor reports guard success
//     when the last hop is added);
//   - Report(false) when the guard itself failed: no TCP/TLS connection,
//     link handshake or CREATE2 failure at the first hop. Failures further
//     along the path do not implicate the guard: Close without Report;
//   - after Report(true), use the circuit for streams only once Usable
//     returns true (or Status is StatusUsable): a circuit through a
//     non-primary guard may have to wait for better guards (guard-spec
//     §4.9) and may end up discarded;
//   - Close (or CloseCircuit) when the circuit is closed.
//
// Path bias (pathbias.go) also counts the circuit's life on its Attempt:
// BuildAttempted, BuildSucceeded, UseAttempted, UseSucceeded, ... and
// CloseCircuit.
type Attempt struct {
	m        *Manager
	e        *entry
	usage    Usage
	state    attemptState
	started  time.Time // when picked
	changed  time.Time // when it entered its current state
	reported bool
	done     chan struct{} // closed on reaching complete or done
	ps       pathState     // path bias state of the circuit
}

func (m *Manager) newAttempt(e *entry, u Usage, st attemptState, now time.Time) *Attempt {
	e.lastTried = now
	a := &Attempt{m: m, e: e, usage: u, state: st, started: now, changed: now, done: make(chan struct{})}
	m.attempts[a] = struct{}{}
	return a
}

func (a *Attempt) setState(st attemptState, now time.Time) {
	if a.state == st {
		return
	}
	a.state, a.changed = st, now
	if st == stateComplete || st == stateDone {
		select {
		case <-a.done:
		default:
			close(a.done)
		}
	}
	if st == stateDone {
		delete(a.m.attempts, a)
	}
}

// Report records whether the circuit through the guard succeeded
// (guard-spec §4.7, §4.8). Only the first call counts.
func (a *Attempt) Report(success bool) {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.reported || a.state == stateDone {
		return
	}
	a.reported = true
	now := m.now()
	e := a.e
	if !success {
		e.reachable = reachNo
		if e.failingSince.IsZero() {
			e.failingSince = now
		}
		e.pending = false
		a.setState(stateDone, now)
		m.updateWaiting(now)
		return
	}
	e.reachable = reachYes
	e.failingSince = time.Time{}
	e.pending = false
	if !e.confirmed() && slices.Contains(m.sampled, e) {
		e.confirmedOn = m.randPast(now, m.lifetime()/10)
		m.confirmed = append(m.confirmed, e)
		m.updatePrimary()
		m.save()
	}
	internetWasDown := now.Sub(m.lastTimeOnInternet) > m.secs("guard-internet-likely-down-interval", defaultInternetDownSecs)
	m.lastTimeOnInternet = now
	switch {
	case a.state == stateOnCompletion || e.primary:
		// A guard that has just become primary by being confirmed
		// makes its circuit complete too (C tor
		// entry_guards_note_guard_success).
		a.setState(stateComplete, now)
	case a.state == stateIfNoBetter:
		a.setState(stateWaiting, now)
	}
	if !e.primary && internetWasDown {
		for _, p := range m.primary {
			p.reachable = reachMaybe
		}
	}
	m.updateWaiting(now)
}

// Close tells the Manager the circuit is gone, closed by us. An attempt
// closed before Report leaves the guard's reachability unchanged.
func (a *Attempt) Close() { a.CloseCircuit(false) }

// CloseCircuit is Close, saying whether the relay side ended the circuit
// (remote: a DESTROY or TRUNCATED, or its channel closed other than by
// us), which path bias counts as a collapsed circuit if it was built but
// never used (path-spec §7.1).
func (a *Attempt) CloseCircuit(remote bool) {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	a.pathBiasClose(remote)
	if a.state == stateDone {
		return
	}
	if !a.reported {
		a.e.pending = false
	}
	now := m.now()
	a.setState(stateDone, now)
	m.updateWaiting(now)
}

// Status returns the attempt's state after applying the waiting-circuit
// rules at the current time. It does not block.
func (a *Attempt) Status() Status {
	m := a.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updateWaiting(m.now())
	switch a.state {
	case stateComplete:
		return StatusUsable
	case stateWaiting:
		return StatusWaiting
	case stateDone:
		return StatusDiscard
	}
	return StatusPending
}

// Usable waits until the circuit may be used (true) or must be discarded
// (false). Call it after Report(true). It re-evaluates the waiting rules
// every second of real time and returns ctx.Err() if ctx ends first.
func (a *Attempt) Usable(ctx context.Context) (bool, error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		switch a.Status() {
		case StatusUsable:
			return true, nil
		case StatusDiscard:
			return false, nil
		case StatusPending:
			if !a.reportedLocked() {
				return false, nil // nothing reported yet: nothing to wait for
			}
		}
		select {
		case <-a.done:
		case <-t.C:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func (a *Attempt) reportedLocked() bool {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	return a.reported
}

// Housekeeping applies time-based rules (waiting-circuit timeouts and
// upgrades). Call it periodically, e.g. once a second; Pick, Report and
// Status also apply them.
func (m *Manager) Housekeeping() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.considerRetries(now)
	m.updateWaiting(now)
}

// higherPriority reports whether guard x is preferred to guard y
// (guard-spec §4.3).
func (m *Manager) higherPriority(x, y *entry) bool {
	xi, yi := slices.Index(m.confirmed, x), slices.Index(m.confirmed, y)
	switch {
	case xi >= 0 && yi >= 0:
		return xi < yi
	case xi >= 0:
		return true
	case yi >= 0:
		return false
	}
	if x.pending != y.pending {
		return x.pending
	}
	return x.lastTried.Before(y.lastTried)
}

// updateWaiting is guard-spec §4.9.
func (m *Manager) updateWaiting(now time.Time) {
	idle := m.secs("guard-nonprimary-guard-idle-timeout", defaultIdleTimeoutSecs)
	connect := m.secs("guard-nonprimary-guard-connect-timeout", defaultConnectTimeoutSecs)
	var waiting []*Attempt
	for a := range m.attempts {
		switch a.state {
		case stateWaiting:
			if now.Sub(a.changed) > idle {
				a.setState(stateDone, now)
				continue
			}
			waiting = append(waiting, a)
		case stateComplete:
			// A complete circuit only matters for blocking waiting
			// ones; forget it after the idle timeout even if the caller
			// never closes it.
			if now.Sub(a.changed) > idle {
				delete(m.attempts, a)
			}
		}
	}
	if len(waiting) == 0 {
		return
	}
	for _, p := range m.primary {
		if p.reachable != reachNo {
			return
		}
	}
	// Deterministic order: best guard first.
	slices.SortFunc(waiting, func(x, y *Attempt) int {
		switch {
		case m.higherPriority(x.e, y.e):
			return -1
		case m.higherPriority(y.e, x.e):
			return 1
		}
		return x.started.Compare(y.started)
	})
	for _, c1 := range waiting {
		blocked := false
		for c2 := range m.attempts {
			if c2 == c1 || !m.higherPriority(c2.e, c1.e) || !m.obeysRestrictionsOf(c2, c1) {
				continue
			}
			if c2.state == stateComplete || c2.state == stateWaiting ||
				(c2.state == stateIfNoBetter && now.Sub(c2.changed) <= connect) {
				blocked = true
				break
			}
		}
		if !blocked {
			c1.setState(stateComplete, now)
		}
	}
}

// obeysRestrictionsOf reports whether c2's guard satisfies the
// restrictions c1 was chosen under.
func (m *Manager) obeysRestrictionsOf(c2, c1 *Attempt) bool {
	if c1.usage.Restrict == nil && c1.usage.Dir == c2.usage.Dir {
		return true
	}
	_, ok, _ := m.obeys(c2.e, c1.usage)
	return ok
}
