// The ed25519 form of a curve25519 public key, for the enc-key-cert of a
// descriptor's introduction points: rend-spec-v3 §2.5.2.2 ("enc-key-cert
// ... cross-certifies the ed25519 form of the enc-key", prop 228
// Appendix A; C tor ed25519_public_key_from_curve25519_public_key with
// sign bit 0). The birational map is y = (u - 1) / (u + 1).

package hscrypto

import (
	"errors"

	"filippo.io/edwards25519/field"
)

// EdwardsFromMontgomery returns the ed25519 public key whose Montgomery
// u-coordinate is u, choosing the positive x (sign bit 0).
func EdwardsFromMontgomery(u [32]byte) ([32]byte, error) {
	var out [32]byte
	x, err := new(field.Element).SetBytes(u[:])
	if err != nil {
		return out, err
	}
	one := new(field.Element).One()
	den := new(field.Element).Add(x, one)
	if den.Equal(new(field.Element).Zero()) == 1 {
		return out, errors.New("hscrypto: curve25519 key has no ed25519 form")
	}
	y := new(field.Element).Subtract(x, one)
	y.Multiply(y, new(field.Element).Invert(den))
	copy(out[:], y.Bytes())
	return out, nil
}
