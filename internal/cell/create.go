// tor-spec §5.1 "CREATE and CREATED cells", §5.1.2 "EXTEND and EXTENDED
// cells" (EXTEND2 link specifiers), §5.1.5 CREATE_FAST, §5.4 "Tearing
// down circuits" (DESTROY reasons).
package cell

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/crypto/cryptobyte"
)

// Handshake types for CREATE2/EXTEND2 (tor-spec §5.1).
const (
	HandshakeTAP    uint16 = 0
	HandshakeNtor   uint16 = 2
	HandshakeNtorV3 uint16 = 3
)

// Create2 is a CREATE2 body.
type Create2 struct {
	HType uint16
	HData []byte
}

// Encode returns the CREATE2 payload.
func (c *Create2) Encode() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(c.HType)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.HData) })
	out, err := b.Bytes()
	if err == nil && len(out) > PayloadLen {
		return nil, ErrPayloadSize
	}
	return out, err
}

// DecodeCreate2 parses a CREATE2 payload.
func DecodeCreate2(p []byte) (*Create2, error) {
	s := cryptobyte.String(p)
	c := &Create2{}
	var d cryptobyte.String
	if !s.ReadUint16(&c.HType) || !s.ReadUint16LengthPrefixed(&d) {
		return nil, errors.New("cell: truncated CREATE2")
	}
	c.HData = append([]byte(nil), d...)
	return c, nil
}

// EncodeCreated2 returns a CREATED2 (or EXTENDED2) payload.
func EncodeCreated2(hdata []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(hdata) })
	return b.Bytes()
}

// DecodeCreated2 parses a CREATED2 (or EXTENDED2) payload and returns HDATA.
func DecodeCreated2(p []byte) ([]byte, error) {
	s := cryptobyte.String(p)
	var d cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&d) {
		return nil, errors.New("cell: truncated CREATED2")
	}
	return append([]byte(nil), d...), nil
}

// DecodeCreatedFast parses a CREATED_FAST payload: Y and the derivative key KH.
func DecodeCreatedFast(p []byte) (y, kh [20]byte, err error) {
	if len(p) < 40 {
		return y, kh, errors.New("cell: truncated CREATED_FAST")
	}
	copy(y[:], p[:20])
	copy(kh[:], p[20:40])
	return y, kh, nil
}

// Link specifier types (tor-spec §5.1.2).
const (
	LinkSpecIPv4     uint8 = 0
	LinkSpecIPv6     uint8 = 1
	LinkSpecLegacyID uint8 = 2
	LinkSpecEd25519  uint8 = 3
)

// LinkSpec is one link specifier. Unknown types keep their raw bytes.
type LinkSpec struct {
	Type uint8
	Data []byte
}

// LinkSpecAddr returns an IPv4 or IPv6 link specifier for ap.
func LinkSpecAddr(ap netip.AddrPort) LinkSpec {
	a := ap.Addr().Unmap()
	port := []byte{byte(ap.Port() >> 8), byte(ap.Port())}
	if a.Is4() {
		v := a.As4()
		return LinkSpec{Type: LinkSpecIPv4, Data: append(v[:], port...)}
	}
	v := a.As16()
	return LinkSpec{Type: LinkSpecIPv6, Data: append(v[:], port...)}
}

// LinkSpecRSAID returns a legacy identity link specifier.
func LinkSpecRSAID(id [20]byte) LinkSpec {
	return LinkSpec{Type: LinkSpecLegacyID, Data: append([]byte(nil), id[:]...)}
}

// LinkSpecEd25519ID returns an Ed25519 identity link specifier.
func LinkSpecEd25519ID(id [32]byte) LinkSpec {
	return LinkSpec{Type: LinkSpecEd25519, Data: append([]byte(nil), id[:]...)}
}

// AddrPort interprets an IPv4/IPv6 link specifier.
func (l LinkSpec) AddrPort() (netip.AddrPort, bool) {
	switch {
	case l.Type == LinkSpecIPv4 && len(l.Data) == 6:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(l.Data[:4])), uint16(l.Data[4])<<8|uint16(l.Data[5])), true
	case l.Type == LinkSpecIPv6 && len(l.Data) == 18:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(l.Data[:16])), uint16(l.Data[16])<<8|uint16(l.Data[17])), true
	}
	return netip.AddrPort{}, false
}

func (l LinkSpec) validate() error {
	want := map[uint8]int{LinkSpecIPv4: 6, LinkSpecIPv6: 18, LinkSpecLegacyID: 20, LinkSpecEd25519: 32}
	if n, ok := want[l.Type]; ok && len(l.Data) != n {
		return fmt.Errorf("cell: link specifier type %d has length %d, want %d", l.Type, len(l.Data), n)
	}
	return nil
}

// Extend2 is an EXTEND2 relay message body.
type Extend2 struct {
	Specs  []LinkSpec
	Create Create2
}

// Encode returns the EXTEND2 body.
func (e *Extend2) Encode() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(len(e.Specs)))
	for _, l := range e.Specs {
		if err := l.validate(); err != nil {
			return nil, err
		}
		b.AddUint8(l.Type)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(l.Data) })
	}
	b.AddUint16(e.Create.HType)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Create.HData) })
	out, err := b.Bytes()
	if err == nil && len(out) > RelayDataMax {
		return nil, ErrPayloadSize
	}
	return out, err
}

// DecodeExtend2 parses an EXTEND2 body.
func DecodeExtend2(p []byte) (*Extend2, error) {
	s := cryptobyte.String(p)
	var n uint8
	if !s.ReadUint8(&n) {
		return nil, errors.New("cell: truncated EXTEND2")
	}
	e := &Extend2{}
	for i := 0; i < int(n); i++ {
		var l LinkSpec
		var d cryptobyte.String
		if !s.ReadUint8(&l.Type) || !s.ReadUint8LengthPrefixed(&d) {
			return nil, errors.New("cell: truncated EXTEND2 link specifier")
		}
		l.Data = append([]byte(nil), d...)
		if err := l.validate(); err != nil {
			return nil, err
		}
		e.Specs = append(e.Specs, l)
	}
	var d cryptobyte.String
	if !s.ReadUint16(&e.Create.HType) || !s.ReadUint16LengthPrefixed(&d) {
		return nil, errors.New("cell: truncated EXTEND2 handshake")
	}
	e.Create.HData = append([]byte(nil), d...)
	return e, nil
}

// DestroyReason is the reason byte of DESTROY and TRUNCATED (tor-spec §5.4).
type DestroyReason uint8

// Destroy reasons.
const (
	DestroyNone          DestroyReason = 0
	DestroyProtocol      DestroyReason = 1
	DestroyInternal      DestroyReason = 2
	DestroyRequested     DestroyReason = 3
	DestroyHibernating   DestroyReason = 4
	DestroyResourceLimit DestroyReason = 5
	DestroyConnectFailed DestroyReason = 6
	DestroyORIdentity    DestroyReason = 7
	DestroyChannelClosed DestroyReason = 8
	DestroyFinished      DestroyReason = 9
	DestroyTimeout       DestroyReason = 10
	DestroyDestroyed     DestroyReason = 11
	DestroyNoSuchService DestroyReason = 12
)

var destroyNames = []string{"NONE", "PROTOCOL", "INTERNAL", "REQUESTED", "HIBERNATING",
	"RESOURCELIMIT", "CONNECTFAILED", "OR_IDENTITY", "CHANNEL_CLOSED", "FINISHED",
	"TIMEOUT", "DESTROYED", "NOSUCHSERVICE"}

func (r DestroyReason) String() string {
	if int(r) < len(destroyNames) {
		return destroyNames[r]
	}
	return fmt.Sprintf("DestroyReason(%d)", uint8(r))
}

// Extension is one field of the extension list carried in ntor v3
// client and server messages (tor-spec "ntor-v3" / prop 332 §A.2).
type Extension struct {
	Type uint8
	Data []byte
}

// ntor v3 extension types (prop 324 §6.2 congestion control).
const (
	ExtCCRequest  uint8 = 0x01 // empty: the client wants congestion control
	ExtCCResponse uint8 = 0x02 // 1 byte: sendme_inc
)

// EncodeExtensions encodes N_EXTENSIONS then each extension.
func EncodeExtensions(exts []Extension) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(len(exts)))
	for _, e := range exts {
		b.AddUint8(e.Type)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
	}
	return b.Bytes()
}

// DecodeExtensions parses an extension list.
func DecodeExtensions(p []byte) ([]Extension, error) {
	s := cryptobyte.String(p)
	var n uint8
	if !s.ReadUint8(&n) {
		return nil, errors.New("cell: empty extension list")
	}
	out := make([]Extension, 0, n)
	for i := 0; i < int(n); i++ {
		var e Extension
		var d cryptobyte.String
		if !s.ReadUint8(&e.Type) || !s.ReadUint8LengthPrefixed(&d) {
			return nil, errors.New("cell: truncated extension")
		}
		e.Data = append([]byte(nil), d...)
		out = append(out, e)
	}
	return out, nil
}
