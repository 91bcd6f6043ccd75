package itest

// A small SOCKS5 server (RFC 1928 CONNECT; RFC 1929 username/password
// when User is set) standing for a user's outbound proxy in tests of
// Socks5Proxy: it records every destination it is asked for.

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SOCKS5Server is a running test SOCKS5 proxy on 127.0.0.1.
type SOCKS5Server struct {
	Addr       string // IP:PORT
	User, Pass string // required credentials; "" for none

	ln    net.Listener
	mu    sync.Mutex
	dests map[string]int
	auths int
}

// StartSOCKS5Server starts a proxy that requires user:pass (none when
// user is ""); it stops when the test ends.
func StartSOCKS5Server(t testing.TB, user, pass string) *SOCKS5Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SOCKS5Server{Addr: ln.Addr().String(), User: user, Pass: pass, ln: ln, dests: map[string]int{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() }) // relayed connections end with their peers
	return s
}

// Destinations returns each destination asked for and how many times.
func (s *SOCKS5Server) Destinations() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for d, n := range s.dests {
		out[d] = n
	}
	return out
}

// Authenticated returns how many clients passed username/password
// authentication.
func (s *SOCKS5Server) Authenticated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

func (s *SOCKS5Server) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	want := byte(0)
	if s.User != "" {
		want = 2
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		c.Write([]byte{5, 0xFF})
		return
	}
	c.Write([]byte{5, want})
	if want == 2 {
		// RFC 1929: VER ULEN UNAME PLEN PASSWD.
		b := make([]byte, 2)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		u := make([]byte, b[1])
		if _, err := io.ReadFull(c, u); err != nil {
			return
		}
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return
		}
		p := make([]byte, b[0])
		if _, err := io.ReadFull(c, p); err != nil {
			return
		}
		if string(u) != s.User || string(p) != s.Pass {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
		s.mu.Lock()
		s.auths++
		s.mu.Unlock()
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(c, req); err != nil || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make([]byte, 4)
		if req[3] == 4 {
			ip = make([]byte, 16)
		}
		if _, err := io.ReadFull(c, ip); err != nil {
			return
		}
		a, _ := netip.AddrFromSlice(ip)
		host = a.Unmap().String()
	case 3:
		n := make([]byte, 1)
		if _, err := io.ReadFull(c, n); err != nil {
			return
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return
		}
		host = string(name)
	default:
		return
	}
	pb := make([]byte, 2)
	if _, err := io.ReadFull(c, pb); err != nil {
		return
	}
	dest := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb))))
	s.mu.Lock()
	s.dests[dest]++
	s.mu.Unlock()
	out, err := net.DialTimeout("tcp", dest, 10*time.Second)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return
	}
	defer out.Close()
	c.SetDeadline(time.Time{})
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, c); out.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, out); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}
