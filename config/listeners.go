package config

// Control and metrics listener addresses (tor(1) ControlPort, MetricsPort):
// parsed once here, used as they are by the engine.

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ControlPortConfig is one ControlPort listener: a TCP address or a Unix
// socket.
type ControlPortConfig struct {
	// Addr is "host:port" for a TCP listener; port 0 picks a free port
	// (torrc "auto"). Empty for a Unix socket.
	Addr string
	// Unix is the socket path of "unix:PATH"; empty for TCP.
	Unix string
	// GroupWritable makes a Unix socket 0660 instead of 0600 (the
	// GroupWritable flag, or ControlSocketsGroupWritable).
	GroupWritable bool
}

// String returns the torrc value of p.
func (p ControlPortConfig) String() string {
	if p.Unix != "" {
		s := "unix:" + p.Unix
		if strings.ContainsAny(p.Unix, " \t") {
			s = `unix:"` + p.Unix + `"`
		}
		if p.GroupWritable {
			s += " GroupWritable"
		}
		return s
	}
	return p.Addr
}

func (p ControlPortConfig) validate() error {
	switch {
	case p.Unix != "" && p.Addr != "":
		return fmt.Errorf("both Addr %q and Unix %q set", p.Addr, p.Unix)
	case p.Unix != "":
		return nil
	}
	_, err := ParseListenAddr(p.Addr, "127.0.0.1")
	return err
}

// parseControlPort parses a torrc ControlPort value ("9051",
// "127.0.0.1:9051", "auto", "unix:PATH" with flags). ok is false for "0"
// (no listener).
func parseControlPort(v string) (p ControlPortConfig, ok bool, err error) {
	f := strings.Fields(v)
	if len(f) == 0 || f[0] == "0" {
		return p, false, nil
	}
	addr := f[0]
	flags := f[1:]
	if strings.HasPrefix(addr, "unix:") {
		rest := strings.TrimPrefix(strings.TrimSpace(v), "unix:")
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return p, false, fmt.Errorf("unterminated quoted path in %q", v)
			}
			p.Unix = rest[1 : end+1]
			flags = strings.Fields(rest[end+2:])
		} else {
			p.Unix = addr[len("unix:"):]
		}
		if p.Unix == "" {
			return p, false, fmt.Errorf("empty socket path in %q", v)
		}
	} else {
		a, err := ParseListenAddr(addr, "127.0.0.1")
		if err != nil {
			return p, false, err
		}
		p.Addr = a
	}
	for _, fl := range flags {
		switch strings.ToLower(fl) {
		case "groupwritable":
			p.GroupWritable = true
		case "worldwritable", "relaxdirmodecheck":
			return p, false, fmt.Errorf("ControlPort flag %s is not supported by gotor", fl)
		default:
			return p, false, fmt.Errorf("unknown ControlPort flag %q", fl)
		}
	}
	return p, true, nil
}

// ParseListenAddr turns a torrc listener value ("9051", "auto",
// "HOST:PORT", "HOST:auto") into "IP:PORT", defHost standing for a bare
// port; port 0 means any free port. "localhost" is 127.0.0.1.
func ParseListenAddr(s, defHost string) (string, error) {
	if strings.EqualFold(s, "auto") {
		return net.JoinHostPort(defHost, "0"), nil
	}
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return net.JoinHostPort(defHost, strconv.FormatUint(n, 10)), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("cannot parse address %q", s)
	}
	if strings.EqualFold(port, "auto") {
		port = "0"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Errorf("bad port in %q", s)
	}
	if n == 0 && port != "0" {
		return "", fmt.Errorf("address %q has no port", s)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("address %q is not an IP address", host)
	}
	return net.JoinHostPort(a.String(), strconv.FormatUint(n, 10)), nil
}
