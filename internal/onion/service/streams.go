package service

// Streams from clients: tor-spec §6.2 (RELAY_BEGIN on the rendezvous
// circuit, answered by an empty RELAY_CONNECTED as C tor's
// connection_exit_connect for rendezvous streams, or RELAY_END) and the
// port mapping of C tor's hs_service_set_conn_addr_port and
// handle_hs_exit_conn: a port with no mapping, or a circuit at
// HiddenServiceMaxStreams, gets END with reason DONE (which does not tell
// a port scanner whether the port exists); with
// HiddenServiceMaxStreamsCloseCircuit the circuit is closed instead. A
// local target that refuses the connection gets END CONNECTREFUSED.

import (
	"context"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/cell"
)

// acceptBacklog is how many streams may wait for Accept (a listen
// backlog, like the kernel's somaxconn); more get END RESOURCELIMIT.
const acceptBacklog = 1024

// acceptWait bounds how long a listener stream waits in Accept's queue
// after the client's BEGIN; it ends with END RESOURCELIMIT then.
const acceptWait = 30 * time.Second

// pendingStream is a stream for Accept that has not been answered yet.
type pendingStream struct {
	sr     streamRequest
	rc     *rendCirc
	port   uint16
	queued time.Time
}

func (s *Service) targetsFor(port uint16) []string {
	var out []string
	for _, p := range s.cfg.Ports {
		if p.Virtual == port {
			out = append(out, p.Target)
		}
	}
	return out
}

// onStream handles a BEGIN. It runs on the circuit's reader goroutine
// and must not block.
func (s *Service) onStream(rc *rendCirc, sr streamRequest) {
	port := sr.port()
	targets := s.targetsFor(port)
	if len(targets) == 0 {
		s.stats.streamsRefused.Add(1)
		sr.reject(cell.EndDone)
		return
	}
	if m := s.cfg.MaxStreams; m > 0 && int(rc.active.Load()) >= m {
		s.stats.streamsRefused.Add(1)
		if s.cfg.MaxStreamsCloseCircuit {
			s.log.Warn("onion service: rendezvous circuit over HiddenServiceMaxStreams; closing it", "max", m)
			go rc.c.close() // not from the reader goroutine
			return
		}
		s.log.Warn("onion service: rendezvous circuit over HiddenServiceMaxStreams; refusing stream", "max", m)
		sr.reject(cell.EndDone)
		return
	}
	target := targets[mrand.IntN(len(targets))]
	rc.active.Add(1)
	if target == "" {
		select {
		case s.accept <- pendingStream{sr: sr, rc: rc, port: port, queued: s.cfg.Now()}:
		default:
			rc.active.Add(-1)
			s.stats.streamsRefused.Add(1)
			sr.reject(cell.EndResourceLimit)
		}
		return
	}
	if !s.goFn(func() {
		defer rc.active.Add(-1)
		s.forward(sr, target)
	}) {
		rc.active.Add(-1)
		sr.reject(cell.EndDone)
	}
}

// Accept returns the next stream to a port whose Target is "". Its
// LocalAddr is the onion address and virtual port.
func (s *Service) Accept() (net.Conn, error) {
	for {
		var p pendingStream
		select {
		case p = <-s.accept:
		case <-s.closed:
			return nil, ErrClosed
		}
		if s.cfg.Now().Sub(p.queued) > acceptWait {
			p.rc.active.Add(-1)
			s.stats.streamsRefused.Add(1)
			p.sr.reject(cell.EndResourceLimit)
			continue
		}
		c, err := p.sr.accept()
		if err != nil { // the client gave up, or the circuit closed
			p.rc.active.Add(-1)
			continue
		}
		s.stats.streamsOpened.Add(1)
		return &serviceConn{Conn: c, local: Addr{Host: s.addr.String(), Port: p.port}, done: func() { p.rc.active.Add(-1) }}, nil
	}
}

// drainAccept refuses the streams still queued for Accept (at Close).
func (s *Service) drainAccept() {
	for {
		select {
		case p := <-s.accept:
			p.rc.active.Add(-1)
			p.sr.reject(cell.EndDone)
		default:
			return
		}
	}
}

// serviceConn is a stream handed to Accept.
type serviceConn struct {
	net.Conn
	local Addr
	once  sync.Once
	done  func()
}

func (c *serviceConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the anonymous client: the onion address with port 0.
func (c *serviceConn) RemoteAddr() net.Addr { return Addr{Host: c.local.Host} }

func (c *serviceConn) Close() error {
	c.once.Do(c.done)
	return c.Conn.Close()
}

// forward connects a stream to its local target and copies both ways
// until either side ends.
func (s *Service) forward(sr streamRequest, target string) {
	network, addr := "tcp", target
	if p, ok := strings.CutPrefix(target, "unix:"); ok {
		network, addr = "unix", p
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	s.mu.Lock()
	stop := context.AfterFunc(s.ctx, cancel)
	s.mu.Unlock()
	var d net.Dialer
	local, err := d.DialContext(ctx, network, addr)
	stop()
	cancel()
	if err != nil {
		s.stats.streamsRefused.Add(1)
		s.log.Warn("onion service: local target unreachable", "port", sr.port(), "err", err)
		sr.reject(cell.EndConnectRefused)
		return
	}
	st, err := sr.accept()
	if err != nil {
		local.Close()
		return
	}
	s.stats.streamsOpened.Add(1)
	splice(st, local)
}

// splice copies a and b into each other; when either direction ends,
// both close (Tor streams have no half-close).
func splice(a, b net.Conn) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		copyConn(b, a)
		closeBoth()
		close(done)
	}()
	copyConn(a, b)
	closeBoth()
	<-done
}

func copyConn(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
