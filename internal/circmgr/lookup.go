package circmgr

// Lookup returns the live circuit with manager id id (as in Info.ID,
// Attachment.CircID and Event.CircID), for callers that describe circuits
// (the control port's circuit-status needs each circuit's path).
func (m *Manager[C]) Lookup(id uint64) (C, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.circs[id]; ok && !c.closed {
		return c.c, true
	}
	var zero C
	return zero, false
}
