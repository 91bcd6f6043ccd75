package guard

// What a controller changes while gotor runs: the guard restrictions
// (SETCONF EntryNodes/ExcludeNodes/NumEntryGuards; guard-spec §4.2, the
// filtered set follows the configuration, and §2, the state instance is
// chosen again) and the guards themselves (control-spec §3.25 DROPGUARDS,
// C tor's remove_all_entry_guards).

import "github.com/gotor/gotor/internal/path"

// Restrict replaces EntryNodes, ExcludeNodes and NumEntryGuards: the state
// instance, the sample and the primary guards are recomputed for the
// current NetDir and the state is saved. Attempts already made keep the
// guards they were given.
func (m *Manager) Restrict(entry, exclude *path.NodeSet, numEntryGuards int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.EntryNodes, m.cfg.ExcludeNodes, m.cfg.NumEntryGuards = entry, exclude, numEntryGuards
	if m.dir == nil {
		return
	}
	m.chooseInstance(m.dir, false)
	m.expandSample()
	m.updatePrimary()
	m.save()
}

// DropGuards forgets every sampled and confirmed guard, of every state
// instance, and samples new ones from the current NetDir; the state is
// saved. Circuits already built keep their guards.
func (m *Manager) DropGuards() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.sampled {
		e.primary = false
	}
	m.sampled, m.confirmed, m.primary = nil, nil, nil
	m.parked = make(map[string]*instance)
	if m.dir != nil {
		m.expandSample()
		m.updatePrimary()
	}
	m.save()
}
