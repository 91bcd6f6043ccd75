// Descriptor encryption: rend-spec-v3 §2.5.3 [HS-DESC-ENCRYPTION-KEYS],
// §2.5.1.2 (descriptor cookie for client authorization) and §2.5.2.1.

package hscrypto

import (
	"crypto/hmac"
	"crypto/sha3"
	"encoding/binary"
	"errors"
)

// Layer string constants (§2.5.1.1, §2.5.2.1).
const (
	SuperencryptedConstant = "hsdir-superencrypted-data"
	EncryptedConstant      = "hsdir-encrypted-data"
)

// Descriptor decryption errors.
var (
	ErrDescTooShort = errors.New("hsdesc: encrypted blob too short")
	ErrDescMAC      = errors.New("hsdesc: encrypted blob MAC mismatch")
)

func descKeys(secretData []byte, subcred [32]byte, rev uint64, salt []byte, constant string) (key, iv, mk []byte) {
	k := KDF(keyLen+ivLen+macLen, secretData, subcred[:],
		binary.BigEndian.AppendUint64(nil, rev), salt, []byte(constant))
	return k[:keyLen], k[keyLen : keyLen+ivLen], k[keyLen+ivLen:]
}

// D_MAC = H(htonll(len(MAC_KEY)) | MAC_KEY | htonll(len(SALT)) | SALT | ENCRYPTED)
func descMAC(mk, salt, ct []byte) [32]byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(len(mk)))
	b = append(b, mk...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(salt)))
	b = append(b, salt...)
	b = append(b, ct...)
	return sha3.Sum256(b)
}

// DecryptDescLayer decrypts SALT | ENCRYPTED | MAC with the keys of
// §2.5.3. secretData is the blinded key (first layer) or blinded key |
// descriptor cookie (second layer).
func DecryptDescLayer(blob, secretData []byte, subcred [32]byte, rev uint64, constant string) ([]byte, error) {
	if len(blob) < saltLen+macLen {
		return nil, ErrDescTooShort
	}
	salt := blob[:saltLen]
	ct := blob[saltLen : len(blob)-macLen]
	key, iv, mk := descKeys(secretData, subcred, rev, salt, constant)
	m := descMAC(mk, salt, ct)
	if !hmac.Equal(m[:], blob[len(blob)-macLen:]) {
		return nil, ErrDescMAC
	}
	pt := append([]byte(nil), ct...)
	aesCTR(key, iv, pt)
	return pt, nil
}

// EncryptDescLayer is the inverse of DecryptDescLayer with a caller-chosen
// 16-byte salt (the service's descriptors, and tests).
func EncryptDescLayer(plaintext, salt, secretData []byte, subcred [32]byte, rev uint64, constant string) []byte {
	key, iv, mk := descKeys(secretData, subcred, rev, salt, constant)
	ct := append([]byte(nil), plaintext...)
	aesCTR(key, iv, ct)
	m := descMAC(mk, salt, ct)
	out := append(append(append([]byte(nil), salt...), ct...), m[:]...)
	return out
}

// ClientAuthKeys computes, for a client's x25519 secret key and the
// descriptor's ephemeral key, (CLIENT-ID, COOKIE-KEY) = KDF(N_hs_subcred
// | x25519(sk, ephemeral), 40) split 8 | 32 (§2.5.1.2).
func ClientAuthKeys(clientSK, ephemeralPK, subcred [32]byte) (id [8]byte, cookieKey [32]byte, err error) {
	seed, err := x25519(clientSK[:], ephemeralPK[:])
	if err != nil {
		return id, cookieKey, err
	}
	k := KDF(40, subcred[:], seed)
	copy(id[:], k[:8])
	copy(cookieKey[:], k[8:])
	return id, cookieKey, nil
}

// DescCookieLen is the length of the descriptor cookie N_hs_desc_enc.
// rend-spec §2.5.1.2 says 32 bytes, but C tor uses and expects 16
// (HS_DESC_DESCRIPTOR_COOKIE_LEN) and so do all deployed descriptors.
const DescCookieLen = 16

// CryptCookie decrypts (or encrypts) a descriptor cookie with
// AES-256-CTR(iv, COOKIE-KEY).
func CryptCookie(cookieKey [32]byte, iv [16]byte, in [DescCookieLen]byte) [DescCookieLen]byte {
	out := in
	aesCTR(cookieKey[:], iv[:], out[:])
	return out
}
