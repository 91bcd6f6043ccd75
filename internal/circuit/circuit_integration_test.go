package circuit_test

import (
	"context"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/testnet"
)

// The package's network has congestion control off (ccAlg0): the
// circuit tests need no congestion control, and the fallback to fixed
// windows is tested against real exits (cc_integration_test.go).
func TestMain(m *testing.M) {
	testnet.Main(m, testnet.Options{ExtraAuthorityTorrc: []string{ccAlg0}})
}

func targets(t *testing.T) *circtest.Path {
	t.Helper()
	net := testnet.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := circtest.Targets(ctx, net)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOneHopCreate(t *testing.T) {
	p := targets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tg := range append(p.Relays, p.Exits...) {
		ch, err := channel.Dial(ctx, tg.Addr, tg.Identity())
		if err != nil {
			t.Fatal(err)
		}
		c, err := circuit.Create(ctx, ch, tg)
		if err != nil {
			t.Fatalf("%s: %v", p.Nicks[tg.RSAID], err)
		}
		if c.NumHops() != 1 {
			t.Fatal(c.NumHops())
		}
		c.Close()
		<-c.Done()
		ch.Close()
	}
}

func TestThreeHop(t *testing.T) {
	p := targets(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ex := range p.Exits {
		c, err := circuit.Build(ctx, mgr, []circuit.Target{p.Relays[0], p.Relays[1], ex})
		if err != nil {
			t.Fatalf("via %s: %v", p.Nicks[ex.RSAID], err)
		}
		if c.NumHops() != 3 {
			t.Fatal(c.NumHops())
		}
		c.Close()
	}
	if n := len(mgr.Channels()); n != 1 {
		t.Fatalf("%d channels, want 1 reused", n)
	}
}

func TestCreateFast(t *testing.T) {
	p := targets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := p.Relays[0]
	ch, err := channel.Dial(ctx, g.Addr, g.Identity())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	c, err := circuit.CreateFast(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Extend from a CREATE_FAST hop with ntor.
	if err := c.Extend(ctx, p.Exits[0]); err != nil {
		t.Fatal(err)
	}
}
