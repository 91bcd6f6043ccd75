package engine

// DisableNetwork (tor(1): "When this option is set, we don't listen for
// or accept any connections other than controller connections, and we
// close (and don't reattempt) any outbound connections"): a gate every
// outbound connection passes (builder.go), the bootstrap waits on
// (engine.go), and the directory's refresh loop runs behind.

import (
	"context"
	"errors"
	"sync"

	"github.com/gotor/gotor/internal/errkind"
	"github.com/gotor/gotor/internal/logging"
)

var errNetworkDisabled = errkind.New(errkind.NotRunning, errors.New("network disabled (DisableNetwork 1)"))

// netGate says whether the network may be used.
type netGate struct {
	mu       sync.Mutex
	disabled bool
	// changed is closed (and replaced) whenever disabled changes.
	changed chan struct{}
	// enabled is cancelled when the network is disabled; a new one
	// starts each time it is enabled.
	enabled context.Context
	cancel  context.CancelFunc
}

// set enables or disables the network; it reports whether that changed
// anything.
func (g *netGate) set(disabled bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.initLocked()
	if g.disabled == disabled {
		return false
	}
	g.disabled = disabled
	if disabled {
		g.cancel()
	} else {
		g.enabled, g.cancel = context.WithCancel(context.Background())
	}
	close(g.changed)
	g.changed = make(chan struct{})
	return true
}

func (g *netGate) initLocked() {
	if g.changed == nil {
		g.changed = make(chan struct{})
		g.enabled, g.cancel = context.WithCancel(context.Background())
		if g.disabled {
			g.cancel()
		}
	}
}

// isDisabled reports whether DisableNetwork is in force.
func (g *netGate) isDisabled() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.disabled
}

// wait returns once the network is enabled, or ctx's error.
func (g *netGate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		g.initLocked()
		disabled, changed := g.disabled, g.changed
		g.mu.Unlock()
		if !disabled {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// whileEnabled returns a context that ends with ctx or when the network
// is disabled, and ok false if it is disabled already.
func (g *netGate) whileEnabled(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	g.mu.Lock()
	g.initLocked()
	en, disabled := g.enabled, g.disabled
	g.mu.Unlock()
	if disabled {
		return nil, nil, false
	}
	nctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(en, cancel)
	return nctx, func() { stop(); cancel() }, true
}

// runDirectory keeps the directory fresh (dirmgr.Run) while the network
// is enabled, until ctx ends.
func (c *Engine) runDirectory(ctx context.Context) {
	for {
		if err := c.rt.net.wait(ctx); err != nil {
			return
		}
		nctx, cancel, ok := c.rt.net.whileEnabled(ctx)
		if !ok {
			continue
		}
		_ = c.dir.Run(nctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// checkNetwork is called before every outbound connection.
func (c *Engine) checkNetwork() error {
	if c.rt.net.isDisabled() {
		return errNetworkDisabled
	}
	return nil
}

// closeConnections closes every channel (DisableNetwork 1): the circuits
// on them end, and with them their streams.
func (c *Engine) closeConnections() {
	for _, ch := range c.chans.Channels() {
		ch.Close()
	}
}

// logStart logs the bootstrap's first phase, as C tor does at start-up
// (launchers such as stem's launch_tor wait for a "Bootstrapped N%" line:
// with DisableNetwork that is the only one until a controller acts).
func (c *Engine) logStart() {
	c.log.Log(context.Background(), logging.LevelNotice, c.Bootstrap().String())
	if c.rt.net.isDisabled() {
		c.log.Log(context.Background(), logging.LevelNotice, "DisableNetwork is set. Tor will not make or accept non-control network connections. Shutting down all existing connections.")
	}
}
