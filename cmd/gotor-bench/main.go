// Command gotor-bench measures gotor side by side with the C tor client
// on a private Tor network (internal/testnet) on 127.0.0.1 (issue #12).
//
//	go run ./cmd/gotor-bench               # full run, < 10 minutes
//	go run ./cmd/gotor-bench -quick        # short run, < 3 minutes
//	go run ./cmd/gotor-bench -out docs/bench
//	go run ./cmd/gotor-bench -latency 40ms -phases bulk -bulk-reps 3
//	go run ./cmd/gotor-bench -bridge obfs4 -phases bulk,"bootstrap restarts" -bulk-mib 10
//
// -latency gives every ORPort link of the network that one-way delay in
// each direction (testnet.Options.Latency: a userspace proxy per ORPort),
// as the real network's round trips are; on loopback windows never bind.
// -phases runs only the named phases (after bootstrapping both clients).
// -bridge starts a C tor bridge (obfs4 or plain) and gives both clients
// the same UseBridges, Bridge and ClientTransportPlugin lines, so every
// measurement goes through it.
//
// It builds ./cmd/gotor, starts the network, then runs gotor and C tor as
// separate processes from the same client torrc and measures both
// alternately through their SOCKS ports: OnionPerf-style transfers (time
// to first and last byte for 50 KiB, 1 MiB and 5 MiB on fresh SOCKS
// connections), bulk downloads with each process's CPU time per MiB,
// SOCKS-to-CONNECTED time, circuit build time (CIRC events on the control
// port), bootstrap time (empty DataDirectory and restart from cache) and
// resident memory (idle and with 1,000 open streams), and, for onion
// services hosted by a gotor and a C tor process, the time to the first
// descriptor upload, a cold connection's time to first byte and 10 MiB
// throughput (hosting.go). It prints a table
// with the ratio gotor / C tor, and with -out writes the table as
// Markdown (results.md), the CDFs of time to first and last byte
// (ttfb-ttlb-cdf.svg) and the top of a CPU and allocation profile of
// gotor during a bulk download (profile.txt).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

type options struct {
	quick    bool
	out      string
	reps     int
	bulkReps int
	bootReps int
	bulkMiB  int
	parN     int
	parMiB   int
	streams  int
	profile  bool
	gotorBin string
	trace    bool
	latency  time.Duration
	phases   string
	bridge   string
	pinPath  bool
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "short run (< 3 minutes): fewer repetitions, smaller bulk downloads")
	flag.StringVar(&o.out, "out", "", "directory for results.md, ttfb-ttlb-cdf.svg and profile.txt")
	flag.IntVar(&o.reps, "reps", 0, "transfers per file size and client (default 40, 10 with -quick)")
	flag.IntVar(&o.streams, "streams", 1000, "concurrent streams for the memory measurement")
	flag.BoolVar(&o.profile, "profile", true, "profile gotor (CPU and allocations) during one extra bulk download")
	flag.BoolVar(&o.trace, "trace", false, "also record a runtime trace of gotor in the profiled window and add its scheduler-latency profile to profile.txt")
	flag.StringVar(&o.gotorBin, "gotor", "", "use this gotor binary instead of building ./cmd/gotor (e.g. to compare a patched build)")
	flag.DurationVar(&o.latency, "latency", 0, "one-way delay of every ORPort link, each direction (e.g. 40ms); 0: loopback")
	flag.StringVar(&o.bridge, "bridge", "", "both clients reach the network only through a bridge of the network: \"obfs4\" (obfs4proxy on both sides, the same Bridge line) or \"plain\"")
	flag.StringVar(&o.phases, "phases", "", "comma-separated phases to run after bootstrap (warm-up, transfers, fresh circuits, bulk, streams, cold .onion, onion hosting, profile, bootstrap restarts); empty: all")
	flag.BoolVar(&o.pinPath, "pin-path", false, "both clients use the same path, relay0 -> relay1 -> exit0 (EntryNodes, ExitNodes, ExcludeNodes), so path differences do not show as client differences")
	bulkReps := flag.Int("bulk-reps", 0, "bulk downloads per client and kind (default 3, 1 with -quick)")
	bulkMiB := flag.Int("bulk-mib", 0, "size of the single-stream bulk download in MiB (default 100, 25 with -quick)")
	replot := flag.String("replot", "", "only redraw the chart from a transfers.csv of an earlier run (into -out)")
	flag.Parse()
	if *replot != "" {
		if err := doReplot(*replot, o.out); err != nil {
			fmt.Fprintf(os.Stderr, "gotor-bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if o.quick {
		o.bulkReps, o.bootReps, o.bulkMiB, o.parN, o.parMiB = 1, 1, 25, 8, 5
		if o.reps == 0 {
			o.reps = 10
		}
	} else {
		o.bulkReps, o.bootReps, o.bulkMiB, o.parN, o.parMiB = 3, 3, 100, 8, 20
		if o.reps == 0 {
			o.reps = 40
		}
	}
	if *bulkReps > 0 {
		o.bulkReps = *bulkReps
	}
	if *bulkMiB > 0 {
		o.bulkMiB = *bulkMiB
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "gotor-bench: %v\n", err)
		os.Exit(1)
	}
}

func doReplot(csvPath, out string) error {
	text, err := os.ReadFile(csvPath)
	if err != nil {
		return err
	}
	r := &results{}
	if err := r.readCSV(string(text)); err != nil {
		return fmt.Errorf("%s: %v", csvPath, err)
	}
	if out == "" {
		out = filepath.Dir(csvPath)
	}
	return os.WriteFile(filepath.Join(out, "ttfb-ttlb-cdf.svg"), []byte(r.svg()), 0o644)
}

var (
	progressMu sync.Mutex
	began      = time.Now()
)

// progress prints one line to stderr, prefixed with the elapsed time.
func progress(format string, args ...any) {
	progressMu.Lock()
	defer progressMu.Unlock()
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
}

// raiseNofile lifts the soft open-file limit to the hard limit. An
// explicit Setrlimit also makes Go pass the raised limit on to child
// processes (the relays and both clients), which the 1,000-stream
// measurement needs at the exits.
func raiseNofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Cur, nil
}

func run(ctx context.Context, o options) error {
	nofile, err := raiseNofile()
	if err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE: %v", err)
	}
	if nofile < uint64(3*o.streams+200) {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is too low for %d streams", nofile, o.streams)
	}
	torBin, err := exec.LookPath("tor")
	if err != nil {
		return fmt.Errorf("%w", testnet.ErrTorMissing)
	}
	work, err := os.MkdirTemp("", "gotor-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	gotorBin := o.gotorBin
	gotorRev := "unknown revision"
	if gotorBin == "" {
		progress("building gotor")
		gotorBin = filepath.Join(work, "gotor")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", gotorBin, "github.com/gotor/gotor/cmd/gotor").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/gotor: %v\n%s", err, out)
		}
	} else {
		gotorRev = "binary " + gotorBin
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil && o.gotorBin == "" {
		gotorRev = "commit " + strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			gotorRev += " with uncommitted changes in the checkout"
		}
	}
	torVersion := "tor"
	if out, err := exec.Command(torBin, "--version").Output(); err == nil {
		torVersion = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}

	progress("starting the private network (3 authorities, 3 relays, 2 exits; %v one-way per ORPort link)", o.latency)
	nopts := testnet.Options{Latency: o.latency}
	if o.pinPath {
		nopts.ExtraClientTorrc = []string{"EntryNodes relay0", "ExitNodes exit0", "ExcludeNodes auth0,auth1,auth2,relay2,exit1"}
	}
	n, err := testnet.Start(ctx, nopts)
	if err != nil {
		return err
	}
	defer n.Stop()
	progress("network ready after %v", n.ReadyAfter.Round(time.Millisecond))

	srv, err := startDataServer()
	if err != nil {
		return err
	}
	defer srv.close()
	empty := filepath.Join(work, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return err
	}
	l := &launcher{net: n, gotorBin: gotorBin, torBin: torBin, workDir: work, empty: empty,
		profile: filepath.Join(work, "gotor.cpu")}
	if o.trace {
		l.trace = filepath.Join(work, "gotor.trace")
	}
	if o.bridge != "" {
		if l.extraTorrc, err = startBridge(ctx, n, o.bridge); err != nil {
			return err
		}
	}

	r := &results{opts: o, torVersion: torVersion, goVersion: runtime.Version(), gotorRev: gotorRev, netReady: n.ReadyAfter}
	r.machine = machine()
	b := &bench{o: o, l: l, r: r, srv: srv, host: testnet.DefaultTestName}
	defer b.stopAll()
	if err := b.runAll(ctx); err != nil {
		return err
	}
	r.elapsed = time.Since(began)
	fmt.Println()
	fmt.Print(r.text())
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(r.markdown()), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "ttfb-ttlb-cdf.svg"), []byte(r.svg()), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "transfers.csv"), []byte(r.csv()), 0o644); err != nil {
			return err
		}
		if r.profileText != "" {
			if err := os.WriteFile(filepath.Join(o.out, "profile.txt"), []byte(r.profileText), 0o644); err != nil {
				return err
			}
		}
		progress("wrote %s/results.md, ttfb-ttlb-cdf.svg, transfers.csv, profile.txt", o.out)
	}
	return nil
}

type bench struct {
	o           options
	streamsHeap string // gotor heap profile with the streams open
	l           *launcher
	r           *results
	srv         *dataServer
	host        string
	cl          [2]*clientProc
	dirs        [2]string
}

func (b *bench) stopAll() {
	for i, c := range b.cl {
		if c != nil {
			c.stop()
			b.cl[i] = nil
		}
	}
}

var kinds = [2]clientKind{kindGotor, kindCTor}

// order alternates which client goes first, so neither always runs right
// after the other's burst.
func order(i int) [2]clientKind {
	if i%2 == 0 {
		return kinds
	}
	return [2]clientKind{kindCTor, kindGotor}
}

func (b *bench) runAll(ctx context.Context) error {
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"bootstrap (empty DataDirectory)", b.startBoth},
		{"warm-up", b.warmup},
		{"transfers", b.transfers},
		{"fresh circuits", b.freshCircuits},
		{"bulk", b.bulk},
		{"streams", b.manyStreams},
		{"cold .onion", b.onionCold},
		{"onion hosting", b.onionHosting},
		{"profile", b.profileGotor},
		{"bootstrap restarts", b.bootstraps},
	}
	want := map[string]bool{}
	for _, p := range strings.Split(b.o.phases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			want[p] = true
		}
	}
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i > 0 && len(want) > 0 && !want[s.name] {
			continue
		}
		progress("phase: %s", s.name)
		if err := s.f(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func (b *bench) startBoth(ctx context.Context) error {
	for _, k := range kinds {
		b.dirs[k] = b.l.newDataDir(k)
		c, err := b.l.start(ctx, k, b.dirs[k])
		if err != nil {
			return err
		}
		b.cl[k] = c
		b.r.bootCold[k] = append(b.r.bootCold[k], c.boot)
		progress("  %v bootstrapped in %v (pid %d, SOCKS %s)", k, c.boot.Round(time.Millisecond), c.pid(), c.socks)
	}
	progress("  idle 10 s")
	select {
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, k := range kinds {
		rss, err := rssKiB(b.cl[k].pid())
		if err != nil {
			return err
		}
		b.r.rssIdle[k] = rss
		progress("  %v idle RSS %.1f MiB", k, float64(rss)/1024)
	}
	return nil
}

func (b *bench) warmup(ctx context.Context) error {
	for i := 0; i < 3; i++ {
		for _, k := range kinds {
			if _, err := b.download(ctx, k, 50<<10, ""); err != nil {
				return fmt.Errorf("%v: %w", k, err)
			}
		}
	}
	for _, k := range kinds {
		b.cl[k].ctl.takeBuilds() // bootstrap circuits are counted in the fresh-circuit phase only
	}
	return nil
}

func (b *bench) download(ctx context.Context, k clientKind, size int64, user string) (transfer, error) {
	tctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	return download(tctx, b.cl[k].socks, b.host, b.srv.port, size, user)
}

var transferSizes = []int64{50 << 10, 1 << 20, 5 << 20}

func (b *bench) transfers(ctx context.Context) error {
	for _, k := range kinds {
		b.r.tr[k] = map[int64][]transfer{}
	}
	for _, size := range transferSizes {
		for i := 0; i < b.o.reps; i++ {
			for _, k := range order(i) {
				t, err := b.download(ctx, k, size, "")
				if err != nil {
					b.r.errors[k]++
					progress("  %v %s transfer failed: %v", k, sizeName(size), err)
					if b.r.errors[k] > 5 {
						return fmt.Errorf("%v: too many failed transfers", k)
					}
					continue
				}
				b.r.tr[k][size] = append(b.r.tr[k][size], t)
				b.r.connects[k] = append(b.r.connects[k], t.connect)
			}
			if (i+1)%10 == 0 || i+1 == b.o.reps {
				progress("  %s: %d/%d reps per client", sizeName(size), i+1, b.o.reps)
			}
		}
	}
	return nil
}

// freshCircuits makes requests with a new SOCKS username each time: both
// clients isolate streams by SOCKS credentials, so each request needs a
// circuit no other username has used: a prebuilt clean one if there is
// one, else one built on demand; both clients then build replacements.
// The control port's CIRC events give the circuit build times.
func (b *bench) freshCircuits(ctx context.Context) error {
	n := b.o.reps / 2
	if n < 5 {
		n = 5
	}
	for i := 0; i < n; i++ {
		for _, k := range order(i) {
			tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			conn, d, err := socksDial(tctx, b.cl[k].socks, b.host, b.srv.port, fmt.Sprintf("bench-%d-%d", k, i))
			cancel()
			if err != nil {
				b.r.errors[k]++
				progress("  %v fresh-circuit request failed: %v", k, err)
				continue
			}
			conn.Close()
			b.r.freshConnects[k] = append(b.r.freshConnects[k], d)
		}
	}
	time.Sleep(time.Second)
	for _, k := range kinds {
		builds, failed := b.cl[k].ctl.takeBuilds()
		b.r.builds[k] = append(b.r.builds[k], builds...)
		b.r.buildFails[k] += failed
		progress("  %v: %d requests on new circuits, %d circuit builds seen (%d failed)", k, len(b.r.freshConnects[k]), len(builds), failed)
	}
	if s, c, err := gotorBuildHistogram(b.cl[kindGotor].metrics); err == nil {
		b.r.metricsBuildSum, b.r.metricsBuildCount = s, c
	}
	return nil
}

// bulkOnce downloads total bytes as par parallel streams through client
// k, and returns the throughput and the client's CPU seconds per MiB.
func (b *bench) bulkOnce(ctx context.Context, k clientKind, par int, each int64) (bulkResult, error) {
	pid := b.cl[k].pid()
	u0, s0, err := cpuTimes(pid)
	if err != nil {
		return bulkResult{}, err
	}
	start := time.Now()
	errs := make(chan error, par)
	for j := 0; j < par; j++ {
		go func() {
			tctx, cancel := context.WithTimeout(ctx, 300*time.Second)
			defer cancel()
			_, err := download(tctx, b.cl[k].socks, b.host, b.srv.port, each, "")
			errs <- err
		}()
	}
	for j := 0; j < par; j++ {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return bulkResult{}, err
	}
	wall := time.Since(start)
	u1, s1, err := cpuTimes(pid)
	if err != nil {
		return bulkResult{}, err
	}
	mib := float64(int64(par)*each) / (1 << 20)
	return bulkResult{mibps: mib / wall.Seconds(), cpuPerMiB: (u1 - u0 + s1 - s0) / mib, sysPerMiB: (s1 - s0) / mib, wall: wall}, nil
}

func (b *bench) bulk(ctx context.Context) error {
	for i := 0; i < b.o.bulkReps; i++ {
		for _, k := range order(i) {
			res, err := b.bulkOnce(ctx, k, 1, int64(b.o.bulkMiB)<<20)
			if err != nil {
				return fmt.Errorf("%v: %w", k, err)
			}
			b.r.bulk1[k] = append(b.r.bulk1[k], res)
			progress("  %v 1×%d MiB: %.2f MiB/s, %.1f ms CPU/MiB", k, b.o.bulkMiB, res.mibps, res.cpuPerMiB*1000)
		}
		for _, k := range order(i + 1) {
			res, err := b.bulkOnce(ctx, k, b.o.parN, int64(b.o.parMiB)<<20)
			if err != nil {
				return fmt.Errorf("%v: %w", k, err)
			}
			b.r.bulkPar[k] = append(b.r.bulkPar[k], res)
			progress("  %v %d×%d MiB: %.2f MiB/s, %.1f ms CPU/MiB", k, b.o.parN, b.o.parMiB, res.mibps, res.cpuPerMiB*1000)
		}
	}
	for _, k := range kinds {
		if rss, err := rssKiB(b.cl[k].pid()); err == nil {
			b.r.rssAfter[k] = rss
		}
	}
	return nil
}

// manyStreams opens o.streams SOCKS connections through each client in
// turn to the data server, which holds them open, and reads the client's
// RSS while they are all open.
func (b *bench) manyStreams(ctx context.Context) error {
	for _, k := range kinds {
		before, _ := rssKiB(b.cl[k].pid())
		start := time.Now()
		var (
			mu    sync.Mutex
			conns []interface{ Close() error }
			fails int
			wg    sync.WaitGroup
		)
		sem := make(chan struct{}, 50)
		for i := 0; i < b.o.streams; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
				defer cancel()
				conn, _, err := socksDial(tctx, b.cl[k].socks, b.host, b.srv.port, "")
				if err == nil {
					if _, err = conn.Write([]byte("hold\n")); err == nil {
						var one [1]byte
						_, err = conn.Read(one[:])
					}
					if err != nil {
						conn.Close()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fails++
					return
				}
				conn.SetDeadline(time.Time{})
				conns = append(conns, conn)
			}()
		}
		wg.Wait()
		openTime := time.Since(start)
		time.Sleep(2 * time.Second)
		rss, err := rssKiB(b.cl[k].pid())
		if err != nil {
			return err
		}
		held := b.srv.held.Load()
		b.r.rssStreams[k] = rss
		b.r.streamsOpen[k] = len(conns)
		b.r.streamsOpenTime[k] = openTime
		progress("  %v: %d streams open (%d failed, server holds %d) in %v; RSS %.1f MiB (before %.1f MiB)",
			k, len(conns), fails, held, openTime.Round(time.Millisecond), float64(rss)/1024, float64(before)/1024)
		if k == kindGotor && b.o.profile {
			b.heapSnapshot()
		}
		// Close the application side; the client should end each stream
		// (RELAY_END), and the exit then closes its connection to the
		// server. Count what is still open at the server after 10 s.
		for _, c := range conns {
			c.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for b.srv.held.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		b.r.streamsLeft[k] = int(b.srv.held.Load())
		if rss, err := rssKiB(b.cl[k].pid()); err == nil {
			b.r.rssStreamsClosed[k] = rss
		}
		progress("  %v: %d of %d streams still open at the exit 10 s after the application closed them; RSS %.1f MiB",
			k, b.r.streamsLeft[k], len(conns), float64(b.r.rssStreamsClosed[k])/1024)
		b.srv.closeHeld() // the target ends the rest
		deadline = time.Now().Add(30 * time.Second)
		for b.srv.held.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
	}
	return nil
}

// heapSnapshot keeps gotor's heap profile (taken after a GC by the
// GOTOR_CPUPROFILE hook) while the streams are open, for profile.txt.
func (b *bench) heapSnapshot() {
	c := b.cl[kindGotor]
	base := b.l.profile + ".allocs.base"
	os.Remove(base)
	if c.cmd.Process.Signal(syscall.SIGUSR1) != nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(base); err == nil && st.Size() > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGUSR1)
	time.Sleep(time.Second)
	b.streamsHeap = b.l.profile + ".streams"
	os.Rename(base, b.streamsHeap)
	os.Remove(b.l.profile + ".memstats")
}

// profileGotor profiles gotor (GOTOR_CPUPROFILE, toggled by SIGUSR1)
// during one extra bulk download, outside the measured runs.
func (b *bench) profileGotor(ctx context.Context) error {
	if !b.o.profile {
		return nil
	}
	c := b.cl[kindGotor]
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	u0, s0, err := cpuTimes(c.pid())
	if err != nil {
		return err
	}
	size := int64(b.o.bulkMiB) << 20
	res, err := b.bulkOnce(ctx, kindGotor, 1, size)
	if err != nil {
		return err
	}
	resPar, err := b.bulkOnce(ctx, kindGotor, b.o.parN, int64(b.o.parMiB)<<20)
	if err != nil {
		return err
	}
	u1, s1, err := cpuTimes(c.pid())
	if err != nil {
		return err
	}
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	size += int64(b.o.parN) * int64(b.o.parMiB) << 20
	memstats := b.l.profile + ".memstats"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(memstats); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no profile written")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	progress("  profiled 1×%d MiB at %.2f MiB/s and %d×%d MiB at %.2f MiB/s", b.o.bulkMiB, res.mibps, b.o.parN, b.o.parMiB, resPar.mibps)
	b.r.profileText = profileReport(b.l.gotorBin, b.l.profile, float64(size)/(1<<20), u1-u0, s1-s0)
	if b.l.trace != "" {
		b.r.profileText += traceReport(b.l.gotorBin, b.l.trace)
	}
	if b.streamsHeap != "" {
		args := []string{"tool", "pprof", "-top", "-nodecount=25", "-sample_index=inuse_space", b.l.gotorBin, b.streamsHeap}
		out, err := exec.Command("go", args...).CombinedOutput()
		b.r.profileText += fmt.Sprintf("Live heap with %d streams open (after a GC):\n$ go tool pprof -top -nodecount=25 -sample_index=inuse_space\n", b.o.streams)
		if err != nil {
			b.r.profileText += fmt.Sprintf("(failed: %v)\n", err)
		}
		b.r.profileText += string(out)
	}
	return nil
}

func profileReport(bin, prof string, mib, user, sys float64) string {
	var sb strings.Builder
	ms, _ := os.ReadFile(prof + ".memstats")
	var secs float64
	var mallocs, bytes, gcs int64
	for _, l := range strings.Split(string(ms), "\n") {
		var v float64
		var name string
		if _, err := fmt.Sscanf(l, "%s %g", &name, &v); err != nil {
			continue
		}
		switch name {
		case "seconds":
			secs = v
		case "mallocs":
			mallocs = int64(v)
		case "bytes":
			bytes = int64(v)
		case "gc":
			gcs = int64(v)
		}
	}
	cells := mib * (1 << 20) / 498 // RELAY_DATA cells carry up to 498 bytes
	fmt.Fprintf(&sb, "gotor profile over %.0f MiB of bulk downloads (one stream, then parallel streams; %.1f s)\n", mib, secs)
	fmt.Fprintf(&sb, "process CPU time in that window from /proc/PID/stat: %.2f s (%.1f ms per MiB): user %.2f s, system %.2f s\n",
		user+sys, (user+sys)/mib*1000, user, sys)
	fmt.Fprintf(&sb, "allocations: %d (%.0f per MiB, %.2f per RELAY_DATA cell), %.1f MiB allocated (%.2f bytes per byte delivered), %d GCs\n\n",
		mallocs, float64(mallocs)/mib, float64(mallocs)/cells, float64(bytes)/(1<<20), float64(bytes)/(mib*(1<<20)), gcs)
	for _, args := range [][]string{
		{"-top", "-nodecount=30", bin, prof},
		{"-top", "-cum", "-nodecount=30", bin, prof},
		{"-top", "-nodecount=20", "-sample_index=alloc_space", "-base", prof + ".allocs.base", bin, prof + ".allocs"},
		{"-top", "-nodecount=20", "-sample_index=alloc_objects", "-base", prof + ".allocs.base", bin, prof + ".allocs"},
	} {
		out, err := exec.Command("go", append([]string{"tool", "pprof"}, args...)...).CombinedOutput()
		fmt.Fprintf(&sb, "$ go tool pprof %s\n", strings.Join(args[:len(args)-2], " "))
		if err != nil {
			fmt.Fprintf(&sb, "(failed: %v)\n", err)
		}
		sb.Write(out)
		sb.WriteString("\n")
	}
	return sb.String()
}

// traceReport summarises a runtime trace: where goroutines waited to be
// scheduled once runnable, and where they blocked on synchronisation.
func traceReport(bin, tracePath string) string {
	var sb strings.Builder
	for _, kind := range []string{"sched", "sync", "net"} {
		out, err := exec.Command("go", "tool", "trace", "-pprof="+kind, tracePath).Output()
		fmt.Fprintf(&sb, "Runtime trace, %s profile:\n$ go tool trace -pprof=%s TRACE > P; go tool pprof -top -nodecount=25 P\n", kind, kind)
		if err != nil {
			fmt.Fprintf(&sb, "(failed: %v)\n\n", err)
			continue
		}
		pf := tracePath + "." + kind
		if err := os.WriteFile(pf, out, 0o644); err != nil {
			fmt.Fprintf(&sb, "(failed: %v)\n\n", err)
			continue
		}
		top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", bin, pf).CombinedOutput()
		if err != nil {
			fmt.Fprintf(&sb, "(failed: %v)\n", err)
		}
		sb.Write(top)
		sb.WriteString("\n")
	}
	return sb.String()
}

// bootstraps restarts each client from its cache (same DataDirectory)
// and from an empty one, bootReps times each.
func (b *bench) bootstraps(ctx context.Context) error {
	b.stopAll()
	for i := 0; i < b.o.bootReps; i++ {
		for _, k := range order(i) {
			c, err := b.l.start(ctx, k, b.dirs[k])
			if err != nil {
				return fmt.Errorf("%v restart: %w", k, err)
			}
			b.r.bootWarm[k] = append(b.r.bootWarm[k], c.boot)
			c.stop()
			progress("  %v from cache: %v", k, c.boot.Round(time.Millisecond))
			b.dirs[k] = b.l.newDataDir(k)
			c, err = b.l.start(ctx, k, b.dirs[k])
			if err != nil {
				return fmt.Errorf("%v fresh start: %w", k, err)
			}
			b.r.bootCold[k] = append(b.r.bootCold[k], c.boot)
			c.stop()
			progress("  %v from empty DataDirectory: %v", k, c.boot.Round(time.Millisecond))
		}
	}
	return nil
}

func machine() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d CPUs (runtime.NumCPU)", runtime.NumCPU())
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Model name:") || strings.HasPrefix(l, "Hypervisor vendor:") {
				f := strings.SplitN(l, ":", 2)
				fmt.Fprintf(&sb, ", %s", strings.TrimSpace(f[1]))
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			fmt.Fprintf(&sb, ", load average at start %s %s %s", f[0], f[1], f[2])
		}
	}
	return sb.String()
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// startBridge starts a bridge of kind ("obfs4" or "plain") on n and
// returns the torrc lines both clients use it with.
func startBridge(ctx context.Context, n *testnet.Network, kind string) (string, error) {
	var opts testnet.BridgeOptions
	switch kind {
	case "obfs4":
		opts.Transport = "obfs4"
	case "plain":
	default:
		return "", fmt.Errorf("-bridge %q: want obfs4 or plain", kind)
	}
	progress("starting a %s bridge", kind)
	b, err := n.StartBridge(ctx, opts)
	if err != nil {
		return "", err
	}
	lines := "UseBridges 1\nBridge " + b.Line() + "\n"
	if kind == "obfs4" {
		path, err := exec.LookPath("obfs4proxy")
		if err != nil {
			return "", err
		}
		lines += "ClientTransportPlugin obfs4 exec " + path + "\n"
	}
	return lines, nil
}
