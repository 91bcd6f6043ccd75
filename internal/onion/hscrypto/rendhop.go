// Relay crypto for the virtual hop to an onion service: rend-spec-v3
// §4.2.1 "Key expansion" and §5 "Encrypting data between client and
// host" — the tor-spec §6.1 relay cell scheme, but with SHA3-256 running
// digests and AES-256-CTR instead of SHA-1 and AES-128-CTR.

package hscrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha3"
	"hash"
)

const (
	relayPayloadLen = 509
	recognizedOff   = 1
	digestOff       = 5
)

// RendHop is the client's relay crypto state for the virtual hop. Its
// methods mirror torcrypto.Hop so the circuit layer can treat both as
// one hop interface. Digests returned are the first 20 bytes of the
// SHA3-256 running digest (what C tor records for authenticated SENDMEs).
type RendHop struct {
	fwd, bwd             cipher.Stream
	fwdDigest, bwdDigest *sha3.SHA3
}

// NewRendHop makes the client side (forward = Df/Kf).
func NewRendHop(k RendKeys) *RendHop { return newRendHop(k.Df, k.Db, k.Kf, k.Kb) }

// NewRendHopServiceSide makes the service's view (Kf and Kb, Df and Db
// interchanged), for tests and fakes.
func NewRendHopServiceSide(k RendKeys) *RendHop { return newRendHop(k.Db, k.Df, k.Kb, k.Kf) }

func newRendHop(df, db [32]byte, kf, kb [32]byte) *RendHop {
	h := &RendHop{fwdDigest: sha3.New256(), bwdDigest: sha3.New256()}
	h.fwdDigest.Write(df[:])
	h.bwdDigest.Write(db[:])
	var iv [16]byte
	bf, _ := aes.NewCipher(kf[:]) // 32-byte keys cannot fail
	bb, _ := aes.NewCipher(kb[:])
	h.fwd = cipher.NewCTR(bf, iv[:])
	h.bwd = cipher.NewCTR(bb, iv[:])
	return h
}

var _ hash.Hash = (*sha3.SHA3)(nil)

// SetForwardDigest fills the 4-byte digest field of a plaintext payload
// addressed to this hop and advances the forward running digest.
func (h *RendHop) SetForwardDigest(p *[relayPayloadLen]byte) (full [20]byte) {
	clear(p[digestOff : digestOff+4])
	h.fwdDigest.Write(p[:])
	var d [32]byte
	h.fwdDigest.Sum(d[:0])
	copy(p[digestOff:digestOff+4], d[:4])
	copy(full[:], d[:20])
	return full
}

// EncryptForward applies the forward AES-256-CTR layer.
func (h *RendHop) EncryptForward(p *[relayPayloadLen]byte) { h.fwd.XORKeyStream(p[:], p[:]) }

// DecryptBackward removes the backward AES-256-CTR layer.
func (h *RendHop) DecryptBackward(p *[relayPayloadLen]byte) { h.bwd.XORKeyStream(p[:], p[:]) }

// CheckBackward reports whether a decrypted payload is recognized by this
// hop (recognized == 0 and the digest matches); on failure the running
// digest is left unchanged.
func (h *RendHop) CheckBackward(p *[relayPayloadLen]byte) (bool, [20]byte) {
	var full [20]byte
	if p[recognizedOff] != 0 || p[recognizedOff+1] != 0 {
		return false, full
	}
	state, err := h.bwdDigest.MarshalBinary()
	if err != nil {
		return false, full
	}
	var got [4]byte
	copy(got[:], p[digestOff:digestOff+4])
	clear(p[digestOff : digestOff+4])
	h.bwdDigest.Write(p[:])
	var d [32]byte
	h.bwdDigest.Sum(d[:0])
	copy(p[digestOff:digestOff+4], got[:])
	if [4]byte(d[:4]) != got {
		_ = h.bwdDigest.UnmarshalBinary(state)
		return false, full
	}
	copy(full[:], d[:20])
	return true, full
}

// ServiceEncryptBackward is what the service does to send a payload to
// the client over this hop (digest with its forward state, then
// encrypt): used by tests and fakes holding a service-side RendHop.
func (h *RendHop) ServiceEncryptBackward(p *[relayPayloadLen]byte) {
	h.SetForwardDigest(p)
	h.EncryptForward(p)
}
