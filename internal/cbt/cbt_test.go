package cbt

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func defaults() Params {
	return ParamsFrom(func(_ string, def, _, _ int32) int32 { return def }, true, 0)
}

func TestParams(t *testing.T) {
	p := defaults()
	want := Params{NumModes: 10, RecentCount: 20, MaxTimeouts: 18, MinCircs: 100, Quantile: 0.8, CloseQuantile: 0.99,
		TestFreq: 10 * time.Second, MinTimeout: 10 * time.Millisecond, InitialTimeout: time.Minute, CloseFloor: time.Minute,
		LearnTimeout: 180 * time.Second, MaxOpenCircs: 10}
	if p != want {
		t.Fatalf("defaults\n got %+v\nwant %+v", p, want)
	}
	cons := map[string]int32{"cbtquantile": 95, "cbtclosequantile": 50, "cbtnummodes": 40, "cbtdisabled": 0}
	get := func(name string, def, lo, hi int32) int32 {
		if v, ok := cons[name]; ok {
			return min(max(v, lo), hi)
		}
		return def
	}
	p = ParamsFrom(get, true, 0)
	if p.Quantile != 0.95 || p.CloseQuantile != 0.95 || p.NumModes != 20 {
		t.Fatalf("close quantile %v (want raised to cbtquantile 0.95), modes %d (want clamped to 20)", p.CloseQuantile, p.NumModes)
	}
	// CircuitBuildTimeout: the initial value; without learning the only one.
	p = ParamsFrom(get, true, 30*time.Second)
	if p.Disabled || p.InitialTimeout != 30*time.Second || p.CloseFloor != time.Minute {
		t.Fatalf("CircuitBuildTimeout 30 with learning: %+v", p)
	}
	p = ParamsFrom(get, false, 30*time.Second)
	e := New(p)
	if !p.Disabled || e.Timeout() != 30*time.Second || e.NeedsCircuits() {
		t.Fatalf("LearnCircuitBuildTimeout 0: disabled %v, timeout %v, needs circuits %v", p.Disabled, e.Timeout(), e.NeedsCircuits())
	}
	for range 200 {
		e.Built(time.Second)
	}
	if e.Timeout() != 30*time.Second || e.Learned() {
		t.Fatalf("learned %v without LearnCircuitBuildTimeout", e.Timeout())
	}
	cons["cbtdisabled"] = 1
	if !ParamsFrom(get, true, 0).Disabled {
		t.Fatal("cbtdisabled=1 ignored")
	}
}

// ctorSamples are the 110 build times (ms) of C tor's
// test_circuit_timeout_xm_alpha: 9 modes, 8 mode ties, 10 abandoned.
func ctorSamples() []uint32 {
	base := []uint32{100, 20, 1000, 500, 200, 5000, 30, 600, 200, 300, abandonedMS}
	var out []uint32
	for i := uint32(0); i < 10; i++ {
		for _, b := range base {
			if b == abandonedMS {
				out = append(out, b)
			} else {
				out = append(out, b+i)
			}
		}
	}
	return out
}

// TestXmAlphaCTorSamples reproduces C tor's expected Xm and alpha for
// those samples with 1 to 20 modes.
func TestXmAlphaCTorSamples(t *testing.T) {
	for _, tc := range []struct {
		modes int
		xm    uint32
		alpha float64
	}{{1, 205, 1.394401}, {3, 117, 0.902313}, {5, 146, 1.049032}, {10, 800, 4.851754}, {15, 800, 4.851754}, {20, 800, 4.851754}} {
		p := defaults()
		p.NumModes = tc.modes
		e := New(p)
		for _, s := range ctorSamples() {
			e.add(s)
		}
		if !e.updateAlpha() {
			t.Fatalf("%d modes: no fit", tc.modes)
		}
		if e.xm != tc.xm || math.Abs(e.alpha-tc.alpha) > 0.00001 {
			t.Errorf("%d modes: Xm %d alpha %.6f, want %d %.6f", tc.modes, e.xm, e.alpha, tc.xm, tc.alpha)
		}
	}
}

// paretoSample draws from Pareto(xm, alpha) by inverse transform.
func paretoSample(r *rand.Rand, xm, alpha float64) time.Duration {
	u := r.Float64()
	return time.Duration(xm / math.Pow(1-u, 1/alpha) * float64(time.Millisecond))
}

func paretoCDF(xm, alpha, x float64) float64 { return 1 - math.Pow(xm/x, alpha) }

// TestLearnsKnownPareto: build times drawn from a Pareto curve whose 80%
// point is 30 s (Xm 3 s, as C tor's test_circuit_timeout) give a learned
// timeout at that curve's 80% point within 2% of the mass; the state
// round trip (10 ms bins, shuffled) keeps it within 5%.
func TestLearnsKnownPareto(t *testing.T) {
	const xm, q, timeout0 = 3000.0, 0.8, 30000.0
	alpha := math.Log(1-q) / (math.Log(xm) - math.Log(timeout0)) // Q(0.8) = 30 s
	r := rand.New(rand.NewPCG(1, 2))
	p := defaults()
	p.CloseFloor, p.InitialTimeout = 60*time.Second, 60*time.Second
	e := New(p)
	e.NetworkLive(time.Now())
	if !e.NeedsCircuits() || e.Learned() || e.Timeout() != time.Minute {
		t.Fatal("fresh estimator: want the initial timeout and test circuits")
	}
	// As C tor's test, the samples go straight into the history: Built
	// would drop the curve's far tail as implausible (beyond twice the
	// close timeout), which a real network's build times never reach.
	for i := 0; i < 1000; i++ {
		e.add(uint32(paretoSample(r, xm, alpha).Milliseconds()))
		e.setTimeout()
		if i == 98 && e.Learned() {
			t.Fatal("learned before cbtmincircs (100) build times")
		}
	}
	if !e.Learned() || e.NeedsCircuits() {
		t.Fatal("not learned after 1000 build times")
	}
	got := float64(e.Timeout()) / float64(time.Millisecond)
	if d := math.Abs(paretoCDF(xm, alpha, got) - q); d > 0.02 {
		t.Fatalf("timeout %.0f ms is at %.3f of the curve, want %.2f within 0.02", got, paretoCDF(xm, alpha, got), q)
	}
	if e.CloseTimeout() < e.Timeout() || e.CloseTimeout() < time.Minute {
		t.Fatalf("close timeout %v", e.CloseTimeout())
	}
	t.Logf("timeout %v (curve's 80%%: %v), close %v", e.Timeout().Round(time.Millisecond), time.Duration(timeout0)*time.Millisecond, e.CloseTimeout().Round(time.Millisecond))

	st, err := ParseState(e.State().Lines())
	if err != nil {
		t.Fatal(err)
	}
	e2, err := Load(p, st, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	got2 := float64(e2.Timeout()) / float64(time.Millisecond)
	if d := math.Abs(paretoCDF(xm, alpha, got2) - q); d > 0.05 || !e2.Learned() {
		t.Fatalf("after the state round trip: timeout %.0f ms at %.3f of the curve", got2, paretoCDF(xm, alpha, got2))
	}
}

// TestTimeoutCaps: the timeout is at most the largest build time seen
// and at least cbtmintimeout; the close timeout at most twice the
// largest but at least cbtinitialtimeout.
func TestTimeoutCaps(t *testing.T) {
	p := defaults()
	e := New(p)
	// 100 identical times: alpha is infinite, the quantile is Xm = 1005.
	for range 100 {
		e.Built(1001 * time.Millisecond)
	}
	if e.Timeout() != 1001*time.Millisecond || e.CloseTimeout() != time.Minute {
		t.Fatalf("timeout %v (want capped at the max 1001ms), close %v (want the 60 s floor)", e.Timeout(), e.CloseTimeout())
	}
	p.MinTimeout = 1500 * time.Millisecond
	e = New(p)
	for range 100 {
		e.Built(time.Second)
	}
	if e.Timeout() != 1500*time.Millisecond {
		t.Fatalf("timeout %v, want cbtmintimeout 1.5s", e.Timeout())
	}
	// Spread times: close timeout capped at twice the max.
	p = defaults()
	p.CloseFloor = time.Second
	e = New(p)
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		e.Built(paretoSample(r, 500, 1.2))
	}
	if mx := time.Duration(e.maxTime()) * time.Millisecond; e.CloseTimeout() > 2*mx || e.Timeout() > mx {
		t.Fatalf("close %v timeout %v with max build time %v", e.CloseTimeout(), e.Timeout(), mx)
	}
	// Implausible (suspend) times are ignored.
	n := e.total
	e.Built(2*e.CloseTimeout() + 2*time.Second)
	e.Built(-time.Second)
	if e.total != n {
		t.Fatal("implausible build times recorded")
	}
}

// TestNetworkChangeResets: when cbtmaxtimeouts (18) of the last
// cbtrecentcount (20) circuits time out after their first hop, the
// history goes and the timeout returns to the initial one; a second
// time it doubles (§2.4.5).
func TestNetworkChangeResets(t *testing.T) {
	e := New(defaults())
	for range 150 {
		e.Built(500 * time.Millisecond)
	}
	if !e.Learned() || e.Timeout() >= time.Minute {
		t.Fatalf("setup: learned %v timeout %v", e.Learned(), e.Timeout())
	}
	for range 17 {
		e.TimedOut(true)
	}
	e.TimedOut(false) // before the first hop: not counted
	if !e.Learned() {
		t.Fatal("reset after 17 timeouts after the first hop")
	}
	e.TimedOut(true)
	if e.Learned() || e.total != 0 || e.Timeout() != time.Minute || e.CloseTimeout() != time.Minute {
		t.Fatalf("after 18 of 20: learned %v, %d times, timeout %v close %v", e.Learned(), e.total, e.Timeout(), e.CloseTimeout())
	}
	for range 18 {
		e.TimedOut(true)
	}
	if e.Timeout() != 2*time.Minute || e.CloseTimeout() != 2*time.Minute {
		t.Fatalf("second reset: timeout %v close %v, want doubled", e.Timeout(), e.CloseTimeout())
	}
	// Successes in between keep the count below the threshold.
	e = New(defaults())
	for i := range 100 {
		if i%4 == 0 {
			e.Built(time.Second)
		} else {
			e.TimedOut(true)
		}
	}
	if e.Timeout() != time.Minute || e.total != 25 {
		t.Fatalf("15 of 20 timeouts reset the history: timeout %v, %d times", e.Timeout(), e.total)
	}
}

// TestLiveness: a circuit abandoned while the network showed no activity
// since its launch marks the network not live; nothing is recorded until
// a cell arrives.
func TestLiveness(t *testing.T) {
	e := New(defaults())
	t0 := time.Unix(1e6, 0)
	e.NetworkLive(t0)
	e.Abandoned(true, t0.Add(-time.Second)) // launched before the last activity: counts
	if e.total != 1 {
		t.Fatalf("abandoned circuit on a live network: %d times recorded", e.total)
	}
	e.Abandoned(true, t0.Add(time.Second)) // no activity since its launch
	e.Built(time.Second)
	if e.total != 1 {
		t.Fatalf("recorded %d times while the network was not live", e.total)
	}
	e.NetworkLive(t0.Add(time.Minute))
	e.Built(time.Second)
	if e.total != 2 {
		t.Fatalf("after network activity: %d times, want 2", e.total)
	}
	st := e.State()
	if st.Total != 2 || st.Abandoned != 1 || len(st.Bins) != 1 || st.Bins[0] != (Bin{MS: 1005, Count: 1}) {
		t.Fatalf("state %+v", st)
	}
}

func TestStateErrors(t *testing.T) {
	for _, lines := range [][]string{
		{"TotalBuildTimes x"},
		{"CircuitBuildTimeBin 15"},
		{"CircuitBuildTimeBin 0 3"},
		{"CircuitBuildTimeBin 2147483646 3"},
		{"TotalBuildTimes 1 2"},
	} {
		if _, err := ParseState(lines); err == nil {
			t.Errorf("%q parsed", lines)
		}
	}
	for _, st := range []State{
		{Total: 5, Bins: []Bin{{MS: 15, Count: 3}}},
		{Total: 3, Abandoned: 4},
		{Total: 1 << 30, Bins: []Bin{{MS: 15, Count: 1 << 30}}},
	} {
		if _, err := Load(defaults(), st, nil); !errors.Is(err, ErrStateMismatch) {
			t.Errorf("Load(%+v): %v", st, err)
		}
	}
	// A C tor state file's lines, with other keys around them.
	st, err := ParseState([]string{"Guard in=default rsa_id=AAAA", "TotalBuildTimes 3", "CircuitBuildAbandonedCount 1",
		"CircuitBuildTimeBin 105 1", "CircuitBuildTimeBin 2505 1", "LastWritten 2026-01-01 00:00:00"})
	if err != nil || st.Total != 3 || st.Abandoned != 1 || len(st.Bins) != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	e, err := Load(defaults(), st, nil)
	if err != nil || e.total != 3 || e.State().Abandoned != 1 {
		t.Fatalf("loaded %d times, %v", e.total, err)
	}
}
