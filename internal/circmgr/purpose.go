// A controller taking a circuit out of the pool and giving it back
// (control-spec §3.11 SETCIRCUITPURPOSE; C tor's CIRCUIT_PURPOSE_CONTROLLER
// circuits get streams only from ATTACHSTREAM and are not expired as
// idle).

package circmgr

import "errors"

// ErrUnknownCircuit: no circuit of the pool has that ID.
var ErrUnknownCircuit = errors.New("circmgr: unknown circuit")

// Purposes SetPurpose takes.
const (
	PurposeGeneral    = "GENERAL"
	PurposeController = "CONTROLLER"
)

// SetPurpose makes circuit id a CONTROLLER circuit, which the pool
// neither gives to streams nor closes as idle, or GENERAL again, back in
// the pool (clean if it never carried a stream). Closing it stays
// possible (Close on the circuit).
func (m *Manager[C]) SetPurpose(id uint64, purpose string) error {
	if purpose != PurposeGeneral && purpose != PurposeController {
		return errors.New("circmgr: unknown purpose " + purpose)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.circs[id]
	if c == nil || c.closed {
		return ErrUnknownCircuit
	}
	switch {
	case purpose == PurposeController && !c.controller:
		c.controller = true
		m.unindexLocked(c)
		if c.inClean {
			for i, x := range m.clean {
				if x == c {
					m.clean = append(m.clean[:i], m.clean[i+1:]...)
					break
				}
			}
			c.inClean = false
		}
	case purpose == PurposeGeneral && c.controller:
		c.controller = false
		switch {
		case c.unusable:
		case c.binding.IsSet():
			m.indexLocked(c)
		default:
			c.inClean = true
			m.clean = append(m.clean, c)
		}
	}
	c.purpose = purpose
	return nil
}
