package socks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Server fields.
const (
	DefaultHandshakeTimeout = 30 * time.Second
	// DefaultConnectTimeout is C tor's SocksTimeout default.
	DefaultConnectTimeout = 2 * time.Minute
	DefaultMaxConns       = 8192
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("socks: server closed")

// Server accepts SOCKS (Serve) and HTTP CONNECT (ServeHTTPTunnel)
// connections and passes their requests to Handler. One Server may serve
// several listeners; the fields must not change once serving starts.
type Server struct {
	Handler Handler
	// HandshakeTimeout bounds the time from accept to a complete request
	// (default DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds a Handler call (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// MaxConns bounds open client connections; connections beyond it are
	// closed at once. 0 means DefaultMaxConns, negative means no limit.
	MaxConns int
	// Logger receives warnings and debug messages; nil discards them.
	Logger *slog.Logger
	// SafeSocks refuses SOCKS4 and SOCKS5 requests that give an IP
	// address instead of a hostname (C tor's SafeSocks).
	SafeSocks bool
	// PreferSOCKSNoAuth picks "no authentication" over username/password
	// when a SOCKS5 client offers both (C tor's PreferSOCKSNoAuth flag).
	PreferSOCKSNoAuth bool
	// ExtendedErrors sends proposal 304 reply codes (0xF0-0xF7).
	ExtendedErrors bool
	// Local traffic policy of the port, C tor's SocksPort flags
	// NoIPv4Traffic, NoIPv6Traffic, NoDNSRequest and NoOnionTraffic
	// (OnionTrafficOnly sets the first three). A request the port does
	// not allow is refused with ReplyNotAllowed, as C tor refuses it with
	// END_STREAM_REASON_ENTRYPOLICY. What the exit is told (BEGIN flags,
	// PreferIPv6) is the stream layer's business. The zero values allow
	// everything.
	NoIPv4Traffic, NoIPv6Traffic, NoDNSRequest, NoOnionTraffic bool

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc
	lastWarn  atomic.Int64 // unix nanoseconds of the last unsafe-SOCKS warning
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) init() {
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
	}
}

// Serve accepts SOCKS connections on ln until ln fails or Close is
// called; it then returns ErrServerClosed or the accept error.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, s.handleSOCKS) }

// ServeHTTPTunnel accepts HTTP CONNECT connections on ln (C tor's
// HTTPTunnelPort).
func (s *Server) ServeHTTPTunnel(ln net.Listener) error { return s.serve(ln, s.handleHTTP) }

func (s *Server) serve(ln net.Listener, handle func(net.Conn)) error {
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	limit := s.MaxConns
	if limit == 0 {
		limit = DefaultMaxConns
	}
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.logger().Warn("socks: accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		if limit > 0 && len(s.conns) >= limit {
			s.mu.Unlock()
			s.logger().Warn("socks: too many connections; closing new one", "limit", limit, "client", c.RemoteAddr().String())
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				if p := recover(); p != nil {
					s.logger().Error("socks: panic serving connection", "panic", p, "stack", string(debug.Stack()))
				}
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			handle(c)
		}()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Close stops all listeners, closes every client connection, cancels
// handler contexts and waits for connection goroutines to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// NumConns reports the number of open client connections.
func (s *Server) NumConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// limitedReader bounds the bytes read during the handshake; n < 0 lifts
// the bound.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errors.New("handshake too long")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func (s *Server) handshakeDeadline() time.Time {
	d := s.HandshakeTimeout
	if d <= 0 {
		d = DefaultHandshakeTimeout
	}
	return time.Now().Add(d)
}

func (s *Server) handlerContext() (context.Context, context.CancelFunc) {
	d := s.ConnectTimeout
	if d <= 0 {
		d = DefaultConnectTimeout
	}
	return context.WithTimeout(s.ctx, d)
}

func (s *Server) fillAddrs(c net.Conn, req *Request) {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		req.ClientAddr = ta.AddrPort()
	} else if c.RemoteAddr() != nil {
		req.ClientAddr, _ = netip.ParseAddrPort(c.RemoteAddr().String())
	}
	req.Listener = c.LocalAddr()
}

// warnUnsafe logs, at most once per 5 seconds as C tor does, that an
// application passed an IP address and may have resolved the name
// itself, leaking it to its DNS server.
func (s *Server) warnUnsafe(proto Protocol, host string, port uint16, rejected bool) {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last < int64(5*time.Second) || !s.lastWarn.CompareAndSwap(last, now) {
		return
	}
	msg := "socks: application gave an IP address; it may have resolved the hostname itself and leaked it to its DNS server (use socks4a or socks5 with hostnames)"
	if rejected {
		msg += "; rejecting because SafeSocks is set"
	}
	s.logger().Warn(msg, "protocol", proto.String(), "port", port)
}

const httpOnSOCKSPage = "HTTP/1.0 501 Tor is not an HTTP Proxy\r\n" +
	"Content-Type: text/html; charset=iso-8859-1\r\n\r\n" +
	"<html><head><title>This is a SOCKS Proxy, Not An HTTP Proxy</title></head>\n" +
	"<body><h1>This is a SOCKS proxy, not an HTTP proxy.</h1>\n" +
	"<p>It appears you have configured your web browser to use this Tor port as an HTTP proxy. " +
	"Configure your application to use it as a SOCKS proxy, or use an HTTPTunnelPort.</p></body></html>\n"

func (s *Server) handleSOCKS(c net.Conn) {
	log := s.logger()
	c.SetDeadline(s.handshakeDeadline())
	lr := &limitedReader{r: c, n: maxSOCKSHandshake}
	br := bufio.NewReaderSize(lr, 1024)
	opts := handshakeOpts{safeSocks: s.SafeSocks, preferNoAuth: s.PreferSOCKSNoAuth, warnUnsafe: s.warnUnsafe}
	req, err := readHandshake(br, c, &opts)
	if err != nil {
		if errors.Is(err, errHTTPOnSOCKS) {
			log.Warn("socks: application sent HTTP to a SOCKS port", "client", c.RemoteAddr().String())
			io.WriteString(c, httpOnSOCKSPage)
			return
		}
		pe, _ := err.(*protoError)
		log.Debug("socks: bad handshake", "client", c.RemoteAddr().String(), "err", err)
		if pe != nil && !pe.noReply {
			if pe.version == 4 {
				c.Write(socks4Reply(pe.reply, netip.Addr{}))
			} else {
				c.Write(socks5Reply(s.wireCode(pe.reply), netip.Addr{}, ""))
			}
		}
		return
	}
	lr.n = -1
	c.SetDeadline(time.Time{})
	s.fillAddrs(c, req)

	reply := func(code byte, addr netip.Addr, name string) error {
		var b []byte
		if req.Version == 4 {
			b = socks4Reply(code, addr)
		} else {
			b = socks5Reply(code, addr, name)
		}
		_, err := c.Write(b)
		return err
	}
	if err := s.checkPolicy(req); err != nil {
		reply(s.replyCode(err), netip.Addr{}, "")
		return
	}
	ctx, cancel := s.handlerContext()
	defer cancel()
	switch req.Command {
	case CmdConnect:
		target, err := s.Handler.HandleConnect(ctx, req)
		cancel()
		if err != nil {
			log.Debug("socks: connect failed", "err", err)
			reply(s.replyCode(err), netip.Addr{}, "")
			return
		}
		if err := reply(ReplySucceeded, netip.Addr{}, ""); err != nil {
			target.Close()
			return
		}
		stop := context.AfterFunc(s.ctx, func() { target.Close() })
		splice(c, br, target)
		stop()
	case CmdResolve, CmdResolvePTR:
		ans, err := s.Handler.HandleResolve(ctx, req)
		if err != nil {
			log.Debug("socks: resolve failed", "err", err)
			reply(s.replyCode(err), netip.Addr{}, "")
			return
		}
		if req.Command == CmdResolvePTR {
			if ans.Name == "" {
				reply(ReplyHostUnreachable, netip.Addr{}, "")
				return
			}
			reply(ReplySucceeded, netip.Addr{}, ans.Name)
			return
		}
		addr, ok := pickAnswer(ans.Addrs, req.Version == 4)
		if !ok {
			reply(ReplyHostUnreachable, netip.Addr{}, "")
			return
		}
		reply(ReplySucceeded, addr, "")
	}
}

// checkPolicy applies the port's traffic policy to req (C tor's checks
// in connection_ap_handshake_rewrite_and_attach and
// connection_ap_handle_onion).
func (s *Server) checkPolicy(req *Request) error {
	deny := func(why string) error {
		s.logger().Warn("socks: refusing request: "+why, "protocol", req.Protocol.String(), "port", req.Port)
		return &ReplyError{Code: ReplyNotAllowed, Err: errors.New(why)}
	}
	host := strings.ToLower(strings.TrimSuffix(req.Host, "."))
	if strings.HasSuffix(host, ".onion") {
		if s.NoOnionTraffic {
			return deny("onion address requested on a port with NoOnionTraffic")
		}
		return nil
	}
	if s.NoDNSRequest && s.NoIPv4Traffic && s.NoIPv6Traffic {
		return deny("non-onion destination on a port with OnionTrafficOnly")
	}
	a, err := netip.ParseAddr(req.Host)
	if err != nil || req.Command == CmdResolvePTR {
		// A name the exit must resolve, or a reverse lookup.
		if s.NoDNSRequest {
			return deny("DNS request or hostname on a port with NoDNSRequest")
		}
		return nil
	}
	if a.Unmap().Is4() && s.NoIPv4Traffic {
		return deny("IPv4 address on a port with NoIPv4Traffic")
	}
	if !a.Unmap().Is4() && s.NoIPv6Traffic {
		return deny("IPv6 address on a port with NoIPv6Traffic")
	}
	return nil
}

// pickAnswer returns the first address a reply can carry: SOCKS4 replies
// have room for IPv4 only.
func pickAnswer(addrs []netip.Addr, v4only bool) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.Is4() || a.Is4In6() {
			return a.Unmap(), true
		}
		if a.Is6() && !v4only {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (s *Server) replyCode(err error) byte { return ReplyCode(err, s.ExtendedErrors) }

func (s *Server) wireCode(code byte) byte {
	if code > ReplyAddrNotSupported && !s.ExtendedErrors {
		return ReplyGeneralFailure
	}
	return code
}

// closeWriter is implemented by *net.TCPConn, *net.UnixConn and streams
// that support half-close.
type closeWriter interface{ CloseWrite() error }

// splice copies client→target (starting with bytes already buffered in
// clientR) and target→client until both directions end. When one side
// reaches EOF the other side's write half is closed if it supports
// CloseWrite; a side that does not (a Tor stream, which cannot be
// half-closed) is closed completely. An error in either direction closes
// both.
func splice(client net.Conn, clientR io.Reader, target net.Conn) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			target.Close()
		})
	}
	defer closeBoth()
	half := func(dst net.Conn) {
		if cw, ok := dst.(closeWriter); ok {
			if cw.CloseWrite() == nil {
				return
			}
		}
		closeBoth()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.Copy(target, clientR); err != nil {
			closeBoth()
			return
		}
		half(target)
	}()
	if _, err := io.Copy(client, target); err != nil {
		closeBoth()
	} else {
		half(client)
	}
	<-done
}

// String describes a request for logs without credentials.
func (r *Request) String() string {
	return fmt.Sprintf("%v %v %s (%v)", r.Protocol, r.Command, r.Addr(), r.ClientAddr)
}
