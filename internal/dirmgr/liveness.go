// Whether the consensus may still be used: dir-spec §5.1 ("a
// network-status document is 'live' if the time in its valid-after
// field has passed, and the time in its valid-until field has not
// passed"; a client without a live consensus uses its most recent one
// if it is "reasonably live", expired less than 24 hours ago) and §5.4
// (no circuits without one). C tor: networkstatus_get_reasonably_live_consensus.

package dirmgr

import (
	"errors"
	"fmt"
	"time"

	"github.com/gotor/gotor/internal/netdoc"
)

// Liveness says how usable the manager's consensus is.
type Liveness int

// Liveness values.
const (
	NoConsensus    Liveness = iota // before the first successful Bootstrap
	Live                           // now is before valid-until
	ReasonablyLive                 // expired, but less than 24 h ago: still used
	TooOld                         // expired 24 h ago or more: no new circuits
)

func (l Liveness) String() string {
	switch l {
	case Live:
		return "live"
	case ReasonablyLive:
		return "reasonably live"
	case TooOld:
		return "too old"
	}
	return "no consensus"
}

// Errors returned by Usable; test with errors.Is.
var (
	ErrNoConsensus = errors.New("dirmgr: no consensus yet")
	// ErrConsensusTooOld: the newest consensus expired more than 24
	// hours ago; circuits must not be built on it (the manager keeps
	// trying to fetch a new one).
	ErrConsensusTooOld = errors.New("dirmgr: consensus is not reasonably live")
)

// Liveness returns the state of the current consensus at the manager's
// clock.
func (m *Manager) Liveness() Liveness {
	l, _ := m.liveness()
	return l
}

func (m *Manager) liveness() (Liveness, time.Time) {
	m.mu.Lock()
	c := m.consensus
	m.mu.Unlock()
	if c == nil || m.NetDir() == nil {
		return NoConsensus, time.Time{}
	}
	now := m.now()
	switch {
	case !now.After(c.ValidUntil):
		return Live, c.ValidUntil
	case !now.After(c.ValidUntil.Add(netdoc.ReasonablyLive)):
		return ReasonablyLive, c.ValidUntil
	}
	return TooOld, c.ValidUntil
}

// Usable returns nil when new circuits may be built on NetDir(): the
// consensus is live or reasonably live. Otherwise it returns an error
// wrapping ErrNoConsensus or ErrConsensusTooOld. NetDir() keeps
// returning the last directory either way (for circuits already open
// and for introspection).
func (m *Manager) Usable() error {
	switch l, until := m.liveness(); l {
	case NoConsensus:
		return ErrNoConsensus
	case TooOld:
		return fmt.Errorf("%w: valid-until %s, %s ago", ErrConsensusTooOld,
			until.UTC().Format(time.DateTime), m.now().Sub(until).Round(time.Minute))
	}
	return nil
}
