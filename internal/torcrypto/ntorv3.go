// Proposal 332 "ntor v3" (tor-spec "The ntor-v3 handshake"), client
// side, with the circuit-extension instantiation of prop 332 §A.1/§A.2:
// SHA3-256, SHAKE-256, Curve25519, AES-256-CTR, PROTOID
// "ntor3-curve25519-sha3_256-1", verification string "circuit extend"
// (as C tor uses), CREATE2 handshake type 3. Client and server
// messages carry extensions (§A.2); this package treats them as opaque
// bytes.
package torcrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha3"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/crypto/curve25519"
)

const (
	ntor3ProtoID  = "ntor3-curve25519-sha3_256-1"
	ntor3TMsgKDF  = ntor3ProtoID + ":kdf_phase1"
	ntor3TMsgMAC  = ntor3ProtoID + ":msg_mac"
	ntor3TKeySeed = ntor3ProtoID + ":key_seed"
	ntor3TVerify  = ntor3ProtoID + ":verify"
	ntor3TFinal   = ntor3ProtoID + ":kdf_final"
	ntor3TAuth    = ntor3ProtoID + ":auth_final"

	// NtorV3CircuitVerification is the verification string C tor uses
	// for circuit extension.
	NtorV3CircuitVerification = "circuit extend"
)

func encap(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func ntor3H(s []byte, t string) []byte {
	h := sha3.New256()
	h.Write(encap(nil, []byte(t)))
	h.Write(s)
	return h.Sum(nil)
}

func ntor3MAC(k, msg []byte, t string) []byte {
	h := sha3.New256()
	h.Write(encap(nil, []byte(t)))
	h.Write(encap(nil, k))
	h.Write(msg)
	return h.Sum(nil)
}

func ntor3KDF(s []byte, t string) *sha3.SHAKE {
	x := sha3.NewSHAKE256()
	x.Write(encap(nil, []byte(t)))
	x.Write(s)
	return x
}

func aes256CTR(key, msg []byte) []byte {
	b, _ := aes.NewCipher(key)
	out := make([]byte, len(msg))
	cipher.NewCTR(b, make([]byte, aes.BlockSize)).XORKeyStream(out, msg)
	return out
}

// NtorV3Client is the client state of one ntor v3 handshake.
type NtorV3Client struct {
	id, b  [32]byte
	x, pub [32]byte
	bx     []byte
	ver    []byte
	mac    []byte
	msg    []byte

	// ServerMessage is the decrypted server message (SM) after Complete.
	ServerMessage []byte
}

// NewNtorV3Client starts an ntor v3 handshake with the relay whose
// Ed25519 identity is id and ntor onion key is b, sending the client
// message cm (encoded extensions; may be empty) under verification
// string ver. rnd may be nil for crypto/rand.
func NewNtorV3Client(rnd io.Reader, id, b [32]byte, cm, ver []byte) (*NtorV3Client, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var x [32]byte
	if _, err := io.ReadFull(rnd, x[:]); err != nil {
		return nil, err
	}
	return newNtorV3WithKey(x, id, b, cm, ver)
}

func newNtorV3WithKey(x, id, b [32]byte, cm, ver []byte) (*NtorV3Client, error) {
	c := &NtorV3Client{id: id, b: b, x: x, ver: append([]byte(nil), ver...)}
	pub, err := curve25519.X25519(x[:], curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	copy(c.pub[:], pub)
	if c.bx, err = curve25519.X25519(x[:], b[:]); err != nil {
		return nil, ErrNtorAuth
	}
	si := append([]byte(nil), c.bx...)
	si = append(si, id[:]...)
	si = append(si, pub...)
	si = append(si, b[:]...)
	si = append(si, ntor3ProtoID...)
	si = encap(si, c.ver)
	var k1 [64]byte
	ntor3KDF(si, ntor3TMsgKDF).Read(k1[:])
	enc := aes256CTR(k1[:32], cm)
	macIn := append(append(append(append([]byte(nil), id[:]...), b[:]...), pub...), enc...)
	c.mac = ntor3MAC(k1[32:], macIn, ntor3TMsgMAC)
	c.msg = append(macIn, c.mac...)
	return c, nil
}

// Type returns cell.HandshakeNtorV3 (3).
func (c *NtorV3Client) Type() uint16 { return 3 }

// ClientMessage returns NODEID | KEYID | CLIENT_PK | MSG | MAC.
func (c *NtorV3Client) ClientMessage() []byte { return c.msg }

// Complete verifies the server's Y | AUTH | MSG, decrypts the server
// message into ServerMessage and returns the key stream (after ENC_KEY).
func (c *NtorV3Client) Complete(reply []byte) (io.Reader, error) {
	if len(reply) < 64 {
		return nil, errors.New("torcrypto: short ntor v3 reply")
	}
	y, auth, msg := reply[:32], reply[32:64], reply[64:]
	yx, err := curve25519.X25519(c.x[:], y)
	if err != nil {
		return nil, ErrNtorAuth
	}
	si := append([]byte(nil), yx...)
	si = append(si, c.bx...)
	si = append(si, c.id[:]...)
	si = append(si, c.b[:]...)
	si = append(si, c.pub[:]...)
	si = append(si, y...)
	si = append(si, ntor3ProtoID...)
	si = encap(si, c.ver)
	keySeed := ntor3H(si, ntor3TKeySeed)
	verify := ntor3H(si, ntor3TVerify)
	ai := append([]byte(nil), verify...)
	ai = append(ai, c.id[:]...)
	ai = append(ai, c.b[:]...)
	ai = append(ai, y...)
	ai = append(ai, c.pub[:]...)
	ai = append(ai, c.mac...)
	ai = encap(ai, msg)
	ai = append(ai, ntor3ProtoID...)
	ai = append(ai, "Server"...)
	if subtle.ConstantTimeCompare(ntor3H(ai, ntor3TAuth), auth) != 1 {
		return nil, ErrNtorAuth
	}
	ks := ntor3KDF(keySeed, ntor3TFinal)
	var encKey [32]byte
	ks.Read(encKey[:])
	c.ServerMessage = aes256CTR(encKey[:], msg)
	return ks, nil
}
