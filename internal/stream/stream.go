// Package stream implements client streams over circuits; each stream is
// a net.Conn.
//
// tor-spec §6.2 "Opening streams and transferring data" (RELAY_BEGIN,
// RELAY_CONNECTED, RELAY_DATA, RELAY_BEGIN_DIR), §6.3 "Closing streams"
// (RELAY_END and its reasons), §6.4 "Remote hostname lookup"
// (RELAY_RESOLVE/RESOLVED), §7.4 stream-level flow control (window 500,
// SENDME every 50 cells), or on circuits with congestion control prop 324
// §4 XON/XOFF instead (xonxoff.go).
//
// Tor has no half-closed streams (tor-spec §6.3 describes RELAY_FIN as
// unimplemented), so CloseWrite only stops local writes; the exit learns
// that the stream is finished when Close sends RELAY_END.
//
// Received data is buffered per stream; the buffer is bounded by the
// stream window, because a SENDME is only sent for cells the application
// has read: at most 500 cells (about 249 KB) can be waiting. With
// congestion control it is bounded by XoffCells + MaxCellsAfterXoff.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
)

// Flow-control constants (tor-spec §7.4).
const (
	StreamWindowStart     = 500
	StreamWindowIncrement = 50
)

// Flags are RELAY_BEGIN flags (tor-spec §6.2).
type Flags uint32

// BEGIN flags.
const (
	FlagIPv6OK        = Flags(cell.BeginIPv6OK)
	FlagIPv4NotOK     = Flags(cell.BeginIPv4NotOK)
	FlagIPv6Preferred = Flags(cell.BeginIPv6Preferred)
)

// Reason is a RELAY_END reason (tor-spec §6.3).
type Reason = cell.EndReason

// END reasons, for mapping to SOCKS replies.
const (
	ReasonMisc           = cell.EndMisc
	ReasonResolveFailed  = cell.EndResolveFailed
	ReasonConnectRefused = cell.EndConnectRefused
	ReasonExitPolicy     = cell.EndExitPolicy
	ReasonDestroy        = cell.EndDestroy
	ReasonDone           = cell.EndDone
	ReasonTimeout        = cell.EndTimeout
	ReasonNoRoute        = cell.EndNoRoute
	ReasonHibernating    = cell.EndHibernating
	ReasonInternal       = cell.EndInternal
	ReasonResourceLimit  = cell.EndResourceLimit
	ReasonConnReset      = cell.EndConnReset
	ReasonTorProtocol    = cell.EndTorProtocol
	ReasonNotDirectory   = cell.EndNotDirectory
)

// EndError is returned when the exit ends a stream with RELAY_END (other
// than a clean DONE after data, which reads as io.EOF). Use errors.As.
type EndError struct {
	Reason Reason
	// For ReasonExitPolicy, the address the exit resolved, if given.
	Addr netip.Addr
	TTL  uint32
}

func (e *EndError) Error() string { return "stream: ended by exit: " + e.Reason.String() }

// ProtocolError reports a stream-level protocol violation by the exit.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "stream: protocol violation: " + e.Msg }

// Addr is the net.Addr of a stream endpoint.
type Addr struct {
	Host string
	Port uint16
}

// Network returns "tor".
func (a Addr) Network() string { return "tor" }

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// state is where a stream is in its life (tor-spec §6.2-§6.4).
//
//	stConnecting -> stOpen            CONNECTED
//	stOpen       -> stWriteClosed     CloseWrite
//	stResolving  -> stEnded           RESOLVED
//	any but stClosed -> stEnded       END sent or received, circuit gone
//	any          -> stClosed          Close
type state uint8

const (
	// stConnecting: BEGIN or BEGIN_DIR sent; waiting for CONNECTED or
	// END.
	stConnecting state = iota
	// stResolving: RESOLVE sent; waiting for RESOLVED or END.
	stResolving
	// stOpen: CONNECTED received; data flows both ways.
	stOpen
	// stWriteClosed: open, but CloseWrite was called: data is still
	// received. Tor has no half-close, so the exit is not told.
	stWriteClosed
	// stEnded: no more cells will be sent or accepted. Buffered data can
	// still be read; then reads return err.
	stEnded
	// stClosed: Close was called; everything fails with net.ErrClosed.
	stClosed
)

// receiving reports whether DATA from the exit is accepted.
func (st state) receiving() bool { return st == stOpen || st == stWriteClosed }

// over reports whether the stream is ended or closed.
func (st state) over() bool { return st >= stEnded }

// Conn is an open stream. It implements net.Conn.
type Conn struct {
	circ   *circuit.Circuit
	id     uint16
	remote Addr

	mu        sync.Mutex
	st        state
	connected *cell.Connected
	answers   []cell.ResolvedAnswer
	ready     chan struct{} // closed on leaving stConnecting or stResolving
	err       error         // terminal read error
	rbuf      recvBuf       // received data; rbuf.ncells counts partly read cells
	deliver   int           // stream deliver window
	pkg       int           // stream package window
	// With congestion control (prop 324 §4) stream windows are replaced
	// by XON/XOFF (xonxoff.go): cc is fixed when the stream is made.
	cc bool
	xx xonXoff

	readable   chan struct{} // cap 1
	windowOpen chan struct{} // cap 1
	closedCh   chan struct{}

	rdl, wdl deadline
}

func newConn(c *circuit.Circuit, remote Addr, st state) *Conn {
	return &Conn{
		circ: c, remote: remote, st: st, ready: make(chan struct{}),
		deliver: StreamWindowStart, pkg: StreamWindowStart,
		cc:       func() bool { cc, _ := c.CongestionControl(); return cc }(),
		readable: make(chan struct{}, 1), windowOpen: make(chan struct{}, 1),
		closedCh: make(chan struct{}),
		rdl:      makeDeadline(), wdl: makeDeadline(),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Begin opens a stream to host:port through the circuit's last hop with
// RELAY_BEGIN and waits for RELAY_CONNECTED. host may be a hostname, an
// IPv4/IPv6 literal, or "" on a rendezvous circuit (onion services
// ignore the address; ":port" is sent). A refusal is an *EndError.
func Begin(ctx context.Context, circ *circuit.Circuit, host string, port uint16, flags Flags) (*Conn, error) {
	body, err := (&cell.Begin{Host: host, Port: port, Flags: uint32(flags)}).Encode()
	if err != nil {
		return nil, err
	}
	return open(ctx, circ, cell.RELAY_BEGIN, body, Addr{Host: host, Port: port})
}

// BeginDir opens a directory stream to the circuit's last hop with
// RELAY_BEGIN_DIR; the returned conn speaks HTTP to that relay's
// directory server.
func BeginDir(ctx context.Context, circ *circuit.Circuit) (*Conn, error) {
	return open(ctx, circ, cell.RELAY_BEGIN_DIR, nil, Addr{Host: "directory"})
}

func open(ctx context.Context, circ *circuit.Circuit, cmd cell.RelayCommand, body []byte, remote Addr) (*Conn, error) {
	s := newConn(circ, remote, stConnecting)
	id, err := circ.AttachStream(s)
	if err != nil {
		return nil, err
	}
	s.mu.Lock() // HandleRelay reads id under mu on the circuit's goroutine
	s.id = id
	s.mu.Unlock()
	if err := circ.SendRelay(ctx, cell.RelayMsg{Command: cmd, StreamID: id, Data: body}); err != nil {
		circ.DetachStream(id)
		return nil, err
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		s.abort(cell.EndMisc, true)
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != stOpen {
		return nil, s.err
	}
	return s, nil
}

// abort ends the stream from our side, sending END with reason if end
// is set, and leaves it half-closed on its circuit.
func (s *Conn) abort(reason Reason, end bool) {
	s.mu.Lock()
	live := !s.st.over()
	f := s.inFlightLocked()
	s.endLocked(net.ErrClosed)
	s.mu.Unlock()
	s.leave(live, end, f, reason)
}

// inFlightLocked returns what the exit may still send once we end the
// stream now (C tor connection_half_edge_add).
func (s *Conn) inFlightLocked() circuit.InFlight {
	f := circuit.InFlight{Connected: s.st == stConnecting, CC: s.cc}
	if !s.cc {
		if s.st != stResolving {
			f.Data = s.deliver
		}
		f.Sendmes = (StreamWindowStart - s.pkg) / StreamWindowIncrement
	}
	return f
}

// leave detaches the stream from its circuit. If it was live (we end
// it, rather than the exit or the circuit), the circuit keeps it
// half-closed to accept the cells still in flight (tor-spec §6.3), and
// END with reason is sent if end is set.
func (s *Conn) leave(live, end bool, f circuit.InFlight, reason Reason) {
	if !live {
		s.circ.DetachStream(s.id)
		return
	}
	s.circ.EndStream(s.id, f)
	if end {
		s.circ.SendRelay(context.Background(), cell.RelayMsg{Command: cell.RELAY_END, StreamID: s.id, Data: (&cell.End{Reason: reason}).Encode()})
	}
}

// Connected returns the CONNECTED info (address and TTL; the address is
// invalid if the exit sent none, as for BEGIN_DIR).
func (s *Conn) Connected() cell.Connected {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected == nil {
		return cell.Connected{}
	}
	return *s.connected
}

// StreamID returns the stream ID on its circuit.
func (s *Conn) StreamID() uint16 { return s.id }

// Circuit returns the stream's circuit.
func (s *Conn) Circuit() *circuit.Circuit { return s.circ }

// HandleRelay implements circuit.StreamHandler. It never blocks. A
// protocol violation ends the stream and is returned so that the circuit
// closes.
func (s *Conn) HandleRelay(msg cell.RelayMsg) error {
	s.mu.Lock()
	id := s.id
	if s.st.over() {
		// Ended or closed on our side and not yet detached: the exit may
		// have sent these cells before it saw our END (the stream is
		// half-closed, tor-spec §6.3). Drop them, as C tor does, rather
		// than tear down the circuit and every other stream on it.
		s.mu.Unlock()
		return nil
	}
	var violation string
	switch msg.Command {
	case cell.RELAY_CONNECTED:
		if s.st != stConnecting {
			violation = "unexpected CONNECTED"
			break
		}
		c, err := cell.DecodeConnected(msg.Data)
		if err != nil {
			violation = err.Error()
			break
		}
		s.connected = c
		s.st = stOpen
		close(s.ready)
	case cell.RELAY_RESOLVED:
		if s.st != stResolving {
			violation = "unexpected RESOLVED"
			break
		}
		a, err := cell.DecodeResolved(msg.Data)
		if err != nil {
			violation = err.Error()
			break
		}
		s.answers = a
		s.st = stEnded
		s.err = io.EOF
		close(s.ready)
		s.mu.Unlock()
		s.circ.DetachStream(id)
		return nil
	case cell.RELAY_DATA:
		if !s.st.receiving() {
			violation = "DATA on a stream that is not open"
			break
		}
		if !s.cc {
			s.deliver--
			if s.deliver < 0 {
				violation = "stream deliver window exceeded"
				break
			}
		}
		if s.cc && s.rbuf.ncells >= XoffCells+MaxCellsAfterXoff {
			violation = "exit ignored XOFF: stream buffer full"
			break
		}
		if len(msg.Data) > 0 {
			s.rbuf.put(msg.Data) // a copy: the cell is recycled
			signal(s.readable)
		}
		if s.cc && !s.xx.xoffSent && s.rbuf.ncells >= XoffCells {
			s.xx.xoffSent = true
			s.xx.nXoff++
			s.mu.Unlock()
			// A send failure means the circuit is going away anyway.
			s.circ.SendRelay(context.Background(), cell.RelayMsg{Command: cell.RELAY_XOFF, StreamID: id, Data: cell.EncodeXoff()})
			return nil
		}
	case cell.RELAY_XOFF, cell.RELAY_XON:
		if !s.cc {
			violation = msg.Command.String() + " without congestion control"
			break
		}
		if msg.Command == cell.RELAY_XOFF {
			if cell.DecodeXoff(msg.Data) != nil {
				violation = "bad XOFF"
				break
			}
			violation = s.xx.onXoff()
			break
		}
		if _, err := cell.DecodeXon(msg.Data); err != nil {
			violation = err.Error()
			break
		}
		violation = s.xx.onXon()
		signal(s.windowOpen)
	case cell.RELAY_SENDME:
		if s.cc {
			violation = "stream SENDME on a congestion-controlled circuit"
			break
		}
		s.pkg += StreamWindowIncrement
		if s.pkg > StreamWindowStart {
			violation = "stream SENDME beyond window"
			break
		}
		signal(s.windowOpen)
	case cell.RELAY_END:
		e, _ := cell.DecodeEnd(msg.Data)
		var err error = &EndError{Reason: e.Reason, Addr: e.Addr, TTL: e.TTL}
		if s.st == stOpen && e.Reason == cell.EndDone {
			err = io.EOF
		}
		s.endLocked(err) // no END in reply to END
		s.mu.Unlock()
		s.circ.DetachStream(id)
		return nil
	default:
		// The circuit passes only the stream messages above.
	}
	if violation == "" {
		s.mu.Unlock()
		return nil
	}
	// The circuit closes (and DESTROYs) on a protocol violation, which
	// also ends this stream; no END is needed.
	err := &ProtocolError{violation}
	s.endLocked(err)
	s.mu.Unlock()
	s.circ.DetachStream(id)
	return err
}

// endLocked moves the stream to stEnded with err as its read error,
// waking every waiter. It does nothing if the stream is already over.
func (s *Conn) endLocked(err error) {
	if s.st.over() {
		return
	}
	wasConnecting := s.st == stConnecting || s.st == stResolving
	s.st = stEnded
	if s.err == nil {
		s.err = err
	}
	if wasConnecting {
		close(s.ready)
	}
	signal(s.readable)
	signal(s.windowOpen)
}

// CircuitClosed implements circuit.StreamHandler.
func (s *Conn) CircuitClosed(err error) {
	s.mu.Lock()
	s.endLocked(fmt.Errorf("stream: circuit closed: %w", err))
	s.mu.Unlock()
}

// Read reads stream data. After a clean END it returns io.EOF.
func (s *Conn) Read(p []byte) (int, error) {
	for {
		s.mu.Lock()
		if s.st == stClosed {
			s.mu.Unlock()
			return 0, net.ErrClosed
		}
		if s.rbuf.n > 0 {
			if len(p) == 0 {
				s.mu.Unlock()
				return 0, nil
			}
			n := s.rbuf.read(p)
			sendme, xon := s.ackLocked()
			s.mu.Unlock()
			s.sendAcks(sendme, xon)
			return n, nil
		}
		if s.st == stEnded {
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		s.mu.Unlock()
		select {
		case <-s.readable:
		case <-s.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		case <-s.closedCh:
			return 0, net.ErrClosed
		}
	}
}

// WriteTo implements io.WriterTo, so io.Copy(dst, stream) writes the
// received data straight from the stream's buffer: no copy buffer (io.Copy
// would otherwise allocate 32 KiB per stream, or dst's ReadFrom would)
// and one copy less per byte. It returns at the end of the stream (nil
// after a clean END) or on the first error. Do not call Read at the same
// time.
func (s *Conn) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		s.mu.Lock()
		if s.st == stClosed {
			s.mu.Unlock()
			return total, net.ErrClosed
		}
		if s.rbuf.n > 0 {
			// HandleRelay only appends after the buffered bytes (or moves
			// them to a larger ring), so x and y stay intact while
			// written without the lock.
			x, y := s.rbuf.segments()
			s.mu.Unlock()
			n, err := w.Write(x)
			if err == nil && len(y) > 0 {
				var m int
				m, err = w.Write(y)
				n += m
			}
			s.mu.Lock()
			if s.st != stClosed {
				s.rbuf.consume(n)
			}
			sendme, xon := s.ackLocked()
			s.mu.Unlock()
			s.sendAcks(sendme, xon)
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		if s.st == stEnded {
			err := s.err
			s.mu.Unlock()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		s.mu.Unlock()
		select {
		case <-s.readable:
		case <-s.rdl.wait():
			return total, os.ErrDeadlineExceeded
		case <-s.closedCh:
			return total, net.ErrClosed
		}
	}
}

// sendAcks sends what ackLocked asked for.
func (s *Conn) sendAcks(sendme int, xon bool) {
	for range sendme {
		s.circ.SendRelay(context.Background(), cell.RelayMsg{Command: cell.RELAY_SENDME, StreamID: s.id})
	}
	if xon {
		s.circ.SendRelay(context.Background(), cell.RelayMsg{Command: cell.RELAY_XON, StreamID: s.id, Data: (&cell.Xon{}).Encode()})
	}
}

// ackLocked returns how many stream SENDMEs to send now (one per 50
// cells the application has consumed and not yet acknowledged) or, with
// congestion control, whether to send XON.
func (s *Conn) ackLocked() (int, bool) {
	if !s.st.receiving() {
		return 0, false
	}
	if s.cc {
		if s.xx.xoffSent && s.rbuf.ncells <= XonCells {
			s.xx.xoffSent = false
			s.xx.nXon++
			return 0, true
		}
		return 0, false
	}
	n := 0
	for StreamWindowStart-s.deliver-s.rbuf.ncells >= StreamWindowIncrement {
		s.deliver += StreamWindowIncrement
		n++
	}
	return n, false
}

// Write sends data in RELAY_DATA cells of at most 498 bytes, waiting for
// the stream and circuit package windows.
func (s *Conn) Write(p []byte) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	dl := s.wdl.wait()
	go func() {
		select {
		case <-dl:
			cancel()
		case <-s.closedCh:
			cancel()
		case <-stop:
		}
	}()
	n := 0
	for n < len(p) {
		s.mu.Lock()
		switch {
		case s.st == stClosed:
			s.mu.Unlock()
			return n, net.ErrClosed
		case s.st == stWriteClosed:
			s.mu.Unlock()
			return n, errors.New("stream: write after CloseWrite")
		case s.st == stEnded:
			err := s.err
			s.mu.Unlock()
			if err == io.EOF {
				err = &EndError{Reason: ReasonDone}
			}
			return n, err
		case (!s.cc && s.pkg <= 0) || (s.cc && s.xx.paused):
			s.mu.Unlock()
			select {
			case <-s.windowOpen:
				continue
			case <-ctx.Done():
				return n, s.writeCtxErr(dl)
			}
		}
		k := min(len(p)-n, cell.RelayDataMax)
		if !s.cc {
			s.pkg--
		} else {
			s.xx.bytesSent += int64(k) // before the exit can answer it
		}
		if s.pkg > 0 || s.cc {
			signal(s.windowOpen)
		}
		s.mu.Unlock()
		if err := s.circ.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.id, Data: p[n : n+k]}); err != nil {
			if ctx.Err() != nil {
				return n, s.writeCtxErr(dl)
			}
			return n, err
		}
		n += k
	}
	return n, nil
}

func (s *Conn) writeCtxErr(dl <-chan struct{}) error {
	select {
	case <-dl:
		return os.ErrDeadlineExceeded
	default:
		return net.ErrClosed
	}
}

// CloseWrite stops further writes. Tor has no half-close, so nothing is
// sent to the exit; reads continue until the exit ends the stream.
func (s *Conn) CloseWrite() error {
	s.mu.Lock()
	if s.st == stOpen {
		s.st = stWriteClosed
	}
	s.mu.Unlock()
	return nil
}

// Close ends the stream with RELAY_END (reason DONE) if still open.
func (s *Conn) Close() error {
	s.mu.Lock()
	if s.st == stClosed {
		s.mu.Unlock()
		return nil
	}
	live := !s.st.over()
	f := s.inFlightLocked()
	s.endLocked(net.ErrClosed)
	s.st = stClosed
	close(s.closedCh)
	s.rbuf.reset()
	s.mu.Unlock()
	s.leave(live, true, f, cell.EndDone)
	return nil
}

// LocalAddr returns a placeholder address.
func (s *Conn) LocalAddr() net.Addr { return Addr{Host: "client"} }

// RemoteAddr returns the requested destination.
func (s *Conn) RemoteAddr() net.Addr { return s.remote }

// ConnectedAddr is the address the exit's RELAY_CONNECTED named, or the
// zero Addr if it named none (tor-spec §6.2).
func (s *Conn) ConnectedAddr() netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected == nil {
		return netip.Addr{}
	}
	return s.connected.Addr
}

// SetDeadline sets read and write deadlines.
func (s *Conn) SetDeadline(t time.Time) error {
	s.rdl.set(t)
	s.wdl.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (s *Conn) SetReadDeadline(t time.Time) error { s.rdl.set(t); return nil }

// SetWriteDeadline sets the write deadline.
func (s *Conn) SetWriteDeadline(t time.Time) error { s.wdl.set(t); return nil }

// deadline is a settable deadline whose wait channel closes when it passes.
type deadline struct {
	mu    *sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func makeDeadline() deadline { return deadline{mu: new(sync.Mutex), ch: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // timer fired and closed ch: wait is harmless since closed
	}
	d.timer = nil
	closed := false
	select {
	case <-d.ch:
		closed = true
	default:
	}
	if t.IsZero() {
		if closed {
			d.ch = make(chan struct{})
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !closed {
			close(d.ch)
		}
		return
	}
	if closed {
		d.ch = make(chan struct{})
	}
	ch := d.ch
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}
