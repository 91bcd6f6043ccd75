package reliability

// Load through the SOCKS port: many concurrent clients doing short
// requests while long downloads run, then a check that memory and
// goroutines return to idle levels.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/gotor/gotor/internal/testnet"
)

// loadSize is the size of a load run: CI's reduced size by default,
// the full size with GOTOR_LOAD_FULL=1.
type loadSize struct {
	clients, requestsPerClient, downloads int
	downloadFor                           time.Duration
}

func currentLoadSize() loadSize {
	if os.Getenv("GOTOR_LOAD_FULL") == "1" {
		return loadSize{clients: 2000, requestsPerClient: 3, downloads: 200, downloadFor: 60 * time.Second}
	}
	return loadSize{clients: 200, requestsPerClient: 3, downloads: 20, downloadFor: 15 * time.Second}
}

// Pass criteria (docs/RELIABILITY.md).
const (
	minSuccessRate   = 0.99
	maxP99           = 60 * time.Second
	goroutineMargin  = 100 // over the idle count after the first circuit
	goroutineSettle  = 60 * time.Second
	heapGrowthFactor = 3 // idle heap after the run vs. idle heap before
)

func raiseNoFile(t *testing.T, want uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= want {
		return
	}
	rl.Cur = min(want, rl.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Logf("raising RLIMIT_NOFILE: %v", err)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	t.Logf("RLIMIT_NOFILE %d (hard %d)", rl.Cur, rl.Max)
}

func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return -1
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestLoad runs clients×requestsPerClient short HTTP requests through the
// SOCKS port, all clients at once, while downloads long transfers run for
// downloadFor. It measures the success rate, latency percentiles,
// download throughput, heap, RSS and goroutines, and requires the
// goroutines to return to the idle level afterwards.
func TestLoad(t *testing.T) {
	n := testnet.Shared(t)
	size := currentLoadSize()
	raiseNoFile(t, uint64(size.clients+size.downloads)*4+4096)
	c, logs := newClient(t, n, clientOpts{})
	srv, err := testnet.StartHTTPServer(1 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	es := startEndlessServer(t)
	socksAddr := c.SocksAddrs()[0]
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)

	// Warm up (one request), then take the idle baseline.
	if err := socksGet(socksAddr, target, time.Minute); err != nil {
		t.Fatalf("warm-up request: %v", err)
	}
	time.Sleep(time.Second) // let the warm-up stream's goroutines finish before the baseline
	baseG := runtime.NumGoroutine()
	baseHeap := heapInuse()
	baseRSS := rssKiB()

	var (
		peakG    atomic.Int64
		stop     = make(chan struct{})
		samplerW sync.WaitGroup
		peakRSS  atomic.Int64
	)
	samplerW.Add(1)
	go func() {
		defer samplerW.Done()
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if g := int64(runtime.NumGoroutine()); g > peakG.Load() {
					peakG.Store(g)
				}
				if r := rssKiB(); r > peakRSS.Load() {
					peakRSS.Store(r)
				}
			}
		}
	}()

	start := time.Now()
	// Long downloads.
	var dlWG sync.WaitGroup
	dlBytes := make([]int64, size.downloads)
	dlErrs := make([]error, size.downloads)
	for i := range size.downloads {
		dlWG.Add(1)
		go func() {
			defer dlWG.Done()
			dlBytes[i], dlErrs[i] = socksDownload(socksAddr, es.addr(), size.downloadFor)
		}()
	}
	// Short requests, every client at once.
	lat := make([]time.Duration, 0, size.clients*size.requestsPerClient)
	var latMu sync.Mutex
	var fails atomic.Int64
	var failMu sync.Mutex
	failSamples := map[string]int{}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range size.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			for range size.requestsPerClient {
				t0 := time.Now()
				err := socksGet(socksAddr, target, 2*time.Minute)
				d := time.Since(t0)
				if err != nil {
					fails.Add(1)
					failMu.Lock()
					failSamples[shortErr(err)]++
					failMu.Unlock()
					continue
				}
				latMu.Lock()
				lat = append(lat, d)
				latMu.Unlock()
			}
		}()
	}
	close(gate)
	wg.Wait()
	shortDone := time.Since(start)
	dlWG.Wait()
	close(stop)
	samplerW.Wait()
	peakHeap := heapInuse()

	total := size.clients * size.requestsPerClient
	ok := len(lat)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return -1
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	var dlTotal int64
	dlFailed := 0
	for i := range dlBytes {
		dlTotal += dlBytes[i]
		if dlErrs[i] != nil {
			dlFailed++
		}
	}

	// Back to idle.
	settleStart := time.Now()
	var afterG int
	for {
		afterG = runtime.NumGoroutine()
		if afterG <= baseG+goroutineMargin || time.Since(settleStart) > goroutineSettle {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	afterHeap := heapInuse()
	afterRSS := rssKiB()

	t.Logf("size: %d clients x %d requests, %d downloads for %v", size.clients, size.requestsPerClient, size.downloads, size.downloadFor)
	t.Logf("short requests: %d/%d ok (%.2f%%) in %v; latency p50 %v p90 %v p99 %v max %v",
		ok, total, 100*float64(ok)/float64(total), shortDone.Round(time.Millisecond),
		pct(0.50).Round(time.Millisecond), pct(0.90).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	if len(failSamples) > 0 {
		t.Logf("failures by error: %v", failSamples)
	}
	t.Logf("downloads: %d/%d ran to the end, %.1f MiB in total (%.2f MiB/s aggregate)",
		size.downloads-dlFailed, size.downloads, float64(dlTotal)/(1<<20), float64(dlTotal)/(1<<20)/size.downloadFor.Seconds())
	t.Logf("goroutines: idle %d, peak %d, after %d (settled in %v)", baseG, peakG.Load(), afterG, time.Since(settleStart).Round(time.Millisecond))
	t.Logf("heap in use: idle %.1f MiB, end of run %.1f MiB, after %.1f MiB; RSS idle %.1f MiB, peak %.1f MiB, after %.1f MiB",
		mib(baseHeap), mib(peakHeap), mib(afterHeap), float64(baseRSS)/1024, float64(peakRSS.Load())/1024, float64(afterRSS)/1024)

	if rate := float64(ok) / float64(total); rate < minSuccessRate {
		t.Errorf("success rate %.2f%% below %.0f%%\n--- log ---\n%s", 100*rate, 100*minSuccessRate, tail(logs.String(), 20))
	}
	if p := pct(0.99); p > maxP99 {
		t.Errorf("p99 latency %v above %v", p, maxP99)
	}
	if dlFailed > 0 {
		t.Errorf("%d of %d long downloads failed; first: %v", dlFailed, size.downloads, firstErr(dlErrs))
	}
	if afterG > baseG+goroutineMargin {
		t.Errorf("goroutines did not return to idle: %d after the run, %d before (margin %d)\n%s", afterG, baseG, goroutineMargin, goroutineSummary())
	}
	if afterHeap > heapGrowthFactor*baseHeap+(16<<20) {
		t.Errorf("heap in use %.1f MiB after the run, %.1f MiB before", mib(afterHeap), mib(baseHeap))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// goroutineSummary counts goroutines by their top function, for leak
// reports.
func goroutineSummary() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	counts := map[string]int{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		lines := strings.Split(string(g), "\n")
		if len(lines) >= 2 {
			counts[strings.TrimSpace(lines[1])]++
		}
	}
	type kv struct {
		k string
		v int
	}
	var s []kv
	for k, v := range counts {
		s = append(s, kv{k, v})
	}
	slices.SortFunc(s, func(a, b kv) int { return b.v - a.v })
	var b strings.Builder
	for i, e := range s {
		if i == 15 {
			break
		}
		fmt.Fprintf(&b, "%6d %s\n", e.v, e.k)
	}
	return b.String()
}

func socksDial(socksAddr, target string, limit time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	return itest.SOCKSDial(ctx, socksAddr, target, "")
}

// socksGet does one HTTP/1.0 GET / through the SOCKS port.
func socksGet(socksAddr, target string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	conn, err := socksDial(socksAddr, target, limit)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return err
	}
	body, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(body, []byte(testnet.HelloBody)) {
		return fmt.Errorf("unexpected answer (%d bytes)", len(body))
	}
	return nil
}

// socksDownload reads from the endless server for d and returns the
// bytes read; an error means the transfer broke before d passed.
func socksDownload(socksAddr, target string, d time.Duration) (int64, error) {
	conn, err := socksDial(socksAddr, target, 2*time.Minute)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	end := time.Now().Add(d)
	buf := make([]byte, 32<<10)
	var total int64
	for time.Now().Before(end) {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		k, err := conn.Read(buf)
		total += int64(k)
		if err != nil {
			return total, fmt.Errorf("after %d bytes: %w", total, err)
		}
	}
	return total, nil
}
