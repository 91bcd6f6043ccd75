package guard

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/path"
	"github.com/gotor/gotor/internal/path/pathtest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// dirAt returns a copy of base valid around t (so it is "live").
func dirAt(base *netdir.NetDir, t time.Time, keep func(*netdir.Relay) bool) *netdir.NetDir {
	d := *base
	d.ValidAfter, d.FreshUntil, d.ValidUntil = t.Add(-time.Minute), t.Add(time.Hour), t.Add(3*time.Hour)
	d.Relays = nil
	for _, r := range base.Relays {
		if keep == nil || keep(r) {
			d.Relays = append(d.Relays, r)
		}
	}
	d.Index()
	return &d
}

func newTest(t *testing.T, cfg Config) (*Manager, *clock, *netdir.NetDir) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 27, 3, 10, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := pathtest.Build(pathtest.Options{N: 400, Seed: 21})
	return m, clk, dirAt(base, clk.Now(), nil)
}

func mustPick(t *testing.T, m *Manager, d *netdir.NetDir, u Usage) (*netdir.Relay, *Attempt) {
	t.Helper()
	r, a, err := m.Pick(d, u)
	if err != nil {
		t.Fatal(err)
	}
	return r, a
}

func TestRetrySchedule(t *testing.T) {
	h := time.Hour
	for _, c := range []struct {
		failing time.Duration
		primary bool
		want    time.Duration
	}{
		{0, true, 10 * time.Minute}, {6 * h, true, 10 * time.Minute}, {6*h + 1, true, 90 * time.Minute},
		{96 * h, true, 90 * time.Minute}, {100 * h, true, 4 * h}, {8 * 24 * h, true, 9 * h},
		{0, false, h}, {7 * h, false, 4 * h}, {5 * 24 * h, false, 18 * h}, {30 * 24 * h, false, 36 * h},
	} {
		if got := retryDelay(c.failing, c.primary); got != c.want {
			t.Errorf("retryDelay(%v, %v) = %v, want %v", c.failing, c.primary, got, c.want)
		}
	}
}

func TestSampleAndPrimary(t *testing.T) {
	m, _, d := newTest(t, Config{})
	m.SetNetDir(d)
	s := m.Sampled()
	nGuards := 0
	for _, r := range d.Relays {
		if IsGuardCandidate(r) {
			nGuards++
		}
	}
	t.Logf("%d guard candidates, %d sampled", nGuards, len(s))
	if len(s) < 20 || len(s) > max(20, min(60, nGuards/5)) {
		t.Fatalf("sample size %d", len(s))
	}
	for _, g := range s {
		if !IsGuardCandidate(d.ByRSAID[g.ID]) {
			t.Fatalf("sampled non-guard %s", g.Nickname)
		}
	}
	prim := m.PrimaryGuards()
	if len(prim) != 3 {
		t.Fatalf("%d primary guards", len(prim))
	}
	// Circuits use the first primary guard; directory fetches any of
	// the first three.
	dirSeen := map[[20]byte]bool{}
	for i := 0; i < 200; i++ {
		r, a := mustPick(t, m, d, Usage{})
		if r.RSAID != prim[0] {
			t.Fatalf("circuit guard %s is not the first primary", r.Nickname)
		}
		a.Close()
		r, a = mustPick(t, m, d, Usage{Dir: true})
		if !slices.Contains(prim, r.RSAID) {
			t.Fatalf("dir guard %s not primary", r.Nickname)
		}
		dirSeen[r.RSAID] = true
		a.Close()
	}
	if len(dirSeen) != 3 {
		t.Errorf("directory fetches used %d of 3 primary guards", len(dirSeen))
	}
}

func TestFailoverAndRetry(t *testing.T) {
	m, clk, d := newTest(t, Config{})
	m.SetNetDir(d)
	prim := m.PrimaryGuards()
	// Primary 0 fails: primary 1 is used.
	r, a := mustPick(t, m, d, Usage{})
	if r.RSAID != prim[0] {
		t.Fatal("first pick not primary 0")
	}
	a.Report(false)
	if a.Status() != StatusDiscard {
		t.Fatal("failed attempt not discarded")
	}
	r, a = mustPick(t, m, d, Usage{})
	if r.RSAID != prim[1] {
		t.Fatalf("after failure got %s, want primary 1", r.Nickname)
	}
	// Success confirms primary 1, which moves to the front.
	a.Report(true)
	if ok, err := a.Usable(context.Background()); !ok || err != nil {
		t.Fatalf("primary-guard circuit not usable: %v %v", ok, err)
	}
	if p := m.PrimaryGuards(); p[0] != prim[1] || !slices.Contains(p, prim[0]) {
		t.Fatalf("confirmed guard not first primary: %x", p)
	}
	// Primary 0 is retried 10 minutes after the attempt (guard-spec
	// §4.5). Fail 1 and 2 so only 0 could be chosen.
	for i := 0; i < 2; i++ {
		_, a := mustPick(t, m, d, Usage{})
		a.Report(false)
	}
	r, a = mustPick(t, m, d, Usage{})
	if slices.Contains(prim[:3], r.RSAID) {
		t.Fatalf("primary %s retried too early", r.Nickname)
	}
	a.Close()
	clk.Advance(10 * time.Minute)
	r, a = mustPick(t, m, d, Usage{})
	if !slices.Contains(prim[:3], r.RSAID) {
		t.Fatalf("no primary retried after 10 minutes, got %s", r.Nickname)
	}
	a.Close()
}

func TestNonPrimaryWaiting(t *testing.T) {
	m, clk, d := newTest(t, Config{})
	d.Params = map[string]int32{"guard-internet-likely-down-interval": 60}
	m.SetNetDir(d)
	prim := m.PrimaryGuards()
	only := func(id [20]byte) Usage {
		return Usage{Restrict: func(r *netdir.Relay) bool { return r.RSAID == id }}
	}
	// Confirm all three primaries, then make them all fail.
	for _, id := range prim {
		_, a := mustPick(t, m, d, only(id))
		a.Report(true)
		if s := a.Status(); s != StatusUsable {
			t.Fatalf("primary circuit status %v", s)
		}
		a.Close()
	}
	for _, id := range prim {
		_, a := mustPick(t, m, d, only(id))
		a.Report(false)
	}
	// A non-primary guard succeeds: it is confirmed (after the
	// primaries, so it stays non-primary), waits, and since every
	// primary is down and nothing better is pending it becomes usable.
	g1, a1 := mustPick(t, m, d, Usage{})
	if slices.Contains(prim, g1.RSAID) {
		t.Fatal("primary guard picked while all primaries are down")
	}
	a1.Report(true)
	if s := a1.Status(); s != StatusUsable {
		t.Fatalf("a1 status %v, want usable", s)
	}
	a1.Close()
	// g1 is now the best non-primary guard: the next attempt uses it;
	// the one after explores another guard, g2.
	r, a1b := mustPick(t, m, d, Usage{})
	if r != g1 {
		t.Fatalf("confirmed guard not preferred: got %s want %s", r.Nickname, g1.Nickname)
	}
	g2, a2 := mustPick(t, m, d, Usage{})
	if g2 == g1 || slices.Contains(prim, g2.RSAID) {
		t.Fatalf("second exploratory guard %s", g2.Nickname)
	}
	// g2 succeeds first, but a1b (higher priority: confirmed earlier)
	// has been pending for less than 15 s: a2 waits.
	a2.Report(true)
	if s := a2.Status(); s != StatusWaiting {
		t.Fatalf("a2 status %v, want waiting", s)
	}
	clk.Advance(16 * time.Second)
	if s := a2.Status(); s != StatusUsable {
		t.Fatalf("a2 status %v after a1b's connect timeout, want usable", s)
	}
	a1b.Report(true)
	if s := a1b.Status(); s != StatusUsable {
		t.Fatalf("a1b status %v", s)
	}
	// After more than guard-internet-likely-down-interval (60 s here)
	// without success, a non-primary success marks the primaries
	// "maybe" again: the circuit waits for them, and times out after
	// NONPRIMARY_GUARD_IDLE_TIMEOUT (10 min).
	clk.Advance(2 * time.Minute)
	g3, a3 := mustPick(t, m, d, Usage{Restrict: func(r *netdir.Relay) bool { return r != g1 && r != g2 }})
	if slices.Contains(prim, g3.RSAID) {
		t.Fatal("primary picked too early")
	}
	a3.Report(true)
	if s := a3.Status(); s != StatusWaiting {
		t.Fatalf("a3 status %v, want waiting", s)
	}
	r, a := mustPick(t, m, d, Usage{})
	if r.RSAID != prim[0] {
		t.Fatalf("primaries not retried after the network came back: got %s", r.Nickname)
	}
	a.Close()
	clk.Advance(11 * time.Minute)
	if s := a3.Status(); s != StatusDiscard {
		t.Fatalf("a3 status %v after idle timeout, want discard", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ok, _ := a3.Usable(ctx); ok {
		t.Fatal("timed-out attempt usable")
	}
}

func TestRestrictionAndNodeOptions(t *testing.T) {
	m, _, d := newTest(t, Config{})
	m.SetNetDir(d)
	prim := m.PrimaryGuards()
	first := d.ByRSAID[prim[0]]
	r, a := mustPick(t, m, d, Usage{Restrict: func(r *netdir.Relay) bool { return r != first }})
	if r.RSAID != prim[1] {
		t.Fatalf("restricted pick %s, want primary 1", r.Nickname)
	}
	a.Close()

	// EntryNodes: only listed guards, even outside the usual primaries.
	var chosen []*netdir.Relay
	for _, r := range d.Relays {
		if IsGuardCandidate(r) && len(chosen) < 2 {
			chosen = append(chosen, r)
		}
	}
	entry := path.MustParseNodeSet(chosen[0].Nickname, "$"+strings.ToUpper(hexOf(chosen[1].RSAID)))
	m2, _, _ := newTest(t, Config{EntryNodes: entry})
	for i := 0; i < 50; i++ {
		r, a := mustPick(t, m2, d, Usage{})
		if r != chosen[0] && r != chosen[1] {
			t.Fatalf("EntryNodes ignored: %s", r.Nickname)
		}
		a.Report(i%3 != 0)
	}
	// ExcludeNodes: never a guard.
	excl := path.MustParseNodeSet(d.ByRSAID[prim[0]].Nickname)
	m3, _, _ := newTest(t, Config{ExcludeNodes: excl})
	for i := 0; i < 50; i++ {
		r, a := mustPick(t, m3, d, Usage{})
		if r.RSAID == prim[0] {
			t.Fatal("ExcludeNodes ignored")
		}
		a.Report(i%4 != 0)
	}
}

func hexOf(id [20]byte) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range id {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

func TestMissingDescriptors(t *testing.T) {
	m, _, d := newTest(t, Config{})
	m.SetNetDir(d)
	prim := m.PrimaryGuards()
	// A NetDir in which the primaries have no microdescriptor yet.
	d2 := *d
	d2.Relays = nil
	for _, r := range d.Relays {
		if slices.Contains(prim, r.RSAID) {
			c := *r
			c.HasMicrodesc = false
			r = &c
		}
		d2.Relays = append(d2.Relays, r)
	}
	d2.Index()
	if _, _, err := m.Pick(&d2, Usage{}); !errors.Is(err, ErrNeedDescriptors) {
		t.Fatalf("err %v, want ErrNeedDescriptors", err)
	}
	r, a := mustPick(t, m, &d2, Usage{Dir: true})
	if !slices.Contains(prim, r.RSAID) {
		t.Fatal("dir guard not primary")
	}
	a.Close()
	if p := m.PrimaryGuards(); !slices.Equal(p, prim) {
		t.Fatal("primaries changed")
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	stateFile := filepath.Join(dir, StateFile)
	// Lines written by others must survive.
	other := "CircuitBuildTimeBin 125 3\nGuard in=some-future-instance rsa_id=0000000000000000000000000000000000000000 sampled_on=2026-01-01T00:00:00 listed=1\n"
	if err := os.WriteFile(stateFile, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	m, clk, d := newTest(t, Config{DataDirectory: dir})
	m.SetNetDir(d)
	prim := m.PrimaryGuards()
	_, a := mustPick(t, m, d, Usage{})
	a.Report(false)
	r, a := mustPick(t, m, d, Usage{})
	a.Report(true) // confirms primary 1
	prim = m.PrimaryGuards()
	if prim[0] != r.RSAID {
		t.Fatal("confirmed guard not first")
	}
	sampled := m.Sampled()

	st, err := os.Stat(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(stateFile)
	for _, l := range strings.Split(strings.TrimSpace(other), "\n") {
		if !strings.Contains(string(b), l) {
			t.Errorf("state file lost line %q", l)
		}
	}
	// Add an unknown field to our guard lines: it must be retained.
	b = []byte(strings.ReplaceAll(string(b), "Guard in=default ", "Guard in=default pb_use_attempts=1.000000 "))
	if err := os.WriteFile(stateFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// Restart.
	m2, err := New(Config{DataDirectory: dir, Now: clk.Now, Rand: rand.New(rand.NewPCG(99, 99))})
	if err != nil {
		t.Fatal(err)
	}
	m2.SetNetDir(d)
	if p := m2.PrimaryGuards(); !slices.Equal(p, prim) {
		t.Fatalf("primary guards changed across restart:\n%x\n%x", p, prim)
	}
	s2 := m2.Sampled()
	if len(s2) != len(sampled) {
		t.Fatalf("sample size %d -> %d", len(sampled), len(s2))
	}
	for i := range s2 {
		if s2[i].ID != sampled[i].ID || s2[i].Confirmed != sampled[i].Confirmed {
			t.Fatalf("sample entry %d differs", i)
		}
	}
	b, _ = os.ReadFile(stateFile)
	if strings.Count(string(b), "pb_use_attempts=1.000000") != len(s2) {
		t.Error("unknown K=V fields not retained")
	}
	if !strings.Contains(string(b), "in=some-future-instance") {
		t.Error("other instance lost")
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "state.tmp*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func TestRelaysLeaveAndReturn(t *testing.T) {
	m, clk, base := newTest(t, Config{})
	m.SetNetDir(base)
	prim := m.PrimaryGuards()
	_, a := mustPick(t, m, base, Usage{})
	a.Report(true) // confirm primary 0
	gone := prim[0]
	// The guard leaves the consensus.
	clk.Advance(time.Hour)
	d2 := dirAt(base, clk.Now(), func(r *netdir.Relay) bool { return r.RSAID != gone })
	m.SetNetDir(d2)
	if p := m.PrimaryGuards(); slices.Contains(p, gone) || len(p) != 3 {
		t.Fatalf("unlisted guard still primary: %x", p)
	}
	r, a := mustPick(t, m, d2, Usage{})
	if r.RSAID == gone {
		t.Fatal("picked unlisted guard")
	}
	a.Close()
	// It returns a few days later: it is confirmed, so it is first again.
	clk.Advance(5 * 24 * time.Hour)
	m.SetNetDir(dirAt(base, clk.Now(), nil))
	if p := m.PrimaryGuards(); p[0] != gone {
		t.Fatalf("returning confirmed guard not first primary: %x", p)
	}
	// Unlisted for more than 20 days: removed from the sample.
	clk.Advance(time.Hour)
	m.SetNetDir(dirAt(base, clk.Now(), func(r *netdir.Relay) bool { return r.RSAID != gone }))
	clk.Advance(25 * 24 * time.Hour)
	m.SetNetDir(dirAt(base, clk.Now(), func(r *netdir.Relay) bool { return r.RSAID != gone }))
	for _, g := range m.Sampled() {
		if g.ID == gone {
			t.Fatal("guard unlisted for 25 days still sampled")
		}
	}
}

func TestLifetimeExpiry(t *testing.T) {
	m, clk, base := newTest(t, Config{})
	m.SetNetDir(base)
	before := m.Sampled()
	// Confirmed on day 100: kept past GUARD_LIFETIME (120 days) until
	// 60 days after confirmation.
	clk.Advance(100 * 24 * time.Hour)
	d100 := dirAt(base, clk.Now(), nil)
	m.SetNetDir(d100)
	_, a := mustPick(t, m, d100, Usage{})
	a.Report(true)
	clk.Advance(21 * 24 * time.Hour)
	m.SetNetDir(dirAt(base, clk.Now(), nil))
	after := m.Sampled()
	kept := 0
	for _, g := range after {
		for _, b := range before {
			if g.ID == b.ID && g.SampledOn.Equal(b.SampledOn) {
				kept++
				if !g.Confirmed {
					t.Errorf("unconfirmed guard %s outlived GUARD_LIFETIME", g.Nickname)
				}
			}
		}
	}
	if kept != 1 {
		t.Errorf("%d old guards kept, want the 1 confirmed one", kept)
	}
	if len(after) < 20 {
		t.Errorf("sample not refilled: %d", len(after))
	}
}

func TestConsensusParams(t *testing.T) {
	m, _, d := newTest(t, Config{})
	d.Params = map[string]int32{"guard-n-primary-guards": 5, "guard-min-filtered-sample-size": 30, "guard-n-primary-guards-to-use": 2}
	m.SetNetDir(d)
	if n := len(m.PrimaryGuards()); n != 5 {
		t.Errorf("%d primaries, want 5", n)
	}
	if n := len(m.Sampled()); n < 30 {
		t.Errorf("sample %d, want >= 30", n)
	}
	prim := m.PrimaryGuards()
	seen := map[[20]byte]bool{}
	for i := 0; i < 100; i++ {
		r, a := mustPick(t, m, d, Usage{})
		seen[r.RSAID] = true
		a.Close()
	}
	if len(seen) != 2 || !seen[prim[0]] || !seen[prim[1]] {
		t.Errorf("guard-n-primary-guards-to-use=2: used %d guards", len(seen))
	}
}

func TestTestingNetwork(t *testing.T) {
	// A fresh private network: few relays, zero bandwidths and weights.
	clk := &clock{t: time.Date(2026, 11, 27, 3, 10, 0, 0, time.UTC)}
	zero := map[string]int64{}
	for k := range pathtest.DefaultWeights {
		zero[k] = 0
	}
	d := dirAt(pathtest.Build(pathtest.Options{N: 12, Seed: 5, ZeroBandwidth: true, Weights: zero}), clk.Now(), nil)
	m, err := New(Config{Now: clk.Now, Rand: rand.New(rand.NewPCG(3, 3))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Pick(nil, Usage{}); !errors.Is(err, ErrNoDirectory) {
		t.Fatalf("no dir: %v", err)
	}
	r, a := mustPick(t, m, d, Usage{})
	if !IsGuardCandidate(r) {
		t.Fatal("not a guard")
	}
	a.Report(true)
	n := 0
	for _, r := range d.Relays {
		if IsGuardCandidate(r) {
			n++
		}
	}
	if got := len(m.Sampled()); got != n {
		t.Errorf("sampled %d of %d guards in a small network", got, n)
	}
}

func TestExhausted(t *testing.T) {
	m, _, d := newTest(t, Config{})
	// Every guard fails: once the usable sample is exhausted everything
	// is marked "maybe" and picking goes on.
	for i := 0; i < 200; i++ {
		_, a, err := m.Pick(d, Usage{})
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		a.Report(false)
	}
	// An impossible restriction fails without resetting reachability.
	_, a, _ := m.Pick(d, Usage{})
	a.Report(false)
	no := 0
	for _, g := range m.Sampled() {
		if g.Reachable == "no" {
			no++
		}
	}
	if _, _, err := m.Pick(d, Usage{Restrict: func(*netdir.Relay) bool { return false }}); !errors.Is(err, ErrNoGuards) {
		t.Fatalf("impossible restriction: %v", err)
	}
	no2 := 0
	for _, g := range m.Sampled() {
		if g.Reachable == "no" {
			no2++
		}
	}
	if no == 0 || no2 != no {
		t.Errorf("unreachable guards: %d before, %d after a restricted pick", no, no2)
	}
}

func TestConcurrent(t *testing.T) {
	m, clk, d := newTest(t, Config{DataDirectory: t.TempDir()})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_, a, err := m.Pick(d, Usage{Dir: i%2 == 0})
				if err != nil {
					t.Error(err)
					return
				}
				a.Report((i+g)%3 != 0)
				a.Status()
				a.Close()
				if i%50 == 0 {
					clk.Advance(time.Minute)
					m.Housekeeping()
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestInstances(t *testing.T) {
	dir := t.TempDir()
	m, clk, d := newTest(t, Config{DataDirectory: dir})
	m.SetNetDir(d)
	def := m.Sampled()
	// A heavily restricting EntryNodes uses a separate "restricted"
	// instance (guard-spec §2.B) and leaves the default one alone.
	var two []string
	for _, r := range d.Relays {
		if IsGuardCandidate(r) && len(two) < 2 {
			two = append(two, r.Nickname)
		}
	}
	m2, err := New(Config{DataDirectory: dir, Now: clk.Now, EntryNodes: path.MustParseNodeSet(two...)})
	if err != nil {
		t.Fatal(err)
	}
	m2.SetNetDir(d)
	if s := m2.Sampled(); len(s) != 2 {
		t.Fatalf("restricted sample has %d guards, want the 2 EntryNodes", len(s))
	}
	b, _ := os.ReadFile(filepath.Join(dir, StateFile))
	if n := strings.Count(string(b), "in=default"); n != len(def) {
		t.Errorf("%d default-instance lines after restricted run, want %d", n, len(def))
	}
	if n := strings.Count(string(b), "in=restricted"); n != 2 {
		t.Errorf("%d restricted-instance lines, want 2", n)
	}
	// Back without EntryNodes: the original default sample.
	m3, err := New(Config{DataDirectory: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m3.SetNetDir(d)
	s3 := m3.Sampled()
	if len(s3) != len(def) {
		t.Fatalf("default sample %d -> %d", len(def), len(s3))
	}
	for i := range s3 {
		if s3[i].ID != def[i].ID {
			t.Fatal("default sample changed")
		}
	}
}

func BenchmarkPick(b *testing.B) {
	clk := &clock{t: time.Date(2026, 11, 27, 3, 10, 0, 0, time.UTC)}
	d := dirAt(pathtest.Build(pathtest.Options{N: 7000, Seed: 1}), clk.Now(), nil)
	m, err := New(Config{Now: clk.Now, Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		b.Fatal(err)
	}
	m.SetNetDir(d)
	b.ReportAllocs()
	for b.Loop() {
		_, a, err := m.Pick(d, Usage{})
		if err != nil {
			b.Fatal(err)
		}
		a.Report(true)
		a.Close()
	}
}

// TestInvariantsRandomised drives the manager through random consensus
// changes (guards leaving and returning), circuit outcomes and time
// steps, checking guard-spec invariants after every step: the sample is
// within its bounds and holds only distinct identities; confirmed ⊆
// sampled; primary guards are filtered, at most N, and confirmed ones
// come first; picked guards are listed, filtered, obey the restriction
// and have a microdescriptor for circuits.
func TestInvariantsRandomised(t *testing.T) {
	dataDir := t.TempDir()
	m, clk, _ := newTest(t, Config{DataDirectory: dataDir})
	base := pathtest.Build(pathtest.Options{N: 300, Seed: 77})
	rng := rand.New(rand.NewPCG(5, 6))
	var open []*Attempt
	d := dirAt(base, clk.Now(), nil)
	steps := 5000
	if testing.Short() {
		steps = 1000
	}
	for step := 0; step < steps; step++ {
		switch x := rng.IntN(100); {
		case x < 3: // new consensus: a random 10% of relays missing
			clk.Advance(time.Hour)
			drop := rng.Uint64()
			d = dirAt(base, clk.Now(), func(r *netdir.Relay) bool { return (uint64(r.RSAID[0])^drop)%10 != 0 })
			m.SetNetDir(d)
		case x < 6:
			clk.Advance(time.Duration(rng.IntN(3600)) * time.Second)
			m.Housekeeping()
		case x < 60:
			u := Usage{Dir: rng.IntN(4) == 0}
			var banned *netdir.Relay
			if rng.IntN(3) == 0 {
				banned = d.Relays[rng.IntN(len(d.Relays))]
				u.Restrict = func(r *netdir.Relay) bool { return !path.SameFamily(r, banned) }
			}
			r, a, err := m.Pick(d, u)
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if !IsGuardCandidate(r) || d.ByRSAID[r.RSAID] != r {
				t.Fatalf("step %d: picked unlisted or non-guard %s", step, r.Nickname)
			}
			if banned != nil && path.SameFamily(r, banned) {
				t.Fatalf("step %d: restriction ignored", step)
			}
			open = append(open, a)
		default:
			if len(open) == 0 {
				continue
			}
			i := rng.IntN(len(open))
			a := open[i]
			switch rng.IntN(3) {
			case 0:
				a.Report(rng.IntN(3) != 0)
			case 1:
				a.Status()
			case 2:
				a.Close()
				open = slices.Delete(open, i, i+1)
			}
		}
		checkInvariants(t, m, step)
	}
	// The state survives a restart with the same primaries.
	prim := m.PrimaryGuards()
	m2, err := New(Config{DataDirectory: dataDir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m2.SetNetDir(d)
	if p := m2.PrimaryGuards(); !slices.Equal(p, prim) {
		// Non-confirmed primaries kept only at run time may differ;
		// confirmed ones must not.
		for _, id := range prim {
			if slices.ContainsFunc(m.Sampled(), func(g GuardInfo) bool { return g.ID == id && g.Confirmed }) && !slices.Contains(p, id) {
				t.Fatalf("confirmed primary lost across restart")
			}
		}
	}
}

func checkInvariants(t *testing.T, m *Manager, step int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[[20]byte]bool{}
	for _, e := range m.sampled {
		if seen[e.id] {
			t.Fatalf("step %d: duplicate sampled guard", step)
		}
		seen[e.id] = true
	}
	n := 0
	for _, r := range m.dir.Relays {
		if IsGuardCandidate(r) {
			n++
		}
	}
	if len(m.sampled) > m.maxSample(n) {
		t.Fatalf("step %d: sample %d > max %d", step, len(m.sampled), m.maxSample(n))
	}
	for _, e := range m.confirmed {
		if !slices.Contains(m.sampled, e) || !e.confirmed() {
			t.Fatalf("step %d: confirmed guard not sampled", step)
		}
	}
	if len(m.primary) > m.nPrimary() {
		t.Fatalf("step %d: %d primaries", step, len(m.primary))
	}
	sawUnconfirmed := false
	for _, e := range m.primary {
		if !m.filtered(e) || !e.primary {
			t.Fatalf("step %d: primary guard not filtered", step)
		}
		if !e.confirmed() {
			sawUnconfirmed = true
		} else if sawUnconfirmed {
			// Allowed only if that confirmed guard is not among the
			// first confirmed filtered guards... it must be: confirmed
			// guards are always placed first.
			t.Fatalf("step %d: confirmed primary after an unconfirmed one", step)
		}
	}
}

// bridgeDir is a NetDir of n bridges as the engine builds it from their
// descriptors (bridge.Descriptor.Relay: the {GUARDS} flags, no weights).
func bridgeDir(n int, t time.Time) *netdir.NetDir {
	d := &netdir.NetDir{Params: map[string]int32{}}
	for i := 0; i < n; i++ {
		r := &netdir.Relay{Nickname: "bridge" + string(rune('a'+i)), HasMicrodesc: true,
			Flags: netdir.FlagGuard | netdir.FlagStable | netdir.FlagFast | netdir.FlagV2Dir | netdir.FlagRunning | netdir.FlagValid}
		r.RSAID[0], r.RSAID[19] = 0xB0, byte(i)
		d.Relays = append(d.Relays, r)
	}
	// Bridges need no live consensus: a NetDir long expired still
	// counts (the engine need not fake validity times).
	d.ValidAfter, d.FreshUntil, d.ValidUntil = t.Add(-72*time.Hour), t.Add(-71*time.Hour), t.Add(-70*time.Hour)
	d.Index()
	return d
}

// guard-spec §2 A: with UseBridges the bridges are the guards, in their
// own state instance; EntryNodes does not apply, ExcludeNodes does; the
// default instance is left alone.
func TestBridges(t *testing.T) {
	dir := t.TempDir()
	m, clk, d := newTest(t, Config{DataDirectory: dir})
	m.SetNetDir(d)
	def := m.Sampled()

	bd := bridgeDir(4, clk.Now())
	excluded := bd.Relays[3]
	mb, err := New(Config{DataDirectory: dir, Now: clk.Now, UseBridges: true, Rand: rand.New(rand.NewPCG(3, 4)),
		EntryNodes: path.MustParseNodeSet(d.Relays[0].Nickname), ExcludeNodes: path.MustParseNodeSet(excluded.Nickname)})
	if err != nil {
		t.Fatal(err)
	}
	mb.SetNetDir(bd)
	if s := mb.Sampled(); len(s) != 4 {
		t.Fatalf("bridge sample has %d entries, want all 4 bridges", len(s))
	}
	seen := map[[20]byte]bool{}
	for i := 0; i < 20; i++ {
		r, a, err := mb.Pick(bd, Usage{})
		if err != nil {
			t.Fatal(err)
		}
		if bd.ByRSAID[r.RSAID] != r {
			t.Fatalf("picked %s, not a bridge", r.Nickname)
		}
		if r == excluded {
			t.Fatalf("picked the excluded bridge")
		}
		seen[r.RSAID] = true
		a.Report(true)
		a.Close()
	}
	if r, a, err := mb.Pick(bd, Usage{Dir: true}); err != nil || bd.ByRSAID[r.RSAID] != r {
		t.Fatalf("directory pick: %v %v", r, err)
	} else {
		a.Close()
	}
	b, _ := os.ReadFile(filepath.Join(dir, StateFile))
	if n := strings.Count(string(b), "in=bridges"); n != 4 {
		t.Errorf("%d bridges-instance lines, want 4:\n%s", n, b)
	}
	if n := strings.Count(string(b), "in=default"); n != len(def) {
		t.Errorf("%d default-instance lines, want %d", n, len(def))
	}
	// Without UseBridges again: the default sample, no bridge.
	m3, err := New(Config{DataDirectory: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m3.SetNetDir(d)
	if s := m3.Sampled(); len(s) != len(def) || s[0].ID != def[0].ID {
		t.Fatal("default sample changed by the bridge run")
	}
	// And with UseBridges once more: the same bridge sample.
	mb2, err := New(Config{DataDirectory: dir, Now: clk.Now, UseBridges: true})
	if err != nil {
		t.Fatal(err)
	}
	mb2.SetNetDir(bd)
	if s := mb2.Sampled(); len(s) != 4 {
		t.Errorf("bridge sample after restart: %d entries", len(s))
	}
	if len(mb2.PrimaryGuards()) == 0 {
		t.Error("no primary bridges")
	}
}

// The sample takes every bridge, however many, until enough are usable:
// no guard-max-sample-size (60) or threshold percent applies.
func TestBridgesNoSampleLimit(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 27, 3, 10, 0, 0, time.UTC)}
	bd := bridgeDir(30, clk.Now())
	bd.Params["guard-min-filtered-sample-size"] = 25
	bd.Params["guard-max-sample-size"] = 5
	m, err := New(Config{Now: clk.Now, UseBridges: true})
	if err != nil {
		t.Fatal(err)
	}
	m.SetNetDir(bd)
	if s := m.Sampled(); len(s) != 25 {
		t.Errorf("sample of %d bridges, want 25 (min filtered sample, not the max sample size 5)", len(s))
	}
}
