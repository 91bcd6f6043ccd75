// Server descriptors: dir-spec §2.1.1 ("Server descriptor format"). Only
// the fields a client may need are extracted; the router's signatures
// are not checked here (clients use microdescriptors, whose integrity
// comes from the signed consensus).

package netdoc

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PolicyRule is one "accept"/"reject" exit-policy line.
type PolicyRule struct {
	Accept  bool
	Pattern string // addrspec:portspec as written
	IPv6    bool   // from accept6/reject6
}

// ServerDesc is a parsed server descriptor.
type ServerDesc struct {
	Nickname string
	Addr     netip.Addr
	ORPort   uint16
	DirPort  uint16

	IdentityEd25519Cert []byte // "identity-ed25519" ED25519 CERT object
	MasterKeyEd25519    [32]byte
	HasMasterKey        bool
	Fingerprint         [20]byte
	HasFingerprint      bool
	NtorOnionKey        [32]byte
	Platform            string
	Contact             string // free text, UTF-8
	Protocols           string
	Published           time.Time

	BandwidthAvg, BandwidthBurst, BandwidthObserved uint64

	Family     []string
	ExitPolicy []PolicyRule
	IPv6       []netip.AddrPort // or-address lines
}

// ParseServerDesc parses one server descriptor.
func ParseServerDesc(src string) (*ServerDesc, error) {
	const doc = "server descriptor"
	t := NewTokenizer(doc, src)
	it, ok := t.Next()
	if !ok {
		if t.Err() != nil {
			return nil, t.Err()
		}
		return nil, errf(doc, 0, "empty document")
	}
	if it.Keyword != "router" {
		return nil, errf(doc, it.Line, "first item must be router, got %q", it.Keyword)
	}
	if len(it.Args) < 5 {
		return nil, errf(doc, it.Line, "router needs 5 arguments")
	}
	d := &ServerDesc{Nickname: it.Args[0]}
	ip, err := netip.ParseAddr(it.Args[1])
	if err != nil || !ip.Is4() {
		return nil, errf(doc, it.Line, "router: bad IPv4 address")
	}
	d.Addr = ip
	var ok1, ok2 bool
	d.ORPort, ok1 = parsePort(it.Args[2])
	d.DirPort, ok2 = parsePort(it.Args[4])
	if !ok1 || !ok2 {
		return nil, errf(doc, it.Line, "router: bad port")
	}
	seen := map[string]bool{}
	sawSig := false
	for {
		it, ok := t.Next()
		if !ok {
			break
		}
		switch it.Keyword {
		case "router":
			return nil, errf(doc, it.Line, "router not at start")
		case "identity-ed25519", "master-key-ed25519", "bandwidth", "platform", "published",
			"fingerprint", "ntor-onion-key", "family", "proto", "contact", "router-signature":
			if seen[it.Keyword] {
				return nil, errf(doc, it.Line, "%s appears more than once", it.Keyword)
			}
			seen[it.Keyword] = true
		}
		if sawSig {
			return nil, errf(doc, it.Line, "item after router-signature")
		}
		switch it.Keyword {
		case "identity-ed25519":
			if it.Object == nil || it.Object.Label != "ED25519 CERT" {
				return nil, errf(doc, it.Line, "identity-ed25519: missing ED25519 CERT object")
			}
			d.IdentityEd25519Cert = it.Object.Data
		case "master-key-ed25519":
			if err := decodeFixed(d.MasterKeyEd25519[:], it.Arg(0)); err != nil {
				return nil, errf(doc, it.Line, "master-key-ed25519: %v", err)
			}
			d.HasMasterKey = true
		case "bandwidth":
			if len(it.Args) < 3 {
				return nil, errf(doc, it.Line, "bandwidth needs 3 arguments")
			}
			var e [3]error
			d.BandwidthAvg, e[0] = strconv.ParseUint(it.Args[0], 10, 64)
			d.BandwidthBurst, e[1] = strconv.ParseUint(it.Args[1], 10, 64)
			d.BandwidthObserved, e[2] = strconv.ParseUint(it.Args[2], 10, 64)
			if e[0] != nil || e[1] != nil || e[2] != nil {
				return nil, errf(doc, it.Line, "bandwidth: bad number")
			}
		case "platform":
			d.Platform = strings.Join(it.Args, " ")
		case "contact":
			d.Contact = strings.Join(it.Args, " ")
		case "proto":
			d.Protocols = strings.Join(it.Args, " ")
		case "published":
			if d.Published, err = parseTime2(doc, &it, 0); err != nil {
				return nil, err
			}
		case "fingerprint":
			if !parseHexID(d.Fingerprint[:], strings.Join(it.Args, "")) {
				return nil, errf(doc, it.Line, "fingerprint: bad hex")
			}
			d.HasFingerprint = true
		case "ntor-onion-key":
			if err := decodeFixed(d.NtorOnionKey[:], it.Arg(0)); err != nil {
				return nil, errf(doc, it.Line, "ntor-onion-key: %v", err)
			}
		case "family":
			d.Family = it.Args
		case "or-address":
			ap, err := netip.ParseAddrPort(it.Arg(0))
			if err != nil {
				return nil, errf(doc, it.Line, "or-address: bad address")
			}
			d.IPv6 = append(d.IPv6, ap)
		case "accept", "reject", "accept6", "reject6":
			if len(it.Args) < 1 {
				return nil, errf(doc, it.Line, "%s needs an argument", it.Keyword)
			}
			d.ExitPolicy = append(d.ExitPolicy, PolicyRule{
				Accept:  strings.HasPrefix(it.Keyword, "accept"),
				Pattern: it.Args[0],
				IPv6:    strings.HasSuffix(it.Keyword, "6"),
			})
		case "router-signature":
			if it.Object == nil || it.Object.Label != "SIGNATURE" {
				return nil, errf(doc, it.Line, "router-signature: missing SIGNATURE object")
			}
			sawSig = true
		}
	}
	if err := t.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"bandwidth", "published", "router-signature"} {
		if !seen[k] {
			return nil, errf(doc, 0, "missing required item %q", k)
		}
	}
	return d, nil
}

// ParseServerDescs parses concatenated server descriptors (as served at
// /tor/server/...). It returns the descriptors parsed before the first
// error, and that error; line numbers count from the start of src.
func ParseServerDescs(src string) ([]*ServerDesc, error) {
	var out []*ServerDesc
	line := 1
	for len(strings.TrimSpace(src)) > 0 {
		end := len(src)
		if i := strings.Index(src, "\nrouter "); i >= 0 {
			end = i + 1
		}
		d, err := ParseServerDesc(src[:end])
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Line > 0 {
				e.Line += line - 1
			}
			return out, err
		}
		out = append(out, d)
		line += strings.Count(src[:end], "\n")
		src = src[end:]
	}
	return out, nil
}
