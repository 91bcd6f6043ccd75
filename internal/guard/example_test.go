package guard_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/path"
	"github.com/gotor/gotor/internal/path/pathtest"
)

// A circuit manager picks the exit first, then a guard compatible with
// it, then a middle; it reports the first hop's outcome and waits until
// guard-spec allows using the circuit.
func Example() {
	dir := pathtest.Build(pathtest.Options{N: 200, Seed: 1})
	now := dir.ValidAfter.Add(time.Minute)
	gm, err := guard.New(guard.Config{ /* DataDirectory: "...", */ Now: func() time.Time { return now }, Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		panic(err)
	}
	sel := path.New()
	port := uint16(443)
	exit, err := sel.PickExit(dir, &port)
	if err != nil {
		panic(err)
	}
	g, attempt, err := gm.Pick(dir, guard.Usage{Restrict: sel.CompatibleWith(exit)})
	if err != nil {
		panic(err)
	}
	middle, err := sel.PickMiddle(dir, g, exit)
	if err != nil {
		panic(err)
	}
	_ = middle            // ... build the circuit g -> middle -> exit ...
	attempt.Report(true)  // first hop (circuit) succeeded
	defer attempt.Close() // when the circuit is closed
	ok, _ := attempt.Usable(context.Background())
	fmt.Println("usable:", ok)
	// Output: usable: true
}
