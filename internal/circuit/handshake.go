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
	"github.com/gotor/gotor/internal/congestion"
	"github.com/gotor/gotor/internal/torcrypto"
)

type pendingHS struct {
	hs interface {
		Complete([]byte) (io.Reader, error)
	}
	result chan error
	cmd    cell.Command // CREATED2 or CREATED_FAST expected, or RELAY for EXTENDED2
	target Target
	cc     *congestion.Params // congestion control requested with these parameters
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
	// NtorV3CC is ntor v3 requesting congestion control (prop 324 §10.3:
	// CC_FIELD_REQUEST), with the target's CC parameters (the defaults
	// with TOR_VEGAS when nil). Use it for the last hop only: the circuit
	// cannot be extended past it. If the relay accepts, SENDMEs flow
	// every negotiated cc_sendme_inc cells, our sending runs TOR_VEGAS,
	// and stream windows are replaced by XON/XOFF (package stream). A
	// relay that answers without the CC response (one whose consensus has
	// cc_alg=0) leaves the circuit on fixed windows.
	NtorV3CC
)

// newHandshake starts handshake kind with t; cc is non-nil when it
// requests congestion control.
func newHandshake(kind Handshake, t Target) (hs torcrypto.ClientHandshake, cc *congestion.Params, err error) {
	if t.NtorKey == ([32]byte{}) {
		return nil, nil, ErrNoNtorKey
	}
	switch kind {
	case Ntor:
		hs, err = torcrypto.NewNtorClient(nil, t.RSAID, t.NtorKey)
		return hs, nil, err
	case NtorV3, NtorV3CC:
		if !t.HasEd25519 {
			return nil, nil, errors.New("circuit: ntor v3 needs the target's Ed25519 identity")
		}
		// The client message is an extension list: N_EXTENSIONS (1
		// byte) then the extensions.
		var exts []cell.Extension
		if kind == NtorV3CC {
			exts = append(exts, cell.Extension{Type: cell.ExtCCRequest})
			p := congestion.DefaultParams(congestion.PathExit)
			p.Alg = congestion.AlgVegas
			if t.CC != nil {
				p = *t.CC
			}
			cc = &p
		}
		cm, err := cell.EncodeExtensions(exts)
		if err != nil {
			return nil, nil, err
		}
		hs, err = torcrypto.NewNtorV3Client(nil, t.Ed25519ID, t.NtorKey, cm, []byte(torcrypto.NtorV3CircuitVerification))
		return hs, cc, err
	}
	return nil, nil, fmt.Errorf("circuit: unknown handshake %d", kind)
}

// Create opens a one-hop circuit on ch to target with CREATE2 and the
// target's handshake (see HopFor).
func Create(ctx context.Context, ch *channel.Channel, target Target) (*Circuit, error) {
	return CreateWith(ctx, ch, target, target.Handshake)
}

// CreateWith is Create with a choice of handshake.
func CreateWith(ctx context.Context, ch *channel.Channel, target Target, kind Handshake) (*Circuit, error) {
	hs, cc, err := newHandshake(kind, target)
	if err != nil {
		return nil, err
	}
	body, err := (&cell.Create2{HType: hs.Type(), HData: hs.ClientMessage()}).Encode()
	if err != nil {
		return nil, err
	}
	return create(ctx, ch, target, hs, cc, cell.CREATE2, body, cell.CREATED2)
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
	return create(ctx, ch, t, hs, nil, cell.CREATE_FAST, hs.ClientMessage(), cell.CREATED_FAST)
}

func create(ctx context.Context, ch *channel.Channel, target Target, hs interface {
	Complete([]byte) (io.Reader, error)
}, cc *congestion.Params, cmd cell.Command, body []byte, reply cell.Command) (*Circuit, error) {
	var sid [2]byte
	rand.Read(sid[:])
	c := &Circuit{
		fc:            &congestion.Fixed{},
		sendmeInc:     CircWindowIncrement,
		earlyLeft:     MaxRelayEarly,
		deliverWindow: CircWindowStart,
		windowOpen:    make(chan struct{}, 1),
		streams:       map[uint16]attached{},
		ctrl:          make(chan cell.RelayMsg, ControlQueueLen),
		nextSID:       binary.BigEndian.Uint16(sid[:]),
		done:          make(chan struct{}),
	}
	c.closed, c.cancel = context.WithCancel(context.Background())
	p := &pendingHS{hs: hs, result: make(chan error, 1), cmd: reply, target: target, cc: cc}
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

// Extend extends the circuit by one hop with EXTEND2 (in RELAY_EARLY),
// with the target's handshake (see HopFor).
func (c *Circuit) Extend(ctx context.Context, target Target) error {
	return c.ExtendWithSpecs(ctx, target, nil)
}

// ExtendWithSpecs is Extend with the EXTEND2 link specifiers given
// verbatim (for instance an introduction point's, as its onion service
// descriptor lists them, rend-spec-v3 §2.5.2.2); nil means the ones
// derived from target. target.RSAID and target.NtorKey are always used
// for the ntor handshake.
func (c *Circuit) ExtendWithSpecs(ctx context.Context, target Target, specs []cell.LinkSpec) error {
	return c.ExtendWith(ctx, target, specs, target.Handshake)
}

// ErrExtendPastCC is returned when extending a circuit whose last hop
// negotiated congestion control: that hop's flow control would belong
// to a middle hop.
var ErrExtendPastCC = errors.New("circuit: cannot extend past the congestion-controlled hop")

// ExtendWith is ExtendWithSpecs with a choice of handshake.
func (c *Circuit) ExtendWith(ctx context.Context, target Target, specs []cell.LinkSpec, kind Handshake) error {
	hs, cc, err := newHandshake(kind, target)
	if err != nil {
		return err
	}
	c.extendMu.Lock()
	defer c.extendMu.Unlock()
	if on, _ := c.CongestionControl(); on {
		return ErrExtendPastCC
	}
	if specs == nil {
		specs = target.linkSpecs()
	}
	body, err := (&cell.Extend2{Specs: specs, Create: cell.Create2{HType: hs.Type(), HData: hs.ClientMessage()}}).Encode()
	if err != nil {
		return err
	}
	p := &pendingHS{hs: hs, result: make(chan error, 1), cmd: cell.RELAY, target: target, cc: cc}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.pending = p
	c.mu.Unlock()
	if err := c.send(cell.RELAY_EARLY, cell.RelayMsg{Command: cell.RELAY_EXTEND2, Data: body}); err != nil {
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
			c.recordNonce(ks)
			if v3, ok := p.hs.(*torcrypto.NtorV3Client); ok {
				err = c.negotiated(v3.ServerMessage, p.cc)
			}
		}
		if err == nil {
			c.addHop(hop, p.target)
		}
	}
	p.result <- err
	return err
}

// negotiated applies an ntor v3 server message (prop 324 §10.3, §10.5):
// the first CC_FIELD_RESPONSE turns on congestion control with its
// sendme_inc when we asked for it (cc non-nil) and the value is within a
// factor of two of the consensus's; a response we did not ask for, or a
// bad value, closes the circuit. No response to a request means the
// relay refused: fixed windows stay.
func (c *Circuit) negotiated(sm []byte, cc *congestion.Params) error {
	if len(sm) == 0 {
		return nil
	}
	exts, err := cell.DecodeExtensions(sm)
	if err != nil {
		return &ProtocolError{Msg: "ntor v3 server message: " + err.Error()}
	}
	for _, e := range exts {
		if e.Type != cell.ExtCCResponse {
			continue // unknown extensions are ignored
		}
		if cc == nil {
			return &ProtocolError{Msg: "congestion control response without a request"}
		}
		if len(e.Data) != 1 {
			return &ProtocolError{Msg: "bad congestion control response"}
		}
		inc := int(e.Data[0])
		if !cc.AcceptSendmeInc(inc) {
			return &ProtocolError{Msg: fmt.Sprintf("congestion control sendme_inc %d too far from the consensus's %d", inc, cc.SendmeInc)}
		}
		c.smu.Lock()
		if c.fc.Window() != CircWindowStart || c.deliverWindow != CircWindowStart {
			c.smu.Unlock()
			return &ProtocolError{Msg: "congestion control negotiated after data flowed"}
		}
		c.cc = true
		c.sendmeInc = inc
		c.fc = congestion.NewVegas(*cc, inc)
		c.smu.Unlock()
		return nil
	}
	return nil
}
