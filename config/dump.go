package config

// Configuration in torrc form, as C tor's `--dump-config` prints it
// (options_dump and config_dump in C tor's src/app/config/config.c and
// src/lib/confmgt/confmgt.c): one "Option value" line per value, list
// options one line per entry, intervals in seconds, booleans 0/1.
//
// Kept in its own file, next to the option table of load.go: every option
// gotor implements has an entry in dumpers (TestDumpCoversEveryOption).

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dumpers return an option's values in torrc form. A nil result prints
// nothing; routersets print their name alone when empty, as C tor does.
var dumpers = map[string]func(c *Config) []string{
	"SocksPort": func(c *Config) []string {
		if len(c.SocksPorts) == 0 {
			return []string{"0"} // the default is a port, so "none" must be said
		}
		return portValues(c.SocksPorts)
	},
	"HTTPTunnelPort":                   func(c *Config) []string { return portValues(c.HTTPTunnelPorts) },
	"DataDirectory":                    func(c *Config) []string { return nonEmpty(c.DataDirectory) },
	"DirAuthority":                     func(c *Config) []string { return c.DirAuthorities },
	"FallbackDir":                      func(c *Config) []string { return c.FallbackDirs },
	"UseDefaultFallbackDirs":           func(c *Config) []string { return boolValue(c.UseDefaultFallbackDirs) },
	"TestingTorNetwork":                func(c *Config) []string { return boolValue(c.TestingTorNetwork) },
	"IsolationLevel":                   func(c *Config) []string { return nonEmpty(c.IsolationLevel) },
	"IsolateDestinations":              func(c *Config) []string { return boolValue(c.IsolateDestinations) },
	"IsolateSOCKSAuth":                 func(c *Config) []string { return boolValue(c.IsolateSOCKSAuth) },
	"IsolateClientPort":                func(c *Config) []string { return boolValue(c.IsolateClientPort) },
	"EnableCircuitPrebuilding":         func(c *Config) []string { return boolValue(c.EnableCircuitPrebuilding) },
	"MaxCircuitDirtiness":              func(c *Config) []string { return intervalValue(c.MaxCircuitDirtiness) },
	"KeepalivePeriod":                  func(c *Config) []string { return intervalValue(c.KeepalivePeriod) },
	"ReducedConnectionPadding":         func(c *Config) []string { return boolValue(c.ReducedConnectionPadding) },
	"ConnectionPadding":                func(c *Config) []string { return nonEmpty(c.ConnectionPadding) },
	"CircuitBuildTimeout":              func(c *Config) []string { return intervalValue(c.CircuitBuildTimeout) },
	"LearnCircuitBuildTimeout":         func(c *Config) []string { return boolValue(c.LearnCircuitBuildTimeout) },
	"NewCircuitPeriod":                 func(c *Config) []string { return intervalValue(c.NewCircuitPeriod) },
	"SocksTimeout":                     func(c *Config) []string { return intervalValue(c.SocksTimeout) },
	"ExitNodes":                        func(c *Config) []string { return routersetValue(c.ExitNodes) },
	"EntryNodes":                       func(c *Config) []string { return routersetValue(c.EntryNodes) },
	"ExcludeNodes":                     func(c *Config) []string { return routersetValue(c.ExcludeNodes) },
	"ExcludeExitNodes":                 func(c *Config) []string { return routersetValue(c.ExcludeExitNodes) },
	"StrictNodes":                      func(c *Config) []string { return boolValue(c.StrictNodes) },
	"EnforceDistinctSubnets":           func(c *Config) []string { return boolValue(c.EnforceDistinctSubnets) },
	"ClientRejectInternalAddresses":    func(c *Config) []string { return boolValue(c.ClientRejectInternalAddresses) },
	"ClientDNSRejectInternalAddresses": func(c *Config) []string { return boolValue(c.ClientDNSRejectInternalAddresses) },
	"SafeSocks":                        func(c *Config) []string { return boolValue(c.SafeSocks) },
	"UseEntryGuards":                   func(c *Config) []string { return boolValue(c.UseEntryGuards) },
	"ClientOnly":                       func(c *Config) []string { return boolValue(c.ClientOnly) },
	"CookieAuthentication":             func(c *Config) []string { return boolValue(c.CookieAuthentication) },
	"NumEntryGuards":                   func(c *Config) []string { return []string{strconv.Itoa(c.NumEntryGuards)} },
	"ControlPort": func(c *Config) []string {
		var out []string
		for _, p := range c.ControlPorts {
			out = append(out, p.String())
		}
		return out
	},
	"ControlSocket":               func(*Config) []string { return nil }, // kept, and printed, as ControlPort unix:PATH
	"ControlSocketsGroupWritable": func(*Config) []string { return nil }, // printed as the sockets' GroupWritable flag
	"CookieAuthFile":              func(c *Config) []string { return nonEmpty(c.CookieAuthFile) },
	"ClientOnionAuthDir":          func(c *Config) []string { return nonEmpty(c.ClientOnionAuthDir) },
	"HashedControlPassword":       func(c *Config) []string { return c.HashedControlPassword },
	"MetricsPort":                 func(c *Config) []string { return nonEmpty(c.MetricsPort) },
	"MetricsPortPolicy":           func(c *Config) []string { return c.MetricsPortPolicy },
	"Log": func(c *Config) []string {
		var out []string
		for _, l := range c.Logs {
			out = append(out, l.String())
		}
		return out
	},
}

// OptionNames returns the torrc options gotor implements (each sets a
// Config field), sorted: what `gotor --list-torrc-options` prints. C
// tor's other options are accepted at their default, ignored with a
// warning, or refused; docs/TORRC.md lists them.
func OptionNames() []string {
	names := make([]string, 0, len(options))
	for n := range options {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Dump returns c as torrc lines ("Option value"), sorted by option name,
// as C tor's --dump-config does. With defaults nil it lists every option
// gotor implements ("full"); otherwise only those whose values differ
// from defaults ("short"). The defaults are DefaultConfig, or what a
// --defaults-torrc file makes of it. If c is a TestingTorNetwork
// configuration and defaults is not, defaults is compared with C tor's
// testing defaults applied, as C tor does.
func (c *Config) Dump(defaults *Config) []string {
	var base *Config
	if defaults != nil {
		b := *defaults
		if c.TestingTorNetwork && !b.TestingTorNetwork {
			b.UseTestingTorNetwork()
			b.TestingTorNetwork = false
		}
		base = &b
	}
	var out []string
	for _, name := range OptionNames() {
		d, ok := dumpers[name]
		if !ok || strings.HasPrefix(name, "__") { // C tor's CFLG_NODUMP
			continue
		}
		vals := d(c)
		if base != nil && slices.Equal(vals, d(base)) {
			continue
		}
		for _, v := range vals {
			if v == "" {
				out = append(out, name)
			} else {
				out = append(out, name+" "+v)
			}
		}
	}
	return out
}

func boolValue(b bool) []string {
	if b {
		return []string{"1"}
	}
	return []string{"0"}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// intervalValue prints seconds, as C tor does ("300"); fractions are kept.
func intervalValue(d time.Duration) []string {
	return []string{strconv.FormatFloat(d.Seconds(), 'f', -1, 64)}
}

func routersetValue(v []string) []string { return []string{strings.Join(v, ",")} }

func portValues(ps []PortConfig) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, portString(p))
	}
	return out
}

// portString returns p as a SocksPort or HTTPTunnelPort value: its address
// ("auto" for port 0) and the flags that differ from DefaultPort, which
// ParsePortConfig reads back to p.
func portString(p PortConfig) string {
	addr := p.Addr
	if host, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		if strings.Contains(host, ":") {
			addr = "[" + host + "]:auto"
		} else {
			addr = host + ":auto"
		}
	}
	f := []string{addr}
	flag := func(on bool, name string) {
		if on {
			f = append(f, name)
		}
	}
	flag(!p.IsolateClientAddr, "NoIsolateClientAddr")
	flag(!p.IsolateSOCKSAuth, "NoIsolateSOCKSAuth")
	flag(p.IsolateClientProtocol, "IsolateClientProtocol")
	flag(p.IsolateDestPort, "IsolateDestPort")
	flag(p.IsolateDestAddr, "IsolateDestAddr")
	flag(p.IsolateClientPort, "IsolateClientPort")
	flag(p.KeepAliveIsolateSOCKSAuth, "KeepAliveIsolateSOCKSAuth")
	if p.SessionGroup >= 0 {
		f = append(f, "SessionGroup="+strconv.Itoa(p.SessionGroup))
	}
	if p.OnionTrafficOnly() {
		f = append(f, "OnionTrafficOnly")
	} else {
		flag(!p.IPv4Traffic, "NoIPv4Traffic")
		flag(!p.IPv6Traffic, "NoIPv6Traffic")
		flag(!p.DNSRequest, "NoDNSRequest")
		flag(!p.OnionTraffic, "NoOnionTraffic")
	}
	flag(p.PreferIPv6, "PreferIPv6")
	flag(p.ExtendedErrors, "ExtendedErrors")
	flag(p.PreferSOCKSNoAuth, "PreferSOCKSNoAuth")
	return strings.Join(f, " ")
}
