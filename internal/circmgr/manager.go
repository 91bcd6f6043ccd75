// Circuit pool: selection (path-spec §2.2), on-demand and predictive
// building (path-spec §2.1), dirtiness and expiry (C tor circuituse.c).

package circmgr

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// maxKeysPerCircuit bounds the distinct key tags a circuit remembers for
// Info.
const maxKeysPerCircuit = 8

// circ is the manager's record of one built circuit. All fields but c
// and id are guarded by Manager.mu.
type circ[C Circuit] struct {
	id uint64
	c  C
	// unwatch stops the AfterClose callback that forgets the circuit
	// when it closes (build.go watch).
	unwatch func() bool
	purpose string
	port    uint16
	created time.Time
	// dirtySince is when the first stream was attached (C tor
	// timestamp_dirty); zero while clean.
	dirtySince time.Time
	lastUsed   time.Time
	binding    isolation.Binding
	unusable   bool // takes no new streams (dirty too long, NEWNYM, or shutting down)
	// controller: SETCIRCUITPURPOSE CONTROLLER took it out of the pool
	// (purpose.go): no stream is attached to it, it does not expire.
	controller bool
	closed     bool
	inClean    bool
	streams    map[uint64]struct{}
	untracked  int
	// reserved counts streams that waited for this circuit's build and
	// have not attached yet; expiry leaves it alone meanwhile.
	reserved int
	keys     []isolation.Key
	// indexed lists where the circuit sits in Manager.index.
	indexed []indexRef
}

// Manager is the circuit pool. Create it with New; all methods are safe
// for concurrent use.
type Manager[C Circuit] struct {
	cfg     Config
	builder Builder[C]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
	epoch  atomic.Uint64

	mu       sync.Mutex
	closed   bool
	circs    map[uint64]*circ[C]
	index    map[isolation.Flags]map[uint64][]*circ[C]
	clean    []*circ[C]
	pending  []*pendingBuild[C]
	nextID   uint64
	nextSID  uint64
	predict  map[uint16]time.Time // port → last used
	periodAt time.Time            // start of the current NewCircuitPeriod
	failures int                  // build failures in the current period
	byClass  map[isolation.Flags]int
	m        Metrics
	evq      []Event

	evMu sync.Mutex // serialises OnEvent delivery
}

// New returns a manager building circuits with b, and starts its
// background loop (stopped by Close).
func New[C Circuit](b Builder[C], cfg Config) *Manager[C] {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager[C]{
		cfg:     cfg,
		builder: b,
		ctx:     ctx,
		cancel:  cancel,
		kick:    make(chan struct{}, 1),
		circs:   make(map[uint64]*circ[C]),
		index:   make(map[isolation.Flags]map[uint64][]*circ[C]),
		predict: make(map[uint16]time.Time),
		byClass: make(map[isolation.Flags]int),
	}
	m.periodAt = cfg.Now()
	// The default ports start predicted and, like any other, stop being
	// predicted PredictedPortTTL after their last use (C tor predicts
	// port 80 at start-up, then only what streams use): an idle client
	// stops building circuits, and its guard channel goes idle.
	if cfg.EnableCircuitPrebuilding {
		for _, p := range cfg.PredictedPorts {
			m.predict[p] = m.periodAt
		}
	}
	m.wg.Add(1)
	go m.loop()
	return m
}

// Epoch returns the current NEWNYM epoch, to be put in
// isolation.StreamInfo.Epoch.
func (m *Manager[C]) Epoch() uint64 { return m.epoch.Load() }

// KeyFor is the isolation key of a stream arriving now with info on a
// listener that isolates on flags: info stamped with the current epoch.
func (m *Manager[C]) KeyFor(info isolation.StreamInfo, flags isolation.Flags) isolation.Key {
	info.Epoch = m.Epoch()
	return isolation.NewKey(info, flags)
}

// Attachment is a stream's claim on a circuit. Release it when the
// stream closes.
type Attachment[C Circuit] struct {
	Circuit  C
	CircID   uint64
	StreamID uint64
	// Reused reports that the stream went to an already open circuit
	// (an isolation hit).
	Reused bool

	m        *Manager[C]
	released atomic.Bool
}

// Release detaches the stream. Calling it more than once is harmless.
func (a *Attachment[C]) Release() {
	if a == nil || !a.released.CompareAndSwap(false, true) {
		return
	}
	a.m.release(a.CircID, a.StreamID)
}

// Get returns a circuit for a stream with key k to u.Port (the design's
// GetWithIsolation): an open compatible circuit that is not too dirty and
// whose exit allows the port, else a clean prebuilt one (which k then
// binds), else a new one — shared with concurrent compatible requests.
// The stream is not tracked: prefer Attach when the caller can Release.
func (m *Manager[C]) Get(ctx context.Context, u Usage, k isolation.Key) (C, error) {
	r, err := m.attach(ctx, u, k, false)
	if err != nil {
		var zero C
		return zero, err
	}
	return r.c.c, nil
}

// Attach is Get for a tracked stream: the circuit is not closed as idle
// before the returned Attachment is released, and Circuits reports the
// stream.
func (m *Manager[C]) Attach(ctx context.Context, u Usage, k isolation.Key) (*Attachment[C], error) {
	r, err := m.attach(ctx, u, k, true)
	if err != nil {
		return nil, err
	}
	return &Attachment[C]{Circuit: r.c.c, CircID: r.c.id, StreamID: r.sid, Reused: r.reused, m: m}, nil
}

// attached is the outcome of attach.
type attached[C Circuit] struct {
	c      *circ[C]
	sid    uint64
	reused bool
}

func (m *Manager[C]) attach(ctx context.Context, u Usage, k isolation.Key, tracked bool) (attached[C], error) {
	var none attached[C]
	for try := 0; try < 4; try++ {
		if err := ctx.Err(); err != nil {
			return none, err
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return none, ErrClosed
		}
		now := m.cfg.Now()
		m.notePortLocked(u.Port, now)
		if c := m.findLocked(u, k, now); c != nil {
			m.m.IsolationHits++
			sid := m.attachLocked(c, u, k, tracked, now)
			m.mu.Unlock()
			m.flushEvents()
			return attached[C]{c, sid, true}, nil
		}
		if c := m.takeCleanLocked(u); c != nil {
			m.m.IsolationMisses++
			m.m.PrebuiltUsed++
			sid := m.attachLocked(c, u, k, tracked, now)
			m.mu.Unlock()
			m.flushEvents()
			m.poke()
			return attached[C]{c, sid, false}, nil
		}
		p := m.findPendingLocked(u, k)
		if p != nil {
			m.m.PendingJoins++
			p.binding.Attach(k)
		} else {
			if err := m.roomLocked(now); err != nil {
				m.mu.Unlock()
				m.flushEvents()
				return none, err
			}
			m.m.IsolationMisses++
			p = m.launchLocked(u.Port, "GENERAL", false)
			p.binding.Attach(k)
		}
		p.waiters++
		m.mu.Unlock()
		m.flushEvents()

		select {
		case <-p.done:
		case <-ctx.Done():
			m.mu.Lock()
			if p.circ != nil {
				p.circ.reserved-- // built meanwhile: release the reservation
			} else {
				p.waiters--
			}
			m.mu.Unlock()
			return none, ctx.Err()
		}
		if p.err != nil {
			return none, p.err
		}
		m.mu.Lock()
		c := p.circ
		c.reserved--
		if c.closed || m.closed {
			m.mu.Unlock()
			continue // died before we could use it: start over
		}
		if !c.binding.Compatible(k) {
			// Cannot happen: every waiter is in the binding.
			m.mu.Unlock()
			continue
		}
		sid := m.attachLocked(c, u, k, tracked, m.cfg.Now())
		m.mu.Unlock()
		m.flushEvents()
		return attached[C]{c, sid, false}, nil
	}
	return none, ErrNoUsableCircuit
}

// attachLocked attaches a stream with key k to c and returns its stream
// ID (0 if untracked).
func (m *Manager[C]) attachLocked(c *circ[C], u Usage, k isolation.Key, tracked bool, now time.Time) uint64 {
	wasSet, wasMixed := c.binding.IsSet(), c.binding.Mixed()
	c.binding.Attach(k)
	if !wasSet {
		m.boundLocked(c)
	}
	if !wasSet || c.binding.Mixed() != wasMixed || len(c.indexed) == 0 {
		m.indexLocked(c)
	}
	if c.dirtySince.IsZero() {
		c.dirtySince = now
	} else if f := k.Flags(); f&isolation.KeepAliveIsolateSOCKSAuth != 0 && f&isolation.IsolateSOCKSAuth != 0 && k.HasAuth() {
		// C tor: a stream with SOCKS auth on a KeepAliveIsolateSOCKSAuth
		// port keeps its circuit fresh.
		c.dirtySince = now
	}
	c.lastUsed = now
	if len(c.keys) < maxKeysPerCircuit && !slices.Contains(c.keys, k) {
		c.keys = append(c.keys, k)
	}
	var sid uint64
	if tracked {
		m.nextSID++
		sid = m.nextSID
		if c.streams == nil {
			c.streams = make(map[uint64]struct{})
		}
		c.streams[sid] = struct{}{}
	} else {
		c.untracked++
	}
	if m.cfg.OnEvent != nil {
		m.evq = append(m.evq, Event{Type: EventStreamAttached, CircID: c.id, Purpose: c.purpose, Port: u.Port, StreamID: sid, KeyTag: k.Tag()})
	}
	return sid
}

// boundLocked accounts for c getting its first stream's isolation.
func (m *Manager[C]) boundLocked(c *circ[C]) {
	k := c.binding.First()
	m.byClass[k.Flags()]++
	if m.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		// Only the 8-hex key tag and flag names: never credentials,
		// destinations or client addresses.
		m.cfg.Logger.Debug("circuit bound to isolation key", "circ", c.id, "key", k.Tag(), "class", k.Flags().String(), "purpose", c.purpose)
	}
}

func (m *Manager[C]) release(circID, streamID uint64) {
	m.mu.Lock()
	if c := m.circs[circID]; c != nil {
		delete(c.streams, streamID)
		c.lastUsed = m.cfg.Now()
		m.emitLocked(Event{Type: EventStreamDetached, CircID: circID, Purpose: c.purpose, StreamID: streamID})
	}
	m.mu.Unlock()
	m.flushEvents()
}

// Close stops the background loop and pending builds, closes every
// circuit and waits for the manager's goroutines.
func (m *Manager[C]) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cancel()
	var toClose []C
	for _, c := range m.circs {
		if c.unwatch != nil && c.unwatch() {
			m.wg.Done() // its callback will not run
		}
		m.closeLocked(c, "shutdown", &toClose)
	}
	m.mu.Unlock()
	for _, c := range toClose {
		c.Close()
	}
	m.flushEvents()
	m.wg.Wait()
	m.flushEvents()
	return nil
}
