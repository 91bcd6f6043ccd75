// Package hscell builds and parses the relay message bodies of the v3
// onion service client protocol: rend-spec-v3 §0.5 (command numbers),
// §3.2.1 [FMT_INTRO1], §3.2.2 [INTRO_ACK], §3.3 (INTRODUCE encrypted
// plaintext), §3.3.2 [NTOR-WITH-EXTRA-DATA], §4.1 [EST_REND_POINT],
// §4.2 [JOIN_REND]. Parsers never panic on bad input.
package hscell

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Relay commands used by onion services (rend-spec §0.5).
const (
	CmdEstablishIntro        = 32
	CmdEstablishRendezvous   = 33
	CmdIntroduce1            = 34
	CmdIntroduce2            = 35
	CmdRendezvous1           = 36
	CmdRendezvous2           = 37
	CmdIntroEstablished      = 38
	CmdRendezvousEstablished = 39
	CmdIntroduceAck          = 40
)

// Sizes.
const (
	CookieLen      = 20
	legacyKeyIDLen = 20
	AuthKeyTypeEd  = 2 // AUTH_KEY_TYPE ed25519
	OnionKeyNtor   = 1 // ONION_KEY_TYPE ntor
	HandshakeLen   = 64
	// Introduce1MinSize: C tor pads the INTRODUCE1 header plus the
	// plaintext to at least this (HS_CELL_INTRODUCE1_MIN_SIZE), so cells
	// are not distinguishable by their link specifier lists.
	Introduce1MinSize = 246
)

// ErrMalformed reports a body that does not parse.
var ErrMalformed = errors.New("hscell: malformed message body")

// Extension is one EXT_FIELD of an extension list.
type Extension struct {
	Type byte
	Data []byte
}

func appendExts(b *cryptobyte.Builder, exts []Extension) {
	b.AddUint8(uint8(len(exts)))
	for _, e := range exts {
		b.AddUint8(e.Type)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
	}
}

func parseExts(s *cryptobyte.String) ([]Extension, error) {
	var n uint8
	if !s.ReadUint8(&n) {
		return nil, ErrMalformed
	}
	var out []Extension
	for i := 0; i < int(n); i++ {
		var t uint8
		var d cryptobyte.String
		if !s.ReadUint8(&t) || !s.ReadUint8LengthPrefixed(&d) {
			return nil, ErrMalformed
		}
		out = append(out, Extension{t, append([]byte(nil), d...)})
	}
	return out, nil
}

// EstablishRendezvous returns the ESTABLISH_RENDEZVOUS body (§4.1).
func EstablishRendezvous(cookie [CookieLen]byte) []byte { return append([]byte(nil), cookie[:]...) }

// ParseEstablishRendezvous extracts the cookie, ignoring extra bytes.
func ParseEstablishRendezvous(b []byte) ([CookieLen]byte, error) {
	var c [CookieLen]byte
	if len(b) < CookieLen {
		return c, ErrMalformed
	}
	copy(c[:], b)
	return c, nil
}

// Introduce1Header returns the INTRODUCE1 body up to ENCRYPTED:
// LEGACY_KEY_ID (20 zero bytes) | AUTH_KEY_TYPE 02 | AUTH_KEY_LEN |
// AUTH_KEY | extensions. The hs-ntor MAC covers these bytes.
func Introduce1Header(authKey [32]byte, exts []Extension) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes(make([]byte, legacyKeyIDLen))
	b.AddUint8(AuthKeyTypeEd)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(authKey[:]) })
	appendExts(&b, exts)
	return b.Bytes()
}

// Introduce1 is a parsed INTRODUCE1/INTRODUCE2 body.
type Introduce1 struct {
	AuthKey    [32]byte
	Extensions []Extension
	Header     []byte // bytes before ENCRYPTED (MAC input)
	Encrypted  []byte // CLIENT_PK | ENCRYPTED_DATA | MAC
}

// ParseIntroduce1 parses an INTRODUCE1 (or INTRODUCE2) body.
func ParseIntroduce1(body []byte) (*Introduce1, error) {
	s := cryptobyte.String(body)
	var legacy, key []byte
	var kt uint8
	var ks cryptobyte.String
	if !s.ReadBytes(&legacy, legacyKeyIDLen) || !s.ReadUint8(&kt) || !s.ReadUint16LengthPrefixed(&ks) {
		return nil, ErrMalformed
	}
	for _, c := range legacy {
		if c != 0 {
			return nil, fmt.Errorf("%w: legacy INTRODUCE1", ErrMalformed)
		}
	}
	if kt != AuthKeyTypeEd || !ks.ReadBytes(&key, 32) || !ks.Empty() {
		return nil, fmt.Errorf("%w: auth key", ErrMalformed)
	}
	exts, err := parseExts(&s)
	if err != nil {
		return nil, err
	}
	m := &Introduce1{Extensions: exts, Encrypted: append([]byte(nil), s...)}
	copy(m.AuthKey[:], key)
	m.Header = append([]byte(nil), body[:len(body)-len(s)]...)
	return m, nil
}

// IntroducePlaintext is the decrypted part of INTRODUCE1/2 (§3.3).
type IntroducePlaintext struct {
	RendezvousCookie [CookieLen]byte
	Extensions       []Extension
	OnionKey         [32]byte // rendezvous point's ntor onion key
	LinkSpecs        []LinkSpec
}

// Encode returns the plaintext, zero-padded so that headerLen plus its
// length reaches Introduce1MinSize (as C tor does).
func (p *IntroducePlaintext) Encode(headerLen int) ([]byte, error) {
	if len(p.LinkSpecs) > 255 || len(p.Extensions) > 255 {
		return nil, ErrMalformed
	}
	var b cryptobyte.Builder
	b.AddBytes(p.RendezvousCookie[:])
	appendExts(&b, p.Extensions)
	b.AddUint8(OnionKeyNtor)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p.OnionKey[:]) })
	AppendLinkSpecs(&b, p.LinkSpecs)
	out, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	if n := Introduce1MinSize - headerLen - len(out); n > 0 {
		out = append(out, make([]byte, n)...)
	}
	return out, nil
}

// ParseIntroducePlaintext parses a decrypted INTRODUCE2 plaintext.
func ParseIntroducePlaintext(b []byte) (*IntroducePlaintext, error) {
	s := cryptobyte.String(b)
	p := &IntroducePlaintext{}
	var cookie, key []byte
	var kt uint8
	var ks cryptobyte.String
	if !s.ReadBytes(&cookie, CookieLen) {
		return nil, ErrMalformed
	}
	copy(p.RendezvousCookie[:], cookie)
	exts, err := parseExts(&s)
	if err != nil {
		return nil, err
	}
	p.Extensions = exts
	if !s.ReadUint8(&kt) || !s.ReadUint16LengthPrefixed(&ks) || kt != OnionKeyNtor || !ks.ReadBytes(&key, 32) || !ks.Empty() {
		return nil, fmt.Errorf("%w: onion key", ErrMalformed)
	}
	copy(p.OnionKey[:], key)
	if p.LinkSpecs, err = ParseLinkSpecs(&s); err != nil {
		return nil, err
	}
	return p, nil // remaining bytes are PAD
}

// IntroduceAck status values (§3.2.2).
const (
	IntroAckSuccess      = 0
	IntroAckUnknownID    = 1
	IntroAckBadFormat    = 2
	IntroAckCantRelay    = 3
	introAckMaxKnownCode = 3
)

// IntroduceAck is a parsed INTRODUCE_ACK body.
type IntroduceAck struct {
	Status     uint16
	Extensions []Extension
}

// StatusString names the status.
func (a *IntroduceAck) StatusString() string {
	switch a.Status {
	case IntroAckSuccess:
		return "success"
	case IntroAckUnknownID:
		return "service ID not recognized"
	case IntroAckBadFormat:
		return "bad message format"
	case IntroAckCantRelay:
		return "can't relay cell to service"
	}
	return fmt.Sprintf("unknown status %d", a.Status)
}

// ParseIntroduceAck parses INTRODUCE_ACK.
func ParseIntroduceAck(b []byte) (*IntroduceAck, error) {
	s := cryptobyte.String(b)
	a := &IntroduceAck{}
	if !s.ReadUint16(&a.Status) {
		return nil, ErrMalformed
	}
	if s.Empty() { // tolerate a missing extension count
		return a, nil
	}
	exts, err := parseExts(&s)
	if err != nil {
		return nil, err
	}
	a.Extensions = exts
	return a, nil
}

// EncodeIntroduceAck builds INTRODUCE_ACK (for fakes and tests).
func EncodeIntroduceAck(status uint16) []byte { return []byte{byte(status >> 8), byte(status), 0} }

// Rendezvous1 builds RENDEZVOUS1: cookie | HANDSHAKE_INFO (rend-spec
// §4.2; the onion service sends it).
func Rendezvous1(cookie [CookieLen]byte, handshake []byte) []byte {
	return append(append([]byte(nil), cookie[:]...), handshake...)
}

// ParseRendezvous1 splits RENDEZVOUS1 into cookie and HANDSHAKE_INFO.
func ParseRendezvous1(b []byte) (cookie [CookieLen]byte, handshake []byte, err error) {
	if len(b) < CookieLen+HandshakeLen {
		return cookie, nil, ErrMalformed
	}
	copy(cookie[:], b)
	return cookie, append([]byte(nil), b[CookieLen:CookieLen+HandshakeLen]...), nil
}

// ParseRendezvous2 returns HANDSHAKE_INFO (SERVER_PK | AUTH) from a
// RENDEZVOUS2 body, ignoring any padding after it.
func ParseRendezvous2(b []byte) ([]byte, error) {
	if len(b) < HandshakeLen {
		return nil, ErrMalformed
	}
	return append([]byte(nil), b[:HandshakeLen]...), nil
}

// Rendezvous2 builds RENDEZVOUS2 from HANDSHAKE_INFO (for fakes).
func Rendezvous2(handshake []byte) []byte { return append([]byte(nil), handshake...) }
