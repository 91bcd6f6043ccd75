// Descriptor construction, the service side of rend-spec-v3 §2.4
// [DESC-OUTER], §2.5.1 (first layer: client authorization, padding to a
// multiple of 10000 bytes as C tor's HS_DESC_SUPERENC_PLAINTEXT_PAD_MULTIPLE),
// §2.5.2 (second layer: introduction points with their certificates).
// The onion service (internal/onion/service) publishes what Build
// produces, and C tor clients on the private network read it; the client
// tests also use it for fake services.

package hsdesc

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"golang.org/x/crypto/curve25519"
)

// BuildIntroPoint describes one introduction point for Build.
type BuildIntroPoint struct {
	LinkSpecs []hscell.LinkSpec
	OnionKey  [32]byte // intro relay's ntor key
	AuthKey   [32]byte // KP_hs_ipt_sid (ed25519)
	EncKey    [32]byte // KP_hss_ntor (curve25519)
}

// BuildParams are the inputs of Build.
type BuildParams struct {
	Identity        *hscrypto.ExpandedKey // KS_hs_id
	PeriodNum       uint64
	PeriodLength    uint64
	SigningKey      ed25519.PrivateKey // KS_hs_desc_sign
	RevisionCounter uint64
	Lifetime        time.Duration // default 180 min
	CertExpires     time.Time
	Create2Formats  string // default "2"
	SingleOnion     bool
	IntroPoints     []BuildIntroPoint
	// AuthorizedClients are x25519 public keys; empty disables client
	// authorization (fake auth-client lines are still written).
	AuthorizedClients [][32]byte
	Rand              io.Reader
	// NoPadding skips the 10 kB NUL padding of the first layer (tests).
	NoPadding bool
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func b64raw(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func armor(typ string, b []byte) string {
	var sb strings.Builder
	sb.WriteString("-----BEGIN " + typ + "-----\n")
	s := b64(b)
	for len(s) > 64 {
		sb.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	if s != "" {
		sb.WriteString(s + "\n")
	}
	sb.WriteString("-----END " + typ + "-----")
	return sb.String()
}

// Build produces a signed, encrypted descriptor.
func Build(p BuildParams) ([]byte, error) {
	if p.Lifetime == 0 {
		p.Lifetime = 180 * time.Minute
	}
	if p.Create2Formats == "" {
		p.Create2Formats = "2"
	}
	readN := func(n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(p.Rand, b)
		return b, err
	}
	blindedKey, err := hscrypto.BlindPrivateKey(p.Identity, p.PeriodNum, p.PeriodLength)
	if err != nil {
		return nil, err
	}
	blinded := blindedKey.Public
	subcred := hscrypto.Subcredential(p.Identity.Public, blinded)
	var signPub [32]byte
	copy(signPub[:], p.SigningKey.Public().(ed25519.PublicKey))
	signWith := func(msg []byte) []byte { return ed25519.Sign(p.SigningKey, msg) }

	// Second layer.
	var in strings.Builder
	fmt.Fprintf(&in, "create2-formats %s\n", p.Create2Formats)
	if p.SingleOnion {
		in.WriteString("single-onion-service\n")
	}
	for _, ip := range p.IntroPoints {
		ls, err := hscell.EncodeLinkSpecs(ip.LinkSpecs)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&in, "introduction-point %s\n", b64(ls))
		fmt.Fprintf(&in, "onion-key ntor %s\n", b64(ip.OnionKey[:]))
		fmt.Fprintf(&in, "auth-key\n%s\n", armor("ED25519 CERT", EncodeCert(CertTypeIntroAuth, p.CertExpires, ip.AuthKey, signPub, signWith)))
		fmt.Fprintf(&in, "enc-key ntor %s\n", b64(ip.EncKey[:]))
		// The certified key is the ed25519 form of EncKey with sign bit
		// 0 (prop228 appendix A), as C tor's setup_desc_intro_point;
		// clients, C tor included, check only the signature.
		edEnc, err := hscrypto.EdwardsFromMontgomery(ip.EncKey)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&in, "enc-key-cert\n%s\n", armor("ED25519 CERT", EncodeCert(CertTypeIntroEnc, p.CertExpires, edEnc, signPub, signWith)))
	}

	// First layer: client authorization.
	ephSK, err := readN(32)
	if err != nil {
		return nil, err
	}
	ephPK, err := curve25519.X25519(ephSK, curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	var cookie *[hscrypto.DescCookieLen]byte
	var authLines []string
	if len(p.AuthorizedClients) > 0 {
		c, err := readN(hscrypto.DescCookieLen)
		if err != nil {
			return nil, err
		}
		cookie = (*[hscrypto.DescCookieLen]byte)(c)
		var eph [32]byte
		copy(eph[:], ephSK)
		for _, pk := range p.AuthorizedClients {
			// The service computes x25519(eph_sk, client_pk); the client
			// x25519(client_sk, eph_pk): same secret.
			id, ck, err := hscrypto.ClientAuthKeys(eph, pk, subcred)
			if err != nil {
				return nil, err
			}
			ivb, err := readN(16)
			if err != nil {
				return nil, err
			}
			enc := hscrypto.CryptCookie(ck, [16]byte(ivb), *cookie)
			authLines = append(authLines, fmt.Sprintf("auth-client %s %s %s", b64raw(id[:]), b64raw(ivb), b64raw(enc[:])))
		}
	}
	for len(authLines) == 0 || len(authLines)%16 != 0 {
		f, err := readN(8 + 16 + hscrypto.DescCookieLen)
		if err != nil {
			return nil, err
		}
		authLines = append(authLines, fmt.Sprintf("auth-client %s %s %s", b64raw(f[:8]), b64raw(f[8:24]), b64raw(f[24:])))
	}
	secret := append([]byte(nil), blinded[:]...)
	if cookie != nil {
		secret = append(secret, cookie[:]...)
	}
	salt2, err := readN(16)
	if err != nil {
		return nil, err
	}
	encrypted := hscrypto.EncryptDescLayer([]byte(in.String()), salt2, secret, subcred, p.RevisionCounter, hscrypto.EncryptedConstant)

	var mid strings.Builder
	mid.WriteString("desc-auth-type x25519\n")
	fmt.Fprintf(&mid, "desc-auth-ephemeral-key %s\n", b64(ephPK))
	for _, l := range authLines {
		mid.WriteString(l + "\n")
	}
	fmt.Fprintf(&mid, "encrypted\n%s", armor("MESSAGE", encrypted))
	midBytes := []byte(mid.String())
	if !p.NoPadding {
		if pad := (10000 - len(midBytes)%10000) % 10000; pad > 0 {
			midBytes = append(midBytes, make([]byte, pad)...)
		}
	}
	salt1, err := readN(16)
	if err != nil {
		return nil, err
	}
	super := hscrypto.EncryptDescLayer(midBytes, salt1, blinded[:], subcred, p.RevisionCounter, hscrypto.SuperencryptedConstant)

	var out strings.Builder
	out.WriteString("hs-descriptor 3\n")
	fmt.Fprintf(&out, "descriptor-lifetime %d\n", int(p.Lifetime/time.Minute))
	fmt.Fprintf(&out, "descriptor-signing-key-cert\n%s\n", armor("ED25519 CERT", EncodeCert(CertTypeDescSigning, p.CertExpires, signPub, blinded, blindedKey.Sign)))
	fmt.Fprintf(&out, "revision-counter %d\n", p.RevisionCounter)
	fmt.Fprintf(&out, "superencrypted\n%s\n", armor("MESSAGE", super))
	body := out.String()
	sig := ed25519.Sign(p.SigningKey, append([]byte(sigPrefix), body...))
	return []byte(body + "signature " + b64raw(sig)), nil
}
