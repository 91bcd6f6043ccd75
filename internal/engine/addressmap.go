package engine

// MAPADDRESS (control-spec §3.8; C tor's addressmap.c): addresses a
// controller maps to others, applied to every later stream and resolve
// before anything else looks at the target (C tor's
// connection_ap_handshake_rewrite), virtual addresses for "0.0.0.0", "::"
// and "." requests (addressmap_register_virtual_address, in C tor's
// default VirtualAddrNetworkIPv4 127.192.0.0/10 and VirtualAddrNetworkIPv6
// [FE80::]/10), "*.domain" wildcards, and the ADDRMAP events and GETINFO
// address-mappings/* lines that report them.

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/gotor/gotor/internal/control"
)

// Virtual address ranges (C tor's defaults).
var (
	virtualIPv4 = netip.MustParsePrefix("127.192.0.0/10")
	virtualIPv6 = netip.MustParsePrefix("fe80::/10")
)

// maxRemaps bounds a chain of mappings (C tor's addressmap_rewrite tries
// 16 times).
const maxRemaps = 16

// addressMap holds the controller's mappings, by lower-case source.
type addressMap struct {
	mu sync.Mutex
	m  map[string]addrMapping
}

type addrMapping struct {
	from, to         string // as given
	srcWild, dstWild bool   // "*.example.com"
	virtual          bool   // from was allocated for "0.0.0.0", "::" or "."
}

// MapAddress is MAPADDRESS from=to (see control.Backend).
func (b controlBackend) MapAddress(from, to string) (string, error) {
	c := b.c
	am := &c.addrmap
	am.mu.Lock()
	defer am.mu.Unlock()
	if am.m == nil {
		am.m = map[string]addrMapping{}
	}
	switch from {
	case "0.0.0.0", "::", ".":
		// Reuse the virtual address already given to this target.
		for _, m := range am.m {
			if m.virtual && strings.EqualFold(m.to, to) && virtualKind(m.from) == from {
				return m.from, nil
			}
		}
		v, err := am.newVirtualLocked(from)
		if err != nil {
			return "", err
		}
		am.m[strings.ToLower(v)] = addrMapping{from: v, to: to, virtual: true}
		c.publishMapping(v, to)
		return v, nil
	}
	m := addrMapping{from: from, to: to}
	if rest, ok := strings.CutPrefix(from, "*."); ok {
		m.from, m.srcWild = rest, true
	}
	if rest, ok := strings.CutPrefix(to, "*."); ok {
		m.to, m.dstWild = rest, true
	}
	switch {
	case m.from == "" || strings.ContainsAny(m.from, "*!@ \t") || strings.HasPrefix(m.from, ".") || strings.HasSuffix(m.from, "."):
		return "", control.Error(control.ErrInvalidValue, "invalid original address")
	case m.dstWild && !m.srcWild:
		return "", control.Error(control.ErrInvalidValue, "a wildcard target needs a wildcard original address")
	}
	key := strings.ToLower(m.from)
	if m.srcWild {
		key = "*." + key
	}
	if strings.EqualFold(m.from, m.to) && m.srcWild == m.dstWild {
		delete(am.m, key) // mapping an address to itself removes its mapping
	} else {
		am.m[key] = m
	}
	c.publishMapping(from, to)
	return from, nil
}

func virtualKind(v string) string {
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Is4() {
			return "0.0.0.0"
		}
		return "::"
	}
	return "."
}

var lowerB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newVirtualLocked picks an unused virtual address of the kind asked for.
func (am *addressMap) newVirtualLocked(kind string) (string, error) {
	for try := 0; try < 1000; try++ {
		var b [16]byte
		rand.Read(b[:])
		var v string
		switch kind {
		case "0.0.0.0":
			base := virtualIPv4.Addr().As4()
			host := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			host &= 1<<(32-virtualIPv4.Bits()) - 1
			n := (uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])) | host
			if n&0xff == 0 || n&0xff == 0xff { // C tor skips .0 and .255
				continue
			}
			v = netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
		case "::":
			base := virtualIPv6.Addr().As16()
			for i := 2; i < 16; i++ {
				base[i] = b[i]
			}
			base[1] = base[1]&0xc0 | b[1]&0x3f
			v = netip.AddrFrom16(base).String()
		default:
			v = lowerB32.EncodeToString(b[:10]) + ".virtual"
		}
		if _, used := am.m[strings.ToLower(v)]; !used {
			return v, nil
		}
	}
	return "", errors.New("no virtual address left")
}

// publishMapping reports a controller's mapping (C tor: expires never,
// cached).
func (c *Engine) publishMapping(from, to string) {
	c.obs.publish(control.Event{Type: control.EventAddrMap, AddrMap: &control.AddrMapEvent{From: from, To: to, Cached: true}})
}

// rewrite returns what host is mapped to, following chains of mappings.
func (am *addressMap) rewrite(host string) string {
	am.mu.Lock()
	defer am.mu.Unlock()
	for i := 0; i < maxRemaps && len(am.m) > 0; i++ {
		lh := strings.ToLower(host)
		if m, ok := am.m[lh]; ok && !m.srcWild {
			host = m.to
			continue
		}
		// Wildcards: "*.example.com" matches example.com and its
		// subdomains, the longest suffix first.
		found := false
		for s := lh; s != ""; {
			if m, ok := am.m["*."+s]; ok {
				if m.dstWild {
					host = host[:len(host)-len(s)] + m.to
				} else {
					host = m.to
				}
				found = true
				break
			}
			_, rest, ok := strings.Cut(s, ".")
			if !ok {
				break
			}
			s = rest
		}
		if !found {
			break
		}
	}
	return host
}

// remap applies the mappings to a stream's target.
func (c *Engine) remap(r streamRequest) streamRequest {
	if h := c.addrmap.rewrite(r.host); h != r.host {
		r.host = h
		r.info.DestAddr = h
	}
	return r
}

// AddressMappings lists the mappings for GETINFO address-mappings/KIND:
// the controller's ("control", and "all"); gotor has neither MapAddress
// lines ("config") nor a DNS cache ("cache").
func (b controlBackend) AddressMappings(kind string) []control.AddressMapping {
	if kind != "all" && kind != "control" {
		return nil
	}
	am := &b.c.addrmap
	am.mu.Lock()
	defer am.mu.Unlock()
	var out []control.AddressMapping
	for _, m := range am.m {
		from, to := m.from, m.to
		if m.srcWild {
			from = "*." + from
		}
		if m.dstWild {
			to = "*." + to
		}
		out = append(out, control.AddressMapping{From: from, To: to})
	}
	slices.SortFunc(out, func(a, b control.AddressMapping) int { return strings.Compare(a.From, b.From) })
	return out
}
