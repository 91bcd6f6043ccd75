// The isolation index of the circuit pool: which open circuit may take a
// stream with a given isolation key (the design's GetWithIsolation;
// path-spec §2.2 for exit ports).

package circmgr

import (
	"hash/maphash"
	"slices"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// indexSeed keys the hashes of projected isolation keys used as index
// buckets. A collision only puts two circuits in one bucket: every
// candidate is still checked with Binding.Compatible.
var indexSeed = maphash.MakeSeed()

func bucket(k isolation.Key, f isolation.Flags) uint64 {
	return maphash.Comparable(indexSeed, k.Project(f))
}

// usableLocked reports whether c may take a new stream now.
func (m *Manager[C]) usableLocked(c *circ[C], now time.Time) bool {
	if c.closed || c.unusable || c.controller {
		return false
	}
	if !c.dirtySince.IsZero() && now.Sub(c.dirtySince) >= m.cfg.MaxCircuitDirtiness {
		return false
	}
	return true
}

// findLocked returns an open, bound circuit compatible with k that
// allows u.Port, using the index for k's flags.
func (m *Manager[C]) findLocked(u Usage, k isolation.Key, now time.Time) *circ[C] {
	// Index by the stream's flags. Always is added for the zero Key
	// (NewKey always sets it): a flag set without the session group
	// would put every circuit of every group in one bucket.
	f := (k.Flags() | isolation.Always) &^ isolation.KeepAliveIsolateSOCKSAuth
	idx, ok := m.index[f]
	if !ok {
		idx = m.addFlagSetLocked(f)
	}
	list := idx[bucket(k, f)]
	var found *circ[C]
	var expired []*circ[C]
	for _, c := range list {
		if !m.usableLocked(c, now) {
			expired = append(expired, c)
			continue
		}
		if c.binding.Compatible(k) && allows(c.c, u.Port) {
			found = c
			break
		}
	}
	for _, c := range expired {
		m.markUnusableLocked(c, "dirty")
	}
	return found
}

// addFlagSetLocked starts indexing circuits for streams with flags f.
func (m *Manager[C]) addFlagSetLocked(f isolation.Flags) map[uint64][]*circ[C] {
	idx := make(map[uint64][]*circ[C])
	m.index[f] = idx
	for _, c := range m.circs {
		if c.binding.IsSet() && !c.unusable && !c.closed && !c.controller && c.binding.Mixed()&f == 0 {
			pk := bucket(c.binding.First(), f)
			idx[pk] = append(idx[pk], c)
			c.indexed = append(c.indexed, indexRef{f, pk, len(idx[pk]) - 1})
		}
	}
	return idx
}

// indexLocked (re)files c under every indexed flag set it can serve.
func (m *Manager[C]) indexLocked(c *circ[C]) {
	m.unindexLocked(c)
	if c.unusable || c.closed || c.controller || !c.binding.IsSet() {
		return
	}
	first, mixed := c.binding.First(), c.binding.Mixed()
	for f, idx := range m.index {
		if mixed&f != 0 {
			continue
		}
		pk := bucket(first, f)
		idx[pk] = append(idx[pk], c)
		c.indexed = append(c.indexed, indexRef{f, pk, len(idx[pk]) - 1})
	}
}

// unindexLocked removes c from every bucket in O(1) each: the bucket's
// last circuit takes c's place (order within a bucket does not matter).
func (m *Manager[C]) unindexLocked(c *circ[C]) {
	for _, r := range c.indexed {
		idx := m.index[r.flags]
		list := idx[r.key]
		last := len(list) - 1
		if r.pos != last {
			moved := list[last]
			list[r.pos] = moved
			for i := range moved.indexed {
				if moved.indexed[i].flags == r.flags {
					moved.indexed[i].pos = r.pos
					break
				}
			}
		}
		list[last] = nil
		list = list[:last]
		if len(list) == 0 {
			delete(idx, r.key)
		} else {
			idx[r.key] = list
		}
	}
	c.indexed = c.indexed[:0]
}

// takeCleanLocked removes and returns a clean circuit allowing u.Port.
func (m *Manager[C]) takeCleanLocked(u Usage) *circ[C] {
	for i, c := range m.clean {
		if c.closed || c.unusable || !allows(c.c, u.Port) {
			continue
		}
		m.clean = slices.Delete(m.clean, i, i+1)
		c.inClean = false
		return c
	}
	return nil
}

// findPendingLocked returns a pending build for u.Port whose
// hypothetical binding accepts k.
func (m *Manager[C]) findPendingLocked(u Usage, k isolation.Key) *pendingBuild[C] {
	for _, p := range m.pending {
		if p.port == u.Port && !p.stale && p.binding.Compatible(k) {
			return p
		}
	}
	return nil
}

// allows reports whether c may carry a stream for port; port 0 (a
// RESOLVE, or no particular port) accepts any exit circuit.
func allows[C Circuit](c C, port uint16) bool {
	return port == 0 || c.AllowsPort(port)
}

type indexRef struct {
	flags isolation.Flags
	key   uint64
	pos   int // position in the bucket, for O(1) removal
}
