package congestion

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/realdocs"
)

// sim drives a controller as a circuit would: it sends while the window
// allows, keeps the send time of every cell that elicits a SENDME, and
// acknowledges them with a chosen RTT.
type sim struct {
	c       Controller
	now     time.Time
	pending []time.Time
}

func newSim(c Controller) *sim { return &sim{c: c, now: time.Unix(1000, 0)} }

// send sends n cells (at most the window; fewer if it closes).
func (s *sim) send(n int) int {
	sent := 0
	for sent < n && s.c.Window() > 0 {
		if s.c.Sent() {
			s.pending = append(s.pending, s.now)
		}
		sent++
	}
	return sent
}

// fill sends until the window is closed.
func (s *sim) fill() int { return s.send(1 << 30) }

// ack delivers the oldest pending SENDME, rtt after its cell was sent.
func (s *sim) ack(t *testing.T, rtt time.Duration) {
	t.Helper()
	if len(s.pending) == 0 {
		t.Fatal("sim: no SENDME pending")
	}
	at := s.pending[0]
	s.pending = s.pending[1:]
	arrive := at.Add(rtt)
	if arrive.After(s.now) {
		s.now = arrive
	}
	if err := s.c.OnSendme(at, arrive); err != nil {
		t.Fatal(err)
	}
}

// testParams are the parameters of C tor 0.4.8.1's defaults (before the
// consensus values became the defaults): steady-state steps of a whole
// sendme_inc once per cwnd make each transition visible in one update.
func testParams() Params {
	p := DefaultParams(PathExit)
	p.CwndMin, p.CwndInc, p.CwndIncRate = 62, 31, 1
	p.CwndFullGap, p.CwndFullMinPct = 1, 75
	p.Alpha, p.Delta, p.SSCap = 124, 372, 500
	return p
}

func TestDefaultParams(t *testing.T) {
	p := DefaultParams(PathExit)
	want := Params{Alg: 2, SendmeInc: 31, CwndInit: 124, CwndMin: 124, CwndMax: 1<<31 - 1, CwndInc: 1,
		CwndIncPctSS: 100, CwndIncRate: 31, EwmaCwndPct: 50, EwmaMax: 10, EwmaSS: 2, RTTResetPct: 100,
		Alpha: 186, Beta: 248, Gamma: 186, Delta: 310, SSCap: 600, SSMax: 5000,
		CwndFullGap: 4, CwndFullMinPct: 25, CwndFullPerCwnd: true}
	if p != want {
		t.Fatalf("defaults\n got %+v\nwant %+v", p, want)
	}
}

// TestDefaultsAreTheConsensus: with the real network's params line
// (../shared/realdocs/data), every path's parameters equal the defaults:
// a client with no consensus value behaves as one with today's.
func TestDefaultsAreTheConsensus(t *testing.T) {
	doc := realdocs.Read(t, "consensus/mediacoder-md-2026-06-27.txt.gz")
	params := map[string]int32{}
	for _, line := range strings.Split(doc, "\n") {
		if rest, ok := strings.CutPrefix(line, "params "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("params entry %q", kv)
				}
				params[k] = int32(n)
			}
			break
		}
	}
	if params["cc_alg"] != 2 {
		t.Fatalf("no cc_alg=2 in the consensus params: %v", params)
	}
	get := func(name string, def, lo, hi int32) int32 {
		v, ok := params[name]
		if !ok {
			return def
		}
		return min(max(v, lo), hi)
	}
	for _, path := range []Path{PathExit, PathOnion, PathSBWS} {
		if got, want := ParamsFrom(get, path), DefaultParams(path); got != want {
			t.Errorf("path %d: consensus\n%+v\ndefaults\n%+v", path, got, want)
		}
	}
}

// TestParamsFromConsensus reads the real network's params line (as of
// 2024: cc_alg=2 cc_cwnd_inc=1 cc_cwnd_inc_rate=31 ...), clamping out of
// range values as param-spec requires.
func TestParamsFromConsensus(t *testing.T) {
	line := map[string]int32{"cc_alg": 2, "cc_cwnd_full_gap": 4, "cc_cwnd_full_minpct": 25, "cc_cwnd_inc": 1,
		"cc_cwnd_inc_rate": 31, "cc_cwnd_min": 124, "cc_sscap_exit": 600, "cc_vegas_alpha_exit": 186,
		"cc_vegas_delta_exit": 310, "cc_sendme_inc": 400 /* above the max 255 */, "cc_ss_max": 7}
	get := func(name string, def, lo, hi int32) int32 {
		v, ok := line[name]
		if !ok {
			return def
		}
		return min(max(v, lo), hi)
	}
	p := ParamsFrom(get, PathExit)
	if !p.Enabled() || p.CwndFullGap != 4 || p.CwndFullMinPct != 25 || p.CwndInc != 1 || p.CwndIncRate != 31 ||
		p.CwndMin != 124 || p.SSCap != 600 || p.Alpha != 186 || p.Delta != 310 || p.Beta != 248 || p.Gamma != 186 {
		t.Fatalf("params %+v", p)
	}
	if p.SendmeInc != 255 || p.SSMax != 500 || p.CwndIncPctSS != 100 {
		t.Fatalf("clamping: sendme_inc %d (want 255), ss_max %d (want 500)", p.SendmeInc, p.SSMax)
	}
}

func TestAcceptSendmeInc(t *testing.T) {
	p := testParams() // consensus cc_sendme_inc 31
	for inc, want := range map[int]bool{0: false, 15: false, 29: false, 30: true, 31: true, 32: true, 33: false, 62: false, 255: false} {
		if got := p.AcceptSendmeInc(inc); got != want {
			t.Errorf("AcceptSendmeInc(%d) = %v, want %v", inc, got, want)
		}
	}
}

// TestVegasSendmeCells: the 31st, 62nd, ... cell elicits a SENDME.
func TestVegasSendmeCells(t *testing.T) {
	v := NewVegas(testParams(), 31)
	if v.Window() != 124 {
		t.Fatalf("initial window %d, want cc_cwnd_init 124", v.Window())
	}
	var marks []int
	for i := 1; i <= 124; i++ {
		if v.Sent() {
			marks = append(marks, i)
		}
	}
	if len(marks) != 4 || marks[0] != 31 || marks[3] != 124 || v.Window() != 0 {
		t.Fatalf("SENDME cells %v, window %d", marks, v.Window())
	}
}

// TestVegasSlowStartGrowth: with no queueing (constant RTT) and a full
// window, every SENDME grows cwnd by cc_cwnd_inc_pct_ss% of sendme_inc
// (31) up to cc_sscap, then by the RFC 3742 step
// max((sendme_inc*sscap + cwnd) / (2*cwnd), 1).
func TestVegasSlowStartGrowth(t *testing.T) {
	v := NewVegas(testParams(), 31)
	s := newSim(v)
	const rtt = 100 * time.Millisecond
	s.fill()
	want := int64(124)
	for i := 0; i < 40; i++ {
		before := v.State().Cwnd
		s.ack(t, rtt)
		st := v.State()
		if !st.InSlowStart {
			t.Fatalf("ack %d: left slow start at cwnd %d without a signal", i, st.Cwnd)
		}
		if want <= 500 {
			want += 31
		} else {
			want += max((31*500+want)/(2*want), 1)
		}
		if st.Cwnd != want {
			t.Fatalf("ack %d: cwnd %d, want %d", i, st.Cwnd, want)
		}
		// No queue: BDP = cwnd (before this ack) * RTT_min / RTT_ewma.
		if st.BDP != before || st.MinRTT != rtt || st.EwmaRTT != rtt {
			t.Fatalf("ack %d: BDP %d (want %d), RTT min %v ewma %v", i, st.BDP, before, st.MinRTT, st.EwmaRTT)
		}
		s.fill()
	}
}

// TestVegasSlowStartNotFull: a window that is not full does not grow.
func TestVegasSlowStartNotFull(t *testing.T) {
	v := NewVegas(testParams(), 31)
	s := newSim(v)
	s.send(62) // half the window: 2 SENDMEs due
	s.ack(t, 50*time.Millisecond)
	if v.State().Cwnd != 124 {
		t.Fatalf("cwnd %d after a SENDME on a half-used window, want 124", v.State().Cwnd)
	}
}

// TestVegasSlowStartGammaExit: RTT growth (queueing) puts queue_use =
// cwnd - cwnd*RTT_min/RTT_ewma at or above gamma: slow start ends with
// cwnd = BDP + gamma.
func TestVegasSlowStartGammaExit(t *testing.T) {
	v := NewVegas(testParams(), 31)
	s := newSim(v)
	s.fill()
	s.ack(t, 100*time.Millisecond) // baseline
	for i := 0; i < 200 && v.State().InSlowStart; i++ {
		s.fill()
		s.ack(t, time.Duration(100+10*i)*time.Millisecond) // queue grows
	}
	st := v.State()
	if st.InSlowStart {
		t.Fatal("still in slow start with a growing queue")
	}
	// On the exiting ack: queue_use >= gamma and cwnd = bdp + gamma.
	if st.Cwnd != st.BDP+186 {
		t.Fatalf("cwnd %d after the gamma exit, want BDP %d + gamma 186", st.Cwnd, st.BDP)
	}
}

// TestVegasSSMax: cc_ss_max caps slow start and ends it.
func TestVegasSSMax(t *testing.T) {
	p := testParams()
	p.SSMax = 500
	v := NewVegas(p, 31)
	s := newSim(v)
	for i := 0; i < 30 && v.State().InSlowStart; i++ {
		s.fill()
		s.ack(t, 80*time.Millisecond)
	}
	st := v.State()
	if st.InSlowStart || st.Cwnd != 500 {
		t.Fatalf("cwnd %d, slow start %v; want 500 and out of slow start", st.Cwnd, st.InSlowStart)
	}
}

// TestVegasSlowStartIncrementFloor: slow start ends once its step over a
// cwnd is no larger than steady state's (cc_cwnd_inc*cc_cwnd_inc_rate).
func TestVegasSlowStartIncrementFloor(t *testing.T) {
	p := testParams()
	p.CwndInc, p.CwndIncRate = 1000, 250
	v := NewVegas(p, 31)
	s := newSim(v)
	s.fill()
	s.ack(t, 50*time.Millisecond)
	if st := v.State(); st.InSlowStart || st.Cwnd != 155 {
		t.Fatalf("cwnd %d, slow start %v; want one step (155) then steady state", st.Cwnd, st.InSlowStart)
	}
}

// steady returns a controller just out of slow start at cwnd c with
// RTT_min 100 ms, and its sim.
func steady(t *testing.T, p Params, c int64) (*Vegas, *sim) {
	t.Helper()
	p.SSMax = c
	v := NewVegas(p, 31)
	s := newSim(v)
	for v.State().InSlowStart {
		s.fill()
		s.ack(t, 100*time.Millisecond)
	}
	if v.State().Cwnd != c {
		t.Fatalf("setup: cwnd %d, want %d", v.State().Cwnd, c)
	}
	return v, s
}

// updateWith feeds SENDMEs with the given RTT until the steady-state
// update happens (next_cc_event reaches 0), keeping the window full, and
// returns cwnd before and after.
func updateWith(t *testing.T, v *Vegas, s *sim, rtt time.Duration) (before, after int64) {
	t.Helper()
	s.fill()
	for v.State().NextUpdateSendme > 1 {
		s.ack(t, rtt)
		s.fill()
	}
	before = v.State().Cwnd
	s.ack(t, rtt)
	s.fill()
	return before, v.State().Cwnd
}

// TestVegasSteadyState checks the four cases of §3.3 once per
// CWND_UPDATE_RATE SENDMEs: queue_use below alpha with a full window
// grows by cc_cwnd_inc; between alpha and beta keeps; above beta shrinks
// by cc_cwnd_inc; above delta drops to BDP + delta - cc_cwnd_inc.
func TestVegasSteadyState(t *testing.T) {
	const c = 1240 // CWND_UPDATE_RATE = (1240+15)/31 = 40 SENDMEs
	// queue_use = cwnd - cwnd*min/ewma; choose ewma for each band.
	rttFor := func(queue int64) time.Duration {
		// ewma = min*cwnd/(cwnd-queue), with min = 100ms.
		return time.Duration(int64(100*time.Millisecond) * c / (c - queue))
	}
	for _, tc := range []struct {
		name  string
		queue int64
		want  func(before, bdp int64) int64
	}{
		{"below alpha: grow", 0, func(b, _ int64) int64 { return b + 31 }},
		{"between alpha and beta: keep", 180, func(b, _ int64) int64 { return b }},
		{"above beta: shrink", 300, func(b, _ int64) int64 { return b - 31 }},
		{"above delta: drop", 600, func(_, bdp int64) int64 { return bdp + 372 - 31 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, s := steady(t, testParams(), c)
			if r := v.cwndUpdateRate(); r != 40 {
				t.Fatalf("CWND_UPDATE_RATE %d, want 40", r)
			}
			// The smoothed RTT needs a few samples to settle on the band's
			// value; let two updates pass first.
			rtt := rttFor(tc.queue)
			for range 2 {
				updateWith(t, v, s, rtt)
			}
			before, after := updateWith(t, v, s, rtt)
			st := v.State()
			if want := tc.want(before, st.BDP); after != want {
				t.Fatalf("cwnd %d -> %d (BDP %d), want %d", before, after, st.BDP, want)
			}
		})
	}
}

// TestVegasSteadyStateUpdateRate: between updates cwnd does not move.
func TestVegasSteadyStateUpdateRate(t *testing.T) {
	v, s := steady(t, testParams(), 1240)
	s.fill()
	c0 := v.State().Cwnd
	n := v.State().NextUpdateSendme
	for i := int64(0); i < n-1; i++ {
		s.ack(t, 100*time.Millisecond)
		s.fill()
		if v.State().Cwnd != c0 {
			t.Fatalf("cwnd moved from %d to %d %d SENDMEs before the update", c0, v.State().Cwnd, n-1-i)
		}
	}
}

// TestVegasCwndMin: cwnd never falls below cc_cwnd_min, and RTT_min is
// reset toward the current RTT there (cc_rtt_reset_pct 100: to RTT_ewma).
func TestVegasCwndMin(t *testing.T) {
	p := testParams()
	p.Alpha, p.Beta, p.Delta = 5, 10, 1<<30 // only the beta step: cwnd shrinks by cc_cwnd_inc per update
	v, s := steady(t, p, 600)
	for i := 0; i < 4000 && v.State().Cwnd > int64(p.CwndMin); i++ {
		s.fill()
		s.ack(t, 2*time.Second) // heavy queueing
	}
	st := v.State()
	if st.Cwnd != int64(p.CwndMin) {
		t.Fatalf("cwnd %d, want cc_cwnd_min %d", st.Cwnd, p.CwndMin)
	}
	s.fill()
	s.ack(t, 2*time.Second)
	if st := v.State(); st.MinRTT != st.EwmaRTT {
		t.Fatalf("at cwnd_min RTT_min %v, want reset to RTT_ewma %v", st.MinRTT, st.EwmaRTT)
	}
}

// TestVegasCwndMax: cc_cwnd_max clamps growth.
func TestVegasCwndMax(t *testing.T) {
	p := testParams()
	p.CwndMax = 600
	v := NewVegas(p, 31)
	s := newSim(v)
	for range 60 {
		s.fill()
		s.ack(t, 100*time.Millisecond)
	}
	if c := v.State().Cwnd; c != 600 {
		t.Fatalf("cwnd %d, want cc_cwnd_max 600", c)
	}
}

// TestVegasRTTEstimate: N-EWMA with N = cc_ewma_ss (2) in slow start:
// ewma = (2*rtt + ewma)/3; min follows the EWMA; max the samples.
func TestVegasRTTEstimate(t *testing.T) {
	v := NewVegas(testParams(), 31)
	s := newSim(v)
	s.send(62)
	s.ack(t, 90*time.Millisecond)
	s.ack(t, 30*time.Millisecond)
	st := v.State()
	// (2*30000 + 90000)/3 = 50000 us
	if st.EwmaRTT != 50*time.Millisecond || st.MinRTT != 50*time.Millisecond || st.MaxRTT != 90*time.Millisecond {
		t.Fatalf("RTT ewma %v min %v max %v, want 50ms 50ms 90ms", st.EwmaRTT, st.MinRTT, st.MaxRTT)
	}
}

// TestVegasClockHeuristics: a zero RTT (clock stall) and, after slow
// start, a sample 5000 times the average (a jump) change nothing but
// inflight (prop 324 §2.1.1).
func TestVegasClockHeuristics(t *testing.T) {
	v := NewVegas(testParams(), 31)
	s := newSim(v)
	s.fill()
	s.ack(t, 0)
	st := v.State()
	if st.Cwnd != 124 || st.EwmaRTT != 0 || st.Inflight != 93 || st.RejectedSamples != 1 {
		t.Fatalf("after a zero RTT: %+v", st)
	}

	v, s = steady(t, testParams(), 620)
	s.fill()
	before := v.State()
	s.ack(t, 100*time.Millisecond*5001)
	after := v.State()
	if after.Cwnd != before.Cwnd || after.EwmaRTT != before.EwmaRTT || after.MaxRTT != before.MaxRTT ||
		after.RejectedSamples != before.RejectedSamples+1 || after.Inflight != before.Inflight-31 {
		t.Fatalf("clock jump taken as a sample:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestVegasUnexpectedSendme: a SENDME with fewer than sendme_inc cells in
// flight is refused and changes nothing.
func TestVegasUnexpectedSendme(t *testing.T) {
	v := NewVegas(testParams(), 31)
	now := time.Now()
	if err := v.OnSendme(now, now); !errors.Is(err, ErrUnexpectedSendme) {
		t.Fatalf("SENDME with nothing in flight: %v", err)
	}
	for range 30 {
		v.Sent()
	}
	before := v.State()
	if err := v.OnSendme(now, now.Add(time.Millisecond)); !errors.Is(err, ErrUnexpectedSendme) {
		t.Fatalf("SENDME for 30 of 31 cells: %v", err)
	}
	if v.State() != before {
		t.Fatal("a refused SENDME changed the state")
	}
}

// TestVegasWindowAfterShrink: a window cut below what is in flight
// reads as 0, not negative.
func TestVegasWindowAfterShrink(t *testing.T) {
	v, s := steady(t, testParams(), 1240)
	s.fill()
	for v.State().Cwnd >= 1240 {
		s.ack(t, 3*time.Second)
	}
	if st := v.State(); st.Inflight > st.Cwnd && v.Window() != 0 {
		t.Fatalf("window %d with %d in flight over cwnd %d", v.Window(), st.Inflight, st.Cwnd)
	}
}

func TestFixed(t *testing.T) {
	f := &Fixed{}
	s := newSim(f)
	if n := s.fill(); n != 1000 || len(s.pending) != 10 {
		t.Fatalf("fixed window sent %d cells, %d SENDMEs due; want 1000, 10", n, len(s.pending))
	}
	s.ack(t, time.Millisecond)
	if f.Window() != 100 {
		t.Fatalf("window %d after one SENDME, want 100", f.Window())
	}
	g := &Fixed{}
	for range 99 {
		g.Sent()
	}
	if err := g.OnSendme(time.Time{}, time.Time{}); !errors.Is(err, ErrUnexpectedSendme) {
		t.Fatalf("SENDME after 99 cells: %v", err)
	}
}

// TestVegasRealDefaults runs the consensus's parameters: slow start grows
// by 31 cells a SENDME up to cc_sscap_exit (600), then by the RFC 3742
// step, and does not end on its own without queueing; after a gamma
// exit, updates come every CWND_UPDATE_RATE = round(cwnd/961) SENDMEs (every
// one below 961) and move cwnd by cc_cwnd_inc (1), or drop it to
// BDP + delta - 1 above delta.
func TestVegasRealDefaults(t *testing.T) {
	v := NewVegas(DefaultParams(PathExit), 31)
	s := newSim(v)
	want := int64(124)
	for v.State().Cwnd < 2000 {
		s.fill()
		s.ack(t, 100*time.Millisecond)
		if want <= 600 {
			want += 31
		} else {
			want += max((31*600+want)/(2*want), 1)
		}
		if st := v.State(); st.Cwnd != want || !st.InSlowStart {
			t.Fatalf("cwnd %d (slow start %v), want %d", st.Cwnd, st.InSlowStart, want)
		}
	}
	// Queueing: RTT 100 ms -> 300 ms: queue_use = cwnd*2/3 > gamma.
	for v.State().InSlowStart {
		s.fill()
		s.ack(t, 300*time.Millisecond)
	}
	st := v.State()
	if st.Cwnd != st.BDP+186 {
		t.Fatalf("gamma exit: cwnd %d, BDP %d", st.Cwnd, st.BDP)
	}
	// Keep queueing (queue_use = 2/3 cwnd): with cwnd below 961 every
	// SENDME is an update, setting cwnd = BDP + delta - cc_cwnd_inc above
	// delta, taking cc_cwnd_inc off above beta.
	for range 20 {
		s.fill()
		before := v.State().Cwnd
		s.ack(t, 300*time.Millisecond)
		st := v.State()
		want := before - 1 // beta < queue_use <= delta
		if before-st.BDP > 310 {
			want = st.BDP + 310 - 1
		}
		if st.Cwnd != want || st.NextUpdateSendme > 1 {
			t.Fatalf("queue %d: cwnd %d -> %d (BDP %d), want %d; next update in %d SENDMEs",
				before-st.BDP, before, st.Cwnd, st.BDP, want, st.NextUpdateSendme)
		}
	}
	// Back to the base RTT: no queue, a full window grows by 1 per update.
	for range 10 {
		s.fill()
		s.ack(t, 100*time.Millisecond)
	}
	before := v.State().Cwnd
	s.fill()
	s.ack(t, 100*time.Millisecond)
	if after := v.State().Cwnd; after != before+1 {
		t.Fatalf("no queue: cwnd %d -> %d, want +1", before, after)
	}
}
