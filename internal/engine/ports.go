package engine

// The set of open SocksPort and HTTPTunnelPort listeners, changed while
// gotor runs (SETCONF SocksPort, control-spec §3.1; C tor's
// retry_listener_ports): a port still configured keeps its listener and
// its connections; a port no longer configured stops listening, the
// connections it accepted going on (as in C tor); a new port is opened.
// When a kept port's settings change (its flags, or SafeSocks and
// SocksTimeout), new connections go to a server with the new settings
// while the old server finishes its own: each port's accept loop hands
// connections to the port's current server through a connFeed.

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/logging"
	"github.com/gotor/gotor/internal/socks"
)

// portSettings are everything a port's server and handler take from the
// configuration.
type portSettings struct {
	flags                 isolation.Flags
	sessionGroup          int
	safeSocks, noAuth     bool
	extErrors             bool
	timeout               time.Duration
	noIPv4, noIPv6, noDNS bool
	noOnion               bool
}

// portWant is one configured port.
type portWant struct {
	http bool
	addr string // as configured ("127.0.0.1:0" for auto): what a kept port matches
	set  portSettings
}

func (w portWant) kind() string {
	if w.http {
		return "HTTP tunnel"
	}
	return "SOCKS"
}

// openPort is one open listener.
type openPort struct {
	want portWant
	id   uint32 // the listener's isolation id
	ln   net.Listener

	mu   sync.Mutex
	feed *connFeed
	srv  *socks.Server
}

// portSet is the engine's open ports.
type portSet struct {
	mu      sync.Mutex
	active  bool // openListeners ran: reconfiguration manages the ports
	open    []*openPort
	retired []*socks.Server // servers whose connections go on
	nextID  uint32
	wg      sync.WaitGroup
}

func (ps *portSet) activate() {
	ps.mu.Lock()
	ps.active = true
	ps.mu.Unlock()
}

func (ps *portSet) isActive() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.active
}

// addrs lists the bound addresses of the SOCKS (or HTTP) listeners.
func (ps *portSet) addrs(http bool) []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []string
	for _, p := range ps.open {
		if p.want.http == http {
			out = append(out, p.ln.Addr().String())
		}
	}
	return out
}

// portPlan is a prepared change of the port set: new listeners are open,
// nothing else has changed yet.
type portPlan struct {
	ps     *portSet
	c      *Engine
	next   []*openPort
	opened []*openPort
	swap   map[*openPort]portSettings
	close  []*openPort
}

// prepare opens the listeners of want that are not open yet. Callers
// hold rt.mu; then either commit or abort the plan.
func (ps *portSet) prepare(c *Engine, want []portWant) (*portPlan, error) {
	ps.mu.Lock()
	cur := append([]*openPort(nil), ps.open...)
	ps.mu.Unlock()
	plan := &portPlan{ps: ps, c: c, swap: map[*openPort]portSettings{}}
	used := make([]bool, len(cur))
	for _, w := range want {
		i := -1
		for j, p := range cur {
			if !used[j] && p.want.http == w.http && p.want.addr == w.addr {
				i = j
				break
			}
		}
		if i >= 0 {
			used[i] = true
			if cur[i].want.set != w.set {
				plan.swap[cur[i]] = w.set
			}
			plan.next = append(plan.next, cur[i])
			continue
		}
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			plan.abort()
			return nil, errors.Join(errors.New("listen on "+w.addr), err)
		}
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			c.log.Warn("listener is not on a loopback address: anyone who can reach it can use this client", "addr", ln.Addr().String())
		}
		p := &openPort{want: w, ln: ln}
		plan.opened = append(plan.opened, p)
		plan.next = append(plan.next, p)
	}
	for j, p := range cur {
		if !used[j] {
			plan.close = append(plan.close, p)
		}
	}
	return plan, nil
}

// abort closes the listeners prepare opened.
func (plan *portPlan) abort() {
	for _, p := range plan.opened {
		p.ln.Close()
	}
}

// commit makes the prepared set the open one.
func (plan *portPlan) commit() {
	ps, c := plan.ps, plan.c
	ps.mu.Lock()
	for _, p := range plan.opened {
		ps.nextID++
		p.id = ps.nextID
		p.srv, p.feed = c.newPortServer(p, p.want.set), newConnFeed(p.ln.Addr())
		ps.serve(c, p, p.srv, p.feed)
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			p.acceptLoop(c)
		}()
	}
	for p, set := range plan.swap {
		srv, feed := c.newPortServer(p, set), newConnFeed(p.ln.Addr())
		ps.serve(c, p, srv, feed)
		p.mu.Lock()
		oldSrv, oldFeed := p.srv, p.feed
		p.want.set, p.srv, p.feed = set, srv, feed
		p.mu.Unlock()
		oldFeed.Close()
		ps.retired = append(ps.retired, oldSrv)
	}
	for _, p := range plan.close {
		p.ln.Close()
		p.mu.Lock()
		p.feed.Close()
		ps.retired = append(ps.retired, p.srv)
		p.mu.Unlock()
	}
	ps.open = plan.next
	// Servers whose connections have all ended are done.
	var keep []*socks.Server
	for _, s := range ps.retired {
		if s.NumConns() == 0 {
			s.Close()
		} else {
			keep = append(keep, s)
		}
	}
	ps.retired = keep
	ps.mu.Unlock()
	for _, p := range plan.opened {
		c.log.Log(context.Background(), logging.LevelNotice, "Opened "+p.want.kind()+" listener on "+p.ln.Addr().String())
	}
	for _, p := range plan.close {
		c.log.Log(context.Background(), logging.LevelNotice, "Closing no-longer-configured "+p.want.kind()+" listener on "+p.ln.Addr().String())
	}
}

// newPortServer builds the SOCKS (or HTTP CONNECT) server of a port.
func (c *Engine) newPortServer(p *openPort, set portSettings) *socks.Server {
	h := &listenerHandler{c: c, id: p.id, flags: set.flags, sessionGroup: set.sessionGroup}
	return &socks.Server{
		Handler:           h,
		Logger:            c.log,
		SafeSocks:         set.safeSocks,
		PreferSOCKSNoAuth: set.noAuth,
		ExtendedErrors:    set.extErrors,
		ConnectTimeout:    set.timeout,
		NoIPv4Traffic:     set.noIPv4,
		NoIPv6Traffic:     set.noIPv6,
		NoDNSRequest:      set.noDNS,
		NoOnionTraffic:    set.noOnion,
	}
}

// serve runs srv on feed until the feed or the server closes. Callers
// hold ps.mu.
func (ps *portSet) serve(c *Engine, p *openPort, srv *socks.Server, feed *connFeed) {
	serve := srv.Serve
	if p.want.http {
		serve = srv.ServeHTTPTunnel
	}
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		if err := serve(feed); err != nil && !errors.Is(err, socks.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			c.log.Warn("listener stopped", "kind", p.want.kind(), "err", err)
		}
	}()
}

// acceptLoop hands the listener's connections to the port's current
// server until the listener closes.
func (p *openPort) acceptLoop(c *Engine) {
	var backoff time.Duration
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				c.log.Warn("listener stopped", "kind", p.want.kind(), "err", err)
			}
			return
		}
		backoff = 0
		for {
			p.mu.Lock()
			feed := p.feed
			p.mu.Unlock()
			if feed.push(conn) {
				break
			}
			if feed.isClosed() && p.closedPort(feed) {
				conn.Close()
				break
			}
		}
	}
}

// closedPort reports whether feed was the port's last one (the port
// closed) rather than replaced.
func (p *openPort) closedPort(feed *connFeed) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.feed == feed
}

// closeAll closes every listener and server and waits for them (Stop).
func (ps *portSet) closeAll() {
	ps.mu.Lock()
	open, retired := ps.open, ps.retired
	ps.open, ps.retired, ps.active = nil, nil, false
	ps.mu.Unlock()
	for _, p := range open {
		p.ln.Close()
		p.mu.Lock()
		p.feed.Close()
		retired = append(retired, p.srv)
		p.mu.Unlock()
	}
	for _, s := range retired {
		s.Close()
	}
	ps.wg.Wait()
}

// connFeed is a net.Listener whose connections come from a port's accept
// loop.
type connFeed struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnFeed(addr net.Addr) *connFeed {
	return &connFeed{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (f *connFeed) Accept() (net.Conn, error) {
	select {
	case c := <-f.ch:
		return c, nil
	case <-f.done:
		return nil, net.ErrClosed
	}
}

func (f *connFeed) Close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

func (f *connFeed) Addr() net.Addr { return f.addr }

// push hands c to the server; false if the feed closed first.
func (f *connFeed) push(c net.Conn) bool {
	select {
	case f.ch <- c:
		return true
	case <-f.done:
		return false
	}
}

func (f *connFeed) isClosed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}
