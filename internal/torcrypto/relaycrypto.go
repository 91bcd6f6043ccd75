// tor-spec §5.2 "Setting circuit keys" and §6.1 "Relay cells": per-hop
// relay crypto (AES-128-CTR with zero IV in each direction, SHA-1
// running digests seeded with Df/Db, the "recognized" + digest check).
package torcrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding"
	"errors"
	"hash"
	"io"
)

// Relay payload geometry (tor-spec §6.1).
const (
	payloadLen    = 509
	recognizedOff = 1
	digestOff     = 5
	// RelayKeyMaterialLen is Df | Db | Kf | Kb.
	RelayKeyMaterialLen = 20 + 20 + 16 + 16
)

// Hop is the client's relay crypto state for one hop of a circuit. The
// forward methods (SetForwardDigest, EncryptForward) and the backward
// methods (DecryptBackward, CheckBackward) may run concurrently with
// each other; each direction must be used by one goroutine at a time.
type Hop struct {
	fwd, bwd             cipher.Stream
	fwdDigest, bwdDigest hash.Hash
	// Scratch space kept in the struct so that digest operations do not
	// allocate (values passed to interface methods escape). Forward and
	// backward directions run on different goroutines: separate buffers.
	fwdSum   [20]byte
	bwdSum   [20]byte
	bwdState [128]byte
}

// NewHop reads Df, Db, Kf, Kb from ks (tor-spec §5.2.2).
func NewHop(ks io.Reader) (*Hop, error) {
	var k [RelayKeyMaterialLen]byte
	if _, err := io.ReadFull(ks, k[:]); err != nil {
		return nil, err
	}
	return newHopFromKeys(k[:])
}

func newHopFromKeys(k []byte) (*Hop, error) {
	h := &Hop{fwdDigest: sha1.New(), bwdDigest: sha1.New()}
	h.fwdDigest.Write(k[0:20])
	h.bwdDigest.Write(k[20:40])
	var iv [16]byte
	kf, err := aes.NewCipher(k[40:56])
	if err != nil {
		return nil, err
	}
	kb, err := aes.NewCipher(k[56:72])
	if err != nil {
		return nil, err
	}
	h.fwd = cipher.NewCTR(kf, iv[:])
	h.bwd = cipher.NewCTR(kb, iv[:])
	return h, nil
}

// SetForwardDigest fills the digest field of a plaintext relay payload
// (whose recognized and digest fields are zero) addressed to this hop,
// updating the running forward digest. It returns the full 20-byte
// running digest after this cell (used for authenticated SENDME).
func (h *Hop) SetForwardDigest(p *[payloadLen]byte) [20]byte {
	clear(p[digestOff : digestOff+4])
	h.fwdDigest.Write(p[:])
	h.fwdDigest.Sum(h.fwdSum[:0])
	copy(p[digestOff:digestOff+4], h.fwdSum[:4])
	return h.fwdSum
}

// EncryptForward applies this hop's forward AES layer.
func (h *Hop) EncryptForward(p *[payloadLen]byte) { h.fwd.XORKeyStream(p[:], p[:]) }

// DecryptBackward removes this hop's backward AES layer.
func (h *Hop) DecryptBackward(p *[payloadLen]byte) { h.bwd.XORKeyStream(p[:], p[:]) }

// CheckBackward reports whether a decrypted payload originated at this
// hop: recognized is zero and the digest matches the running backward
// digest. On success the running digest advances and the full digest is
// returned; otherwise the digest state and the payload are unchanged.
func (h *Hop) CheckBackward(p *[payloadLen]byte) (bool, [20]byte) {
	if p[recognizedOff] != 0 || p[recognizedOff+1] != 0 {
		return false, [20]byte{}
	}
	state, err := h.bwdDigest.(encoding.BinaryAppender).AppendBinary(h.bwdState[:0])
	if err != nil {
		return false, [20]byte{}
	}
	var got [4]byte
	copy(got[:], p[digestOff:digestOff+4])
	clear(p[digestOff : digestOff+4])
	h.bwdDigest.Write(p[:])
	h.bwdDigest.Sum(h.bwdSum[:0])
	copy(p[digestOff:digestOff+4], got[:])
	if [4]byte(h.bwdSum[:4]) != got {
		_ = h.bwdDigest.(encoding.BinaryUnmarshaler).UnmarshalBinary(state)
		return false, [20]byte{}
	}
	return true, h.bwdSum
}

// ErrUnrecognized is returned when no hop recognizes an inbound cell.
var ErrUnrecognized = errors.New("torcrypto: relay cell not recognized by any hop")

// Layer is one hop's relay crypto as the client uses it. *Hop implements
// it for ordinary hops (tor-spec §5.2: SHA-1, AES-128-CTR); an onion
// service virtual hop (rend-spec-v3 §5: SHA3-256, AES-256-CTR) is another
// implementation. The forward and backward methods may run concurrently
// with each other; each direction is used by one goroutine at a time.
type Layer interface {
	// SetForwardDigest fills the digest field of a plaintext payload for
	// this hop and returns the running forward digest.
	SetForwardDigest(p *[payloadLen]byte) [20]byte
	EncryptForward(p *[payloadLen]byte)
	DecryptBackward(p *[payloadLen]byte)
	// CheckBackward reports whether a decrypted payload is from this hop
	// (and then advances the running digest, returning it).
	CheckBackward(p *[payloadLen]byte) (bool, [20]byte)
}

var _ Layer = (*Hop)(nil)

// Layers is a circuit's crypto, hop 0 nearest the client. A Layers value
// is not modified in place by its methods; callers that add hops while
// cells flow should copy-on-write (see internal/circuit).
type Layers []Layer

// Encrypt prepares a plaintext relay payload for hop target: sets its
// digest and applies the forward layers of target down to hop 0. It
// returns the running forward digest of the target hop.
func (l Layers) Encrypt(p *[payloadLen]byte, target int) [20]byte {
	d := l[target].SetForwardDigest(p)
	for i := target; i >= 0; i-- {
		l[i].EncryptForward(p)
	}
	return d
}

// Decrypt peels layers off an inbound payload until a hop recognizes it
// and returns that hop's index and running backward digest.
func (l Layers) Decrypt(p *[payloadLen]byte) (int, [20]byte, error) {
	for i, h := range l {
		h.DecryptBackward(p)
		if ok, d := h.CheckBackward(p); ok {
			return i, d, nil
		}
	}
	return -1, [20]byte{}, ErrUnrecognized
}
