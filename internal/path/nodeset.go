// Node sets for ExitNodes, EntryNodes, ExcludeNodes and ExcludeExitNodes.
//
// Spec: the tor manual's "node specification" (fingerprints $HEX or HEX,
// optionally followed by ~nick or =nick, nicknames, address patterns, and
// {cc} country codes) as parsed by C tor's routerset_parse; path-spec
// §2.2 for how ExitNodes/ExcludeNodes restrict path selection. Country
// codes need a GeoIP database, which gotor does not ship: they are
// rejected with ErrCountryCodes.

package path

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gotor/gotor/internal/netdir"
)

// ErrCountryCodes is returned by ParseNodeSet for {cc} entries.
var ErrCountryCodes = errors.New("path: country codes ({cc}) in node lists are not supported (gotor has no GeoIP database)")

// NodeSet is a parsed list of node specifications. The nil *NodeSet is
// empty and matches nothing.
type NodeSet struct {
	ids      map[[20]byte]struct{}
	nicks    map[string]struct{} // lower case
	prefixes []netip.Prefix
	all      bool
}

// ParseNodeSet parses node specifications. Each argument may itself be a
// comma-separated list, as in torrc. Accepted forms: "$HEX", "HEX",
// "$HEX~nick" and "$HEX=nick" (matched by fingerprint only, as C tor
// does), "nickname" (case-insensitive), an IP address or CIDR prefix
// ("192.0.2.7", "192.0.2.0/24", "2001:db8::/32"), and "*" (every relay).
// "{cc}" country codes yield ErrCountryCodes.
func ParseNodeSet(specs ...string) (*NodeSet, error) {
	s := &NodeSet{}
	for _, spec := range specs {
		for _, e := range strings.Split(spec, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if err := s.add(e); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// MustParseNodeSet is ParseNodeSet for constants in tests; it panics on
// error.
func MustParseNodeSet(specs ...string) *NodeSet {
	s, err := ParseNodeSet(specs...)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *NodeSet) add(e string) error {
	switch {
	case strings.HasPrefix(e, "{"):
		return fmt.Errorf("%w: %q", ErrCountryCodes, e)
	case e == "*":
		s.all = true
		return nil
	}
	if id, ok := parseHexID(e); ok && (strings.HasPrefix(e, "$") || len(e) >= 40) {
		if s.ids == nil {
			s.ids = make(map[[20]byte]struct{})
		}
		s.ids[id] = struct{}{}
		return nil
	}
	if strings.HasPrefix(e, "$") {
		return fmt.Errorf("path: bad fingerprint %q in node list", e)
	}
	if isNickname(e) {
		if s.nicks == nil {
			s.nicks = make(map[string]struct{})
		}
		s.nicks[strings.ToLower(e)] = struct{}{}
		return nil
	}
	if p, err := netip.ParsePrefix(strings.Trim(e, "[]")); err == nil {
		s.prefixes = append(s.prefixes, p.Masked())
		return nil
	}
	if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
		s.prefixes = append(s.prefixes, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	return fmt.Errorf("path: unrecognised node specification %q", e)
}

// Empty reports whether the set has no entries.
func (s *NodeSet) Empty() bool {
	return s == nil || (!s.all && len(s.ids) == 0 && len(s.nicks) == 0 && len(s.prefixes) == 0)
}

// Contains reports whether r matches an entry of the set.
func (s *NodeSet) Contains(r *netdir.Relay) bool {
	if s == nil {
		return false
	}
	if s.all {
		return true
	}
	if _, ok := s.ids[r.RSAID]; ok {
		return true
	}
	if len(s.nicks) > 0 {
		if _, ok := s.nicks[strings.ToLower(r.Nickname)]; ok {
			return true
		}
	}
	for _, p := range s.prefixes {
		if p.Contains(r.Addr.Unmap()) || (r.IPv6.IsValid() && p.Contains(r.IPv6.Addr())) {
			return true
		}
	}
	return false
}
