package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cbt"
	"github.com/gotor/gotor/internal/testnet"
)

// The exit circuits built on the private network are recorded by the
// learned build timeout estimator (path-spec §2.4.2), whose parameters
// came from the consensus; Stop writes the history to
// DataDirectory/cbt_state and a new engine on that directory loads it.
func TestBuildTimesRecorded(t *testing.T) {
	n := testnet.Shared(t)
	c := startEngine(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	total := func() int {
		c.cbt.mu.Lock()
		defer c.cbt.mu.Unlock()
		return c.cbt.est.State().Total
	}
	// The first circuit is built; prebuilding builds more for the
	// predicted ports 80 and 443.
	for total() < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d build times recorded, want at least 3", total())
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.cbt.mu.Lock()
	learn := !c.cbt.p.Disabled
	initial := c.cbt.p.InitialTimeout
	c.cbt.mu.Unlock()
	if !learn || initial != 60*time.Second {
		t.Errorf("params: learning %v, initial timeout %v (want the consensus default 60 s)", learn, initial)
	}
	if got := c.cbt.timeout(); got != initial {
		t.Errorf("timeout %v with few build times, want the initial %v", got, initial)
	}
	cfg := c.conf()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	saved := total()
	raw, err := os.ReadFile(filepath.Join(cfg.DataDirectory, cbtStateFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := cbt.ParseState(strings.Split(string(raw), "\n"))
	if err != nil || st.Total != saved || len(st.Bins) == 0 {
		t.Fatalf("state file: %+v, %v; want %d build times", st, err, saved)
	}
	c2, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	if got := c2.cbt.est.State().Total; got != saved {
		t.Errorf("reloaded %d build times, want %d", got, saved)
	}
}
