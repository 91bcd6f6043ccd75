// Predicted circuits and expiry, the pool's background loop (path-spec
// §2.1.1 clean circuits for predicted ports; C tor MaxCircuitDirtiness and
// NewCircuitPeriod).

package circmgr

import (
	"slices"
	"time"
)

// NewIdentity is NEWNYM: every existing circuit (clean, in use or still
// being built) takes no new streams, and the epoch advances so streams
// from before and after never share. Streams already attached keep
// working; circuits close once their streams are gone.
func (m *Manager[C]) NewIdentity() {
	m.mu.Lock()
	m.epoch.Add(1)
	for _, c := range m.circs {
		m.markUnusableLocked(c, "NEWNYM")
	}
	for _, p := range m.pending {
		p.stale = true
	}
	m.expireLocked(m.cfg.Now())
	m.mu.Unlock()
	m.flushEvents()
	m.poke()
}

// expireLocked closes circuits that are useless now: unusable or dirty
// too long with no streams left (C tor
// circuit_expire_old_circuits_clientside), and clean circuits unused for
// CleanIdleTimeout.
func (m *Manager[C]) expireLocked(now time.Time) {
	var toClose []C
	for _, c := range m.circs {
		if c.closed || c.controller {
			continue
		}
		if !c.unusable && !c.dirtySince.IsZero() && now.Sub(c.dirtySince) >= m.cfg.MaxCircuitDirtiness {
			m.markUnusableLocked(c, "dirty")
		}
		if c.unusable {
			if len(c.streams) > 0 || c.reserved > 0 {
				continue
			}
			if c.untracked > 0 && now.Sub(c.lastUsed) < m.cfg.UntrackedIdleTimeout {
				continue
			}
			if sc, ok := any(c.c).(StreamCounter); ok && sc.NumStreams() > 0 {
				continue
			}
			m.closeLocked(c, "idle", &toClose)
			continue
		}
		if c.inClean && now.Sub(c.created) >= m.cfg.CleanIdleTimeout {
			m.closeLocked(c, "idle-clean", &toClose)
		}
	}
	if len(toClose) > 0 {
		// Close outside the lock: Close may block on the network.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for _, c := range toClose {
				c.Close()
			}
		}()
	}
}

// maintain is one round of housekeeping: reset the failure budget each
// NewCircuitPeriod, expire circuits, forget stale predicted ports and top
// up prebuilt circuits.
func (m *Manager[C]) maintain() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	now := m.cfg.Now()
	if now.Sub(m.periodAt) >= m.cfg.NewCircuitPeriod {
		m.periodAt, m.failures = now, 0
	}
	m.expireLocked(now)
	if m.cfg.EnableCircuitPrebuilding {
		for p, at := range m.predict {
			if now.Sub(at) >= m.cfg.PredictedPortTTL {
				delete(m.predict, p)
			}
		}
		m.prebuildLocked(now)
	}
	m.mu.Unlock()
	m.flushEvents()
}

// predictedPortsLocked lists the ports to keep circuits for.
func (m *Manager[C]) predictedPortsLocked() []uint16 {
	ports := make([]uint16, 0, len(m.predict))
	for p := range m.predict {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return ports
}

// prebuildLocked launches clean circuits until every predicted port is
// handled by MinCleanPerPort clean (or pending unbound) circuits, within
// MaxCleanCircuits and the failure budget (C tor
// circuit_predict_and_launch_new). It launches at most one circuit per
// call; a finished prebuild triggers the next round at once.
func (m *Manager[C]) prebuildLocked(now time.Time) {
	if m.failures >= m.cfg.MaxFailuresPerPeriod {
		return
	}
	unbound := 0
	for _, p := range m.pending {
		if p.prebuild && p.waiters == 0 && !p.stale {
			unbound++
		}
	}
	for _, port := range m.predictedPortsLocked() {
		n := 0
		for _, c := range m.clean {
			if !c.closed && !c.unusable && allows(c.c, port) {
				n++
			}
		}
		for _, p := range m.pending {
			if p.prebuild && p.waiters == 0 && !p.stale && p.port == port {
				n++
			}
		}
		if n < m.cfg.MinCleanPerPort {
			if len(m.clean)+unbound >= m.cfg.MaxCleanCircuits || len(m.circs)+len(m.pending) >= m.cfg.MaxCircuits {
				return
			}
			// Like C tor, launch one circuit per round: the next
			// round sees whether its exit covers other ports too.
			m.launchLocked(port, "PREBUILT", true)
			return
		}
	}
}

func (m *Manager[C]) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Manager[C]) loop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.MaintenanceInterval)
	defer t.Stop()
	m.maintain()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		m.maintain()
	}
}

// notePortLocked makes port predicted (C tor rep_hist_note_used_port).
func (m *Manager[C]) notePortLocked(port uint16, now time.Time) {
	if !m.cfg.EnableCircuitPrebuilding || port == 0 {
		return
	}
	if _, ok := m.predict[port]; !ok && len(m.predict) >= m.cfg.MaxPredictedPorts {
		// Evict the least recently used port.
		var old uint16
		var oldAt time.Time
		for p, at := range m.predict {
			if oldAt.IsZero() || at.Before(oldAt) {
				old, oldAt = p, at
			}
		}
		delete(m.predict, old)
	}
	m.predict[port] = now
}
