// The torrc options of an outbound proxy (tor(1) Socks4Proxy,
// Socks5Proxy, Socks5ProxyUsername, Socks5ProxyPassword, HTTPSProxy,
// HTTPSProxyAuthenticator), checked as C tor's options_validate does,
// and the TOR_PT_PROXY URI that hands the same proxy to pluggable
// transports (pt-spec §3.2.2; C tor's get_pt_proxy_uri).

package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Options are the proxy options as written in a torrc; empty means unset.
type Options struct {
	Socks4Proxy             string // HOST[:PORT], port 1080 by default
	Socks5Proxy             string // HOST[:PORT], port 1080 by default
	Socks5ProxyUsername     string // 1 to 255 bytes, with Socks5ProxyPassword
	Socks5ProxyPassword     string // 1 to 255 bytes, with Socks5ProxyUsername
	HTTPSProxy              string // HOST[:PORT], port 443 by default
	HTTPSProxyAuthenticator string // USERNAME:PASSWORD, under 512 bytes
}

// Dialer returns the dial function for every connection to a relay or
// bridge: a proxy's DialContext, or nil when no proxy is set. It fails,
// naming the option, when the options are invalid: more than one proxy
// type, a bad address, credentials out of bounds or without their proxy.
func (o Options) Dialer() (DialFunc, error) {
	n := 0
	for _, s := range []string{o.Socks4Proxy, o.Socks5Proxy, o.HTTPSProxy} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("more than one proxy type configured (Socks4Proxy, Socks5Proxy, HTTPSProxy): choose one")
	}
	if o.Socks5ProxyUsername != "" || o.Socks5ProxyPassword != "" {
		if o.Socks5ProxyUsername == "" || o.Socks5ProxyPassword == "" {
			return nil, errors.New("Socks5ProxyUsername and Socks5ProxyPassword must be set together")
		}
		if len(o.Socks5ProxyUsername) > 255 {
			return nil, errors.New("Socks5ProxyUsername must be between 1 and 255 characters")
		}
		if len(o.Socks5ProxyPassword) > 255 {
			return nil, errors.New("Socks5ProxyPassword must be between 1 and 255 characters")
		}
	}
	if len(o.HTTPSProxyAuthenticator) >= 512 {
		return nil, errors.New("HTTPSProxyAuthenticator is too long (512 characters or more)")
	}
	if o.HTTPSProxyAuthenticator != "" && !strings.Contains(o.HTTPSProxyAuthenticator, ":") {
		return nil, errors.New("HTTPSProxyAuthenticator must be USERNAME:PASSWORD")
	}
	switch {
	case o.Socks4Proxy != "":
		addr, err := hostPort(o.Socks4Proxy, 1080)
		if err != nil {
			return nil, fmt.Errorf("Socks4Proxy %q: %v", o.Socks4Proxy, err)
		}
		return (&SOCKS4{Addr: addr}).DialContext, nil
	case o.Socks5Proxy != "":
		addr, err := hostPort(o.Socks5Proxy, 1080)
		if err != nil {
			return nil, fmt.Errorf("Socks5Proxy %q: %v", o.Socks5Proxy, err)
		}
		return (&SOCKS5{Addr: addr, Username: o.Socks5ProxyUsername, Password: o.Socks5ProxyPassword}).DialContext, nil
	case o.HTTPSProxy != "":
		addr, err := hostPort(o.HTTPSProxy, 443)
		if err != nil {
			return nil, fmt.Errorf("HTTPSProxy %q: %v", o.HTTPSProxy, err)
		}
		return (&HTTPS{Addr: addr, Authenticator: o.HTTPSProxyAuthenticator}).DialContext, nil
	}
	if o.Socks5ProxyUsername != "" {
		return nil, errors.New("Socks5ProxyUsername set without Socks5Proxy")
	}
	if o.HTTPSProxyAuthenticator != "" {
		return nil, errors.New("HTTPSProxyAuthenticator set without HTTPSProxy")
	}
	return nil, nil
}

// PTProxyURI is the TOR_PT_PROXY value for the options ("" when no proxy
// is set): socks4a://HOST:PORT, socks5://[USER:PASS@]HOST:PORT or
// http://[USER:PASS@]HOST:PORT, credentials percent-encoded (C tor writes
// them raw, which breaks on '@' or ':' in a password). Call Dialer first
// to validate the options.
func (o Options) PTProxyURI() string {
	var u url.URL
	var err error
	switch {
	case o.Socks4Proxy != "":
		u.Scheme = "socks4a"
		u.Host, err = hostPort(o.Socks4Proxy, 1080)
	case o.Socks5Proxy != "":
		u.Scheme = "socks5"
		u.Host, err = hostPort(o.Socks5Proxy, 1080)
		if o.Socks5ProxyUsername != "" {
			u.User = url.UserPassword(o.Socks5ProxyUsername, o.Socks5ProxyPassword)
		}
	case o.HTTPSProxy != "":
		u.Scheme = "http"
		u.Host, err = hostPort(o.HTTPSProxy, 443)
		if user, pass, ok := strings.Cut(o.HTTPSProxyAuthenticator, ":"); ok {
			u.User = url.UserPassword(user, pass)
		}
	default:
		return ""
	}
	if err != nil {
		return ""
	}
	return u.String()
}

// Addr checks the value of one proxy option (Socks4Proxy, Socks5Proxy or
// HTTPSProxy) and returns the HOST:PORT it names, with the option's
// default port (1080, 1080, 443) when it gives none.
func Addr(option, value string) (string, error) {
	switch option {
	case "Socks4Proxy", "Socks5Proxy":
		return hostPort(value, 1080)
	case "HTTPSProxy":
		return hostPort(value, 443)
	}
	return "", fmt.Errorf("%s is not a proxy option", option)
}

// hostPort parses HOST, HOST:PORT, [IPv6]:PORT or a bare IPv6 address,
// giving def as the port when there is none (or it is 0, as C tor).
func hostPort(s string, def int) (string, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a host name, an IPv4 address or an IPv6 address
		// with or without brackets.
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		portStr = ""
	}
	if host == "" || strings.ContainsAny(host, " \t/@[]") {
		return "", errors.New("want HOST[:PORT]")
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", errors.New("want HOST[:PORT] (an IPv6 address in brackets)")
		}
	}
	port := def
	if portStr != "" {
		p, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return "", fmt.Errorf("bad port %q", portStr)
		}
		if p != 0 {
			port = int(p)
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}
