package circmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

var ctx = context.Background()

func TestReuseAndIsolation(t *testing.T) {
	b := &fakeBuilder{}
	m, _ := testManager(t, b, Config{})
	alice := key("alice", "a.example", 443, isolation.Default)
	a1, err := m.Attach(ctx, Usage{Port: 443}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Reused {
		t.Fatal("first stream cannot be a hit")
	}
	a2, err := m.Attach(ctx, Usage{Port: 443}, key("alice", "b.example", 443, isolation.Default))
	if err != nil {
		t.Fatal(err)
	}
	if !a2.Reused || a2.CircID != a1.CircID {
		t.Fatal("same user, another destination, default flags: must share")
	}
	bob, err := m.Attach(ctx, Usage{Port: 443}, key("bob", "a.example", 443, isolation.Default))
	if err != nil {
		t.Fatal(err)
	}
	if bob.CircID == a1.CircID || bob.Reused {
		t.Fatal("different users must not share")
	}
	got := m.Metrics()
	if got.IsolationHits != 1 || got.IsolationMisses != 2 || got.Builds != 2 {
		t.Fatalf("metrics %+v", got)
	}
	if got.CircuitsByClass[isolation.Default.String()] != 2 {
		t.Fatalf("by class %v", got.CircuitsByClass)
	}
	infos := m.Circuits()
	if len(infos) != 2 || len(infos[0].Streams) != 2 || infos[0].State != "IN_USE" || len(infos[0].KeyTag) != 8 || len(infos[0].Keys) != 2 {
		t.Fatalf("Circuits %+v", infos)
	}
	a1.Release()
	a1.Release()
	if s := m.Circuits()[0].Streams; len(s) != 1 || s[0] != a2.StreamID {
		t.Fatalf("after release: %v", s)
	}
}

func TestExitPortRespected(t *testing.T) {
	b := &fakeBuilder{ports: func(u Usage) []uint16 { return []uint16{u.Port} }}
	m, _ := testManager(t, b, Config{})
	k80 := key("", "x", 80, isolation.Default)
	c80, _ := m.Get(ctx, Usage{Port: 80}, k80)
	c443, err := m.Get(ctx, Usage{Port: 443}, key("", "x", 443, isolation.Default))
	if err != nil {
		t.Fatal(err)
	}
	if c80 == c443 || !c443.AllowsPort(443) {
		t.Fatal("a circuit whose exit rejects 443 must not be used for 443")
	}
	// A builder returning a circuit that rejects the port is a failure.
	b.ports = func(Usage) []uint16 { return []uint16{1} }
	if _, err := m.Get(ctx, Usage{Port: 22}, key("", "x", 22, isolation.Default)); !errors.Is(err, ErrExitRejectsPort) {
		t.Fatalf("err = %v", err)
	}
}

func TestDirtiness(t *testing.T) {
	b := &fakeBuilder{}
	m, clk := testManager(t, b, Config{MaxCircuitDirtiness: 10 * time.Minute, UntrackedIdleTimeout: 5 * time.Minute})
	k := key("", "x", 80, isolation.Default)
	a, _ := m.Attach(ctx, Usage{Port: 80}, k)
	clk.Advance(9 * time.Minute)
	a2, _ := m.Attach(ctx, Usage{Port: 80}, k)
	if a2.CircID != a.CircID {
		t.Fatal("circuit dirty for 9 minutes must still be used")
	}
	clk.Advance(2 * time.Minute) // dirty for 11 minutes
	a3, _ := m.Attach(ctx, Usage{Port: 80}, k)
	if a3.CircID == a.CircID || a3.Reused {
		t.Fatal("circuit dirty longer than MaxCircuitDirtiness must take no new streams")
	}
	// The old circuit stays open while streams remain...
	m.maintain()
	old := b.all()[0]
	if old.closed.Load() {
		t.Fatal("dirty circuit with streams must stay open")
	}
	a.Release()
	a2.Release()
	m.maintain()
	waitFor(t, "old circuit closed", old.closed.Load)
	if b.all()[1].closed.Load() {
		t.Fatal("fresh circuit closed")
	}
	// Get (untracked) streams: closed after UntrackedIdleTimeout.
	a3.Release()
	k2 := key("other", "x", 80, isolation.Default)
	c4, _ := m.Get(ctx, Usage{Port: 80}, k2)
	clk.Advance(9 * time.Minute)
	if c, _ := m.Get(ctx, Usage{Port: 80}, k2); c != c4 {
		t.Fatal("fresh circuit not reused")
	}
	clk.Advance(2 * time.Minute) // dirty too long, but used 2 minutes ago
	m.maintain()
	if c4.closed.Load() {
		t.Fatal("untracked circuit closed before its idle timeout")
	}
	clk.Advance(4 * time.Minute)
	m.maintain()
	waitFor(t, "untracked circuit closed", c4.closed.Load)
}

func TestKeepAliveIsolateSOCKSAuth(t *testing.T) {
	b := &fakeBuilder{}
	m, clk := testManager(t, b, Config{MaxCircuitDirtiness: 10 * time.Minute})
	f := isolation.Default | isolation.KeepAliveIsolateSOCKSAuth
	k := key("alice", "x", 80, f)
	a, _ := m.Attach(ctx, Usage{Port: 80}, k)
	for i := 0; i < 5; i++ {
		clk.Advance(8 * time.Minute)
		a2, _ := m.Attach(ctx, Usage{Port: 80}, k)
		if a2.CircID != a.CircID {
			t.Fatalf("round %d: keep-alive circuit must stay usable", i)
		}
	}
	// Without credentials there is no keep-alive.
	n := key("", "x", 80, f)
	c, _ := m.Attach(ctx, Usage{Port: 80}, n)
	clk.Advance(8 * time.Minute)
	m.Attach(ctx, Usage{Port: 80}, n)
	clk.Advance(3 * time.Minute)
	c2, _ := m.Attach(ctx, Usage{Port: 80}, n)
	if c2.CircID == c.CircID {
		t.Fatal("no credentials: dirtiness must not be renewed")
	}
}

func TestNewIdentity(t *testing.T) {
	b := &fakeBuilder{}
	m, _ := testManager(t, b, Config{EnableCircuitPrebuilding: true})
	m.maintain()
	waitFor(t, "prebuilt", func() bool { g := m.Metrics(); return g.Clean >= 2 && g.Pending == 0 })
	prebuilt := b.all()
	k := func() isolation.Key {
		i := isolation.StreamInfo{DestAddr: "x", DestPort: 443, SessionGroup: -1, Epoch: m.Epoch()}
		return isolation.NewKey(i, isolation.Default)
	}
	k0 := k()
	a, _ := m.Attach(ctx, Usage{Port: 443}, k0)
	m.NewIdentity()
	if m.Epoch() != 1 {
		t.Fatal("epoch")
	}
	k1 := k()
	if k1 == k0 {
		t.Fatal("keys across NEWNYM must differ")
	}
	a1, err := m.Attach(ctx, Usage{Port: 443}, k1)
	if err != nil {
		t.Fatal(err)
	}
	if a1.CircID == a.CircID || a1.Reused {
		t.Fatal("stream after NEWNYM must not reuse an old circuit")
	}
	// Even the old key may not reuse old circuits.
	a2, _ := m.Attach(ctx, Usage{Port: 443}, k0)
	if a2.CircID == a.CircID {
		t.Fatal("old circuits are unusable after NEWNYM")
	}
	// Old clean prebuilt circuits were closed at once; the in-use one
	// stays until its stream goes.
	old := a.Circuit
	for _, c := range prebuilt {
		if c != old {
			waitFor(t, "old clean circuits closed", c.closed.Load)
		}
	}
	if old.closed.Load() {
		t.Fatal("in-use circuit closed under its stream")
	}
	a.Release()
	m.maintain()
	waitFor(t, "old in-use circuit closed", old.closed.Load)
}

func TestNewIdentityDuringBuild(t *testing.T) {
	b := &fakeBuilder{gate: make(chan struct{})}
	m, _ := testManager(t, b, Config{})
	k := key("", "x", 80, isolation.Default)
	res := make(chan *Attachment[*fakeCirc])
	go func() {
		a, err := m.Attach(ctx, Usage{Port: 80}, k)
		if err != nil {
			t.Log(err)
		}
		res <- a
	}()
	waitFor(t, "build started", func() bool { return b.builds.Load() == 1 })
	m.NewIdentity()
	b.gate <- struct{}{}
	a := <-res
	if a == nil {
		t.Fatal("pre-NEWNYM waiter must get its circuit")
	}
	if infos := m.Circuits(); infos[0].State != "UNUSABLE" {
		t.Fatalf("circuit from before NEWNYM must be unusable, got %s", infos[0].State)
	}
	go func() { b.gate <- struct{}{} }()
	a2, _ := m.Attach(ctx, Usage{Port: 80}, k)
	if a2.CircID == a.CircID {
		t.Fatal("reused a pre-NEWNYM circuit")
	}
}

func TestPrebuilding(t *testing.T) {
	b := &fakeBuilder{ports: func(u Usage) []uint16 { return []uint16{u.Port} }}
	m, clk := testManager(t, b, Config{EnableCircuitPrebuilding: true})
	m.maintain()
	waitFor(t, "4 clean circuits", func() bool { return m.Metrics().Clean == 4 })
	m.maintain() // enough: nothing more
	if n := b.builds.Load(); n != 4 {
		t.Fatalf("built %d, want 2 per predicted port", n)
	}
	a, err := m.Attach(ctx, Usage{Port: 443}, key("u", "x", 443, isolation.Default))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Metrics()
	if got.PrebuiltUsed != 1 || got.IsolationMisses != 1 {
		t.Fatalf("metrics %+v", got)
	}
	if a.Reused {
		t.Fatal("taking a clean circuit is a miss")
	}
	m.maintain()
	waitFor(t, "replacement built", func() bool { return m.Metrics().Clean == 4 })
	// A port used once becomes predicted.
	if _, err := m.Get(ctx, Usage{Port: 6667}, key("u", "x", 6667, isolation.Default)); err != nil {
		t.Fatal(err)
	}
	m.maintain()
	waitFor(t, "clean circuits for 6667", func() bool { return m.Metrics().Clean == 6 })
	// MaxCleanCircuits bounds it.
	for p := uint16(1000); p < 1020; p++ {
		m.Get(ctx, Usage{Port: p}, key("u", "x", p, isolation.Default))
	}
	m.maintain()
	waitFor(t, "prebuilds done", func() bool { return m.Metrics().Pending == 0 })
	if c := m.Metrics().Clean; c > 14 {
		t.Fatalf("%d clean circuits, max 14", c)
	}
	// Clean circuits idle too long are closed (and replaced).
	got = m.Metrics()
	clk.Advance(31 * time.Minute)
	m.maintain()
	if m.Metrics().Closed < got.Closed+uint64(got.Clean) {
		t.Fatalf("idle clean circuits not closed: before %+v after %+v", got, m.Metrics())
	}
}

func TestPendingBuildShared(t *testing.T) {
	b := &fakeBuilder{gate: make(chan struct{})}
	m, _ := testManager(t, b, Config{})
	k := key("alice", "x", 443, isolation.Default)
	const n = 50
	var wg sync.WaitGroup
	ids := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := m.Attach(ctx, Usage{Port: 443}, k)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = a.CircID
		}()
	}
	waitFor(t, "all waiting", func() bool { return m.Metrics().PendingJoins == n-1 })
	// An incompatible stream gets its own build.
	go func() { m.Attach(ctx, Usage{Port: 443}, key("bob", "x", 443, isolation.Default)) }()
	waitFor(t, "second build", func() bool { return b.builds.Load() == 2 })
	b.gate <- struct{}{}
	b.gate <- struct{}{}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatal("streams with one key must share one pending build")
		}
	}
	if got := b.builds.Load(); got != 2 {
		t.Fatalf("builds = %d", got)
	}
}

func TestPendingWaiterCancels(t *testing.T) {
	b := &fakeBuilder{gate: make(chan struct{})}
	m, _ := testManager(t, b, Config{})
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { _, err := m.Attach(cctx, Usage{Port: 80}, key("a", "x", 80, isolation.Default)); errc <- err }()
	waitFor(t, "build started", func() bool { return b.builds.Load() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	b.gate <- struct{}{}
	waitFor(t, "circuit becomes clean", func() bool { return m.Metrics().Clean == 1 })
	// The clean circuit serves anyone.
	a, err := m.Attach(ctx, Usage{Port: 80}, key("b", "x", 80, isolation.Default))
	if err != nil || b.builds.Load() != 1 || m.Metrics().PrebuiltUsed != 1 {
		t.Fatalf("clean circuit not reused: %v %+v", err, m.Metrics())
	}
	_ = a
}

func TestBuildRetries(t *testing.T) {
	b := &fakeBuilder{}
	var events []Event
	var mu sync.Mutex
	m, _ := testManager(t, b, Config{MaxBuildAttempts: 3, OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	b.fail.Store(2)
	a, err := m.Attach(ctx, Usage{Port: 80}, key("", "x", 80, isolation.Default))
	if err != nil {
		t.Fatalf("third attempt should succeed: %v", err)
	}
	got := m.Metrics()
	if got.Builds != 3 || got.BuildFailures != 2 || got.Retries != 2 {
		t.Fatalf("metrics %+v", got)
	}
	mu.Lock()
	var seq []string
	for _, e := range events {
		seq = append(seq, e.Type.String())
	}
	mu.Unlock()
	want := []string{"LAUNCHED", "FAILED", "LAUNCHED", "FAILED", "LAUNCHED", "BUILT", "STREAM_ATTACHED"}
	if len(seq) != len(want) {
		t.Fatalf("events %v", seq)
	}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("events %v", seq)
		}
	}
	if events[len(events)-1].CircID != a.CircID || events[0].CircID == a.CircID {
		t.Fatal("each attempt is its own circuit ID; the stream event names the built one")
	}

	b.fail.Store(100)
	_, err = m.Attach(ctx, Usage{Port: 80}, key("other", "x", 80, isolation.Default))
	if !errors.Is(err, errFakeBuild) {
		t.Fatalf("err = %v", err)
	}
	if got := m.Metrics().Builds; got != 6 {
		t.Fatalf("attempts must be bounded: %d builds", got)
	}
}

func TestBuildTimeout(t *testing.T) {
	b := &fakeBuilder{}
	b.block.Store(true)
	m, _ := testManager(t, b, Config{CircuitBuildTimeout: 20 * time.Millisecond, MaxBuildAttempts: 2})
	start := time.Now()
	_, err := m.Get(ctx, Usage{Port: 80}, key("", "x", 80, isolation.Default))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestCircuitClosedIsForgotten(t *testing.T) {
	b := &fakeBuilder{}
	m, _ := testManager(t, b, Config{})
	k := key("", "x", 80, isolation.Default)
	c, _ := m.Get(ctx, Usage{Port: 80}, k)
	c.Close() // DESTROY from the network
	waitFor(t, "forgotten", func() bool { return m.Metrics().Live == 0 })
	c2, _ := m.Get(ctx, Usage{Port: 80}, k)
	if c2 == c {
		t.Fatal("closed circuit reused")
	}
	m.mu.Lock()
	n := 0
	for _, idx := range m.index {
		n += len(idx)
	}
	m.mu.Unlock()
	if n != 1 {
		t.Fatalf("index holds %d keys, want 1", n)
	}
}

func TestManyKeysMemoryBounded(t *testing.T) {
	b := &fakeBuilder{}
	m, clk := testManager(t, b, Config{MaxCircuits: 20000})
	for i := range 10000 {
		a, err := m.Attach(ctx, Usage{Port: 443}, key(string(rune('a'+i%26))+string(rune(i)), "x", 443, isolation.Default))
		if err != nil {
			t.Fatal(err)
		}
		a.Release()
	}
	if got := m.Metrics().Live; got != 10000 {
		t.Fatalf("live = %d", got)
	}
	clk.Advance(11 * time.Minute)
	m.maintain()
	m.mu.Lock()
	n := 0
	for _, idx := range m.index {
		n += len(idx)
	}
	live := len(m.circs)
	m.mu.Unlock()
	if n != 0 || live != 0 {
		t.Fatalf("after expiry: %d index keys, %d circuits", n, live)
	}
	if len(m.Metrics().CircuitsByClass) != 0 {
		t.Fatal("class counts leaked")
	}
}

func TestMaxCircuits(t *testing.T) {
	b := &fakeBuilder{}
	m, _ := testManager(t, b, Config{MaxCircuits: 3})
	for i := range 3 {
		if _, err := m.Attach(ctx, Usage{Port: 80}, key(string(rune('a'+i)), "x", 80, isolation.Default)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Attach(ctx, Usage{Port: 80}, key("z", "x", 80, isolation.Default)); !errors.Is(err, ErrTooManyCircuits) {
		t.Fatalf("err = %v", err)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	b := &fakeBuilder{gate: make(chan struct{})}
	m := New[*fakeCirc](b, Config{EnableCircuitPrebuilding: true, MaintenanceInterval: time.Millisecond})
	errc := make(chan error)
	go func() { _, err := m.Get(ctx, Usage{Port: 80}, key("", "x", 80, isolation.Default)); errc <- err }()
	waitFor(t, "builds running", func() bool { return b.builds.Load() >= 2 })
	m.Close()
	if err := <-errc; err == nil {
		t.Fatal("pending Get must fail on Close")
	}
	if _, err := m.Get(ctx, Usage{Port: 80}, key("", "x", 80, isolation.Default)); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	waitFor(t, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
	for _, c := range b.all() {
		if !c.closed.Load() {
			t.Fatal("circuit left open")
		}
	}
}

func TestCloseClosesCircuits(t *testing.T) {
	before := runtime.NumGoroutine()
	b := &fakeBuilder{}
	m := New[*fakeCirc](b, Config{})
	for i := range 10 {
		m.Get(ctx, Usage{Port: 80}, key(string(rune('a'+i)), "x", 80, isolation.Default))
	}
	m.Close()
	for _, c := range b.all() {
		if !c.closed.Load() {
			t.Fatal("circuit left open")
		}
	}
	waitFor(t, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}

func TestEventsAndInfo(t *testing.T) {
	var mu sync.Mutex
	var events []Event
	var logs bytes.Buffer
	b := &fakeBuilder{}
	m, clk := testManager(t, b, Config{
		OnEvent: func(e Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	k := key("alice-secret-user", "secret.example", 443, isolation.Default|isolation.IsolateDestAddr)
	a, _ := m.Attach(ctx, Usage{Port: 443}, k)
	infos := m.Circuits()
	if len(infos) != 1 || infos[0].KeyTag != k.Tag() || infos[0].Class != k.Flags() || infos[0].Streams[0] != a.StreamID {
		t.Fatalf("info %+v", infos)
	}
	a.Release()
	clk.Advance(11 * time.Minute)
	m.maintain()
	waitFor(t, "closed", func() bool { return m.Metrics().Live == 0 })
	m.flushEvents()
	mu.Lock()
	var seq []string
	for _, e := range events {
		seq = append(seq, e.Type.String())
		if e.CircID != a.CircID {
			t.Errorf("event %v names circuit %d", e.Type, e.CircID)
		}
	}
	mu.Unlock()
	want := "LAUNCHED BUILT STREAM_ATTACHED STREAM_DETACHED UNUSABLE CLOSED"
	if got := strings.Join(seq, " "); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if events[2].KeyTag != k.Tag() || len(events[2].KeyTag) != 8 {
		t.Fatalf("stream event key tag %q", events[2].KeyTag)
	}
	out := logs.String()
	if !strings.Contains(out, k.Tag()) {
		t.Fatalf("debug log lacks key tag: %s", out)
	}
	for _, secret := range []string{"alice", "secret.example", "pw", "127.0.0.1"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log leaks %q: %s", secret, out)
		}
	}
}

func TestRetire(t *testing.T) {
	b := &fakeBuilder{}
	m, _ := testManager(t, b, Config{})
	k := key("", "x", 80, isolation.Default)
	a, _ := m.Attach(ctx, Usage{Port: 80}, k)
	m.Retire(a.CircID, "exit refused")
	a2, _ := m.Attach(ctx, Usage{Port: 80}, k)
	if a2.CircID == a.CircID {
		t.Fatal("retired circuit reused")
	}
	if a.Circuit.closed.Load() {
		t.Fatal("retired circuit closed under its stream")
	}
	a.Release()
	m.maintain()
	waitFor(t, "retired circuit closed", a.Circuit.closed.Load)
	m.Retire(12345, "unknown") // ignored
}

func TestReady(t *testing.T) {
	b := &fakeBuilder{}
	m, _ := testManager(t, b, Config{})
	if err := m.Ready(ctx, Usage{Port: 80}); err != nil {
		t.Fatal(err)
	}
	if got := m.Metrics(); got.Clean != 1 || len(got.CircuitsByClass) != 0 {
		t.Fatalf("Ready must leave a clean, unbound circuit: %+v", got)
	}
	if err := m.Ready(ctx, Usage{Port: 80}); err != nil || b.builds.Load() != 1 {
		t.Fatalf("second Ready must not build: %v, %d builds", err, b.builds.Load())
	}
	a, _ := m.Attach(ctx, Usage{Port: 80}, key("u", "x", 80, isolation.Default))
	if m.Metrics().PrebuiltUsed != 1 || a.Reused {
		t.Fatal("the Ready circuit serves the first stream")
	}
	b.fail.Store(100)
	if err := m.Ready(ctx, Usage{Port: 443}); !errors.Is(err, errFakeBuild) {
		t.Fatalf("err = %v", err)
	}
}

func TestPortZeroAcceptsAnyExit(t *testing.T) {
	b := &fakeBuilder{ports: func(Usage) []uint16 { return []uint16{443} }}
	m, _ := testManager(t, b, Config{})
	k := key("", "x", 0, isolation.Default)
	c, err := m.Get(ctx, Usage{}, k)
	if err != nil {
		t.Fatalf("port 0 must accept any exit: %v", err)
	}
	if c2, _ := m.Get(ctx, Usage{}, k); c2 != c {
		t.Fatal("port 0 stream must reuse the circuit")
	}
}

// TestCTorMixedRule: in one session group, a stream whose listener does
// not isolate destinations may join a destination-isolated circuit; the
// circuit is then mixed and no destination-isolated stream may join.
func TestCTorMixedRule(t *testing.T) {
	b := &fakeBuilder{}
	m, _ := testManager(t, b, Config{})
	mk := func(dest string, f isolation.Flags, listener uint32) isolation.Key {
		return isolation.NewKey(isolation.StreamInfo{DestAddr: dest, DestPort: 443, Listener: listener, SessionGroup: 3}, f)
	}
	strict := isolation.Default | isolation.IsolateDestAddr
	a, _ := m.Attach(ctx, Usage{Port: 443}, mk("a.example", strict, 1))
	bb, _ := m.Attach(ctx, Usage{Port: 443}, mk("b.example", isolation.Default, 2))
	if bb.CircID != a.CircID {
		t.Fatal("loose listener's stream may join (C tor)")
	}
	c, _ := m.Attach(ctx, Usage{Port: 443}, mk("a.example", strict, 1))
	if c.CircID == a.CircID {
		t.Fatal("circuit mixed on destination: a destination-isolated stream must not join")
	}
	if in := m.Circuits()[0]; in.Mixed != isolation.IsolateDestAddr {
		t.Fatalf("mixed = %v", in.Mixed)
	}
	// Without the shared group the listeners never meet.
	d, _ := m.Attach(ctx, Usage{Port: 443}, isolation.NewKey(isolation.StreamInfo{DestAddr: "a.example", DestPort: 443, Listener: 2, SessionGroup: -1}, isolation.Default))
	e, _ := m.Attach(ctx, Usage{Port: 443}, isolation.NewKey(isolation.StreamInfo{DestAddr: "a.example", DestPort: 443, Listener: 1, SessionGroup: -1}, isolation.Default))
	if d.CircID == e.CircID {
		t.Fatal("different listeners must never share")
	}
}

func TestPrebuildFailureBudget(t *testing.T) {
	b := &fakeBuilder{}
	b.fail.Store(1 << 30)
	m, clk := testManager(t, b, Config{EnableCircuitPrebuilding: true, MaxBuildAttempts: 3, MaxFailuresPerPeriod: 5, NewCircuitPeriod: 30 * time.Second})
	for range 20 {
		m.maintain()
		waitFor(t, "no pending", func() bool { return m.Metrics().Pending == 0 })
	}
	n := b.builds.Load()
	if n < 5 || n > 9 {
		t.Fatalf("%d prebuild attempts; want the budget (5) to stop them", n)
	}
	clk.Advance(31 * time.Second)
	m.maintain() // new period: budget reset, one more round
	waitFor(t, "no pending", func() bool { return m.Metrics().Pending == 0 })
	if b.builds.Load() == n {
		t.Fatal("prebuilding must resume in the next NewCircuitPeriod")
	}
}

// checkIndex verifies the index against the circuits: every indexed
// position points back at its circuit, every bucket entry is indexed,
// and only usable bound circuits are indexed.
func checkIndex[C Circuit](t testing.TB, m *Manager[C]) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	entries := 0
	for f, idx := range m.index {
		for k, list := range idx {
			if len(list) == 0 {
				t.Fatalf("empty bucket kept")
			}
			for i, c := range list {
				entries++
				ok := false
				for _, r := range c.indexed {
					if r.flags == f && r.key == k && r.pos == i {
						ok = true
					}
				}
				if !ok {
					t.Fatalf("circuit %d at %v/%x[%d] has no matching indexRef %+v", c.id, f, k, i, c.indexed)
				}
				if c.closed || c.unusable || !c.binding.IsSet() {
					t.Fatalf("circuit %d indexed though closed=%v unusable=%v bound=%v", c.id, c.closed, c.unusable, c.binding.IsSet())
				}
			}
		}
	}
	refs := 0
	for _, c := range m.circs {
		refs += len(c.indexed)
	}
	if refs != entries {
		t.Fatalf("%d indexRefs for %d bucket entries", refs, entries)
	}
}

// The zero Key (used by callers that do not care about isolation) works
// and keeps the index consistent; removal stays O(1) in big buckets.
func TestZeroKeyAndIndexConsistency(t *testing.T) {
	b := &fakeBuilder{}
	m, clk := testManager(t, b, Config{MaxCircuits: 1000})
	c0, err := m.Get(ctx, Usage{Port: 80}, isolation.Key{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := m.Get(ctx, Usage{Port: 80}, isolation.Key{}); c != c0 {
		t.Fatal("zero keys share")
	}
	var as []*Attachment[*fakeCirc]
	for i := range 100 {
		a, _ := m.Attach(ctx, Usage{Port: 80}, key(fmt.Sprint("u", i), "x", 80, isolation.Default))
		as = append(as, a)
		if a.Circuit == c0 {
			t.Fatal("stream joined the zero-key circuit")
		}
	}
	checkIndex(t, m)
	for i, a := range as {
		if i%3 == 0 {
			m.Retire(a.CircID, "test")
		}
		if i%5 == 0 {
			a.Circuit.Close()
		}
	}
	waitFor(t, "closed circuits forgotten", func() bool { return m.Metrics().Closed >= 20 })
	checkIndex(t, m)
	clk.Advance(time.Hour)
	for _, a := range as {
		a.Release()
	}
	m.maintain()
	checkIndex(t, m)
	m.mu.Lock()
	n := 0
	for _, idx := range m.index {
		n += len(idx)
	}
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d buckets left", n)
	}
}

func TestLookup(t *testing.T) {
	m, _ := testManager(t, &fakeBuilder{}, Config{})
	a, _ := m.Attach(ctx, Usage{Port: 80}, key("", "x", 80, isolation.Default))
	if c, ok := m.Lookup(a.CircID); !ok || c != a.Circuit {
		t.Fatal("Lookup of a live circuit")
	}
	a.Circuit.Close()
	waitFor(t, "forgotten", func() bool { _, ok := m.Lookup(a.CircID); return !ok })
}

// The default predicted ports stop being predicted PredictedPortTTL after
// start when no stream used them: an idle client stops building circuits
// (C tor predicts port 80 at start-up only), so its guard channel can go
// idle and stop padding.
func TestPredictionExpires(t *testing.T) {
	b := &fakeBuilder{ports: func(u Usage) []uint16 { return []uint16{u.Port} }}
	m, clk := testManager(t, b, Config{EnableCircuitPrebuilding: true})
	m.maintain()
	waitFor(t, "4 clean circuits", func() bool { return m.Metrics().Clean == 4 })
	clk.Advance(61 * time.Minute) // past PredictedPortTTL and CleanIdleTimeout
	m.maintain()
	m.maintain()
	waitFor(t, "no build pending", func() bool { return m.Metrics().Pending == 0 })
	if n, clean := b.builds.Load(), m.Metrics().Clean; n != 4 || clean != 0 {
		t.Fatalf("%d builds, %d clean circuits; want the first 4 builds only, none left: nothing is predicted any more", n, clean)
	}
	// A stream makes its port predicted again.
	if _, err := m.Get(ctx, Usage{Port: 443}, key("u", "x", 443, isolation.Default)); err != nil {
		t.Fatal(err)
	}
	m.maintain()
	waitFor(t, "prebuilt again for 443", func() bool { return m.Metrics().Clean >= 1 })
}
