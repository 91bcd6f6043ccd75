// Package circuit builds and runs client circuits over channels.
//
// tor-spec §5 "Circuit management" (§5.1 CREATE2/CREATED2, §5.1.2
// EXTEND2/EXTENDED2 in RELAY_EARLY, §5.2 keys, §5.4 DESTROY/TRUNCATED),
// §6.1 relay cell crypto layering, §7.3 circuit-level flow control with
// prop 289 authenticated SENDMEs.
//
// Each circuit's cells are handled on its channel's reader goroutine
// (channel.Endpoint.SetHandler), which removes the relay crypto layers
// and dispatches relay messages: control
// messages (EXTENDED2, TRUNCATED, circuit SENDME) are handled here and
// stream messages go to the StreamHandler attached for their stream ID
// (package stream builds on this). That goroutine never blocks on the
// application: handlers must not block. A small goroutine per circuit
// waits for the endpoint's end (DESTROY, channel loss) to close it.
package circuit

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/torcrypto"
)

// MaxRelayEarly is the number of RELAY_EARLY cells a circuit may carry
// (tor-spec §5.6).
const MaxRelayEarly = 8

// Flow-control constants (tor-spec §7.3).
const (
	CircWindowStart     = 1000
	CircWindowIncrement = 100
)

// Target is a relay to create or extend a circuit to.
type Target struct {
	RSAID      [20]byte
	Ed25519ID  [32]byte
	HasEd25519 bool
	NtorKey    [32]byte
	Addr       netip.AddrPort
}

// TargetFromRelay returns the Target for a relay of the consensus.
func TargetFromRelay(r *netdir.Relay) Target {
	return Target{
		RSAID: r.RSAID, Ed25519ID: r.Ed25519ID, HasEd25519: r.HasEd25519,
		NtorKey: r.NtorOnionKey, Addr: r.ORAddrPort(),
	}
}

// Identity returns the channel identity of t.
func (t Target) Identity() channel.Identity {
	return channel.Identity{RSAID: t.RSAID, Ed25519ID: t.Ed25519ID, HasEd25519: t.HasEd25519}
}

func (t Target) linkSpecs() []cell.LinkSpec {
	specs := []cell.LinkSpec{cell.LinkSpecAddr(t.Addr), cell.LinkSpecRSAID(t.RSAID)}
	if t.HasEd25519 {
		specs = append(specs, cell.LinkSpecEd25519ID(t.Ed25519ID))
	}
	return specs
}

// DestroyedError reports a circuit torn down by the network: a DESTROY
// from the first hop, or a TRUNCATED from a later one.
type DestroyedError struct {
	Reason    cell.DestroyReason
	Truncated bool // RELAY_TRUNCATED rather than DESTROY
	Hop       int  // hop that sent TRUNCATED (0-based), 0 for DESTROY
}

func (e *DestroyedError) Error() string {
	if e.Truncated {
		return fmt.Sprintf("circuit: truncated at hop %d: %v", e.Hop+1, e.Reason)
	}
	return "circuit: destroyed by relay: " + e.Reason.String()
}

// ProtocolError reports a protocol violation by a relay; the circuit is
// closed (DESTROY reason PROTOCOL) when one occurs. Err, if set, is the
// underlying error (for instance a stream's).
type ProtocolError struct {
	Msg string
	Err error
}

func (e *ProtocolError) Error() string { return "circuit: protocol violation: " + e.Msg }

// Unwrap returns Err.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Errors.
var (
	ErrClosed        = errors.New("circuit: closed")
	ErrStreamIDsFull = errors.New("circuit: no free stream IDs")
)

// StreamHandler receives the relay messages of one stream. Its methods
// run on the channel reader goroutine and must not block. Message data is
// valid only during the call: the cell is recycled afterwards, so a
// handler copies what it keeps.
type StreamHandler interface {
	// HandleRelay handles one message. A non-nil error is a protocol
	// violation (for instance a stream window overrun) and closes the
	// whole circuit, as C tor does.
	HandleRelay(msg cell.Relay) error
	// CircuitClosed is called once if the circuit dies while the
	// stream is attached.
	CircuitClosed(err error)
}

// Circuit is an open client circuit.
type Circuit struct {
	ep *channel.Endpoint

	// hops is the crypto of the hops built so far, replaced (never
	// modified) when a hop is added, so the reader goroutine can use a
	// snapshot without locking.
	hops atomic.Pointer[torcrypto.Layers]

	// smu orders outbound cells: forward crypto state, the package
	// window and the digests awaiting SENDME are guarded by it.
	smu           sync.Mutex
	packageWindow int // cells we may still send: window (or cwnd) minus inflight
	sendmeInc     int // CircWindowIncrement, or the negotiated cc_sendme_inc
	cc            bool
	earlyLeft     int // RELAY_EARLY cells we may still send (tor-spec §5.6)
	sentDigests   [][20]byte
	windowOpen    chan struct{}         // cap 1, signaled when packageWindow rises
	sendBuf       [cell.PayloadLen]byte // sendLocked's payload

	// Channel reader goroutine only (handle).
	deliverWindow int

	extendMu sync.Mutex // one handshake at a time

	// ctrl queues stream-0 relay messages this package does not handle
	// itself (onion service messages, rend-spec-v3 §3-§4: commands
	// 32-40) for ReceiveControl.
	ctrl chan cell.Relay

	mu       sync.Mutex
	pending  *pendingHS
	streams  map[uint16]StreamHandler
	nextSID  uint16
	err      error
	done     chan struct{}
	nhops    int
	hopAddrs []Target
}

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
	ep, err := ch.NewEndpoint()
	if err != nil {
		return nil, err
	}
	var sid [2]byte
	rand.Read(sid[:])
	c := &Circuit{
		ep:            ep,
		packageWindow: CircWindowStart,
		sendmeInc:     CircWindowIncrement,
		earlyLeft:     MaxRelayEarly,
		deliverWindow: CircWindowStart,
		windowOpen:    make(chan struct{}, 1),
		streams:       map[uint16]StreamHandler{},
		ctrl:          make(chan cell.Relay, ControlQueueLen),
		nextSID:       binary.BigEndian.Uint16(sid[:]),
		done:          make(chan struct{}),
	}
	p := &pendingHS{hs: hs, result: make(chan error, 1), cmd: reply, target: target}
	c.pending = p
	ep.SetHandler(c.handle)
	go c.run()
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

// ControlQueueLen bounds the queue of stream-0 messages awaiting
// ReceiveControl; a relay that overflows it violates the protocol.
const ControlQueueLen = 32

// ReceiveControl returns the next circuit-level (stream 0) relay
// message that the circuit does not handle itself: the onion service
// messages (RELAY commands 32-40: INTRO_ESTABLISHED, RENDEZVOUS2, ...).
// Other unknown stream-0 commands are dropped, as C tor does.
func (c *Circuit) ReceiveControl(ctx context.Context) (cell.Relay, error) {
	select {
	case m := <-c.ctrl:
		return m, nil
	default:
	}
	select {
	case m := <-c.ctrl:
		return m, nil
	case <-c.done:
		return cell.Relay{}, c.Err()
	case <-ctx.Done():
		return cell.Relay{}, ctx.Err()
	}
}

// NumHops returns the number of hops built so far.
func (c *Circuit) NumHops() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nhops
}

// Path returns the hops built so far.
func (c *Circuit) Path() []Target {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Target(nil), c.hopAddrs...)
}

// Channel returns the circuit's channel.
func (c *Circuit) Channel() *channel.Channel { return c.ep.Channel() }

// Done is closed when the circuit closes.
func (c *Circuit) Done() <-chan struct{} { return c.done }

// Err returns why the circuit closed, or nil while open.
func (c *Circuit) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close tears the circuit down, sending DESTROY.
func (c *Circuit) Close() error {
	c.closeWith(ErrClosed, true)
	return nil
}

// closeWith marks the circuit closed with err (first error wins),
// releases the channel endpoint (sending DESTROY if destroy), and
// notifies attached streams.
func (c *Circuit) closeWith(err error, destroy bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := c.streams
	c.streams = map[uint16]StreamHandler{}
	p := c.pending
	c.pending = nil
	close(c.done)
	c.mu.Unlock()
	if p != nil {
		p.result <- err
	}
	reason := cell.DestroyNone
	var pe *ProtocolError
	if errors.As(err, &pe) {
		reason = cell.DestroyProtocol
	}
	c.ep.Release(destroy, reason)
	for _, h := range streams {
		h.CircuitClosed(err)
	}
}

// AttachStream allocates a stream ID and registers h for its messages.
func (c *Circuit) AttachStream(h StreamHandler) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	for range 65535 {
		c.nextSID++
		id := c.nextSID
		if id == 0 {
			continue
		}
		if _, used := c.streams[id]; !used {
			c.streams[id] = h
			return id, nil
		}
	}
	return 0, ErrStreamIDsFull
}

// NumStreams returns the number of attached streams.
func (c *Circuit) NumStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

// DetachStream unregisters stream id.
func (c *Circuit) DetachStream(id uint16) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}

// SendRelay sends a relay message to the last hop. RELAY_DATA waits for
// the circuit package window (ctx bounds the wait).
func (c *Circuit) SendRelay(ctx context.Context, msg cell.Relay) error {
	if msg.Command != cell.RELAY_DATA {
		return c.send(cell.RELAY, msg)
	}
	for {
		c.smu.Lock()
		if c.packageWindow > 0 {
			err := c.sendLocked(cell.RELAY, msg, true)
			if c.packageWindow > 0 {
				// Pass the wake-up on to other waiting senders.
				select {
				case c.windowOpen <- struct{}{}:
				default:
				}
			}
			c.smu.Unlock()
			return err
		}
		c.smu.Unlock()
		select {
		case <-c.windowOpen:
		case <-c.done:
			return c.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Circuit) send(cmd cell.Command, msg cell.Relay) error {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.sendLocked(cmd, msg, false)
}

func (c *Circuit) sendLocked(cmd cell.Command, msg cell.Relay, data bool) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	hops := c.layers()
	if len(hops) == 0 {
		return errors.New("circuit: no hops")
	}
	// The scratch payload is reused under smu: a local array escapes
	// through the crypto layers' interface calls (one allocation per
	// cell sent), and ep.Send copies it out before returning.
	p := &c.sendBuf
	if err := cell.EncodeRelay(p, msg); err != nil {
		return err
	}
	// EXTEND2 must travel in RELAY_EARLY; like C tor we also send the
	// first cells for hops beyond the first as RELAY_EARLY, to hide the
	// circuit length from the first hop (tor-spec §5.6).
	if cmd == cell.RELAY_EARLY && c.earlyLeft == 0 {
		return errors.New("circuit: no RELAY_EARLY cells left to extend with")
	}
	if len(hops) > 1 && c.earlyLeft > 0 {
		cmd = cell.RELAY_EARLY
	}
	if cmd == cell.RELAY_EARLY {
		c.earlyLeft--
	}
	d := hops.Encrypt(p, len(hops)-1)
	if data {
		// prop 289: remember the digest of every cell that will make the
		// exit send a SENDME (the 100th, 200th, ... since the last one).
		if (CircWindowStart-c.packageWindow+1)%c.sendmeInc == 0 {
			c.sentDigests = append(c.sentDigests, d)
		}
		c.packageWindow--
	}
	return c.ep.Send(cmd, p[:])
}

// handle processes one cell on the channel's reader goroutine (see
// channel.Endpoint.SetHandler): decrypting and delivering relay cells
// there, and sending circuit SENDMEs from there, saves a goroutine
// hand-off per batch of cells, which on a loaded machine shows up as
// round-trip time to the relays. Stream handlers never block; the only
// blocking calls are writes to the channel (bounded by its write
// deadline), as when the circuit goroutine did this.
func (c *Circuit) handle(cl *cell.Cell) {
	err := c.handleCell(cl)
	cl.Release() // handlers copy what they keep
	if err != nil {
		c.closeWith(err, true)
	}
}

// run waits for the end of the circuit's endpoint and closes the
// circuit with its reason. (Cells are handled by handle; a cell queued
// on In, which only a test would do, is handled here.)
func (c *Circuit) run() {
	for cl := range c.ep.In() {
		err := c.handleCell(cl)
		cl.Release() // handlers copy what they keep
		if err != nil {
			c.closeWith(err, true)
			// Drain nothing more: Release closed the queue.
			for cl := range c.ep.In() {
				cl.Release()
			}
			return
		}
	}
	err := c.ep.Err()
	var de *channel.DestroyError
	if errors.As(err, &de) {
		err = &DestroyedError{Reason: de.Reason}
	}
	if err == nil || errors.Is(err, channel.ErrCircReleased) {
		err = ErrClosed
	}
	c.closeWith(err, false)
}

func (c *Circuit) handleCell(cl *cell.Cell) error {
	switch cl.Command {
	case cell.CREATED2, cell.CREATED_FAST:
		c.mu.Lock()
		p := c.pending
		if p == nil || p.cmd != cl.Command {
			c.mu.Unlock()
			return &ProtocolError{Msg: "unexpected " + cl.Command.String()}
		}
		c.pending = nil
		c.mu.Unlock()
		hdata := cl.Payload // CREATED_FAST: Y | KH
		if cl.Command == cell.CREATED2 {
			var err error
			if hdata, err = cell.DecodeCreated2(cl.Payload); err != nil {
				return &ProtocolError{Msg: err.Error()}
			}
		}
		return c.completeHop(p, hdata)
	case cell.RELAY:
		return c.handleRelay(cl)
	case cell.RELAY_EARLY:
		return &ProtocolError{Msg: "inbound RELAY_EARLY"} // tor-spec §5.6: MUST close
	case cell.PADDING:
		return nil
	}
	return &ProtocolError{Msg: "unexpected " + cl.Command.String() + " on circuit"}
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

func (c *Circuit) handleRelay(cl *cell.Cell) error {
	if len(cl.Payload) != cell.PayloadLen {
		return &ProtocolError{Msg: "short relay cell"}
	}
	p := (*[cell.PayloadLen]byte)(cl.Payload)
	hops := c.layers()
	hop, digest, err := hops.Decrypt(p)
	if err != nil {
		return &ProtocolError{Msg: err.Error()}
	}
	msg, err := cell.DecodeRelay(p[:])
	if err != nil {
		return &ProtocolError{Msg: err.Error()}
	}
	last := len(hops) - 1
	if msg.StreamID == 0 {
		switch msg.Command {
		case cell.RELAY_EXTENDED2:
			c.mu.Lock()
			pd := c.pending
			if pd == nil || pd.cmd != cell.RELAY || hop != last {
				c.mu.Unlock()
				return &ProtocolError{Msg: "unexpected EXTENDED2"}
			}
			c.pending = nil
			c.mu.Unlock()
			hdata, err := cell.DecodeCreated2(msg.Data)
			if err != nil {
				return &ProtocolError{Msg: err.Error()}
			}
			return c.completeHop(pd, hdata)
		case cell.RELAY_TRUNCATED:
			reason := cell.DestroyNone
			if len(msg.Data) > 0 {
				reason = cell.DestroyReason(msg.Data[0])
			}
			return &DestroyedError{Reason: reason, Truncated: true, Hop: hop}
		case cell.RELAY_SENDME:
			return c.handleCircSendme(msg, hop, last)
		case cell.RELAY_DROP:
			return nil
		case cell.RELAY_BEGIN, cell.RELAY_DATA, cell.RELAY_END, cell.RELAY_CONNECTED,
			cell.RELAY_RESOLVE, cell.RELAY_RESOLVED, cell.RELAY_BEGIN_DIR:
			return &ProtocolError{Msg: msg.Command.String() + " with stream ID 0"}
		}
		if msg.Command >= 32 && msg.Command <= 40 {
			msg.Data = append([]byte(nil), msg.Data...) // the cell is recycled
			select {
			case c.ctrl <- msg:
				return nil
			default:
				return &ProtocolError{Msg: "control message queue overflow"}
			}
		}
		return nil // unknown commands are dropped (tor-spec §6.1)
	}
	switch msg.Command {
	case cell.RELAY_DATA:
		c.deliverWindow--
		if c.deliverWindow < 0 {
			return &ProtocolError{Msg: "circuit deliver window exceeded"}
		}
		if c.deliverWindow <= CircWindowStart-c.sendmeInc {
			// Authenticated SENDME v1 carrying the digest of this cell.
			s := &cell.Sendme{Version: 1, Digest: digest[:]}
			if err := c.send(cell.RELAY, cell.Relay{Command: cell.RELAY_SENDME, Data: s.Encode()}); err != nil {
				return err
			}
			c.deliverWindow += c.sendmeInc
		}
	case cell.RELAY_BEGIN, cell.RELAY_BEGIN_DIR, cell.RELAY_RESOLVE, cell.RELAY_EXTEND2, cell.RELAY_EXTEND:
		return &ProtocolError{Msg: msg.Command.String() + " sent to a client"}
	}
	c.mu.Lock()
	h := c.streams[msg.StreamID]
	c.mu.Unlock()
	if h != nil {
		if err := h.HandleRelay(msg); err != nil {
			return &ProtocolError{Msg: fmt.Sprintf("stream %d: %v", msg.StreamID, err), Err: err}
		}
	}
	return nil
}

func (c *Circuit) handleCircSendme(msg cell.Relay, hop, last int) error {
	if hop != last {
		return &ProtocolError{Msg: "circuit SENDME from a middle hop"}
	}
	s, err := cell.DecodeSendme(msg.Data)
	if err != nil {
		return &ProtocolError{Msg: err.Error()}
	}
	c.smu.Lock()
	if len(c.sentDigests) == 0 || c.packageWindow+c.sendmeInc > CircWindowStart {
		c.smu.Unlock()
		return &ProtocolError{Msg: "unexpected circuit SENDME (window would exceed 1000)"}
	}
	want := c.sentDigests[0]
	c.sentDigests = c.sentDigests[1:]
	if s.Version == 1 && subtle.ConstantTimeCompare(s.Digest, want[:]) != 1 {
		c.smu.Unlock()
		return &ProtocolError{Msg: "authenticated SENDME digest mismatch"}
	}
	c.packageWindow += c.sendmeInc
	c.smu.Unlock()
	select {
	case c.windowOpen <- struct{}{}:
	default:
	}
	return nil
}
