// tor-spec §6.1 "Relay cells" (header: command, recognized, stream id,
// digest, length), §6.2 RELAY_BEGIN, §6.3 END reasons, §6.4 RESOLVE /
// RESOLVED, §7.4 SENDME (with prop 289 authenticated SENDME v1), §5.4
// TRUNCATED.
package cell

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// RelayCommand is a relay cell command (tor-spec §6.1).
type RelayCommand uint8

// Relay commands.
const (
	RELAY_BEGIN     RelayCommand = 1
	RELAY_DATA      RelayCommand = 2
	RELAY_END       RelayCommand = 3
	RELAY_CONNECTED RelayCommand = 4
	RELAY_SENDME    RelayCommand = 5
	RELAY_EXTEND    RelayCommand = 6
	RELAY_EXTENDED  RelayCommand = 7
	RELAY_TRUNCATE  RelayCommand = 8
	RELAY_TRUNCATED RelayCommand = 9
	RELAY_DROP      RelayCommand = 10
	RELAY_RESOLVE   RelayCommand = 11
	RELAY_RESOLVED  RelayCommand = 12
	RELAY_BEGIN_DIR RelayCommand = 13
	RELAY_EXTEND2   RelayCommand = 14
	RELAY_EXTENDED2 RelayCommand = 15
	// Stream flow control with congestion control (prop 324 §4).
	RELAY_XOFF RelayCommand = 43
	RELAY_XON  RelayCommand = 44
)

var relayNames = map[RelayCommand]string{
	RELAY_BEGIN: "BEGIN", RELAY_DATA: "DATA", RELAY_END: "END", RELAY_CONNECTED: "CONNECTED",
	RELAY_SENDME: "SENDME", RELAY_EXTEND: "EXTEND", RELAY_EXTENDED: "EXTENDED",
	RELAY_TRUNCATE: "TRUNCATE", RELAY_TRUNCATED: "TRUNCATED", RELAY_DROP: "DROP",
	RELAY_RESOLVE: "RESOLVE", RELAY_RESOLVED: "RESOLVED", RELAY_BEGIN_DIR: "BEGIN_DIR",
	RELAY_EXTEND2: "EXTEND2", RELAY_EXTENDED2: "EXTENDED2", RELAY_XOFF: "XOFF", RELAY_XON: "XON",
}

func (c RelayCommand) String() string {
	if s, ok := relayNames[c]; ok {
		return "RELAY_" + s
	}
	return fmt.Sprintf("RelayCommand(%d)", uint8(c))
}

// Relay header layout (tor-spec §6.1).
const (
	RelayHeaderLen = 11
	RelayDataMax   = PayloadLen - RelayHeaderLen // 498
	// Offsets within a relay cell payload.
	RelayRecognizedOff = 1
	RelayDigestOff     = 5
)

// RelayMsg is a decoded relay cell, a relay message (before or after
// crypto); netdir.Relay is a relay, the node.
type RelayMsg struct {
	Command  RelayCommand
	StreamID uint16
	Data     []byte
}

// EncodeRelay writes r into payload with recognized and digest set to
// zero. Unused bytes are 4 zero bytes then random padding (tor-spec §6.1).
func EncodeRelay(payload *[PayloadLen]byte, r RelayMsg) error {
	if len(r.Data) > RelayDataMax {
		return ErrPayloadSize
	}
	p := payload[:]
	p[0] = byte(r.Command)
	p[1], p[2] = 0, 0
	p[3], p[4] = byte(r.StreamID>>8), byte(r.StreamID)
	p[5], p[6], p[7], p[8] = 0, 0, 0, 0
	p[9], p[10] = byte(len(r.Data)>>8), byte(len(r.Data))
	n := copy(p[RelayHeaderLen:], r.Data)
	rest := p[RelayHeaderLen+n:]
	z := min(4, len(rest))
	clear(rest[:z])
	if len(rest) > 4 {
		rand.Read(rest[4:])
	}
	return nil
}

// DecodeRelay parses a decrypted relay cell payload. Data aliases payload.
func DecodeRelay(payload []byte) (RelayMsg, error) {
	if len(payload) != PayloadLen {
		return RelayMsg{}, fmt.Errorf("cell: relay payload length %d", len(payload))
	}
	l := int(payload[9])<<8 | int(payload[10])
	if l > RelayDataMax {
		return RelayMsg{}, fmt.Errorf("cell: relay length %d exceeds %d", l, RelayDataMax)
	}
	return RelayMsg{
		Command:  RelayCommand(payload[0]),
		StreamID: uint16(payload[3])<<8 | uint16(payload[4]),
		Data:     payload[RelayHeaderLen : RelayHeaderLen+l],
	}, nil
}

// BEGIN flags (tor-spec §6.2).
const (
	BeginIPv6OK        uint32 = 1 << 0
	BeginIPv4NotOK     uint32 = 1 << 1
	BeginIPv6Preferred uint32 = 1 << 2
)

// Begin is a RELAY_BEGIN body.
type Begin struct {
	Host  string // hostname, IPv4 literal, IPv6 literal (without brackets), or "" for onion services
	Port  uint16
	Flags uint32
}

// Encode returns the BEGIN body: ADDRPORT NUL FLAGS.
func (b *Begin) Encode() ([]byte, error) {
	// An empty host encodes as ":port", as onion service clients send
	// (rend-spec-v3 §4.4: the service ignores the address).
	if strings.ContainsRune(b.Host, 0) {
		return nil, errors.New("cell: bad BEGIN host")
	}
	h := b.Host
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() && !a.Is4In6() {
		h = "[" + a.String() + "]"
	}
	s := h + ":" + strconv.Itoa(int(b.Port))
	out := make([]byte, 0, len(s)+5)
	out = append(out, s...)
	out = append(out, 0)
	if b.Flags != 0 {
		out = append(out, byte(b.Flags>>24), byte(b.Flags>>16), byte(b.Flags>>8), byte(b.Flags))
	}
	if len(out) > RelayDataMax {
		return nil, ErrPayloadSize
	}
	return out, nil
}

// DecodeBegin parses a BEGIN body.
func DecodeBegin(p []byte) (*Begin, error) {
	i := strings.IndexByte(string(p), 0)
	if i < 0 {
		return nil, errors.New("cell: BEGIN without NUL")
	}
	addr := string(p[:i])
	c := strings.LastIndexByte(addr, ':')
	if c < 0 {
		return nil, errors.New("cell: BEGIN without port")
	}
	port, err := strconv.ParseUint(addr[c+1:], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("cell: BEGIN port: %w", err)
	}
	b := &Begin{Host: strings.TrimSuffix(strings.TrimPrefix(addr[:c], "["), "]"), Port: uint16(port)}
	s := cryptobyte.String(p[i+1:])
	if len(s) >= 4 {
		s.ReadUint32(&b.Flags)
	}
	return b, nil
}

// Connected is a RELAY_CONNECTED body (tor-spec §6.2).
type Connected struct {
	Addr netip.Addr // invalid if the exit did not say
	TTL  uint32
}

// DecodeConnected parses a CONNECTED body; an empty body is valid.
func DecodeConnected(p []byte) (*Connected, error) {
	c := &Connected{}
	if len(p) == 0 {
		return c, nil
	}
	s := cryptobyte.String(p)
	var v4 []byte
	if !s.ReadBytes(&v4, 4) {
		return nil, errors.New("cell: truncated CONNECTED")
	}
	if [4]byte(v4) != [4]byte{} {
		c.Addr = netip.AddrFrom4([4]byte(v4))
		s.ReadUint32(&c.TTL)
		return c, nil
	}
	var t uint8
	var v6 []byte
	if !s.ReadUint8(&t) || t != AddrTypeIPv6 || !s.ReadBytes(&v6, 16) || !s.ReadUint32(&c.TTL) {
		return nil, errors.New("cell: malformed IPv6 CONNECTED")
	}
	c.Addr = netip.AddrFrom16([16]byte(v6))
	return c, nil
}

// Encode returns the CONNECTED body.
func (c *Connected) Encode() []byte {
	var b cryptobyte.Builder
	switch {
	case c.Addr.Is4():
		v := c.Addr.As4()
		b.AddBytes(v[:])
		b.AddUint32(c.TTL)
	case c.Addr.Is6():
		b.AddBytes([]byte{0, 0, 0, 0, AddrTypeIPv6})
		v := c.Addr.As16()
		b.AddBytes(v[:])
		b.AddUint32(c.TTL)
	}
	return b.BytesOrPanic()
}

// EndReason is the reason byte of RELAY_END (tor-spec §6.3).
type EndReason uint8

// END reasons.
const (
	EndMisc           EndReason = 1
	EndResolveFailed  EndReason = 2
	EndConnectRefused EndReason = 3
	EndExitPolicy     EndReason = 4
	EndDestroy        EndReason = 5
	EndDone           EndReason = 6
	EndTimeout        EndReason = 7
	EndNoRoute        EndReason = 8
	EndHibernating    EndReason = 9
	EndInternal       EndReason = 10
	EndResourceLimit  EndReason = 11
	EndConnReset      EndReason = 12
	EndTorProtocol    EndReason = 13
	EndNotDirectory   EndReason = 14
)

var endNames = []string{"", "MISC", "RESOLVEFAILED", "CONNECTREFUSED", "EXITPOLICY",
	"DESTROY", "DONE", "TIMEOUT", "NOROUTE", "HIBERNATING", "INTERNAL", "RESOURCELIMIT",
	"CONNRESET", "TORPROTOCOL", "NOTDIRECTORY"}

func (r EndReason) String() string {
	if r > 0 && int(r) < len(endNames) {
		return endNames[r]
	}
	return fmt.Sprintf("EndReason(%d)", uint8(r))
}

// End is a RELAY_END body.
type End struct {
	Reason EndReason
	// For EndExitPolicy the exit may include the address it resolved and a TTL.
	Addr netip.Addr
	TTL  uint32
}

// DecodeEnd parses an END body. An empty body means reason MISC.
func DecodeEnd(p []byte) (*End, error) {
	s := cryptobyte.String(p)
	e := &End{Reason: EndMisc}
	var r uint8
	if !s.ReadUint8(&r) {
		return e, nil
	}
	e.Reason = EndReason(r)
	if e.Reason == EndExitPolicy {
		var a []byte
		switch len(s) {
		case 8:
			s.ReadBytes(&a, 4)
			e.Addr = netip.AddrFrom4([4]byte(a))
			s.ReadUint32(&e.TTL)
		case 20:
			s.ReadBytes(&a, 16)
			e.Addr = netip.AddrFrom16([16]byte(a))
			s.ReadUint32(&e.TTL)
		}
	}
	return e, nil
}

// Encode returns the END body.
func (e *End) Encode() []byte { return []byte{byte(e.Reason)} }

// ResolvedAnswer is one answer of RELAY_RESOLVED (tor-spec §6.4).
type ResolvedAnswer struct {
	Type     uint8 // AddrType*
	Addr     netip.Addr
	Hostname string
	TTL      uint32
}

// DecodeResolved parses a RESOLVED body.
func DecodeResolved(p []byte) ([]ResolvedAnswer, error) {
	s := cryptobyte.String(p)
	var out []ResolvedAnswer
	for !s.Empty() {
		var a ResolvedAnswer
		var v cryptobyte.String
		if !s.ReadUint8(&a.Type) || !s.ReadUint8LengthPrefixed(&v) || !s.ReadUint32(&a.TTL) {
			return nil, errors.New("cell: truncated RESOLVED")
		}
		switch a.Type {
		case AddrTypeIPv4:
			if len(v) != 4 {
				return nil, errors.New("cell: bad IPv4 in RESOLVED")
			}
			a.Addr = netip.AddrFrom4([4]byte(v))
		case AddrTypeIPv6:
			if len(v) != 16 {
				return nil, errors.New("cell: bad IPv6 in RESOLVED")
			}
			a.Addr = netip.AddrFrom16([16]byte(v))
		case AddrTypeHostname:
			a.Hostname = string(v)
		}
		out = append(out, a)
	}
	return out, nil
}

// EncodeResolved builds a RESOLVED body (used in tests).
func EncodeResolved(ans []ResolvedAnswer) ([]byte, error) {
	var b cryptobyte.Builder
	for _, a := range ans {
		b.AddUint8(a.Type)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			switch a.Type {
			case AddrTypeIPv4:
				v := a.Addr.As4()
				b.AddBytes(v[:])
			case AddrTypeIPv6:
				v := a.Addr.As16()
				b.AddBytes(v[:])
			case AddrTypeHostname:
				b.AddBytes([]byte(a.Hostname))
			}
		})
		b.AddUint32(a.TTL)
	}
	return b.Bytes()
}

// Sendme is a RELAY_SENDME body (tor-spec §7.4, prop 289). Version 0 has
// no body; version 1 carries the 20-byte digest of the cell that
// triggered it.
type Sendme struct {
	Version uint8
	Digest  []byte
}

// Encode returns the SENDME body. Version 0 encodes as empty.
func (s *Sendme) Encode() []byte {
	if s.Version == 0 {
		return nil
	}
	out := []byte{s.Version, byte(len(s.Digest) >> 8), byte(len(s.Digest))}
	return append(out, s.Digest...)
}

// DecodeSendme parses a SENDME body. An empty body is version 0.
func DecodeSendme(p []byte) (*Sendme, error) {
	if len(p) == 0 {
		return &Sendme{}, nil
	}
	s := cryptobyte.String(p)
	m := &Sendme{}
	var d cryptobyte.String
	if !s.ReadUint8(&m.Version) || !s.ReadUint16LengthPrefixed(&d) {
		return nil, errors.New("cell: truncated SENDME")
	}
	switch m.Version {
	case 0:
	case 1:
		if len(d) < 20 {
			return nil, errors.New("cell: SENDME v1 digest too short")
		}
		m.Digest = append([]byte(nil), d[:20]...)
	default:
		return nil, fmt.Errorf("cell: unknown SENDME version %d", m.Version)
	}
	return m, nil
}

// Xon is a RELAY_XON body (prop 324 §4.1): version 0 and an advisory
// drain rate in kilobytes/s (0: no advice).
type Xon struct{ KBpsEWMA uint32 }

// Encode returns the XON body.
func (x *Xon) Encode() []byte {
	return []byte{0, byte(x.KBpsEWMA >> 24), byte(x.KBpsEWMA >> 16), byte(x.KBpsEWMA >> 8), byte(x.KBpsEWMA)}
}

// DecodeXon parses an XON body.
func DecodeXon(p []byte) (*Xon, error) {
	s := cryptobyte.String(p)
	var v uint8
	x := &Xon{}
	if !s.ReadUint8(&v) || !s.ReadUint32(&x.KBpsEWMA) {
		return nil, errors.New("cell: truncated XON")
	}
	if v != 0 {
		return nil, fmt.Errorf("cell: XON version %d", v)
	}
	return x, nil
}

// EncodeXoff returns an XOFF body (version 0).
func EncodeXoff() []byte { return []byte{0} }

// DecodeXoff checks an XOFF body.
func DecodeXoff(p []byte) error {
	if len(p) < 1 || p[0] != 0 {
		return errors.New("cell: bad XOFF")
	}
	return nil
}
