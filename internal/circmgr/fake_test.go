package circmgr

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// fakeCirc is a circuit that only exists in memory. Pool-logic tests
// only: it proves nothing about real relays.
type fakeCirc struct {
	n      int64
	ports  map[uint16]bool // nil: every port
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
}

func newFakeCirc(n int64, ports ...uint16) *fakeCirc {
	f := &fakeCirc{n: n, done: make(chan struct{})}
	if len(ports) > 0 {
		f.ports = make(map[uint16]bool)
		for _, p := range ports {
			f.ports[p] = true
		}
	}
	return f
}

func (f *fakeCirc) AfterClose(fn func()) func() bool {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-f.done; cancel() }()
	return context.AfterFunc(ctx, fn)
}
func (f *fakeCirc) Close() error {
	f.once.Do(func() { f.closed.Store(true); close(f.done) })
	return nil
}
func (f *fakeCirc) AllowsPort(p uint16) bool { return f.ports == nil || f.ports[p] }

// fakeBuilder builds fakeCircs.
type fakeBuilder struct {
	mu     sync.Mutex
	builds atomic.Int64
	// fail makes the next fail builds return an error.
	fail atomic.Int64
	// gate, if set, blocks each build until a value is received or the
	// context ends.
	gate chan struct{}
	// block makes builds wait for their context (timeouts).
	block atomic.Bool
	// ports, if set, chooses the exit ports of a circuit built for u.
	ports func(u Usage) []uint16
	built []*fakeCirc
}

var errFakeBuild = errors.New("fake build failure")

func (b *fakeBuilder) Build(ctx context.Context, u Usage) (*fakeCirc, error) {
	n := b.builds.Add(1)
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if b.block.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if b.fail.Load() > 0 && b.fail.Add(-1) >= 0 {
		return nil, errFakeBuild
	}
	var ports []uint16
	if b.ports != nil {
		ports = b.ports(u)
	}
	c := newFakeCirc(n, ports...)
	b.mu.Lock()
	b.built = append(b.built, c)
	b.mu.Unlock()
	return c, nil
}

func (b *fakeBuilder) all() []*fakeCirc {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*fakeCirc(nil), b.built...)
}

// fakeClock is a manual clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testManager returns a manager whose background loop stays quiet (tests
// call maintain themselves).
func testManager(t testing.TB, b *fakeBuilder, cfg Config) (*Manager[*fakeCirc], *fakeClock) {
	t.Helper()
	clk := newClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	if cfg.MaintenanceInterval == 0 {
		cfg.MaintenanceInterval = time.Hour
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	m := New[*fakeCirc](b, cfg)
	t.Cleanup(func() { m.Close() })
	return m, clk
}

func key(user string, dest string, port uint16, flags isolation.Flags) isolation.Key {
	i := isolation.StreamInfo{
		DestAddr:     dest,
		DestPort:     port,
		ClientAddr:   netip.MustParseAddrPort("127.0.0.1:5555"),
		SessionGroup: isolation.SessionGroupUnset,
		Protocol:     isolation.ProtoSOCKS5,
	}
	if user != "" {
		i.Username, i.Password = []byte(user), []byte("pw")
	}
	return isolation.NewKey(i, flags)
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
