// Package hsdesc parses and decrypts v3 onion service descriptors:
// rend-spec-v3 §2.4 [DESC-OUTER], §2.5 [HS-DESC-ENC] (both encryption
// layers, client authorization), §2.5.2.2 (introduction points).
//
// Verified against real descriptors produced by C tor (the arti test
// data in testdata/, one with client authorization) as well as round
// trips through Build.
package hsdesc

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/netdoc"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// MaxDescriptorSize is the largest descriptor HSDirs accept (rend-spec §2.4).
const MaxDescriptorSize = 50000

const sigPrefix = "Tor onion service descriptor sig v3"

// Descriptor error classes. Every error returned by this package wraps
// exactly one of them.
var (
	// ErrInvalid: the descriptor is malformed, badly signed, expired or
	// otherwise unusable (SOCKS extended error F1).
	ErrInvalid = errors.New("hsdesc: invalid descriptor")
	// ErrClientAuthRequired: the inner layer needs a client
	// authorization key and we have none (F4).
	ErrClientAuthRequired = errors.New("hsdesc: client authorization required")
	// ErrClientAuthBad: our client authorization key does not decrypt
	// the descriptor (F5).
	ErrClientAuthBad = errors.New("hsdesc: client authorization key rejected")
)

type descError struct {
	class error
	msg   string
	err   error
}

func (e *descError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%v: %s: %v", e.class, e.msg, e.err)
	}
	return fmt.Sprintf("%v: %s", e.class, e.msg)
}
func (e *descError) Unwrap() []error {
	if e.err != nil {
		return []error{e.class, e.err}
	}
	return []error{e.class}
}

func invalid(msg string, err error) error { return &descError{ErrInvalid, msg, err} }

// errBadKey: a key argument that is not 32 bytes of base64.
var errBadKey = errors.New("hsdesc: key is not 32 bytes of base64")

// Outer is the verified outer document (§2.4).
type Outer struct {
	Lifetime        time.Duration
	SigningCert     *Cert
	SigningKey      [32]byte // KP_hs_desc_sign
	BlindedKey      [32]byte // KP_hs_blind_id
	RevisionCounter uint64
	Superencrypted  []byte
}

// Expires returns when the descriptor stops being usable: the earlier of
// now+lifetime (for a freshly fetched descriptor) and the signing key
// certificate's expiry.
func (o *Outer) Expires(fetched time.Time) time.Time {
	t := fetched.Add(o.Lifetime)
	if o.SigningCert != nil && o.SigningCert.Expires.Before(t) {
		t = o.SigningCert.Expires
	}
	return t
}

// ParseOuter parses the outer document, checks that its signing key
// certificate (type 08) is signed by blinded and not expired at now (now
// zero skips the expiry check), and verifies the document signature.
func ParseOuter(doc []byte, blinded [32]byte, now time.Time) (*Outer, error) {
	if len(doc) > MaxDescriptorSize {
		return nil, invalid("descriptor too large", nil)
	}
	items, err := tokenize("onion service descriptor", string(doc))
	if err != nil {
		return nil, invalid("outer document", err)
	}
	if len(items) == 0 || items[0].Keyword != "hs-descriptor" || len(items[0].Args) < 1 {
		return nil, invalid("missing hs-descriptor line", nil)
	}
	if items[0].Args[0] != "3" {
		return nil, invalid("unsupported descriptor version "+items[0].Args[0], nil)
	}
	last := items[len(items)-1]
	if last.Keyword != "signature" || len(last.Args) < 1 {
		return nil, invalid("signature must be last", nil)
	}
	o := &Outer{}
	seen := map[string]bool{}
	for _, it := range items[1 : len(items)-1] {
		switch it.Keyword {
		case "descriptor-lifetime", "descriptor-signing-key-cert", "revision-counter", "superencrypted", "signature", "hs-descriptor":
			if seen[it.Keyword] {
				return nil, invalid("duplicate "+it.Keyword, nil)
			}
			seen[it.Keyword] = true
		}
		switch it.Keyword {
		case "descriptor-lifetime":
			if len(it.Args) < 1 {
				return nil, invalid("descriptor-lifetime", nil)
			}
			m, err := strconv.ParseUint(it.Args[0], 10, 32)
			// rend-spec says 30..720; like C tor, enforce only the maximum.
			if err != nil || m == 0 || m > 720 {
				return nil, invalid("descriptor-lifetime out of range", err)
			}
			o.Lifetime = time.Duration(m) * time.Minute
		case "descriptor-signing-key-cert":
			if !hasObject(&it, "ED25519 CERT") {
				return nil, invalid("descriptor-signing-key-cert object", nil)
			}
			c, err := ParseCert(it.Object.Data)
			if err != nil {
				return nil, invalid("descriptor-signing-key-cert", err)
			}
			if err := c.Check(CertTypeDescSigning, &blinded, now); err != nil {
				return nil, invalid("descriptor-signing-key-cert", err)
			}
			o.SigningCert, o.SigningKey, o.BlindedKey = c, c.CertifiedKey, c.SigningKey
		case "revision-counter":
			if len(it.Args) < 1 {
				return nil, invalid("revision-counter", nil)
			}
			v, err := strconv.ParseUint(it.Args[0], 10, 64)
			if err != nil {
				return nil, invalid("revision-counter", err)
			}
			o.RevisionCounter = v
		case "superencrypted":
			if !hasObject(&it, "MESSAGE") || len(it.Object.Data) <= 16+32 {
				return nil, invalid("superencrypted object", nil)
			}
			o.Superencrypted = it.Object.Data
		case "hs-descriptor", "signature":
			return nil, invalid(it.Keyword+" out of place", nil)
		}
	}
	for _, kw := range []string{"descriptor-lifetime", "descriptor-signing-key-cert", "revision-counter", "superencrypted"} {
		if !seen[kw] {
			return nil, invalid("missing "+kw, nil)
		}
	}
	sig, err := netdoc.DecodeBase64(last.Args[0])
	if err != nil || len(sig) != 64 {
		return nil, invalid("signature encoding", err)
	}
	signed := append([]byte(sigPrefix), doc[:last.Start]...)
	if !ed25519.Verify(o.SigningKey[:], signed, sig) {
		return nil, invalid("bad descriptor signature", nil)
	}
	return o, nil
}

// AuthClient is one "auth-client" line of the first layer.
type AuthClient struct {
	ClientID        [8]byte
	IV              [16]byte
	EncryptedCookie [hscrypto.DescCookieLen]byte
}

// FirstLayer is the decrypted superencrypted layer (§2.5.1.2).
type FirstLayer struct {
	AuthType     string
	EphemeralKey [32]byte
	AuthClients  []AuthClient
	Encrypted    []byte
}

// DecryptFirstLayer decrypts and parses the superencrypted blob.
func (o *Outer) DecryptFirstLayer(subcred [32]byte) (*FirstLayer, error) {
	pt, err := hscrypto.DecryptDescLayer(o.Superencrypted, o.BlindedKey[:], subcred, o.RevisionCounter, hscrypto.SuperencryptedConstant)
	if err != nil {
		return nil, invalid("first layer", err)
	}
	return parseFirstLayer(pt)
}

func trimNUL(b []byte) string {
	return string(bytes.TrimRight(b, "\x00"))
}

func parseFirstLayer(pt []byte) (*FirstLayer, error) {
	items, err := tokenize("descriptor first layer", trimNUL(pt))
	if err != nil {
		return nil, invalid("first layer plaintext", err)
	}
	f := &FirstLayer{}
	var haveType, haveEph, haveEnc bool
	for _, it := range items {
		switch it.Keyword {
		case "desc-auth-type":
			if haveType || len(it.Args) < 1 {
				return nil, invalid("desc-auth-type", nil)
			}
			haveType, f.AuthType = true, it.Args[0]
		case "desc-auth-ephemeral-key":
			if haveEph || len(it.Args) < 1 {
				return nil, invalid("desc-auth-ephemeral-key", nil)
			}
			k, err := decodeKey32(it.Args[0])
			if err != nil {
				return nil, invalid("desc-auth-ephemeral-key", err)
			}
			haveEph, f.EphemeralKey = true, k
		case "auth-client":
			if len(it.Args) < 3 {
				return nil, invalid("auth-client", nil)
			}
			id, e1 := netdoc.DecodeBase64(it.Args[0])
			iv, e2 := netdoc.DecodeBase64(it.Args[1])
			ck, e3 := netdoc.DecodeBase64(it.Args[2])
			if e1 != nil || e2 != nil || e3 != nil || len(id) != 8 || len(iv) != 16 || len(ck) != hscrypto.DescCookieLen {
				return nil, invalid("auth-client fields", nil)
			}
			var a AuthClient
			copy(a.ClientID[:], id)
			copy(a.IV[:], iv)
			copy(a.EncryptedCookie[:], ck)
			f.AuthClients = append(f.AuthClients, a)
		case "encrypted":
			if haveEnc || !hasObject(&it, "MESSAGE") || len(it.Object.Data) <= 16+32 {
				return nil, invalid("encrypted object", nil)
			}
			haveEnc, f.Encrypted = true, it.Object.Data
		}
	}
	if !haveType || !haveEph || !haveEnc || len(f.AuthClients) == 0 {
		return nil, invalid("first layer missing fields", nil)
	}
	if f.AuthType != "x25519" {
		return nil, invalid("unknown desc-auth-type "+f.AuthType, nil)
	}
	return f, nil
}

// DescriptorCookie finds our auth-client entry using the client's x25519
// secret key and returns the decrypted descriptor cookie; ok is false if
// no entry matches.
func (f *FirstLayer) DescriptorCookie(clientSK, subcred [32]byte) (cookie [hscrypto.DescCookieLen]byte, ok bool) {
	id, ck, err := hscrypto.ClientAuthKeys(clientSK, f.EphemeralKey, subcred)
	if err != nil {
		return cookie, false
	}
	for _, a := range f.AuthClients {
		if a.ClientID == id {
			return hscrypto.CryptCookie(ck, a.IV, a.EncryptedCookie), true
		}
	}
	return cookie, false
}

// IntroPoint is one "introduction-point" entry (§2.5.2.2).
type IntroPoint struct {
	LinkSpecs   []hscell.LinkSpec
	OnionKey    [32]byte // ntor onion key of the intro point relay
	AuthKey     [32]byte // KP_hs_ipt_sid
	AuthKeyCert *Cert
	EncKey      [32]byte // KP_hss_ntor
	EncKeyCert  *Cert
}

// Inner is the decrypted second layer (§2.5.2.2).
type Inner struct {
	Create2Formats    []int
	IntroAuthRequired []string
	SingleOnion       bool
	FlowControl       string // "flow-control" line verbatim, if any
	IntroPoints       []IntroPoint
}

// DecryptSecondLayer decrypts the inner layer; cookie is nil without
// client authorization.
func (o *Outer) DecryptSecondLayer(f *FirstLayer, subcred [32]byte, cookie *[hscrypto.DescCookieLen]byte) ([]byte, error) {
	secret := append([]byte(nil), o.BlindedKey[:]...)
	if cookie != nil {
		secret = append(secret, cookie[:]...)
	}
	return hscrypto.DecryptDescLayer(f.Encrypted, secret, subcred, o.RevisionCounter, hscrypto.EncryptedConstant)
}

// ParseInner parses the second-layer plaintext and checks the intro point
// certificates against the descriptor signing key.
func ParseInner(pt []byte, signingKey [32]byte) (*Inner, error) {
	items, err := tokenize("descriptor inner layer", trimNUL(pt))
	if err != nil {
		return nil, invalid("inner plaintext", err)
	}
	in := &Inner{}
	haveCreate2 := false
	var cur *IntroPoint
	var curSeen map[string]bool
	finish := func() error {
		if cur == nil {
			return nil
		}
		for _, kw := range []string{"onion-key", "auth-key", "enc-key", "enc-key-cert"} {
			if !curSeen[kw] {
				return invalid("introduction point missing "+kw, nil)
			}
		}
		in.IntroPoints = append(in.IntroPoints, *cur)
		cur = nil
		return nil
	}
	for _, it := range items {
		if it.Keyword == "introduction-point" {
			if err := finish(); err != nil {
				return nil, err
			}
			if len(it.Args) < 1 {
				return nil, invalid("introduction-point", nil)
			}
			raw, err := netdoc.DecodeBase64(it.Args[0])
			if err != nil {
				return nil, invalid("introduction-point link specifiers", err)
			}
			ls, err := hscell.DecodeLinkSpecs(raw)
			if err != nil {
				return nil, invalid("introduction-point link specifiers", err)
			}
			cur, curSeen = &IntroPoint{LinkSpecs: ls}, map[string]bool{}
			continue
		}
		if cur == nil {
			switch it.Keyword {
			case "create2-formats":
				if haveCreate2 {
					return nil, invalid("duplicate create2-formats", nil)
				}
				haveCreate2 = true
				for _, a := range it.Args {
					if v, err := strconv.Atoi(a); err == nil {
						in.Create2Formats = append(in.Create2Formats, v)
					}
				}
			case "intro-auth-required":
				in.IntroAuthRequired = append(in.IntroAuthRequired, it.Args...)
			case "single-onion-service":
				in.SingleOnion = true
			case "flow-control":
				in.FlowControl = strings.Join(it.Args, " ")
			}
			continue
		}
		switch it.Keyword {
		case "onion-key":
			if len(it.Args) >= 2 && it.Args[0] == "ntor" {
				if curSeen["onion-key"] {
					return nil, invalid("duplicate onion-key ntor", nil)
				}
				k, err := decodeKey32(it.Args[1])
				if err != nil {
					return nil, invalid("onion-key", err)
				}
				cur.OnionKey, curSeen["onion-key"] = k, true
			}
		case "auth-key":
			if curSeen["auth-key"] || !hasObject(&it, "ED25519 CERT") {
				return nil, invalid("auth-key", nil)
			}
			c, err := ParseCert(it.Object.Data)
			if err != nil {
				return nil, invalid("auth-key cert", err)
			}
			// C tor checks type, signature and then that the signer is
			// the descriptor signing key; expiry is not re-checked.
			if err := c.Check(CertTypeIntroAuth, &signingKey, time.Time{}); err != nil {
				return nil, invalid("auth-key cert", err)
			}
			cur.AuthKeyCert, cur.AuthKey, curSeen["auth-key"] = c, c.CertifiedKey, true
		case "enc-key":
			if len(it.Args) >= 2 && it.Args[0] == "ntor" {
				if curSeen["enc-key"] {
					return nil, invalid("duplicate enc-key ntor", nil)
				}
				k, err := decodeKey32(it.Args[1])
				if err != nil {
					return nil, invalid("enc-key", err)
				}
				cur.EncKey, curSeen["enc-key"] = k, true
			}
		case "enc-key-cert":
			if curSeen["enc-key-cert"] || !hasObject(&it, "ED25519 CERT") {
				return nil, invalid("enc-key-cert", nil)
			}
			c, err := ParseCert(it.Object.Data)
			if err != nil {
				return nil, invalid("enc-key-cert", err)
			}
			if err := c.Check(CertTypeIntroEnc, &signingKey, time.Time{}); err != nil {
				return nil, invalid("enc-key-cert", err)
			}
			cur.EncKeyCert, curSeen["enc-key-cert"] = c, true
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if !haveCreate2 {
		return nil, invalid("missing create2-formats", nil)
	}
	return in, nil
}

// Descriptor is a fully decrypted, verified descriptor.
type Descriptor struct {
	Outer
	Inner
	First *FirstLayer
}

// Decode verifies and decrypts a descriptor fetched for blinded (whose
// subcredential is subcred). clientSK is the client's x25519 descriptor
// authorization key, or nil. now checks certificate expiry. Errors wrap
// ErrInvalid, ErrClientAuthRequired or ErrClientAuthBad.
func Decode(doc []byte, blinded, subcred [32]byte, clientSK *[32]byte, now time.Time) (*Descriptor, error) {
	o, err := ParseOuter(doc, blinded, now)
	if err != nil {
		return nil, err
	}
	f, err := o.DecryptFirstLayer(subcred)
	if err != nil {
		return nil, err
	}
	var pt []byte
	if clientSK != nil {
		if cookie, ok := f.DescriptorCookie(*clientSK, subcred); ok {
			pt, err = o.DecryptSecondLayer(f, subcred, &cookie)
			if err != nil {
				return nil, &descError{ErrClientAuthBad, "second layer", err}
			}
		}
	}
	if pt == nil {
		pt, err = o.DecryptSecondLayer(f, subcred, nil)
		if err != nil {
			if clientSK != nil {
				return nil, &descError{ErrClientAuthBad, "no matching auth-client entry", nil}
			}
			return nil, &descError{ErrClientAuthRequired, "second layer", err}
		}
	}
	in, err := ParseInner(pt, o.SigningKey)
	if err != nil {
		return nil, err
	}
	return &Descriptor{Outer: *o, Inner: *in, First: f}, nil
}
