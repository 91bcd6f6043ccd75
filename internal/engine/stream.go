package engine

// Carrying application streams: tor-spec §6.2 (RELAY_BEGIN), path-spec
// §2.2 (attaching streams to circuits, retrying on another circuit),
// socks-extensions (RESOLVE, hostnames resolved at the exit, never
// locally).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotor/gotor/internal/circmgr"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/errkind"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/socks"
	"github.com/gotor/gotor/internal/stream"
)

// StreamInfo describes one open stream, for monitoring and tests.
type StreamInfo struct {
	ID        uint64
	CircuitID uint64
	// Target is "host:port" as the application asked for it.
	Target string
	// Source is the application's address for SOCKS and HTTP streams.
	Source string
	// IsolationTag is 8 hex characters naming the stream's isolation key.
	IsolationTag string
	Opened       time.Time
}

// CircuitInfo describes one circuit of the pool.
type CircuitInfo struct {
	ID      uint64
	State   string // LAUNCHED, CLEAN, IN_USE, UNUSABLE
	Purpose string
	Streams []uint64
	// Path lists the relays' fingerprints (upper-case hex) and nicknames.
	Path []Hop
	// CongestionControl is true when the exit accepted congestion control
	// (prop 324: TOR_VEGAS, XON/XOFF); false means fixed windows.
	CongestionControl bool
}

// Hop is one relay of a circuit: its RSA identity fingerprint (upper-case
// hex), nickname and ORPort address.
type Hop struct{ Fingerprint, Nickname, Addr string }

type streamTable struct {
	mu    sync.Mutex
	m     map[uint64]StreamInfo
	conns map[uint64]*trackedConn // for CLOSESTREAM
}

func (t *streamTable) add(s StreamInfo, tc *trackedConn) {
	t.mu.Lock()
	if t.m == nil {
		t.m, t.conns = map[uint64]StreamInfo{}, map[uint64]*trackedConn{}
	}
	t.m[s.ID] = s
	t.conns[s.ID] = tc
	t.mu.Unlock()
}

func (t *streamTable) remove(id uint64) {
	t.mu.Lock()
	delete(t.m, id)
	delete(t.conns, id)
	t.mu.Unlock()
}

// conn returns the open stream with this ID.
func (t *streamTable) conn(id uint64) (*trackedConn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tc, ok := t.conns[id]
	return tc, ok
}

// Streams lists the open streams and the circuit each is on.
func (c *Engine) Streams() []StreamInfo {
	c.streams.mu.Lock()
	defer c.streams.mu.Unlock()
	out := make([]StreamInfo, 0, len(c.streams.m))
	for _, s := range c.streams.m {
		out = append(out, s)
	}
	return out
}

// streamRequest is everything needed to open one stream.
type streamRequest struct {
	host  string
	port  uint16
	info  isolation.StreamInfo
	flags isolation.Flags
	begin stream.Flags
}

// maxStreamAttempts bounds how many circuits one stream request tries
// (C tor retries a stream on a new circuit after a timeout or an exit
// policy refusal).
const maxStreamAttempts = 3

// streamAttemptTimeout is how long one circuit may take to answer a
// RELAY_BEGIN before the stream is retried elsewhere (C tor: 10-15 s).
const streamAttemptTimeout = 15 * time.Second

var errNotStarted = errkind.New(errkind.NotRunning, errors.New("not started"))

// openStream attaches a stream to a circuit compatible with its isolation
// key and sends RELAY_BEGIN.
func (c *Engine) openStream(ctx context.Context, r streamRequest) (net.Conn, error) {
	if c.circs == nil {
		return nil, errNotStarted
	}
	r = c.remap(r) // MAPADDRESS (addressmap.go)
	if c.conf().ClientRejectInternalAddresses && internalTarget(r.host) {
		return nil, errkind.New(errkind.InternalAddress, errors.New("refusing internal address (ClientRejectInternalAddresses)"))
	}
	key := c.circs.KeyFor(r.info, r.flags)
	if onion.IsOnion(strings.TrimSuffix(r.host, ".")) {
		return c.dialOnion(ctx, r, key)
	}
	var last error
	for attempt := 0; attempt < maxStreamAttempts; attempt++ {
		att, err := c.attach(ctx, circmgr.Usage{Port: r.port}, key)
		if err != nil {
			return nil, errkind.New(errkind.NoCircuit, err)
		}
		actx, cancel := context.WithTimeout(ctx, streamAttemptTimeout)
		att.Circuit.guard.UseAttempted()
		s, err := stream.Begin(actx, att.Circuit.Circuit, r.host, r.port, r.begin)
		cancel()
		noteStreamOutcome(att.Circuit.guard, err)
		info := StreamInfo{
			ID: att.StreamID, CircuitID: att.CircID,
			Target: net.JoinHostPort(r.host, strconv.Itoa(int(r.port))),
			Source: sourceString(r.info.ClientAddr), IsolationTag: key.Tag(), Opened: time.Now(),
		}
		if att.Reused {
			c.obs.metrics.IsolationHit()
		} else {
			c.obs.metrics.IsolationMiss()
		}
		if err == nil && c.conf().ClientDNSRejectInternalAddresses {
			// An exit saying the name resolved to an internal address
			// is not believed (C tor closes such a stream).
			if a := s.ConnectedAddr(); a.IsValid() && isInternal(a) {
				s.Close()
				err = errkind.New(errkind.InternalAddress, fmt.Errorf("the exit connected to internal address %v (ClientDNSRejectInternalAddresses)", a))
			}
		}
		if err == nil {
			tc := &trackedConn{Conn: s, c: c, att: att, id: att.StreamID, info: info}
			c.streams.add(info, tc)
			c.obs.metrics.StreamOpened()
			c.streamStatus(info, control.StreamSucceeded, "")
			return tc, nil
		}
		c.obs.metrics.StreamFailed(failReason(err))
		c.streamStatus(info, control.StreamFailed, failReason(err))
		att.Release()
		last = err
		if ctx.Err() != nil {
			return nil, mapStreamError(ctx.Err())
		}
		if !retryable(err) {
			break
		}
		c.log.Debug("stream attempt failed; retrying on another circuit", "attempt", attempt+1, "err", err)
		// The circuit that failed this stream takes no new streams (C tor's
		// mark_circuit_unusable_for_new_conns); streams on it go on.
		c.circs.Retire(att.CircID, failReason(err))
	}
	return nil, mapStreamError(last)
}

func sourceString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// attach gets a circuit for a stream. When the circuit manager gives up
// (its builds failed, e.g. through a relay that died but is still listed
// as Running), the stream keeps waiting and asks again, as C tor keeps a
// stream pending until SocksTimeout; ctx carries that deadline.
func (c *Engine) attach(ctx context.Context, u circmgr.Usage, key isolation.Key) (*circmgr.Attachment[*exitCircuit], error) {
	backoff := 500 * time.Millisecond
	for {
		att, err := c.circs.Attach(ctx, u, key)
		if err == nil || errors.Is(err, circmgr.ErrClosed) || ctx.Err() != nil {
			return att, err
		}
		c.log.Debug("no circuit for a stream yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		if backoff < 4*time.Second {
			backoff *= 2
		}
	}
}

// retryable reports whether a failed BEGIN is worth another circuit, as
// C tor retries after timeouts, exit-policy refusals and dead circuits.
func retryable(err error) bool {
	var end *stream.EndError
	if errors.As(err, &end) {
		switch end.Reason {
		case stream.ReasonExitPolicy, stream.ReasonResourceLimit, stream.ReasonTimeout,
			stream.ReasonDestroy, stream.ReasonHibernating, stream.ReasonInternal:
			return true
		}
		return false
	}
	var destroyed *circuit.DestroyedError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, circuit.ErrClosed) || errors.As(err, &destroyed)
}

// mapStreamError classifies a stream failure (its SOCKS reply is C
// tor's for the RELAY_END reason, if any).
func mapStreamError(err error) error { return errkind.Wrap(err) }

// internalTarget reports whether a stream target is a private address or
// a name for the local host or network (C tor tor_addr_hostname_is_local:
// "localhost", "*.localhost", "*.local").
func internalTarget(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return isInternal(ip)
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local")
}

func isInternal(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast()
}

// trackedConn is a stream handed to an application: it counts bytes and
// releases its circuit attachment on Close.
type trackedConn struct {
	*stream.Conn
	c      *Engine
	att    *circmgr.Attachment[*exitCircuit]
	id     uint64
	info   StreamInfo
	closed atomic.Bool
}

func (t *trackedConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.c.bytesIn.Add(uint64(n))
	t.c.obs.metrics.AddTraffic(uint64(n), 0)
	return n, err
}

// WriteTo lets io.Copy(dst, conn) use the stream's own WriteTo (no copy
// buffer per stream) while still counting the bytes, which the promoted
// stream.Conn.WriteTo would not.
func (t *trackedConn) WriteTo(w io.Writer) (int64, error) {
	return t.Conn.WriteTo(countingWriter{w, t})
}

// countingWriter counts the bytes a stream delivers through WriteTo as
// trackedConn.Read does.
type countingWriter struct {
	w io.Writer
	t *trackedConn
}

func (cw countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.t.c.bytesIn.Add(uint64(n))
	cw.t.c.obs.metrics.AddTraffic(uint64(n), 0)
	return n, err
}

func (t *trackedConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.c.bytesOut.Add(uint64(n))
	t.c.obs.metrics.AddTraffic(0, uint64(n))
	return n, err
}

func (t *trackedConn) Close() error {
	err := t.Conn.Close()
	if t.closed.CompareAndSwap(false, true) {
		t.att.Release()
		t.c.streams.remove(t.id)
		t.c.obs.metrics.StreamClosed()
		t.c.streamStatus(t.info, control.StreamClosed, "DONE")
	}
	return err
}

// resolve answers a SOCKS RESOLVE or RESOLVE_PTR at an exit.
func (c *Engine) resolve(ctx context.Context, r streamRequest, ptr bool) (socks.ResolveAnswer, error) {
	if c.circs == nil {
		return socks.ResolveAnswer{}, errNotStarted
	}
	if !ptr {
		r = c.remap(r) // MAPADDRESS (addressmap.go)
	}
	// An exit must never see an onion address (C tor: "Resolve requests
	// to hidden services not allowed").
	if !ptr && onion.IsOnion(r.host) {
		return socks.ResolveAnswer{}, errkind.New(errkind.BadRequest, errors.New("resolve requests for .onion names are not allowed"))
	}
	key := c.circs.KeyFor(r.info, r.flags)
	att, err := c.attach(ctx, circmgr.Usage{}, key)
	if err != nil {
		return socks.ResolveAnswer{}, errkind.New(errkind.NoCircuit, err)
	}
	defer att.Release()
	if ptr {
		ip, err := netip.ParseAddr(r.host)
		if err != nil {
			return socks.ResolveAnswer{}, errkind.New(errkind.BadRequest, err)
		}
		att.Circuit.guard.UseAttempted()
		names, err := stream.ResolvePTR(ctx, att.Circuit.Circuit, ip)
		noteStreamOutcome(att.Circuit.guard, err)
		if err != nil {
			return socks.ResolveAnswer{}, errkind.New(errkind.ResolveFailed, err)
		}
		if len(names) == 0 {
			return socks.ResolveAnswer{}, errkind.New(errkind.ResolveFailed, errors.New("no name"))
		}
		return socks.ResolveAnswer{Name: names[0]}, nil
	}
	att.Circuit.guard.UseAttempted()
	addrs, err := stream.Resolve(ctx, att.Circuit.Circuit, r.host)
	noteStreamOutcome(att.Circuit.guard, err)
	if err != nil {
		return socks.ResolveAnswer{}, errkind.New(errkind.ResolveFailed, err)
	}
	if c.conf().ClientDNSRejectInternalAddresses {
		// Internal addresses in an exit's answer are not believed.
		addrs = slices.DeleteFunc(addrs, isInternal)
		if len(addrs) == 0 {
			return socks.ResolveAnswer{}, errkind.New(errkind.ResolveFailed, errors.New("the exit's answer held only internal addresses (ClientDNSRejectInternalAddresses)"))
		}
	}
	return socks.ResolveAnswer{Addrs: addrs}, nil
}

// StreamOf returns the description of a stream that DialContext returned
// (which circuit carries it, its isolation tag).
func (c *Engine) StreamOf(conn net.Conn) (StreamInfo, bool) {
	tc, ok := conn.(*trackedConn)
	if !ok || tc.c != c {
		return StreamInfo{}, false
	}
	c.streams.mu.Lock()
	defer c.streams.mu.Unlock()
	s, ok := c.streams.m[tc.id]
	return s, ok
}

// failReason names a failed stream's reason as control-spec's STREAM
// event does (END reasons by name, else TIMEOUT or MISC).
func failReason(err error) string {
	var end *stream.EndError
	if errors.As(err, &end) {
		return end.Reason.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "TIMEOUT"
	}
	return "MISC"
}
