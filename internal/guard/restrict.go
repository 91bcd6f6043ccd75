package guard

// Changing the guard restrictions while running (a controller's SETCONF
// EntryNodes/ExcludeNodes/NumEntryGuards): guard-spec §4.2 (the filtered
// set follows the configuration) and §2 (the state instance is chosen
// again for the new restrictions).

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
