package engine

// Applying a new configuration while gotor runs, as C tor's set_options
// and options_act do for SETCONF/RESETCONF (control-spec §3.1, §3.2),
// LOADCONF (§3.22) and SIGHUP: options that cannot change are refused
// (C tor: "While Tor is running, changing DataDirectory is not
// allowed"); listeners (SocksPort, HTTPTunnelPort, ControlPort,
// MetricsPort) are opened and closed, the others left alone; node
// restrictions, isolation, circuit timings, Log lines and DisableNetwork
// take effect at once; a CONF_CHANGED event names what changed.
//
// The change is all or nothing: what can fail (opening listeners and log
// files) is prepared first and undone if a later step fails; only then is
// the rest applied.

import (
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/circmgr"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/metrics"
	"github.com/gotor/gotor/internal/path"
)

// runtimeState is the engine's run-time configuration state.
type runtimeState struct {
	// mu serialises reconfiguration, and Start's and Stop's steps that
	// touch what it changes.
	mu      sync.Mutex
	stopped bool
	net     netGate
	// logHook applies Log lines (cmd/gotor swaps its log handler); nil:
	// the embedding program owns logging and Log lines are only kept.
	logHook func(*config.Config) error
	// source is where the configuration came from (conf.go).
	source ConfigSource
}

// SetLogHook installs the function that applies a configuration's Log
// lines when they change (and, on SIGHUP, reopens the log files). It
// must either apply all of them or return an error and change nothing.
func (c *Engine) SetLogHook(f func(*config.Config) error) {
	c.rt.mu.Lock()
	c.rt.logHook = f
	c.rt.mu.Unlock()
}

// immutable are the options gotor cannot change while it runs. The first
// two are C tor's (CFLG_IMMUTABLE); C tor can change the others, gotor
// not yet.
var immutable = []struct {
	name string
	ctor bool
	eq   func(a, b *config.Config) bool
}{
	{"DataDirectory", true, func(a, b *config.Config) bool { return a.DataDirectory == b.DataDirectory }},
	{"TestingTorNetwork", true, func(a, b *config.Config) bool { return a.TestingTorNetwork == b.TestingTorNetwork }},
	{"DirAuthority", false, func(a, b *config.Config) bool { return slices.Equal(a.DirAuthorities, b.DirAuthorities) }},
	{"ClientOnionAuthDir", false, func(a, b *config.Config) bool { return a.ClientOnionAuthDir == b.ClientOnionAuthDir }},
	{"HiddenServiceDir", false, func(a, b *config.Config) bool { return reflect.DeepEqual(a.OnionServices, b.OnionServices) }},
}

// checkTransition refuses changes of immutable options.
func checkTransition(old, nc *config.Config) error {
	for _, o := range immutable {
		if o.eq(old, nc) {
			continue
		}
		if o.ctor {
			return control.Error(control.ErrTransition, "While Tor is running, changing "+o.name+" is not allowed")
		}
		return control.Error(control.ErrTransition, "While gotor is running, changing "+o.name+" is not supported (restart gotor)")
	}
	return nil
}

// newSelector builds the path selector for cfg's node restrictions.
func newSelector(cfg *config.Config) (*path.Selector, error) {
	sel := path.New()
	sel.EnforceDistinctSubnets = cfg.EnforceDistinctSubnets
	sel.StrictNodes = cfg.StrictNodes
	var err error
	if sel.ExitNodes, err = nodeSet("ExitNodes", cfg.ExitNodes); err != nil {
		return nil, err
	}
	if sel.EntryNodes, err = nodeSet("EntryNodes", cfg.EntryNodes); err != nil {
		return nil, err
	}
	if sel.ExcludeNodes, err = nodeSet("ExcludeNodes", cfg.ExcludeNodes); err != nil {
		return nil, err
	}
	if sel.ExcludeExitNodes, err = nodeSet("ExcludeExitNodes", cfg.ExcludeExitNodes); err != nil {
		return nil, err
	}
	return sel, nil
}

func nodesChanged(a, b *config.Config) bool {
	return !slices.Equal(a.ExitNodes, b.ExitNodes) || !slices.Equal(a.EntryNodes, b.EntryNodes) ||
		!slices.Equal(a.ExcludeNodes, b.ExcludeNodes) || !slices.Equal(a.ExcludeExitNodes, b.ExcludeExitNodes) ||
		a.StrictNodes != b.StrictNodes || a.EnforceDistinctSubnets != b.EnforceDistinctSubnets
}

func circSettings(cfg *config.Config) circmgr.Settings {
	return circmgr.Settings{
		MaxCircuitDirtiness:      cfg.MaxCircuitDirtiness,
		CircuitBuildTimeout:      cfg.CircuitBuildTimeout,
		NewCircuitPeriod:         cfg.NewCircuitPeriod,
		EnableCircuitPrebuilding: cfg.EnableCircuitPrebuilding,
	}
}

// circMgr returns the circuit pool, nil before Start built it.
func (c *Engine) circMgr() *circmgr.Manager[*exitCircuit] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.circs
}

// applyConfig makes nc the configuration in force (see the file comment)
// and publishes CONF_CHANGED; it returns what changed (config.Changes).
// Callers hold rt.mu; nc is not modified afterwards.
func (c *Engine) applyConfig(nc *config.Config) (changed []string, err error) {
	if c.rt.stopped {
		return nil, errNotStarted
	}
	old := c.conf()
	if err := checkTransition(old, nc); err != nil {
		return nil, err
	}
	sel, err := newSelector(nc)
	if err != nil {
		return nil, control.Error(control.ErrInvalidValue, err.Error())
	}

	// Prepare what may fail: listeners, then the control port's, then the
	// log files.
	var plan *portPlan
	if c.ports.isActive() {
		if plan, err = c.ports.prepare(c, c.wantedPorts(nc)); err != nil {
			return nil, err
		}
	}
	abort := func() {
		if plan != nil {
			plan.abort()
		}
	}
	newMetrics, metricsChanged, err := c.prepareMetrics(old, nc)
	if err != nil {
		abort()
		return nil, err
	}
	abort = func() {
		if plan != nil {
			plan.abort()
		}
		if newMetrics != nil {
			newMetrics.Close()
		}
	}
	ctrlChanged := c.ctrl != nil && !controlConfigEqual(controlConfig(old, c.log), controlConfig(nc, c.log))
	if ctrlChanged {
		if err := c.ctrl.Reconfigure(controlConfig(nc, c.log)); err != nil {
			abort()
			return nil, err
		}
	}
	if c.rt.logHook != nil && !slices.Equal(old.Logs, nc.Logs) {
		if err := c.rt.logHook(nc); err != nil {
			abort()
			if ctrlChanged {
				if rerr := c.ctrl.Reconfigure(controlConfig(old, c.log)); rerr != nil {
					c.log.Warn("control port: could not restore the listeners", "err", rerr)
				}
			}
			return nil, fmt.Errorf("Log: %w", err)
		}
	}

	// Commit. The network opens before the listeners do, and closes
	// after they have.
	c.cfg.Store(nc)
	if !nc.DisableNetwork && c.rt.net.set(false) {
		c.log.Info("DisableNetwork is off: using the network")
	}
	if plan != nil {
		plan.commit()
	}
	if metricsChanged {
		if m := c.swapMetrics(newMetrics); m != nil {
			m.Close()
		}
		if newMetrics != nil {
			c.log.Info("Opened Metrics listener on " + newMetrics.Addr().String())
		}
	}
	circs := c.circMgr()
	if nodesChanged(old, nc) {
		c.sel.Store(sel)
		if circs != nil {
			circs.RetireAll("node restrictions changed")
		}
	}
	if !slices.Equal(old.EntryNodes, nc.EntryNodes) || !slices.Equal(old.ExcludeNodes, nc.ExcludeNodes) || old.NumEntryGuards != nc.NumEntryGuards {
		c.guards.Restrict(sel.EntryNodes, sel.ExcludeNodes, nc.NumEntryGuards)
	}
	if circs != nil && circSettings(old) != circSettings(nc) {
		circs.Reconfigure(circSettings(nc))
	}
	if old.LearnCircuitBuildTimeout != nc.LearnCircuitBuildTimeout || old.CircuitBuildTimeout != nc.CircuitBuildTimeout {
		c.noteBuildTimeParams(c.dir.NetDir(), nc)
	}
	if nc.DisableNetwork && c.rt.net.set(true) {
		c.log.Warn("DisableNetwork is set: closing every connection to the network; only the control port listens")
		c.closeConnections()
	}
	changed = config.Changes(old, nc)
	if len(changed) > 0 {
		c.obs.publish(control.Event{Type: control.EventConfChanged, Conf: changed})
	}
	return changed, nil
}

// prepareMetrics starts the MetricsPort nc asks for if it differs from
// old's; changed reports whether the server in force is to be replaced
// (by m, nil for none). None while DisableNetwork is set.
func (c *Engine) prepareMetrics(old, nc *config.Config) (m *metrics.Server, changed bool, err error) {
	want := func(cfg *config.Config) (string, []string) {
		if cfg.DisableNetwork {
			return "", nil
		}
		return cfg.MetricsPort, cfg.MetricsPortPolicy
	}
	oa, op := want(old)
	na, np := want(nc)
	if old != nc && oa == na && slices.Equal(op, np) {
		return nil, false, nil
	}
	if na == "" {
		return nil, true, nil
	}
	pol, err := metrics.ParsePolicy(np...)
	if err != nil {
		return nil, false, control.Error(control.ErrInvalidValue, "MetricsPortPolicy: "+err.Error())
	}
	if len(np) == 0 {
		c.log.Warn("MetricsPort without MetricsPortPolicy: every connection to it is refused, as in C tor (add e.g. \"MetricsPortPolicy accept 127.0.0.1\")")
	}
	if m, err = metrics.NewServer(metrics.ServerConfig{Addr: na, Policy: pol, Logger: c.log}, c.obs.metrics); err == nil {
		err = m.Start()
	}
	if err != nil {
		return nil, false, fmt.Errorf("MetricsPort: %w", err)
	}
	return m, true, nil
}

// metrics returns the MetricsPort server in force, or nil.
func (c *Engine) metrics() *metrics.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metricsSrv
}

// swapMetrics installs m and returns the server it replaces.
func (c *Engine) swapMetrics(m *metrics.Server) *metrics.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.metricsSrv
	c.metricsSrv = m
	return old
}
