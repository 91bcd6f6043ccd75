package onion

// The real shared-random case (rend-spec-v3 §2.2.4, §2.3.1; proposal
// 250): on a network whose authorities run the shared-random protocol,
// gotor fetches a C tor service's descriptor in both segments of a time
// period, from TP to SRV with the consensus's current SRV and from SRV to
// TP with its previous one, and the HSDirs it computes are exactly those
// the service uploaded to.
//
// Timing (testnet.Options.SharedRandom): a protocol run is 24 voting
// rounds of 10 s and ends every 4 minutes of wall-clock time. The first
// SRV appears at the first run end the authorities vote at; the TP->SRV
// segment with it starts 12 rounds later and the first SRV->TP segment
// with a previous SRV at the next run end. The first run counts fully
// (a reveal from every authority) only if the network started early in
// its commit phase; otherwise the second run's SRV is waited for, as the
// current SRV of the following TP->SRV segment. Either way the test ends
// 4.5-9 minutes after the network started. The network starts with the
// package's first integration test (sharedNet), so the other tests run
// meanwhile; this file sorts last, so this test runs last.

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/testnet"
)

const srvNetName = "srv"

// srvNetOptions: as large as the shared network, so that the ring check
// means something, with the shared-random protocol on.
var srvNetOptions = testnet.Options{Relays: 10, SharedRandom: true}

// srvBudget bounds the test from its start, at least a minute after the
// network's: the worst case above plus time for fetches and ring checks,
// within CI's 12-minute go test timeout.
const srvBudget = 9*time.Minute + 30*time.Second

func TestIntegrationFetchWithSRV(t *testing.T) {
	start := time.Now()
	n := testnet.Extra(t, srvNetName, srvNetOptions)
	ctx, cancel := context.WithTimeout(context.Background(), srvBudget)
	defer cancel()
	host := startOnionService(t, n)
	addr, err := ParseAddress(host)
	if err != nil {
		t.Fatal(err)
	}
	dm := newDirMgr(t, ctx, n)
	mgr := channel.NewManager()
	defer mgr.Close()
	b := &realBuilder{mgr: mgr, dir: dm.NetDir}

	first, err := n.WaitSharedRandom(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first SRV in the consensus of %s (%d reveals), %v after this test began",
		first.ValidAfter.Format(time.TimeOnly), first.CurrentReveals, time.Since(start).Round(time.Second))

	// proven[seg] is the real-SRV fetch and ring match in segment seg
	// (true: TP->SRV, current SRV; false: SRV->TP, previous SRV). One of
	// the two must use an SRV of a full protocol run, with a reveal from
	// every authority: the first run may have started before the
	// authorities did (then its SRV has fewer reveals, possibly none).
	type proof struct {
		what    string
		reveals int
	}
	all := len(n.Authorities())
	proven := map[bool]proof{}
	done := func() bool {
		return len(proven) == 2 && (proven[true].reveals == all || proven[false].reveals == all)
	}
	for attempt := 0; !done(); attempt++ {
		if ctx.Err() != nil {
			t.Fatalf("after %v, real-SRV case proven only as %+v (TP->SRV = true); need both segments, one with an SRV of %d reveals",
				time.Since(start).Round(time.Second), proven, all)
		}
		if attempt > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(5 * time.Second):
			}
		}
		if err := dm.Bootstrap(ctx); err != nil {
			t.Logf("attempt %d: bootstrap: %v", attempt, err)
			continue
		}
		nd := dm.NetDir()
		sched := hscrypto.ScheduleFor(nd, true)
		seg := sched.InPeriodBetweenTPAndSRV(nd.ValidAfter)
		p := hscrypto.ClientFetchParams(nd, sched)
		if p.Disaster {
			continue // no SRV for this segment yet
		}
		// gotor's SRV must be the one the harness reads in the same
		// consensus: the current value from TP to SRV, else the previous.
		sr, err := n.ConsensusSharedRandom(ctx)
		if err != nil || !sr.ValidAfter.Equal(nd.ValidAfter) {
			continue // a newer consensus meanwhile: read both again
		}
		want, reveals := sr.Previous, sr.PreviousReveals
		if seg {
			want, reveals = sr.Current, sr.CurrentReveals
		}
		if got := base64.StdEncoding.EncodeToString(p.SRV[:]); got != want {
			t.Fatalf("valid-after %s TP->SRV=%v: gotor uses SRV %s, the consensus says %q", nd.ValidAfter.Format(time.TimeOnly), seg, got, want)
		}
		if old, ok := proven[seg]; ok && (old.reveals == all || reveals < all) {
			continue // nothing new to prove in this segment
		}
		c := New(Config{Builder: b, NetDir: func() *netdir.NetDir { return nd }, TestingNetwork: true, HSDirTimeout: 20 * time.Second})
		if _, _, err := c.FetchDescriptor(ctx, host); err != nil {
			t.Logf("attempt %d: valid-after %s TP->SRV=%v: %v", attempt, nd.ValidAfter.Format(time.TimeOnly), seg, err)
			continue
		}
		if !checkRing(t, ctx, b, nd, addr, attempt) {
			continue // the service is still uploading for this SRV
		}
		proven[seg] = proof{fmt.Sprintf("valid-after %s, period %d, SRV %.12s...", nd.ValidAfter.Format(time.TimeOnly), p.PeriodNum, want), reveals}
		t.Logf("real SRV, TP->SRV=%v: descriptor fetched and ring matched at %s (%d reveals), %v after this test began",
			seg, proven[seg].what, reveals, time.Since(start).Round(time.Second))
	}
}
