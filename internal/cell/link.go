// tor-spec §4 "Negotiating and initializing connections": VERSIONS
// (§4.1), CERTS (§4.2), AUTH_CHALLENGE (§4.3), NETINFO (§4.5), and
// PADDING_NEGOTIATE (padding-spec §2.2).
package cell

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// EncodeVersions returns a VERSIONS payload listing versions.
func EncodeVersions(versions []uint16) []byte {
	b := make([]byte, 0, 2*len(versions))
	for _, v := range versions {
		b = append(b, byte(v>>8), byte(v))
	}
	return b
}

// DecodeVersions parses a VERSIONS payload.
func DecodeVersions(p []byte) ([]uint16, error) {
	if len(p)%2 != 0 {
		return nil, errors.New("cell: VERSIONS payload has odd length")
	}
	s := cryptobyte.String(p)
	var out []uint16
	for !s.Empty() {
		var v uint16
		s.ReadUint16(&v)
		out = append(out, v)
	}
	return out, nil
}

// Cert types in a CERTS cell (tor-spec §4.2, cert-spec §A.1).
const (
	CertTypeRSALink        = 1
	CertTypeRSAIdentity    = 2
	CertTypeRSAAuth        = 3
	CertTypeEdIDSigning    = 4
	CertTypeEdSigningLink  = 5
	CertTypeEdSigningAuth  = 6
	CertTypeRSAEdCrossCert = 7
)

// CertEntry is one certificate of a CERTS cell.
type CertEntry struct {
	Type uint8
	Body []byte
}

// DecodeCerts parses a CERTS payload.
func DecodeCerts(p []byte) ([]CertEntry, error) {
	s := cryptobyte.String(p)
	var n uint8
	if !s.ReadUint8(&n) {
		return nil, errors.New("cell: empty CERTS")
	}
	out := make([]CertEntry, 0, n)
	for i := 0; i < int(n); i++ {
		var e CertEntry
		var body cryptobyte.String
		if !s.ReadUint8(&e.Type) || !s.ReadUint16LengthPrefixed(&body) {
			return nil, errors.New("cell: truncated CERTS entry")
		}
		e.Body = append([]byte(nil), body...)
		out = append(out, e)
	}
	if !s.Empty() {
		return nil, errors.New("cell: trailing bytes in CERTS")
	}
	return out, nil
}

// EncodeCerts builds a CERTS payload (used in tests).
func EncodeCerts(certs []CertEntry) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(len(certs)))
	for _, c := range certs {
		b.AddUint8(c.Type)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.Body) })
	}
	return b.Bytes()
}

// AuthChallenge is an AUTH_CHALLENGE payload (tor-spec §4.3).
type AuthChallenge struct {
	Challenge [32]byte
	Methods   []uint16
}

// DecodeAuthChallenge parses an AUTH_CHALLENGE payload.
func DecodeAuthChallenge(p []byte) (*AuthChallenge, error) {
	s := cryptobyte.String(p)
	a := &AuthChallenge{}
	var ch []byte
	var n uint16
	if !s.ReadBytes(&ch, 32) || !s.ReadUint16(&n) {
		return nil, errors.New("cell: truncated AUTH_CHALLENGE")
	}
	copy(a.Challenge[:], ch)
	for i := 0; i < int(n); i++ {
		var m uint16
		if !s.ReadUint16(&m) {
			return nil, errors.New("cell: truncated AUTH_CHALLENGE methods")
		}
		a.Methods = append(a.Methods, m)
	}
	return a, nil
}

// Address types used in NETINFO, CONNECTED and RESOLVED (tor-spec §4.5, §6.4).
const (
	AddrTypeHostname       = 0x00
	AddrTypeIPv4           = 0x04
	AddrTypeIPv6           = 0x06
	AddrTypeErrorTransient = 0xF0
	AddrTypeErrorPermanent = 0xF1
)

// Netinfo is a NETINFO payload (tor-spec §4.5).
type Netinfo struct {
	Time      time.Time // zero from clients
	OtherAddr netip.Addr
	MyAddrs   []netip.Addr
}

func addAddr(b *cryptobyte.Builder, a netip.Addr) {
	switch {
	case a.Is4():
		b.AddUint8(AddrTypeIPv4)
		b.AddUint8(4)
		v := a.As4()
		b.AddBytes(v[:])
	case a.Is6():
		b.AddUint8(AddrTypeIPv6)
		b.AddUint8(16)
		v := a.As16()
		b.AddBytes(v[:])
	default:
		// Unknown / unset: type 4 with 0.0.0.0 is what C tor sends for "none".
		b.AddUint8(AddrTypeIPv4)
		b.AddUint8(4)
		b.AddBytes([]byte{0, 0, 0, 0})
	}
}

func readAddr(s *cryptobyte.String) (netip.Addr, error) {
	var t uint8
	var v cryptobyte.String
	if !s.ReadUint8(&t) || !s.ReadUint8LengthPrefixed(&v) {
		return netip.Addr{}, errors.New("cell: truncated address")
	}
	switch {
	case t == AddrTypeIPv4 && len(v) == 4:
		return netip.AddrFrom4([4]byte(v)), nil
	case t == AddrTypeIPv6 && len(v) == 16:
		return netip.AddrFrom16([16]byte(v)), nil
	}
	return netip.Addr{}, nil // unrecognized types are ignored
}

// Encode returns the NETINFO payload.
func (n *Netinfo) Encode() []byte {
	var b cryptobyte.Builder
	var ts uint32
	if !n.Time.IsZero() {
		ts = uint32(n.Time.Unix())
	}
	b.AddUint32(ts)
	addAddr(&b, n.OtherAddr)
	b.AddUint8(uint8(len(n.MyAddrs)))
	for _, a := range n.MyAddrs {
		addAddr(&b, a)
	}
	return b.BytesOrPanic()
}

// DecodeNetinfo parses a NETINFO payload (trailing padding is ignored).
func DecodeNetinfo(p []byte) (*Netinfo, error) {
	s := cryptobyte.String(p)
	n := &Netinfo{}
	var ts uint32
	if !s.ReadUint32(&ts) {
		return nil, errors.New("cell: truncated NETINFO")
	}
	if ts != 0 {
		n.Time = time.Unix(int64(ts), 0)
	}
	var err error
	if n.OtherAddr, err = readAddr(&s); err != nil {
		return nil, err
	}
	var cnt uint8
	if !s.ReadUint8(&cnt) {
		return nil, errors.New("cell: truncated NETINFO")
	}
	for i := 0; i < int(cnt); i++ {
		a, err := readAddr(&s)
		if err != nil {
			return nil, err
		}
		if a.IsValid() {
			n.MyAddrs = append(n.MyAddrs, a)
		}
	}
	return n, nil
}

// PaddingNegotiate is a PADDING_NEGOTIATE payload (padding-spec §2.2).
type PaddingNegotiate struct {
	Start         bool // command: 2 start, 1 stop
	ITOLowMillis  uint16
	ITOHighMillis uint16
}

// DecodePaddingNegotiate parses a PADDING_NEGOTIATE payload.
func DecodePaddingNegotiate(b []byte) (*PaddingNegotiate, error) {
	s := cryptobyte.String(b)
	var ver, cmd uint8
	p := &PaddingNegotiate{}
	if !s.ReadUint8(&ver) || !s.ReadUint8(&cmd) || !s.ReadUint16(&p.ITOLowMillis) || !s.ReadUint16(&p.ITOHighMillis) {
		return nil, errors.New("cell: truncated PADDING_NEGOTIATE")
	}
	if ver != 0 {
		return nil, fmt.Errorf("cell: PADDING_NEGOTIATE version %d", ver)
	}
	p.Start = cmd == 2
	return p, nil
}
