// Circuit pool: selection (path-spec §2.2), on-demand and predictive
// building (path-spec §2.1), dirtiness and expiry (C tor circuituse.c).

package circmgr

import (
	"context"
	"fmt"
	"hash/maphash"
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
	id      uint64
	c       C
	purpose string
	port    uint16
	created time.Time
	// dirtySince is when the first stream was attached (C tor
	// timestamp_dirty); zero while clean.
	dirtySince time.Time
	lastUsed   time.Time
	binding    isolation.Binding
	unusable   bool // takes no new streams (dirty too long, NEWNYM, or shutting down)
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

type indexRef struct {
	flags isolation.Flags
	key   uint64
	pos   int // position in the bucket, for O(1) removal
}

// indexSeed keys the hashes of projected isolation keys used as index
// buckets. A collision only puts two circuits in one bucket: every
// candidate is still checked with Binding.Compatible.
var indexSeed = maphash.MakeSeed()

func bucket(k isolation.Key, f isolation.Flags) uint64 {
	return maphash.Comparable(indexSeed, k.Project(f))
}

// pendingBuild is a circuit being built, possibly with streams waiting
// for it. Its binding is the hypothetical isolation of those streams (C
// tor sets isolation on pending circuits as streams are assigned).
type pendingBuild[C Circuit] struct {
	id       uint64 // current attempt's circuit ID
	port     uint16
	purpose  string
	binding  isolation.Binding
	epoch    uint64
	stale    bool // NEWNYM happened: deliver to waiters, then unusable
	waiters  int
	prebuild bool // launched for a predicted port with no stream

	done chan struct{}
	circ *circ[C]
	err  error
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
	m.wg.Add(1)
	go m.loop()
	return m
}

// Epoch returns the current NEWNYM epoch, to be put in
// isolation.StreamInfo.Epoch.
func (m *Manager[C]) Epoch() uint64 { return m.epoch.Load() }

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

// usableLocked reports whether c may take a new stream now.
func (m *Manager[C]) usableLocked(c *circ[C], now time.Time) bool {
	if c.closed || c.unusable {
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
		if c.binding.IsSet() && !c.unusable && !c.closed && c.binding.Mixed()&f == 0 {
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
	if c.unusable || c.closed || !c.binding.IsSet() {
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

// notePortLocked makes port predicted (C tor rep_hist_note_used_port).
func (m *Manager[C]) notePortLocked(port uint16, now time.Time) {
	if !m.cfg.EnableCircuitPrebuilding || port == 0 {
		return
	}
	if _, ok := m.predict[port]; !ok && len(m.predict) >= m.cfg.MaxPredictedPorts {
		// Evict the least recently used port.
		var old uint16
		var oldAt time.Time
		for p, at := range m.predict {
			if oldAt.IsZero() || at.Before(oldAt) {
				old, oldAt = p, at
			}
		}
		delete(m.predict, old)
	}
	m.predict[port] = now
}

// roomLocked enforces MaxCircuits, first expiring what it can.
func (m *Manager[C]) roomLocked(now time.Time) error {
	if len(m.circs)+len(m.pending) < m.cfg.MaxCircuits {
		return nil
	}
	m.expireLocked(now)
	if len(m.circs)+len(m.pending) < m.cfg.MaxCircuits {
		return nil
	}
	return ErrTooManyCircuits
}

// launchLocked starts building a circuit for port.
func (m *Manager[C]) launchLocked(port uint16, purpose string, prebuild bool) *pendingBuild[C] {
	m.nextID++
	p := &pendingBuild[C]{
		id:       m.nextID,
		port:     port,
		purpose:  purpose,
		epoch:    m.epoch.Load(),
		prebuild: prebuild,
		done:     make(chan struct{}),
	}
	m.pending = append(m.pending, p)
	m.wg.Add(1)
	go m.build(p)
	return p
}

// build runs the attempts of one pending build, each on a new path with
// its own timeout, backing off between failures (path-spec §2.1.3).
func (m *Manager[C]) build(p *pendingBuild[C]) {
	defer m.wg.Done()
	var (
		c        C
		err      error
		wait     = m.cfg.RetryBackoff
		attempts int
	)
	for attempt := 1; attempt <= m.cfg.MaxBuildAttempts; attempt++ {
		attempts = attempt
		m.mu.Lock()
		if attempt > 1 {
			m.nextID++
			p.id = m.nextID
			m.m.Retries++
		}
		m.m.Builds++
		id := p.id
		m.emitLocked(Event{Type: EventCircLaunched, CircID: id, Purpose: p.purpose, Port: p.port})
		m.mu.Unlock()
		m.flushEvents()

		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CircuitBuildTimeout)
		c, err = m.builder.Build(ctx, Usage{Port: p.port})
		cancel()
		if err == nil && !allows(c, p.port) {
			c.Close()
			err = ErrExitRejectsPort
		}
		if err == nil {
			break
		}
		m.mu.Lock()
		m.m.BuildFailures++
		m.failures++
		m.emitLocked(Event{Type: EventCircFailed, CircID: id, Purpose: p.purpose, Port: p.port, Reason: err.Error()})
		m.mu.Unlock()
		m.flushEvents()
		m.cfg.Logger.Debug("circuit build failed", "circ", id, "attempt", attempt, "port", p.port, "err", err)
		if m.ctx.Err() != nil || attempt == m.cfg.MaxBuildAttempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, m.cfg.MaxRetryBackoff)
	}

	m.mu.Lock()
	if i := slices.Index(m.pending, p); i >= 0 {
		m.pending = slices.Delete(m.pending, i, i+1)
	}
	if err != nil {
		p.err = fmt.Errorf("%w (%d attempts, port %d): %w", errBuildAttemptsOut, attempts, p.port, err)
		close(p.done)
		m.mu.Unlock()
		return
	}
	now := m.cfg.Now()
	rc := &circ[C]{id: p.id, c: c, purpose: p.purpose, port: p.port, created: now, lastUsed: now}
	if m.closed {
		m.mu.Unlock()
		c.Close()
		p.err = ErrClosed
		close(p.done)
		return
	}
	m.circs[rc.id] = rc
	m.emitLocked(Event{Type: EventCircBuilt, CircID: rc.id, Purpose: p.purpose, Port: p.port})
	switch {
	case p.waiters > 0:
		// Streams are waiting: the circuit carries their binding and
		// is dirty from now; they attach as they wake.
		rc.binding = p.binding
		rc.dirtySince = now
		rc.reserved = p.waiters
		m.boundLocked(rc)
		if p.stale || p.epoch != m.epoch.Load() {
			m.markUnusableLocked(rc, "NEWNYM")
		} else {
			m.indexLocked(rc)
		}
	case p.stale || p.epoch != m.epoch.Load():
		// Built across a NEWNYM with nobody waiting: expiry closes it.
		m.markUnusableLocked(rc, "NEWNYM")
	default:
		// Nobody is waiting (prebuild, or every requester gave up): a
		// clean circuit (C tor circuit_try_clearing_isolation_state).
		rc.inClean = true
		m.clean = append(m.clean, rc)
	}
	p.circ = rc
	close(p.done)
	m.wg.Add(1)
	go m.watch(rc)
	m.mu.Unlock()
	m.flushEvents()
	if p.prebuild {
		m.poke()
	}
}

// watch notices the circuit closing.
func (m *Manager[C]) watch(rc *circ[C]) {
	defer m.wg.Done()
	select {
	case <-rc.c.Done():
		m.mu.Lock()
		m.forgetLocked(rc, "destroyed")
		m.mu.Unlock()
		m.flushEvents()
		m.poke()
	case <-m.ctx.Done():
	}
}

// forgetLocked drops every reference to rc (its keys leave the index).
func (m *Manager[C]) forgetLocked(rc *circ[C], reason string) {
	if rc.closed {
		return
	}
	rc.closed = true
	m.unindexLocked(rc)
	if rc.inClean {
		if i := slices.Index(m.clean, rc); i >= 0 {
			m.clean = slices.Delete(m.clean, i, i+1)
		}
		rc.inClean = false
	}
	if rc.binding.IsSet() {
		f := rc.binding.First().Flags()
		if m.byClass[f]--; m.byClass[f] <= 0 {
			delete(m.byClass, f)
		}
	}
	delete(m.circs, rc.id)
	m.m.Closed++
	m.emitLocked(Event{Type: EventCircClosed, CircID: rc.id, Purpose: rc.purpose, Port: rc.port, Reason: reason})
}

// closeLocked forgets rc and closes it (outside the lock).
func (m *Manager[C]) closeLocked(rc *circ[C], reason string, toClose *[]C) {
	if rc.closed {
		return
	}
	m.forgetLocked(rc, reason)
	*toClose = append(*toClose, rc.c)
}

func (m *Manager[C]) markUnusableLocked(c *circ[C], reason string) {
	if c.unusable {
		return
	}
	c.unusable = true
	m.unindexLocked(c)
	if c.inClean {
		if i := slices.Index(m.clean, c); i >= 0 {
			m.clean = slices.Delete(m.clean, i, i+1)
		}
		c.inClean = false
	}
	m.emitLocked(Event{Type: EventCircUnusable, CircID: c.id, Purpose: c.purpose, Reason: reason})
}

// Retire marks circuit id unusable for new streams (C tor
// mark_circuit_unusable_for_new_conns), e.g. after its exit refused a
// stream or a BEGIN timed out. Streams on it keep working; it closes once
// they are gone. Unknown IDs are ignored.
func (m *Manager[C]) Retire(id uint64, reason string) {
	m.mu.Lock()
	if c := m.circs[id]; c != nil {
		m.markUnusableLocked(c, reason)
	}
	m.mu.Unlock()
	m.flushEvents()
	m.poke()
}

// Ready returns once a clean circuit allowing u.Port exists, building one
// if needed (without binding it to any isolation key, unlike Get). It is
// meant for bootstrap ("a first circuit can be built").
func (m *Manager[C]) Ready(ctx context.Context, u Usage) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	for _, c := range m.clean {
		if !c.closed && !c.unusable && allows(c.c, u.Port) {
			m.mu.Unlock()
			return nil
		}
	}
	var p *pendingBuild[C]
	for _, q := range m.pending {
		if q.prebuild && q.waiters == 0 && !q.stale && q.port == u.Port {
			p = q
			break
		}
	}
	if p == nil {
		if err := m.roomLocked(m.cfg.Now()); err != nil {
			m.mu.Unlock()
			return err
		}
		p = m.launchLocked(u.Port, "PREBUILT", true)
	}
	m.mu.Unlock()
	m.flushEvents()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewIdentity is NEWNYM: every existing circuit (clean, in use or still
// being built) takes no new streams, and the epoch advances so streams
// from before and after never share. Streams already attached keep
// working; circuits close once their streams are gone.
func (m *Manager[C]) NewIdentity() {
	m.mu.Lock()
	m.epoch.Add(1)
	for _, c := range m.circs {
		m.markUnusableLocked(c, "NEWNYM")
	}
	for _, p := range m.pending {
		p.stale = true
	}
	m.expireLocked(m.cfg.Now())
	m.mu.Unlock()
	m.flushEvents()
	m.poke()
}

// expireLocked closes circuits that are useless now: unusable or dirty
// too long with no streams left (C tor
// circuit_expire_old_circuits_clientside), and clean circuits unused for
// CleanIdleTimeout.
func (m *Manager[C]) expireLocked(now time.Time) {
	var toClose []C
	for _, c := range m.circs {
		if c.closed {
			continue
		}
		if !c.unusable && !c.dirtySince.IsZero() && now.Sub(c.dirtySince) >= m.cfg.MaxCircuitDirtiness {
			m.markUnusableLocked(c, "dirty")
		}
		if c.unusable {
			if len(c.streams) > 0 || c.reserved > 0 {
				continue
			}
			if c.untracked > 0 && now.Sub(c.lastUsed) < m.cfg.UntrackedIdleTimeout {
				continue
			}
			if sc, ok := any(c.c).(StreamCounter); ok && sc.NumStreams() > 0 {
				continue
			}
			m.closeLocked(c, "idle", &toClose)
			continue
		}
		if c.inClean && now.Sub(c.created) >= m.cfg.CleanIdleTimeout {
			m.closeLocked(c, "idle-clean", &toClose)
		}
	}
	if len(toClose) > 0 {
		// Close outside the lock: Close may block on the network.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for _, c := range toClose {
				c.Close()
			}
		}()
	}
}

// maintain is one round of housekeeping: reset the failure budget each
// NewCircuitPeriod, expire circuits, forget stale predicted ports and top
// up prebuilt circuits.
func (m *Manager[C]) maintain() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	now := m.cfg.Now()
	if now.Sub(m.periodAt) >= m.cfg.NewCircuitPeriod {
		m.periodAt, m.failures = now, 0
	}
	m.expireLocked(now)
	if m.cfg.EnableCircuitPrebuilding {
		for p, at := range m.predict {
			if now.Sub(at) >= m.cfg.PredictedPortTTL {
				delete(m.predict, p)
			}
		}
		m.prebuildLocked(now)
	}
	m.mu.Unlock()
	m.flushEvents()
}

// predictedPortsLocked lists the ports to keep circuits for.
func (m *Manager[C]) predictedPortsLocked() []uint16 {
	ports := slices.Clone(m.cfg.PredictedPorts)
	for p := range m.predict {
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	return ports
}

// prebuildLocked launches clean circuits until every predicted port is
// handled by MinCleanPerPort clean (or pending unbound) circuits, within
// MaxCleanCircuits and the failure budget (C tor
// circuit_predict_and_launch_new). It launches at most one circuit per
// call; a finished prebuild triggers the next round at once.
func (m *Manager[C]) prebuildLocked(now time.Time) {
	if m.failures >= m.cfg.MaxFailuresPerPeriod {
		return
	}
	unbound := 0
	for _, p := range m.pending {
		if p.prebuild && p.waiters == 0 && !p.stale {
			unbound++
		}
	}
	for _, port := range m.predictedPortsLocked() {
		n := 0
		for _, c := range m.clean {
			if !c.closed && !c.unusable && allows(c.c, port) {
				n++
			}
		}
		for _, p := range m.pending {
			if p.prebuild && p.waiters == 0 && !p.stale && p.port == port {
				n++
			}
		}
		if n < m.cfg.MinCleanPerPort {
			if len(m.clean)+unbound >= m.cfg.MaxCleanCircuits || len(m.circs)+len(m.pending) >= m.cfg.MaxCircuits {
				return
			}
			// Like C tor, launch one circuit per round: the next
			// round sees whether its exit covers other ports too.
			m.launchLocked(port, "PREBUILT", true)
			return
		}
	}
}

func (m *Manager[C]) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Manager[C]) loop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.MaintenanceInterval)
	defer t.Stop()
	m.maintain()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		m.maintain()
	}
}

func (m *Manager[C]) emitLocked(e Event) {
	if m.cfg.OnEvent != nil {
		m.evq = append(m.evq, e)
	}
}

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

// allows reports whether c may carry a stream for port; port 0 (a
// RESOLVE, or no particular port) accepts any exit circuit.
func allows[C Circuit](c C, port uint16) bool {
	return port == 0 || c.AllowsPort(port)
}
