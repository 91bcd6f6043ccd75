// Package engine is gotor's wiring: it builds the directory manager,
// channels, guards, path selection, the circuit pool, the onion client,
// the SOCKS and HTTP CONNECT listeners, the control port and metrics
// from one config.Config, and runs them. The public package client is a
// thin front over it; cmd/gotor uses it directly for daemon needs
// (signals, reload, the config file).
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circmgr"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/logging"
	"github.com/gotor/gotor/internal/metrics"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/path"
	"github.com/gotor/gotor/internal/proxy"
)

// Engine is a running (or ready to start) Tor client. Create it with New.
type Engine struct {
	// cfg is the configuration in force; SETCONF, LOADCONF and SIGHUP
	// replace it (runtime.go). Read it with conf().
	cfg atomic.Pointer[config.Config]
	log *slog.Logger

	dir    *dirmgr.Manager
	chans  *channel.Manager
	guards *guard.Manager
	// sel is replaced when node restrictions change; read it with
	// selector().
	sel   atomic.Pointer[path.Selector]
	circs *circmgr.Manager[*exitCircuit]
	cbt   *buildTimes // the learned build timeout (buildtimes.go)

	// ports are the SocksPort and HTTPTunnelPort listeners (ports.go).
	ports portSet
	// rt is the run-time configuration state (runtime.go, network.go,
	// owner.go).
	rt runtimeState

	mu        sync.Mutex
	progress  dirmgr.Progress
	progSubs  []chan dirmgr.Progress
	started   bool
	stopped   bool
	runCtx    context.Context // the engine's life, from Start to Stop
	cancelRun context.CancelFunc
	wg        sync.WaitGroup

	dirCircs dirCircuits
	obs      observer

	onion        *onion.Client
	onionAuth    *onion.ClientAuth
	ctrl         *control.Server
	services     []*OnionService // hosted onion services (hosting.go), under mu
	metricsSrv   *metrics.Server
	configFile   string
	shutdownCh   chan struct{}
	shutdownOnce sync.Once
	streams      streamTable
	addrmap      addressMap
	authNames    authNames  // ONION_CLIENT_AUTH_* (onionauth.go)
	bg           background // RESOLVE, HSFETCH (ctlcommands.go)
	bytesIn      atomic.Uint64
	bytesOut     atomic.Uint64

	br        *bridges       // UseBridges (bridges.go); nil without
	proxyDial proxy.DialFunc // the outbound proxy (outbound.go); nil: direct
}

// New checks cfg and prepares a client; nothing touches the network until
// Start. A nil logger discards logs.
func New(cfg *config.Config, logger *slog.Logger) (*Engine, error) {
	if cfg == nil {
		cfg = config.DefaultConfig()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Engine{log: logger, shutdownCh: make(chan struct{})}
	c.cfg.Store(cfg)
	c.rt.net.set(cfg.DisableNetwork)
	c.obs.metrics = metrics.New()
	c.obs.metrics.Registry.MustRegister(newClassCollector(c))

	var auths []dirmgr.Authority
	for _, line := range cfg.DirAuthorities {
		a, err := dirmgr.ParseDirAuthority(line)
		if err != nil {
			return nil, fmt.Errorf("client: DirAuthority %q: %w", line, err)
		}
		auths = append(auths, a)
	}
	if cfg.DataDirectory != "" {
		if err := os.MkdirAll(cfg.DataDirectory, 0o700); err != nil {
			return nil, fmt.Errorf("client: DataDirectory: %w", err)
		}
		_ = os.Chmod(cfg.DataDirectory, 0o700)
	}

	sel, err := newSelector(cfg)
	if err != nil {
		return nil, err
	}
	c.sel.Store(sel)
	c.cbt = newBuildTimes(cfg, logger)

	c.guards, err = guard.New(guard.Config{
		DataDirectory:  cfg.DataDirectory,
		EntryNodes:     sel.EntryNodes,
		ExcludeNodes:   sel.ExcludeNodes,
		NumEntryGuards: cfg.NumEntryGuards,
		UseBridges:     cfg.UseBridges,
		Logf:           func(f string, a ...any) { logger.Warn(fmt.Sprintf(f, a...)) },
		Noticef: func(f string, a ...any) {
			logger.Log(context.Background(), logging.LevelNotice, fmt.Sprintf(f, a...))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("client: guards: %w", err)
	}

	// Fallback directories (dir-spec §5.1): the FallbackDir lines, else the
	// built-in list when the built-in authorities are in use, as C tor.
	var fallbacks []dirmgr.Fallback
	for _, line := range cfg.FallbackDirs {
		f, err := dirmgr.ParseFallback(line)
		if err != nil {
			return nil, fmt.Errorf("FallbackDir %q: %w", line, err)
		}
		fallbacks = append(fallbacks, f)
	}
	if len(cfg.FallbackDirs) == 0 && len(cfg.DirAuthorities) == 0 && cfg.UseDefaultFallbackDirs {
		fallbacks = dirmgr.DefaultFallbacks()
	}
	c.chans = channel.NewManager()
	pad := channel.PaddingConfig{Reduced: cfg.ReducedConnectionPadding, KeepalivePeriod: cfg.KeepalivePeriod}
	switch cfg.ConnectionPadding {
	case "0":
		pad.Mode = channel.PaddingNever
	case "1":
		pad.Mode = channel.PaddingAlways
	}
	c.chans.SetPadding(pad)
	if err := c.setupOutbound(); err != nil {
		return nil, err
	}
	c.dir, err = dirmgr.New(dirmgr.Config{
		Authorities:       auths,
		Fallbacks:         fallbacks,
		DataDir:           cfg.DataDirectory,
		TestingTorNetwork: cfg.TestingTorNetwork,
		Logger:            logger,
		Progress:          c.setDirProgress,
		DirDial:           c.dirDial,
		Bridges:           c.bridgeDirs(), // bridges.go
	})
	if err != nil {
		return nil, fmt.Errorf("client: directory: %w", err)
	}
	if c.onionAuth, err = clientAuth(cfg.ClientOnionAuthDir); err != nil {
		return nil, fmt.Errorf("client: ClientOnionAuthDir: %w", err)
	}
	c.progress = dirmgr.PhaseStarting
	return c, nil
}

func nodeSet(opt string, specs []string) (*path.NodeSet, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	s, err := path.ParseNodeSet(specs...)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", opt, err)
	}
	return s, nil
}

// Start bootstraps the client (directory, then circuits) and opens the
// configured listeners. It returns once the client can carry streams, or
// when ctx ends. The client keeps running after ctx ends; call Stop.
func (c *Engine) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("client: already started")
	}
	c.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	c.runCtx, c.cancelRun = runCtx, cancel
	c.mu.Unlock()

	if err := c.startControl(); err != nil {
		return err
	}
	c.logStart()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.watchOwner(runCtx)
	}()
	// DisableNetwork 1: nothing touches the network until a controller
	// sets it to 0 (Tor Browser's start-up).
	if err := c.rt.net.wait(ctx); err != nil {
		return fmt.Errorf("client: bootstrap: %w", err)
	}
	if err := c.startBridges(ctx, runCtx); err != nil {
		return fmt.Errorf("client: bootstrap: %w", err)
	}
	if err := c.bootstrapDir(ctx); err != nil {
		return fmt.Errorf("client: bootstrap: %w", err)
	}
	c.setGuardDir(c.dir.NetDir())
	c.notePaddingParams(c.dir.NetDir())
	c.noteBuildTimeParams(c.dir.NetDir(), c.conf())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runDirectory(runCtx)
	}()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.followNetDir(runCtx)
	}()

	c.rt.mu.Lock() // a SETCONF meanwhile applies its settings to the new manager
	if c.rt.stopped {
		c.rt.mu.Unlock()
		return errNotStarted
	}
	cfg := c.conf()
	circs := circmgr.New[*exitCircuit](circmgr.BuilderFunc[*exitCircuit](c.buildExitCircuit), circmgr.Config{
		MaxCircuitDirtiness:      cfg.MaxCircuitDirtiness,
		CircuitBuildTimeout:      cfg.CircuitBuildTimeout,
		BuildTimeout:             c.cbt.timeout,
		OnBuild:                  c.cbt.record,
		NewCircuitPeriod:         cfg.NewCircuitPeriod,
		EnableCircuitPrebuilding: cfg.EnableCircuitPrebuilding,
		Logger:                   c.log,
		OnEvent:                  c.onCircEventObserve,
	})
	c.mu.Lock()
	c.circs = circs
	c.mu.Unlock()
	c.rt.mu.Unlock()

	oc := onion.New(onion.Config{
		Builder:        onionBuilder{c},
		NetDir:         c.dir.NetDir,
		TestingNetwork: cfg.TestingTorNetwork,
		ClientAuth:     c.onionAuth,
		MaxDirtiness:   c.conf().MaxCircuitDirtiness,
		PickRendezvous: func(dir *netdir.NetDir) (*netdir.Relay, error) {
			return c.selector().PickRendezvous(dir, onion.RendezvousOK)
		},
	})
	c.mu.Lock()
	c.onion = oc
	c.mu.Unlock()

	if err := c.openListeners(); err != nil {
		c.Stop()
		return err
	}

	// Bootstrap ends when a first circuit can be built, as in C tor.
	c.setProgress(dirmgr.PhaseCircuitCreate)
	if err := c.firstCircuit(ctx); err != nil {
		return fmt.Errorf("client: first circuit: %w", err)
	}
	c.setProgress(dirmgr.PhaseDone)
	if err := c.startServices(ctx); err != nil {
		return err
	}
	return nil
}

// firstCircuit makes sure a usable exit circuit exists.
func (c *Engine) firstCircuit(ctx context.Context) error {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		err := c.circs.Ready(ctx, circmgr.Usage{Port: 80})
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("building first circuit failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return last
}

func (c *Engine) followNetDir(ctx context.Context) {
	ch, cancel := c.dir.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case nd, ok := <-ch:
			if !ok {
				return
			}
			c.setGuardDir(nd)
			c.notePaddingParams(nd)
			c.noteBuildTimeParams(nd, c.conf())
		}
	}
}

// Stop closes listeners, circuits and channels, saves state and waits for
// the client's goroutines. It is safe to call more than once.
func (c *Engine) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	cancel := c.cancelRun
	subs := c.progSubs
	c.progSubs = nil
	c.mu.Unlock()

	// No reconfiguration after this point (runtime.go checks stopped
	// under rt.mu).
	c.rt.mu.Lock()
	c.rt.stopped = true
	ctrl := c.ctrl
	c.rt.mu.Unlock()
	c.stopBackground()
	c.ports.closeAll()
	c.closeServices()
	if ctrl != nil {
		_ = ctrl.Close()
	}
	if m := c.metrics(); m != nil {
		_ = m.Close()
	}
	if oc := c.onionClient(); oc != nil {
		_ = oc.Close()
	}
	if circs := c.circMgr(); circs != nil {
		_ = circs.Close()
	}
	if cancel != nil {
		cancel()
	}
	c.chans.Close()
	c.wg.Wait()
	c.guards.Flush() // path bias counts not yet written
	if c.circMgr() != nil {
		c.cbt.save() // started: there is a history to keep
	}
	c.closeBridges()
	for _, s := range subs {
		close(s)
	}
	return nil
}

// Bootstrap returns the latest bootstrap progress.
func (c *Engine) Bootstrap() dirmgr.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress
}

// ProgressEvents returns a channel that receives every later bootstrap
// progress report; it is closed by Stop. Slow readers miss reports.
func (c *Engine) ProgressEvents() <-chan dirmgr.Progress {
	ch := make(chan dirmgr.Progress, 16)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		close(ch)
		return ch
	}
	c.progSubs = append(c.progSubs, ch)
	return ch
}

func (c *Engine) setDirProgress(p dirmgr.Progress) {
	// The directory reports up to 100 when it has a usable NetDir; the
	// client keeps the last phases for circuits, as C tor does.
	if p.Percent >= 100 {
		p = dirmgr.PhaseHandshakeDone
	}
	c.setProgress(p)
}

func (c *Engine) setProgress(p dirmgr.Progress) {
	c.mu.Lock()
	if p.Percent < c.progress.Percent {
		c.mu.Unlock()
		return
	}
	changed := p != c.progress
	c.progress = p
	subs := append([]chan dirmgr.Progress(nil), c.progSubs...)
	c.mu.Unlock()
	if !changed {
		return
	}
	c.log.Log(context.Background(), logging.LevelNotice, p.String())
	c.obs.metrics.SetBootstrap(p.Percent)
	c.obs.publish(control.BootstrapEvent(control.Bootstrap{Percent: p.Percent, Tag: p.Tag, Summary: p.Summary}))
	for _, s := range subs {
		select {
		case s <- p:
		default:
		}
	}
}

// NewIdentity is NEWNYM: no existing circuit (exit or rendezvous) takes
// new streams, new streams are isolated from all earlier ones, and the
// onion descriptor cache is emptied (C tor hs_client_purge_state).
func (c *Engine) NewIdentity() {
	if c.circs != nil {
		c.circs.NewIdentity()
	}
	if c.onion != nil {
		c.onion.Purge()
	}
}

// Config returns the engine's configuration (its own copy, see New), as
// last changed by a controller or a reload. Do not modify it.
func (c *Engine) Config() *config.Config { return c.conf() }

// conf returns the configuration in force.
func (c *Engine) conf() *config.Config { return c.cfg.Load() }

// selector returns the path selector for the node restrictions in force.
func (c *Engine) selector() *path.Selector { return c.sel.Load() }

// bootstrapDir retries the directory bootstrap until it succeeds or ctx
// ends, as C tor keeps trying: a network that is down at start-up must
// not make the client give up.
func (c *Engine) bootstrapDir(ctx context.Context) error {
	backoff := time.Second
	for {
		if err := c.rt.net.wait(ctx); err != nil { // DisableNetwork set meanwhile
			return err
		}
		err := c.dir.Bootstrap(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		c.log.Warn("directory bootstrap failed; retrying", "in", backoff, "err", err)
		c.directoryProblem(err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		if backoff < time.Minute {
			backoff *= 2
		}
	}
}
