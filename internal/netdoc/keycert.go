// Authority key certificates: dir-spec §3.1 ("Creating key
// certificates"), signed as in dir-spec §1.3.

package netdoc

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// KeyCert is an authority key certificate (version 3).
type KeyCert struct {
	Fingerprint [20]byte // v3 identity: SHA-1 of the DER identity key
	DirAddress  string
	IdentityKey *rsa.PublicKey
	SigningKey  *rsa.PublicKey
	// SigningKeyDigest is SHA-1 of the DER signing key, as named by
	// consensus directory-signature items.
	SigningKeyDigest [20]byte
	Published        time.Time
	Expires          time.Time

	crossCert     []byte
	certification []byte
	signedDigest  [20]byte // SHA-1 through newline after dir-key-certification
	identityDER   []byte

	// Raw is the exact text of the certificate.
	Raw string
}

func parseRSAKey(doc string, it *Item) (*rsa.PublicKey, []byte, error) {
	if it.Object == nil || it.Object.Label != "RSA PUBLIC KEY" {
		return nil, nil, errf(doc, it.Line, "%s: missing RSA PUBLIC KEY object", it.Keyword)
	}
	if len(it.Args) != 0 {
		return nil, nil, errf(doc, it.Line, "%s takes no arguments", it.Keyword)
	}
	k, err := x509.ParsePKCS1PublicKey(it.Object.Data)
	if err != nil {
		return nil, nil, errf(doc, it.Line, "%s: %v", it.Keyword, err)
	}
	if k.N.BitLen() < 1024 {
		return nil, nil, errf(doc, it.Line, "%s: key shorter than 1024 bits", it.Keyword)
	}
	return k, it.Object.Data, nil
}

// ParseKeyCerts parses one or more concatenated key certificates (as
// served at /tor/keys/...).
func ParseKeyCerts(src string) ([]*KeyCert, error) {
	var out []*KeyCert
	const kw = "dir-key-certificate-version"
	line := 1
	for len(strings.TrimSpace(src)) > 0 {
		i := strings.Index(src[1:], "\n"+kw)
		end := len(src)
		if i >= 0 {
			end = i + 2
		}
		kc, err := parseKeyCert(src[:end], line)
		if err != nil {
			return out, err
		}
		out = append(out, kc)
		line += strings.Count(src[:end], "\n")
		src = src[end:]
	}
	if len(out) == 0 {
		return nil, errf("key certificate", 0, "empty document")
	}
	return out, nil
}

// ParseKeyCert parses exactly one key certificate.
func ParseKeyCert(src string) (*KeyCert, error) { return parseKeyCert(src, 1) }

func parseKeyCert(src string, firstLine int) (*KeyCert, error) {
	const doc = "key certificate"
	t := NewTokenizer(doc, src)
	t.line = firstLine
	it, ok := t.Next()
	if !ok {
		if t.Err() != nil {
			return nil, t.Err()
		}
		return nil, errf(doc, firstLine, "empty document")
	}
	if it.Keyword != "dir-key-certificate-version" {
		return nil, errf(doc, it.Line, "first item must be dir-key-certificate-version")
	}
	if it.Arg(0) != "3" {
		return nil, errf(doc, it.Line, "unsupported certificate version %q", it.Arg(0))
	}
	kc := &KeyCert{}
	start := it.Start
	seen := map[string]bool{}
	var fpLine int
	done := false
	for !done {
		it, ok := t.Next()
		if !ok {
			break
		}
		switch it.Keyword {
		case "dir-address", "fingerprint", "dir-identity-key", "dir-key-published",
			"dir-key-expires", "dir-signing-key", "dir-key-crosscert", "dir-key-certification":
			if seen[it.Keyword] {
				return nil, errf(doc, it.Line, "%s appears more than once", it.Keyword)
			}
			seen[it.Keyword] = true
		case "dir-key-certificate-version":
			return nil, errf(doc, it.Line, "dir-key-certificate-version not at start")
		}
		var err error
		switch it.Keyword {
		case "dir-address":
			kc.DirAddress = it.Arg(0)
		case "fingerprint":
			fpLine = it.Line
			if !parseHexID(kc.Fingerprint[:], it.Arg(0)) {
				return nil, errf(doc, it.Line, "bad fingerprint")
			}
		case "dir-identity-key":
			kc.IdentityKey, kc.identityDER, err = parseRSAKey(doc, &it)
		case "dir-signing-key":
			var der []byte
			kc.SigningKey, der, err = parseRSAKey(doc, &it)
			if err == nil {
				kc.SigningKeyDigest = sha1.Sum(der)
			}
		case "dir-key-published":
			kc.Published, err = parseTime2(doc, &it, 0)
		case "dir-key-expires":
			kc.Expires, err = parseTime2(doc, &it, 0)
		case "dir-key-crosscert":
			if it.Object == nil || (it.Object.Label != "ID SIGNATURE" && it.Object.Label != "SIGNATURE") {
				return nil, errf(doc, it.Line, "dir-key-crosscert: missing signature object")
			}
			kc.crossCert = it.Object.Data
		case "dir-key-certification":
			if it.Object == nil || it.Object.Label != "SIGNATURE" {
				return nil, errf(doc, it.Line, "dir-key-certification: missing SIGNATURE object")
			}
			kc.certification = it.Object.Data
			kc.signedDigest = sha1.Sum([]byte(src[start:it.ArgsEnd]))
			done = true
		}
		if err != nil {
			return nil, err
		}
	}
	if err := t.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"fingerprint", "dir-identity-key", "dir-key-published", "dir-key-expires", "dir-signing-key", "dir-key-crosscert", "dir-key-certification"} {
		if !seen[k] {
			return nil, errf(doc, firstLine, "missing required item %q", k)
		}
	}
	if rest := strings.TrimSpace(src[t.Pos():]); rest != "" {
		return nil, errf(doc, t.Line(), "data after dir-key-certification")
	}
	if sha1.Sum(kc.identityDER) != kc.Fingerprint {
		return nil, errf(doc, fpLine, "fingerprint does not match dir-identity-key")
	}
	kc.Raw = src
	return kc, nil
}

// ErrCertExpired is returned by KeyCert.Verify for an expired certificate.
var ErrCertExpired = errors.New("netdoc: authority key certificate expired")

// ErrBadCertSignature is returned by KeyCert.Verify when the
// certification or the cross-certification does not verify.
var ErrBadCertSignature = errors.New("netdoc: bad authority key certificate signature")

// Verify checks the certificate's certification (by the identity key),
// its cross-certification (by the signing key, over the identity digest)
// and that it is not expired at now.
func (kc *KeyCert) Verify(now time.Time) error {
	if err := rsa.VerifyPKCS1v15(kc.IdentityKey, crypto.Hash(0), kc.signedDigest[:], kc.certification); err != nil {
		return fmt.Errorf("%w: certification by %X: %v", ErrBadCertSignature, kc.Fingerprint, err)
	}
	if err := rsa.VerifyPKCS1v15(kc.SigningKey, crypto.Hash(0), kc.Fingerprint[:], kc.crossCert); err != nil {
		return fmt.Errorf("%w: cross-certification by signing key of %X: %v", ErrBadCertSignature, kc.Fingerprint, err)
	}
	if !now.IsZero() && now.After(kc.Expires) {
		return fmt.Errorf("%w: %X expired at %s", ErrCertExpired, kc.Fingerprint, kc.Expires.Format(timeLayout))
	}
	return nil
}
