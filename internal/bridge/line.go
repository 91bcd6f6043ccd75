// Package bridge is what a client needs to use bridges (tor(1) "Bridge",
// "UseBridges"; guard-spec §2 "UseBridges"; C tor's bridges.c): the
// Bridge torrc line, and fetching and checking a bridge's own descriptor.
//
// Files: line.go (the Bridge line, C tor's parse_bridge_line);
// dial.go (channels to bridges only, through their transport or the
// outbound proxy); descriptor.go (a bridge's own descriptor over
// BEGIN_DIR, and the bridge as a guard relay); verify.go (the
// descriptor's signatures and identities).
package bridge

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gotor/gotor/internal/pt"
)

// DefaultPort is the port of a Bridge line without one (C tor parses the
// address with a default port of 443).
const DefaultPort = 443

// Line is one Bridge line:
//
//	Bridge [TRANSPORT] ADDR[:PORT] [FINGERPRINT] [k=v ...]
type Line struct {
	// Transport is the pluggable transport's name; "" for a plain bridge
	// reached directly at its ORPort.
	Transport string
	// Addr is the address the client connects to (through Transport, if
	// set): the bridge's ORPort or its transport's listener.
	Addr netip.AddrPort
	// Fingerprint is the bridge's RSA identity digest, if the line gives
	// it (HasFingerprint). Without it the client accepts whatever
	// identity the bridge proves it has.
	Fingerprint    [20]byte
	HasFingerprint bool
	// Args are the transport's arguments (only with a Transport).
	Args pt.Args
}

// ParseLine parses the value of a Bridge line. As C tor does: the
// first item is a transport name when it is a C identifier; ADDR is an IP
// address (IPv6 in brackets), the port defaults to 443; without a
// transport the rest of the line is the fingerprint, which may be written
// in groups separated by spaces; with one, the fingerprint is a single
// item and k=v arguments follow it, at most pt.MaxEncodedArgs bytes
// encoded.
func ParseLine(value string) (Line, error) {
	f := strings.Fields(value)
	if len(f) == 0 {
		return Line{}, fmt.Errorf("Bridge: empty line (want [TRANSPORT] ADDR:PORT [FINGERPRINT] [k=v ...])")
	}
	var l Line
	if pt.ValidName(f[0]) {
		l.Transport = f[0]
		f = f[1:]
		if len(f) == 0 {
			return Line{}, fmt.Errorf("Bridge: transport %s without an address", l.Transport)
		}
	}
	ap, err := parseAddrPort(f[0])
	if err != nil {
		return Line{}, fmt.Errorf("Bridge: address %q: %v", f[0], err)
	}
	l.Addr = ap
	f = f[1:]

	var fp string
	if l.Transport == "" {
		for _, x := range f {
			if strings.Contains(x, "=") {
				return Line{}, fmt.Errorf("Bridge: %q: k=v arguments are for a pluggable transport, and this line names none", x)
			}
		}
		fp = strings.Join(f, "")
		f = nil
	} else if len(f) > 0 && !strings.Contains(f[0], "=") {
		fp = f[0]
		f = f[1:]
	}
	if fp != "" {
		if len(fp) != 40 {
			return Line{}, fmt.Errorf("Bridge: fingerprint %q is not 40 hex digits", fp)
		}
		if _, err := hex.Decode(l.Fingerprint[:], []byte(fp)); err != nil {
			return Line{}, fmt.Errorf("Bridge: fingerprint %q is not 40 hex digits", fp)
		}
		l.HasFingerprint = true
	}
	for _, x := range f {
		a, err := pt.ParseArg(x)
		if err != nil {
			return Line{}, fmt.Errorf("Bridge: %v", err)
		}
		l.Args = append(l.Args, a)
	}
	if n := len(l.Args.Encode()); n > pt.MaxEncodedArgs {
		return Line{}, fmt.Errorf("Bridge: the transport arguments are %d bytes encoded, more than the %d C tor allows (they travel in the SOCKS5 username and password)", n, pt.MaxEncodedArgs)
	}
	return l, nil
}

// parseAddrPort parses IP:PORT, [IPv6]:PORT, or an IP without a port.
func parseAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("port 0")
		}
		if ap.Addr().Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("zoned IPv6 address")
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("not an IP address with an optional port (host names are not allowed)")
	}
	return netip.AddrPortFrom(ip.Unmap(), DefaultPort), nil
}

// String gives the line's value back, as in a torrc.
func (l Line) String() string {
	var parts []string
	if l.Transport != "" {
		parts = append(parts, l.Transport)
	}
	parts = append(parts, l.Addr.String())
	if l.HasFingerprint {
		parts = append(parts, l.FingerprintHex())
	}
	if len(l.Args) > 0 {
		parts = append(parts, l.Args.String())
	}
	return strings.Join(parts, " ")
}

// FingerprintHex is the fingerprint as 40 upper-case hex digits ("" if
// the line has none).
func (l Line) FingerprintHex() string {
	if !l.HasFingerprint {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString(l.Fingerprint[:]))
}

// Name names the bridge in errors and logs: by fingerprint when the line
// has one (its address and arguments are secrets worth keeping out of
// logs), else by address, with its transport.
func (l Line) Name() string {
	s := "bridge "
	if l.HasFingerprint {
		s += "$" + l.FingerprintHex()
	} else {
		s += l.Addr.String()
	}
	if l.Transport != "" {
		s += " (" + l.Transport + ")"
	}
	return s
}
