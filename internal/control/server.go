// Control server: listeners (ControlPort on loopback TCP, ControlSocket),
// per-connection state machine (control-spec §3.5: only PROTOCOLINFO,
// AUTHCHALLENGE, AUTHENTICATE and QUIT before authentication), event
// subscriptions (§3.4) and asynchronous delivery (§4.1) through a bounded
// per-connection queue, so that a slow controller never blocks the client.
package control

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server. The field names follow the torrc options.
// Reconfigure changes the listeners, the port file and authentication of
// a running server; the other fields are fixed by New.
type Config struct {
	// Listeners are the ControlPort listeners (TCP, or Unix sockets for
	// ControlSocket / "ControlPort unix:PATH"). Non-loopback TCP
	// addresses are refused unless AllowNonLoopback is set.
	Listeners        []ListenerConfig
	AllowNonLoopback bool

	// PortWriteToFile (torrc ControlPortWriteToFile), if set, receives
	// "PORT=127.0.0.1:9051" / "UNIX_PORT=/path" lines whenever the
	// listeners change, so that a port 0 ("auto") can be discovered.
	PortWriteToFile       string
	PortFileGroupReadable bool

	// CookieAuthentication enables COOKIE and SAFECOOKIE. The cookie is
	// written to CookieAuthFile, by default
	// DataDirectory/control_auth_cookie.
	CookieAuthentication bool
	CookieAuthFile       string
	DataDirectory        string
	// CookieAuthFileGroupReadable makes the cookie file mode 0640.
	CookieAuthFileGroupReadable bool
	// HashedControlPassword values, "16:..." as printed by
	// `tor --hash-password`.
	HashedControlPassword []string
	// AllowNullAuth must be set to run without cookie or password
	// (PROTOCOLINFO then announces METHODS=NULL).
	AllowNullAuth bool

	// MaxCommandLength bounds one command (including CmdData) once
	// authenticated; default 1 MiB like C tor. Before authentication the
	// bound is 4 KiB.
	MaxCommandLength int
	// EventQueueLen is the number of events buffered per connection before
	// events are dropped; default 4096.
	EventQueueLen int
	// WriteTimeout bounds a single write to a controller; a controller that
	// does not read for that long is disconnected. Default 60s.
	WriteTimeout time.Duration
	// BWInterval is the BW event period; default 1s.
	BWInterval time.Duration
	// Logger receives the server's own log messages; default discards.
	Logger *slog.Logger
}

const preAuthMaxCommand = 4096

// Server is a control-port server.
type Server struct {
	cfg  Config
	b    Backend
	log  *slog.Logger
	auth atomic.Pointer[authState]

	initOnce sync.Once
	initErr  error

	// reconf serialises Start and Reconfigure.
	reconf sync.Mutex

	started time.Time // for GETINFO uptime

	mu        sync.Mutex
	bw        bwCache // the last BW events, for GETINFO bw-event-cache
	closed    bool
	listeners []*listener
	conns     map[*conn]struct{}
	owner     *conn
	onions    onionOwners // ADD_ONION services (addonion.go)
	unsub     func()
	stop      chan struct{}
	wg        sync.WaitGroup
}

// New validates cfg and returns a server; nothing is opened or written
// until Start or Serve.
func New(cfg Config, b Backend) (*Server, error) {
	if b == nil {
		return nil, errors.New("control: nil backend")
	}
	if cfg.MaxCommandLength <= 0 {
		cfg.MaxCommandLength = 1 << 20
	}
	if cfg.EventQueueLen <= 0 {
		cfg.EventQueueLen = 4096
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.BWInterval <= 0 {
		cfg.BWInterval = time.Second
	}
	s := &Server{cfg: cfg, b: b, log: cfg.Logger, conns: map[*conn]struct{}{}, stop: make(chan struct{}), started: time.Now()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	a, err := newAuthState(cfg, nil)
	if err != nil {
		return nil, err
	}
	if err := checkListeners(cfg); err != nil {
		return nil, err
	}
	s.auth.Store(a)
	return s, nil
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CookieFile is the absolute path of the authentication cookie, "" if
// cookie authentication is off.
func (s *Server) CookieFile() string { return s.auth.Load().cookieFile }

// init writes the cookie, subscribes to the backend and starts the BW
// ticker, once.
func (s *Server) init() error {
	s.initOnce.Do(func() {
		a := s.auth.Load()
		if a.cookieAuth && a.cookie == nil {
			na, err := newAuthState(s.cfg, nil)
			if err == nil {
				err = na.writeCookie()
			}
			if err != nil {
				s.initErr = err
				return
			}
			s.auth.Store(na)
		}
		if es, ok := s.b.(EventSource); ok {
			unsub := es.Subscribe(s.Publish)
			s.mu.Lock()
			s.unsub = unsub
			s.mu.Unlock()
		}
		s.wg.Add(1)
		go s.bwLoop()
	})
	return s.initErr
}

// Start opens the configured listeners and serves them in the background.
func (s *Server) Start() error {
	if err := s.init(); err != nil {
		return err
	}
	s.reconf.Lock()
	defer s.reconf.Unlock()
	return s.setListeners(s.cfg.Listeners, s.cfg)
}

// Reconfigure applies a new configuration to a running server: listeners
// in cfg that are already open stay open (their connections untouched),
// others are opened, and listeners no longer wanted are closed (the
// connections they accepted stay open, as in C tor); the port file is
// rewritten; authentication settings apply to connections that
// authenticate afterwards (a changed cookie setting writes a new
// cookie). Either everything changes or, on error, nothing does.
func (s *Server) Reconfigure(cfg Config) error {
	if err := s.init(); err != nil {
		return err
	}
	s.reconf.Lock()
	defer s.reconf.Unlock()
	old := s.auth.Load()
	a, err := newAuthState(cfg, old)
	if err != nil {
		return err
	}
	if err := checkListeners(cfg); err != nil {
		return err
	}
	if a.cookieAuth && a.cookie == nil {
		if err := a.writeCookie(); err != nil {
			return err
		}
	}
	if err := s.setListeners(cfg.Listeners, cfg); err != nil {
		return err
	}
	s.auth.Store(a)
	s.cfg.Listeners = cfg.Listeners
	s.cfg.AllowNonLoopback = cfg.AllowNonLoopback
	s.cfg.PortWriteToFile, s.cfg.PortFileGroupReadable = cfg.PortWriteToFile, cfg.PortFileGroupReadable
	return nil
}

// Addrs returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.l.Addr())
	}
	return out
}

// Serve accepts control connections on l until Close. It returns
// net.ErrClosed after Close.
func (s *Server) Serve(l net.Listener) error {
	if err := s.init(); err != nil {
		return err
	}
	ln := &listener{l: l}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	return s.acceptLoop(ln)
}

func (s *Server) acceptLoop(ln *listener) error {
	l := ln.l
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || ln.retired.Load() {
				return net.ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(nc) // counts c in s.wg
		if c == nil {
			nc.Close()
			return net.ErrClosed
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Close stops the listeners, closes every connection and waits for the
// server's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ls := s.listeners
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	unsub := s.unsub
	s.owner = nil // closing ourselves is not the owner going away
	s.mu.Unlock()
	close(s.stop)
	if unsub != nil {
		unsub()
	}
	for _, l := range ls {
		l.close()
	}
	for _, c := range conns {
		c.nc.Close()
	}
	s.wg.Wait()
	return nil
}

// Publish delivers ev to every authenticated connection that subscribed
// to its type. It never blocks: a connection whose queue is full loses the
// event and a warning is logged.
func (s *Server) Publish(ev Event) {
	var msg []byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if !c.events[ev.Type] {
			continue
		}
		if msg == nil {
			if msg = FormatEvent(ev); msg == nil {
				return
			}
		}
		select {
		case c.queue <- msg:
		default:
			c.dropped++
			if c.dropped == 1 || c.dropped%1000 == 0 {
				s.log.Warn("control: controller is not reading events; dropping",
					"remote", c.nc.RemoteAddr().String(), "dropped", c.dropped)
			}
		}
	}
}

// wants reports whether any connection subscribed to t.
func (s *Server) wants(t EventType) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.events[t] {
			return true
		}
	}
	return false
}

// bwLoop emits BW events from the backend's traffic counters.
func (s *Server) bwLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.BWInterval)
	defer t.Stop()
	lastR, lastW := s.b.TrafficRead(), s.b.TrafficWritten()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		r, w := s.b.TrafficRead(), s.b.TrafficWritten()
		dr, dw := r-lastR, w-lastW
		if r < lastR {
			dr = 0
		}
		if w < lastW {
			dw = 0
		}
		lastR, lastW = r, w
		s.mu.Lock()
		s.bw.add(dr, dw)
		s.mu.Unlock()
		if s.wants(EventBW) {
			s.Publish(Event{Type: EventBW, Read: dr, Written: dw})
		}
	}
}

// conn is one controller connection.
type conn struct {
	s  *Server
	nc net.Conn
	r  *bufio.Reader

	wmu sync.Mutex // serialises whole replies and events

	queue chan []byte
	done  chan struct{}

	// guarded by s.mu
	events  map[EventType]bool
	dropped uint64

	// owned by the serve goroutine
	authed           bool
	sentProtocolInfo bool
	safeCookieHash   []byte   // expected AUTHENTICATE value after AUTHCHALLENGE
	onions           []string // the ADD_ONION services this connection owns
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{
		s:      s,
		nc:     nc,
		r:      bufio.NewReaderSize(nc, 4096),
		queue:  make(chan []byte, s.cfg.EventQueueLen),
		done:   make(chan struct{}),
		events: map[EventType]bool{},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1) // under s.mu, so never concurrent with Close's Wait
	return c
}

// write sends one complete reply.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) writeLine(code int, text string) error {
	return c.write(singleLine(code, text))
}

// eventWriter drains the event queue.
func (c *conn) eventWriter() {
	for {
		select {
		case <-c.done:
			return
		case b := <-c.queue:
			if err := c.write(b); err != nil {
				c.nc.Close()
				return
			}
		}
	}
}

// serve runs the connection; it balances the s.wg.Add of newConn.
func (c *conn) serve() {
	defer c.s.wg.Done()
	go c.eventWriter()
	defer c.finish()
	for {
		limit := c.s.cfg.MaxCommandLength
		if !c.authed {
			limit = preAuthMaxCommand
		}
		cmd, err := readCommand(c.r, limit)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.writeLine(500, "Line too long.")
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("control: read", "err", err)
			}
			return
		}
		if !c.handle(cmd) {
			return
		}
	}
}

func (c *conn) finish() {
	close(c.done)
	c.nc.Close()
	s := c.s
	s.mu.Lock()
	delete(s.conns, c)
	wasOwner := s.owner == c
	if wasOwner {
		s.owner = nil
	}
	s.mu.Unlock()
	c.dropOnions()
	if wasOwner {
		// control-spec §3.23: the owning controller went away; exit.
		s.log.Warn("Owning controller connection has closed -- exiting now.") // C tor's words
		s.signalAsync("HALT")
	}
}

// signalAsync delivers SHUTDOWN/HALT to the backend from a goroutine of
// its own, which Close does not wait for: the backend may call Close.
func (s *Server) signalAsync(name string) {
	go func() {
		if err := s.b.Signal(name); err != nil {
			s.log.Warn("control: signal", "signal", name, "err", err)
		}
	}()
}

// httpMethods are first words that mean someone pointed an HTTP client at
// the control port.
var httpMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "HEAD": true,
	"CONNECT": true, "OPTIONS": true, "DELETE": true}

const httpReject = "HTTP/1.0 501 Tor ControlPort is not an HTTP proxy\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
	"This is a Tor control port, not an HTTP proxy. Point your browser " +
	"at the SOCKS port instead.\r\n"

// handle runs one command; it returns false when the connection must be
// closed.
func (c *conn) handle(cmd command) bool {
	kw := strings.ToUpper(cmd.Keyword)
	if cmd.Multiline {
		kw = "+" + kw
	}
	if !c.authed && !c.sentProtocolInfo && httpMethods[kw] && strings.Contains(cmd.Args, "HTTP/") {
		c.write([]byte(httpReject))
		return false
	}
	if kw == "QUIT" {
		c.writeLine(250, "closing connection")
		return false
	}
	if !c.authed {
		ok := kw == "AUTHENTICATE" || kw == "AUTHCHALLENGE" ||
			(kw == "PROTOCOLINFO" && !c.sentProtocolInfo)
		if !ok {
			c.writeLine(514, "Authentication required.")
			return false
		}
	}
	h, known := handlers[kw]
	if !known {
		if unsupported[kw] {
			c.writeLine(551, cmd.Keyword+" is not supported by this implementation")
			return true
		}
		name := cmd.Keyword
		if cmd.Multiline {
			name = "+" + name
		}
		c.writeLine(510, "Unrecognized command "+quote(name))
		return true
	}
	return h(c, cmd)
}

// listenerStrings renders the server's own listeners the way GETINFO
// net/listeners/control does: "127.0.0.1:9051", "unix:/path".
func (s *Server) listenerStrings() []string {
	var out []string
	for _, a := range s.Addrs() {
		if a.Network() == "unix" {
			out = append(out, "unix:"+a.String())
		} else {
			out = append(out, a.String())
		}
	}
	return out
}
