package service

// What the service needs from the engine (Network), and the adapter
// from internal/circuit and internal/stream to what the protocol code
// uses (circ). Service circuits are 4 hops, as C tor's
// route_len_for_purpose for S_HSDIR_POST, S_ESTABLISH_INTRO and
// S_CONNECT_REND: each ends at a relay someone else chose or will learn
// about, so one more middle hop separates it from the guard.

import (
	"context"
	"net"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/stream"
)

// Purpose tells the engine what a service circuit is for. These
// circuits never carry other traffic.
type Purpose int

// Circuit purposes (C tor's names in parentheses).
const (
	PurposeHSDirPost Purpose = iota + 1 // BEGIN_DIR to an HSDir to publish (S_HSDIR_POST)
	PurposeIntro                        // ESTABLISH_INTRO at an introduction point (S_ESTABLISH_INTRO)
	PurposeRend                         // RENDEZVOUS1 at a client's rendezvous point (S_CONNECT_REND)
)

func (p Purpose) String() string {
	switch p {
	case PurposeHSDirPost:
		return "hsdir-post"
	case PurposeIntro:
		return "establish-intro"
	case PurposeRend:
		return "connect-rend"
	}
	return "unknown"
}

// ServiceCircuitHops is the length of every service circuit.
const ServiceCircuitHops = 4

// CircuitRequest asks the engine for a circuit.
type CircuitRequest struct {
	Purpose Purpose
	// Hops is the total number of hops, Last included (4).
	Hops int
	// Last is the final hop. Relay is its consensus entry when it is
	// listed (always for HSDirs and intro points; a rendezvous point
	// the client named may be unknown), so the engine can keep the
	// other hops apart from it (family, /16).
	Last  circuit.Target
	Relay *netdir.Relay
	// LinkSpecs, when non-nil, go verbatim in the EXTEND2 to Last: the
	// rendezvous point's link specifiers as the client sent them
	// (rend-spec §3.3: "sent verbatim ... in the same order").
	LinkSpecs []cell.LinkSpec
}

// Network is what the engine provides to a Service.
type Network interface {
	// NetDir returns the current consensus view, or nil before the
	// first one. The service polls it every second and reacts when it
	// changes (new time period, SRV, HSDirs, intro points gone).
	NetDir() *netdir.NetDir
	// BuildCircuit builds a circuit as req says: guard, then middles,
	// then req.Last, with ntor (the last hop's handshake nonce is
	// needed for ESTABLISH_INTRO, so not CREATE_FAST for one-hop
	// circuits). It must honour ctx.
	BuildCircuit(ctx context.Context, req CircuitRequest) (*circuit.Circuit, error)
}

// circ is a circuit as the protocol code uses it.
type circ interface {
	sendRelay(ctx context.Context, cmd cell.RelayCommand, body []byte) error
	// receive returns the next stream-0 onion service message.
	receive(ctx context.Context) (cell.RelayCommand, []byte, error)
	beginDir(ctx context.Context) (net.Conn, error)
	// nonce is the last hop's KH (tor-spec §5.2.2), for ESTABLISH_INTRO.
	nonce() ([20]byte, bool)
	// join sends RENDEZVOUS1, then appends the service side of the
	// virtual hop and passes each stream the client opens to onStream
	// (on the circuit's reader goroutine: it must not block).
	join(ctx context.Context, rendezvous1 []byte, keys hscrypto.RendKeys, onStream func(streamRequest)) error
	done() <-chan struct{}
	close()
}

// streamRequest is a RELAY_BEGIN from a client.
type streamRequest interface {
	port() uint16
	// accept sends CONNECTED and returns the stream.
	accept() (net.Conn, error)
	// reject sends END with reason.
	reject(reason cell.EndReason)
}

// realCirc adapts *circuit.Circuit.
type realCirc struct{ c *circuit.Circuit }

func (r realCirc) sendRelay(ctx context.Context, cmd cell.RelayCommand, body []byte) error {
	return r.c.SendRelay(ctx, cell.RelayMsg{Command: cmd, Data: body})
}

func (r realCirc) receive(ctx context.Context) (cell.RelayCommand, []byte, error) {
	m, err := r.c.ReceiveControl(ctx)
	return m.Command, m.Data, err
}

func (r realCirc) beginDir(ctx context.Context) (net.Conn, error) { return stream.BeginDir(ctx, r.c) }

func (r realCirc) nonce() ([20]byte, bool) { return r.c.HandshakeNonce() }

func (r realCirc) join(ctx context.Context, rendezvous1 []byte, keys hscrypto.RendKeys, onStream func(streamRequest)) error {
	// Streams are accepted from the last hop only, which becomes the
	// virtual hop right after RENDEZVOUS1 leaves: the client can send
	// nothing through it before it has our RENDEZVOUS2, a round trip
	// through the rendezvous point later.
	stream.AcceptStreams(r.c, func(in *stream.Incoming) { onStream(incoming{in}) })
	if err := r.c.SendRelay(ctx, cell.RelayMsg{Command: cell.RelayCommand(hscell.CmdRendezvous1), Data: rendezvous1}); err != nil {
		return err
	}
	return r.c.ExtendVirtual(hscrypto.NewRendHopServiceSide(keys))
}

func (r realCirc) done() <-chan struct{} { return r.c.Done() }

func (r realCirc) close() { r.c.Close() }

type incoming struct{ in *stream.Incoming }

func (i incoming) port() uint16                 { return i.in.Port }
func (i incoming) accept() (net.Conn, error)    { return i.in.Accept() }
func (i incoming) reject(reason cell.EndReason) { i.in.Reject(reason) }
