package circmgr

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// Benchmarks of the pool's hot path with fake circuits: they measure
// key building and selection only, no network.

func benchInfo(i int) isolation.StreamInfo {
	return isolation.StreamInfo{
		DestAddr:     "www.example.com",
		DestPort:     443,
		Username:     fmt.Appendf(nil, "user-%d", i),
		Password:     []byte("password"),
		ClientAddr:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(30000+i%30000)),
		SessionGroup: isolation.SessionGroupUnset,
		Protocol:     isolation.ProtoSOCKS5,
	}
}

const benchFlags = isolation.Default | isolation.IsolateDestAddr | isolation.IsolateDestPort

// cpuTime is the process's user+system CPU time. The benchmarks report
// CPU ns per operation next to wall-clock ns/op, because the build
// machine is shared and wall-clock figures inflate under load.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds CPU ns/op and throughput figures.
func report(b *testing.B, n int64, wall time.Duration, cpu time.Duration) {
	if n == 0 {
		return
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
	b.ReportMetric(float64(n)/wall.Seconds(), "lookups/s")
	if cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "lookups/cpu-s")
	}
}

// populated returns a manager holding n live circuits, one per key.
func populated(b *testing.B, n int) (*Manager[*fakeCirc], []isolation.StreamInfo) {
	return populatedCfg(b, n, Config{MaxCircuits: 2 * n})
}

func populatedCfg(b *testing.B, n int, cfg Config) (*Manager[*fakeCirc], []isolation.StreamInfo) {
	m, _ := testManager(b, &fakeBuilder{}, cfg)
	infos := make([]isolation.StreamInfo, n)
	for i := range n {
		infos[i] = benchInfo(i)
		if _, err := m.Get(ctx, Usage{Port: 443}, isolation.NewKey(infos[i], benchFlags)); err != nil {
			b.Fatal(err)
		}
	}
	if got := m.Metrics().Live; got != n {
		b.Fatalf("live = %d", got)
	}
	return m, infos
}

// BenchmarkKeyAndLookup: build a key from a SOCKS request (credentials
// and destination hashed) and find its circuit among 10,000.
func BenchmarkKeyAndLookup(b *testing.B) {
	m, infos := populated(b, 10000)
	b.ReportAllocs()
	i := 0
	var start time.Time
	var c0 time.Duration
	for b.Loop() {
		if i == 0 {
			start, c0 = time.Now(), cpuTime()
		}
		k := isolation.NewKey(infos[i%len(infos)], benchFlags)
		if _, err := m.Get(ctx, Usage{Port: 443}, k); err != nil {
			b.Fatal(err)
		}
		i++
	}
	report(b, int64(i), time.Since(start), cpuTime()-c0)
	if m.Metrics().Live != len(infos) {
		b.Fatal("lookups built circuits")
	}
}

// BenchmarkLookup10k: pool lookups (Get hits) with 10,000 live keys,
// keys prebuilt.
func BenchmarkLookup10k(b *testing.B) {
	m, infos := populated(b, 10000)
	keys := make([]isolation.Key, len(infos))
	for i := range infos {
		keys[i] = isolation.NewKey(infos[i], benchFlags)
	}
	b.ReportAllocs()
	i := 0
	var start time.Time
	var c0 time.Duration
	for b.Loop() {
		if i == 0 {
			start, c0 = time.Now(), cpuTime()
		}
		if _, err := m.Get(ctx, Usage{Port: 443}, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	report(b, int64(i), time.Since(start), cpuTime()-c0)
}

// BenchmarkLookup10kParallel: the same from GOMAXPROCS goroutines.
func BenchmarkLookup10kParallel(b *testing.B) {
	m, infos := populated(b, 10000)
	keys := make([]isolation.Key, len(infos))
	for i := range infos {
		keys[i] = isolation.NewKey(infos[i], benchFlags)
	}
	var next, total atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start, c0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		n := int64(0)
		for pb.Next() {
			if _, err := m.Get(ctx, Usage{Port: 443}, keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i++
			n++
		}
		total.Add(n)
	})
	report(b, total.Load(), time.Since(start), cpuTime()-c0)
}

// BenchmarkAttachRelease10k: tracked streams (Attach + Release).
func BenchmarkAttachRelease10k(b *testing.B) {
	m, infos := populated(b, 10000)
	keys := make([]isolation.Key, len(infos))
	for i := range infos {
		keys[i] = isolation.NewKey(infos[i], benchFlags)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a, err := m.Attach(ctx, Usage{Port: 443}, keys[i%len(keys)])
		if err != nil {
			b.Fatal(err)
		}
		a.Release()
		i++
	}
}

// BenchmarkAttachRelease10kEvents: Attach + Release with an OnEvent hook
// (as the client wires it for the control port): adds the key tag
// (SHA-256) and event delivery per stream.
func BenchmarkAttachRelease10kEvents(b *testing.B) {
	var n atomic.Int64
	m, infos := populatedCfg(b, 10000, Config{MaxCircuits: 20000, OnEvent: func(Event) { n.Add(1) }})
	keys := make([]isolation.Key, len(infos))
	for i := range infos {
		keys[i] = isolation.NewKey(infos[i], benchFlags)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a, err := m.Attach(ctx, Usage{Port: 443}, keys[i%len(keys)])
		if err != nil {
			b.Fatal(err)
		}
		a.Release()
		i++
	}
}
