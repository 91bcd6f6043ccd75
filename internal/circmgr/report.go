// What the pool reports: events for the control port and metrics, and
// descriptions of its circuits.

package circmgr

import (
	"slices"
)

// flushEvents delivers queued events in order, outside m.mu.
func (m *Manager[C]) flushEvents() {
	if m.cfg.OnEvent == nil {
		return
	}
	m.evMu.Lock()
	defer m.evMu.Unlock()
	m.mu.Lock()
	q := m.evq
	m.evq = nil
	m.mu.Unlock()
	for _, e := range q {
		m.cfg.OnEvent(e)
	}
}

// Circuits describes every circuit, pending ones included, by ID.
func (m *Manager[C]) Circuits() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.circs)+len(m.pending))
	for _, p := range m.pending {
		out = append(out, Info{ID: p.id, State: "LAUNCHED", Purpose: p.purpose, Port: p.port, Class: p.binding.First().Flags(), Mixed: p.binding.Mixed()})
	}
	for _, c := range m.circs {
		in := Info{ID: c.id, Purpose: c.purpose, Port: c.port, Created: c.created, DirtySince: c.dirtySince, Untracked: c.untracked}
		switch {
		case c.unusable:
			in.State = "UNUSABLE"
		case c.inClean:
			in.State = "CLEAN"
		default:
			in.State = "IN_USE"
		}
		if c.binding.IsSet() {
			in.Class, in.KeyTag, in.Mixed = c.binding.First().Flags(), c.binding.First().Tag(), c.binding.Mixed()
		}
		for _, k := range c.keys {
			in.Keys = append(in.Keys, k.Tag())
		}
		for s := range c.streams {
			in.Streams = append(in.Streams, s)
		}
		slices.Sort(in.Streams)
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Info) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Metrics returns a snapshot of the counters.
func (m *Manager[C]) Metrics() Metrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.m
	s.Live, s.Clean, s.Pending = len(m.circs), len(m.clean), len(m.pending)
	s.CircuitsByClass = make(map[string]int, len(m.byClass))
	for f, n := range m.byClass {
		s.CircuitsByClass[f.String()] += n
	}
	return s
}

func (m *Manager[C]) emitLocked(e Event) {
	if m.cfg.OnEvent != nil {
		m.evq = append(m.evq, e)
	}
}
