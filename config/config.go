// Package config is gotor's public configuration: a Config value that
// programs build in Go (starting from DefaultConfig) or load from a torrc
// written for C tor (Load, FromLines).
//
// Field names follow gotor's stream isolation design
// (IsolationLevel, IsolateDestinations, IsolateSOCKSAuth,
// IsolateClientPort, EnableCircuitPrebuilding) and otherwise C tor's
// option names, as documented in tor(1). docs/TORRC.md lists every
// torrc option gotor understands, its default, the options it ignores
// with a warning, and how Go fields map to torrc options and SocksPort
// flags.
//
// A torrc that a C tor client uses (for example on a private test
// network) loads unchanged: options gotor supports are applied, options
// whose effect does not matter to a gotor client are ignored with a
// Warning, and options that would change behaviour gotor does not
// implement are an error naming the option and its file:line. Unknown
// options (typos) are errors too.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/torrc"
)

// Config is a gotor client configuration. The zero value is not useful;
// start from DefaultConfig.
type Config struct {
	// SocksPorts are the SOCKS listeners (torrc SocksPort). Empty means
	// no SOCKS listener ("SocksPort 0").
	SocksPorts []PortConfig
	// HTTPTunnelPorts are HTTP CONNECT listeners (torrc HTTPTunnelPort).
	HTTPTunnelPorts []PortConfig

	// DataDirectory holds gotor's state and caches.
	DataDirectory string

	// DirAuthorities are raw torrc "DirAuthority" values, e.g.
	// "auth0 orport=5000 no-v2 v3ident=HEX 127.0.0.1:7000 FINGERPRINT".
	// Empty means the real Tor network's built-in authorities.
	DirAuthorities []string
	// FallbackDirs are torrc "FallbackDir" values ("IP:DIRPORT orport=N
	// id=HEX"): directory mirrors asked for the first consensus before the
	// authorities (dir-spec §5.1).
	FallbackDirs []string
	// UseDefaultFallbackDirs uses the built-in fallback list when no
	// FallbackDir is given and the built-in authorities are in use
	// (default true, as C tor).
	UseDefaultFallbackDirs bool
	// TestingTorNetwork marks a private test network (torrc
	// TestingTorNetwork). Load applies C tor's testing defaults that
	// matter to a client unless the torrc sets them; in Go, call
	// UseTestingTorNetwork.
	TestingTorNetwork bool

	// IsolationLevel is the design's isolation policy: "none",
	// "destination", "credential", "port", "session", or several joined
	// by commas ("destination,credential"). It and the three fields below
	// are added to every port's own isolation flags (see Port) and govern
	// streams opened through the Go API.
	IsolationLevel string
	// IsolateDestinations is the same as including "destination".
	IsolateDestinations bool
	// IsolateSOCKSAuth is the same as including "credential"; on by
	// default, as in C tor.
	IsolateSOCKSAuth bool
	// IsolateClientPort is the same as including "port".
	IsolateClientPort bool

	// EnableCircuitPrebuilding builds circuits before streams need them
	// (C tor's predicted circuits). Default true.
	EnableCircuitPrebuilding bool
	// MaxCircuitDirtiness is how long a circuit is used for new streams
	// after its first stream (default 10 minutes).
	MaxCircuitDirtiness time.Duration
	// CircuitBuildTimeout bounds building one circuit (default 60 s):
	// the fixed timeout with LearnCircuitBuildTimeout off, else the
	// initial one when set to other than the default (path-spec §2.4).
	CircuitBuildTimeout time.Duration
	// LearnCircuitBuildTimeout learns the build timeout from observed
	// build times (path-spec §2.4; default true, as C tor).
	LearnCircuitBuildTimeout bool
	// NewCircuitPeriod is how often gotor considers building a new
	// circuit (default 30 s).
	NewCircuitPeriod time.Duration
	// SocksTimeout bounds waiting for a stream to connect (default 2 min).
	SocksTimeout time.Duration

	// Node restrictions, each a list of C tor routerset entries
	// (fingerprints "$HEX", nicknames, "{cc}" country codes, address
	// patterns); comma-separated values are split.
	ExitNodes, EntryNodes, ExcludeNodes, ExcludeExitNodes []string
	// StrictNodes makes ExcludeNodes apply even when that breaks
	// functionality.
	StrictNodes bool
	// EnforceDistinctSubnets refuses two relays of one /16 (IPv4) or /32
	// (IPv6) in a circuit. Default true; off on test networks.
	EnforceDistinctSubnets bool
	// ClientRejectInternalAddresses refuses to connect to private
	// addresses through an exit (default true; off on test networks).
	ClientRejectInternalAddresses bool
	// ClientDNSRejectInternalAddresses ignores DNS answers that are
	// private addresses (default true; off on test networks).
	ClientDNSRejectInternalAddresses bool
	// ClientOnionAuthDir holds "*.auth_private" files with x25519 keys
	// for onion services that require client authorization.
	ClientOnionAuthDir string

	// ConnectionPadding is "auto" (pad channels to relays that support
	// it; default), "1" (always) or "0" (never, and ask the relay not
	// to): padding-spec §2. ReducedConnectionPadding pads less and asks
	// relays to stop (for mobile clients). KeepalivePeriod is how long a
	// channel may stay silent before a PADDING cell (default 5 minutes).
	ConnectionPadding        string
	ReducedConnectionPadding bool
	KeepalivePeriod          time.Duration

	// OnionServices are the onion services gotor hosts (HiddenServiceDir
	// blocks).
	OnionServices []OnionServiceConfig

	// SafeSocks refuses SOCKS requests that give an IP address.
	SafeSocks bool
	// UseEntryGuards picks the first hop from a guard set (default true).
	UseEntryGuards bool
	// NumEntryGuards is how many guards to use; 0 lets the consensus
	// decide.
	NumEntryGuards int
	// ClientOnly: gotor is always a client; kept for torrc compatibility.
	ClientOnly bool

	// ControlPorts are the control listeners (torrc ControlPort).
	ControlPorts []ControlPortConfig
	// CookieAuthentication enables control-port cookie authentication.
	CookieAuthentication bool
	// CookieAuthFile overrides DataDirectory/control_auth_cookie.
	CookieAuthFile string
	// HashedControlPassword are "16:HEX" S2K password hashes.
	HashedControlPassword []string
	// ControlPortWriteToFile, if set, is rewritten with the control
	// listeners' addresses ("PORT=127.0.0.1:9051", "UNIX_PORT=/path")
	// whenever they change, so that "auto" ports can be found;
	// ControlPortFileGroupReadable makes it mode 0640 instead of 0600.
	ControlPortWriteToFile       string
	ControlPortFileGroupReadable bool
	// CookieAuthFileGroupReadable makes the cookie file mode 0640.
	CookieAuthFileGroupReadable bool
	// MetricsPort is the Prometheus listener, IP:PORT ("127.0.0.1:9035"; Load
	// accepts C tor's forms and writes this one), "" for
	// none; MetricsPortPolicy lists C tor "accept/reject ADDR" rules.
	MetricsPort       string
	MetricsPortPolicy []string

	// Logs are the log destinations; empty means "notice stdout".
	Logs []LogConfig

	// DisableNetwork (torrc DisableNetwork): while true gotor makes no
	// network connection and opens no SOCKS, HTTP or metrics listener;
	// only the control port works. Setting it false at run time (SETCONF)
	// starts the bootstrap.
	DisableNetwork bool
	// OwningControllerProcess (torrc __OwningControllerProcess) is the
	// PID of a controller that started gotor; gotor exits when that
	// process is gone. 0 means none.
	OwningControllerProcess int
	// ReloadTorrcOnSIGHUP (torrc __ReloadTorrcOnSIGHUP, default true):
	// SIGHUP re-reads the torrc; when false it only reopens the logs.
	ReloadTorrcOnSIGHUP bool

	// ignored are the lines of options that are accepted and ignored, kept
	// so that GETCONF shows and SAVECONF writes what was configured.
	ignored []torrc.Line
	// UseBridges makes gotor reach the Tor network through Bridges only
	// (torrc UseBridges): it fetches each bridge's descriptor from the
	// bridge itself, uses the bridges as its guards and directory
	// guards, and connects to no other relay address. docs/BRIDGES.md.
	UseBridges bool
	// Bridges are raw torrc "Bridge" values, used with UseBridges:
	// "[TRANSPORT] IP:PORT [FINGERPRINT] [k=v ...]", e.g.
	// "obfs4 192.0.2.1:443 FINGERPRINT cert=... iat-mode=0".
	Bridges []string
	// ClientTransportPlugins are raw torrc "ClientTransportPlugin"
	// values: "TRANSPORT[,TRANSPORT...] exec PATH [ARGS...]" (a program
	// gotor runs, only when a bridge uses one of its transports) or
	// "TRANSPORT socks4|socks5 IP:PORT" (one already listening).
	ClientTransportPlugins []string
	// TransportDialers are in-process pluggable transports by transport
	// name (Go only; no torrc form): a Bridge line naming one is reached
	// through its function instead of a ClientTransportPlugin.
	TransportDialers map[string]TransportDialer

	// An outbound proxy for every connection to a relay or bridge
	// (torrc Socks4Proxy, Socks5Proxy, HTTPSProxy: HOST[:PORT], at most
	// one of them), with its credentials (Socks5ProxyUsername and
	// Socks5ProxyPassword, 1 to 255 bytes each; HTTPSProxyAuthenticator
	// "USERNAME:PASSWORD"). Managed transports get it as TOR_PT_PROXY.
	Socks4Proxy, Socks5Proxy, Socks5ProxyUsername, Socks5ProxyPassword string
	HTTPSProxy, HTTPSProxyAuthenticator                                string
}

// PortConfig is one SocksPort or HTTPTunnelPort line: its address and C
// tor's flags.
type PortConfig struct {
	// Addr is "host:port" ("127.0.0.1:9050", "[::1]:9050"); port 0 picks
	// a free port (torrc "auto").
	Addr string

	// Isolation flags (tor(1) SocksPort): streams differing in the named
	// field never share a circuit.
	IsolateClientAddr     bool // default true
	IsolateSOCKSAuth      bool // default true
	IsolateClientProtocol bool
	IsolateDestPort       bool
	IsolateDestAddr       bool
	IsolateClientPort     bool // gotor extension: the client's source port
	// KeepAliveIsolateSOCKSAuth renews a circuit's dirtiness while
	// streams with SOCKS credentials use it.
	KeepAliveIsolateSOCKSAuth bool
	// SessionGroup lets streams of ports with the same group share
	// circuits; -1 means none (each port is its own group).
	SessionGroup int

	// Traffic flags; NoIPv4Traffic etc. in torrc set them false, and
	// OnionTrafficOnly clears IPv4Traffic, IPv6Traffic and DNSRequest.
	IPv4Traffic  bool // default true
	IPv6Traffic  bool // default true
	PreferIPv6   bool
	DNSRequest   bool // default true
	OnionTraffic bool // default true

	// ExtendedErrors sends proposal 304 SOCKS5 reply codes.
	ExtendedErrors bool
	// PreferSOCKSNoAuth picks no-auth when a client offers both methods.
	PreferSOCKSNoAuth bool
}

// OnionTrafficOnly reports whether the port only carries .onion traffic.
func (p PortConfig) OnionTrafficOnly() bool {
	return !p.IPv4Traffic && !p.IPv6Traffic && !p.DNSRequest && p.OnionTraffic
}

// DefaultPort returns a port at addr with C tor's default flags.
func DefaultPort(addr string) PortConfig {
	return PortConfig{Addr: addr, IsolateClientAddr: true, IsolateSOCKSAuth: true,
		SessionGroup: -1, IPv4Traffic: true, IPv6Traffic: true, DNSRequest: true, OnionTraffic: true}
}

// LogConfig is one torrc Log line.
type LogConfig struct {
	// Severity is the severity range as written ("notice", "info-err",
	// or with C tor log domains "[handshake]debug [*]notice").
	Severity string
	// MinSeverity and MaxSeverity bound the messages logged: one of
	// debug, info, notice, warn, err. For domain-qualified lines they are
	// those of the first range that applies to all domains ("[*]" or no
	// brackets), else of the first range.
	MinSeverity, MaxSeverity string
	// Dest is "stdout", "stderr", "syslog" or "file".
	Dest string
	// Path is the file for Dest "file".
	Path string
}

// String returns the torrc value of l.
// A LogConfig built in Go may leave Severity empty and set MinSeverity
// (and MaxSeverity).
func (l LogConfig) String() string {
	sev := l.Severity
	if sev == "" {
		sev = l.MinSeverity
		if l.MaxSeverity != "" {
			sev += "-" + l.MaxSeverity
		}
	}
	if l.Dest == "file" {
		return sev + " file " + l.Path
	}
	return sev + " " + l.Dest
}

// Defaults.
const (
	DefaultSocksAddr           = "127.0.0.1:9050"
	DefaultMaxCircuitDirtiness = 10 * time.Minute
	DefaultCircuitBuildTimeout = 60 * time.Second
	DefaultNewCircuitPeriod    = 30 * time.Second
	DefaultSocksTimeout        = 2 * time.Minute
	DefaultKeepalivePeriod     = 5 * time.Minute
)

// DefaultDataDirectory is os.UserCacheDir()/gotor, or ".gotor" in the
// working directory when there is no cache directory.
func DefaultDataDirectory() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ".gotor"
	}
	return filepath.Join(dir, "gotor")
}

// DefaultConfig returns the zero-config setup: a SOCKS port on
// 127.0.0.1:9050 with C tor's default flags, the data directory in the
// user's cache directory, the real network's authorities, C tor's
// default isolation (client address and SOCKS credentials) and timings.
func DefaultConfig() *Config {
	return &Config{
		SocksPorts:                       []PortConfig{DefaultPort(DefaultSocksAddr)},
		DataDirectory:                    DefaultDataDirectory(),
		IsolationLevel:                   "none",
		IsolateSOCKSAuth:                 true,
		EnableCircuitPrebuilding:         true,
		MaxCircuitDirtiness:              DefaultMaxCircuitDirtiness,
		CircuitBuildTimeout:              DefaultCircuitBuildTimeout,
		LearnCircuitBuildTimeout:         true,
		NewCircuitPeriod:                 DefaultNewCircuitPeriod,
		SocksTimeout:                     DefaultSocksTimeout,
		EnforceDistinctSubnets:           true,
		ClientRejectInternalAddresses:    true,
		ClientDNSRejectInternalAddresses: true,
		UseEntryGuards:                   true,
		UseDefaultFallbackDirs:           true,
		ReloadTorrcOnSIGHUP:              true,
		ConnectionPadding:                "auto",
		KeepalivePeriod:                  DefaultKeepalivePeriod,
	}
}

// UseTestingTorNetwork sets TestingTorNetwork and the C tor testing
// defaults that matter to a client: EnforceDistinctSubnets,
// ClientRejectInternalAddresses and ClientDNSRejectInternalAddresses
// off (every relay of a local test network shares one address).
func (c *Config) UseTestingTorNetwork() {
	c.TestingTorNetwork = true
	c.EnforceDistinctSubnets = false
	c.ClientRejectInternalAddresses = false
	c.ClientDNSRejectInternalAddresses = false
}

// Port returns p with the global isolation fields (IsolationLevel,
// IsolateDestinations, IsolateSOCKSAuth, IsolateClientPort) added to its
// own flags: "destination" adds IsolateDestAddr and IsolateDestPort,
// "credential" IsolateSOCKSAuth, "port" IsolateClientPort and
// IsolateClientAddr. ("session" needs no port flag: session tokens come
// from the Go API.) Call Validate first.
func (c *Config) Port(p PortConfig) PortConfig {
	l, _ := isolation.ParseLevel(c.IsolationLevel)
	if c.IsolateDestinations || l&isolation.LevelDestination != 0 {
		p.IsolateDestAddr, p.IsolateDestPort = true, true
	}
	if c.IsolateSOCKSAuth || l&isolation.LevelCredential != 0 {
		p.IsolateSOCKSAuth = true
	}
	if c.IsolateClientPort || l&isolation.LevelPort != 0 {
		p.IsolateClientPort, p.IsolateClientAddr = true, true
	}
	return p
}

// Validate checks values and their combinations.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	seen := map[string]string{}
	for _, ports := range []struct {
		name string
		list []PortConfig
	}{{"SocksPort", c.SocksPorts}, {"HTTPTunnelPort", c.HTTPTunnelPorts}} {
		for _, p := range ports.list {
			if err := p.validate(); err != nil {
				bad("%s %s: %v", ports.name, p.Addr, err)
				continue
			}
			if prev, ok := seen[p.Addr]; ok && !strings.HasSuffix(p.Addr, ":0") {
				bad("%s %s: address already used by %s", ports.name, p.Addr, prev)
			}
			seen[p.Addr] = ports.name
		}
	}
	if c.DataDirectory == "" {
		bad("DataDirectory is empty")
	}
	for _, a := range c.DirAuthorities {
		if _, err := dirmgr.ParseDirAuthority(a); err != nil {
			bad("DirAuthority %q: %v", a, err)
		}
	}
	for _, f := range c.FallbackDirs {
		if _, err := dirmgr.ParseFallback(f); err != nil {
			bad("FallbackDir %q: %v", f, err)
		}
	}
	if c.TestingTorNetwork && len(c.DirAuthorities) == 0 {
		bad("TestingTorNetwork needs DirAuthority lines naming the test network's authorities")
	}
	if _, err := isolation.ParseLevel(c.IsolationLevel); err != nil {
		bad("IsolationLevel: %v", err)
	}
	for _, d := range []struct {
		name      string
		v, lo, hi time.Duration
	}{
		{"MaxCircuitDirtiness", c.MaxCircuitDirtiness, time.Second, 30 * 24 * time.Hour},
		{"CircuitBuildTimeout", c.CircuitBuildTimeout, time.Second, 24 * time.Hour},
		{"NewCircuitPeriod", c.NewCircuitPeriod, time.Second, 24 * time.Hour},
		{"SocksTimeout", c.SocksTimeout, time.Second, 24 * time.Hour},
	} {
		if d.v < d.lo || d.v > d.hi {
			bad("%s %v: must be between %v and %v", d.name, d.v, d.lo, d.hi)
		}
	}
	if c.OwningControllerProcess < 0 {
		bad("__OwningControllerProcess %d: not a process ID", c.OwningControllerProcess)
	}
	switch c.ConnectionPadding {
	case "auto", "0", "1":
	default:
		bad("ConnectionPadding %q: must be auto, 0 or 1", c.ConnectionPadding)
	}
	if c.KeepalivePeriod < time.Second {
		bad("KeepalivePeriod %v: must be at least 1 second", c.KeepalivePeriod)
	}
	for _, o := range c.OnionServices {
		if err := o.validate(); err != nil {
			bad("%v", err)
		}
	}
	if c.NumEntryGuards < 0 {
		bad("NumEntryGuards %d: must not be negative", c.NumEntryGuards)
	}
	for _, cp := range c.ControlPorts {
		if err := cp.validate(); err != nil {
			bad("ControlPort %q: %v", cp, err)
		}
	}
	if c.MetricsPort != "" {
		if a, err := ParseListenAddr(c.MetricsPort, "127.0.0.1"); err != nil || a != c.MetricsPort {
			bad("MetricsPort %q: want IP:PORT (%v)", c.MetricsPort, err)
		}
	}
	for _, l := range c.Logs {
		if _, err := parseLog(l.String()); err != nil {
			bad("Log %q: %v", l.String(), err)
		}
	}
	errs = append(errs, c.validateOutbound()...)
	return errors.Join(errs...)
}

func (p PortConfig) validate() error {
	host, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("address %q is not an IP address", host)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	if p.SessionGroup < -1 {
		return fmt.Errorf("SessionGroup %d: must be >= 0", p.SessionGroup)
	}
	if p.KeepAliveIsolateSOCKSAuth && !p.IsolateSOCKSAuth {
		return errors.New("KeepAliveIsolateSOCKSAuth needs IsolateSOCKSAuth")
	}
	if !p.IPv4Traffic && !p.IPv6Traffic && !p.OnionTraffic {
		return errors.New("IPv4, IPv6 and .onion traffic are all disabled; that won't work")
	}
	if p.DNSRequest && !p.IPv4Traffic && !p.IPv6Traffic {
		return errors.New("DNSRequest is enabled but IPv4 and IPv6 traffic are disabled; DNS-based sites won't work")
	}
	return nil
}
