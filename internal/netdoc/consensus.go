// Network-status consensus documents, microdesc and ns flavours:
// dir-spec §3.4.1 ("Vote and consensus status document formats"),
// §3.9.1 ("ns consensus") and §3.9.2 ("Microdescriptor consensus").
// Signature items follow dir-spec §1.3 with the consensus exception of
// §3.4.1: the signed digest runs through the space after
// "directory-signature".

package netdoc

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

// Consensus flavours.
const (
	FlavorNS        = "ns"
	FlavorMicrodesc = "microdesc"
)

// DirSource is one "dir-source" entry of a consensus, with its contact
// and vote digest.
type DirSource struct {
	Nickname   string
	Identity   [20]byte // v3 identity fingerprint
	Address    string
	IP         netip.Addr
	DirPort    uint16
	ORPort     uint16
	Contact    string
	VoteDigest string
}

// RouterStatus is one router entry of a consensus.
type RouterStatus struct {
	Nickname  string
	Identity  [20]byte
	Digest    [20]byte // ns flavour: server descriptor digest
	Published time.Time
	Addr      netip.Addr
	ORPort    uint16
	DirPort   uint16
	IPv6      netip.AddrPort // first "a" line with an IPv6 address

	Flags        netdir.Flags
	Version      string
	Protocols    string
	Bandwidth    uint32
	HasBandwidth bool
	Unmeasured   bool
	ExitSummary  netdir.PortPolicy // ns flavour "p" line

	MicrodescDigest [32]byte // microdesc flavour "m" line
	HasMicrodesc    bool
}

// Signature is a "directory-signature" item.
type Signature struct {
	Algorithm        string // "sha1" or "sha256"
	Identity         [20]byte
	SigningKeyDigest [20]byte
	Signature        []byte
	Line             int
}

// Consensus is a parsed network-status consensus.
type Consensus struct {
	Flavor          string
	ConsensusMethod int
	ValidAfter      time.Time
	FreshUntil      time.Time
	ValidUntil      time.Time
	VoteSeconds     int
	DistSeconds     int

	ClientVersions             []string
	ServerVersions             []string
	KnownFlags                 []string
	RecommendedClientProtocols string
	RequiredClientProtocols    string
	RecommendedRelayProtocols  string
	RequiredRelayProtocols     string
	Params                     map[string]int32

	SharedRandPrevious []byte
	SharedRandCurrent  []byte

	Sources []DirSource
	Routers []RouterStatus

	BandwidthWeights map[string]int64
	Signatures       []Signature

	// Digests of the signed portion: from "network-status-version"
	// through the space after the first "directory-signature".
	SHA1Digest   [20]byte
	SHA256Digest [32]byte
	// SHA3Digest of the same signed portion names the consensus in
	// consensus diffs (dir-spec §4.5).
	SHA3Digest [32]byte
}

const timeLayout = "2006-01-02 15:04:05"

func parseTime2(doc string, it *Item, i int) (time.Time, error) {
	if len(it.Args) < i+2 {
		return time.Time{}, errf(doc, it.Line, "%s: missing date and time", it.Keyword)
	}
	t, err := time.Parse(timeLayout, it.Args[i]+" "+it.Args[i+1])
	if err != nil {
		return time.Time{}, errf(doc, it.Line, "%s: bad time: %v", it.Keyword, err)
	}
	return t, nil
}

func parseHexID(dst []byte, s string) bool {
	if hex.DecodedLen(len(s)) != len(dst) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// ParseKV parses "k=v" int arguments (params, bandwidth-weights lines).
func parseKVInts(doc string, it *Item, bits int) (map[string]int64, error) {
	m := make(map[string]int64, len(it.Args))
	for _, a := range it.Args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, errf(doc, it.Line, "%s: malformed entry %q", it.Keyword, truncate(a))
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return nil, errf(doc, it.Line, "%s: bad value for %s: %v", it.Keyword, k, err)
		}
		m[k] = n
	}
	return m, nil
}

func parsePort(s string) (uint16, bool) {
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err == nil
}

// ParsePortPolicy parses a port-list summary ("accept 80,443,1000-2000").
func ParsePortPolicy(verb, list string) (netdir.PortPolicy, bool) {
	var p netdir.PortPolicy
	switch verb {
	case "accept":
		p.Accept = true
	case "reject":
	default:
		return p, false
	}
	n := strings.Count(list, ",") + 1
	p.Ranges = make([]netdir.PortRange, 0, n)
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		l, ok := parsePort(lo)
		if !ok || l == 0 {
			return p, false
		}
		h := l
		if isRange {
			if h, ok = parsePort(hi); !ok || h < l {
				return p, false
			}
		}
		p.Ranges = append(p.Ranges, netdir.PortRange{Lo: l, Hi: h})
	}
	return p, true
}

type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	s = strings.Clone(s)
	in[s] = s
	return s
}

// ParseConsensus parses a consensus of either flavour. It checks the
// document's structure; signatures and timeliness are checked by
// Consensus.Verify and Consensus.CheckTime.
func ParseConsensus(src string) (*Consensus, error) {
	const doc = "consensus"
	t := NewTokenizer(doc, src)
	c := &Consensus{}
	it, ok := t.Next()
	if !ok {
		if t.Err() != nil {
			return nil, t.Err()
		}
		return nil, errf(doc, 0, "empty document")
	}
	if it.Keyword != "network-status-version" {
		return nil, errf(doc, it.Line, "first item must be network-status-version, got %q", it.Keyword)
	}
	if it.Arg(0) != "3" {
		return nil, errf(doc, it.Line, "unsupported network-status-version %q", it.Arg(0))
	}
	signedStart := it.Start
	switch it.Arg(1) {
	case "":
		c.Flavor = FlavorNS
	case FlavorMicrodesc:
		c.Flavor = FlavorMicrodesc
	default:
		return nil, errf(doc, it.Line, "unsupported flavour %q", it.Arg(1))
	}
	micro := c.Flavor == FlavorMicrodesc

	const (
		secHeader = iota
		secAuthority
		secRouters
		secFooter
		secSignatures
	)
	section := secHeader
	seen := map[string]int{}
	once := func(it *Item) error {
		if section != secHeader && section != secFooter {
			return nil
		}
		k := it.Keyword
		if n := seen[k]; n > 0 {
			return errf(doc, it.Line, "%s appears more than once", k)
		}
		seen[k] = it.Line
		return nil
	}
	strs := interner{}
	var rs *RouterStatus
	sawSig := false
	for {
		it, ok := t.Next()
		if !ok {
			break
		}
		if sawSig && it.Keyword != "directory-signature" {
			continue // only signatures matter after the first one
		}
		switch it.Keyword {
		case "vote-status", "consensus-method", "valid-after", "fresh-until",
			"valid-until", "voting-delay", "client-versions", "server-versions",
			"known-flags", "params", "recommended-client-protocols",
			"required-client-protocols", "recommended-relay-protocols",
			"required-relay-protocols", "shared-rand-previous-value",
			"shared-rand-current-value":
			if section != secHeader {
				return nil, errf(doc, it.Line, "%s outside header", it.Keyword)
			}
			if err := once(&it); err != nil {
				return nil, err
			}
		}
		switch it.Keyword {
		case "vote-status":
			if it.Arg(0) != "consensus" {
				return nil, errf(doc, it.Line, "vote-status is %q, not consensus", it.Arg(0))
			}
		case "consensus-method":
			n, err := strconv.Atoi(it.Arg(0))
			if err != nil {
				return nil, errf(doc, it.Line, "bad consensus-method")
			}
			c.ConsensusMethod = n
		case "valid-after", "fresh-until", "valid-until":
			tm, err := parseTime2(doc, &it, 0)
			if err != nil {
				return nil, err
			}
			switch it.Keyword {
			case "valid-after":
				c.ValidAfter = tm
			case "fresh-until":
				c.FreshUntil = tm
			default:
				c.ValidUntil = tm
			}
		case "voting-delay":
			if len(it.Args) < 2 {
				return nil, errf(doc, it.Line, "voting-delay needs two arguments")
			}
			var err1, err2 error
			c.VoteSeconds, err1 = strconv.Atoi(it.Args[0])
			c.DistSeconds, err2 = strconv.Atoi(it.Args[1])
			if err1 != nil || err2 != nil {
				return nil, errf(doc, it.Line, "bad voting-delay")
			}
		case "client-versions":
			c.ClientVersions = splitList(it.Arg(0))
		case "server-versions":
			c.ServerVersions = splitList(it.Arg(0))
		case "known-flags":
			c.KnownFlags = it.Args
		case "recommended-client-protocols":
			c.RecommendedClientProtocols = strings.Join(it.Args, " ")
		case "required-client-protocols":
			c.RequiredClientProtocols = strings.Join(it.Args, " ")
		case "recommended-relay-protocols":
			c.RecommendedRelayProtocols = strings.Join(it.Args, " ")
		case "required-relay-protocols":
			c.RequiredRelayProtocols = strings.Join(it.Args, " ")
		case "params":
			m, err := parseKVInts(doc, &it, 32)
			if err != nil {
				return nil, err
			}
			c.Params = make(map[string]int32, len(m))
			for k, v := range m {
				c.Params[k] = int32(v)
			}
		case "shared-rand-previous-value", "shared-rand-current-value":
			if len(it.Args) < 2 {
				return nil, errf(doc, it.Line, "%s needs two arguments", it.Keyword)
			}
			v, err := decodeBase64(it.Args[1])
			if err != nil {
				return nil, errf(doc, it.Line, "%s: bad base64", it.Keyword)
			}
			if it.Keyword == "shared-rand-current-value" {
				c.SharedRandCurrent = v
			} else {
				c.SharedRandPrevious = v
			}
		case "dir-source":
			if section > secAuthority {
				return nil, errf(doc, it.Line, "dir-source after router entries")
			}
			section = secAuthority
			if len(it.Args) < 6 {
				return nil, errf(doc, it.Line, "dir-source needs 6 arguments")
			}
			var ds DirSource
			ds.Nickname = it.Args[0]
			if !parseHexID(ds.Identity[:], it.Args[1]) {
				return nil, errf(doc, it.Line, "dir-source: bad identity")
			}
			ds.Address = it.Args[2]
			ip, err := netip.ParseAddr(it.Args[3])
			if err != nil || !ip.Is4() {
				return nil, errf(doc, it.Line, "dir-source: bad IPv4 address")
			}
			ds.IP = ip
			var ok1, ok2 bool
			ds.DirPort, ok1 = parsePort(it.Args[4])
			ds.ORPort, ok2 = parsePort(it.Args[5])
			if !ok1 || !ok2 {
				return nil, errf(doc, it.Line, "dir-source: bad port")
			}
			c.Sources = append(c.Sources, ds)
		case "contact":
			if section == secAuthority && len(c.Sources) > 0 {
				c.Sources[len(c.Sources)-1].Contact = strings.Join(it.Args, " ")
			}
		case "vote-digest":
			if section == secAuthority && len(c.Sources) > 0 {
				c.Sources[len(c.Sources)-1].VoteDigest = it.Arg(0)
			}
		case "r":
			if section > secRouters {
				return nil, errf(doc, it.Line, "router entry after footer")
			}
			section = secRouters
			c.Routers = append(c.Routers, RouterStatus{})
			rs = &c.Routers[len(c.Routers)-1]
			if err := parseRLine(doc, &it, rs, micro, strs); err != nil {
				return nil, err
			}
		case "a", "s", "v", "pr", "w", "p", "m":
			if section != secRouters {
				if it.Keyword == "m" || it.Keyword == "p" {
					continue // tolerate in other contexts
				}
				return nil, errf(doc, it.Line, "%q item outside router entry", it.Keyword)
			}
			if err := parseRouterItem(doc, &it, rs, micro, strs); err != nil {
				return nil, err
			}
		case "directory-footer":
			if section == secFooter || section == secSignatures {
				return nil, errf(doc, it.Line, "duplicate directory-footer")
			}
			section = secFooter
		case "bandwidth-weights":
			if section != secFooter {
				return nil, errf(doc, it.Line, "bandwidth-weights outside footer")
			}
			if err := once(&it); err != nil {
				return nil, err
			}
			m, err := parseKVInts(doc, &it, 32)
			if err != nil {
				return nil, err
			}
			c.BandwidthWeights = m
		case "directory-signature":
			if !sawSig {
				end := it.Start + len("directory-signature ")
				if end > len(src) {
					return nil, errf(doc, it.Line, "truncated directory-signature")
				}
				signed := src[signedStart:end]
				c.SHA1Digest = sha1.Sum([]byte(signed))
				c.SHA256Digest = sha256.Sum256([]byte(signed))
				c.SHA3Digest = sha3.Sum256([]byte(signed))
			}
			sawSig = true
			section = secSignatures
			sig, err := parseSigItem(doc, &it)
			if err != nil {
				return nil, err
			}
			if sig != nil {
				c.Signatures = append(c.Signatures, *sig)
			}
		}
	}
	if err := t.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"vote-status", "consensus-method", "valid-after", "fresh-until", "valid-until", "voting-delay", "known-flags"} {
		if seen[k] == 0 {
			return nil, errf(doc, 0, "missing required item %q", k)
		}
	}
	if !c.ValidAfter.Before(c.FreshUntil) || c.ValidUntil.Before(c.FreshUntil) {
		return nil, errf(doc, seen["valid-until"], "inconsistent valid-after/fresh-until/valid-until")
	}
	if !sawSig {
		return nil, errf(doc, 0, "no directory-signature")
	}
	if micro {
		for i := range c.Routers {
			if !c.Routers[i].HasMicrodesc {
				return nil, errf(doc, 0, "router %s has no m line", c.Routers[i].Nickname)
			}
		}
	}
	return c, nil
}

func parseSigItem(doc string, it *Item) (*Signature, error) {
	args := it.Args
	sig := &Signature{Algorithm: "sha1", Line: it.Line}
	if len(args) >= 3 {
		sig.Algorithm = args[0]
		args = args[1:]
	}
	if len(args) < 2 {
		return nil, errf(doc, it.Line, "directory-signature needs identity and signing-key digest")
	}
	if !parseHexID(sig.Identity[:], args[0]) || !parseHexID(sig.SigningKeyDigest[:], args[1]) {
		return nil, errf(doc, it.Line, "directory-signature: bad hex digest")
	}
	if it.Object == nil || it.Object.Label != "SIGNATURE" {
		return nil, errf(doc, it.Line, "directory-signature without SIGNATURE object")
	}
	sig.Signature = it.Object.Data
	if sig.Algorithm != "sha1" && sig.Algorithm != "sha256" {
		return nil, nil // unknown algorithms MUST be ignored
	}
	return sig, nil
}

func parseRLine(doc string, it *Item, rs *RouterStatus, micro bool, strs interner) error {
	want := 8 // nickname identity digest date time IP ORPort DirPort
	if micro {
		want = 7
	}
	a := it.Args
	if len(a) < want {
		return errf(doc, it.Line, "r line needs %d arguments, has %d", want, len(a))
	}
	rs.Nickname = strings.Clone(a[0])
	if err := decodeFixed(rs.Identity[:], a[1]); err != nil {
		return errf(doc, it.Line, "r line: bad identity: %v", err)
	}
	i := 2
	if !micro {
		if err := decodeFixed(rs.Digest[:], a[2]); err != nil {
			return errf(doc, it.Line, "r line: bad digest: %v", err)
		}
		i = 3
	}
	tm, err := time.Parse(timeLayout, a[i]+" "+a[i+1])
	if err != nil {
		return errf(doc, it.Line, "r line: bad publication time")
	}
	rs.Published = tm
	ip, err := netip.ParseAddr(a[i+2])
	if err != nil || !ip.Is4() {
		return errf(doc, it.Line, "r line: bad IPv4 address")
	}
	rs.Addr = ip
	var ok1, ok2 bool
	rs.ORPort, ok1 = parsePort(a[i+3])
	rs.DirPort, ok2 = parsePort(a[i+4])
	if !ok1 || !ok2 {
		return errf(doc, it.Line, "r line: bad port")
	}
	return nil
}

func parseRouterItem(doc string, it *Item, rs *RouterStatus, micro bool, strs interner) error {
	switch it.Keyword {
	case "a":
		ap, err := netip.ParseAddrPort(it.Arg(0))
		if err != nil {
			return errf(doc, it.Line, "a line: bad address: %v", err)
		}
		if ap.Addr().Is6() && !rs.IPv6.IsValid() {
			rs.IPv6 = ap
		}
	case "s":
		var f netdir.Flags
		for _, a := range it.Args {
			f |= netdir.ParseFlag(a)
		}
		rs.Flags = f
	case "v":
		rs.Version = strs.get(strings.Join(it.Args, " "))
	case "pr":
		rs.Protocols = strs.get(strings.Join(it.Args, " "))
	case "w":
		for _, a := range it.Args {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				continue
			}
			switch k {
			case "Bandwidth":
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return errf(doc, it.Line, "w line: bad Bandwidth")
				}
				rs.Bandwidth = uint32(n)
				rs.HasBandwidth = true
			case "Unmeasured":
				rs.Unmeasured = v == "1"
			}
		}
	case "p":
		p, ok := ParsePortPolicy(it.Arg(0), it.Arg(1))
		if !ok {
			return errf(doc, it.Line, "p line: bad port policy")
		}
		rs.ExitSummary = p
	case "m":
		if !micro {
			return nil
		}
		if err := decodeFixed(rs.MicrodescDigest[:], it.Arg(0)); err != nil {
			return errf(doc, it.Line, "m line: bad digest: %v", err)
		}
		rs.HasMicrodesc = true
	}
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
