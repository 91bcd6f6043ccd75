package config

// Bridges, pluggable transports and outbound proxies (tor(1) UseBridges,
// Bridge, ClientTransportPlugin, Socks4Proxy, Socks5Proxy,
// Socks5ProxyUsername, Socks5ProxyPassword, HTTPSProxy,
// HTTPSProxyAuthenticator; C tor's options_validate, parse_bridge_line
// and pt_parse_transport_line; guard-spec §2 A; pt-spec §3.5 for the
// arguments a transport receives).
//
// Each line is checked as it is read, so that a bad value is an error at
// its file:line. What depends on several options (one proxy type only,
// credentials with their proxy, UseBridges with at least one Bridge and
// without EntryNodes, a transport for every Bridge line that names one)
// is checked once every line is applied (finishOutbound), at the
// position of the line concerned, and again by Validate for a Config
// built in Go.
//
// Registered from init, as controlsocket.go is, while options.go's table
// changes on several branches.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/gotor/gotor/internal/bridge"
	"github.com/gotor/gotor/internal/proxy"
	"github.com/gotor/gotor/internal/pt"
	"github.com/gotor/gotor/internal/torrc"
)

// TransportDialer is an in-process pluggable transport, for programs that
// embed one (for example lyrebird's obfs4 ClientFactory) instead of
// running a transport program: it connects to addr, the ADDR:PORT of a
// Bridge line naming the transport, with that line's k=v arguments (args
// maps each key to its values in line order: the shape of goptlib's
// pt.Args, which args converts to), and returns the connection over which
// gotor runs the bridge's TLS link handshake. ctx bounds the dial; the
// connection must outlive it.
type TransportDialer func(ctx context.Context, addr string, args map[string][]string) (net.Conn, error)

// proxyOptionNames are the outbound proxy options, for error positions.
var proxyOptionNames = []string{"Socks4Proxy", "Socks5Proxy", "HTTPSProxy",
	"Socks5ProxyUsername", "Socks5ProxyPassword", "HTTPSProxyAuthenticator"}

func init() {
	options["UseBridges"] = trackedOpt("UseBridges", boolOpt(func(c *Config) *bool { return &c.UseBridges }))
	options["Bridge"] = trackedOpt("Bridge", listOpt(func(c *Config) *[]string { return &c.Bridges }, func(v string) error {
		_, err := bridge.ParseLine(v)
		return err
	}))
	options["ClientTransportPlugin"] = listOpt(func(c *Config) *[]string { return &c.ClientTransportPlugins }, func(v string) error {
		_, err := pt.ParsePlugin(v)
		return err
	})
	for name, f := range map[string]func(*Config) *string{
		"Socks4Proxy": func(c *Config) *string { return &c.Socks4Proxy },
		"Socks5Proxy": func(c *Config) *string { return &c.Socks5Proxy },
		"HTTPSProxy":  func(c *Config) *string { return &c.HTTPSProxy },
	} {
		options[name] = trackedOpt(name, stringOpt(f, func(v string) error {
			_, err := proxy.Addr(name, v)
			return err
		}))
	}
	options["Socks5ProxyUsername"] = trackedOpt("Socks5ProxyUsername", stringOpt(func(c *Config) *string { return &c.Socks5ProxyUsername }, socks5Credential))
	options["Socks5ProxyPassword"] = trackedOpt("Socks5ProxyPassword", stringOpt(func(c *Config) *string { return &c.Socks5ProxyPassword }, socks5Credential))
	options["HTTPSProxyAuthenticator"] = trackedOpt("HTTPSProxyAuthenticator", stringOpt(func(c *Config) *string { return &c.HTTPSProxyAuthenticator }, func(v string) error {
		// Checked alone: as if with an HTTPSProxy.
		_, err := (proxy.Options{HTTPSProxy: "127.0.0.1", HTTPSProxyAuthenticator: v}).Dialer()
		return err
	}))

	for name, typ := range map[string]string{"UseBridges": "Boolean", "Bridge": "LineList", "ClientTransportPlugin": "LineList",
		"Socks4Proxy": "String", "Socks5Proxy": "String", "Socks5ProxyUsername": "String", "Socks5ProxyPassword": "String",
		"HTTPSProxy": "String", "HTTPSProxyAuthenticator": "String"} {
		optionTypes[name] = typ // C tor's type names (GETINFO config/names)
	}
	dumpers["UseBridges"] = func(c *Config) []string { return boolValue(c.UseBridges) }
	dumpers["Bridge"] = func(c *Config) []string { return c.Bridges }
	dumpers["ClientTransportPlugin"] = func(c *Config) []string { return c.ClientTransportPlugins }
	dumpers["Socks4Proxy"] = func(c *Config) []string { return nonEmpty(c.Socks4Proxy) }
	dumpers["Socks5Proxy"] = func(c *Config) []string { return nonEmpty(c.Socks5Proxy) }
	dumpers["Socks5ProxyUsername"] = func(c *Config) []string { return nonEmpty(c.Socks5ProxyUsername) }
	dumpers["Socks5ProxyPassword"] = func(c *Config) []string { return nonEmpty(c.Socks5ProxyPassword) }
	dumpers["HTTPSProxy"] = func(c *Config) []string { return nonEmpty(c.HTTPSProxy) }
	dumpers["HTTPSProxyAuthenticator"] = func(c *Config) []string { return nonEmpty(c.HTTPSProxyAuthenticator) }
}

// trackedOpt is o, with each line remembered in the load state for the
// positions of finishOutbound's errors.
func trackedOpt(name string, o option) option {
	set := o.set
	o.set = func(c *Config, st *loadState, l torrc.Line, v string) error {
		st.outbound = append(st.outbound, trackedLine{name: name, value: v, line: l})
		return set(c, st, l, v)
	}
	return o
}

// trackedLine is one line of a trackedOpt, in the order applied.
type trackedLine struct {
	name, value string
	line        torrc.Line
}

func socks5Credential(v string) error {
	if len(v) < 1 || len(v) > 255 {
		return errors.New("must be between 1 and 255 characters")
	}
	return nil
}

// crossCheck is a failure of several options together, reported at the
// last line of option opt (with value, for a Bridge line).
type crossCheck struct {
	opt, value string
	err        error
}

// finishOutbound runs the cross checks once every line is applied.
func (st *loadState) finishOutbound(c *Config) []error {
	var errs []error
	for _, cc := range c.outboundChecks() {
		names := []string{cc.opt}
		if cc.opt == "proxy" {
			names = proxyOptionNames
		}
		var at *trackedLine
		for i := range st.outbound {
			tl := &st.outbound[i]
			if slices.Contains(names, tl.name) && (cc.value == "" || tl.value == cc.value) {
				at = tl
			}
		}
		if at == nil {
			errs = append(errs, cc.error())
			continue
		}
		errs = append(errs, &OptionError{File: at.line.File, LineNo: at.line.LineNo, Option: at.name, Msg: cc.err.Error()})
	}
	return errs
}

func (cc crossCheck) error() error {
	if cc.opt == "proxy" {
		return cc.err
	}
	return fmt.Errorf("%s: %w", cc.opt, cc.err)
}

// outboundChecks are the checks of this file's options together, as C
// tor's options_validate makes them (its messages), and the ones gotor
// adds: a transport for every Bridge line that names one (C tor only
// leaves such a bridge unused, with a warning), two bridges never at one
// address, proxy credentials only with their proxy.
func (c *Config) outboundChecks() []crossCheck {
	var out []crossCheck
	if _, err := c.proxyOptions().Dialer(); err != nil {
		out = append(out, crossCheck{opt: "proxy", err: err})
	}
	for name, f := range c.TransportDialers {
		if !pt.ValidName(name) {
			out = append(out, crossCheck{opt: "TransportDialers", err: fmt.Errorf("transport name %q is not a C identifier", name)})
		} else if f == nil {
			out = append(out, crossCheck{opt: "TransportDialers", err: fmt.Errorf("transport %s has a nil TransportDialer", name)})
		}
	}
	if !c.UseBridges {
		return out // Bridge lines are unused, as in C tor
	}
	if len(c.Bridges) == 0 {
		out = append(out, crossCheck{opt: "UseBridges", err: errors.New("if you set UseBridges, you must specify at least one bridge")})
	}
	if len(c.EntryNodes) > 0 {
		out = append(out, crossCheck{opt: "UseBridges", err: errors.New("you cannot set both UseBridges and EntryNodes")})
	}
	if !c.UseEntryGuards {
		out = append(out, crossCheck{opt: "UseBridges", err: errors.New("setting UseBridges requires also setting UseEntryGuards")})
	}
	var plugins []pt.Plugin
	for _, v := range c.ClientTransportPlugins {
		if p, err := pt.ParsePlugin(v); err == nil {
			plugins = append(plugins, p)
		}
	}
	seen := map[string]string{}
	for _, v := range c.Bridges {
		l, err := bridge.ParseLine(v)
		if err != nil {
			continue // reported with its line (or by Validate)
		}
		if prev, dup := seen[l.Addr.String()]; dup {
			out = append(out, crossCheck{opt: "Bridge", value: v, err: fmt.Errorf("%s: same address as %s", l.Name(), prev)})
		}
		seen[l.Addr.String()] = l.Name()
		if l.Transport == "" || c.TransportDialers[l.Transport] != nil {
			continue
		}
		if !slices.ContainsFunc(plugins, func(p pt.Plugin) bool { return p.Provides(l.Transport) }) {
			out = append(out, crossCheck{opt: "Bridge", value: v, err: fmt.Errorf("%s uses transport %s, which no ClientTransportPlugin line (nor TransportDialers) provides", l.Name(), l.Transport)})
		}
	}
	return out
}

// validateOutbound is Validate's part for this file's options.
func (c *Config) validateOutbound() []error {
	var errs []error
	for _, v := range c.Bridges {
		if _, err := bridge.ParseLine(v); err != nil {
			errs = append(errs, err)
		}
	}
	for _, v := range c.ClientTransportPlugins {
		if _, err := pt.ParsePlugin(v); err != nil {
			errs = append(errs, err)
		}
	}
	for _, cc := range c.outboundChecks() {
		errs = append(errs, cc.error())
	}
	return errs
}

// proxyOptions returns the outbound proxy options as the proxy package
// takes them.
func (c *Config) proxyOptions() proxy.Options {
	return proxy.Options{
		Socks4Proxy:             c.Socks4Proxy,
		Socks5Proxy:             c.Socks5Proxy,
		Socks5ProxyUsername:     c.Socks5ProxyUsername,
		Socks5ProxyPassword:     c.Socks5ProxyPassword,
		HTTPSProxy:              c.HTTPSProxy,
		HTTPSProxyAuthenticator: c.HTTPSProxyAuthenticator,
	}
}
