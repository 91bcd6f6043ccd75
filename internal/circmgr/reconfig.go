// Changing the pool's options while it runs (a controller's SETCONF
// MaxCircuitDirtiness, CircuitBuildTimeout, NewCircuitPeriod,
// EnableCircuitPrebuilding), and retiring every circuit when the node
// restrictions change (C tor's options_act: circuit_mark_all_unused_circs
// and circuit_mark_all_dirty_circs_as_unusable).

package circmgr

import "time"

// Settings are the options that may change while the manager runs; zero
// durations keep the default, as in Config.
type Settings struct {
	MaxCircuitDirtiness      time.Duration
	CircuitBuildTimeout      time.Duration
	NewCircuitPeriod         time.Duration
	EnableCircuitPrebuilding bool
}

// Reconfigure applies s: circuits are judged by the new dirtiness limit
// from the next housekeeping round on, builds started from now on get
// the new timeout.
func (m *Manager[C]) Reconfigure(s Settings) {
	def := Config{}
	def.setDefaults()
	pick := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	m.mu.Lock()
	m.cfg.MaxCircuitDirtiness = pick(s.MaxCircuitDirtiness, def.MaxCircuitDirtiness)
	m.cfg.CircuitBuildTimeout = pick(s.CircuitBuildTimeout, def.CircuitBuildTimeout)
	m.cfg.NewCircuitPeriod = pick(s.NewCircuitPeriod, def.NewCircuitPeriod)
	m.cfg.EnableCircuitPrebuilding = s.EnableCircuitPrebuilding
	m.mu.Unlock()
	m.poke()
}

// RetireAll marks every circuit, built or being built, unusable for new
// streams; streams on them go on, and they close once those are gone.
// Unlike NewIdentity the isolation epoch stays.
func (m *Manager[C]) RetireAll(reason string) {
	m.mu.Lock()
	for _, c := range m.circs {
		m.markUnusableLocked(c, reason)
	}
	for _, p := range m.pending {
		p.stale = true
	}
	m.expireLocked(m.cfg.Now())
	m.mu.Unlock()
	m.flushEvents()
	m.poke()
}
