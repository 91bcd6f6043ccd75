package circmgr

import (
	"errors"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// A CONTROLLER circuit takes no stream from the pool and does not expire;
// GENERAL gives it back.
func TestSetPurpose(t *testing.T) {
	b := &fakeBuilder{}
	m, clk := testManager(t, b, Config{CleanIdleTimeout: time.Minute, MaxCircuitDirtiness: time.Minute})
	if err := m.Ready(ctx, Usage{Port: 80}); err != nil {
		t.Fatal(err)
	}
	clean := m.Circuits()[0].ID
	if err := m.SetPurpose(clean, PurposeController); err != nil {
		t.Fatal(err)
	}
	a, err := m.Attach(ctx, Usage{Port: 80}, key("u", "x", 80, isolation.Default))
	if err != nil || a.CircID == clean {
		t.Fatalf("a stream went to the CONTROLLER circuit (%v)", err)
	}
	// A used circuit taken out of the pool: no more streams for its key.
	if err := m.SetPurpose(a.CircID, PurposeController); err != nil {
		t.Fatal(err)
	}
	a2, _ := m.Attach(ctx, Usage{Port: 80}, key("u", "y", 80, isolation.Default))
	if a2.CircID == a.CircID || a2.CircID == clean {
		t.Fatal("a stream went to a CONTROLLER circuit")
	}
	a.Release()
	clk.Advance(2 * time.Minute) // idle and dirty past every limit
	m.maintain()
	for _, f := range b.all()[:2] {
		if f.closed.Load() {
			t.Fatal("a CONTROLLER circuit expired")
		}
	}
	for _, in := range m.Circuits() {
		if (in.ID == clean || in.ID == a.CircID) && in.Purpose != PurposeController {
			t.Errorf("circuit %d purpose %q", in.ID, in.Purpose)
		}
	}
	// Back to GENERAL: the clean one serves the next stream.
	if err := m.SetPurpose(clean, PurposeGeneral); err != nil {
		t.Fatal(err)
	}
	a3, _ := m.Attach(ctx, Usage{Port: 80}, key("v", "z", 80, isolation.Default))
	if a3.CircID != clean {
		t.Fatalf("GENERAL again: stream on %d, not %d", a3.CircID, clean)
	}
	if err := m.SetPurpose(9999, PurposeController); !errors.Is(err, ErrUnknownCircuit) {
		t.Errorf("unknown circuit: %v", err)
	}
	if err := m.SetPurpose(clean, "HS_CLIENT_REND"); err == nil {
		t.Error("unknown purpose accepted")
	}
}

// Reconfigure changes the dirtiness limit of a running pool; RetireAll
// takes every circuit out of service without closing its streams.
func TestReconfigureAndRetireAll(t *testing.T) {
	b := &fakeBuilder{}
	m, clk := testManager(t, b, Config{MaxCircuitDirtiness: 10 * time.Minute})
	k := key("", "x", 80, isolation.Default)
	a, _ := m.Attach(ctx, Usage{Port: 80}, k)
	m.Reconfigure(Settings{MaxCircuitDirtiness: time.Minute})
	clk.Advance(2 * time.Minute)
	a2, _ := m.Attach(ctx, Usage{Port: 80}, k)
	if a2.CircID == a.CircID {
		t.Fatal("the new MaxCircuitDirtiness was not applied")
	}
	m.Reconfigure(Settings{MaxCircuitDirtiness: time.Hour})
	clk.Advance(30 * time.Minute)
	if a3, _ := m.Attach(ctx, Usage{Port: 80}, k); a3.CircID != a2.CircID {
		t.Fatal("a circuit dirty 30 minutes with MaxCircuitDirtiness 1 hour was not reused")
	}
	m.RetireAll("nodes changed")
	a4, _ := m.Attach(ctx, Usage{Port: 80}, k)
	if a4.CircID == a2.CircID {
		t.Fatal("a retired circuit took a stream")
	}
	if b.all()[1].closed.Load() {
		t.Fatal("RetireAll closed a circuit under its streams")
	}
	if m.Epoch() != 0 {
		t.Error("RetireAll changed the NEWNYM epoch")
	}
}
