// Key blinding and subcredentials: rend-spec-v3 §2.1 [SUBCRED] and
// Appendix A.2 "Tor's key derivation scheme" [KEYBLIND].

package hscrypto

import (
	"crypto/sha3"
	"crypto/sha512"
	"encoding/binary"
	"errors"

	"filippo.io/edwards25519"
)

// ed25519Basepoint is the string form of B used in the blinding factor.
const ed25519Basepoint = "(15112221349535400772501151409588531511454012693041857206046113283949847762202, " +
	"46316835694926478169428394003475163141307993866256225615783033603165251855960)"

// BlindingFactor returns the unclamped h = SHA3-256(BLIND_STRING | A | s |
// B | N) with N = "key-blind" | INT_8(period_num) | INT_8(period_length).
// secret is the optional s (nil for normal services).
func BlindingFactor(pub []byte, secret []byte, periodNum, periodLength uint64) [32]byte {
	h := sha3.New256()
	h.Write([]byte("Derive temporary signing key\x00"))
	h.Write(pub)
	h.Write(secret)
	h.Write([]byte(ed25519Basepoint))
	var n [9 + 16]byte
	copy(n[:], "key-blind")
	binary.BigEndian.PutUint64(n[9:], periodNum)
	binary.BigEndian.PutUint64(n[17:], periodLength)
	h.Write(n[:])
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// BlindPublicKey returns A' = h*A for the given period (KP_hs_blind_id).
func BlindPublicKey(pub [32]byte, periodNum, periodLength uint64) ([32]byte, error) {
	return BlindPublicKeyWithParam(pub, BlindingFactor(pub[:], nil, periodNum, periodLength))
}

// BlindPublicKeyWithParam returns clamp(param)*A.
func BlindPublicKeyWithParam(pub, param [32]byte) ([32]byte, error) {
	p, err := new(edwards25519.Point).SetBytes(pub[:])
	if err != nil {
		return [32]byte{}, ErrBadKey
	}
	h, err := edwards25519.NewScalar().SetBytesWithClamping(param[:])
	if err != nil {
		return [32]byte{}, err
	}
	var out [32]byte
	copy(out[:], new(edwards25519.Point).ScalarMult(h, p).Bytes())
	return out, nil
}

// ExpandedKey is an ed25519 private key in expanded form: the scalar a
// and the nonce-derivation prefix RH (as C tor's 64-byte seckey).
type ExpandedKey struct {
	Scalar [32]byte // little-endian, reduced mod l
	Prefix [32]byte
	Public [32]byte
}

// ExpandSeed expands a 32-byte ed25519 seed (as crypto/ed25519 uses) into
// its expanded form.
func ExpandSeed(seed []byte) (*ExpandedKey, error) {
	if len(seed) != 32 {
		return nil, errors.New("hscrypto: ed25519 seed must be 32 bytes")
	}
	d := sha512.Sum512(seed)
	return ExpandedFromBytes(d[:])
}

// ExpandedFromBytes builds an ExpandedKey from a 64-byte expanded secret
// key (clamped scalar | prefix), the format of C tor's key files.
func ExpandedFromBytes(b []byte) (*ExpandedKey, error) {
	if len(b) != 64 {
		return nil, errors.New("hscrypto: expanded ed25519 key must be 64 bytes")
	}
	s, err := edwards25519.NewScalar().SetBytesWithClamping(b[:32])
	if err != nil {
		return nil, err
	}
	k := &ExpandedKey{}
	copy(k.Scalar[:], s.Bytes())
	copy(k.Prefix[:], b[32:])
	copy(k.Public[:], new(edwards25519.Point).ScalarBaseMult(s).Bytes())
	return k, nil
}

// BlindPrivateKey returns the blinded expanded key (a' = h*a mod l,
// RH' = SHA-512("Derive temporary signing key hash input" | RH)[:32]).
// Clients do not need it; the service (internal/onion/service) does.
func BlindPrivateKey(k *ExpandedKey, periodNum, periodLength uint64) (*ExpandedKey, error) {
	return BlindPrivateKeyWithParam(k, BlindingFactor(k.Public[:], nil, periodNum, periodLength))
}

// BlindPrivateKeyWithParam blinds k with clamp(param).
func BlindPrivateKeyWithParam(k *ExpandedKey, param [32]byte) (*ExpandedKey, error) {
	h, err := edwards25519.NewScalar().SetBytesWithClamping(param[:])
	if err != nil {
		return nil, err
	}
	a, err := edwards25519.NewScalar().SetCanonicalBytes(k.Scalar[:])
	if err != nil {
		return nil, err
	}
	ap := edwards25519.NewScalar().Multiply(h, a)
	out := &ExpandedKey{}
	copy(out.Scalar[:], ap.Bytes())
	d := sha512.New()
	d.Write([]byte("Derive temporary signing key hash input"))
	d.Write(k.Prefix[:])
	copy(out.Prefix[:], d.Sum(nil)[:32])
	copy(out.Public[:], new(edwards25519.Point).ScalarBaseMult(ap).Bytes())
	return out, nil
}

// Sign produces a standard ed25519 signature of msg with an expanded key.
func (k *ExpandedKey) Sign(msg []byte) []byte {
	a, _ := edwards25519.NewScalar().SetCanonicalBytes(k.Scalar[:])
	h := sha512.New()
	h.Write(k.Prefix[:])
	h.Write(msg)
	r, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	h.Reset()
	h.Write(R)
	h.Write(k.Public[:])
	h.Write(msg)
	c, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	S := edwards25519.NewScalar().MultiplyAdd(c, a, r)
	return append(R, S.Bytes()...)
}

// Credential returns N_hs_cred = SHA3-256("credential" | KP_hs_id).
func Credential(id [32]byte) [32]byte {
	return sha3.Sum256(append([]byte("credential"), id[:]...))
}

// Subcredential returns N_hs_subcred = SHA3-256("subcredential" |
// N_hs_cred | KP_hs_blind_id).
func Subcredential(id, blinded [32]byte) [32]byte {
	cred := Credential(id)
	b := append([]byte("subcredential"), cred[:]...)
	return sha3.Sum256(append(b, blinded[:]...))
}
