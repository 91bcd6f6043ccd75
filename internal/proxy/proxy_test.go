package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve runs handle for every connection to a new listener on
// 127.0.0.1 until the test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().String()
}

// echoServer is the destination: it says hello first, then echoes.
func echoServer(t *testing.T) string {
	return serve(t, func(c net.Conn) {
		c.Write([]byte("hello\n"))
		io.Copy(c, c)
	})
}

// splice connects the client to dst and copies both ways.
func splice(c net.Conn, dst string) {
	d, err := net.Dial("tcp", dst)
	if err != nil {
		return
	}
	defer d.Close()
	go func() { io.Copy(d, c); d.Close() }()
	io.Copy(c, d)
}

// socks5Server is a small SOCKS5 proxy (RFC 1928/1929): with user set it
// requires that username and password, else no authentication.
func socks5Server(t *testing.T, user, pass string) (addr string, seen func() string) {
	var mu sync.Mutex
	var last string
	addr = serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil || b[0] != 5 {
			return
		}
		methods := make([]byte, b[1])
		io.ReadFull(br, methods)
		want := byte(0)
		if user != "" {
			want = 2
		}
		if !strings.Contains(string(methods), string([]byte{want})) {
			c.Write([]byte{5, 0xFF})
			return
		}
		c.Write([]byte{5, want})
		if want == 2 {
			io.ReadFull(br, b[:])
			u := make([]byte, b[1])
			io.ReadFull(br, u)
			var l [1]byte
			io.ReadFull(br, l[:])
			p := make([]byte, l[0])
			io.ReadFull(br, p)
			if string(u) != user || string(p) != pass {
				c.Write([]byte{1, 1})
				return
			}
			c.Write([]byte{1, 0})
		}
		var h [4]byte
		io.ReadFull(br, h[:])
		var host string
		switch h[3] {
		case 1:
			var ip [4]byte
			io.ReadFull(br, ip[:])
			host = netip.AddrFrom4(ip).String()
		case 4:
			var ip [16]byte
			io.ReadFull(br, ip[:])
			host = netip.AddrFrom16(ip).String()
		case 3:
			var l [1]byte
			io.ReadFull(br, l[:])
			n := make([]byte, l[0])
			io.ReadFull(br, n)
			host = string(n)
		}
		var pb [2]byte
		io.ReadFull(br, pb[:])
		dst := net.JoinHostPort(host, fmt.Sprint(binary.BigEndian.Uint16(pb[:])))
		mu.Lock()
		last = dst
		mu.Unlock()
		if host == "localhost" {
			dst = net.JoinHostPort("127.0.0.1", fmt.Sprint(binary.BigEndian.Uint16(pb[:])))
		}
		if _, err := net.DialTimeout("tcp", dst, time.Second); err != nil {
			c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
			return
		}
		c.Write([]byte{5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80})
		splice(&readerConn{c, br}, dst)
	})
	return addr, func() string { mu.Lock(); defer mu.Unlock(); return last }
}

// readerConn reads through a bufio.Reader that may hold read-ahead bytes.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c *readerConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func socks4Server(t *testing.T) (addr string, userID func() string) {
	var mu sync.Mutex
	var last string
	addr = serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil || h[0] != 4 || h[1] != 1 {
			return
		}
		id, err := br.ReadString(0)
		if err != nil {
			return
		}
		mu.Lock()
		last = strings.TrimSuffix(id, "\x00")
		mu.Unlock()
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[4:8])), binary.BigEndian.Uint16(h[2:4])).String()
		if _, err := net.DialTimeout("tcp", dst, time.Second); err != nil {
			c.Write([]byte{0, 91, 0, 0, 0, 0, 0, 0})
			return
		}
		c.Write([]byte{0, 90, 0, 0, 0, 0, 0, 0})
		splice(&readerConn{c, br}, dst)
	})
	return addr, func() string { mu.Lock(); defer mu.Unlock(); return last }
}

// httpProxy is a small CONNECT proxy; with auth set it answers 407 to
// requests without "Proxy-Authorization: Basic auth".
func httpProxy(t *testing.T, auth string) (addr string, reqLine func() string) {
	var mu sync.Mutex
	var last string
	addr = serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		mu.Lock()
		last = strings.TrimSpace(line)
		mu.Unlock()
		authorized := auth == ""
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			h = strings.TrimSpace(h)
			if h == "" {
				break
			}
			if v, ok := strings.CutPrefix(h, "Proxy-Authorization: Basic "); ok && v == base64.StdEncoding.EncodeToString([]byte(auth)) {
				authorized = true
			}
		}
		if !authorized {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n")
			return
		}
		f := strings.Fields(last)
		if len(f) != 3 || f[0] != "CONNECT" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
			return
		}
		d, err := net.DialTimeout("tcp", f[1], time.Second)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		// Wait for the destination's greeting so that it arrives in the
		// same read as the response header (exercises read-ahead).
		greet := make([]byte, 6)
		io.ReadFull(d, greet)
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n"+string(greet))
		go func() { io.Copy(d, br); d.Close() }()
		io.Copy(c, d)
		d.Close()
	})
	return addr, func() string { mu.Lock(); defer mu.Unlock(); return last }
}

// roundTrip checks that conn reaches the echo server.
func roundTrip(t *testing.T, conn net.Conn) {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	if l, err := br.ReadString('\n'); err != nil || l != "hello\n" {
		t.Fatalf("greeting %q, %v", l, err)
	}
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := br.ReadString('\n'); err != nil || l != "ping\n" {
		t.Fatalf("echo %q, %v", l, err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSOCKS5(t *testing.T) {
	dst := echoServer(t)
	addr, seen := socks5Server(t, "", "")
	conn, err := (&SOCKS5{Addr: addr}).DialContext(ctx(t), "tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn)
	if seen() != dst {
		t.Errorf("proxy saw %q, want %q", seen(), dst)
	}
	// A name goes to the proxy unresolved (ATYP 3).
	_, port, _ := net.SplitHostPort(dst)
	conn, err = (&SOCKS5{Addr: addr}).DialContext(ctx(t), "tcp", "localhost:"+port)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn)
	if seen() != "localhost:"+port {
		t.Errorf("proxy saw %q", seen())
	}
}

func TestSOCKS5Auth(t *testing.T) {
	dst := echoServer(t)
	addr, _ := socks5Server(t, "alice", "s3cret")
	conn, err := (&SOCKS5{Addr: addr, Username: "alice", Password: "s3cret"}).DialContext(ctx(t), "tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn)

	var pe *Error
	_, err = (&SOCKS5{Addr: addr, Username: "alice", Password: "wrong"}).DialContext(ctx(t), "tcp", dst)
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "username/password rejected") {
		t.Errorf("wrong password: %v", err)
	}
	_, err = (&SOCKS5{Addr: addr}).DialContext(ctx(t), "tcp", dst)
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "requires authentication") {
		t.Errorf("no credentials: %v", err)
	}
	_, err = (&SOCKS5{Addr: addr, Username: strings.Repeat("u", 256), Password: "p"}).DialContext(ctx(t), "tcp", dst)
	if err == nil || !strings.Contains(err.Error(), "1 to 255") {
		t.Errorf("256-byte username: %v", err)
	}
}

func TestSOCKS5Refused(t *testing.T) {
	addr, _ := socks5Server(t, "", "")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	_, err := (&SOCKS5{Addr: addr}).DialContext(ctx(t), "tcp", closed)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != 5 || !strings.Contains(err.Error(), "connection refused (reply 5)") {
		t.Errorf("closed destination: %v", err)
	}
	if strings.Contains(err.Error(), closed) {
		t.Errorf("error names the destination: %v", err)
	}
	// No proxy listening.
	_, err = (&SOCKS5{Addr: closed}).DialContext(ctx(t), "tcp", "192.0.2.1:443")
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "cannot connect to the proxy") {
		t.Errorf("no proxy: %v", err)
	}
	if _, err := (&SOCKS5{Addr: addr}).DialContext(ctx(t), "udp", "192.0.2.1:53"); err == nil {
		t.Error("udp accepted")
	}
	if _, err := (&SOCKS5{Addr: addr}).DialContext(ctx(t), "tcp", "192.0.2.1"); err == nil {
		t.Error("destination without port accepted")
	}
}

// Hostile or broken servers: clear errors, no hang past the context.
func TestHostileServers(t *testing.T) {
	script := func(reply []byte) string {
		return serve(t, func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			io.Copy(io.Discard, c) // read whatever the client sends first
			c.Write(reply)
		})
	}
	silent := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	cases := []struct {
		name string
		dial func(context.Context) error
		want string
	}{
		{"socks5 not socks", func(ctx context.Context) error {
			_, err := (&SOCKS5{Addr: script([]byte("HTTP/1.0 400 Bad\r\n\r\n"))}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "not a SOCKS5 server"},
		{"socks5 unoffered method", func(ctx context.Context) error {
			_, err := (&SOCKS5{Addr: script([]byte{5, 2})}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "not offered"},
		{"socks5 short reply", func(ctx context.Context) error {
			_, err := (&SOCKS5{Addr: script([]byte{5, 0, 5, 0})}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "reading CONNECT reply"},
		{"socks5 bad atyp", func(ctx context.Context) error {
			_, err := (&SOCKS5{Addr: script([]byte{5, 0, 5, 0, 0, 9})}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "bad address type 9"},
		{"socks5 unknown code", func(ctx context.Context) error {
			_, err := (&SOCKS5{Addr: script([]byte{5, 0, 5, 77, 0, 1, 0, 0, 0, 0, 0, 0})}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "unknown error (reply 77)"},
		{"socks5 silent", func(ctx context.Context) error {
			_, err := (&SOCKS5{Addr: silent}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "interrupted"},
		{"socks4 bad version", func(ctx context.Context) error {
			_, err := (&SOCKS4{Addr: script([]byte{4, 90, 0, 0, 0, 0, 0, 0})}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "bad reply version 4"},
		{"socks4 rejected", func(ctx context.Context) error {
			_, err := (&SOCKS4{Addr: script([]byte{0, 92, 0, 0, 0, 0, 0, 0})}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "identd (result 92)"},
		{"https garbage", func(ctx context.Context) error {
			_, err := (&HTTPS{Addr: script([]byte("SSH-2.0-OpenSSH\r\n"))}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "not an HTTP response"},
		{"https long header", func(ctx context.Context) error {
			_, err := (&HTTPS{Addr: script([]byte("HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n"))}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "longer than"},
		{"https many headers", func(ctx context.Context) error {
			_, err := (&HTTPS{Addr: script([]byte("HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n"))}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "more than 64 header lines"},
		{"https silent", func(ctx context.Context) error {
			_, err := (&HTTPS{Addr: silent}).DialContext(ctx, "tcp", "192.0.2.1:1")
			return err
		}, "interrupted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := c.dial(ctx)
			var pe *Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v; want a *proxy.Error containing %q", err, c.want)
			}
		})
	}
}

func TestSOCKS4(t *testing.T) {
	dst := echoServer(t)
	addr, userID := socks4Server(t)
	conn, err := (&SOCKS4{Addr: addr, UserID: "cert=x;iat-mode=0"}).DialContext(ctx(t), "tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn)
	if userID() != "cert=x;iat-mode=0" {
		t.Errorf("USERID %q", userID())
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	_, err = (&SOCKS4{Addr: addr}).DialContext(ctx(t), "tcp", closed)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != 91 {
		t.Errorf("refused: %v", err)
	}
	for _, bad := range []string{"[::1]:80", "localhost:80", "127.0.0.1:0"} {
		if _, err := (&SOCKS4{Addr: addr}).DialContext(ctx(t), "tcp", bad); !errors.As(err, &pe) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestHTTPS(t *testing.T) {
	dst := echoServer(t)
	addr, reqLine := httpProxy(t, "")
	conn, err := (&HTTPS{Addr: addr}).DialContext(ctx(t), "tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn) // the greeting came with the response header
	if reqLine() != "CONNECT "+dst+" HTTP/1.0" {
		t.Errorf("request %q", reqLine())
	}
}

func TestHTTPSAuth(t *testing.T) {
	dst := echoServer(t)
	addr, reqLine := httpProxy(t, "bob:pa:ss")
	conn, err := (&HTTPS{Addr: addr, Authenticator: "bob:pa:ss"}).DialContext(ctx(t), "tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn)
	if reqLine() != "CONNECT "+dst+" HTTP/1.1" {
		t.Errorf("request %q", reqLine())
	}
	var pe *Error
	_, err = (&HTTPS{Addr: addr}).DialContext(ctx(t), "tcp", dst)
	if !errors.As(err, &pe) || pe.Code != 407 || !strings.Contains(err.Error(), "wants credentials") {
		t.Errorf("no credentials: %v", err)
	}
	_, err = (&HTTPS{Addr: addr, Authenticator: "bob:wrong"}).DialContext(ctx(t), "tcp", dst)
	if !errors.As(err, &pe) || pe.Code != 407 || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("wrong credentials: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	_, err = (&HTTPS{Addr: addr, Authenticator: "bob:pa:ss"}).DialContext(ctx(t), "tcp", closed)
	if !errors.As(err, &pe) || pe.Code != 502 {
		t.Errorf("unreachable destination: %v", err)
	}
	if _, err := (&HTTPS{Addr: addr}).DialContext(ctx(t), "tcp", "x:1\r\nEvil: 1"); err == nil {
		t.Error("header injection accepted")
	}
}

// A context cancelled mid-handshake ends the dial at once.
func TestCancel(t *testing.T) {
	silent := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	c, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := (&SOCKS5{Addr: silent}).DialContext(c, "tcp", "192.0.2.1:1")
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dial did not end after cancel")
	}
}

func TestOptions(t *testing.T) {
	dst := echoServer(t)
	s5, _ := socks5Server(t, "u", "p")
	s4, _ := socks4Server(t)
	h, _ := httpProxy(t, "a:b")
	for _, o := range []Options{
		{Socks5Proxy: s5, Socks5ProxyUsername: "u", Socks5ProxyPassword: "p"},
		{Socks4Proxy: s4},
		{HTTPSProxy: h, HTTPSProxyAuthenticator: "a:b"},
	} {
		d, err := o.Dialer()
		if err != nil || d == nil {
			t.Fatalf("%+v: %v", o, err)
		}
		conn, err := d(ctx(t), "tcp", dst)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		roundTrip(t, conn)
	}
	if d, err := (Options{}).Dialer(); d != nil || err != nil {
		t.Errorf("no proxy: %v %v", d != nil, err)
	}
	bad := map[Options]string{
		{Socks4Proxy: "a", Socks5Proxy: "b"}:                                                        "more than one proxy type",
		{Socks5Proxy: "a", Socks5ProxyUsername: "u"}:                                                "together",
		{Socks5Proxy: "a", Socks5ProxyPassword: "p"}:                                                "together",
		{Socks5Proxy: "a", Socks5ProxyUsername: strings.Repeat("u", 256), Socks5ProxyPassword: "p"}: "between 1 and 255",
		{Socks5ProxyUsername: "u", Socks5ProxyPassword: "p"}:                                        "without Socks5Proxy",
		{HTTPSProxyAuthenticator: "a:b"}:                                                            "without HTTPSProxy",
		{HTTPSProxy: "h", HTTPSProxyAuthenticator: "nocolon"}:                                       "USERNAME:PASSWORD",
		{HTTPSProxy: "h", HTTPSProxyAuthenticator: "a:" + strings.Repeat("b", 600)}:                 "too long",
		{Socks5Proxy: "host:99999"}:                                                                 "bad port",
		{HTTPSProxy: "a:b:c"}:                                                                       "IPv6 address in brackets",
		{Socks4Proxy: "http://x"}:                                                                   "bad port",
		{Socks4Proxy: "a b"}:                                                                        "HOST[:PORT]",
	}
	for o, want := range bad {
		if _, err := o.Dialer(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", o, err, want)
		}
	}
}

func TestPTProxyURI(t *testing.T) {
	cases := map[Options]string{
		{}:                              "",
		{Socks4Proxy: "192.0.2.1"}:      "socks4a://192.0.2.1:1080",
		{Socks5Proxy: "192.0.2.1:9050"}: "socks5://192.0.2.1:9050",
		{Socks5Proxy: "::1", Socks5ProxyUsername: "u@x", Socks5ProxyPassword: "p:w"}: "socks5://u%40x:p%3Aw@[::1]:1080",
		{HTTPSProxy: "proxy.example"}:                                      "http://proxy.example:443",
		{HTTPSProxy: "[2001:db8::1]:8080", HTTPSProxyAuthenticator: "a:b"}: "http://a:b@[2001:db8::1]:8080",
		{Socks5Proxy: "192.0.2.1:0"}:                                       "socks5://192.0.2.1:1080",
	}
	for o, want := range cases {
		if got := o.PTProxyURI(); got != want {
			t.Errorf("%+v: %q, want %q", o, got, want)
		}
	}
}
