// cert-spec §2 "Ed25519 certificates" (format, cert types, extensions
// incl. signed-with-ed25519-key ext type 4) and cert-spec §2.3 / tor-spec
// §4.2 RSA→Ed25519 cross-certificate (CERTS type 7), plus RSA identity
// helpers (tor-spec §1.1: identity digest is SHA-1 of the DER PKCS#1 key).
package torcrypto

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Ed25519 certificate types (cert-spec §A.1).
const (
	CertTypeIdentitySigning = 0x04
	CertTypeSigningLink     = 0x05
	CertTypeSigningAuth     = 0x06
	CertTypeHSDescSigning   = 0x08
	CertTypeHSIPAuth        = 0x09
	CertTypeNtorCC          = 0x0A
	CertTypeHSIPEnc         = 0x0B
)

// Certified key types (cert-spec §2.1).
const (
	CertKeyEd25519    = 0x01
	CertKeySHA256RSA  = 0x02
	CertKeySHA256X509 = 0x03
)

// Extension types and flags (cert-spec §2.2).
const (
	ExtSignedWithEd25519Key  = 0x04
	ExtFlagAffectsValidation = 0x01
)

// Ed25519Cert is a parsed Tor Ed25519 certificate.
type Ed25519Cert struct {
	Version      uint8
	CertType     uint8
	Expiration   time.Time // from hours since the epoch
	KeyType      uint8
	CertifiedKey [32]byte
	// SigningKey is set when the signed-with-ed25519-key extension is present.
	SigningKey ed25519.PublicKey
	Extensions []CertExtension
	Signature  []byte
	signed     []byte
}

// CertExtension is one extension of an Ed25519 certificate.
type CertExtension struct {
	Type  uint8
	Flags uint8
	Data  []byte
}

// ParseEd25519Cert parses a cert-spec §2.1 certificate. It rejects
// unknown extensions flagged "affects validation".
func ParseEd25519Cert(b []byte) (*Ed25519Cert, error) {
	s := cryptobyte.String(b)
	c := &Ed25519Cert{}
	var hours uint32
	var key []byte
	var n uint8
	if !s.ReadUint8(&c.Version) || !s.ReadUint8(&c.CertType) || !s.ReadUint32(&hours) ||
		!s.ReadUint8(&c.KeyType) || !s.ReadBytes(&key, 32) || !s.ReadUint8(&n) {
		return nil, errors.New("torcrypto: truncated Ed25519 certificate")
	}
	if c.Version != 1 {
		return nil, fmt.Errorf("torcrypto: Ed25519 certificate version %d", c.Version)
	}
	c.Expiration = time.Unix(int64(hours)*3600, 0)
	copy(c.CertifiedKey[:], key)
	for i := 0; i < int(n); i++ {
		var l uint16
		var e CertExtension
		var d []byte
		if !s.ReadUint16(&l) || !s.ReadUint8(&e.Type) || !s.ReadUint8(&e.Flags) || !s.ReadBytes(&d, int(l)) {
			return nil, errors.New("torcrypto: truncated certificate extension")
		}
		e.Data = append([]byte(nil), d...)
		switch e.Type {
		case ExtSignedWithEd25519Key:
			if len(d) != 32 {
				return nil, errors.New("torcrypto: bad signed-with-ed25519-key extension")
			}
			c.SigningKey = ed25519.PublicKey(e.Data)
		default:
			if e.Flags&ExtFlagAffectsValidation != 0 {
				return nil, fmt.Errorf("torcrypto: unknown critical certificate extension %d", e.Type)
			}
		}
		c.Extensions = append(c.Extensions, e)
	}
	var sig []byte
	if !s.ReadBytes(&sig, ed25519.SignatureSize) || !s.Empty() {
		return nil, errors.New("torcrypto: bad Ed25519 certificate signature length")
	}
	c.Signature = append([]byte(nil), sig...)
	c.signed = append([]byte(nil), b[:len(b)-ed25519.SignatureSize]...)
	return c, nil
}

// Verify checks the signature with signer (or with the embedded
// signed-with-ed25519-key when signer is nil) and expiry at now.
func (c *Ed25519Cert) Verify(signer ed25519.PublicKey, now time.Time) error {
	if signer == nil {
		signer = c.SigningKey
	}
	if len(signer) != ed25519.PublicKeySize {
		return errors.New("torcrypto: no signing key for Ed25519 certificate")
	}
	if c.SigningKey != nil && !c.SigningKey.Equal(signer) {
		return errors.New("torcrypto: Ed25519 certificate signed-with key mismatch")
	}
	if !ed25519.Verify(signer, c.signed, c.Signature) {
		return fmt.Errorf("torcrypto: bad signature on Ed25519 certificate type %d", c.CertType)
	}
	if !now.Before(c.Expiration) {
		return fmt.Errorf("torcrypto: Ed25519 certificate type %d expired at %v", c.CertType, c.Expiration)
	}
	return nil
}

const crossCertPrefix = "Tor TLS RSA/Ed25519 cross-certificate"

// RSACrossCert is an RSA→Ed25519 cross-certificate (cert-spec §2.3).
type RSACrossCert struct {
	Ed25519Key [32]byte
	Expiration time.Time
	Signature  []byte
	signed     []byte
}

// ParseRSACrossCert parses a cross-certificate.
func ParseRSACrossCert(b []byte) (*RSACrossCert, error) {
	s := cryptobyte.String(b)
	c := &RSACrossCert{}
	var key []byte
	var hours uint32
	var sig cryptobyte.String
	if !s.ReadBytes(&key, 32) || !s.ReadUint32(&hours) || !s.ReadUint8LengthPrefixed(&sig) || !s.Empty() {
		return nil, errors.New("torcrypto: malformed RSA cross-certificate")
	}
	copy(c.Ed25519Key[:], key)
	c.Expiration = time.Unix(int64(hours)*3600, 0)
	c.Signature = append([]byte(nil), sig...)
	c.signed = append([]byte(nil), b[:36]...)
	return c, nil
}

// Verify checks the RSA signature over SHA-256(prefix | key | expiry)
// made with pub (PKCS#1 v1.5 padding of the raw digest, as tor signs) and
// the expiry.
func (c *RSACrossCert) Verify(pub *rsa.PublicKey, now time.Time) error {
	h := sha256.New()
	h.Write([]byte(crossCertPrefix))
	h.Write(c.signed)
	if err := rsa.VerifyPKCS1v15(pub, crypto.Hash(0), h.Sum(nil), c.Signature); err != nil {
		return errors.New("torcrypto: bad RSA→Ed25519 cross-certificate signature")
	}
	if !now.Before(c.Expiration) {
		return fmt.Errorf("torcrypto: RSA→Ed25519 cross-certificate expired at %v", c.Expiration)
	}
	return nil
}

// RSAIdentity returns SHA-1 of the DER PKCS#1 encoding of pub.
func RSAIdentity(pub *rsa.PublicKey) [20]byte {
	return sha1.Sum(x509.MarshalPKCS1PublicKey(pub))
}

// ParseRSAIdentityCert parses a relay's self-signed X.509 RSA identity
// certificate (CERTS type 2), checks its self-signature and validity
// period, and returns the RSA key.
func ParseRSAIdentityCert(der []byte, now time.Time) (*rsa.PublicKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("torcrypto: RSA identity certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("torcrypto: identity certificate key is not RSA")
	}
	if pub.N.BitLen() != 1024 {
		return nil, fmt.Errorf("torcrypto: RSA identity key is %d bits, want 1024", pub.N.BitLen())
	}
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.SHA256WithRSA:
		h = crypto.SHA256
	case x509.SHA1WithRSA:
		h = crypto.SHA1
	case x509.SHA384WithRSA:
		h = crypto.SHA384
	case x509.SHA512WithRSA:
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("torcrypto: identity certificate signature algorithm %v", cert.SignatureAlgorithm)
	}
	hh := h.New()
	hh.Write(cert.RawTBSCertificate)
	if err := rsa.VerifyPKCS1v15(pub, h, hh.Sum(nil), cert.Signature); err != nil {
		return nil, errors.New("torcrypto: RSA identity certificate is not self-signed")
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("torcrypto: RSA identity certificate not valid at %v (valid %v to %v)", now, cert.NotBefore, cert.NotAfter)
	}
	return pub, nil
}
