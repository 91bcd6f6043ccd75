// Onion address encoding and validation, rend-spec-v3 §6 [ONIONADDRESS]
// and §2.2.7 "Client-side validation of onion addresses".

package hscrypto

import (
	"crypto/sha3"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"
)

// AddressVersion is the only onion address version this package supports.
const AddressVersion = 3

// addrLen is the length of the base32 part of a v3 onion address.
const addrLen = 56

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Address errors. Parse errors wrap one of these, so callers can test
// with errors.Is.
var (
	ErrNotOnion       = errors.New("onion: not a .onion address")
	ErrBadLength      = errors.New("onion: bad onion address length")
	ErrBadEncoding    = errors.New("onion: onion address is not valid base32")
	ErrBadVersion     = errors.New("onion: unsupported onion address version")
	ErrBadChecksum    = errors.New("onion: onion address checksum mismatch")
	ErrBadKey         = errors.New("onion: onion address key is not a valid ed25519 point")
	ErrTorsionKey     = errors.New("onion: onion address key has a torsion component")
	ErrEmptySubdomain = errors.New("onion: empty label in onion hostname")
)

// AddressError is returned by ParseAddress. It carries the offending input
// and wraps one of the Err* sentinels above.
type AddressError struct {
	Input string
	Err   error
}

func (e *AddressError) Error() string { return fmt.Sprintf("%v: %q", e.Err, e.Input) }
func (e *AddressError) Unwrap() error { return e.Err }

// Address is a parsed v3 onion address: the service's ed25519 identity
// key KP_hs_id.
type Address struct {
	PubKey [32]byte
}

// Checksum returns SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2].
func Checksum(pub []byte, version byte) [2]byte {
	h := sha3.New256()
	h.Write([]byte(".onion checksum"))
	h.Write(pub)
	h.Write([]byte{version})
	var sum [2]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// String returns the address as "<56 base32 chars>.onion", lower case.
func (a Address) String() string { return a.Label() + ".onion" }

// Label returns the 56-character base32 label without ".onion".
func (a Address) Label() string {
	var raw [35]byte
	copy(raw[:32], a.PubKey[:])
	cs := Checksum(a.PubKey[:], AddressVersion)
	copy(raw[32:34], cs[:])
	raw[34] = AddressVersion
	return strings.ToLower(b32.EncodeToString(raw[:]))
}

// IsOnionHost reports whether host ends in ".onion" (case-insensitive,
// trailing dot allowed). It does not validate the address.
func IsOnionHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	return len(host) >= len(".onion") && strings.EqualFold(host[len(host)-len(".onion"):], ".onion")
}

// ParseAddress parses a hostname of the form "[sub.]<56 base32>.onion"
// (case-insensitive, optional trailing dot). Subdomains are accepted and
// ignored, as C tor does. It validates length, base32, version, checksum,
// that the key is a valid point, and that it has no torsion component.
func ParseAddress(host string) (Address, error) {
	fail := func(err error) (Address, error) {
		return Address{}, &AddressError{Input: host, Err: err}
	}
	h := strings.TrimSuffix(host, ".")
	if !IsOnionHost(h) {
		return fail(ErrNotOnion)
	}
	h = h[:len(h)-len(".onion")]
	label := h
	if i := strings.LastIndexByte(h, '.'); i >= 0 {
		label = h[i+1:]
		for _, l := range strings.Split(h[:i], ".") {
			if l == "" {
				return fail(ErrEmptySubdomain)
			}
		}
	}
	return parseLabel(label, fail)
}

func parseLabel(label string, fail func(error) (Address, error)) (Address, error) {
	if len(label) != addrLen {
		return fail(ErrBadLength)
	}
	raw, err := b32.DecodeString(strings.ToUpper(label))
	if err != nil || len(raw) != 35 {
		return fail(ErrBadEncoding)
	}
	if raw[34] != AddressVersion {
		return fail(ErrBadVersion)
	}
	cs := Checksum(raw[:32], raw[34])
	if cs[0] != raw[32] || cs[1] != raw[33] {
		return fail(ErrBadChecksum)
	}
	var a Address
	copy(a.PubKey[:], raw[:32])
	if err := CheckTorsionFree(a.PubKey[:]); err != nil {
		return fail(err)
	}
	return a, nil
}

// CheckTorsionFree decodes pub as an ed25519 point and checks that l*P
// is the identity (rend-spec §2.2.7).
func CheckTorsionFree(pub []byte) error {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return ErrBadKey
	}
	// l*P == identity  <=>  P is in the prime-order subgroup. Multiplying
	// by the cofactor-cleared form: 8*P then check P*l via
	// (l-1)*P + P. edwards25519 scalars are mod l, so compute l*P as
	// (l-1)*P + P with (l-1) = -1 mod l.
	minusOne := edwards25519.NewScalar().Subtract(edwards25519.NewScalar(), scalarOne())
	q := new(edwards25519.Point).ScalarMult(minusOne, p)
	q.Add(q, p)
	if q.Equal(edwards25519.NewIdentityPoint()) != 1 {
		return ErrTorsionKey
	}
	return nil
}

func scalarOne() *edwards25519.Scalar {
	var b [32]byte
	b[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}
