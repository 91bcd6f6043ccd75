// Tor Ed25519 certificates as used in v3 onion service descriptors:
// cert-spec §2.1 (format), §2.2.1 (signed-with-ed25519-key extension);
// rend-spec-v3 Appendix E (cert types 08, 09, 0B).

package hsdesc

import (
	"crypto/ed25519"
	"errors"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Certificate types used by onion service descriptors.
const (
	CertTypeDescSigning = 0x08 // descriptor signing key, signed by blinded key
	CertTypeIntroAuth   = 0x09 // intro point auth key, signed by desc signing key
	CertTypeIntroEnc    = 0x0B // ed25519 form of intro enc key, signed by desc signing key
)

const extSignedWithEd25519 = 0x04

// Cert is a parsed Tor Ed25519 certificate.
type Cert struct {
	Type          byte
	Expires       time.Time
	KeyType       byte
	CertifiedKey  [32]byte
	SigningKey    [32]byte // from extension 04, if HasSigningKey
	HasSigningKey bool
	Signed        []byte // all bytes covered by the signature
	Signature     [64]byte
}

// Cert errors.
var (
	ErrCertMalformed = errors.New("hsdesc: malformed ed25519 certificate")
	ErrCertType      = errors.New("hsdesc: wrong certificate type")
	ErrCertNoKey     = errors.New("hsdesc: certificate lacks signing-key extension")
	ErrCertSignature = errors.New("hsdesc: bad certificate signature")
	ErrCertExpired   = errors.New("hsdesc: certificate expired")
)

// ParseCert parses an encoded certificate. Unknown extensions with the
// AFFECTS_VALIDATION flag make the certificate invalid (cert-spec §2.1).
func ParseCert(b []byte) (*Cert, error) {
	s := cryptobyte.String(b)
	var ver, typ, kt, n uint8
	var exp uint32
	c := &Cert{}
	var key []byte
	if !s.ReadUint8(&ver) || ver != 1 || !s.ReadUint8(&typ) || !s.ReadUint32(&exp) ||
		!s.ReadUint8(&kt) || !s.ReadBytes(&key, 32) || !s.ReadUint8(&n) {
		return nil, ErrCertMalformed
	}
	c.Type, c.KeyType = typ, kt
	c.Expires = time.Unix(int64(exp)*3600, 0).UTC()
	copy(c.CertifiedKey[:], key)
	for i := 0; i < int(n); i++ {
		var l uint16
		var et, fl uint8
		var data []byte
		if !s.ReadUint16(&l) || !s.ReadUint8(&et) || !s.ReadUint8(&fl) || !s.ReadBytes(&data, int(l)) {
			return nil, ErrCertMalformed
		}
		switch {
		case et == extSignedWithEd25519:
			if len(data) != 32 || c.HasSigningKey {
				return nil, ErrCertMalformed
			}
			copy(c.SigningKey[:], data)
			c.HasSigningKey = true
		case fl&1 != 0:
			return nil, ErrCertMalformed
		}
	}
	var sig []byte
	if !s.ReadBytes(&sig, 64) || !s.Empty() {
		return nil, ErrCertMalformed
	}
	copy(c.Signature[:], sig)
	c.Signed = b[:len(b)-64]
	return c, nil
}

// Check verifies type, presence of the signing-key extension, that the
// extension names signer (if signer is non-nil), the signature, and,
// unless now is zero, expiry.
func (c *Cert) Check(typ byte, signer *[32]byte, now time.Time) error {
	if c.Type != typ {
		return ErrCertType
	}
	if !c.HasSigningKey {
		return ErrCertNoKey
	}
	key := c.SigningKey
	if signer != nil {
		if *signer != key {
			return ErrCertSignature
		}
	}
	if !ed25519.Verify(key[:], c.Signed, c.Signature[:]) {
		return ErrCertSignature
	}
	if !now.IsZero() && !now.Before(c.Expires) {
		return ErrCertExpired
	}
	return nil
}

// SignFunc signs a message with some ed25519 key.
type SignFunc func(msg []byte) []byte

// EncodeCert builds a certificate of typ certifying key, with the
// signing-key extension set to signer and signed by sign.
func EncodeCert(typ byte, expires time.Time, key, signer [32]byte, sign SignFunc) []byte {
	var b cryptobyte.Builder
	b.AddUint8(1)
	b.AddUint8(typ)
	b.AddUint32(uint32((expires.Unix() + 3599) / 3600))
	b.AddUint8(1)
	b.AddBytes(key[:])
	b.AddUint8(1)
	b.AddUint16(32)
	b.AddUint8(extSignedWithEd25519)
	b.AddUint8(0)
	b.AddBytes(signer[:])
	body := b.BytesOrPanic()
	return append(body, sign(body)...)
}
