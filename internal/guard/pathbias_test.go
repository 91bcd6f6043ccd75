package guard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

// logs collects a Manager's path bias messages by level.
type logs struct {
	mu             sync.Mutex
	notices, warns []string
}

func (l *logs) config(cfg Config) Config {
	cfg.Logf = func(f string, a ...any) { l.mu.Lock(); l.warns = append(l.warns, fmt.Sprintf(f, a...)); l.mu.Unlock() }
	cfg.Noticef = func(f string, a ...any) {
		l.mu.Lock()
		l.notices = append(l.notices, fmt.Sprintf(f, a...))
		l.mu.Unlock()
	}
	return cfg
}

func (l *logs) count(substr string) (notices, warns int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.notices {
		if strings.Contains(s, substr) {
			notices++
		}
	}
	for _, s := range l.warns {
		if strings.Contains(s, substr) {
			warns++
		}
	}
	return
}

// pbTest is a Manager on a consensus with the given pb_* parameters.
func pbTest(t *testing.T, cfg Config, params map[string]int32) (*Manager, *clock, *netdir.NetDir, *logs) {
	t.Helper()
	l := &logs{}
	m, clk, d := newTest(t, l.config(cfg))
	d.Params = params
	m.SetNetDir(d)
	return m, clk, d, l
}

// circ is one circuit's life as the engine reports it.
type circ struct {
	built  bool // every hop built (else it failed after the second EXTEND)
	use    int  // 0: no stream, 1: a stream that got no answer, 2: a stream answered
	remote bool // closed by the relay side
	open   bool // left open
}

// run builds c through the guard m picks; it returns the attempt and
// BuildAttempted's error.
func run(t *testing.T, m *Manager, d *netdir.NetDir, c circ) (*Attempt, error) {
	t.Helper()
	_, a := mustPick(t, m, d, Usage{})
	a.Report(true)
	if err := a.BuildAttempted(); err != nil {
		a.Close()
		return a, err
	}
	if c.built {
		a.BuildSucceeded()
		if c.use >= 1 {
			a.UseAttempted()
		}
		if c.use == 2 {
			a.UseSucceeded()
		}
	}
	if !c.open {
		a.CloseCircuit(c.remote)
	}
	return a, nil
}

func runN(t *testing.T, m *Manager, d *netdir.NetDir, n int, c circ) {
	t.Helper()
	for range n {
		if _, err := run(t, m, d, c); err != nil {
			t.Fatal(err)
		}
	}
}

func (m *Manager) pbOf(a *Attempt) pathBias {
	m.mu.Lock()
	defer m.mu.Unlock()
	return a.e.pb
}

type counts struct{ attempts, successes, closed, collapsed, unusable, useAttempts, useSuccesses float64 }

func (pb pathBias) counts() counts {
	return counts{pb.circAttempts, pb.circSuccesses, pb.successfulClosed, pb.collapsed, pb.unusable, pb.useAttempts, pb.useSuccesses}
}

// Build success rates: nothing is said before pb_mincircs attempts, then
// one notice below pb_noticepct, one warning below pb_warnpct and one
// below pb_extremepct, each once; the comparisons are strict.
func TestPathBiasBuildRate(t *testing.T) {
	m, _, d, l := pbTest(t, Config{}, map[string]int32{"pb_mincircs": 10})
	runN(t, m, d, 6, circ{built: true})
	runN(t, m, d, 4, circ{})
	// 10 attempts, 6 closed well: not yet past pb_mincircs.
	a, _ := run(t, m, d, circ{})
	if n, w := l.count("path bias"); n+w != 0 {
		t.Fatalf("path bias logged at %v: %v %v", m.pbOf(a).counts(), l.notices, l.warns)
	}
	run(t, m, d, circ{}) // measured at 6/11 = 0.55: notice
	if n, w := l.count("failing more circuits than usual"); n != 1 || w != 0 {
		t.Fatalf("after 6/11: %d notices, %d warnings", n, w)
	}
	run(t, m, d, circ{}) // 6/12 = 0.50: not below 0.50
	if _, w := l.count("very large amount"); w != 0 {
		t.Fatal("warned at exactly pb_warnpct")
	}
	run(t, m, d, circ{}) // 6/13: warn
	if _, w := l.count("very large amount"); w != 1 {
		t.Fatalf("after 6/13: %d warnings", w)
	}
	runN(t, m, d, 7, circ{}) // down to 6/20 = 0.30: not below 0.30
	if _, w := l.count("extremely large"); w != 0 {
		t.Fatal("extreme warning at exactly pb_extremepct")
	}
	a, err := run(t, m, d, circ{}) // 6/21: extreme, but pb_dropguards is 0
	if err != nil {
		t.Fatal(err)
	}
	runN(t, m, d, 3, circ{})
	if _, w := l.count("extremely large amount of circuits: this could indicate"); w != 1 {
		t.Fatalf("%d extreme warnings: %v", w, l.warns)
	}
	if n, w := l.count("path bias"); n != 1 || w != 2 {
		t.Fatalf("%d notices, %d warnings in all, want one per level", n, w)
	}
	if got, want := m.pbOf(a).counts(), (counts{attempts: 25, successes: 6, closed: 6}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
}

// With pb_dropguards the guard is disabled at the extreme rate: the
// circuit being built is refused, the guard leaves the primary guards
// and is picked no more.
func TestPathBiasDropGuard(t *testing.T) {
	m, _, d, l := pbTest(t, Config{}, map[string]int32{"pb_mincircs": 10, "pb_dropguards": 1})
	runN(t, m, d, 2, circ{built: true})
	runN(t, m, d, 9, circ{})
	bad := m.PrimaryGuards()[0]
	// 11 attempts, 2 closed well: 0.18 < 0.30.
	a, err := run(t, m, d, circ{built: true})
	if !errors.Is(err, ErrPathBias) {
		t.Fatalf("BuildAttempted on a guard failing 9 of 11 circuits: %v", err)
	}
	if _, w := l.count("has disabled use of this guard"); w != 1 {
		t.Fatalf("warnings %v", l.warns)
	}
	if got := m.pbOf(a).circAttempts; got != 11 {
		t.Fatalf("the refused circuit was counted: %v attempts", got)
	}
	for _, id := range m.PrimaryGuards() {
		if id == bad {
			t.Fatal("the disabled guard is still primary")
		}
	}
	for _, g := range m.Sampled() {
		if g.PathBias.Disabled != (g.ID == bad) {
			t.Fatalf("guard %s: Disabled %v", g.Nickname, g.PathBias.Disabled)
		}
	}
	for range 20 {
		r, a := mustPick(t, m, d, Usage{})
		if r.RSAID == bad {
			t.Fatal("the disabled guard was picked")
		}
		a.Close()
	}
	if r, a := mustPick(t, m, d, Usage{Dir: true}); r.RSAID == bad {
		t.Fatal("the disabled guard was picked for a directory fetch")
	} else {
		a.Close()
	}
}

// Scaling (path-spec §7.3) past pb_scalecircs: the open circuits are
// taken out of the counts and put back, as C tor's
// pathbias_scale_close_rates does.
func TestPathBiasScaling(t *testing.T) {
	m, _, d, _ := pbTest(t, Config{}, map[string]int32{"pb_scalecircs": 10})
	runN(t, m, d, 10, circ{built: true})
	b, _ := run(t, m, d, circ{built: true, open: true}) // attempt 11: 10 is not past 10
	if got, want := m.pbOf(b).counts(), (counts{attempts: 11, successes: 11, closed: 10}); got != want {
		t.Fatalf("before scaling: %+v, want %+v", got, want)
	}
	_, a := mustPick(t, m, d, Usage{})
	a.Report(true)
	if err := a.BuildAttempted(); err != nil { // 11 > 10: scale by 1/2
		t.Fatal(err)
	}
	// Open: b built, a attempted. attempts (11-2)/2+2 = 6.5, +1;
	// successes (11-1)/2+1 = 6; closed 10/2.
	if got, want := m.pbOf(a).counts(), (counts{attempts: 7.5, successes: 6, closed: 5}); got != want {
		t.Fatalf("after scaling: %+v, want %+v", got, want)
	}
	b.Close()
	a.BuildSucceeded()
	a.Close()
	if got, want := m.pbOf(a).counts(), (counts{attempts: 7.5, successes: 7, closed: 7}); got != want {
		t.Fatalf("after closing: %+v, want %+v", got, want)
	}
	// pb_multfactor/pb_scalefactor: 3/4.
	m2, _, d2, _ := pbTest(t, Config{}, map[string]int32{"pb_scalecircs": 10, "pb_multfactor": 3, "pb_scalefactor": 4})
	runN(t, m2, d2, 11, circ{built: true})
	if got := m2.pbOf(b2(t, m2, d2)).circAttempts; got != (11-1)*0.75+1+1 {
		t.Fatalf("3/4 scaling: %v attempts", got)
	}
}

func b2(t *testing.T, m *Manager, d *netdir.NetDir) *Attempt {
	a, _ := run(t, m, d, circ{built: true})
	return a
}

// Use rates (path-spec §7.2): a circuit counts as used once a stream is
// attached; it succeeds at close if a stream was answered; open circuits
// get the benefit of the doubt.
func TestPathBiasUseRate(t *testing.T) {
	m, _, d, l := pbTest(t, Config{}, map[string]int32{"pb_minuse": 3})
	runN(t, m, d, 1, circ{built: true, use: 2})
	runN(t, m, d, 1, circ{built: true, use: 1})
	o1, _ := run(t, m, d, circ{built: true, use: 1, open: true})
	run(t, m, d, circ{built: true, use: 1, open: true})
	// 4 use attempts: 1 success, 1 failure, 2 open (counted as
	// successes): 3/4 = 0.75 < 0.80 → notice at the next attempt.
	run(t, m, d, circ{built: true, use: 2})
	if n, w := l.count("streams on its circuits than usual"); n != 1 || w != 0 {
		t.Fatalf("%d notices, %d warnings: %v %v", n, w, l.notices, l.warns)
	}
	o1.Close()                              // unusable now
	run(t, m, d, circ{built: true, use: 1}) // (2 + 1 open)/5 = 0.6, not < 0.6
	if _, w := l.count("extremely large amount of streams"); w != 0 {
		t.Fatal("extreme use warning at exactly pb_extremeusepct")
	}
	run(t, m, d, circ{built: true, use: 1}) // (2 + 1)/6 < 0.6
	if _, w := l.count("extremely large amount of streams"); w != 1 {
		t.Fatalf("warnings %v", l.warns)
	}
	got := m.pbOf(o1).counts()
	if got.useAttempts != 7 || got.useSuccesses != 2 || got.unusable != 4 {
		t.Fatalf("counts %+v", got)
	}
}

// How each ending counts (C tor pathbias_check_close).
func TestPathBiasClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(a *Attempt)
		want counts
	}{
		{"built, closed by us", func(a *Attempt) { a.BuildSucceeded(); a.Close() },
			counts{attempts: 1, successes: 1, closed: 1}},
		{"built, destroyed by the relay", func(a *Attempt) { a.BuildSucceeded(); a.CloseCircuit(true) },
			counts{attempts: 1, successes: 1, collapsed: 1}},
		{"extend failed", func(a *Attempt) { a.CloseCircuit(true) },
			counts{attempts: 1}},
		{"used", func(a *Attempt) { a.BuildSucceeded(); a.UseAttempted(); a.UseSucceeded(); a.CloseCircuit(true) },
			counts{attempts: 1, successes: 1, closed: 1, useAttempts: 1, useSuccesses: 1}},
		{"stream never answered", func(a *Attempt) { a.BuildSucceeded(); a.UseAttempted(); a.Close() },
			counts{attempts: 1, successes: 1, unusable: 1, useAttempts: 1}},
		{"answered, then a stream timed out", func(a *Attempt) {
			a.BuildSucceeded()
			a.UseAttempted()
			a.UseSucceeded()
			a.UseRolledBack()
			a.Close()
		}, counts{attempts: 1, successes: 1, unusable: 1, useAttempts: 1}},
		{"END TORPROTOCOL", func(a *Attempt) {
			a.BuildSucceeded()
			a.UseAttempted()
			a.UseSucceeded()
			a.UseFailed()
			a.Close()
		}, counts{attempts: 1, successes: 1, unusable: 1, useAttempts: 1}},
		{"answer without an attempt", func(a *Attempt) { a.BuildSucceeded(); a.UseSucceeded(); a.Close() },
			counts{attempts: 1, successes: 1, closed: 1, useAttempts: 1, useSuccesses: 1}},
		{"timed out", func(a *Attempt) { a.BuildTimedOut(); a.Close() },
			counts{attempts: 1}},
		{"counted once", func(a *Attempt) {
			a.BuildSucceeded()
			a.Close()
			a.CloseCircuit(true)
			a.UseSucceeded()
			a.BuildSucceeded()
		}, counts{attempts: 1, successes: 1, closed: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, d, _ := pbTest(t, Config{}, nil)
			_, a := mustPick(t, m, d, Usage{})
			a.Report(true)
			if err := a.BuildAttempted(); err != nil {
				t.Fatal(err)
			}
			tc.do(a)
			if got := m.pbOf(a).counts(); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if to := m.pbOf(a).timeouts; to != map[bool]float64{true: 1}[tc.name == "timed out"] {
				t.Fatalf("%v timeouts", to)
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if a.e.pb.open != [numPathStates]int{} {
				t.Fatalf("open circuits left: %v", a.e.pb.open)
			}
		})
	}
}

// The counts persist in the state file as C tor writes them (pb_* with
// %f, successes including open circuits), at most 10 minutes late, or at
// Flush; C tor's own lines load.
func TestPathBiasPersisted(t *testing.T) {
	dir := t.TempDir()
	m, clk, d, _ := pbTest(t, Config{DataDirectory: dir}, nil)
	runN(t, m, d, 3, circ{built: true, use: 2})
	runN(t, m, d, 1, circ{built: true, remote: true})
	open, _ := run(t, m, d, circ{built: true, use: 1, open: true})
	id := open.e.id
	state := func() string {
		b, err := os.ReadFile(filepath.Join(dir, StateFile))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if strings.Contains(state(), "pb_") {
		t.Fatal("counts written at once")
	}
	clk.Advance(11 * time.Minute)
	_, a := mustPick(t, m, d, Usage{})
	a.Close()
	want := "pb_use_attempts=4.000000 pb_use_successes=4.000000 pb_circ_attempts=5.000000 pb_circ_successes=5.000000 " +
		"pb_successful_circuits_closed=4.000000 pb_collapsed_circuits=1.000000"
	if s := state(); !strings.Contains(s, want) {
		t.Fatalf("state file:\n%s\nwant %s", s, want)
	}
	open.Close()
	m.Flush()
	m2, err := New(Config{DataDirectory: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var got counts
	for _, e := range m2.sampled {
		if e.id == id {
			got = e.pb.counts()
		}
	}
	if want := (counts{attempts: 5, successes: 5, closed: 3, collapsed: 1, unusable: 1, useAttempts: 4, useSuccesses: 3}); got != want {
		t.Fatalf("reloaded %+v, want %+v", got, want)
	}

	// A line C tor wrote; a value outside [0, 1e9] is dropped, the guard kept.
	line := "Guard in=default rsa_id=" + strings.Repeat("AB", 20) + " nickname=x sampled_on=2026-11-01T00:00:00 " +
		"sampled_by=0.4.9.1 listed=1 pb_use_attempts=21.500000 pb_use_successes=20.000000 pb_circ_attempts=-3 " +
		"pb_circ_successes=150.000000 pb_timeouts=2.000000 pb_unusable_circuits=abc"
	e, _, _, _, perr := parseGuardLine(strings.TrimPrefix(line, "Guard "))
	if perr != nil {
		t.Fatal(perr)
	}
	if got, want := e.pb.counts(), (counts{successes: 150, useAttempts: 21.5, useSuccesses: 20}); got != want || e.pb.timeouts != 2 || len(e.extra) != 0 {
		t.Fatalf("C tor line: %+v timeouts %v extra %v", got, e.pb.timeouts, e.extra)
	}
}
