package engine

// The client side of the control port (control-spec) and the MetricsPort:
// a control.Backend over the client's state, and the events that CIRC,
// STREAM and STATUS_CLIENT subscribers and Prometheus see.

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/circmgr"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/metrics"
	"github.com/gotor/gotor/internal/netdir"
)

// TorVersion is the Tor version gotor follows, in the form Tor version
// parsers (stem's, version-spec) read: GETINFO version reports it and
// gotor --version prints it.
const TorVersion = "0.4.9.0-gotor"

// observer fans client events out to the control port and metrics.
type observer struct {
	mu sync.Mutex
	// problem is the last bootstrap problem reported, problems how many.
	problem  control.Bootstrap
	problems int
	// requested are circuits CLOSECIRCUIT closed (REASON=REQUESTED).
	requested map[uint64]bool
	subs      map[int]func(control.Event)
	next      int
	launched  map[uint64]time.Time
	built     map[uint64]bool
	metrics   *metrics.Metrics
}

func (o *observer) publish(ev control.Event) {
	o.mu.Lock()
	subs := make([]func(control.Event), 0, len(o.subs))
	for _, f := range o.subs {
		subs = append(subs, f)
	}
	o.mu.Unlock()
	for _, f := range subs {
		f(ev)
	}
}

// controlBackend implements control.Backend and control.EventSource.
type controlBackend struct{ c *Engine }

func (b controlBackend) Subscribe(f func(control.Event)) func() {
	o := &b.c.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.subs == nil {
		o.subs = map[int]func(control.Event){}
	}
	id := o.next
	o.next++
	o.subs[id] = f
	return func() {
		o.mu.Lock()
		delete(o.subs, id)
		o.mu.Unlock()
	}
}

func (b controlBackend) Version() string { return TorVersion }

// BootstrapStatus is the bootstrap phase, with the last problem while
// the bootstrap is stuck in the phase it happened in (C tor's
// status/bootstrap-phase after control_event_bootstrap_problem).
func (b controlBackend) BootstrapStatus() control.Bootstrap {
	p := b.c.Bootstrap()
	cur := control.Bootstrap{Percent: p.Percent, Tag: p.Tag, Summary: p.Summary}
	b.c.obs.mu.Lock()
	last := b.c.obs.problem
	b.c.obs.mu.Unlock()
	if last.Warning != "" && last.Percent == cur.Percent && last.Tag == cur.Tag {
		return last
	}
	return cur
}

func (b controlBackend) circuitInfo(in circmgr.Info) control.CircuitInfo {
	ci := control.CircuitInfo{ID: in.ID, State: control.CircBuilt, Purpose: "GENERAL", TimeCreated: in.Created,
		BuildFlags: []string{"NEED_CAPACITY"}}
	if in.Purpose == circmgr.PurposeController {
		ci.Purpose = circmgr.PurposeController
	}
	if in.State == "LAUNCHED" {
		ci.State = control.CircLaunched
	}
	if circs := b.c.circMgr(); circs != nil {
		if ec, ok := circs.Lookup(in.ID); ok {
			ci.Path = hops(ec.relays)
		}
	}
	return ci
}

func hops(rs []*netdir.Relay) []control.Hop {
	out := make([]control.Hop, len(rs))
	for i, r := range rs {
		out[i] = control.Hop{Fingerprint: strings.ToUpper(hex.EncodeToString(r.RSAID[:])), Nickname: r.Nickname}
	}
	return out
}

func (b controlBackend) Circuits() []control.CircuitInfo {
	circs := b.c.circMgr()
	if circs == nil {
		return nil
	}
	var out []control.CircuitInfo
	for _, in := range circs.Circuits() {
		out = append(out, b.circuitInfo(in))
	}
	return out
}

func (b controlBackend) Streams() []control.StreamInfo {
	var out []control.StreamInfo
	for _, s := range b.c.Streams() {
		out = append(out, streamEvent(s, control.StreamSucceeded))
	}
	return out
}

func streamEvent(s StreamInfo, status string) control.StreamInfo {
	return control.StreamInfo{ID: s.ID, Status: status, CircuitID: s.CircuitID, Target: s.Target,
		SourceAddr: s.Source, Purpose: "USER"}
}

func (b controlBackend) Listeners(kind string) []string {
	switch kind {
	case "socks":
		return b.c.SocksAddrs()
	case "httptunnel":
		return b.c.HTTPTunnelAddrs()
	case "control":
		var out []string
		for _, a := range b.c.controlAddrs() {
			out = append(out, a.String())
		}
		return out
	case "metrics":
		if m := b.c.metrics(); m != nil {
			return []string{m.Addr().String()}
		}
	}
	return nil
}

func (b controlBackend) GetConf(key string) (string, []string, error) {
	name, vals, err := b.c.conf().Get(key)
	if err != nil {
		return "", nil, control.ErrUnknownKey
	}
	return name, vals, nil
}

func (b controlBackend) SetConf(changes []control.ConfChange) error {
	cc := make([]config.Change, len(changes))
	for i, ch := range changes {
		cc[i] = config.Change{Key: ch.Key, Values: ch.Values, Reset: ch.Reset}
	}
	return b.c.SetConf(cc)
}

func (b controlBackend) LoadConf(text string) error { return b.c.LoadConf(text) }
func (b controlBackend) SaveConf(force bool) error  { return b.c.SaveConf(force) }
func (b controlBackend) ConfigText() string         { return b.c.conf().Text() }
func (b controlBackend) CanSaveConf() bool          { return b.c.canSaveConf() }
func (b controlBackend) ConfigDefaults() []string   { return config.DefaultLines() }

func (b controlBackend) Signal(name string) error {
	switch name {
	case "NEWNYM":
		b.c.NewIdentity()
	case "SHUTDOWN", "HALT":
		b.c.requestShutdown()
	case "RELOAD":
		b.c.ReloadTorrc()
	case "CLEARDNSCACHE", "DUMP", "DEBUG", "HEARTBEAT", "DORMANT", "ACTIVE":
		// No DNS cache; nothing to dump; always active.
	default:
		return control.ErrNotSupported
	}
	return nil
}

func (b controlBackend) TrafficRead() uint64    { return b.c.bytesIn.Load() }
func (b controlBackend) TrafficWritten() uint64 { return b.c.bytesOut.Load() }

func (b controlBackend) NSByID(fp string) (string, error) {
	dir := b.c.dir.NetDir()
	raw, err := hex.DecodeString(fp)
	if dir == nil || err != nil || len(raw) != 20 {
		return "", control.ErrUnknownKey
	}
	var id [20]byte
	copy(id[:], raw)
	r := dir.ByRSAID[id]
	if r == nil {
		return "", control.ErrUnknownKey
	}
	return nsEntry(dir, r), nil
}

// nsEntry is r's network-status entry: "r", "s" and "w" lines (dir-spec
// §3.4.1), without a trailing newline.
func nsEntry(dir *netdir.NetDir, r *netdir.Relay) string {
	var flags []string
	for name, f := range map[string]netdir.Flags{"Exit": netdir.FlagExit, "Fast": netdir.FlagFast, "Guard": netdir.FlagGuard,
		"HSDir": netdir.FlagHSDir, "Running": netdir.FlagRunning, "Stable": netdir.FlagStable, "V2Dir": netdir.FlagV2Dir,
		"Valid": netdir.FlagValid, "Authority": netdir.FlagAuthority, "BadExit": netdir.FlagBadExit} {
		if r.Flags.Has(f) {
			flags = append(flags, name)
		}
	}
	sortStrings(flags)
	// An ns-flavour "r" line carries the server descriptor's digest, which
	// a microdesc client never sees; controllers (stem, nyx) only parse
	// it, so the first 20 bytes of the microdescriptor digest stand in.
	return fmt.Sprintf("r %s %s %s %s %s %d %d\ns %s\nw Bandwidth=%d",
		r.Nickname, base64.RawStdEncoding.EncodeToString(r.RSAID[:]), base64.RawStdEncoding.EncodeToString(r.MicrodescDigest[:20]),
		dir.ValidAfter.UTC().Format("2006-01-02 15:04:05"),
		r.Addr, r.ORPort, r.DirPort, strings.Join(flags, " "), r.Bandwidth)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (b controlBackend) ConfigFile() string { return b.c.configFile }

// onCircEventObserve turns circuit manager events into CIRC events and
// metrics.
func (c *Engine) onCircEventObserve(e circmgr.Event) {
	o := &c.obs
	o.mu.Lock()
	if o.launched == nil {
		o.launched, o.built = map[uint64]time.Time{}, map[uint64]bool{}
	}
	var state string
	switch e.Type {
	case circmgr.EventCircLaunched:
		o.launched[e.CircID] = time.Now()
		o.metrics.CircuitLaunched()
		state = control.CircLaunched
	case circmgr.EventCircBuilt:
		if t, ok := o.launched[e.CircID]; ok {
			o.metrics.CircuitBuilt(time.Since(t))
		}
		o.built[e.CircID] = true
		state = control.CircBuilt
	case circmgr.EventCircFailed:
		o.metrics.CircuitFailed("FAILED")
		delete(o.launched, e.CircID)
		state = control.CircFailed
	case circmgr.EventCircClosed:
		if o.built[e.CircID] {
			o.metrics.CircuitClosed()
		}
		delete(o.built, e.CircID)
		delete(o.launched, e.CircID)
		state = control.CircClosed
	}
	requested := o.requested[e.CircID]
	if state == control.CircClosed {
		delete(o.requested, e.CircID)
	}
	o.mu.Unlock()
	if state == "" {
		return
	}
	ci := control.CircuitInfo{ID: e.CircID, State: state, Purpose: "GENERAL", BuildFlags: []string{"NEED_CAPACITY"}}
	if state == control.CircBuilt && c.circs != nil {
		if ec, ok := c.circs.Lookup(e.CircID); ok {
			ci.Path = hops(ec.relays)
		}
	}
	if state == control.CircFailed || state == control.CircClosed {
		ci.Reason = "FINISHED"
		if state == control.CircFailed {
			ci.Reason = "TIMEOUT"
		}
		if requested {
			ci.Reason = "REQUESTED" // CLOSECIRCUIT (C tor END_CIRC_REASON_REQUESTED)
		}
	}
	c.obs.publish(control.Event{Type: control.EventCirc, Circuit: &ci})
}

// streamStatus publishes a STREAM event.
func (c *Engine) streamStatus(s StreamInfo, status, reason string) {
	ev := streamEvent(s, status)
	ev.Reason = reason
	c.obs.publish(control.Event{Type: control.EventStream, Stream: &ev})
}

// controlConfig is the control server's configuration for cfg: one
// server for every ControlPort line, so that they share one cookie.
func controlConfig(cfg *config.Config, log *slog.Logger) control.Config {
	cc := control.Config{
		CookieAuthentication:        cfg.CookieAuthentication,
		CookieAuthFile:              cfg.CookieAuthFile,
		CookieAuthFileGroupReadable: cfg.CookieAuthFileGroupReadable,
		DataDirectory:               cfg.DataDirectory,
		HashedControlPassword:       cfg.HashedControlPassword,
		AllowNullAuth:               !cfg.CookieAuthentication && len(cfg.HashedControlPassword) == 0,
		PortWriteToFile:             cfg.ControlPortWriteToFile,
		PortFileGroupReadable:       cfg.ControlPortFileGroupReadable,
		Logger:                      log,
	}
	for _, p := range cfg.ControlPorts {
		cc.Listeners = append(cc.Listeners, control.ListenerConfig{Addr: p.Addr, Unix: p.Unix, GroupWritable: p.GroupWritable})
	}
	return cc
}

func controlConfigEqual(a, b control.Config) bool {
	return slices.Equal(a.Listeners, b.Listeners) && slices.Equal(a.HashedControlPassword, b.HashedControlPassword) &&
		a.CookieAuthentication == b.CookieAuthentication && a.CookieAuthFile == b.CookieAuthFile &&
		a.CookieAuthFileGroupReadable == b.CookieAuthFileGroupReadable && a.DataDirectory == b.DataDirectory &&
		a.PortWriteToFile == b.PortWriteToFile && a.PortFileGroupReadable == b.PortFileGroupReadable
}

// startControl opens the ControlPort listeners and the MetricsPort. The
// control server runs even without a ControlPort, so that SETCONF
// ControlPort can open one later.
func (c *Engine) startControl() error {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	if c.rt.stopped {
		return errNotStarted
	}
	cfg := c.conf()
	cc := controlConfig(cfg, c.log)
	if len(cfg.ControlPorts) > 0 && cc.AllowNullAuth {
		c.log.Warn("ControlPort without CookieAuthentication or HashedControlPassword: any local program can control gotor")
	}
	srv, err := control.New(cc, controlBackend{c})
	if err != nil {
		return fmt.Errorf("ControlPort: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("ControlPort: %w", err)
	}
	c.ctrl = srv
	for _, a := range srv.Addrs() {
		c.log.Info("Opened Control listener on " + a.String())
	}
	m, _, err := c.prepareMetrics(cfg, cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if m != nil {
		c.swapMetrics(m)
		c.log.Info("Opened Metrics listener on " + m.Addr().String())
	}
	return nil
}

// controlAddrs lists the addresses of every control listener.
func (c *Engine) controlAddrs() []net.Addr {
	c.rt.mu.Lock()
	srv := c.ctrl
	c.rt.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Addrs()
}

// ControlAddr returns the control port's TCP address, or nil.
func (c *Engine) ControlAddr() net.Addr {
	for _, a := range c.controlAddrs() {
		if _, ok := a.(*net.TCPAddr); ok {
			return a
		}
	}
	return nil
}

// SetConfigFile records the torrc path, for GETINFO config-file.
func (c *Engine) SetConfigFile(path string) { c.configFile = path }

// Shutdown returns a channel closed when a controller asks gotor to shut
// down (SIGNAL SHUTDOWN or HALT); the program should then call Stop.
func (c *Engine) Shutdown() <-chan struct{} { return c.shutdownCh }

func (c *Engine) requestShutdown() { c.shutdownOnce.Do(func() { close(c.shutdownCh) }) }

// ConfigNames implements control.ConfigLister (GETINFO config/names):
// the options gotor implements.
func (b controlBackend) ConfigNames() []control.ConfigOption {
	var out []control.ConfigOption
	for _, o := range config.Options() {
		out = append(out, control.ConfigOption{Name: o.Name, Type: o.Type})
	}
	return out
}

// NSAll implements control.NSAller (GETINFO ns/all).
func (b controlBackend) NSAll() (string, error) {
	dir := b.c.dir.NetDir()
	if dir == nil {
		return "", control.ErrUnknownKey
	}
	var out []string
	for _, r := range dir.Relays {
		e, err := b.NSByID(fmt.Sprintf("%X", r.RSAID))
		if err == nil {
			out = append(out, e)
		}
	}
	return strings.Join(out, "\n"), nil
}

// requestedClose notes that a controller closed circuit id, for its
// CLOSED event's reason.
func (o *observer) requestedClose(id uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.requested == nil {
		o.requested = map[uint64]bool{}
	}
	o.requested[id] = true
}
