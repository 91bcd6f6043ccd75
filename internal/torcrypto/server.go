// tor-spec §5.1.4 ntor (server side) and §6.1 relay crypto as a relay
// sees it. gotor is a client only: these exist so that tests and
// simulated relays can exercise the client against a peer that follows
// (or deliberately breaks) the protocol.
package torcrypto

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// NtorServerHandshake answers a client's ntor onionskin for a relay with
// identity id and ntor secret key bsk. It returns the reply (Y | AUTH)
// and the key stream.
func NtorServerHandshake(rnd io.Reader, bsk [32]byte, id [20]byte, msg []byte) ([]byte, io.Reader, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if len(msg) < NtorClientMessageLen {
		return nil, nil, errors.New("torcrypto: short ntor onionskin")
	}
	bpub, err := curve25519.X25519(bsk[:], curve25519.Basepoint)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(msg[:20], id[:]) != 1 || subtle.ConstantTimeCompare(msg[20:52], bpub) != 1 {
		return nil, nil, errors.New("torcrypto: ntor onionskin for another relay")
	}
	x := msg[52:84]
	var ysk [32]byte
	if _, err := io.ReadFull(rnd, ysk[:]); err != nil {
		return nil, nil, err
	}
	y, err := curve25519.X25519(ysk[:], curve25519.Basepoint)
	if err != nil {
		return nil, nil, err
	}
	xy, err1 := curve25519.X25519(ysk[:], x)
	xb, err2 := curve25519.X25519(bsk[:], x)
	if err1 != nil || err2 != nil {
		return nil, nil, ErrNtorAuth
	}
	si := append(append([]byte(nil), xy...), xb...)
	si = append(si, id[:]...)
	si = append(si, bpub...)
	si = append(si, x...)
	si = append(si, y...)
	si = append(si, ntorProtoID...)
	keySeed := hmacSHA256(ntorTKey, si)
	verify := hmacSHA256(ntorTVerify, si)
	ai := append([]byte(nil), verify...)
	ai = append(ai, id[:]...)
	ai = append(ai, bpub...)
	ai = append(ai, y...)
	ai = append(ai, x...)
	ai = append(ai, ntorProtoID...)
	ai = append(ai, "Server"...)
	ks := hkdf.Expand(sha256.New, keySeed, []byte(ntorMExpand))
	return append(y, hmacSHA256(ntorTMac, ai)...), ks, nil
}

// RelayHop is a relay's view of one hop's relay crypto: it decrypts and
// recognizes cells travelling away from the client and originates cells
// towards it.
type RelayHop struct{ h *Hop }

// NewRelayHop reads Df, Db, Kf, Kb from ks, like NewHop.
func NewRelayHop(ks io.Reader) (*RelayHop, error) {
	h, err := NewHop(ks)
	if err != nil {
		return nil, err
	}
	// Swap directions: what the client encrypts forward, the relay
	// decrypts; what the client checks backward, the relay originates.
	h.fwd, h.bwd = h.bwd, h.fwd
	h.fwdDigest, h.bwdDigest = h.bwdDigest, h.fwdDigest
	return &RelayHop{h: h}, nil
}

// Receive removes this hop's forward layer and reports whether the cell
// is for this relay, with the running forward digest.
func (r *RelayHop) Receive(p *[payloadLen]byte) (bool, [20]byte) {
	r.h.DecryptBackward(p)
	return r.h.CheckBackward(p)
}

// Originate sets the digest of a plaintext cell from this relay and
// encrypts it towards the client. It returns the running digest.
func (r *RelayHop) Originate(p *[payloadLen]byte) [20]byte {
	d := r.h.SetForwardDigest(p)
	r.h.EncryptForward(p)
	return d
}

// Relay adds this hop's backward layer to a cell from a later hop.
func (r *RelayHop) Relay(p *[payloadLen]byte) { r.h.EncryptForward(p) }
