// Directory authorities and fallback directories: dir-spec §5.1
// ("Downloading network-status documents": clients keep a list of
// authorities and fallbacks) and the torrc "DirAuthority" syntax of the
// tor manual. The default lists are C tor's (auth_dirs.inc,
// fallback_dirs.inc).

package dirmgr

import (
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gotor/gotor/internal/netdir"
)

// Authority is a directory authority as configured by a torrc
// "DirAuthority" line.
type Authority struct {
	Nickname    string
	ORPort      uint16
	V3Ident     [20]byte // v3 identity (signs consensuses); zero if absent
	HasV3Ident  bool
	DirAddr     netip.AddrPort // IPv4 address and DirPort
	IPv6        netip.AddrPort // ipv6= ORPort address, if any
	Fingerprint [20]byte       // RSA identity of the relay
	NoV2        bool
	Bridge      bool // bridge authority (not a v3 authority)
	Weight      float64
}

// Relay returns a netdir.Relay describing the authority, for dialing.
func (a *Authority) Relay() *netdir.Relay {
	return &netdir.Relay{
		Nickname: a.Nickname,
		RSAID:    a.Fingerprint,
		Addr:     a.DirAddr.Addr(),
		ORPort:   a.ORPort,
		DirPort:  a.DirAddr.Port(),
		IPv6:     a.IPv6,
		Flags:    netdir.FlagAuthority | netdir.FlagV2Dir | netdir.FlagRunning | netdir.FlagValid,
	}
}

// String returns the authority in torrc syntax.
func (a Authority) String() string {
	var b strings.Builder
	b.WriteString(a.Nickname)
	if a.ORPort != 0 {
		fmt.Fprintf(&b, " orport=%d", a.ORPort)
	}
	if a.Bridge {
		b.WriteString(" bridge")
	}
	if a.NoV2 {
		b.WriteString(" no-v2")
	}
	if a.HasV3Ident {
		fmt.Fprintf(&b, " v3ident=%X", a.V3Ident)
	}
	if a.IPv6.IsValid() {
		fmt.Fprintf(&b, " ipv6=%s", a.IPv6)
	}
	fmt.Fprintf(&b, " %s %X", a.DirAddr, a.Fingerprint)
	return b.String()
}

func parseHex20(s string) ([20]byte, bool) {
	var out [20]byte
	if len(s) != 40 {
		return out, false
	}
	_, err := hex.Decode(out[:], []byte(s))
	return out, err == nil
}

// ParseDirAuthority parses a torrc DirAuthority line:
//
//	[DirAuthority] [nickname] [flags] address:dirport fingerprint
//
// where flags are orport=N, v3ident=HEX, ipv6=[addr]:port, no-v2,
// bridge, hs, no-hs, weight=N, and the fingerprint is 40 hex digits,
// optionally written as ten space-separated groups of four.
func ParseDirAuthority(line string) (Authority, error) {
	var a Authority
	f := strings.Fields(line)
	if len(f) > 0 && strings.EqualFold(f[0], "DirAuthority") {
		f = f[1:]
	}
	if len(f) == 0 {
		return a, fmt.Errorf("dirmgr: empty DirAuthority line")
	}
	i := 0
	if !strings.Contains(f[0], "=") && !strings.Contains(f[0], ":") && !isAuthFlag(f[0]) {
		a.Nickname = f[0]
		i = 1
	}
	for ; i < len(f); i++ {
		tok := f[i]
		k, v, hasEq := strings.Cut(tok, "=")
		if !hasEq {
			if isAuthFlag(tok) {
				switch strings.ToLower(tok) {
				case "no-v2":
					a.NoV2 = true
				case "bridge":
					a.Bridge = true
				}
				continue
			}
			break // address
		}
		switch strings.ToLower(k) {
		case "orport":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				return a, fmt.Errorf("dirmgr: DirAuthority: bad orport %q", v)
			}
			a.ORPort = uint16(n)
		case "v3ident":
			id, ok := parseHex20(v)
			if !ok {
				return a, fmt.Errorf("dirmgr: DirAuthority: bad v3ident %q", v)
			}
			a.V3Ident, a.HasV3Ident = id, true
		case "ipv6":
			ap, err := netip.ParseAddrPort(v)
			if err != nil || !ap.Addr().Is6() {
				return a, fmt.Errorf("dirmgr: DirAuthority: bad ipv6 %q", v)
			}
			a.IPv6 = ap
		case "weight":
			w, err := strconv.ParseFloat(v, 64)
			if err != nil || w < 0 {
				return a, fmt.Errorf("dirmgr: DirAuthority: bad weight %q", v)
			}
			a.Weight = w
		default:
			return a, fmt.Errorf("dirmgr: DirAuthority: unknown flag %q", tok)
		}
	}
	if i >= len(f) {
		return a, fmt.Errorf("dirmgr: DirAuthority: missing address:dirport")
	}
	ap, err := netip.ParseAddrPort(f[i])
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return a, fmt.Errorf("dirmgr: DirAuthority: bad address:dirport %q", f[i])
	}
	a.DirAddr = ap
	fp := strings.Join(f[i+1:], "")
	if len(f[i+1:]) != 1 && len(f[i+1:]) != 10 {
		return a, fmt.Errorf("dirmgr: DirAuthority: fingerprint must be 40 hex digits, optionally in 10 groups of 4")
	}
	if len(f[i+1:]) == 10 {
		for _, g := range f[i+1:] {
			if len(g) != 4 {
				return a, fmt.Errorf("dirmgr: DirAuthority: bad fingerprint group %q", g)
			}
		}
	}
	id, ok := parseHex20(fp)
	if !ok {
		return a, fmt.Errorf("dirmgr: DirAuthority: bad fingerprint %q", fp)
	}
	a.Fingerprint = id
	if a.ORPort == 0 {
		return a, fmt.Errorf("dirmgr: DirAuthority: orport= is required")
	}
	return a, nil
}

func isAuthFlag(s string) bool {
	switch strings.ToLower(s) {
	case "no-v2", "bridge", "hs", "no-hs", "v1", "v2", "v3":
		return true
	}
	return false
}

// The real network's directory authorities, as in C tor's
// src/app/config/auth_dirs.inc of 2024-2026 (tor26 moved to a new
// address and identity in 2024, faravahar returned in 2025), checked
// against the dir-source and router entries of the public consensus of
// 2026-06-27 (../shared/realdocs) and arti's default v3 identities
// (crates/tor-dircommon/src/authority.rs).
var defaultAuthorityLines = []string{
	"moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498",
	"tor26 orport=443 v3ident=2F3DF9CA0E5D36F2685A2DA67184EB8DCB8CBA8C ipv6=[2a02:16a8:662:2203::1]:443 217.196.147.77:80 FAA4 BCA4 A6AC 0FB4 CA2F 8AD5 A11D 9E12 2BA8 94F6",
	"dizum orport=443 v3ident=E8A9C45EDE6D711294FADF8E7951F4DE6CA56B58 45.66.35.11:80 7EA6 EAD6 FD83 083C 538F 4403 8BBF A077 587D D755",
	"Serge orport=9001 bridge 66.111.2.131:9030 BA44 A889 E64B 93FA A2B1 14E0 2C2A 279A 8555 C533",
	"gabelmoo orport=443 v3ident=ED03BB616EB2F60BEC80151114BB25CEF515B226 ipv6=[2001:638:a000:4140::ffff:189]:443 131.188.40.189:80 F204 4413 DAC2 E02E 3D6B CF47 35A1 9BCA 1DE9 7281",
	"dannenberg orport=443 v3ident=0232AF901C31A04EE9848595AF9BB7620D4C5B2E ipv6=[2001:678:558:1000::244]:443 193.23.244.244:80 7BE6 83E6 5D48 1413 21C5 ED92 F075 C553 64AC 7123",
	"maatuska orport=80 v3ident=49015F787433103580E3B66A1707A00E60F2D15B ipv6=[2001:67c:289c::9]:80 171.25.193.9:443 BD6A 8292 55CB 08E6 6FBE 7D37 4836 3586 E46B 3810",
	"longclaw orport=443 v3ident=23D15D965BC35114467363C165C4F724B64B4F66 199.58.81.140:80 74A9 1064 6BCE EFBC D2E8 74FC 1DC9 9743 0F96 8145",
	"bastet orport=443 v3ident=27102BC123E7AF1D4741AE047E160C91ADC76B21 ipv6=[2620:13:4000:6000::1000:118]:443 204.13.164.118:80 24E2 F139 121D 4394 C54B 5BCC 368B 3B41 1857 C413",
	"faravahar orport=443 v3ident=70849B868D606BAECFB6128C5E3D782029AA394F 216.218.219.41:80 E3E4 2D35 F801 C9D5 AB23 584E 0025 D56F E2B3 3396",
}

// DefaultAuthorities returns the Tor network's directory authorities
// (including the bridge authority, which has no v3 identity).
func DefaultAuthorities() []Authority {
	out := make([]Authority, 0, len(defaultAuthorityLines))
	for _, l := range defaultAuthorityLines {
		a, err := ParseDirAuthority(l)
		if err != nil {
			panic("dirmgr: bad built-in authority: " + err.Error())
		}
		out = append(out, a)
	}
	return out
}

// Fallback is a fallback directory mirror (dir-spec §5.1). The built-in
// ones are reached on their ORPort (BEGIN_DIR, so only with a DirDial);
// a torrc FallbackDir line also names a DirPort.
type Fallback struct {
	Addr    netip.AddrPort // IPv4 ORPort
	DirPort uint16         // 0 if unknown
	ID      [20]byte       // RSA identity
	IPv6    netip.AddrPort
}

// Relay returns a netdir.Relay describing the fallback, for dialing.
func (f *Fallback) Relay() *netdir.Relay {
	return &netdir.Relay{
		RSAID:   f.ID,
		Addr:    f.Addr.Addr(),
		ORPort:  f.Addr.Port(),
		DirPort: f.DirPort,
		IPv6:    f.IPv6,
		Flags:   netdir.FlagV2Dir | netdir.FlagRunning | netdir.FlagValid,
	}
}

//go:embed fallback_dirs.txt
var fallbackData string

// ParseFallback parses a fallback: a line of C tor's fallback_dirs.inc,
// "IPv4 orport=N id=HEX [ipv6=[addr]:port]", or a torrc FallbackDir line,
// "[FallbackDir] IPv4:dirport orport=N id=HEX [weight=N] [ipv6=[addr]:port]"
// (tor manual; C tor's parse_dir_fallback_line).
func ParseFallback(line string) (Fallback, error) {
	var fb Fallback
	f := strings.Fields(line)
	if len(f) > 0 && strings.EqualFold(f[0], "FallbackDir") {
		f = f[1:]
	}
	if len(f) < 3 {
		return fb, fmt.Errorf("dirmgr: fallback: too few fields")
	}
	ip, err := netip.ParseAddr(f[0])
	if err != nil {
		ap, perr := netip.ParseAddrPort(f[0])
		if perr != nil || ap.Port() == 0 {
			return fb, fmt.Errorf("dirmgr: fallback: bad address %q", f[0])
		}
		ip, fb.DirPort = ap.Addr(), ap.Port()
	}
	if !ip.Is4() {
		return fb, fmt.Errorf("dirmgr: fallback: bad IPv4 address %q", f[0])
	}
	var port uint64
	for _, tok := range f[1:] {
		k, v, _ := strings.Cut(tok, "=")
		switch strings.ToLower(k) {
		case "orport":
			if port, err = strconv.ParseUint(v, 10, 16); err != nil || port == 0 {
				return fb, fmt.Errorf("dirmgr: fallback: bad orport %q", v)
			}
		case "id":
			id, ok := parseHex20(v)
			if !ok {
				return fb, fmt.Errorf("dirmgr: fallback: bad id %q", v)
			}
			fb.ID = id
		case "ipv6":
			ap, err := netip.ParseAddrPort(v)
			if err != nil || !ap.Addr().Is6() {
				return fb, fmt.Errorf("dirmgr: fallback: bad ipv6 %q", v)
			}
			fb.IPv6 = ap
		case "weight":
			if w, err := strconv.ParseFloat(v, 64); err != nil || w < 0 {
				return fb, fmt.Errorf("dirmgr: fallback: bad weight %q", v)
			}
		default:
			return fb, fmt.Errorf("dirmgr: fallback: unknown field %q", tok)
		}
	}
	if port == 0 || fb.ID == ([20]byte{}) {
		return fb, fmt.Errorf("dirmgr: fallback: orport and id are required")
	}
	fb.Addr = netip.AddrPortFrom(ip, uint16(port))
	return fb, nil
}

// DefaultFallbacks returns the built-in fallback directory mirrors (C
// tor uses them with the built-in authorities only: not when DirAuthority
// lines are set, nor with UseDefaultFallbackDirs 0).
func DefaultFallbacks() []Fallback {
	var out []Fallback
	for l := range strings.SplitSeq(fallbackData, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fb, err := ParseFallback(l)
		if err != nil {
			panic("dirmgr: bad built-in fallback: " + err.Error())
		}
		out = append(out, fb)
	}
	return out
}
