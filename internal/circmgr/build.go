// Building circuits for the pool: launches within the failure budget,
// retiring and closing circuits (path-spec §2.2; C tor circuit_build_failed
// and mark_circuit_unusable_for_new_conns).

package circmgr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// roomLocked enforces MaxCircuits, first expiring what it can.
func (m *Manager[C]) roomLocked(now time.Time) error {
	if len(m.circs)+len(m.pending) < m.cfg.MaxCircuits {
		return nil
	}
	m.expireLocked(now)
	if len(m.circs)+len(m.pending) < m.cfg.MaxCircuits {
		return nil
	}
	return ErrTooManyCircuits
}

// launchLocked starts building a circuit for port.
func (m *Manager[C]) launchLocked(port uint16, purpose string, prebuild bool) *pendingBuild[C] {
	m.nextID++
	p := &pendingBuild[C]{
		id:       m.nextID,
		port:     port,
		purpose:  purpose,
		epoch:    m.epoch.Load(),
		prebuild: prebuild,
		done:     make(chan struct{}),
	}
	m.pending = append(m.pending, p)
	m.wg.Add(1)
	go m.build(p)
	return p
}

// build runs the attempts of one pending build, each on a new path with
// its own timeout, backing off between failures (path-spec §2.1.3).
func (m *Manager[C]) build(p *pendingBuild[C]) {
	defer m.wg.Done()
	var (
		c        C
		err      error
		wait     = m.cfg.RetryBackoff
		attempts int
	)
	for attempt := 1; attempt <= m.cfg.MaxBuildAttempts; attempt++ {
		attempts = attempt
		m.mu.Lock()
		if attempt > 1 {
			m.nextID++
			p.id = m.nextID
			m.m.Retries++
		}
		m.m.Builds++
		id := p.id
		timeout := m.cfg.CircuitBuildTimeout // Reconfigure may change it
		m.emitLocked(Event{Type: EventCircLaunched, CircID: id, Purpose: p.purpose, Port: p.port})
		m.mu.Unlock()
		m.flushEvents()
		if m.cfg.BuildTimeout != nil {
			if t := m.cfg.BuildTimeout(); t > 0 {
				timeout = t
			}
		}

		start := m.cfg.Now()
		ctx, cancel := context.WithTimeout(m.ctx, timeout)
		c, err = m.builder.Build(ctx, Usage{Port: p.port})
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		cancel()
		if m.cfg.OnBuild != nil {
			m.cfg.OnBuild(m.cfg.Now().Sub(start), err)
		}
		if err == nil && !allows(c, p.port) {
			c.Close()
			err = ErrExitRejectsPort
		}
		if err == nil {
			break
		}
		m.mu.Lock()
		m.m.BuildFailures++
		m.failures++
		m.emitLocked(Event{Type: EventCircFailed, CircID: id, Purpose: p.purpose, Port: p.port, Reason: err.Error()})
		m.mu.Unlock()
		m.flushEvents()
		m.cfg.Logger.Debug("circuit build failed", "circ", id, "attempt", attempt, "port", p.port, "err", err)
		if m.ctx.Err() != nil || attempt == m.cfg.MaxBuildAttempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, m.cfg.MaxRetryBackoff)
	}

	m.mu.Lock()
	if i := slices.Index(m.pending, p); i >= 0 {
		m.pending = slices.Delete(m.pending, i, i+1)
	}
	if err != nil {
		p.err = fmt.Errorf("%w (%d attempts, port %d): %w", errBuildAttemptsOut, attempts, p.port, err)
		close(p.done)
		m.mu.Unlock()
		return
	}
	now := m.cfg.Now()
	rc := &circ[C]{id: p.id, c: c, purpose: p.purpose, port: p.port, created: now, lastUsed: now}
	if m.closed {
		m.mu.Unlock()
		c.Close()
		p.err = ErrClosed
		close(p.done)
		return
	}
	m.circs[rc.id] = rc
	m.emitLocked(Event{Type: EventCircBuilt, CircID: rc.id, Purpose: p.purpose, Port: p.port})
	switch {
	case p.waiters > 0:
		// Streams are waiting: the circuit carries their binding and
		// is dirty from now; they attach as they wake.
		rc.binding = p.binding
		rc.dirtySince = now
		rc.reserved = p.waiters
		m.boundLocked(rc)
		if p.stale || p.epoch != m.epoch.Load() {
			m.markUnusableLocked(rc, "NEWNYM")
		} else {
			m.indexLocked(rc)
		}
	case p.stale || p.epoch != m.epoch.Load():
		// Built across a NEWNYM with nobody waiting: expiry closes it.
		m.markUnusableLocked(rc, "NEWNYM")
	default:
		// Nobody is waiting (prebuild, or every requester gave up): a
		// clean circuit (C tor circuit_try_clearing_isolation_state).
		rc.inClean = true
		m.clean = append(m.clean, rc)
	}
	p.circ = rc
	close(p.done)
	m.watch(rc)
	m.mu.Unlock()
	m.flushEvents()
	if p.prebuild {
		m.poke()
	}
}

// watch arranges for the pool to forget rc when it closes; no goroutine
// waits for that. Close stops the callbacks it can (m.mu held).
func (m *Manager[C]) watch(rc *circ[C]) {
	m.wg.Add(1)
	rc.unwatch = rc.c.AfterClose(func() {
		defer m.wg.Done()
		m.mu.Lock()
		m.forgetLocked(rc, "destroyed")
		m.mu.Unlock()
		m.flushEvents()
		m.poke()
	})
}

// forgetLocked drops every reference to rc (its keys leave the index).
func (m *Manager[C]) forgetLocked(rc *circ[C], reason string) {
	if rc.closed {
		return
	}
	rc.closed = true
	m.unindexLocked(rc)
	if rc.inClean {
		if i := slices.Index(m.clean, rc); i >= 0 {
			m.clean = slices.Delete(m.clean, i, i+1)
		}
		rc.inClean = false
	}
	if rc.binding.IsSet() {
		f := rc.binding.First().Flags()
		if m.byClass[f]--; m.byClass[f] <= 0 {
			delete(m.byClass, f)
		}
	}
	delete(m.circs, rc.id)
	m.m.Closed++
	m.emitLocked(Event{Type: EventCircClosed, CircID: rc.id, Purpose: rc.purpose, Port: rc.port, Reason: reason})
}

// closeLocked forgets rc and closes it (outside the lock).
func (m *Manager[C]) closeLocked(rc *circ[C], reason string, toClose *[]C) {
	if rc.closed {
		return
	}
	m.forgetLocked(rc, reason)
	*toClose = append(*toClose, rc.c)
}

func (m *Manager[C]) markUnusableLocked(c *circ[C], reason string) {
	if c.unusable {
		return
	}
	c.unusable = true
	m.unindexLocked(c)
	if c.inClean {
		if i := slices.Index(m.clean, c); i >= 0 {
			m.clean = slices.Delete(m.clean, i, i+1)
		}
		c.inClean = false
	}
	m.emitLocked(Event{Type: EventCircUnusable, CircID: c.id, Purpose: c.purpose, Reason: reason})
}

// Retire marks circuit id unusable for new streams (C tor
// mark_circuit_unusable_for_new_conns), e.g. after its exit refused a
// stream or a BEGIN timed out. Streams on it keep working; it closes once
// they are gone. Unknown IDs are ignored.
func (m *Manager[C]) Retire(id uint64, reason string) {
	m.mu.Lock()
	if c := m.circs[id]; c != nil {
		m.markUnusableLocked(c, reason)
	}
	m.mu.Unlock()
	m.flushEvents()
	m.poke()
}

// Ready returns once a clean circuit allowing u.Port exists, building one
// if needed (without binding it to any isolation key, unlike Get). It is
// meant for bootstrap ("a first circuit can be built").
func (m *Manager[C]) Ready(ctx context.Context, u Usage) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	for _, c := range m.clean {
		if !c.closed && !c.unusable && allows(c.c, u.Port) {
			m.mu.Unlock()
			return nil
		}
	}
	var p *pendingBuild[C]
	for _, q := range m.pending {
		if q.prebuild && q.waiters == 0 && !q.stale && q.port == u.Port {
			p = q
			break
		}
	}
	if p == nil {
		if err := m.roomLocked(m.cfg.Now()); err != nil {
			m.mu.Unlock()
			return err
		}
		p = m.launchLocked(u.Port, "PREBUILT", true)
	}
	m.mu.Unlock()
	m.flushEvents()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pendingBuild is a circuit being built, possibly with streams waiting
// for it. Its binding is the hypothetical isolation of those streams (C
// tor sets isolation on pending circuits as streams are assigned).
type pendingBuild[C Circuit] struct {
	id       uint64 // current attempt's circuit ID
	port     uint16
	purpose  string
	binding  isolation.Binding
	epoch    uint64
	stale    bool // NEWNYM happened: deliver to waiters, then unusable
	waiters  int
	prebuild bool // launched for a predicted port with no stream

	done chan struct{}
	circ *circ[C]
	err  error
}
