package dirmgr

// What controllers read of the directory (control-spec §3.9 GETINFO
// md/id/*, status/version/*): the microdescriptors' text and the
// consensus's recommended client versions (dir-spec §3.4.1
// "client-versions").

// MicrodescText returns the exact text of the microdescriptor with
// digest d.
func (m *Manager) MicrodescText(d [32]byte) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	md := m.mds[d]
	if md == nil {
		return "", false
	}
	return md.Text, true
}

// ClientVersions returns the current consensus's recommended client
// versions; ok is false without a consensus.
func (m *Manager) ClientVersions() (versions []string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.consensus == nil {
		return nil, false
	}
	return append([]string(nil), m.consensus.ClientVersions...), true
}
