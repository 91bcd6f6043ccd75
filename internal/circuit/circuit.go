// Package circuit builds and runs client circuits over channels.
//
// tor-spec §5 "Circuit management" (§5.1 CREATE2/CREATED2, §5.1.2
// EXTEND2/EXTENDED2 in RELAY_EARLY, §5.2 keys, §5.4 DESTROY/TRUNCATED),
// §6.1 relay cell crypto layering, §7.3 circuit-level flow control with
// prop 289 authenticated SENDMEs, prop 324 congestion control (TOR_VEGAS,
// package congestion) negotiated in prop 332 ntor v3.
//
// Each circuit's cells are handled on its channel's reader goroutine
// (the handler of its channel.Endpoint), which removes the relay crypto
// layers and dispatches relay messages: control messages (EXTENDED2,
// TRUNCATED, circuit SENDME) are handled here and stream messages go to
// the StreamHandler attached for their stream ID (package stream builds
// on this). That goroutine never blocks on the application: handlers
// must not block. The endpoint's end (DESTROY, channel loss) closes the
// circuit through its ended callback; a circuit has no goroutine.
//
// The package's files follow those concerns: target.go (relays to build
// to), negotiate.go (each hop's handshake: ntor, ntor v3, congestion
// control), handshake.go (CREATE2/EXTEND2, hops), send.go (outbound
// crypto, RELAY_EARLY), flowcontrol.go (windows, SENDMEs, congestion
// control, prop 324), dispatch.go (inbound cells), streams.go (stream IDs
// and handlers).
package circuit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/congestion"
	"github.com/gotor/gotor/internal/torcrypto"
)

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
	ErrClosed = errors.New("circuit: closed")
)

// Circuit is an open client circuit.
type Circuit struct {
	ep *channel.Endpoint // set under mu in create, then constant

	// hops is the crypto of the hops built so far, replaced (never
	// modified) when a hop is added, so the reader goroutine can use a
	// snapshot without locking.
	hops atomic.Pointer[torcrypto.Layers]

	// smu orders outbound cells: forward crypto state, the congestion
	// controller and the cells awaiting SENDME are guarded by it.
	smu        sync.Mutex
	fc         congestion.Controller // Fixed, or Vegas once negotiated
	sendmeInc  int                   // CircWindowIncrement, or the negotiated cc_sendme_inc
	minSendme  int                   // sendme_accept_min_version
	cc         bool                  // congestion control negotiated with the last hop
	earlyLeft  int                   // RELAY_EARLY cells we may still send (tor-spec §5.6)
	awaiting   []awaitingSendme      // sent cells that elicit a SENDME, oldest first
	windowOpen chan struct{}         // cap 1, signaled when the window may have opened
	sendBuf    [cell.PayloadLen]byte // sendLocked's payload

	// Channel reader goroutine only (handle).
	deliverWindow int

	extendMu sync.Mutex // one handshake at a time

	// ctrl queues stream-0 relay messages this package does not handle
	// itself (onion service messages, rend-spec-v3 §3-§4: commands
	// 32-40) for ReceiveControl.
	ctrl chan cell.RelayMsg

	dropped dropCounts

	mu        sync.Mutex
	pending   *pendingHS
	streams   map[uint16]attached
	half      map[uint16]*halfStream // half-closed streams (halfclosed.go)
	halfOrder []halfKey              // oldest first, for MaxHalfClosed
	halfSeq   uint64
	nextSID   uint16
	err       error
	done      chan struct{}
	closed    context.Context // cancelled with done, for AfterClose
	cancel    context.CancelFunc
	nhops     int
	hopAddrs  []Target
	onion     onionState // onionservice.go
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

// AfterClose arranges for f to run in its own goroutine once the circuit
// has closed (at once if it has), as context.AfterFunc does: no goroutine
// waits meanwhile. stop unregisters f; it reports whether f was stopped
// before it started.
func (c *Circuit) AfterClose(f func()) (stop func() bool) { return context.AfterFunc(c.closed, f) }

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
	ep, streams, ok := c.markClosed(err)
	if !ok {
		return
	}
	reason := cell.DestroyNone
	var pe *ProtocolError
	if errors.As(err, &pe) {
		reason = cell.DestroyProtocol
	}
	ep.Release(destroy, reason)
	for _, a := range streams {
		a.h.CircuitClosed(err)
	}
}

// ended is the endpoint's ended callback: the relay sent DESTROY or the
// channel closed. The endpoint is already detached from the channel.
func (c *Circuit) ended(err error) {
	var de *channel.DestroyError
	if errors.As(err, &de) {
		err = &DestroyedError{Reason: de.Reason}
	}
	_, streams, ok := c.markClosed(err)
	if !ok {
		return
	}
	for _, a := range streams {
		a.h.CircuitClosed(err)
	}
}

// markClosed records err as the reason the circuit closed, fails a
// pending handshake and returns the endpoint and the streams that were
// attached; ok is false if the circuit was already closed.
func (c *Circuit) markClosed(err error) (ep *channel.Endpoint, streams map[uint16]attached, ok bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, nil, false
	}
	c.err = err
	ep = c.ep
	streams = c.streams
	c.streams = map[uint16]attached{}
	p := c.pending
	c.pending = nil
	close(c.done)
	c.cancel()
	c.mu.Unlock()
	if p != nil {
		p.result <- err
	}
	return ep, streams, true
}
