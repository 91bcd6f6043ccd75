// The hs-ntor handshake: rend-spec-v3 §3.3.2 [NTOR-WITH-EXTRA-DATA],
// §4.2 [JOIN_REND] and §4.2.1 "Key expansion"; primitives from §0.3
// (H = SHA3-256, KDF = SHAKE-256, MAC(k,m) = H(htonll(len k) | k | m),
// STREAM = AES-256-CTR).

package hscrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/crypto/curve25519"
)

const (
	protoID    = "tor-hs-ntor-curve25519-sha3-256-1"
	tHSEnc     = protoID + ":hs_key_extract"
	tHSVerify  = protoID + ":hs_verify"
	tHSMAC     = protoID + ":hs_mac"
	mHSExpand  = protoID + ":hs_key_expand"
	keyLen     = 32 // S_KEY_LEN (AES-256)
	macLen     = 32 // MAC_LEN
	hashLen    = 32 // HASH_LEN
	pubKeyLen  = 32 // PK_PUBKEY_LEN
	ivLen      = 16 // S_IV_LEN
	saltLen    = 16
	intro1Tail = pubKeyLen + macLen
)

// Handshake errors.
var (
	ErrBadHandshake = errors.New("hs-ntor: bad handshake (AUTH mismatch)")
	ErrBadPoint     = errors.New("hs-ntor: degenerate curve25519 result")
	ErrShort        = errors.New("hs-ntor: message too short")
)

// MAC is rend-spec's MAC(key, msg) = SHA3-256(htonll(len(key)) | key | msg).
func MAC(key, msg []byte) [32]byte {
	h := sha3.New256()
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(key))))
	h.Write(key)
	h.Write(msg)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// KDF is SHAKE-256(msg) truncated to n bytes.
func KDF(n int, parts ...[]byte) []byte {
	h := sha3.NewSHAKE256()
	for _, p := range parts {
		h.Write(p)
	}
	out := make([]byte, n)
	h.Read(out)
	return out
}

// aesCTR XORs data with AES-256-CTR(key, iv) keystream in place; iv nil
// means all zero.
func aesCTR(key, iv, data []byte) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic("hscrypto: bad AES key length") // internal: keys are fixed size
	}
	if iv == nil {
		iv = make([]byte, aes.BlockSize)
	}
	cipher.NewCTR(blk, iv).XORKeyStream(data, data)
}

func x25519(sk, pk []byte) ([]byte, error) {
	out, err := curve25519.X25519(sk, pk)
	if err != nil {
		return nil, ErrBadPoint
	}
	return out, nil
}

// RendKeys are the end-to-end relay crypto keys of the virtual hop to the
// service (§4.2.1): SHA3-256 running digests seeded with Df/Db and
// AES-256-CTR with Kf/Kb, unlike the SHA-1/AES-128 of ordinary hops.
type RendKeys struct {
	Df, Db [hashLen]byte
	Kf, Kb [keyLen]byte
}

// ExpandRendKeys computes K = KDF(NTOR_KEY_SEED | m_hsexpand, 2*HASH_LEN +
// 2*S_KEY_LEN) and splits it into Df | Db | Kf | Kb.
func ExpandRendKeys(seed []byte) RendKeys {
	k := KDF(2*hashLen+2*keyLen, seed, []byte(mHSExpand))
	var r RendKeys
	copy(r.Df[:], k[0:32])
	copy(r.Db[:], k[32:64])
	copy(r.Kf[:], k[64:96])
	copy(r.Kb[:], k[96:128])
	return r
}

// ClientHandshake is the client side of one hs-ntor handshake with an
// introduction point's (AUTH_KEY, B = KP_hss_ntor) for one subcredential.
type ClientHandshake struct {
	x, X    [32]byte
	authKey [32]byte
	b       [32]byte
	subcred [32]byte
	bx      []byte // EXP(B,x)
}

// NewClientHandshake draws x from rand (crypto/rand.Reader in production).
func NewClientHandshake(rand io.Reader, authKey, encKey, subcred [32]byte) (*ClientHandshake, error) {
	var x [32]byte
	if _, err := io.ReadFull(rand, x[:]); err != nil {
		return nil, err
	}
	return NewClientHandshakeWithKey(x, authKey, encKey, subcred)
}

// NewClientHandshakeWithKey uses the given private key x (for test vectors).
func NewClientHandshakeWithKey(x, authKey, encKey, subcred [32]byte) (*ClientHandshake, error) {
	c := &ClientHandshake{x: x, authKey: authKey, b: encKey, subcred: subcred}
	X, err := curve25519.X25519(x[:], curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	copy(c.X[:], X)
	if c.bx, err = x25519(x[:], encKey[:]); err != nil {
		return nil, err
	}
	return c, nil
}

// PublicKey returns X.
func (c *ClientHandshake) PublicKey() [32]byte { return c.X }

func introKeys(bx []byte, authKey, X, B, subcred [32]byte) (enc, mac []byte) {
	k := KDF(keyLen+macLen, bx, authKey[:], X[:], B[:], []byte(protoID),
		[]byte(tHSEnc), []byte(mHSExpand), subcred[:])
	return k[:keyLen], k[keyLen:]
}

// IntroKeys returns (ENC_KEY, MAC_KEY) of the INTRODUCE1 encryption.
func (c *ClientHandshake) IntroKeys() (enc, mac []byte) {
	return introKeys(c.bx, c.authKey, c.X, c.b, c.subcred)
}

// EncryptIntro builds the ENCRYPTED part of INTRODUCE1: CLIENT_PK |
// AES-256-CTR(ENC_KEY, plaintext) | MAC(MAC_KEY, header | CLIENT_PK |
// ciphertext), where header is everything of the cell body before it.
func (c *ClientHandshake) EncryptIntro(header, plaintext []byte) []byte {
	enc, mk := c.IntroKeys()
	out := make([]byte, 0, pubKeyLen+len(plaintext)+macLen)
	out = append(out, c.X[:]...)
	ct := append([]byte(nil), plaintext...)
	aesCTR(enc, nil, ct)
	out = append(out, ct...)
	m := MAC(mk, append(append(append([]byte(nil), header...), c.X[:]...), ct...))
	return append(out, m[:]...)
}

func rendSecrets(yx, bx []byte, authKey, B, X, Y [32]byte) (seed, auth [32]byte) {
	in := make([]byte, 0, 32*6+len(protoID))
	in = append(in, yx...)
	in = append(in, bx...)
	in = append(in, authKey[:]...)
	in = append(in, B[:]...)
	in = append(in, X[:]...)
	in = append(in, Y[:]...)
	in = append(in, protoID...)
	seed = MAC(in, []byte(tHSEnc))
	verify := MAC(in, []byte(tHSVerify))
	ai := make([]byte, 0, 32*5+len(protoID)+6)
	ai = append(ai, verify[:]...)
	ai = append(ai, authKey[:]...)
	ai = append(ai, B[:]...)
	ai = append(ai, Y[:]...)
	ai = append(ai, X[:]...)
	ai = append(ai, protoID...)
	ai = append(ai, "Server"...)
	auth = MAC(ai, []byte(tHSMAC))
	return seed, auth
}

// Complete processes HANDSHAKE_INFO (SERVER_PK Y | AUTH) from RENDEZVOUS2,
// checks AUTH and returns NTOR_KEY_SEED.
func (c *ClientHandshake) Complete(handshakeInfo []byte) (seed [32]byte, err error) {
	if len(handshakeInfo) < pubKeyLen+macLen {
		return seed, ErrShort
	}
	var Y [32]byte
	copy(Y[:], handshakeInfo[:32])
	yx, err := x25519(c.x[:], Y[:])
	if err != nil {
		return seed, err
	}
	seed, auth := rendSecrets(yx, c.bx, c.authKey, c.b, c.X, Y)
	if !hmac.Equal(auth[:], handshakeInfo[32:64]) {
		return [32]byte{}, ErrBadHandshake
	}
	return seed, nil
}

// ServiceIntro is the service side (internal/onion/service, and fakes): given the
// intro encryption keypair (b, B), the auth key, subcredential, the cell
// body header and its ENCRYPTED part, it checks the MAC and returns the
// plaintext; then, with the service's ephemeral y, the HANDSHAKE_INFO and
// NTOR_KEY_SEED.
func ServiceIntro(b, B, authKey, subcred [32]byte, header, encrypted []byte, y [32]byte) (plaintext, handshakeInfo []byte, seed [32]byte, err error) {
	if len(encrypted) < intro1Tail {
		return nil, nil, seed, ErrShort
	}
	var X [32]byte
	copy(X[:], encrypted[:32])
	ct := encrypted[32 : len(encrypted)-macLen]
	bx, err := x25519(b[:], X[:])
	if err != nil {
		return nil, nil, seed, err
	}
	enc, mk := introKeys(bx, authKey, X, B, subcred)
	m := MAC(mk, append(append(append([]byte(nil), header...), X[:]...), ct...))
	if !hmac.Equal(m[:], encrypted[len(encrypted)-macLen:]) {
		return nil, nil, seed, ErrBadHandshake
	}
	plaintext = append([]byte(nil), ct...)
	aesCTR(enc, nil, plaintext)
	Yb, err := curve25519.X25519(y[:], curve25519.Basepoint)
	if err != nil {
		return nil, nil, seed, err
	}
	var Y [32]byte
	copy(Y[:], Yb)
	yx, err := x25519(y[:], X[:])
	if err != nil {
		return nil, nil, seed, err
	}
	seed, auth := rendSecrets(yx, bx, authKey, B, X, Y)
	return plaintext, append(Y[:], auth[:]...), seed, nil
}
