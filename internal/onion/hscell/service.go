// The service side's relay message bodies: rend-spec-v3 §3.1.1
// [EST_INTRO] (ESTABLISH_INTRO with an ed25519 auth key, HANDSHAKE_AUTH
// and signature), §3.1.1.1 [EST_INTRO_DOS_EXT] (DoS parameters
// extension), §3.1.3 [INTRO_ESTABLISHED].

package hscell

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// EstablishIntroSigPrefix prefixes the signed part of ESTABLISH_INTRO.
const EstablishIntroSigPrefix = "Tor establish-intro cell v1"

// Extension and parameter types of ESTABLISH_INTRO (§3.1.1.1).
const (
	ExtDoSParams      = 1
	DoSParamRate      = 1 // DOS_INTRODUCE2_RATE_PER_SEC
	DoSParamBurst     = 2 // DOS_INTRODUCE2_BURST_PER_SEC
	DoSParamMaxValue  = 0x7fffffff
	establishIntroMAC = 32
)

// DoSParams are the INTRODUCE2 rate limits an intro point is asked to
// apply (HiddenServiceEnableIntroDoSDefense, ...RatePerSec, ...BurstPerSec).
// Zero in either disables the defense at the intro point.
type DoSParams struct {
	RatePerSec, BurstPerSec uint64
}

// Extension encodes the DoS parameters extension: N_PARAMS 2, then rate
// and burst, each PARAM_TYPE | 8-byte value.
func (d DoSParams) Extension() (Extension, error) {
	if d.RatePerSec > DoSParamMaxValue || d.BurstPerSec > DoSParamMaxValue {
		return Extension{}, fmt.Errorf("hscell: DoS parameter above %d", DoSParamMaxValue)
	}
	var b cryptobyte.Builder
	b.AddUint8(2)
	b.AddUint8(DoSParamRate)
	b.AddUint64(d.RatePerSec)
	b.AddUint8(DoSParamBurst)
	b.AddUint64(d.BurstPerSec)
	data, err := b.Bytes()
	return Extension{Type: ExtDoSParams, Data: data}, err
}

// EstablishIntro builds ESTABLISH_INTRO: AUTH_KEY_TYPE 02 | AUTH_KEY_LEN |
// AUTH_KEY | extensions | HANDSHAKE_AUTH | SIG_LEN | SIG, where
// HANDSHAKE_AUTH = MAC(KH, all earlier bytes) with the intro circuit's
// last-hop nonce KH (tor-spec §5.2.2) and SIG is the auth key's signature
// of EstablishIntroSigPrefix | all bytes before SIG_LEN.
func EstablishIntro(authKey ed25519.PrivateKey, kh [20]byte, exts []Extension) ([]byte, error) {
	if len(exts) > 255 {
		return nil, ErrMalformed
	}
	var b cryptobyte.Builder
	b.AddUint8(AuthKeyTypeEd)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(authKey.Public().(ed25519.PublicKey)) })
	appendExts(&b, exts)
	head, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	mac := hscrypto.MAC(kh[:], head)
	signed := append(head, mac[:]...)
	sig := ed25519.Sign(authKey, append([]byte(EstablishIntroSigPrefix), signed...))
	out := append(signed, byte(len(sig)>>8), byte(len(sig)))
	return append(out, sig...), nil
}

// ParsedEstablishIntro is an ESTABLISH_INTRO whose MAC and signature
// were checked (what an introduction point does with it).
type ParsedEstablishIntro struct {
	AuthKey    [32]byte
	Extensions []Extension
}

// ParseEstablishIntro parses ESTABLISH_INTRO and checks HANDSHAKE_AUTH
// against kh and the signature against the auth key.
func ParseEstablishIntro(body []byte, kh [20]byte) (*ParsedEstablishIntro, error) {
	s := cryptobyte.String(body)
	var kt uint8
	var key, mac, sig cryptobyte.String
	if !s.ReadUint8(&kt) || kt != AuthKeyTypeEd || !s.ReadUint16LengthPrefixed(&key) || len(key) != 32 {
		return nil, fmt.Errorf("%w: ESTABLISH_INTRO auth key", ErrMalformed)
	}
	exts, err := parseExts(&s)
	if err != nil {
		return nil, err
	}
	headLen := len(body) - len(s)
	if !s.ReadBytes((*[]byte)(&mac), establishIntroMAC) || !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, fmt.Errorf("%w: ESTABLISH_INTRO trailer", ErrMalformed)
	}
	want := hscrypto.MAC(kh[:], body[:headLen])
	if string(want[:]) != string(mac) {
		return nil, errors.New("hscell: ESTABLISH_INTRO HANDSHAKE_AUTH mismatch")
	}
	signed := append([]byte(EstablishIntroSigPrefix), body[:headLen+establishIntroMAC]...)
	if !ed25519.Verify(ed25519.PublicKey(key), signed, sig) {
		return nil, errors.New("hscell: ESTABLISH_INTRO bad signature")
	}
	return &ParsedEstablishIntro{AuthKey: [32]byte(key), Extensions: exts}, nil
}

// ParseIntroEstablished checks an INTRO_ESTABLISHED body: an extension
// list (whose unknown types are ignored). An empty body, as very old
// relays sent, is accepted too.
func ParseIntroEstablished(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	s := cryptobyte.String(b)
	_, err := parseExts(&s)
	return err
}
