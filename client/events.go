package client

import (
	"fmt"
	"sync"

	"github.com/gotor/gotor/internal/circmgr"
)

// CircuitEvent reports a change of a circuit or of a stream's attachment
// (control-spec CIRC and STREAM events draw on it).
type CircuitEvent struct {
	Type     string // LAUNCHED, BUILT, FAILED, CLOSED, UNUSABLE, STREAM_ATTACHED, STREAM_DETACHED
	CircID   uint64
	StreamID uint64
	Purpose  string
	Reason   string
}

type eventHub struct {
	mu   sync.Mutex
	subs map[int]func(CircuitEvent)
	next int
}

// OnCircuitEvent registers f for circuit and stream events; the returned
// function unregisters it. f must not block.
func (c *Client) OnCircuitEvent(f func(CircuitEvent)) (cancel func()) {
	c.events.mu.Lock()
	defer c.events.mu.Unlock()
	if c.events.subs == nil {
		c.events.subs = map[int]func(CircuitEvent){}
	}
	id := c.events.next
	c.events.next++
	c.events.subs[id] = f
	return func() {
		c.events.mu.Lock()
		delete(c.events.subs, id)
		c.events.mu.Unlock()
	}
}

var eventNames = map[circmgr.EventType]string{
	circmgr.EventCircLaunched:   "LAUNCHED",
	circmgr.EventCircBuilt:      "BUILT",
	circmgr.EventCircFailed:     "FAILED",
	circmgr.EventCircClosed:     "CLOSED",
	circmgr.EventCircUnusable:   "UNUSABLE",
	circmgr.EventStreamAttached: "STREAM_ATTACHED",
	circmgr.EventStreamDetached: "STREAM_DETACHED",
}

func (c *Client) onCircEvent(e circmgr.Event) {
	c.onCircEventObserve(e)
	ev := CircuitEvent{Type: eventNames[e.Type], CircID: e.CircID, StreamID: e.StreamID, Purpose: e.Purpose, Reason: e.Reason}
	c.events.mu.Lock()
	subs := make([]func(CircuitEvent), 0, len(c.events.subs))
	for _, f := range c.events.subs {
		subs = append(subs, f)
	}
	c.events.mu.Unlock()
	for _, f := range subs {
		f(ev)
	}
}

// Circuits lists the circuits of the pool.
func (c *Client) Circuits() []CircuitInfo {
	if c.circs == nil {
		return nil
	}
	var out []CircuitInfo
	for _, in := range c.circs.Circuits() {
		ci := CircuitInfo{ID: in.ID, State: in.State, Purpose: in.Purpose, Streams: in.Streams}
		if ec, ok := c.circs.Lookup(in.ID); ok {
			for _, r := range ec.relays {
				ci.Path = append(ci.Path, Hop{Fingerprint: fmt.Sprintf("%X", r.RSAID), Nickname: r.Nickname, Addr: r.ORAddrPort().String()})
			}
		}
		out = append(out, ci)
	}
	return out
}
