package torcrypto

// Proposal 332 ntor v3, server side (tor-spec "The ntor-v3 handshake"):
// what a relay computes from a client's onionskin. gotor is a client
// only; this exists so that simulated relays in tests can answer ntor v3
// (and its extensions, e.g. congestion control negotiation) as C tor
// relays do, or deliberately not.

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"io"

	"golang.org/x/crypto/curve25519"
)

// NtorV3ClientMessageMin is the length of an ntor v3 onionskin with an
// empty message: NODEID | KEYID | CLIENT_PK | MAC.
const NtorV3ClientMessageMin = 32 + 32 + 32 + 32

// NtorV3ServerHandshake answers a client's ntor v3 onionskin msg for the
// relay with Ed25519 identity id and ntor secret key bsk under
// verification string ver. reply computes the server message from the
// decrypted client message (nil: an empty server message). It returns
// the reply (Y | AUTH | MSG) and the key stream. rnd may be nil for
// crypto/rand.
func NtorV3ServerHandshake(rnd io.Reader, bsk, id [32]byte, msg, ver []byte, reply func(clientMsg []byte) []byte) ([]byte, io.Reader, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if len(msg) < NtorV3ClientMessageMin {
		return nil, nil, errors.New("torcrypto: short ntor v3 onionskin")
	}
	bpub, err := curve25519.X25519(bsk[:], curve25519.Basepoint)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(msg[:32], id[:]) != 1 || subtle.ConstantTimeCompare(msg[32:64], bpub) != 1 {
		return nil, nil, errors.New("torcrypto: ntor v3 onionskin for another relay")
	}
	x := msg[64:96]
	enc, mac := msg[96:len(msg)-32], msg[len(msg)-32:]
	bx, err := curve25519.X25519(bsk[:], x)
	if err != nil {
		return nil, nil, ErrNtorAuth
	}
	si := append([]byte(nil), bx...)
	si = append(si, id[:]...)
	si = append(si, x...)
	si = append(si, bpub...)
	si = append(si, ntor3ProtoID...)
	si = encap(si, ver)
	var k1 [64]byte
	ntor3KDF(si, ntor3TMsgKDF).Read(k1[:])
	if subtle.ConstantTimeCompare(ntor3MAC(k1[32:], msg[:len(msg)-32], ntor3TMsgMAC), mac) != 1 {
		return nil, nil, ErrNtorAuth
	}
	var sm []byte
	if reply != nil {
		sm = reply(aes256CTR(k1[:32], enc))
	}
	var ysk [32]byte
	if _, err := io.ReadFull(rnd, ysk[:]); err != nil {
		return nil, nil, err
	}
	y, err := curve25519.X25519(ysk[:], curve25519.Basepoint)
	if err != nil {
		return nil, nil, err
	}
	xy, err := curve25519.X25519(ysk[:], x)
	if err != nil {
		return nil, nil, ErrNtorAuth
	}
	si = append([]byte(nil), xy...)
	si = append(si, bx...)
	si = append(si, id[:]...)
	si = append(si, bpub...)
	si = append(si, x...)
	si = append(si, y...)
	si = append(si, ntor3ProtoID...)
	si = encap(si, ver)
	keySeed := ntor3H(si, ntor3TKeySeed)
	verify := ntor3H(si, ntor3TVerify)
	ks := ntor3KDF(keySeed, ntor3TFinal)
	var encKey [32]byte
	ks.Read(encKey[:])
	encSM := aes256CTR(encKey[:], sm)
	ai := append([]byte(nil), verify...)
	ai = append(ai, id[:]...)
	ai = append(ai, bpub...)
	ai = append(ai, y...)
	ai = append(ai, x...)
	ai = append(ai, mac...)
	ai = encap(ai, encSM)
	ai = append(ai, ntor3ProtoID...)
	ai = append(ai, "Server"...)
	out := append(append(y, ntor3H(ai, ntor3TAuth)...), encSM...)
	return out, ks, nil
}
