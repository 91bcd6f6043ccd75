// Control server: listeners (ControlPort on loopback TCP, ControlSocket),
// per-connection state machine (control-spec §3.5: only PROTOCOLINFO,
// AUTHCHALLENGE, AUTHENTICATE and QUIT before authentication), event
// subscriptions (§3.4) and asynchronous delivery (§4.1) through a bounded
// per-connection queue, so that a slow controller never blocks the client.
package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Config configures a Server. The field names follow the torrc options.
type Config struct {
	// ListenAddr is the ControlPort TCP address, e.g. "127.0.0.1:9051".
	// Empty means no TCP listener. Non-loopback addresses are refused
	// unless AllowNonLoopback is set.
	ListenAddr       string
	AllowNonLoopback bool
	// UnixSocket is the ControlSocket path; empty means none. The socket
	// is created with mode 0600 (0660 with UnixSocketGroupWritable).
	UnixSocket              string
	UnixSocketGroupWritable bool

	// PortWriteToFile (torrc ControlPortWriteToFile), if set, receives
	// "PORT=127.0.0.1:9051" / "UNIX_PORT=/path" lines after Start, so that
	// a ListenAddr with port 0 ("auto") can be discovered.
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
	// Cookie, if set, is the cookie already written to CookieAuthFile
	// (WriteCookie) that this server accepts; servers sharing one file
	// must share it. Nil: the server writes a fresh one.
	Cookie []byte
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
	cfg       Config
	b         Backend
	log       *slog.Logger
	cookie    []byte
	cookieAbs string
	passwords []hashedPassword

	initOnce sync.Once
	initErr  error

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
	conns     map[*conn]struct{}
	owner     *conn
	unsub     func()
	// startedUnix: Start created the ControlSocket, so Close removes it.
	startedUnix bool
	stop        chan struct{}
	wg          sync.WaitGroup
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
	s := &Server{cfg: cfg, b: b, log: cfg.Logger, conns: map[*conn]struct{}{}, stop: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.HashedControlPassword {
		hp, err := parseHashedPassword(p)
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		s.passwords = append(s.passwords, hp)
	}
	if cfg.CookieAuthentication {
		if cfg.CookieAuthFile == "" {
			if cfg.DataDirectory == "" {
				return nil, errors.New("control: CookieAuthentication needs CookieAuthFile or DataDirectory")
			}
			s.cfg.CookieAuthFile = filepath.Join(cfg.DataDirectory, "control_auth_cookie")
		}
		abs, err := filepath.Abs(s.cfg.CookieAuthFile)
		if err != nil {
			return nil, err
		}
		s.cookieAbs = abs
	}
	if !cfg.CookieAuthentication && len(s.passwords) == 0 && !cfg.AllowNullAuth {
		return nil, errors.New("control: no authentication method configured (set CookieAuthentication, HashedControlPassword or AllowNullAuth)")
	}
	if cfg.ListenAddr != "" && !cfg.AllowNonLoopback && !isLoopbackAddr(cfg.ListenAddr) {
		return nil, fmt.Errorf("control: refusing non-loopback ControlPort %q", cfg.ListenAddr)
	}
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
func (s *Server) CookieFile() string { return s.cookieAbs }

// init writes the cookie, subscribes to the backend and starts the BW
// ticker, once.
func (s *Server) init() error {
	s.initOnce.Do(func() {
		if s.cfg.CookieAuthentication && s.cfg.Cookie != nil {
			s.cookie = s.cfg.Cookie
		} else if s.cfg.CookieAuthentication {
			c, err := WriteCookie(s.cookieAbs, s.cfg.CookieAuthFileGroupReadable)
			if err != nil {
				s.initErr = err
				return
			}
			s.cookie = c
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
	var ls []net.Listener
	fail := func(err error) error {
		for _, l := range ls {
			l.Close()
		}
		return err
	}
	if s.cfg.ListenAddr != "" {
		l, err := net.Listen("tcp", s.cfg.ListenAddr)
		if err != nil {
			return fail(fmt.Errorf("control: %w", err))
		}
		ls = append(ls, l)
	}
	if s.cfg.UnixSocket != "" {
		if fi, err := os.Lstat(s.cfg.UnixSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(s.cfg.UnixSocket) // stale socket from a previous run
		}
		l, err := net.Listen("unix", s.cfg.UnixSocket)
		if err != nil {
			return fail(fmt.Errorf("control: %w", err))
		}
		mode := os.FileMode(0o600)
		if s.cfg.UnixSocketGroupWritable {
			mode = 0o660
		}
		if err := os.Chmod(s.cfg.UnixSocket, mode); err != nil {
			l.Close()
			return fail(err)
		}
		ls = append(ls, l)
		s.mu.Lock()
		s.startedUnix = true
		s.mu.Unlock()
	}
	if s.cfg.PortWriteToFile != "" {
		var b strings.Builder
		for _, l := range ls {
			if l.Addr().Network() == "unix" {
				b.WriteString("UNIX_PORT=" + l.Addr().String() + "\n")
			} else {
				b.WriteString("PORT=" + l.Addr().String() + "\n")
			}
		}
		mode := os.FileMode(0o600)
		if s.cfg.PortFileGroupReadable {
			mode = 0o640
		}
		if err := writeFileAtomic(s.cfg.PortWriteToFile, []byte(b.String()), mode); err != nil {
			return fail(fmt.Errorf("control: ControlPortWriteToFile: %w", err))
		}
	}
	for _, l := range ls {
		if err := s.track(l); err != nil {
			return fail(err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.acceptLoop(l)
		}()
	}
	return nil
}

// Addrs returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

func (s *Server) track(l net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, l)
	return nil
}

// Serve accepts control connections on l until Close. It returns
// net.ErrClosed after Close.
func (s *Server) Serve(l net.Listener) error {
	if err := s.init(); err != nil {
		return err
	}
	if err := s.track(l); err != nil {
		return err
	}
	return s.acceptLoop(l)
}

func (s *Server) acceptLoop(l net.Listener) error {
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
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
		l.Close()
	}
	for _, c := range conns {
		c.nc.Close()
	}
	s.wg.Wait()
	if s.cfg.UnixSocket != "" && s.startedUnix {
		os.Remove(s.cfg.UnixSocket)
	}
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
	safeCookieHash   []byte // expected AUTHENTICATE value after AUTHCHALLENGE
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
	if wasOwner {
		// control-spec §3.23: the owning controller went away; exit.
		s.log.Warn("control: owning controller connection closed; halting")
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
