// The ClientTransportPlugin torrc option (tor(1); C tor's
// pt_parse_transport_line):
//
//	ClientTransportPlugin TRANSPORT[,TRANSPORT...] exec PATH [ARGS...]
//	ClientTransportPlugin TRANSPORT socks4|socks5 ADDR:PORT

package pt

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Plugin is one ClientTransportPlugin line: either a managed transport
// (a program gotor starts, Path set) or an external one already listening
// (Protocol and Addr set).
type Plugin struct {
	// Transports are the transport names the line provides.
	Transports []string

	// Path and Args are the program of a managed transport ("exec") and
	// its arguments.
	Path string
	Args []string

	// Protocol ("socks4" or "socks5") and Addr (HOST:PORT) are the
	// listener of an external transport.
	Protocol string
	Addr     string
}

// Managed reports whether gotor starts the transport itself ("exec").
func (p Plugin) Managed() bool { return p.Path != "" }

// Provides reports whether the line provides the named transport.
func (p Plugin) Provides(transport string) bool {
	for _, t := range p.Transports {
		if t == transport {
			return true
		}
	}
	return false
}

// String gives the line's value back, as in a torrc.
func (p Plugin) String() string {
	s := strings.Join(p.Transports, ",")
	if p.Managed() {
		return strings.Join(append([]string{s, "exec", p.Path}, p.Args...), " ")
	}
	return s + " " + p.Protocol + " " + p.Addr
}

// ParsePlugin parses the value of a ClientTransportPlugin line. Like C
// tor it accepts several comma-separated transports for "exec" but one
// only for an external transport, and requires a port.
func ParsePlugin(value string) (Plugin, error) {
	f := strings.Fields(value)
	if len(f) < 3 {
		return Plugin{}, fmt.Errorf("ClientTransportPlugin: too few arguments in %q (want TRANSPORT exec PATH [ARGS] or TRANSPORT socks5 ADDR:PORT)", value)
	}
	var p Plugin
	for _, t := range strings.Split(f[0], ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !ValidName(t) {
			return Plugin{}, fmt.Errorf("ClientTransportPlugin: transport name %q is not a C identifier", t)
		}
		p.Transports = append(p.Transports, t)
	}
	if len(p.Transports) == 0 {
		return Plugin{}, fmt.Errorf("ClientTransportPlugin: no transport name in %q", value)
	}
	switch f[1] {
	case "exec":
		p.Path = f[2]
		p.Args = f[3:]
	case "socks4", "socks5":
		if len(p.Transports) != 1 {
			return Plugin{}, fmt.Errorf("ClientTransportPlugin: an external (%s) transport provides one transport, not %d", f[1], len(p.Transports))
		}
		if len(f) != 3 {
			return Plugin{}, fmt.Errorf("ClientTransportPlugin: unexpected %q after %s ADDR:PORT", strings.Join(f[3:], " "), f[1])
		}
		if err := checkHostPort(f[2]); err != nil {
			return Plugin{}, fmt.Errorf("ClientTransportPlugin: transport address %q: %v", f[2], err)
		}
		p.Protocol, p.Addr = f[1], f[2]
	default:
		return Plugin{}, fmt.Errorf("ClientTransportPlugin: unknown type %q (want exec, socks4 or socks5)", f[1])
	}
	return p, nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("no host")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
