package circmgr

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Each build attempt gets the timeout Config.BuildTimeout supplies, not
// the fixed CircuitBuildTimeout, and OnBuild hears every outcome: the
// build time on success, DeadlineExceeded when the attempt ran out of
// time.
func TestSuppliedBuildTimeout(t *testing.T) {
	var (
		mu       sync.Mutex
		supplied = 7 * time.Second
		left     []time.Duration // time to the deadline, per attempt
		outcomes []error
		block    bool
	)
	b := BuilderFunc[*fakeCirc](func(ctx context.Context, u Usage) (*fakeCirc, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return nil, errors.New("no deadline")
		}
		mu.Lock()
		left = append(left, time.Until(d))
		blk := block
		mu.Unlock()
		if blk {
			<-ctx.Done()
			return nil, errors.New("extend: gave up")
		}
		return newFakeCirc(1, 80), nil
	})
	m := New[*fakeCirc](b, Config{
		CircuitBuildTimeout:  time.Hour,
		MaintenanceInterval:  time.Hour,
		RetryBackoff:         time.Millisecond,
		MaxBuildAttempts:     1,
		MaxFailuresPerPeriod: 100,
		BuildTimeout: func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return supplied
		},
		OnBuild: func(took time.Duration, err error) {
			mu.Lock()
			outcomes = append(outcomes, err)
			mu.Unlock()
		},
	})
	defer m.Close()
	if err := m.Ready(ctx, Usage{Port: 80}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(left) != 1 || left[0] <= 0 || left[0] > supplied {
		t.Fatalf("deadline %v ahead, want within the supplied %v (not CircuitBuildTimeout)", left, supplied)
	}
	if len(outcomes) != 1 || outcomes[0] != nil {
		t.Fatalf("OnBuild outcomes %v, want one success", outcomes)
	}
	supplied, block = 20*time.Millisecond, true
	mu.Unlock()

	if err := m.Ready(ctx, Usage{Port: 443}); err == nil {
		t.Fatal("a build that never finished succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) < 2 || !errors.Is(outcomes[len(outcomes)-1], context.DeadlineExceeded) {
		t.Fatalf("OnBuild outcomes %v, want a DeadlineExceeded last", outcomes)
	}
}
