package engine

// UseBridges: the client reaches the Tor network through its configured
// bridges only (tor(1) UseBridges, Bridge, ClientTransportPlugin;
// guard-spec §2 A: the bridges replace {GUARDS}; C tor's bridges.c
// fetch_bridge_descriptors and launch_direct_bridge_descriptor_fetch,
// transports.c pt_configure_remaining_proxies).
//
//   - At start-up the managed transports some Bridge line uses are
//     started (pt-spec §3; a missing or broken program is a start-up
//     error), then each bridge's own descriptor is fetched from the
//     bridge itself (internal/bridge: /tor/server/authority over
//     BEGIN_DIR), its identity checked against the line's fingerprint.
//     Until one bridge answers, the bootstrap is stuck and says why, as
//     C tor's "Problem bootstrapping" (log and STATUS_CLIENT
//     BOOTSTRAP WARN), naming each bridge and its failure.
//   - The bridges with a descriptor are the guard manager's NetDir
//     (bridge.NetDir): circuits start at a bridge, and every directory
//     request (consensus, certificates, microdescriptors) is a BEGIN_DIR
//     stream to a bridge picked as a directory guard.
//   - The channel manager's dial function is the bridge dialer's, which
//     refuses every address that is not a configured bridge's: no relay
//     is ever contacted directly. A managed transport that dies is
//     reported and started again when a channel next needs it.
//   - The descriptors are fetched again every bridgeRefresh (their
//     onion keys rotate), and those of bridges that failed sooner, with
//     a doubling delay.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/bridge"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/logging"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/proxy"
	"github.com/gotor/gotor/internal/pt"
)

// The options of this file and outbound.go cannot change while gotor
// runs yet (runtime.go refuses the change, naming the option, rather
// than keep using the old bridges or proxy): Tor Browser's way of setting
// bridges with SETCONF before DisableNetwork 0 is not supported.
func init() {
	str := func(f func(*config.Config) string) func(a, b *config.Config) bool {
		return func(a, b *config.Config) bool { return f(a) == f(b) }
	}
	immutable = append(immutable, []struct {
		name string
		ctor bool
		eq   func(a, b *config.Config) bool
	}{
		{"UseBridges", false, func(a, b *config.Config) bool { return a.UseBridges == b.UseBridges }},
		// Unused without UseBridges, as before and after: free to change.
		{"Bridge", false, func(a, b *config.Config) bool {
			return !a.UseBridges && !b.UseBridges || slices.Equal(a.Bridges, b.Bridges)
		}},
		{"ClientTransportPlugin", false, func(a, b *config.Config) bool {
			return !a.UseBridges && !b.UseBridges || slices.Equal(a.ClientTransportPlugins, b.ClientTransportPlugins)
		}},
		{"Socks4Proxy", false, str(func(c *config.Config) string { return c.Socks4Proxy })},
		{"Socks5Proxy", false, str(func(c *config.Config) string { return c.Socks5Proxy })},
		{"Socks5ProxyUsername", false, str(func(c *config.Config) string { return c.Socks5ProxyUsername })},
		{"Socks5ProxyPassword", false, str(func(c *config.Config) string { return c.Socks5ProxyPassword })},
		{"HTTPSProxy", false, str(func(c *config.Config) string { return c.HTTPSProxy })},
		{"HTTPSProxyAuthenticator", false, str(func(c *config.Config) string { return c.HTTPSProxyAuthenticator })},
	}...)
}

// Bootstrap phases before the directory's (control-spec §5; C tor's
// control_bootstrap.c).
var (
	phaseConnPT        = dirmgr.Progress{Percent: 1, Tag: "conn_pt", Summary: "Connecting to pluggable transport"}
	phaseConnDonePT    = dirmgr.Progress{Percent: 2, Tag: "conn_done_pt", Summary: "Connected to pluggable transport"}
	phaseHandshakeDone = dirmgr.Progress{Percent: 15, Tag: "handshake_done", Summary: "Handshake with a relay done"}
	phaseOneHopCreate  = dirmgr.Progress{Percent: 20, Tag: "onehop_create", Summary: "Establishing an encrypted directory connection"}
)

// Timing of descriptor fetches: one attempt (channel through the
// transport, link handshake, descriptor) is bounded by bridgeAttempt
// (an obfs4 bridge given a wrong cert stays silent until then); the
// start-up retries and the retries of failed bridges wait bridgeRetry,
// doubling up to bridgeRefresh, the period of refetching every
// descriptor. Shorter on a test network.
func (c *Engine) bridgeTimes() (attempt, retry, refresh time.Duration) {
	if c.conf().TestingTorNetwork {
		return 15 * time.Second, time.Second, 10 * time.Minute
	}
	return 30 * time.Second, 5 * time.Second, time.Hour
}

// bridges is the engine's state for UseBridges.
type bridges struct {
	lines  []bridge.Line
	pts    *pt.Manager // the ClientTransportPlugin lines; nil without any
	start  []string    // managed transports some line uses, started by Start
	dialer *bridge.Dialer

	mu       sync.Mutex
	descs    map[netip.AddrPort]*bridge.Descriptor // by the line's address
	problems int                                   // bootstrap problems reported

	nd atomic.Pointer[netdir.NetDir] // bridge.NetDir of descs
}

// setupBridges prepares UseBridges (New): the Bridge lines, the
// transports (ClientTransportPlugin lines, TransportDialers), and the
// channel manager's dial function.
func (c *Engine) setupBridges(popts proxy.Options, pdial proxy.DialFunc) error {
	b := &bridges{descs: map[netip.AddrPort]*bridge.Descriptor{}}
	for _, v := range c.conf().Bridges {
		l, err := bridge.ParseLine(v)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		b.lines = append(b.lines, l)
	}
	if len(b.lines) == 0 {
		return errors.New("client: UseBridges is set, but there is no Bridge line")
	}
	var plugins []pt.Plugin
	for _, v := range c.conf().ClientTransportPlugins {
		p, err := pt.ParsePlugin(v)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		plugins = append(plugins, p)
	}
	funcs := map[string]bridge.TransportFunc{}
	for name, f := range c.conf().TransportDialers {
		funcs[name] = func(ctx context.Context, addr string, args pt.Args) (net.Conn, error) {
			m := make(map[string][]string, len(args))
			for _, a := range args {
				m[a.Key] = append(m[a.Key], a.Value)
			}
			return f(ctx, addr, m)
		}
	}
	if len(plugins) > 0 {
		b.pts = pt.NewManager(plugins, pt.Config{
			StateDir: filepath.Join(c.conf().DataDirectory, "pt_state"),
			Proxy:    popts.PTProxyURI(),
			Log:      c.log,
			OnExit: func(p pt.Plugin, err error) {
				c.log.Warn("managed pluggable transport exited; it is started again when a bridge needs it",
					"transport", strings.Join(p.Transports, ","), "err", err)
			},
		})
	}
	seen := map[string]bool{}
	for _, l := range b.lines {
		t := l.Transport
		if t == "" || seen[t] || funcs[t] != nil || b.pts == nil || !b.pts.Has(t) {
			continue
		}
		seen[t] = true
		b.start = append(b.start, t)
	}
	var tr bridge.Transports
	if b.pts != nil || len(funcs) > 0 {
		tr = bridge.WithFuncs(funcs, b.pts)
	}
	d, err := bridge.NewDialer(b.lines, tr, pdial)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	b.dialer = d
	c.chans.DialFunc = func(ctx context.Context, addr netip.AddrPort, want channel.Identity) (*channel.Channel, error) {
		ctx, cancel := handshakeBound(ctx)
		defer cancel()
		return d.DialChannel(ctx, addr, want)
	}
	c.br = b
	return nil
}

// startBridges runs at the start of the bootstrap: the transports, then
// the bridges' descriptors, retried until one bridge is usable or ctx
// ends; then the refresh loop, until runCtx ends.
func (c *Engine) startBridges(ctx, runCtx context.Context) error {
	b := c.br
	if b == nil {
		return nil
	}
	if len(b.start) > 0 {
		c.setProgress(phaseConnPT)
		if err := b.pts.Start(ctx, b.start...); err != nil {
			c.bootstrapProblem("PT_MISSING", "?", err)
			return fmt.Errorf("pluggable transport: %w", err)
		}
		c.setProgress(phaseConnDonePT)
	}
	_, retry, _ := c.bridgeTimes()
	var prev error // the last failure not cut short by ctx
	for {
		err := c.fetchBridgeDescs(ctx, b.lines)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return cmp.Or(prev, err)
		}
		prev = err
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retry):
		}
		retry = min(2*retry, time.Minute)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.refreshBridges(runCtx)
	}()
	return nil
}

// refreshBridges fetches the bridges' descriptors again: every bridge's
// every refresh period, the failed ones sooner.
func (c *Engine) refreshBridges(ctx context.Context) {
	b := c.br
	_, retry, refresh := c.bridgeTimes()
	wait := retry
	last := time.Now()
	for {
		missing := b.missing()
		next := refresh - time.Since(last)
		if len(missing) > 0 {
			next = min(next, wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		if c.checkNetwork() != nil {
			continue // DisableNetwork 1: try again later
		}
		lines := missing
		if time.Since(last) >= refresh {
			lines, last = b.lines, time.Now()
		}
		if c.fetchBridgeDescs(ctx, lines) == nil && len(b.missing()) == 0 {
			wait = retry
		} else {
			wait = min(2*wait, refresh)
		}
	}
}

// missing returns the lines of bridges without a descriptor.
func (b *bridges) missing() []bridge.Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []bridge.Line
	for _, l := range b.lines {
		if b.descs[l.Addr] == nil {
			out = append(out, l)
		}
	}
	return out
}

// fetchBridgeDescs fetches the descriptors of lines' bridges in
// parallel and installs those that pass as the guards' NetDir. A failed
// bridge keeps its earlier descriptor. It fails, reporting a bootstrap
// problem, when no bridge has a descriptor.
func (c *Engine) fetchBridgeDescs(ctx context.Context, lines []bridge.Line) error {
	b := c.br
	c.setProgress(dirmgr.PhaseConn)
	errs := make([]error, len(lines))
	descs := make([]*bridge.Descriptor, len(lines))
	var wg sync.WaitGroup
	for i, l := range lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			descs[i], errs[i] = c.fetchBridgeDesc(ctx, l)
		}()
	}
	wg.Wait()
	var failed []error
	b.mu.Lock()
	for i, l := range lines {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		b.descs[l.Addr] = descs[i]
	}
	all := make([]*bridge.Descriptor, 0, len(b.descs))
	for _, l := range b.lines {
		if d := b.descs[l.Addr]; d != nil {
			all = append(all, d)
		}
	}
	b.mu.Unlock()
	for _, err := range failed {
		if ctx.Err() == nil {
			c.log.Warn("bridge unusable", "err", err)
		}
	}
	if len(all) == 0 {
		err := fmt.Errorf("no usable bridge: %w", errors.Join(failed...))
		if ctx.Err() == nil {
			host := "?"
			var be *bridge.Error
			if errors.As(failed[0], &be) {
				host = be.Bridge
			}
			c.bootstrapProblem(bridgeReason(failed[0]), host, err)
		}
		return err
	}
	nd := bridge.NetDir(all)
	b.nd.Store(nd)
	c.guards.SetNetDir(nd)
	return nil
}

// fetchBridgeDesc opens a channel to the bridge of l (through the
// channel manager when the line has a fingerprint, so that circuits
// reuse it; else a channel of its own, to whichever identity the bridge
// proves) and fetches its descriptor over it.
func (c *Engine) fetchBridgeDesc(ctx context.Context, l bridge.Line) (*bridge.Descriptor, error) {
	attempt, _, _ := c.bridgeTimes()
	ctx, cancel := context.WithTimeout(ctx, attempt)
	defer cancel()
	var (
		ch  *channel.Channel
		err error
	)
	if l.HasFingerprint {
		ch, err = c.chans.Get(ctx, l.Addr, channel.Identity{RSAID: l.Fingerprint})
	} else {
		ch, err = c.br.dialer.Dial(ctx, l)
		if err == nil {
			defer ch.Close()
		}
	}
	if err != nil {
		var be *bridge.Error
		if !errors.As(err, &be) {
			err = &bridge.Error{Bridge: l.Name(), Msg: "unreachable", Err: err}
		}
		return nil, err
	}
	c.setProgress(phaseHandshakeDone)
	c.setProgress(phaseOneHopCreate)
	d, err := bridge.FetchDescriptor(ctx, ch, l)
	if err != nil {
		return nil, err
	}
	c.log.Log(ctx, logging.LevelNotice, "new bridge descriptor", "bridge", l.Name(), "nickname", d.Desc.Nickname)
	return d, nil
}

// bridgeReason is the REASON of a bootstrap problem (control-spec §4.1.10,
// C tor's or_conn_end_reason tags).
func bridgeReason(err error) string {
	var mm *channel.IdentityMismatchError
	var pe *pt.Error
	var ne net.Error
	switch {
	case errors.As(err, &mm):
		return "IDENTITY"
	case errors.As(err, &pe):
		return "PT_MISSING"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "TIMEOUT"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "CONNECTREFUSED"
	case errors.Is(err, syscall.ECONNRESET):
		return "CONNECTRESET"
	}
	return "MISC"
}

// bootstrapProblem reports that the bootstrap cannot go on, as C tor's
// control_event_bootstrap_problem: a warning in the log and a
// STATUS_CLIENT BOOTSTRAP event with WARNING and REASON.
func (c *Engine) bootstrapProblem(reason, host string, err error) {
	b := c.br
	b.mu.Lock()
	b.problems++
	n := b.problems
	b.mu.Unlock()
	p := c.Bootstrap()
	c.log.Warn(fmt.Sprintf("Problem bootstrapping. Stuck at %d%% (%s): %s. (%v; %s; count %d; recommendation warn; host %s)",
		p.Percent, p.Tag, p.Summary, err, reason, n, host))
	c.noteBootstrapProblem(control.Bootstrap{Percent: p.Percent, Tag: p.Tag, Summary: p.Summary,
		Warning: err.Error(), Reason: reason, Count: n, Recommendation: "warn"})
}

// bridgeDirDial is dirDial with UseBridges: a BEGIN_DIR stream to a
// bridge picked as directory guard (the directory manager names one of
// the bridges, bridgeDirs; the guard manager decides which is used, as
// for directory guards, guard-spec §4.6).
func (c *Engine) bridgeDirDial(ctx context.Context) (net.Conn, error) {
	nd := c.br.nd.Load()
	if nd == nil {
		return nil, errors.New("no bridge descriptor yet")
	}
	g, att, err := c.guards.Pick(nd, guard.Usage{Dir: true})
	if err != nil {
		return nil, fmt.Errorf("no usable bridge for directory requests: %w", err)
	}
	conn, err := c.dirStream(ctx, g)
	att.Report(err == nil)
	att.Close()
	return conn, err
}

// bridgeDirs returns the directory manager's Bridges hook: the bridges
// with a descriptor, as directories (nil without UseBridges).
func (c *Engine) bridgeDirs() func() []*netdir.Relay {
	if c.br == nil {
		return nil
	}
	return func() []*netdir.Relay {
		if nd := c.br.nd.Load(); nd != nil {
			return nd.Relays
		}
		return nil
	}
}

// guardDir is the NetDir guards are picked from: the bridges' with
// UseBridges (nil before the first descriptor), else dir (the
// consensus's).
func (c *Engine) guardDir(dir *netdir.NetDir) *netdir.NetDir {
	if c.br != nil {
		return c.br.nd.Load() // never the consensus's relays
	}
	return dir
}

// setGuardDir gives the guard manager a new consensus NetDir, unless
// the guards are the bridges (fetchBridgeDescs installs theirs).
func (c *Engine) setGuardDir(dir *netdir.NetDir) {
	if c.br == nil {
		c.guards.SetNetDir(dir)
	}
}

// closeBridges stops the managed transports (Stop).
func (c *Engine) closeBridges() {
	if c.br != nil && c.br.pts != nil {
		c.br.pts.Close()
	}
}
