package itest

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

// Bridges of the shared network, started once per test binary (both at
// once) and stopped with it.
var bridges struct {
	once         sync.Once
	obfs4, plain *testnet.Bridge
	err          error
}

// Obfs4proxy returns the path of obfs4proxy; without it the test skips,
// or fails in CI (integration tests may not be skipped there).
func Obfs4proxy(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("obfs4proxy")
	if err != nil {
		if testnet.InCI() {
			t.Fatalf("obfs4proxy is not installed (CI: integration tests may not be skipped)")
		}
		t.Skip("obfs4proxy is not installed (apt-get install -y obfs4proxy)")
	}
	return p
}

// Bridges returns an obfs4 bridge and a plain bridge of n, started on
// first use for the whole test binary.
func Bridges(t testing.TB, n *testnet.Network) (obfs4, plain *testnet.Bridge) {
	t.Helper()
	Obfs4proxy(t)
	bridges.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		var e1, e2 error
		wg.Add(2)
		go func() {
			defer wg.Done()
			bridges.obfs4, e1 = n.StartBridge(ctx, testnet.BridgeOptions{Transport: "obfs4"})
		}()
		go func() { defer wg.Done(); bridges.plain, e2 = n.StartBridge(ctx, testnet.BridgeOptions{}) }()
		wg.Wait()
		bridges.err = errors.Join(e1, e2)
	})
	if bridges.err != nil {
		t.Fatal(bridges.err)
	}
	return bridges.obfs4, bridges.plain
}
