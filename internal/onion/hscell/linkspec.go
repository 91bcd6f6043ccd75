// Link specifiers as used by onion services: rend-spec-v3 §0.4
// [BUILDING-BLOCKS], tor-spec §5.1.2 (EXTEND2 link specifiers).

package hscell

import (
	"errors"
	"net/netip"

	"golang.org/x/crypto/cryptobyte"
)

// Link specifier types (tor-spec §5.1.2).
const (
	LSIPv4    = 0
	LSIPv6    = 1
	LSLegacy  = 2 // RSA identity digest, 20 bytes
	LSEd25519 = 3 // ed25519 identity, 32 bytes
)

// LinkSpec is one link specifier, kept verbatim: the spec requires
// clients to forward unknown types unchanged and in order.
type LinkSpec struct {
	Type byte
	Data []byte
}

// ErrBadLinkSpecs reports a malformed link specifier list.
var ErrBadLinkSpecs = errors.New("hscell: malformed link specifiers")

// ParseLinkSpecs parses NSPEC | NSPEC × (LSTYPE | LSLEN | LSPEC) from s,
// consuming exactly that much.
func ParseLinkSpecs(s *cryptobyte.String) ([]LinkSpec, error) {
	var n uint8
	if !s.ReadUint8(&n) {
		return nil, ErrBadLinkSpecs
	}
	out := make([]LinkSpec, 0, n)
	for i := 0; i < int(n); i++ {
		var t uint8
		var d cryptobyte.String
		if !s.ReadUint8(&t) || !s.ReadUint8LengthPrefixed(&d) {
			return nil, ErrBadLinkSpecs
		}
		ls := LinkSpec{Type: t, Data: append([]byte(nil), d...)}
		if err := ls.check(); err != nil {
			return nil, err
		}
		out = append(out, ls)
	}
	return out, nil
}

// DecodeLinkSpecs parses a whole buffer holding a link specifier block.
func DecodeLinkSpecs(b []byte) ([]LinkSpec, error) {
	s := cryptobyte.String(b)
	ls, err := ParseLinkSpecs(&s)
	if err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, ErrBadLinkSpecs
	}
	return ls, nil
}

// check performs tor-spec §5.1.2 basic validity checks on known types.
func (l LinkSpec) check() error {
	want := map[byte]int{LSIPv4: 6, LSIPv6: 18, LSLegacy: 20, LSEd25519: 32}
	if n, ok := want[l.Type]; ok && len(l.Data) != n {
		return ErrBadLinkSpecs
	}
	return nil
}

// AppendLinkSpecs appends the NSPEC-prefixed block.
func AppendLinkSpecs(b *cryptobyte.Builder, ls []LinkSpec) {
	b.AddUint8(uint8(len(ls)))
	for _, l := range ls {
		b.AddUint8(l.Type)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(l.Data) })
	}
}

// EncodeLinkSpecs returns the NSPEC-prefixed block.
func EncodeLinkSpecs(ls []LinkSpec) ([]byte, error) {
	if len(ls) > 255 {
		return nil, ErrBadLinkSpecs
	}
	var b cryptobyte.Builder
	AppendLinkSpecs(&b, ls)
	return b.Bytes()
}

// LinkSpecsFor builds the usual list for a relay: IPv4, legacy RSA id,
// ed25519 id (if known), IPv6 (if known).
func LinkSpecsFor(addr netip.AddrPort, rsaID [20]byte, ed *[32]byte, v6 netip.AddrPort) []LinkSpec {
	var ls []LinkSpec
	if addr.Addr().Is4() {
		a := addr.Addr().As4()
		ls = append(ls, LinkSpec{LSIPv4, append(a[:], byte(addr.Port()>>8), byte(addr.Port()))})
	}
	ls = append(ls, LinkSpec{LSLegacy, append([]byte(nil), rsaID[:]...)})
	if ed != nil {
		ls = append(ls, LinkSpec{LSEd25519, append([]byte(nil), ed[:]...)})
	}
	if v6.IsValid() && v6.Addr().Is6() {
		a := v6.Addr().As16()
		ls = append(ls, LinkSpec{LSIPv6, append(a[:], byte(v6.Port()>>8), byte(v6.Port()))})
	}
	return ls
}

// Summary extracts the well-known fields of a link specifier list.
type Summary struct {
	IPv4    netip.AddrPort
	IPv6    netip.AddrPort
	RSAID   [20]byte
	HasRSA  bool
	Ed25519 [32]byte
	HasEd   bool
}

// Summarize returns the known fields of ls (first occurrence wins).
func Summarize(ls []LinkSpec) Summary {
	var s Summary
	for _, l := range ls {
		switch {
		case l.Type == LSIPv4 && len(l.Data) == 6 && !s.IPv4.IsValid():
			s.IPv4 = netip.AddrPortFrom(netip.AddrFrom4([4]byte(l.Data[:4])), uint16(l.Data[4])<<8|uint16(l.Data[5]))
		case l.Type == LSIPv6 && len(l.Data) == 18 && !s.IPv6.IsValid():
			s.IPv6 = netip.AddrPortFrom(netip.AddrFrom16([16]byte(l.Data[:16])), uint16(l.Data[16])<<8|uint16(l.Data[17]))
		case l.Type == LSLegacy && len(l.Data) == 20 && !s.HasRSA:
			copy(s.RSAID[:], l.Data)
			s.HasRSA = true
		case l.Type == LSEd25519 && len(l.Data) == 32 && !s.HasEd:
			copy(s.Ed25519[:], l.Data)
			s.HasEd = true
		}
	}
	return s
}
