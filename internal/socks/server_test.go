package socks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"

	"golang.org/x/net/proxy"
)

// echoServer accepts TCP connections and echoes until EOF, then closes.
func echoServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

// testHandler maps every hostname ending in ".test" or "localhost" to the
// echo server and dials it directly; some names trigger failures.
type testHandler struct {
	echo *net.TCPAddr
	mu   sync.Mutex
	reqs []*Request
}

func (h *testHandler) last() *Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) == 0 {
		return nil
	}
	return h.reqs[len(h.reqs)-1]
}

func (h *testHandler) HandleConnect(ctx context.Context, req *Request) (net.Conn, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	h.mu.Unlock()
	switch req.Host {
	case "refused.test":
		return nil, &ReplyError{Code: ReplyConnRefused}
	case "policy.test":
		return nil, &ReplyError{Code: ReplyNotAllowed}
	case "onion.test":
		return nil, &ReplyError{Code: ReplyOnionDescNotFound}
	case "slow.test":
		<-ctx.Done()
		return nil, ctx.Err()
	case "panic.test":
		panic("handler bug")
	}
	h.mu.Lock()
	target := h.echo.String()
	h.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

func (h *testHandler) HandleResolve(ctx context.Context, req *Request) (ResolveAnswer, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	h.mu.Unlock()
	switch {
	case req.Command == CmdResolvePTR:
		return ResolveAnswer{Name: "ptr.example"}, nil
	case req.Host == "v6.test":
		return ResolveAnswer{Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}, nil
	case req.Host == "nx.test":
		return ResolveAnswer{}, &ReplyError{Code: ReplyHostUnreachable}
	}
	return ResolveAnswer{Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.7")}}, nil
}

func startServer(t *testing.T, s *Server) (*testHandler, string) {
	t.Helper()
	h := &testHandler{echo: echoServer(t)}
	s.Handler = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return h, ln.Addr().String()
}

func hexBytes(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = append(b, byte(v))
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		}
	}
	return b
}

// exchange writes in to the server and reads until EOF or n bytes.
func exchange(t *testing.T, addr string, in []byte, want int) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 0, want)
	buf := make([]byte, 512)
	for len(out) < want {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return out
}

func TestHandshakes(t *testing.T) {
	port := []byte{0x01, 0xbb} // 443
	tests := []struct {
		name      string
		safe      bool
		ext       bool
		noAuth    bool
		in        []byte
		want      []byte // exact reply prefix expected
		host      string // expected parsed host ("" = no request expected)
		proto     Protocol
		user, pwd string
		extFmt    byte
	}{
		{name: "socks4 connect", in: hexBytes(4, 1, port, 127, 0, 0, 1, "alice", 0, "ping"),
			want: []byte{0, 90, 0, 0, 0, 0, 0, 0, 'p', 'i', 'n', 'g'}, host: "127.0.0.1", proto: ProtoSOCKS4, user: "alice"},
		{name: "socks4 safesocks", safe: true, in: hexBytes(4, 1, port, 127, 0, 0, 1, 0),
			want: []byte{0, 91, 0, 0, 0, 0, 0, 0}},
		{name: "socks4a connect", safe: true, in: hexBytes(4, 1, port, 0, 0, 0, 1, 0, "echo.test", 0, "hi"),
			want: []byte{0, 90, 0, 0, 0, 0, 0, 0, 'h', 'i'}, host: "echo.test", proto: ProtoSOCKS4a},
		{name: "socks4a resolve", in: hexBytes(4, 0xF0, port, 0, 0, 0, 1, 0, "any.test", 0),
			want: []byte{0, 90, 0, 0, 192, 0, 2, 7}, host: "any.test", proto: ProtoSOCKS4a},
		{name: "socks4a resolve v6 only", in: hexBytes(4, 0xF0, port, 0, 0, 0, 1, 0, "v6.test", 0),
			want: []byte{0, 91, 0, 0, 0, 0, 0, 0}, host: "v6.test", proto: ProtoSOCKS4a},
		{name: "socks4 bind", in: hexBytes(4, 2, port, 127, 0, 0, 1, 0), want: []byte{0, 91}},
		{name: "socks4 port zero", in: hexBytes(4, 1, 0, 0, 127, 0, 0, 1, 0), want: []byte{0, 91}},
		{name: "socks4 refused", in: hexBytes(4, 1, port, 0, 0, 0, 1, 0, "refused.test", 0), want: []byte{0, 91}, host: "refused.test", proto: ProtoSOCKS4a},
		{name: "socks4 long userid", in: hexBytes(4, 1, port, 127, 0, 0, 1, strings.Repeat("u", 600), 0), want: []byte{0, 91}},
		{name: "socks5 noauth domain", in: hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "echo.test", port, "x"),
			want: hexBytes(5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0, "x"), host: "echo.test", proto: ProtoSOCKS5},
		{name: "socks5 userpass", in: hexBytes(5, 2, 0, 2, 1, 3, "bob", 2, "pw", 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0), host: "echo.test", proto: ProtoSOCKS5, user: "bob", pwd: "pw"},
		{name: "socks5 prefer noauth", noAuth: true, in: hexBytes(5, 2, 0, 2, 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 0, 5, 0), host: "echo.test", proto: ProtoSOCKS5},
		{name: "socks5 auth after noauth", in: hexBytes(5, 1, 0, 1, 0, 0, 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 0, 1, 0, 5, 0), host: "echo.test", proto: ProtoSOCKS5},
		{name: "socks5 ipv4", in: hexBytes(5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, port),
			want: hexBytes(5, 0, 5, 0), host: "10.0.0.1", proto: ProtoSOCKS5},
		{name: "socks5 ipv6", in: hexBytes(5, 1, 0, 5, 1, 0, 4, netip.MustParseAddr("2001:db8::5").AsSlice(), port),
			want: hexBytes(5, 0, 5, 0), host: "2001:db8::5", proto: ProtoSOCKS5},
		{name: "socks5 safesocks ipv4", safe: true, in: hexBytes(5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, port),
			want: hexBytes(5, 0, 5, 2)},
		{name: "socks5 safesocks ipv6", safe: true, in: hexBytes(5, 1, 0, 5, 1, 0, 4, make([]byte, 16), port),
			want: hexBytes(5, 0, 5, 2)},
		{name: "socks5 no acceptable method", in: hexBytes(5, 1, 0x80), want: hexBytes(5, 0xFF)},
		{name: "socks5 zero methods", in: hexBytes(5, 0), want: hexBytes(5, 0xFF)},
		{name: "socks5 bind", in: hexBytes(5, 1, 0, 5, 2, 0, 3, 1, "a", port), want: hexBytes(5, 0, 5, 7)},
		{name: "socks5 udp", in: hexBytes(5, 1, 0, 5, 3, 0, 3, 1, "a", port), want: hexBytes(5, 0, 5, 7)},
		{name: "socks5 bad atyp", in: hexBytes(5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, port), want: hexBytes(5, 0, 5, 8)},
		{name: "socks5 empty host", in: hexBytes(5, 1, 0, 5, 1, 0, 3, 0, port), want: hexBytes(5, 0, 5, 1)},
		{name: "socks5 control char host", in: hexBytes(5, 1, 0, 5, 1, 0, 3, 3, "a\nb", port), want: hexBytes(5, 0, 5, 1)},
		{name: "socks5 bad request version", in: hexBytes(5, 1, 0, 4, 1, 0, 3, 1, "a", port), want: hexBytes(5, 0, 5, 1)},
		{name: "socks5 refused", in: hexBytes(5, 1, 0, 5, 1, 0, 3, 12, "refused.test", port), want: hexBytes(5, 0, 5, 5), host: "refused.test", proto: ProtoSOCKS5},
		{name: "socks5 exit policy", in: hexBytes(5, 1, 0, 5, 1, 0, 3, 11, "policy.test", port), want: hexBytes(5, 0, 5, 2), host: "policy.test", proto: ProtoSOCKS5},
		{name: "socks5 onion no ext", in: hexBytes(5, 1, 0, 5, 1, 0, 3, 10, "onion.test", port), want: hexBytes(5, 0, 5, 1), host: "onion.test", proto: ProtoSOCKS5},
		{name: "socks5 onion ext", ext: true, in: hexBytes(5, 1, 0, 5, 1, 0, 3, 10, "onion.test", port), want: hexBytes(5, 0, 5, 0xF0), host: "onion.test", proto: ProtoSOCKS5},
		{name: "socks5 resolve", in: hexBytes(5, 1, 0, 5, 0xF0, 0, 3, 7, "any.tst", port),
			want: hexBytes(5, 0, 5, 0, 0, 4, netip.MustParseAddr("2001:db8::1").AsSlice(), 0, 0), host: "any.tst", proto: ProtoSOCKS5},
		{name: "socks5 resolve fails", in: hexBytes(5, 1, 0, 5, 0xF0, 0, 3, 7, "nx.test", port),
			want: hexBytes(5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0), host: "nx.test", proto: ProtoSOCKS5},
		{name: "socks5 resolve_ptr", safe: true, in: hexBytes(5, 1, 0, 5, 0xF1, 0, 1, 192, 0, 2, 7, port),
			want: hexBytes(5, 0, 5, 0, 0, 3, 11, "ptr.example", 0, 0), host: "192.0.2.7", proto: ProtoSOCKS5},
		{name: "socks5 resolve_ptr of name", in: hexBytes(5, 1, 0, 5, 0xF1, 0, 3, 5, "a.com", port), want: hexBytes(5, 0, 5, 8)},
		{name: "prop351 format 0", in: hexBytes(5, 1, 2, 1, 9, "<torS0X>0", 3, "iso", 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 2, 1, 0, 5, 0), host: "echo.test", proto: ProtoSOCKS5, user: "<torS0X>0", pwd: "iso", extFmt: '0'},
		// Format 1 names an RPC object; without an RPC it is refused, as
		// arti without RPC refuses it.
		{name: "prop351 format 1", in: hexBytes(5, 1, 2, 1, 12, "<torS0X>1obj", 0, 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 2, 1, 0, 5, 1)},
		{name: "prop351 format 0 extra", in: hexBytes(5, 1, 2, 1, 10, "<torS0X>0x", 0, 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 2, 1, 0, 5, 1)},
		{name: "prop351 empty rpc", in: hexBytes(5, 1, 2, 1, 9, "<torS0X>1", 0, 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 2, 1, 0, 5, 1)},
		{name: "prop351 unknown format", in: hexBytes(5, 1, 2, 1, 9, "<torS0X>9", 0, 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 2, 1, 0, 5, 1)},
		{name: "prop351 no format", in: hexBytes(5, 1, 2, 1, 8, "<torS0X>", 0, 5, 1, 0, 3, 9, "echo.test", port),
			want: hexBytes(5, 2, 1, 0, 5, 1)},
		{name: "bad auth version", in: hexBytes(5, 1, 2, 2, 1, "a", 0), want: hexBytes(5, 2, 1, 1)},
		{name: "http on socks port", in: []byte("GET / HTTP/1.0\r\n\r\n"), want: []byte("HTTP/1.0 501 ")},
		{name: "garbage version", in: []byte{0x17, 1, 2, 3}, want: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{SafeSocks: tt.safe, ExtendedErrors: tt.ext, PreferSOCKSNoAuth: tt.noAuth}
			h, addr := startServer(t, s)
			got := exchange(t, addr, tt.in, len(tt.want))
			if !bytes.HasPrefix(got, tt.want) {
				t.Fatalf("reply %x, want prefix %x", got, tt.want)
			}
			req := h.last()
			if tt.host == "" {
				if req != nil {
					t.Fatalf("handler called with %v", req)
				}
				return
			}
			if req == nil {
				t.Fatal("handler not called")
			}
			if req.Host != tt.host || req.Port != 443 || req.Protocol != tt.proto ||
				string(req.Username) != tt.user || string(req.Password) != tt.pwd ||
				req.ExtFormat != tt.extFmt {
				t.Errorf("request %+v", req)
			}
			if !req.ClientAddr.Addr().IsLoopback() || req.Listener.String() != addr {
				t.Errorf("addresses %v %v", req.ClientAddr, req.Listener)
			}
		})
	}
}

// TestTruncatedAndOversized sends every prefix of valid handshakes, then
// closes: the server must neither call the handler nor hang or panic.
func TestTruncatedAndOversized(t *testing.T) {
	s := &Server{HandshakeTimeout: 2 * time.Second}
	h, addr := startServer(t, s)
	full := [][]byte{
		hexBytes(4, 1, 0, 80, 0, 0, 0, 1, "user", 0, "echo.test", 0),
		hexBytes(5, 1, 2, 1, 3, "bob", 2, "pw", 5, 1, 0, 3, 9, "echo.test", 0, 80),
	}
	for _, f := range full {
		for i := 1; i < len(f); i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(f[:i])
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.ReadAll(c); err != nil {
				t.Errorf("prefix %d of %x: %v (server did not close)", i, f, err)
			}
			c.Close()
		}
	}
	// Oversized: a SOCKS4a hostname without end and a huge stream of bytes.
	big := append(hexBytes(4, 1, 0, 80, 0, 0, 0, 1, 0), bytes.Repeat([]byte("a"), 1<<16)...)
	got := exchange(t, addr, big, 2)
	if !bytes.HasPrefix(got, []byte{0, 91}) {
		t.Errorf("oversized socks4a: %x", got)
	}
	if h.last() != nil {
		t.Errorf("handler called for a bad request: %v", h.last())
	}
}

func TestHandshakeTimeout(t *testing.T) {
	s := &Server{HandshakeTimeout: 200 * time.Millisecond}
	_, addr := startServer(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{5, 1})
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
}

func TestConnectTimeout(t *testing.T) {
	s := &Server{ConnectTimeout: 100 * time.Millisecond}
	_, addr := startServer(t, s)
	got := exchange(t, addr, hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "slow.test", 0, 80), 4)
	if !bytes.Equal(got[:4], []byte{5, 0, 5, ReplyTTLExpired}) {
		t.Errorf("reply %x", got)
	}
}

func TestPanickingHandlerIsolated(t *testing.T) {
	s := &Server{}
	_, addr := startServer(t, s)
	got := exchange(t, addr, hexBytes(5, 1, 0, 5, 1, 0, 3, 10, "panic.test", 0, 80), 4)
	if !bytes.Equal(got, []byte{5, 0}) {
		t.Errorf("reply %x", got)
	}
	// The server still serves others.
	got = exchange(t, addr, hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "echo.test", 0, 80, "ok"), 14)
	if !bytes.HasSuffix(got, []byte("ok")) {
		t.Errorf("after panic: %x", got)
	}
}

func TestMaxConns(t *testing.T) {
	s := &Server{MaxConns: 2}
	_, addr := startServer(t, s)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.NumConns() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("third connection was served: %v", err)
	}
	c.Close()
	// Freeing a slot lets new clients in.
	held[0].Close()
	for s.NumConns() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := exchange(t, addr, hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "echo.test", 0, 80, "ok"), 14)
	if !bytes.HasSuffix(got, []byte("ok")) {
		t.Errorf("after freeing: %x", got)
	}
}

// TestHalfClose: the client closes its write side; the echo target sees
// EOF and its answer still reaches the client.
func TestHalfClose(t *testing.T) {
	_, addr := startServer(t, &Server{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	payload := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB
	c.Write(hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "echo.test", 0, 80))
	if _, err := io.ReadFull(c, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo %d bytes, want %d", len(got), len(payload))
	}
}

// noHalfConn hides CloseWrite, like a Tor stream.
type noHalfConn struct{ net.Conn }

func TestSpliceWithoutHalfClose(t *testing.T) {
	a1, a2 := net.Pipe()
	b1, b2 := net.Pipe()
	done := make(chan struct{})
	go func() { splice(a2, a2, noHalfConn{b1}); close(done) }()
	go func() { io.Copy(b2, b2) }() // echo
	a1.Write([]byte("hi"))
	buf := make([]byte, 2)
	io.ReadFull(a1, buf)
	if string(buf) != "hi" {
		t.Fatalf("got %q", buf)
	}
	a1.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("splice did not end after client close")
	}
}

func TestCloseEndsConnections(t *testing.T) {
	s := &Server{}
	_, addr := startServer(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "echo.test", 0, 80))
	io.ReadFull(c, make([]byte, 12))
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung with an open tunnel")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("client not closed: %v", err)
	}
}

func TestXNetProxyClient(t *testing.T) {
	h, addr := startServer(t, &Server{SafeSocks: true})
	for _, auth := range []*proxy.Auth{nil, {User: "carol", Password: "secret"}} {
		d, err := proxy.SOCKS5("tcp", addr, auth, proxy.Direct)
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Dial("tcp", "echo.test:7")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "hello")
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Errorf("echo %q %v", buf, err)
		}
		c.Close()
		req := h.last()
		if auth != nil && (string(req.Username) != "carol" || string(req.Password) != "secret" || req.AuthMethod != AuthUserPass) {
			t.Errorf("credentials %q %q", req.Username, req.Password)
		}
		if req.Host != "echo.test" || req.Port != 7 {
			t.Errorf("request %v", req)
		}
	}
	// An IP destination is refused under SafeSocks.
	d, _ := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if _, err := d.Dial("tcp", "127.0.0.1:7"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("SafeSocks IP dial: %v", err)
	}
}

func TestCurl(t *testing.T) {
	curl := testnet.NeedTool(t, "curl")
	// An HTTP server as the target.
	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	go func() {
		for {
			c, err := web.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\ngotor\n")
			}()
		}
	}()
	s := &Server{}
	h, addr := startServer(t, s)
	h.mu.Lock()
	h.echo = web.Addr().(*net.TCPAddr)
	h.mu.Unlock()
	webPort := web.Addr().(*net.TCPAddr).Port
	tests := []struct {
		flag, host string
		proto      Protocol
		user       string
	}{
		{"--socks5-hostname", "site.test", ProtoSOCKS5, ""},
		{"--socks5-hostname", "site.test", ProtoSOCKS5, "dave:pw"},
		{"--socks5", "127.0.0.1", ProtoSOCKS5, ""},
		{"--socks4a", "site.test", ProtoSOCKS4a, ""},
		{"--socks4", "127.0.0.1", ProtoSOCKS4, ""},
	}
	// curl through the HTTP CONNECT tunnel (-p), with isolation headers.
	tunnel, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeHTTPTunnel(tunnel)
	t.Run("http tunnel", func(t *testing.T) {
		args := []string{"-s", "--max-time", "10", "-p", "-x", "http://" + tunnel.Addr().String(),
			"--proxy-user", "erin:pw", "--proxy-header", "X-Tor-Stream-Isolation: tab7",
			fmt.Sprintf("http://site.test:%d/", webPort)}
		out, err := exec.Command(curl, args...).Output()
		if err != nil || string(out) != "gotor\n" {
			t.Fatalf("curl %v: %q %v", args, out, err)
		}
		req := h.last()
		if req.Protocol != ProtoHTTPConnect || req.Host != "site.test" || string(req.Username) != "Basic ZXJpbjpwdw==" || string(req.Password) != "tab7" {
			t.Errorf("request %+v", req)
		}
	})
	for _, tt := range tests {
		t.Run(tt.flag+" "+tt.user, func(t *testing.T) {
			args := []string{"-s", "--max-time", "10", tt.flag, addr}
			if tt.user != "" {
				args = append(args, "--proxy-user", tt.user)
			}
			args = append(args, fmt.Sprintf("http://%s:%d/", tt.host, webPort))
			out, err := exec.Command(curl, args...).Output()
			if err != nil || string(out) != "gotor\n" {
				t.Fatalf("curl %v: %q %v", args, out, err)
			}
			req := h.last()
			if req.Protocol != tt.proto || req.Host != tt.host || int(req.Port) != webPort {
				t.Errorf("request %v", req)
			}
			if tt.user != "" && string(req.Username)+":"+string(req.Password) != tt.user {
				t.Errorf("credentials %q:%q", req.Username, req.Password)
			}
		})
	}
}

func TestReplyCode(t *testing.T) {
	tests := []struct {
		err  error
		ext  bool
		want byte
	}{
		{nil, false, ReplySucceeded},
		{errors.New("x"), false, ReplyGeneralFailure},
		{fmt.Errorf("wrapped: %w", &ReplyError{Code: ReplyTTLExpired}), false, ReplyTTLExpired},
		{context.DeadlineExceeded, false, ReplyTTLExpired},
		{&ReplyError{Code: ReplyOnionIntroFailed}, false, ReplyGeneralFailure},
		{&ReplyError{Code: ReplyOnionIntroFailed}, true, ReplyOnionIntroFailed},
		{&ReplyError{Code: ReplySucceeded}, false, ReplyGeneralFailure},
	}
	for _, tt := range tests {
		if got := ReplyCode(tt.err, tt.ext); got != tt.want {
			t.Errorf("ReplyCode(%v, %v) = %#x, want %#x", tt.err, tt.ext, got, tt.want)
		}
	}
	// A refused local dial maps to connection refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	a := ln.Addr().String()
	ln.Close()
	_, err := net.Dial("tcp", a)
	if got := ReplyCode(err, false); got != ReplyConnRefused {
		t.Errorf("ECONNREFUSED -> %d", got)
	}
}

func TestRequestAddr(t *testing.T) {
	r := &Request{Host: "2001:db8::1", Port: 80}
	if r.Addr() != "[2001:db8::1]:80" {
		t.Error(r.Addr())
	}
}

func parseAddrOrZero(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

func TestHTTPTunnel(t *testing.T) {
	h := &testHandler{echo: echoServer(t)}
	s := &Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeHTTPTunnel(ln)
	defer s.Close()
	addr := ln.Addr().String()
	tests := []struct {
		name, in, wantPrefix string
		host                 string
		user, pwd            string
	}{
		{"connect", "CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\nProxy-Authorization: Basic YTpi\r\nX-Tor-Stream-Isolation: tab1\r\n\r\nearly",
			"HTTP/1.0 200 OK\r\n\r\nearly", "echo.test", "Basic YTpi", "tab1"},
		{"ipv6", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", "HTTP/1.0 200 OK", "2001:db8::1", "", ""},
		{"refused", "CONNECT refused.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.0 502 ", "refused.test", "", ""},
		{"policy", "CONNECT policy.test:443 HTTP/1.1\r\n\r\n", "HTTP/1.0 403 ", "policy.test", "", ""},
		{"get", "GET http://x/ HTTP/1.1\r\n\r\n", "HTTP/1.0 405 ", "", "", ""},
		{"no port", "CONNECT echo.test HTTP/1.1\r\n\r\n", "HTTP/1.0 400 ", "", "", ""},
		{"garbage", "\x00\x01\x02\r\n\r\n", "HTTP/1.0 400 ", "", "", ""},
		{"huge headers", "CONNECT a.test:1 HTTP/1.1\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n", "HTTP/1.0 400 ", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.mu.Lock()
			h.reqs = nil
			h.mu.Unlock()
			got := exchange(t, addr, []byte(tt.in), len(tt.wantPrefix))
			if !strings.HasPrefix(string(got), tt.wantPrefix) {
				t.Fatalf("reply %q, want %q", got, tt.wantPrefix)
			}
			req := h.last()
			if tt.host == "" {
				if req != nil {
					t.Fatalf("handler called: %v", req)
				}
				return
			}
			if req.Host != tt.host || req.Port != 443 || req.Protocol != ProtoHTTPConnect ||
				string(req.Username) != tt.user || string(req.Password) != tt.pwd {
				t.Errorf("request %+v", req)
			}
		})
	}
}

// silentHandler connects every request to a pipe nobody reads or
// closes, like an exit that never answers; CloseWrite is a no-op, as on
// a Tor stream (internal/stream).
type silentHandler struct{ testHandler }

type noopHalfConn struct{ net.Conn }

func (noopHalfConn) CloseWrite() error { return nil }

func (h *silentHandler) HandleConnect(ctx context.Context, req *Request) (net.Conn, error) {
	a, _ := net.Pipe()
	return noopHalfConn{a}, nil
}

// TestCloseWithHalfClosedTunnel: after the client half-closes, only the
// target→client copy is left, blocked on the target; Close must still end
// it.
func TestCloseWithHalfClosedTunnel(t *testing.T) {
	s := &Server{Handler: &silentHandler{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(hexBytes(5, 1, 0, 5, 1, 0, 3, 1, "x", 0, 80))
	if _, err := io.ReadFull(c, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a half-closed tunnel")
	}
}

func TestTrafficPolicy(t *testing.T) {
	type pol struct{ v4, v6, dns, onion bool } // the No* flags
	onionOnly := pol{v4: true, v6: true, dns: true}
	tests := []struct {
		name    string
		p       pol
		req     Request
		refused bool
	}{
		{"default allows hostname", pol{}, Request{Command: CmdConnect, Host: "a.com"}, false},
		{"default allows ipv4", pol{}, Request{Command: CmdConnect, Host: "1.2.3.4"}, false},
		{"NoDNSRequest hostname", pol{dns: true}, Request{Command: CmdConnect, Host: "a.com"}, true},
		{"NoDNSRequest resolve", pol{dns: true}, Request{Command: CmdResolve, Host: "a.com"}, true},
		{"NoDNSRequest resolve_ptr", pol{dns: true}, Request{Command: CmdResolvePTR, Host: "1.2.3.4"}, true},
		{"NoDNSRequest ip", pol{dns: true}, Request{Command: CmdConnect, Host: "1.2.3.4"}, false},
		{"NoDNSRequest onion", pol{dns: true}, Request{Command: CmdConnect, Host: "x.onion"}, false},
		{"NoIPv4Traffic ipv4", pol{v4: true}, Request{Command: CmdConnect, Host: "1.2.3.4"}, true},
		{"NoIPv4Traffic mapped", pol{v4: true}, Request{Command: CmdConnect, Host: "::ffff:1.2.3.4"}, true},
		{"NoIPv4Traffic ipv6", pol{v4: true}, Request{Command: CmdConnect, Host: "2001:db8::1"}, false},
		{"NoIPv4Traffic hostname", pol{v4: true}, Request{Command: CmdConnect, Host: "a.com"}, false},
		{"NoIPv6Traffic ipv6", pol{v6: true}, Request{Command: CmdConnect, Host: "2001:db8::1"}, true},
		{"NoIPv6Traffic ipv4", pol{v6: true}, Request{Command: CmdConnect, Host: "1.2.3.4"}, false},
		{"OnionTrafficOnly hostname", onionOnly, Request{Command: CmdConnect, Host: "a.com"}, true},
		{"OnionTrafficOnly ip", onionOnly, Request{Command: CmdConnect, Host: "1.2.3.4"}, true},
		{"OnionTrafficOnly onion", onionOnly, Request{Command: CmdConnect, Host: "abc.ONION."}, false},
		{"NoOnionTraffic onion", pol{onion: true}, Request{Command: CmdConnect, Host: "x.onion"}, true},
		{"NoOnionTraffic hostname", pol{onion: true}, Request{Command: CmdConnect, Host: "a.com"}, false},
	}
	for _, tt := range tests {
		s := &Server{NoIPv4Traffic: tt.p.v4, NoIPv6Traffic: tt.p.v6, NoDNSRequest: tt.p.dns, NoOnionTraffic: tt.p.onion}
		err := s.checkPolicy(&tt.req)
		if (err != nil) != tt.refused {
			t.Errorf("%s: %v", tt.name, err)
		}
		if err != nil && ReplyCode(err, false) != ReplyNotAllowed {
			t.Errorf("%s: code %d", tt.name, ReplyCode(err, false))
		}
	}
	// End to end: the handler is not called and the client gets "not allowed".
	h, addr := startServer(t, &Server{NoDNSRequest: true})
	got := exchange(t, addr, hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "echo.test", 0, 80), 4)
	if !bytes.Equal(got[:4], []byte{5, 0, 5, ReplyNotAllowed}) || h.last() != nil {
		t.Errorf("reply %x, handler %v", got, h.last())
	}
}
