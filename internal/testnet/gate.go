package testnet

// Gates make part of a running network unreachable to one client while
// the network runs on for everyone else: a client is given DirAuthority
// lines whose DirPort and ORPort are gates, TCP forwarders to the real
// ports that reset every connection until they are opened. (A client
// that cannot reach any authority is what a machine without network
// sees at start-up; C tor and gotor keep retrying their bootstrap.)

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Gates are the gates of GatedDirAuthorityLines.
type Gates struct {
	open    atomic.Bool
	refused atomic.Int64
	lns     []net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
}

// GatedDirAuthorityLines returns DirAuthority lines for the network's
// authorities whose DirPort and ORPort are gates on 127.0.0.1, closed
// until Gates.Open. The identities are the real ones, so once open a
// client bootstraps exactly as from the authorities themselves. Close
// the gates when done.
func (n *Network) GatedDirAuthorityLines() ([]string, *Gates, error) {
	g := &Gates{conns: make(map[net.Conn]struct{})}
	gate := func(target string) (int, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		g.lns = append(g.lns, ln)
		g.wg.Add(1)
		go g.serve(ln, target)
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	var lines []string
	for _, a := range n.Authorities() {
		or, err := gate(a.ORAddr())
		if err != nil {
			g.Close()
			return nil, nil, err
		}
		dir, err := gate(a.DirAddr())
		if err != nil {
			g.Close()
			return nil, nil, err
		}
		lines = append(lines, fmt.Sprintf("DirAuthority %s orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s",
			a.Nickname, or, a.V3Ident, dir, a.Fingerprint))
	}
	return lines, g, nil
}

// Open lets connections through from now on.
func (g *Gates) Open() { g.open.Store(true) }

// Refused is how many connections the gates have reset so far.
func (g *Gates) Refused() int { return int(g.refused.Load()) }

// Close stops the gates and every connection through them.
func (g *Gates) Close() {
	g.mu.Lock()
	g.closed = true
	for _, ln := range g.lns {
		ln.Close()
	}
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

func (g *Gates) serve(ln net.Listener, target string) {
	defer g.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !g.open.Load() {
			g.refused.Add(1)
			c.(*net.TCPConn).SetLinger(0) // a reset, as from a closed port
			c.Close()
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.forward(c, target)
		}()
	}
}

// track registers c for Close; false if the gates are closed already.
func (g *Gates) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *Gates) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *Gates) forward(c net.Conn, target string) {
	if !g.track(c) {
		c.Close()
		return
	}
	defer g.untrack(c)
	t, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	if !g.track(t) {
		t.Close()
		return
	}
	defer g.untrack(t)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(t, c)
	go pipe(c, t)
	<-done
	<-done
}
