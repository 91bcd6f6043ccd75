package testnet

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"
)

// One network per test binary: Main wraps the run, Shared starts the
// network on first use (so go test -short, or a -run that selects no
// integration test, starts nothing).
var shared struct {
	mu         sync.Mutex
	mainCalled bool
	opts       Options
	startOnce  sync.Once
	net        *Network
	err        error
	clientOnce sync.Once
	client     *RefClient
	clientErr  error
	ctx        context.Context // cancelled by SIGINT/SIGTERM
	cancel     context.CancelFunc
	startDone  chan struct{}
	extras     map[string]*extraNet
}

// extraNet is a further network of the test binary (StartExtra).
type extraNet struct {
	done chan struct{} // closed when Start returned
	net  *Network
	err  error
}

// Main is the TestMain of a package with integration tests:
//
//	func TestMain(m *testing.M) { testnet.Main(m) }
//
// It runs the tests, then stops the shared network (if a test started it)
// and exits. SIGINT/SIGTERM also stop the network. opts, if given, are the
// Options of the shared network.
func Main(m *testing.M, opts ...Options) {
	shared.mu.Lock()
	shared.mainCalled = true
	shared.ctx, shared.cancel = context.WithCancel(context.Background())
	shared.startDone = make(chan struct{})
	if len(opts) > 0 {
		shared.opts = opts[0]
	}
	shared.mu.Unlock()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "testnet: %v: stopping the shared network\n", s)
		shared.cancel()
		wait := time.After(10 * time.Second)
		select { // let a Start in progress clean up after itself
		case <-shared.startDone:
		case <-wait:
		}
		shared.mu.Lock()
		for _, e := range shared.extras {
			select {
			case <-e.done:
			case <-wait:
			}
		}
		shared.mu.Unlock()
		stopShared()
		os.Exit(2)
	}()

	code := m.Run()
	stopShared()
	os.Exit(code)
}

func stopShared() {
	shared.mu.Lock()
	n := shared.net
	var more []*extraNet
	for _, e := range shared.extras {
		more = append(more, e)
	}
	shared.mu.Unlock()
	if n != nil {
		n.Stop()
	}
	if len(more) > 0 {
		shared.cancel() // a further network still starting gives up
	}
	for _, e := range more {
		<-e.done
		if e.net != nil {
			e.net.Stop()
		}
	}
}

// IntegrationEnabled decides whether a test that needs real tor processes
// runs. Under -short it skips. When tor is missing it skips, except in
// CI (CI=true or CI=1, see InCI), where it fails: CI must never silently
// skip integration tests.
func IntegrationEnabled(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("testnet: integration test skipped under -short")
	}
	if _, _, err := LookTor(""); err != nil {
		missing(t, "testnet", err)
	}
}

// Shared returns the network shared by every test of this test binary,
// starting it on first use. The package's TestMain must call Main. See
// IntegrationEnabled for when it skips or fails.
func Shared(t testing.TB) *Network {
	t.Helper()
	IntegrationEnabled(t)
	shared.mu.Lock()
	ok := shared.mainCalled
	shared.mu.Unlock()
	if !ok {
		t.Fatal("testnet.Shared: the package's TestMain must call testnet.Main(m)")
	}
	shared.startOnce.Do(func() {
		opts := shared.opts
		if opts.Logf == nil {
			opts.Logf = func(format string, args ...any) {
				fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
			}
		}
		defer close(shared.startDone)
		n, err := Start(shared.ctx, opts)
		shared.mu.Lock()
		shared.net, shared.err = n, err
		shared.mu.Unlock()
	})
	if shared.err != nil {
		t.Fatalf("testnet: shared network failed to start: %v", shared.err)
	}
	return shared.net
}

// SharedReferenceClient returns a C tor client on the shared network,
// started on first use and stopped with the network.
func SharedReferenceClient(t testing.TB) *RefClient {
	t.Helper()
	n := Shared(t)
	shared.clientOnce.Do(func() {
		shared.client, shared.clientErr = n.StartReferenceClient(shared.ctx)
	})
	if shared.clientErr != nil {
		t.Fatalf("testnet: shared reference client: %v", shared.clientErr)
	}
	return shared.client
}

// StartExtra starts, once per test binary and in the background, a
// further network identified by name, with opts; Main stops it with the
// shared one. It returns at once, so a test that needs an old network
// (one that has reached a shared random value, Options.SharedRandom) can
// start it early and find it aged when Extra returns it. See
// IntegrationEnabled for when it skips or fails t.
func StartExtra(t testing.TB, name string, opts Options) {
	t.Helper()
	startExtra(t, name, opts)
}

// Extra returns the network StartExtra started under name (starting it
// now if no test did), once it is ready.
func Extra(t testing.TB, name string, opts Options) *Network {
	t.Helper()
	e := startExtra(t, name, opts)
	<-e.done
	if e.err != nil {
		t.Fatalf("testnet: network %q failed to start: %v", name, e.err)
	}
	return e.net
}

func startExtra(t testing.TB, name string, opts Options) *extraNet {
	t.Helper()
	IntegrationEnabled(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.mainCalled {
		t.Fatal("testnet.StartExtra: the package's TestMain must call testnet.Main(m)")
	}
	if e := shared.extras[name]; e != nil {
		return e
	}
	if shared.extras == nil {
		shared.extras = make(map[string]*extraNet)
	}
	e := &extraNet{done: make(chan struct{})}
	shared.extras[name] = e
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+"["+name+"] "+format+"\n", args...)
		}
	}
	go func() {
		defer close(e.done)
		e.net, e.err = Start(shared.ctx, opts)
	}()
	return e
}
