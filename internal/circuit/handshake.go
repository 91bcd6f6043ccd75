package circuit

// Building a circuit hop by hop: CREATE2/CREATED2 and CREATE_FAST on the
// first hop (tor-spec §5.1, §5.1.5), EXTEND2/EXTENDED2 in RELAY_EARLY
// for later ones (§5.1.2), the ntor (§5.1.4) and ntor v3 (prop 332)
// handshakes and their key derivation (§5.2), congestion control
// negotiation in the ntor v3 extensions (prop 324 §6), and the virtual
// hop of a rendezvous circuit (rend-spec-v3 §4.2.1).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/torcrypto"
)

type pendingHS struct {
	hs interface {
		Complete([]byte) (io.Reader, error)
	}
	result chan error
	cmd    cell.Command // CREATED2 or CREATED_FAST expected, or RELAY for EXTENDED2
	target Target
}

// ErrNoNtorKey is returned when a target has no ntor onion key.
var ErrNoNtorKey = errors.New("circuit: target has no ntor onion key")

// Handshake selects the CREATE2/EXTEND2 handshake.
type Handshake int

// Handshakes.
const (
	// Ntor is the ntor handshake (tor-spec §5.1.4), CREATE2 type 2.
	Ntor Handshake = iota
	// NtorV3 is ntor v3 (prop 332), CREATE2 type 3, with no
	// extensions (so no congestion control negotiation: fixed windows).
	// It needs the target's Ed25519 identity.
	NtorV3
	// NtorV3CC is ntor v3 requesting congestion control (prop 324 §6:
	// CC_FIELD_REQUEST). Use it for the last hop only. If the relay
	// accepts, circuit SENDMEs flow every cc_sendme_inc cells, stream
	// windows are replaced by XON/XOFF (package stream), and our own
	// sending keeps a fixed window of CircWindowStart cells (we do not
	// run Vegas: conservative, never more than without CC).
	NtorV3CC
)

func newHandshake(kind Handshake, t Target) (torcrypto.ClientHandshake, error) {
	if t.NtorKey == ([32]byte{}) {
		return nil, ErrNoNtorKey
	}
	switch kind {
	case Ntor:
		return torcrypto.NewNtorClient(nil, t.RSAID, t.NtorKey)
	case NtorV3, NtorV3CC:
		if !t.HasEd25519 {
			return nil, errors.New("circuit: ntor v3 needs the target's Ed25519 identity")
		}
		// The client message is an extension list: N_EXTENSIONS (1
		// byte) then the extensions.
		var exts []cell.Extension
		if kind == NtorV3CC {
			exts = append(exts, cell.Extension{Type: cell.ExtCCRequest})
		}
		cm, err := cell.EncodeExtensions(exts)
		if err != nil {
			return nil, err
		}
		return torcrypto.NewNtorV3Client(nil, t.Ed25519ID, t.NtorKey, cm, []byte(torcrypto.NtorV3CircuitVerification))
	}
	return nil, fmt.Errorf("circuit: unknown handshake %d", kind)
}

// Create opens a one-hop circuit on ch to target with CREATE2 + ntor.
func Create(ctx context.Context, ch *channel.Channel, target Target) (*Circuit, error) {
	return CreateWith(ctx, ch, target, Ntor)
}

// CreateWith is Create with a choice of handshake.
func CreateWith(ctx context.Context, ch *channel.Channel, target Target, kind Handshake) (*Circuit, error) {
	hs, err := newHandshake(kind, target)
	if err != nil {
		return nil, err
	}
	body, err := (&cell.Create2{HType: hs.Type(), HData: hs.ClientMessage()}).Encode()
	if err != nil {
		return nil, err
	}
	return create(ctx, ch, target, hs, cell.CREATE2, body, cell.CREATED2)
}

// CreateFast opens a one-hop circuit on ch with CREATE_FAST (tor-spec
// §5.1.5): no public-key handshake, security rests on the channel's TLS.
// It needs no ntor key; the channel's peer is recorded as the hop.
func CreateFast(ctx context.Context, ch *channel.Channel) (*Circuit, error) {
	hs, err := torcrypto.NewCreateFastClient(nil)
	if err != nil {
		return nil, err
	}
	p := ch.Peer()
	t := Target{RSAID: p.RSAID, Ed25519ID: p.Ed25519ID, HasEd25519: p.HasEd25519, Addr: ch.Addr()}
	return create(ctx, ch, t, hs, cell.CREATE_FAST, hs.ClientMessage(), cell.CREATED_FAST)
}

func create(ctx context.Context, ch *channel.Channel, target Target, hs interface {
	Complete([]byte) (io.Reader, error)
}, cmd cell.Command, body []byte, reply cell.Command) (*Circuit, error) {
	var sid [2]byte
	rand.Read(sid[:])
	c := &Circuit{
		packageWindow: CircWindowStart,
		sendmeInc:     CircWindowIncrement,
		earlyLeft:     MaxRelayEarly,
		deliverWindow: CircWindowStart,
		windowOpen:    make(chan struct{}, 1),
		streams:       map[uint16]attached{},
		ctrl:          make(chan cell.Relay, ControlQueueLen),
		nextSID:       binary.BigEndian.Uint16(sid[:]),
		done:          make(chan struct{}),
	}
	p := &pendingHS{hs: hs, result: make(chan error, 1), cmd: reply, target: target}
	// mu makes c.ep visible to closeWith, which the channel's goroutines
	// may call as soon as the endpoint exists.
	c.mu.Lock()
	ep, err := ch.NewEndpoint(c.handle, c.ended)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.ep = ep
	c.pending = p
	c.mu.Unlock()
	if err := ep.Send(cmd, body); err != nil {
		c.closeWith(err, false)
		return nil, err
	}
	if err := c.wait(ctx, p); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Circuit) wait(ctx context.Context, p *pendingHS) error {
	select {
	case err := <-p.result:
		if err != nil {
			c.closeWith(err, true)
			return err
		}
		return nil
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		c.mu.Lock()
		if c.pending == p {
			c.pending = nil
		}
		c.mu.Unlock()
		err := fmt.Errorf("circuit: handshake with %v: %w", p.target.Addr, ctx.Err())
		c.closeWith(err, true)
		return err
	}
}

// Extend extends the circuit by one hop with EXTEND2 (in RELAY_EARLY).
func (c *Circuit) Extend(ctx context.Context, target Target) error {
	return c.ExtendWithSpecs(ctx, target, nil)
}

// ExtendWithSpecs is Extend with the EXTEND2 link specifiers given
// verbatim (for instance an introduction point's, as its onion service
// descriptor lists them, rend-spec-v3 §2.5.2.2); nil means the ones
// derived from target. target.RSAID and target.NtorKey are always used
// for the ntor handshake.
func (c *Circuit) ExtendWithSpecs(ctx context.Context, target Target, specs []cell.LinkSpec) error {
	return c.ExtendWith(ctx, target, specs, Ntor)
}

// ExtendWith is ExtendWithSpecs with a choice of handshake.
func (c *Circuit) ExtendWith(ctx context.Context, target Target, specs []cell.LinkSpec, kind Handshake) error {
	hs, err := newHandshake(kind, target)
	if err != nil {
		return err
	}
	c.extendMu.Lock()
	defer c.extendMu.Unlock()
	if specs == nil {
		specs = target.linkSpecs()
	}
	body, err := (&cell.Extend2{Specs: specs, Create: cell.Create2{HType: hs.Type(), HData: hs.ClientMessage()}}).Encode()
	if err != nil {
		return err
	}
	p := &pendingHS{hs: hs, result: make(chan error, 1), cmd: cell.RELAY, target: target}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.pending = p
	c.mu.Unlock()
	if err := c.send(cell.RELAY_EARLY, cell.Relay{Command: cell.RELAY_EXTEND2, Data: body}); err != nil {
		return err
	}
	return c.wait(ctx, p)
}

// Build creates a circuit through path, getting the first hop's channel
// from mgr. On failure nothing is left open.
func Build(ctx context.Context, mgr *channel.Manager, path []Target) (*Circuit, error) {
	if len(path) == 0 {
		return nil, errors.New("circuit: empty path")
	}
	ch, err := mgr.Get(ctx, path[0].Addr, path[0].Identity())
	if err != nil {
		return nil, err
	}
	c, err := Create(ctx, ch, path[0])
	if err != nil {
		return nil, err
	}
	for _, t := range path[1:] {
		if err := c.Extend(ctx, t); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// ExtendVirtual appends a hop whose keys were negotiated end to end
// rather than with CREATE2/EXTEND2: an onion service's virtual hop on a
// rendezvous circuit (rend-spec-v3 §4.2.1), with its own relay crypto.
// Later cells to the last hop go to it.
func (c *Circuit) ExtendVirtual(layer torcrypto.Layer) error {
	c.extendMu.Lock()
	defer c.extendMu.Unlock()
	if err := c.Err(); err != nil {
		return err
	}
	c.addHop(layer, Target{})
	return nil
}

func (c *Circuit) addHop(layer torcrypto.Layer, t Target) {
	c.smu.Lock()
	var next torcrypto.Layers
	if cur := c.hops.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, layer)
	c.hops.Store(&next)
	c.smu.Unlock()
	c.mu.Lock()
	c.nhops++
	c.hopAddrs = append(c.hopAddrs, t)
	c.mu.Unlock()
}

func (c *Circuit) layers() torcrypto.Layers {
	if l := c.hops.Load(); l != nil {
		return *l
	}
	return nil
}

func (c *Circuit) completeHop(p *pendingHS, hdata []byte) error {
	ks, err := p.hs.Complete(hdata)
	if err == nil {
		var hop *torcrypto.Hop
		if hop, err = torcrypto.NewHop(ks); err == nil {
			if v3, ok := p.hs.(*torcrypto.NtorV3Client); ok {
				err = c.negotiated(v3.ServerMessage)
			}
		}
		if err == nil {
			c.addHop(hop, p.target)
		}
	}
	p.result <- err
	return err
}

// negotiated applies an ntor v3 server message: a CC_FIELD_RESPONSE
// turns on congestion control with its sendme_inc (prop 324 §6.2).
func (c *Circuit) negotiated(sm []byte) error {
	if len(sm) == 0 {
		return nil
	}
	exts, err := cell.DecodeExtensions(sm)
	if err != nil {
		return &ProtocolError{Msg: "ntor v3 server message: " + err.Error()}
	}
	for _, e := range exts {
		if e.Type != cell.ExtCCResponse {
			continue
		}
		if len(e.Data) != 1 || e.Data[0] == 0 {
			return &ProtocolError{Msg: "bad congestion control response"}
		}
		c.smu.Lock()
		if c.packageWindow != CircWindowStart || c.deliverWindow != CircWindowStart {
			c.smu.Unlock()
			return &ProtocolError{Msg: "congestion control negotiated after data flowed"}
		}
		c.cc = true
		c.sendmeInc = int(e.Data[0])
		c.smu.Unlock()
		return nil
	}
	return nil
}

// CongestionControl reports whether congestion control was negotiated
// with the last hop (NtorV3CC) and its SENDME increment.
func (c *Circuit) CongestionControl() (enabled bool, sendmeInc int) {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.cc, c.sendmeInc
}
