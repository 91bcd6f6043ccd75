// Family and subnet restrictions.
//
// Spec: path-spec §2.2 ("We do not choose the same router twice for the
// same path"; "We do not choose any router in the same family as another
// in the same path"; "We do not choose more than one router in a given
// network range", /16 for IPv4 and /32 for IPv6 when
// EnforceDistinctSubnets is set) and path-spec §5.3 ("Handling families":
// two relays are in one family only if each lists the other). dir-spec
// §3.3 gives the microdescriptor "family" line ($HEX fingerprints,
// optionally $HEX~nick or $HEX=nick, and bare nicknames) and prop 321
// the "family-ids" line, whose shared entries prove a family without the
// mutual listing.

package path

import (
	"encoding/hex"
	"strings"

	"github.com/gotor/gotor/internal/netdir"
)

// famInfo is the preprocessed family and address data of one relay.
type famInfo struct {
	nick   string // lower case
	ids    map[[20]byte]struct{}
	nicks  map[string]struct{} // lower case
	famIDs []string
	v4     [2]byte
	v6     [4]byte
	hasV4  bool
	hasV6  bool
}

func newFamInfo(r *netdir.Relay) famInfo {
	f := addrInfo(r)
	for _, e := range r.Family {
		if id, ok := parseHexID(e); ok {
			if f.ids == nil {
				f.ids = make(map[[20]byte]struct{}, len(r.Family))
			}
			f.ids[id] = struct{}{}
		} else if isNickname(e) {
			if f.nicks == nil {
				f.nicks = make(map[string]struct{})
			}
			f.nicks[strings.ToLower(e)] = struct{}{}
		}
	}
	return f
}

// addrInfo is famInfo without the parsed family declarations.
func addrInfo(r *netdir.Relay) famInfo {
	f := famInfo{nick: strings.ToLower(r.Nickname), famIDs: r.FamilyIDs}
	if r.Addr.Is4() || r.Addr.Is4In6() {
		a := r.Addr.Unmap().As4()
		f.v4 = [2]byte{a[0], a[1]}
		f.hasV4 = true
	} else if r.Addr.Is6() {
		a := r.Addr.As16()
		f.v6 = [4]byte{a[0], a[1], a[2], a[3]}
		f.hasV6 = true
	}
	if ip := r.IPv6.Addr(); ip.IsValid() && ip.Is6() && !ip.Is4In6() {
		a := ip.As16()
		f.v6 = [4]byte{a[0], a[1], a[2], a[3]}
		f.hasV6 = true
	}
	return f
}

// parseHexID parses "$HEX", "HEX", "$HEX~nick" or "$HEX=nick".
func parseHexID(s string) ([20]byte, bool) {
	var id [20]byte
	s = strings.TrimPrefix(s, "$")
	if len(s) == 40 {
		// Fast path: plain $HEX, by far the commonest form.
		if _, err := hex.Decode(id[:], []byte(s)); err == nil {
			return id, true
		}
		return id, false
	}
	if i := strings.IndexAny(s, "~="); i >= 0 {
		if !isNickname(s[i+1:]) {
			return id, false
		}
		s = s[:i]
	}
	if len(s) != 40 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, false
	}
	return id, true
}

// isNickname reports whether s is a legal relay nickname (dir-spec
// §2.1.1: 1-19 characters of [A-Za-z0-9]).
func isNickname(s string) bool {
	if len(s) == 0 || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// declares reports whether the relay described by f lists b (with
// preprocessed info fb) in its family line.
func (f *famInfo) declares(b *netdir.Relay, fb *famInfo) bool {
	if f.ids != nil {
		if _, ok := f.ids[b.RSAID]; ok {
			return true
		}
	}
	if f.nicks != nil && fb.nick != "" {
		if _, ok := f.nicks[fb.nick]; ok {
			return true
		}
	}
	return false
}

// declaresRelay reports whether a's family line names b, without
// building a famInfo.
func declaresRelay(a, b *netdir.Relay) bool {
	hexID := hex.EncodeToString(b.RSAID[:])
	for _, e := range a.Family {
		if i := strings.IndexAny(e, "~="); i >= 0 {
			e = e[:i]
		}
		if strings.EqualFold(strings.TrimPrefix(e, "$"), hexID) || strings.EqualFold(e, b.Nickname) {
			return true
		}
	}
	return false
}

func sameRelay(a, b *netdir.Relay) bool {
	if a == b || a.RSAID == b.RSAID {
		return true
	}
	return a.HasEd25519 && b.HasEd25519 && a.Ed25519ID == b.Ed25519ID
}

// related reports whether a and b must not share a circuit.
func related(a, b *netdir.Relay, fa, fb *famInfo, distinctSubnets bool) bool {
	if sameRelay(a, b) {
		return true
	}
	if distinctSubnets {
		if fa.hasV4 && fb.hasV4 && fa.v4 == fb.v4 {
			return true
		}
		if fa.hasV6 && fb.hasV6 && fa.v6 == fb.v6 {
			return true
		}
	}
	for _, x := range fa.famIDs {
		for _, y := range fb.famIDs {
			if x == y {
				return true
			}
		}
	}
	return fa.declares(b, fb) && fb.declares(a, fa)
}

// Compatible reports whether a and b may appear in the same circuit: they
// are different relays, not in one family (mutually declared "family"
// entries or a shared prop 321 family-id), and, when
// enforceDistinctSubnets is set, in different IPv4 /16 and IPv6 /32
// networks.
func Compatible(a, b *netdir.Relay, enforceDistinctSubnets bool) bool {
	fa, fb := newFamInfo(a), newFamInfo(b)
	return !related(a, b, &fa, &fb, enforceDistinctSubnets)
}

// SameFamily reports whether a and b are the same relay or in one family
// (ignoring addresses).
func SameFamily(a, b *netdir.Relay) bool { return !Compatible(a, b, false) }
