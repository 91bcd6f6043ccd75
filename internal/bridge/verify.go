// Checking a bridge's own server descriptor (dir-spec §2.1.1): the
// "signing-key" (the RSA identity key) must hash to the identity the
// bridge proved on its channel and to the Bridge line's fingerprint;
// "router-signature" is that key's PKCS#1 signature of the SHA-1 digest
// from "router " through the newline after "router-signature"; the
// "identity-ed25519" certificate (type 4, signed by "master-key-ed25519")
// certifies the key whose "router-sig-ed25519" signs the SHA-256 digest
// of "Tor router descriptor signature v1" and the document up to the space
// after "router-sig-ed25519". C tor: router_parse_entry_from_string.
// Only a descriptor that passes is used, as the relay the client's
// circuits start at.

package bridge

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/netdoc"
	"github.com/gotor/gotor/internal/torcrypto"
)

// descKeys are what verifyDescriptor proves about a descriptor.
type descKeys struct {
	rsaID     [20]byte
	ed25519ID [32]byte
	hasEd     bool
}

// verifyDescriptor checks the signatures of one server descriptor and
// returns the identities it proves.
func verifyDescriptor(src string, now time.Time) (descKeys, error) {
	var k descKeys
	t := netdoc.NewTokenizer("bridge descriptor", src)
	var (
		signingKey    *rsa.PublicKey
		rsaSig, edSig []byte
		rsaSignedEnd  = -1
		edSignedEnd   = -1
		idCert        *torcrypto.Ed25519Cert
		master        []byte
		first         = true
	)
	for {
		it, ok := t.Next()
		if !ok {
			break
		}
		if first {
			first = false
			if it.Keyword != "router" || it.Start != 0 {
				return k, fmt.Errorf("descriptor does not start with router")
			}
		}
		switch it.Keyword {
		case "signing-key":
			if signingKey != nil {
				return k, fmt.Errorf("line %d: second signing-key", it.Line)
			}
			if it.Object == nil || it.Object.Label != "RSA PUBLIC KEY" {
				return k, fmt.Errorf("line %d: signing-key without an RSA PUBLIC KEY", it.Line)
			}
			key, err := x509.ParsePKCS1PublicKey(it.Object.Data)
			if err != nil {
				return k, fmt.Errorf("line %d: signing-key: %v", it.Line, err)
			}
			if key.N.BitLen() != 1024 {
				return k, fmt.Errorf("line %d: signing-key is %d bits, want 1024", it.Line, key.N.BitLen())
			}
			signingKey = key
			k.rsaID = sha1.Sum(it.Object.Data)
		case "identity-ed25519":
			if idCert != nil {
				return k, fmt.Errorf("line %d: second identity-ed25519", it.Line)
			}
			if it.Object == nil || it.Object.Label != "ED25519 CERT" {
				return k, fmt.Errorf("line %d: identity-ed25519 without an ED25519 CERT", it.Line)
			}
			c, err := torcrypto.ParseEd25519Cert(it.Object.Data)
			if err != nil {
				return k, fmt.Errorf("line %d: identity-ed25519: %v", it.Line, err)
			}
			if c.CertType != torcrypto.CertTypeIdentitySigning || c.SigningKey == nil {
				return k, fmt.Errorf("line %d: identity-ed25519 is not a signing-key certificate with its identity", it.Line)
			}
			idCert = c
		case "master-key-ed25519":
			b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(it.Arg(0), "="))
			if err != nil || len(b) != 32 {
				return k, fmt.Errorf("line %d: bad master-key-ed25519", it.Line)
			}
			master = b
		case "router-sig-ed25519":
			if edSig != nil {
				return k, fmt.Errorf("line %d: second router-sig-ed25519", it.Line)
			}
			b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(it.Arg(0), "="))
			if err != nil || len(b) != ed25519.SignatureSize {
				return k, fmt.Errorf("line %d: bad router-sig-ed25519", it.Line)
			}
			edSig = b
			edSignedEnd = it.Start + len("router-sig-ed25519 ")
		case "router-signature":
			if it.Object == nil || it.Object.Label != "SIGNATURE" {
				return k, fmt.Errorf("line %d: router-signature without a SIGNATURE", it.Line)
			}
			rsaSig = it.Object.Data
			rsaSignedEnd = it.ArgsEnd
		}
	}
	if err := t.Err(); err != nil {
		return k, err
	}
	if signingKey == nil {
		return k, fmt.Errorf("no signing-key")
	}
	if rsaSig == nil || rsaSignedEnd > len(src) || src[rsaSignedEnd-len("router-signature\n"):rsaSignedEnd] != "router-signature\n" {
		return k, fmt.Errorf("no router-signature line")
	}
	d := sha1.Sum([]byte(src[:rsaSignedEnd]))
	if err := rsa.VerifyPKCS1v15(signingKey, crypto.Hash(0), d[:], rsaSig); err != nil {
		return k, fmt.Errorf("router-signature does not verify with the signing-key")
	}
	if idCert == nil {
		// Every relay since 0.3.x has an Ed25519 identity; C tor 0.4.5+
		// requires router-sig-ed25519.
		return k, fmt.Errorf("no identity-ed25519 certificate")
	}
	if master == nil || !bytes.Equal(master, idCert.SigningKey) {
		return k, fmt.Errorf("master-key-ed25519 missing or not the key that signed identity-ed25519")
	}
	if err := idCert.Verify(nil, now); err != nil {
		return k, fmt.Errorf("identity-ed25519: %v", err)
	}
	if edSig == nil || edSignedEnd > rsaSignedEnd {
		return k, fmt.Errorf("no router-sig-ed25519 before router-signature")
	}
	h := sha256.Sum256([]byte("Tor router descriptor signature v1" + src[:edSignedEnd]))
	if !ed25519.Verify(idCert.CertifiedKey[:], h[:], edSig) {
		return k, fmt.Errorf("router-sig-ed25519 does not verify with the certified signing key")
	}
	copy(k.ed25519ID[:], master)
	k.hasEd = true
	return k, nil
}
