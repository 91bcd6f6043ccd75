// Address mappings: control-spec §3.8 MAPADDRESS and §3.20 RESOLVE, with
// the replies of C tor's handle_control_mapaddress and
// handle_control_resolve; the answers of RESOLVE and new mappings come
// as ADDRMAP events (§4.1.7, format.go), the mappings in force through
// GETINFO address-mappings/* (§3.9).
package control

import (
	"errors"
	"net/netip"
	"strings"
)

// validDestination reports whether addr may be a MAPADDRESS target (C
// tor's address_is_invalid_destination for a client): an IP address
// (IPv6 in brackets or not) or a host name of letters, digits, '-', '_'
// and '.', optionally with a "*." wildcard prefix.
func validDestination(addr string) bool {
	addr = strings.TrimPrefix(addr, "*.")
	if addr == "" || len(addr) > 255 {
		return false
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")); err == nil {
		return true
	}
	for i := 0; i < len(addr); i++ {
		b := addr[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

func (c *conn) cmdMapAddress(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{keywords: true})
	if err != nil {
		return c.bad(err, cmd)
	}
	var lines []string
	for _, a := range p.kw {
		from, to := a.Key, a.Value
		if !validDestination(to) {
			lines = append(lines, "512-syntax error: invalid address '"+to+"'")
			continue
		}
		got, err := c.s.b.MapAddress(from, to)
		switch {
		case err == nil:
			lines = append(lines, "250-"+got+"="+to)
		case from == "." || from == "0.0.0.0" || from == "::" || !errors.Is(err, ErrInvalidValue):
			lines = append(lines, "451-resource exhausted: skipping '"+from+"="+to+"'")
		default:
			lines = append(lines, "512-syntax error: invalid address mapping  '"+from+"="+to+"': "+oneLine(err.Error()))
		}
	}
	if len(lines) == 0 {
		c.writeLine(512, "syntax error: not enough arguments to mapaddress.")
		return true
	}
	// MAPADDRESS replies may mix codes; the last line ends the reply.
	last := lines[len(lines)-1]
	lines[len(lines)-1] = last[:3] + " " + last[4:]
	c.write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
	return true
}

func (c *conn) cmdResolve(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{keywords: true, flags: true})
	if err != nil {
		return c.bad(err, cmd)
	}
	reverse := false
	if v, ok := p.get("mode"); ok && strings.EqualFold(v, "reverse") {
		reverse = true
	}
	var names []string
	for _, a := range p.kw {
		if !a.HasEq { // other keyword arguments are ignored, as in C tor
			names = append(names, a.Key)
		}
	}
	c.s.mu.Lock()
	listening := c.events[EventAddrMap]
	c.s.mu.Unlock()
	if !listening && len(names) > 0 {
		c.s.log.Warn("Controller asked us to resolve an address, but isn't listening for ADDRMAP events.  It probably won't see the answer.")
	}
	// Reply first: the answers are events.
	c.writeLine(250, "OK")
	if len(names) > 0 {
		if err := c.s.b.Resolve(names, reverse); err != nil {
			c.s.log.Warn("control: RESOLVE", "err", err)
		}
	}
	return true
}

// addressMappings answers GETINFO address-mappings/KIND: "from to
// expiry" lines, expiry as a quoted local ISOTime or NEVER (C tor's
// addressmap_get_mappings).
func (c *conn) addressMappings(kind string) (string, error) {
	switch kind {
	case "all", "config", "cache", "control":
	default:
		return "", errUnknownInfo
	}
	var lines []string
	for _, m := range c.s.b.AddressMappings(kind) {
		exp := "NEVER"
		if !m.Expires.IsZero() {
			exp = quote(m.Expires.Local().Format(isoTime))
		}
		lines = append(lines, m.From+" "+m.To+" "+exp)
	}
	return strings.Join(lines, "\n"), nil
}
