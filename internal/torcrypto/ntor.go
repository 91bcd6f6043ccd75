// tor-spec §5.1.4 "The ntor handshake" (client side) and §5.2.2
// "KDF-RFC5869"; §5.1.5 CREATE_FAST with §5.2.1 "KDF-TOR".
//
// Handshakes implement ClientHandshake so that ntor v3 (prop 332), whose
// key stream is SHAKE-256 rather than HKDF, can be added beside ntor
// without changing the circuit code: the circuit only needs the CREATE2
// handshake type, the client onionskin, and a key stream after the reply.
package torcrypto

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// ClientHandshake is the client half of a circuit-extension handshake.
type ClientHandshake interface {
	// Type is the CREATE2/EXTEND2 HTYPE.
	Type() uint16
	// ClientMessage is the onionskin (HDATA) to send.
	ClientMessage() []byte
	// Complete consumes the server's reply (CREATED2/EXTENDED2 HDATA)
	// and returns the key stream from which relay keys are read.
	Complete(reply []byte) (io.Reader, error)
}

const (
	ntorProtoID = "ntor-curve25519-sha256-1"
	ntorTMac    = ntorProtoID + ":mac"
	ntorTKey    = ntorProtoID + ":key_extract"
	ntorTVerify = ntorProtoID + ":verify"
	ntorMExpand = ntorProtoID + ":key_expand"
)

// Sizes of ntor messages.
const (
	NtorClientMessageLen = 20 + 32 + 32
	NtorServerMessageLen = 32 + 32
)

// ErrNtorAuth is returned when the server's AUTH does not verify.
var ErrNtorAuth = errors.New("torcrypto: ntor handshake authentication failed")

// NtorClient is the client state of one ntor handshake.
type NtorClient struct {
	id  [20]byte
	b   [32]byte
	x   [32]byte
	pub [32]byte
	msg []byte
}

// NewNtorClient starts an ntor handshake with a relay whose RSA identity
// digest is id and ntor onion key is b. rnd may be nil for crypto/rand.
func NewNtorClient(rnd io.Reader, id [20]byte, b [32]byte) (*NtorClient, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var x [32]byte
	if _, err := io.ReadFull(rnd, x[:]); err != nil {
		return nil, err
	}
	return newNtorClientWithKey(x, id, b)
}

func newNtorClientWithKey(x [32]byte, id [20]byte, b [32]byte) (*NtorClient, error) {
	c := &NtorClient{id: id, b: b, x: x}
	pub, err := curve25519.X25519(x[:], curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	copy(c.pub[:], pub)
	c.msg = make([]byte, 0, NtorClientMessageLen)
	c.msg = append(c.msg, id[:]...)
	c.msg = append(c.msg, b[:]...)
	c.msg = append(c.msg, pub...)
	return c, nil
}

// Type returns cell.HandshakeNtor (2).
func (c *NtorClient) Type() uint16 { return 2 }

// ClientMessage returns NODEID | KEYID(B) | X.
func (c *NtorClient) ClientMessage() []byte { return c.msg }

func hmacSHA256(key string, msg []byte) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(msg)
	return m.Sum(nil)
}

// Complete verifies the server's Y | AUTH and returns the KDF-RFC5869
// key stream (HKDF-SHA256 expand of KEY_SEED with info m_expand).
func (c *NtorClient) Complete(reply []byte) (io.Reader, error) {
	if len(reply) < NtorServerMessageLen {
		return nil, errors.New("torcrypto: short ntor reply")
	}
	y := reply[:32]
	auth := reply[32:64]
	xy, err1 := curve25519.X25519(c.x[:], y)
	xb, err2 := curve25519.X25519(c.x[:], c.b[:])
	if err1 != nil || err2 != nil { // all-zero output (low-order point)
		return nil, ErrNtorAuth
	}
	si := make([]byte, 0, 32*5+20+len(ntorProtoID))
	si = append(si, xy...)
	si = append(si, xb...)
	si = append(si, c.id[:]...)
	si = append(si, c.b[:]...)
	si = append(si, c.pub[:]...)
	si = append(si, y...)
	si = append(si, ntorProtoID...)
	keySeed := hmacSHA256(ntorTKey, si)
	verify := hmacSHA256(ntorTVerify, si)
	ai := make([]byte, 0, 32*4+20+len(ntorProtoID)+6)
	ai = append(ai, verify...)
	ai = append(ai, c.id[:]...)
	ai = append(ai, c.b[:]...)
	ai = append(ai, y...)
	ai = append(ai, c.pub[:]...)
	ai = append(ai, ntorProtoID...)
	ai = append(ai, "Server"...)
	if subtle.ConstantTimeCompare(hmacSHA256(ntorTMac, ai), auth) != 1 {
		return nil, ErrNtorAuth
	}
	// A lazy HKDF-SHA256 expand reader: relay keys need only 72 bytes.
	return hkdf.Expand(sha256.New, keySeed, []byte(ntorMExpand)), nil
}

type byteStream struct{ b []byte }

func bytesReader(b []byte) io.Reader { return &byteStream{b} }

func (s *byteStream) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// KDFTor implements KDF-TOR (tor-spec §5.2.1):
// K = H(K0 | [00]) | H(K0 | [01]) | ... with H = SHA-1.
func KDFTor(k0 []byte, n int) []byte {
	out := make([]byte, 0, n+sha1.Size)
	buf := append(append([]byte(nil), k0...), 0)
	for i := 0; len(out) < n; i++ {
		buf[len(buf)-1] = byte(i)
		s := sha1.Sum(buf)
		out = append(out, s[:]...)
	}
	return out[:n]
}

// CreateFastClient is the CREATE_FAST handshake (tor-spec §5.1.5).
type CreateFastClient struct{ x [20]byte }

// NewCreateFastClient picks X.
func NewCreateFastClient(rnd io.Reader) (*CreateFastClient, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	c := &CreateFastClient{}
	_, err := io.ReadFull(rnd, c.x[:])
	return c, err
}

// ClientMessage returns X.
func (c *CreateFastClient) ClientMessage() []byte { return c.x[:] }

// Complete checks KH from CREATED_FAST (Y | KH) and returns the key stream.
func (c *CreateFastClient) Complete(reply []byte) (io.Reader, error) {
	if len(reply) < 40 {
		return nil, errors.New("torcrypto: short CREATED_FAST")
	}
	k := KDFTor(append(append([]byte(nil), c.x[:]...), reply[:20]...), 20+RelayKeyMaterialLen)
	if subtle.ConstantTimeCompare(k[:20], reply[20:40]) != 1 {
		return nil, errors.New("torcrypto: CREATE_FAST derivative key mismatch")
	}
	return bytesReader(k[20:]), nil
}
