// Package channel implements Tor channels: TLS connections between the
// client and a relay's ORPort carrying multiplexed circuits.
//
// tor-spec §2 "Connections", §4 "Negotiating and initializing
// connections" (VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO), §5.1.1
// "Choosing circuit IDs in create cells", §5.4 DESTROY, §7.2
// PADDING_NEGOTIATE (padding.go, with padding-spec §2).
//
// # Concurrency
//
// Each channel has exactly one reader goroutine. It reads cells and
// dispatches them by circuit ID to the circuit's Endpoint, whose handler
// it calls directly (no queue, no goroutine hand-off per cell). Handlers
// must not block on anything but writes to this channel: every other
// circuit on the channel waits meanwhile. An endpoint's end (a DESTROY
// from the relay, the channel closing) is reported once to its ended
// callback, from the reader goroutine or from whichever goroutine failed
// the channel, never with the channel's lock held.
//
// Writes are serialized by a mutex; every write has a deadline
// (WriteTimeout) so a peer that stops reading fails the channel instead
// of blocking writers forever.
//
// A channel opened by a Manager also has one padding goroutine
// (padding.go: padding-spec §2 netflow padding, keepalives, idle
// expiry), which writes PADDING cells under the same mutex.
package channel

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/cell"
)

// Link protocol versions we speak (tor-spec §4.1).
var supportedVersions = []uint16{4, 5}

// Tunables.
var (
	// WriteTimeout bounds a single cell write.
	WriteTimeout = 60 * time.Second
	// HandshakeTimeout bounds the link handshake when ctx has no deadline.
	HandshakeTimeout = 30 * time.Second
)

// Identity is a relay's identity keys.
type Identity struct {
	RSAID      [20]byte
	Ed25519ID  [32]byte
	HasEd25519 bool
}

func (id Identity) String() string {
	s := "$" + hex.EncodeToString(id.RSAID[:])
	if id.HasEd25519 {
		s += " ed25519:" + base64NoPad(id.Ed25519ID[:])
	}
	return s
}

// IdentityMismatchError is returned by Dial when the relay authenticated
// as someone other than expected.
type IdentityMismatchError struct {
	Kind     string // "RSA" or "Ed25519"
	Expected string
	Got      string
}

func (e *IdentityMismatchError) Error() string {
	return fmt.Sprintf("channel: relay %s identity mismatch: expected %s, got %s", e.Kind, e.Expected, e.Got)
}

// DestroyError is the error of an Endpoint torn down by a DESTROY cell
// from the relay.
type DestroyError struct{ Reason cell.DestroyReason }

func (e *DestroyError) Error() string {
	return "channel: circuit destroyed by relay: " + e.Reason.String()
}

// Errors.
var (
	ErrClosed = errors.New("channel: closed")
)

// ProtocolError reports a link protocol violation by the relay.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "channel: protocol error: " + e.Msg }

// Channel is an open, authenticated link to a relay.
type Channel struct {
	conn      net.Conn
	br        *bufio.Reader
	linkProto int
	peer      Identity
	addr      netip.AddrPort
	peerTime  time.Time

	wmu  sync.Mutex
	wbuf []byte

	mu     sync.Mutex
	circs  map[uint32]*Endpoint
	closed bool
	err    error
	done   chan struct{}

	pad padState // padding.go
}

// Endpoint is one circuit's attachment to a channel: its ID and the
// callbacks the reader goroutine calls for it.
type Endpoint struct {
	ID     uint32
	ch     *Channel
	handle func(*cell.Cell)
	ended  func(error)
}

// Channel returns the channel of the endpoint.
func (e *Endpoint) Channel() *Channel { return e.ch }

// Send sends a cell on this circuit.
func (e *Endpoint) Send(cmd cell.Command, payload []byte) error {
	return e.ch.Send(&cell.Cell{CircID: e.ID, Command: cmd, Payload: payload})
}

// Release detaches the circuit from the channel; if destroy is true a
// DESTROY with reason is sent. The ended callback is not called. It is
// idempotent.
func (e *Endpoint) Release(destroy bool, reason cell.DestroyReason) {
	c := e.ch
	c.mu.Lock()
	cur, ok := c.circs[e.ID]
	live := ok && cur == e
	if live {
		delete(c.circs, e.ID)
		c.noteCircuitGone()
	}
	c.mu.Unlock()
	if live && destroy {
		c.Send(&cell.Cell{CircID: e.ID, Command: cell.DESTROY, Payload: []byte{byte(reason)}})
	}
}

// Dial connects to a relay's ORPort, performs the link handshake and
// checks that the relay's identity is want (Ed25519 only if
// want.HasEd25519). ctx bounds the whole handshake.
func Dial(ctx context.Context, addr netip.AddrPort, want Identity) (*Channel, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, HandshakeTimeout)
		defer cancel()
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("channel: dial %s: %w", addr, err)
	}
	return Handshake(ctx, raw, addr, &want)
}

// Handshake performs the link handshake on raw, a connection already
// open to the relay at addr: a TCP connection, or one through an outbound
// proxy or a pluggable transport (addr is then the relay's address as
// configured, which the NETINFO cell reports). It checks that the relay's
// identity is *want (Ed25519 only if want.HasEd25519); a nil want accepts
// whichever identity the relay proves, as for a bridge configured without
// a fingerprint (Peer says who it is). raw is closed on error. ctx bounds
// the handshake (HandshakeTimeout when it has no deadline).
func Handshake(ctx context.Context, raw net.Conn, addr netip.AddrPort, want *Identity) (*Channel, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, HandshakeTimeout)
		defer cancel()
	}
	// Relays present self-signed certificates: authenticity comes from
	// the CERTS cell, which binds the TLS certificate to the identity.
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	ch := &Channel{conn: tc, addr: addr, circs: map[uint32]*Endpoint{}, done: make(chan struct{})}
	ch.pad.init()
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	err := ch.handshake(ctx, tc, want)
	if !stop() || err != nil {
		raw.Close()
		if err == nil || ctx.Err() != nil {
			return nil, fmt.Errorf("channel: handshake with %s: %w", addr, context.Cause(ctx))
		}
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	go ch.readLoop()
	return ch, nil
}

func (c *Channel) handshake(ctx context.Context, tc *tls.Conn, want *Identity) error {
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("channel: TLS with %s: %w", c.addr, err)
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return &ProtocolError{"no TLS certificate"}
	}
	leaf := st.PeerCertificates[0].Raw
	c.br = bufio.NewReaderSize(tc, 16<<10)

	// VERSIONS always uses 2-byte circuit IDs (tor-spec §4.1).
	vc := &cell.Cell{Command: cell.VERSIONS, Payload: cell.EncodeVersions(supportedVersions)}
	b, _ := vc.Encode(2)
	if _, err := tc.Write(b); err != nil {
		return fmt.Errorf("channel: write VERSIONS: %w", err)
	}
	r, err := cell.Read(c.br, 2)
	if err != nil {
		return fmt.Errorf("channel: read VERSIONS: %w", err)
	}
	if r.Command != cell.VERSIONS {
		return &ProtocolError{"expected VERSIONS, got " + r.Command.String()}
	}
	theirs, err := cell.DecodeVersions(r.Payload)
	if err != nil {
		return &ProtocolError{err.Error()}
	}
	for _, v := range theirs {
		for _, o := range supportedVersions {
			if v == o && int(v) > c.linkProto {
				c.linkProto = int(v)
			}
		}
	}
	if c.linkProto == 0 {
		return &ProtocolError{fmt.Sprintf("no common link protocol version (relay offers %v)", theirs)}
	}

	var certs []cell.CertEntry
	gotCerts, gotChallenge := false, false
	for {
		r, err := cell.Read(c.br, 4)
		if err != nil {
			return fmt.Errorf("channel: reading handshake cells: %w", err)
		}
		switch r.Command {
		case cell.VPADDING, cell.PADDING:
		case cell.CERTS:
			if gotCerts {
				return &ProtocolError{"second CERTS cell"}
			}
			gotCerts = true
			if certs, err = cell.DecodeCerts(r.Payload); err != nil {
				return &ProtocolError{err.Error()}
			}
		case cell.AUTH_CHALLENGE:
			// Clients do not authenticate; parse only to reject garbage.
			if gotChallenge {
				return &ProtocolError{"second AUTH_CHALLENGE cell"}
			}
			gotChallenge = true
			if _, err := cell.DecodeAuthChallenge(r.Payload); err != nil {
				return &ProtocolError{err.Error()}
			}
		case cell.NETINFO:
			if !gotCerts {
				return &ProtocolError{"NETINFO before CERTS"}
			}
			ni, err := cell.DecodeNetinfo(r.Payload)
			if err != nil {
				return &ProtocolError{err.Error()}
			}
			c.peerTime = ni.Time
			got, err := verifyResponderCerts(certs, leaf, time.Now())
			if err != nil {
				return err
			}
			if want != nil && got.RSAID != want.RSAID {
				return &IdentityMismatchError{Kind: "RSA", Expected: hex.EncodeToString(want.RSAID[:]), Got: hex.EncodeToString(got.RSAID[:])}
			}
			if want != nil && want.HasEd25519 && got.Ed25519ID != want.Ed25519ID {
				return &IdentityMismatchError{Kind: "Ed25519", Expected: base64NoPad(want.Ed25519ID[:]), Got: base64NoPad(got.Ed25519ID[:])}
			}
			c.peer = got
			my := &cell.Netinfo{OtherAddr: c.addr.Addr().Unmap()}
			out := &cell.Cell{Command: cell.NETINFO, Payload: my.Encode()}
			b, _ := out.Encode(4)
			if _, err := tc.Write(b); err != nil {
				return fmt.Errorf("channel: write NETINFO: %w", err)
			}
			return nil
		default:
			return &ProtocolError{"unexpected " + r.Command.String() + " during handshake"}
		}
	}
}

// NewFromConn returns a channel over conn, on which the link handshake
// has already been completed with link protocol 4 or later and whose
// peer is known to be peer. It starts the reader goroutine. It is meant
// for tests (simulated relays over net.Pipe) and for transports that
// authenticate the peer themselves; Dial is the normal constructor.
func NewFromConn(conn net.Conn, peer Identity) *Channel {
	ch := &Channel{conn: conn, br: bufio.NewReaderSize(conn, 16<<10), linkProto: 4, peer: peer,
		circs: map[uint32]*Endpoint{}, done: make(chan struct{})}
	ch.pad.init()
	if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
		ch.addr = ap
	}
	go ch.readLoop()
	return ch
}

// Peer returns the relay's authenticated identity.
func (c *Channel) Peer() Identity { return c.peer }

// PeerTime returns the time the relay put in its NETINFO cell (zero if
// none), for clock skew estimates (tor-spec §4.5).
func (c *Channel) PeerTime() time.Time { return c.peerTime }

// Addr returns the relay address we connected to.
func (c *Channel) Addr() netip.AddrPort { return c.addr }

// LinkProtocol returns the negotiated link protocol version.
func (c *Channel) LinkProtocol() int { return c.linkProto }

// Done is closed when the channel closes.
func (c *Channel) Done() <-chan struct{} { return c.done }

// Err returns why the channel closed, or nil if open.
func (c *Channel) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// NumCircuits returns the number of circuits attached.
func (c *Channel) NumCircuits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.circs)
}

// NewEndpoint allocates a circuit ID (with the high bit set: we are
// the initiator, tor-spec §5.1.1). The reader goroutine hands each cell
// of the circuit to handle, which owns it (and may return it to the pool
// with cell.Release once done). ended is called once, with the reason,
// if the circuit ends other than by Release: a DESTROY from the relay
// (*DestroyError) or the channel closing. Neither may block (see the
// package doc); ended may run before NewEndpoint returns.
func (c *Channel) NewEndpoint(handle func(*cell.Cell), ended func(error)) (*Endpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.closedErr()
	}
	for {
		var b [4]byte
		rand.Read(b[:])
		id := binary.BigEndian.Uint32(b[:]) | 0x80000000
		if _, used := c.circs[id]; used {
			continue
		}
		e := &Endpoint{ID: id, ch: c, handle: handle, ended: ended}
		c.circs[id] = e
		return e, nil
	}
}

func (c *Channel) closedErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// Send writes one cell. It is safe for concurrent use.
func (c *Channel) Send(cl *cell.Cell) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sendLocked(cl)
}

// sendLocked is Send with c.wmu held.
func (c *Channel) sendLocked(cl *cell.Cell) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	var err error
	c.wbuf, err = cl.Append(c.wbuf[:0], 4)
	if err != nil {
		return err
	}
	c.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if _, err := c.conn.Write(c.wbuf); err != nil {
		c.fail(fmt.Errorf("channel: write to %s: %w", c.addr, err))
		return c.Err()
	}
	c.pad.noteSent(cl.Command)
	return nil
}

// Close closes the channel and fails all its circuits.
func (c *Channel) Close() error {
	c.fail(ErrClosed)
	return nil
}

func (c *Channel) fail(err error) { c.failWhen(err, nil) }

// failWhen closes the channel with err if it is open and cond (called
// with c.mu held; nil means true) allows.
func (c *Channel) failWhen(err error, cond func() bool) {
	c.mu.Lock()
	if c.closed || (cond != nil && !cond()) {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	circs := c.circs
	c.circs = map[uint32]*Endpoint{}
	close(c.done)
	c.mu.Unlock()
	c.conn.Close()
	for _, e := range circs {
		e.ended(err)
	}
}

func (c *Channel) readLoop() {
	for {
		cl, err := cell.Read(c.br, 4)
		if err != nil {
			c.fail(fmt.Errorf("channel: read from %s: %w", c.addr, err))
			return
		}
		c.pad.noteReceived()
		if cl.CircID == 0 {
			switch cl.Command {
			case cell.PADDING, cell.VPADDING:
				c.pad.recv.Add(1)
				cl.Release()
				continue
			case cell.PADDING_NEGOTIATE:
				// padding-spec §2.5: clients MUST reject padding
				// negotiation from relays and close the channel.
				c.fail(&ProtocolError{"PADDING_NEGOTIATE from a relay"})
				return
			case cell.VERSIONS, cell.CERTS, cell.AUTH_CHALLENGE, cell.NETINFO, cell.AUTHENTICATE, cell.AUTHORIZE:
				c.fail(&ProtocolError{cl.Command.String() + " after handshake"})
				return
			default:
				// Unknown channel-level commands are ignored.
				cl.Release()
				continue
			}
		}
		switch cl.Command {
		case cell.CREATED2, cell.CREATED_FAST, cell.CREATED, cell.RELAY, cell.RELAY_EARLY, cell.PADDING:
			c.dispatch(cl) // the circuit releases the cell
			continue
		case cell.DESTROY:
			reason := cell.DestroyNone
			if len(cl.Payload) > 0 {
				reason = cell.DestroyReason(cl.Payload[0])
			}
			c.mu.Lock()
			e, ok := c.circs[cl.CircID]
			if ok {
				delete(c.circs, cl.CircID)
				c.noteCircuitGone()
			}
			c.mu.Unlock()
			if ok {
				e.ended(&DestroyError{Reason: reason})
			}
		case cell.CREATE, cell.CREATE2, cell.CREATE_FAST:
			// We are a client: refuse circuits.
			c.Send(&cell.Cell{CircID: cl.CircID, Command: cell.DESTROY, Payload: []byte{byte(cell.DestroyProtocol)}})
		default:
			// Ignore unknown commands (tor-spec §3: forward compatibility).
		}
		cl.Release()
	}
}

// dispatch hands cl to its circuit's handler, which then owns it.
func (c *Channel) dispatch(cl *cell.Cell) {
	c.mu.Lock()
	e, ok := c.circs[cl.CircID]
	c.mu.Unlock()
	if !ok {
		cl.Release()
		return // late cell for a released circuit
	}
	e.handle(cl)
}
