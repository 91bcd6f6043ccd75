// Onion service commands of a client: control-spec §3.26 HSFETCH (the
// answers are HS_DESC and HS_DESC_CONTENT events, §4.1.25-26), §3.30
// ONION_CLIENT_AUTH_ADD, §3.31 ONION_CLIENT_AUTH_REMOVE, §3.32
// ONION_CLIENT_AUTH_VIEW, with the replies of C tor's
// handle_control_hsfetch and control_hs.c.
package control

import (
	"encoding/base64"
	"slices"
	"strings"

	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// validV3Address reports whether s is a v3 onion address as C tor's
// hs_address_is_valid takes it: 56 base32 characters with a valid
// checksum and version, no ".onion".
func validV3Address(s string) bool {
	if len(s) != 56 {
		return false
	}
	_, err := hscrypto.ParseAddress(s + ".onion")
	return err == nil
}

// relayID returns the upper-case fingerprint of "$HEX", "HEX", "HEX~nick"
// or "HEX=nick", or "" if s is none of those (C tor's node_get_by_hex_id).
func relayID(s string) string {
	s = strings.TrimPrefix(s, "$")
	if i := strings.IndexAny(s, "~="); i >= 0 {
		s = s[:i]
	}
	if len(s) != 40 || !isAllHex(s) {
		return ""
	}
	return strings.ToUpper(s)
}

func (c *conn) cmdHSFetch(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{min: 1, max: 1, keywords: true, allowed: []string{"SERVER"}})
	if err != nil {
		return c.bad(err, cmd)
	}
	addr := p.pos[0]
	if !validV3Address(addr) {
		c.writeLine(513, "Invalid argument "+quote(addr))
		return true
	}
	var servers []string
	for _, a := range p.kw {
		fp := relayID(a.Value)
		if fp != "" {
			if _, err := c.s.b.NSByID(fp); err != nil {
				fp = ""
			}
		}
		if fp == "" {
			c.writeLine(552, "Server "+quote(a.Value)+" not found")
			return true
		}
		servers = append(servers, fp)
	}
	// The reply comes before the HS_DESC events (C tor: "to avoid out of
	// order replies").
	c.writeLine(250, "OK")
	if err := c.s.b.HSFetch(addr, servers); err != nil {
		c.s.log.Warn("control: HSFETCH", "err", err)
	}
	return true
}

// clientNameMax is C tor's REND_CLIENTNAME_MAX_LEN.
const clientNameMax = 16

func (c *conn) cmdOnionClientAuthAdd(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{max: 2, keywords: true})
	if err != nil {
		return c.bad(err, cmd)
	}
	if len(p.pos) < 2 {
		c.writeLine(512, "Incomplete ONION_CLIENT_AUTH_ADD command")
		return true
	}
	a := ClientAuth{Address: p.pos[0]}
	if !validV3Address(a.Address) {
		c.writeLine(512, "Invalid v3 address "+quote(a.Address))
		return true
	}
	var parts []string
	for _, f := range strings.Split(p.pos[1], ":") {
		if f != "" {
			parts = append(parts, f)
		}
	}
	if len(parts) != 2 {
		c.writeLine(512, "Invalid key type/blob")
		return true
	}
	if !strings.EqualFold(parts[0], "x25519") {
		c.writeLine(552, "Unrecognized key type "+quote(parts[0]))
		return true
	}
	key, err := base64.StdEncoding.DecodeString(parts[1])
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(parts[1])
	}
	if err != nil || len(key) != len(a.Key) {
		c.writeLine(512, "Failed to decode x25519 private key")
		return true
	}
	copy(a.Key[:], key)
	if a.Key == ([32]byte{}) {
		c.writeLine(553, "Invalid private key "+quote(parts[1]))
		return true
	}
	for _, kv := range p.kw {
		switch {
		case len(kv.Key) >= 5 && strings.EqualFold(kv.Key[:5], "Flags"):
			var flags []string
			for _, f := range strings.Split(kv.Value, ",") {
				if f != "" {
					flags = append(flags, f)
				}
			}
			if len(flags) == 0 {
				c.writeLine(512, "Invalid 'Flags' argument")
				return true
			}
			for _, f := range flags {
				if !strings.EqualFold(f, "Permanent") {
					c.writeLine(512, "Invalid 'Flags' argument: "+quote(f))
					return true
				}
				a.Permanent = true
			}
		case strings.EqualFold(kv.Key, "ClientName"):
			if len(kv.Value) > clientNameMax {
				c.writeLine(512, "ClientName longer than 16 chars")
				return true
			}
			a.Name = kv.Value
		}
	}
	replaced, err := c.s.b.OnionClientAuthAdd(a)
	switch {
	case err != nil:
		c.s.log.Warn("control: ONION_CLIENT_AUTH_ADD", "err", err)
		c.writeLine(553, "Unable to store creds for "+quote(a.Address))
	case replaced:
		c.writeLine(251, "Client for onion existed and replaced")
	default:
		c.writeLine(250, "OK")
	}
	return true
}

func (c *conn) cmdOnionClientAuthRemove(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{max: 1, keywords: true})
	if err != nil {
		return c.bad(err, cmd)
	}
	if len(p.pos) < 1 {
		c.writeLine(512, "Incomplete ONION_CLIENT_AUTH_REMOVE command")
		return true
	}
	addr := p.pos[0]
	if !validV3Address(addr) {
		c.writeLine(512, "Invalid v3 address "+quote(addr))
		return true
	}
	removed, err := c.s.b.OnionClientAuthRemove(addr)
	switch {
	case err != nil:
		c.writeLine(551, oneLine(err.Error()))
	case !removed:
		c.writeLine(251, "No credentials for "+quote(addr))
	default:
		c.writeLine(250, "OK")
	}
	return true
}

func (c *conn) cmdOnionClientAuthView(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{max: 1, keywords: true})
	if err != nil {
		return c.bad(err, cmd)
	}
	addr := ""
	if len(p.pos) == 1 {
		addr = p.pos[0]
		if !validV3Address(addr) {
			c.writeLine(512, "Invalid v3 address "+quote(addr))
			return true
		}
	}
	creds, err := c.s.b.OnionClientAuthView(addr)
	if err != nil {
		c.writeLine(551, oneLine(err.Error()))
		return true
	}
	head := "ONION_CLIENT_AUTH_VIEW"
	if addr != "" {
		head += " " + addr
	}
	var lines []string
	for _, a := range creds {
		if addr != "" && a.Address != addr {
			continue
		}
		l := "CLIENT " + a.Address + " x25519:" + base64.StdEncoding.EncodeToString(a.Key[:])
		if a.Permanent {
			l += " Flags=Permanent"
		}
		if a.Name != "" {
			l += " ClientName=" + a.Name
		}
		lines = append(lines, l)
	}
	slices.Sort(lines) // C tor sorts them for a stable order
	r := newReply(250).Line(head)
	for _, l := range lines {
		r.Line(l)
	}
	c.write(r.Line("OK").Bytes())
	return true
}
