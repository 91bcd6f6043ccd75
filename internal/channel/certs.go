// tor-spec §4.2 "CERTS cells" — client-side validation of a responder's
// certificates (cert-spec §2, §2.3): RSA identity cert (type 2),
// Ed25519 identity→signing (type 4), signing→TLS link (type 5) and the
// RSA→Ed25519 cross-certificate (type 7).
package channel

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/torcrypto"
)

// CertsError reports an invalid CERTS cell.
type CertsError struct{ Reason string }

func (e *CertsError) Error() string { return "channel: invalid CERTS: " + e.Reason }

func certsErr(format string, args ...any) error {
	return &CertsError{Reason: fmt.Sprintf(format, args...)}
}

// verifyResponderCerts checks a responder's CERTS against the TLS leaf
// certificate it presented and returns its authenticated identities.
func verifyResponderCerts(entries []cell.CertEntry, tlsLeafDER []byte, now time.Time) (Identity, error) {
	var id Identity
	byType := map[uint8][]byte{}
	for _, e := range entries {
		if _, dup := byType[e.Type]; dup && e.Type >= 1 && e.Type <= 7 {
			return id, certsErr("duplicate certificate type %d", e.Type)
		}
		byType[e.Type] = e.Body
	}
	for _, t := range []uint8{cell.CertTypeRSAIdentity, cell.CertTypeEdIDSigning, cell.CertTypeEdSigningLink, cell.CertTypeRSAEdCrossCert} {
		if _, ok := byType[t]; !ok {
			return id, certsErr("missing certificate type %d", t)
		}
	}
	rsaPub, err := torcrypto.ParseRSAIdentityCert(byType[cell.CertTypeRSAIdentity], now)
	if err != nil {
		return id, certsErr("%v", err)
	}
	id.RSAID = torcrypto.RSAIdentity(rsaPub)

	idSign, err := torcrypto.ParseEd25519Cert(byType[cell.CertTypeEdIDSigning])
	if err != nil {
		return id, certsErr("type 4: %v", err)
	}
	if idSign.CertType != torcrypto.CertTypeIdentitySigning || idSign.KeyType != torcrypto.CertKeyEd25519 {
		return id, certsErr("type 4 certificate has cert type %d key type %d", idSign.CertType, idSign.KeyType)
	}
	if idSign.SigningKey == nil {
		return id, certsErr("type 4 certificate lacks signed-with-ed25519-key extension")
	}
	if err := idSign.Verify(nil, now); err != nil {
		return id, certsErr("type 4: %v", err)
	}
	copy(id.Ed25519ID[:], idSign.SigningKey)
	id.HasEd25519 = true

	link, err := torcrypto.ParseEd25519Cert(byType[cell.CertTypeEdSigningLink])
	if err != nil {
		return id, certsErr("type 5: %v", err)
	}
	if link.CertType != torcrypto.CertTypeSigningLink || link.KeyType != torcrypto.CertKeySHA256X509 {
		return id, certsErr("type 5 certificate has cert type %d key type %d", link.CertType, link.KeyType)
	}
	if err := link.Verify(ed25519.PublicKey(idSign.CertifiedKey[:]), now); err != nil {
		return id, certsErr("type 5: %v", err)
	}
	tlsHash := sha256.Sum256(tlsLeafDER)
	if !bytes.Equal(link.CertifiedKey[:], tlsHash[:]) {
		return id, certsErr("type 5 certificate does not certify the TLS certificate presented")
	}

	cross, err := torcrypto.ParseRSACrossCert(byType[cell.CertTypeRSAEdCrossCert])
	if err != nil {
		return id, certsErr("type 7: %v", err)
	}
	if err := cross.Verify(rsaPub, now); err != nil {
		return id, certsErr("type 7: %v", err)
	}
	if cross.Ed25519Key != id.Ed25519ID {
		return id, certsErr("RSA cross-certificate certifies a different Ed25519 identity")
	}
	return id, nil
}
