package channel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
)

func TestPaddingParamsFrom(t *testing.T) {
	if got, want := DefaultPaddingParams(), (PaddingParams{1500, 9500, 9000, 14000, true}); got != want {
		t.Fatalf("defaults %+v, want %+v (padding-spec §2.6)", got, want)
	}
	set := map[string]int32{"nf_ito_low": 3000, "nf_ito_high": 2000, "nf_ito_low_reduced": 70000,
		"nf_ito_high_reduced": 1, "nf_pad_before_usage": 0}
	p := PaddingParamsFrom(func(name string, def, lo, hi int32) int32 {
		v, ok := set[name]
		if !ok {
			return def
		}
		return min(max(v, lo), hi)
	})
	// High ends are clamped to at least the low ends, everything to 60 s.
	if want := (PaddingParams{3000, 3000, 60000, 60000, false}); p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
}

// The timeout rule of C tor's channelpadding_get_netflow_inactive_timeout_ms.
func TestPaddingTimeoutRule(t *testing.T) {
	seq := func(v ...int) func(int) int {
		return func(n int) int {
			x := v[0]
			v = v[1:]
			if x >= n {
				t.Fatalf("draw %d out of [0,%d)", x, n)
			}
			return x
		}
	}
	d := DefaultPaddingParams()
	if got := d.timeout(false, seq(100, 7000)); got != 1500+7000 {
		t.Fatalf("max of two draws: got %d", got)
	}
	if got := d.timeout(false, seq(7000, 100)); got != 1500+7000 {
		t.Fatalf("max of two draws (other order): got %d", got)
	}
	// Reduced: the reduced range where it is higher, [9000, 14000).
	if got := d.timeout(true, seq(4999, 0)); got != 9000+4999 {
		t.Fatalf("reduced: got %d", got)
	}
	// Reduced parameters of 0 are not negotiated: the normal range.
	z := d
	z.ItoLowReduced, z.ItoHighReduced = 0, 0
	if got := z.timeout(true, seq(1, 2)); got != 1502 {
		t.Fatalf("zero reduced range: got %d", got)
	}
	// 0/0 disables padding, even reduced; low == high is not randomised.
	off := d
	off.ItoLow, off.ItoHigh = 0, 0
	if got := off.timeout(true, nil); got != 0 {
		t.Fatalf("disabled: got %d", got)
	}
	fixed := d
	fixed.ItoLow, fixed.ItoHigh = 4000, 4000
	if got := fixed.timeout(false, nil); got != 4000 {
		t.Fatalf("fixed: got %d", got)
	}
}

// The draws follow Y = max(X, X): Prob(Y == i) = (2i+1)/R² (padding-spec
// §2.3), mean low + (R-1)(4R+1)/(6R). A uniform draw or a min would fail.
func TestPaddingTimeoutDistribution(t *testing.T) {
	p := DefaultPaddingParams()
	const n = 400000
	r := p.ItoHigh - p.ItoLow
	var buckets [10]int
	sum := 0.0
	for range n {
		ms := p.timeout(false, rand.IntN)
		if ms < p.ItoLow || ms >= p.ItoHigh {
			t.Fatalf("timeout %d ms outside [%d, %d)", ms, p.ItoLow, p.ItoHigh)
		}
		sum += float64(ms)
		buckets[(ms-p.ItoLow)*10/r]++
	}
	R := float64(r)
	wantMean := float64(p.ItoLow) + (R-1)*(4*R+1)/(6*R)
	// The standard deviation of max(X, X) is R/sqrt(18); 5 standard errors.
	if mean := sum / n; math.Abs(mean-wantMean) > 5*R/math.Sqrt(18)/math.Sqrt(n) {
		t.Fatalf("mean %.1f ms, want %.1f", mean, wantMean)
	}
	chi2 := 0.0
	for k, got := range buckets {
		want := n * float64(2*k+1) / 100 // P(k/10 <= Y/R < (k+1)/10)
		chi2 += (float64(got) - want) * (float64(got) - want) / want
	}
	if chi2 > 33.7 { // 9 degrees of freedom, p = 0.0001
		t.Fatalf("chi-square %.1f against max(X,X): buckets %v", chi2, buckets)
	}
	t.Logf("mean %.1f ms (spec %.1f), chi-square %.1f", sum/n, wantMean, chi2)
}

// relayEnd is the relay's side of a test channel: the cells the client
// wrote, with arrival times.
type relayEnd struct {
	net.Conn
	cells chan arrived
}

type arrived struct {
	c  *cell.Cell
	at time.Time
}

func (r *relayEnd) read() {
	for {
		c, err := cell.Read(r.Conn, 4)
		if err != nil {
			close(r.cells)
			return
		}
		r.cells <- arrived{c, time.Now()}
	}
}

// managedPipe opens, through a Manager with padding configured, a
// channel with link protocol proto over a pipe whose relay end keeps
// reading.
func managedPipe(t *testing.T, proto int, cfg PaddingConfig, params PaddingParams) (*Manager, *Channel, *relayEnd) {
	t.Helper()
	m := NewManager()
	m.SetPadding(cfg)
	m.SetPaddingParams(params)
	a, b := net.Pipe()
	r := &relayEnd{Conn: b, cells: make(chan arrived, 1000)}
	go r.read()
	m.DialFunc = func(context.Context, netip.AddrPort, Identity) (*Channel, error) {
		ch := NewFromConn(a, Identity{})
		ch.linkProto = proto
		return ch, nil
	}
	t.Cleanup(func() { m.Close(); b.Close() })
	ch, err := m.Get(context.Background(), netip.MustParseAddrPort("127.0.0.1:9001"), Identity{})
	if err != nil {
		t.Fatal(err)
	}
	return m, ch, r
}

// The PADDING_NEGOTIATE a client sends: STOP, version 0, zero timeouts,
// right after the channel opens, only when reducing or disabling padding
// on a link that supports it (C tor channel_do_open_actions); byte for
// byte as tor-spec §7.2.
func TestNegotiateCellBytes(t *testing.T) {
	t.Parallel()
	want := make([]byte, cell.CellLen)
	copy(want, []byte{0, 0, 0, 0, byte(cell.PADDING_NEGOTIATE), 0, negotiateStop, 0, 0, 0, 0})
	for _, tc := range []struct {
		name  string
		proto int
		cfg   PaddingConfig
		sends bool
	}{
		{"reduced", 5, PaddingConfig{Reduced: true}, true},
		{"disabled", 5, PaddingConfig{Mode: PaddingNever}, true},
		{"default", 5, PaddingConfig{}, false},
		{"forced", 5, PaddingConfig{Mode: PaddingAlways}, false},
		{"reduced, link 4", 4, PaddingConfig{Reduced: true}, false},
		{"disabled, link 4", 4, PaddingConfig{Mode: PaddingNever}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			m := NewManager()
			m.SetPadding(tc.cfg)
			a, b := net.Pipe()
			t.Cleanup(func() { m.Close(); b.Close() })
			m.DialFunc = func(context.Context, netip.AddrPort, Identity) (*Channel, error) {
				ch := NewFromConn(a, Identity{})
				ch.linkProto = tc.proto
				return ch, nil
			}
			go func() { // the first cell's bytes, raw
				buf := make([]byte, cell.CellLen)
				if _, err := io.ReadFull(b, buf); err == nil {
					got <- buf
				}
				drain(b)
			}()
			ch, err := m.Get(context.Background(), netip.MustParseAddrPort("127.0.0.1:9001"), Identity{})
			if err != nil {
				t.Fatal(err)
			}
			// A DESTROY marks the end of what the channel sent on opening.
			ch.Send(&cell.Cell{CircID: 0x80000001, Command: cell.DESTROY, Payload: []byte{1}})
			first := <-got
			if tc.sends {
				if !bytes.Equal(first, want) {
					t.Fatalf("first cell\n%x\nwant\n%x", first[:16], want[:16])
				}
			} else if cell.Command(first[4]) != cell.DESTROY {
				t.Fatalf("first cell is %v, want no PADDING_NEGOTIATE", cell.Command(first[4]))
			}
		})
	}
	// The START form, for reference: version 0, command 2, 1500, 9500.
	if got := encodeNegotiate(negotiateStart, 1500, 9500); !bytes.Equal(got, []byte{0, 2, 0x05, 0xdc, 0x25, 0x1c}) {
		t.Fatalf("START body %x", got)
	}
}

// fast are test parameters: timeouts of a few hundred milliseconds.
var fast = PaddingParams{ItoLow: 200, ItoHigh: 400, ItoLowReduced: 500, ItoHighReduced: 600, PadBeforeUsage: true}

// slowerThanTraffic has timeouts far above the 20 ms between the test's
// cells, so that only a scheduling stall of a second on a loaded machine,
// not the padding rule, could let a PADDING cell through.
var slowerThanTraffic = PaddingParams{ItoLow: 1000, ItoHigh: 1200, ItoLowReduced: 1000, ItoHighReduced: 1200, PadBeforeUsage: true}

// collectPadding returns the arrival times of the PADDING cells the relay
// end reads within d; other cells are dropped.
func collectPadding(r *relayEnd, d time.Duration) []time.Time {
	var at []time.Time
	deadline := time.After(d)
	for {
		select {
		case a, ok := <-r.cells:
			if !ok {
				return at
			}
			if a.c.Command == cell.PADDING && a.c.CircID == 0 {
				at = append(at, a.at)
			}
		case <-deadline:
			return at
		}
	}
}

func checkGaps(t *testing.T, at []time.Time, start time.Time, min time.Duration) {
	t.Helper()
	prev := start
	for _, a := range at {
		if g := a.Sub(prev); g < min-5*time.Millisecond {
			t.Fatalf("padding %v after the previous cell, below the %v minimum", g, min)
		}
		prev = a
	}
}

func multiHop(t *testing.T, ch *Channel) *Endpoint {
	t.Helper()
	e, err := ch.NewEndpoint(func(c *cell.Cell) { c.Release() }, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Send(cell.RELAY_EARLY, nil); err != nil { // as an EXTEND2 does
		t.Fatal(err)
	}
	return e
}

// A channel pads only once it carries a multi-hop circuit, then every
// [low, high) of idleness, never sooner after the last cell.
func TestPaddingOnIdleChannel(t *testing.T) {
	t.Parallel()
	_, ch, r := managedPipe(t, 5, PaddingConfig{}, fast)
	if got := collectPadding(r, 1200*time.Millisecond); len(got) != 0 {
		t.Fatalf("%d PADDING cells on a channel with no multi-hop circuit", len(got))
	}
	multiHop(t, ch)
	start := time.Now()
	got := collectPadding(r, 2500*time.Millisecond)
	// 2.5 s at one cell per 200-400 ms (mean 333 ms after the last).
	if len(got) < 4 || len(got) > 13 {
		t.Fatalf("%d PADDING cells in 2.5 s idle with timeouts of 200-400 ms", len(got))
	}
	checkGaps(t, got, start, 200*time.Millisecond)
	if s := ch.PaddingStats(); s.Sent < uint64(len(got)) {
		t.Fatalf("stats %+v, relay saw %d", s, len(got))
	}
	t.Logf("%d PADDING cells in 2.5 s", len(got))
}

// Traffic in either direction resets the timer: no padding while the
// channel carries a cell every 20 ms.
func TestPaddingStopsWithTraffic(t *testing.T) {
	t.Parallel()
	_, ch, r := managedPipe(t, 5, PaddingConfig{}, slowerThanTraffic)
	e := multiHop(t, ch)
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				e.Send(cell.RELAY, nil)
			}
		}
	}()
	got := collectPadding(r, 1500*time.Millisecond)
	close(stop)
	if len(got) != 0 {
		t.Fatalf("%d PADDING cells while sending every 20 ms", len(got))
	}
	// Incoming cells count as activity too (C tor channel_timestamp_recv).
	stop2 := make(chan struct{})
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop2:
				return
			case <-tk.C:
				b, _ := (&cell.Cell{CircID: e.ID, Command: cell.RELAY}).Encode(4)
				if _, err := r.Write(b); err != nil {
					return
				}
			}
		}
	}()
	got = collectPadding(r, 1500*time.Millisecond)
	close(stop2)
	if len(got) != 0 {
		t.Fatalf("%d PADDING cells while receiving every 20 ms", len(got))
	}
	if after := collectPadding(r, 4*time.Second); len(after) == 0 {
		t.Fatal("no padding once the traffic stopped")
	}
}

// nf_pad_before_usage=0: a multi-hop circuit alone does not start
// padding; its first RELAY cell does.
func TestPaddingAfterUsage(t *testing.T) {
	t.Parallel()
	p := fast
	p.PadBeforeUsage = false
	_, ch, r := managedPipe(t, 5, PaddingConfig{}, p)
	e := multiHop(t, ch)
	if got := collectPadding(r, time.Second); len(got) != 0 {
		t.Fatalf("%d PADDING cells before any user traffic", len(got))
	}
	e.Send(cell.RELAY, nil)
	if got := collectPadding(r, 1500*time.Millisecond); len(got) == 0 {
		t.Fatal("no padding after user traffic")
	}
}

// ConnectionPadding 0 never pads; ConnectionPadding 1 pads a link-4
// relay; reduced padding uses the reduced range.
func TestPaddingModes(t *testing.T) {
	t.Parallel()
	t.Run("never", func(t *testing.T) {
		t.Parallel()
		_, ch, r := managedPipe(t, 5, PaddingConfig{Mode: PaddingNever}, fast)
		multiHop(t, ch)
		if got := collectPadding(r, 1200*time.Millisecond); len(got) != 0 {
			t.Fatalf("%d PADDING cells with ConnectionPadding 0", len(got))
		}
	})
	t.Run("auto, link 4", func(t *testing.T) {
		t.Parallel()
		_, ch, r := managedPipe(t, 4, PaddingConfig{}, fast)
		multiHop(t, ch)
		if got := collectPadding(r, 1200*time.Millisecond); len(got) != 0 {
			t.Fatalf("%d PADDING cells to a relay without padding support", len(got))
		}
	})
	t.Run("always, link 4", func(t *testing.T) {
		t.Parallel()
		_, ch, r := managedPipe(t, 4, PaddingConfig{Mode: PaddingAlways}, fast)
		multiHop(t, ch)
		if got := collectPadding(r, 1200*time.Millisecond); len(got) == 0 {
			t.Fatal("no padding with ConnectionPadding 1")
		}
	})
	t.Run("reduced", func(t *testing.T) {
		t.Parallel()
		_, ch, r := managedPipe(t, 5, PaddingConfig{Reduced: true}, fast)
		multiHop(t, ch)
		start := time.Now()
		got := collectPadding(r, 5*time.Second)
		if len(got) == 0 {
			t.Fatal("no reduced padding")
		}
		checkGaps(t, got, start, 500*time.Millisecond)
	})
	t.Run("consensus disables", func(t *testing.T) {
		t.Parallel()
		off := fast
		off.ItoLow, off.ItoHigh = 0, 0
		_, ch, r := managedPipe(t, 5, PaddingConfig{}, off)
		multiHop(t, ch)
		if got := collectPadding(r, 1200*time.Millisecond); len(got) != 0 {
			t.Fatalf("%d PADDING cells with nf_ito_low = nf_ito_high = 0", len(got))
		}
	})
}

// Any channel, padded or not, writes a PADDING cell after KeepalivePeriod
// without a write.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	_, _, r := managedPipe(t, 5, PaddingConfig{KeepalivePeriod: 300 * time.Millisecond}, fast)
	start := time.Now()
	got := collectPadding(r, 1600*time.Millisecond)
	if len(got) < 2 || len(got) > 6 {
		t.Fatalf("%d keepalives in 1.6 s with KeepalivePeriod 300 ms", len(got))
	}
	checkGaps(t, got, start, 300*time.Millisecond)
}

// padding-spec §2.5: a client closes a channel on which the relay sends
// PADDING_NEGOTIATE; PADDING and VPADDING are counted and dropped.
func TestPaddingNegotiateFromRelayClosesChannel(t *testing.T) {
	ch, peer := fakePeer(t)
	drain(peer)
	writeCell(t, peer, 0, cell.PADDING, nil)
	writeCell(t, peer, 0, cell.VPADDING, []byte{0, 0})
	writeCell(t, peer, 0, cell.PADDING_NEGOTIATE, encodeNegotiate(negotiateStop, 0, 0))
	select {
	case <-ch.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("channel still open after a PADDING_NEGOTIATE from the relay")
	}
	var pe *ProtocolError
	if !errors.As(ch.Err(), &pe) {
		t.Fatalf("closed with %v, want a ProtocolError", ch.Err())
	}
	if s := ch.PaddingStats(); s.Received != 2 {
		t.Fatalf("stats %+v, want 2 received", s)
	}
}

// A channel without circuits closes after the idle timeout (C tor: 3 to
// 4.5 minutes for a client); one with a circuit stays; the Manager then
// dials a new one.
func TestIdleChannelCloses(t *testing.T) {
	old := channelIdleBase
	channelIdleBase = 200 * time.Millisecond
	t.Cleanup(func() { channelIdleBase = old })
	m, ch, _ := managedPipe(t, 5, PaddingConfig{}, fast)
	e, err := ch.NewEndpoint(func(c *cell.Cell) { c.Release() }, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch.Done():
		t.Fatal("channel with a circuit closed as idle")
	case <-time.After(time.Second):
	}
	e.Release(false, 0)
	select {
	case <-ch.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("idle channel still open")
	}
	if !errors.Is(ch.Err(), errIdle) {
		t.Fatalf("closed with %v", ch.Err())
	}
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	drain(b)
	m.DialFunc = func(context.Context, netip.AddrPort, Identity) (*Channel, error) {
		return NewFromConn(a, Identity{}), nil
	}
	ch2, err := m.Get(context.Background(), netip.MustParseAddrPort("127.0.0.1:9001"), Identity{})
	if err != nil || ch2 == ch {
		t.Fatalf("Get after idle close: %v, same channel %v", err, ch2 == ch)
	}
}
