// The onion client's rendezvous circuits (rend-spec-v3 §3.2, §4): one per
// service and stream isolation key, shared by that key's streams while it
// is fresh, as C tor reuses a rendezvous circuit for the streams of one
// isolation class. A circuit takes no new stream once MaxDirtiness has
// passed since its first stream (C tor MaxCircuitDirtiness) or after
// Purge (NEWNYM, C tor hs_client_purge_state); it is closed when it has
// neither freshness nor streams. At most MaxRendCircuits are kept: the
// oldest is retired for a new one.

package onion

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

// rendKey identifies a rendezvous circuit: one per service and isolation
// key.
type rendKey struct {
	svc       [32]byte
	isolation string
}

// rendEntry is an established rendezvous circuit, or one being set up
// (done open); concurrent dials for the same key wait for it. The fields
// after err are guarded by Client.mu.
type rendEntry struct {
	done chan struct{}
	circ Circ
	err  error

	key      rendKey
	firstUse time.Time // zero until a stream was opened
	streams  int       // open streams
	retired  bool      // takes no new stream
	timer    *time.Timer
}

// DialIsolated is Dial with a stream isolation key: streams with
// different keys never share a rendezvous circuit; streams with the same
// key share one while it is fresh.
func (c *Client) DialIsolated(ctx context.Context, host string, port uint16, isolation string) (net.Conn, error) {
	addr, err := ParseAddress(host)
	if err != nil {
		return nil, err
	}
	key := rendKey{addr.PubKey, isolation}
	for tries := 0; ; tries++ {
		e, owner := c.rendFor(key)
		if owner {
			e.circ, e.err = c.connect(ctx, host, addr)
			if e.err != nil {
				c.mu.Lock()
				c.dropLocked(e)
				c.mu.Unlock()
			}
			close(e.done)
		} else {
			select {
			case <-e.done:
			case <-ctx.Done():
				return nil, &Error{Kind: KindRendFailed, Addr: host, Err: ctx.Err()}
			}
		}
		if e.err != nil {
			if owner || tries > 0 {
				return nil, e.err
			}
			continue // the other dial failed; try once on our own
		}
		if !alive(e.circ) {
			c.retire(e)
			if tries >= 2 {
				return nil, &Error{Kind: KindRendFailed, Addr: host, Err: errors.New("rendezvous circuit closed")}
			}
			continue
		}
		if !c.claim(e) {
			continue // went stale meanwhile: another circuit
		}
		conn, err := e.circ.OpenStream(ctx, port)
		if err == nil {
			return &rendStream{Conn: conn, c: c, e: e}, nil
		}
		c.release(e)
		if alive(e.circ) || owner || tries > 0 {
			// The service refused the stream (END): a stream-level
			// failure, not an onion error; the circuit stays usable.
			if !alive(e.circ) {
				c.retire(e)
			}
			return nil, err
		}
		c.retire(e) // stale circuit: rebuild once
	}
}

// rendFor returns the entry for key, creating it (owner true: the caller
// builds the circuit) when there is none or the one there is stale.
func (c *Client) rendFor(key rendKey) (e *rendEntry, owner bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.rend[key]; e != nil && !c.staleLocked(e) {
		return e, false
	} else if e != nil {
		c.retireLocked(e)
	}
	for len(c.rend) >= c.cfg.MaxRendCircuits {
		c.retireLocked(c.oldestLocked())
	}
	e = &rendEntry{done: make(chan struct{}), key: key}
	c.rend[key] = e
	return e, true
}

func (c *Client) staleLocked(e *rendEntry) bool {
	return e.retired || (!e.firstUse.IsZero() && c.cfg.Now().Sub(e.firstUse) >= c.cfg.MaxDirtiness)
}

// oldestLocked is the entry first used longest ago (one still being set
// up counts as newest).
func (c *Client) oldestLocked() *rendEntry {
	var old *rendEntry
	for _, e := range c.rend {
		if old == nil || (!e.firstUse.IsZero() && (old.firstUse.IsZero() || e.firstUse.Before(old.firstUse))) {
			old = e
		}
	}
	return old
}

// claim counts a stream on e unless e went stale; the first stream starts
// its dirtiness clock.
func (c *Client) claim(e *rendEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staleLocked(e) {
		c.retireLocked(e)
		return false
	}
	if e.firstUse.IsZero() {
		e.firstUse = c.cfg.Now()
		e.timer = time.AfterFunc(c.cfg.MaxDirtiness, func() { c.retire(e) })
	}
	e.streams++
	return true
}

func (c *Client) release(e *rendEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.streams--
	if e.retired && e.streams == 0 {
		c.closeLocked(e)
	}
}

func (c *Client) retire(e *rendEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retireLocked(e)
}

// retireLocked stops e from taking new streams; it closes at once when it
// has none.
func (c *Client) retireLocked(e *rendEntry) {
	if c.rend[e.key] == e {
		delete(c.rend, e.key)
	}
	e.retired = true
	if e.streams == 0 {
		c.closeLocked(e)
	}
}

// dropLocked forgets an entry whose circuit was never built.
func (c *Client) dropLocked(e *rendEntry) {
	if c.rend[e.key] == e {
		delete(c.rend, e.key)
	}
	e.retired = true
}

func (c *Client) closeLocked(e *rendEntry) {
	if e.timer != nil {
		e.timer.Stop()
	}
	select {
	case <-e.done:
		if e.circ != nil {
			e.circ.Close()
		}
	default: // still being built: its owner sees retired and drops it
	}
}

// RendCircuits is the number of rendezvous circuits that take new
// streams.
func (c *Client) RendCircuits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rend)
}

// Purge is NEWNYM for onion services (C tor hs_client_purge_state): the
// descriptor cache is emptied and no rendezvous circuit takes new
// streams; open streams go on until they close.
func (c *Client) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.cache)
	for _, e := range c.rend {
		c.retireLocked(e)
	}
}

// Close closes the rendezvous circuits.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.rend {
		e.streams = 0
		c.retireLocked(e)
	}
	return nil
}

func alive(c Circ) bool {
	select {
	case <-c.Done():
		return false
	default:
		return true
	}
}

// rendStream is a stream on a rendezvous circuit: closing it releases
// the circuit's claim.
type rendStream struct {
	net.Conn
	c    *Client
	e    *rendEntry
	done bool // guarded by c.mu via release
}

func (s *rendStream) Close() error {
	err := s.Conn.Close()
	s.c.mu.Lock()
	first := !s.done
	s.done = true
	s.c.mu.Unlock()
	if first {
		s.c.release(s.e)
	}
	return err
}

// WriteTo and CloseWrite pass through to the stream, so io.Copy and the
// SOCKS splice keep their fast paths.
func (s *rendStream) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := s.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{s.Conn})
}

func (s *rendStream) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.Close()
}
