package circuit

// What an onion service needs from its circuits: the last hop's
// handshake nonce for ESTABLISH_INTRO (rend-spec-v3 §3.1.1
// HANDSHAKE_AUTH; tor-spec §5.2.2: the KDF output after Df, Db, Kf, Kb
// "taken as a nonce to use in the place of KH in the hidden service
// protocol"), and streams the far end opens (RELAY_BEGIN from the client
// on a rendezvous circuit, through the virtual hop, rend-spec-v3 §4.2.1).

import (
	"errors"
	"io"

	"github.com/gotor/gotor/internal/cell"
)

// KHLen is the length of the handshake nonce.
const KHLen = 20

// onionState is the circuit's onion service state, under Circuit.mu.
type onionState struct {
	nonce     [KHLen]byte // of the last hop completed with a handshake
	haveNonce bool
	// incoming receives BEGINs when the circuit accepts streams.
	incoming func(msg cell.RelayMsg) error
}

// recordNonce reads KH from the key stream after the relay keys. A
// CREATE_FAST key stream ends before it (no nonce).
func (c *Circuit) recordNonce(ks io.Reader) {
	var kh [KHLen]byte
	_, err := io.ReadFull(ks, kh[:])
	c.mu.Lock()
	c.onion.nonce, c.onion.haveNonce = kh, err == nil
	c.mu.Unlock()
}

// HandshakeNonce returns KH of the last hop built with CREATE2 or
// EXTEND2 (ntor, ntor v3); false after CREATE_FAST or before any hop.
func (c *Circuit) HandshakeNonce() ([KHLen]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.onion.nonce, c.onion.haveNonce
}

// AcceptStreams makes the circuit accept RELAY_BEGIN from its last hop
// once that is a virtual hop (ExtendVirtual): the service side of a
// rendezvous circuit. fn runs on the channel reader goroutine for each
// BEGIN on an unused stream ID and must not block; it attaches the
// stream with AttachStreamID and answers it. Message data is valid only
// during the call. A non-nil error closes the circuit. BEGIN from any
// other hop, or for a stream ID in use, is a protocol violation.
func (c *Circuit) AcceptStreams(fn func(msg cell.RelayMsg) error) {
	c.mu.Lock()
	c.onion.incoming = fn
	c.mu.Unlock()
}

// incomingBegin handles a RELAY_BEGIN; accepted is false when the
// circuit does not accept streams (then BEGIN is a violation as before).
func (c *Circuit) incomingBegin(msg cell.RelayMsg, hop, last int) (accepted bool, err error) {
	c.mu.Lock()
	fn := c.onion.incoming
	_, used := c.streams[msg.StreamID]
	virtual := hop < len(c.hopAddrs) && c.hopAddrs[hop] == (Target{})
	c.mu.Unlock()
	if fn == nil {
		return false, nil
	}
	if hop != last || !virtual {
		return true, &ProtocolError{Msg: "BEGIN from a hop that is not the virtual hop"}
	}
	if used {
		return true, &ProtocolError{Msg: "BEGIN for a stream ID in use"}
	}
	return true, fn(msg)
}

// ErrStreamIDInUse is returned by AttachStreamID.
var ErrStreamIDInUse = errors.New("circuit: stream ID in use")

// AttachStreamID registers h for stream id, which the far end (the last
// hop) chose. An ID we half-closed is taken over: the far end has moved
// on from it.
func (c *Circuit) AttachStreamID(id uint16, h StreamHandler) error {
	hop := len(c.layers()) - 1
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if _, used := c.streams[id]; used || id == 0 {
		return ErrStreamIDInUse
	}
	delete(c.half, id)
	c.streams[id] = attached{h: h, hop: hop}
	return nil
}
