package reliability

// The client's local attack surface: the SOCKS port against slow, huge
// and malformed handshakes, the control port without authentication,
// file modes in the DataDirectory, what reaches the logs at info level,
// and local DNS.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/socks"
	"github.com/gotor/gotor/internal/testnet"
)

// localClient is a gotor client on the shared network with a SOCKS port,
// an HTTP CONNECT port and a cookie-authenticated control port.
var local struct {
	once sync.Once
	c    *client.Client
	logs *logBuffer
	dir  string
	srv  *testnet.HTTPServer
	err  error
}

func localClient(t *testing.T) (*client.Client, *logBuffer, string, *testnet.HTTPServer) {
	t.Helper()
	n := testnet.Shared(t)
	local.once.Do(func() {
		dir, err := os.MkdirTemp("", "gotor-reliability-")
		if err != nil {
			local.err = err
			return
		}
		local.dir = filepath.Join(dir, "data")
		local.logs = &logBuffer{}
		cfg := itest.Config(t, n)
		cfg.DataDirectory = local.dir // outlives the first test
		cfg.HTTPTunnelPorts = []config.PortConfig{config.DefaultPort("127.0.0.1:0")}
		cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}}
		cfg.CookieAuthentication = true
		c, err := client.New(cfg, slog.New(slog.NewTextHandler(local.logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
		if err != nil {
			local.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Start(ctx); err != nil {
			local.err = err
			return
		}
		local.c = c
		local.srv, local.err = testnet.StartHTTPServer(1 << 10)
	})
	if local.err != nil {
		t.Fatalf("local client: %v", local.err)
	}
	return local.c, local.logs, local.dir, local.srv
}

// closedWithin reports whether the server closes c within limit (reading
// and discarding whatever it sends).
func closedWithin(c net.Conn, limit time.Duration) (bool, []byte) {
	c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(io.LimitReader(c, 1<<20))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, b
	}
	return true, b
}

// TestSOCKSSlowloris holds many SOCKS and HTTP CONNECT connections open
// without completing a handshake, some dripping a byte every second: the
// server closes each
// one at its handshake deadline (30 s, socks.DefaultHandshakeTimeout) no
// matter how the bytes trickle, and serves real requests meanwhile.
func TestSOCKSSlowloris(t *testing.T) {
	c, _, _, srv := localClient(t)
	addr := c.SocksAddrs()[0]
	const idle, idleHTTP, drip = 200, 50, 20
	limit := socks.DefaultHandshakeTimeout + 10*time.Second
	start := time.Now()
	var conns []net.Conn
	for i := 0; i < idle; i++ {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		cn.Write([]byte{5}) // half a greeting
		conns = append(conns, cn)
	}
	for i := 0; i < idleHTTP; i++ {
		cn, err := net.Dial("tcp", c.HTTPTunnelAddrs()[0])
		if err != nil {
			t.Fatalf("HTTP connection %d: %v", i, err)
		}
		cn.Write([]byte("CONNECT 127.0.0.1:80 HT")) // half a request line
		conns = append(conns, cn)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var dripClosed atomic.Int64
	for i := 0; i < drip; i++ {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cn.Close()
			// SOCKS4 CONNECT then a user ID that never ends (below the
			// 512-byte limit: one byte a second).
			cn.Write([]byte{4, 1, 0, 80, 127, 0, 0, 1})
			for k := 0; k < int(limit/time.Second)+5; k++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
				if _, err := cn.Write([]byte{'a'}); err != nil {
					dripClosed.Add(1)
					return
				}
			}
		}()
	}
	// Service continues meanwhile.
	if err := socksGet(addr, fmt.Sprintf("127.0.0.1:%d", srv.Port), time.Minute); err != nil {
		t.Fatalf("request during the slowloris: %v", err)
	}
	open := 0
	for _, cn := range conns {
		if ok, _ := closedWithin(cn, time.Until(start.Add(limit))); !ok {
			open++
		}
		cn.Close()
	}
	wg.Wait()
	close(stop)
	took := time.Since(start)
	t.Logf("%d idle SOCKS and %d idle HTTP CONNECT connections: %d still open at %v; %d dripping connections: %d closed by the server (after %v)",
		idle, idleHTTP, open, limit, drip, dripClosed.Load(), took.Round(time.Second))
	if open > 0 {
		t.Errorf("%d of %d half-open handshakes still open after %v", open, idle+idleHTTP, limit)
	}
	if dripClosed.Load() != drip {
		t.Errorf("only %d of %d dripping handshakes closed by the server", dripClosed.Load(), drip)
	}
}

// TestSOCKSHostileHandshakes sends oversize and malformed handshakes to
// the SOCKS and HTTP CONNECT ports: each gets an error reply or a close,
// promptly, and the port keeps serving.
func TestSOCKSHostileHandshakes(t *testing.T) {
	c, _, _, srv := localClient(t)
	addr := c.SocksAddrs()[0]
	httpAddr := c.HTTPTunnelAddrs()[0]
	huge := bytes.Repeat([]byte{'u'}, 1<<20)
	for _, tc := range []struct {
		name string
		addr string
		send []byte
	}{
		{"SOCKS4 1 MiB user ID", addr, append([]byte{4, 1, 0, 80, 127, 0, 0, 1}, huge...)},
		{"SOCKS4a 1 MiB hostname", addr, append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 'u', 0}, huge...)},
		{"SOCKS5 255 methods then junk", addr, append(append([]byte{5, 255}, bytes.Repeat([]byte{0x80}, 255)...), huge[:4096]...)},
		{"SOCKS5 255-byte user and password, then command 9", addr, append(append(append(append([]byte{5, 1, 2, 1, 255}, huge[:255]...), 255), huge[:255]...), []byte{5, 9, 0, 1, 127, 0, 0, 1, 0, 80}...)},
		{"SOCKS5 auth version 9", addr, []byte{5, 1, 2, 9, 1, 'a', 1, 'b'}},
		{"SOCKS version 6", addr, []byte{6, 1, 0}},
		{"SOCKS version 0", addr, []byte{0, 0, 0, 0}},
		{"SOCKS5 zero methods", addr, []byte{5, 0}},
		{"SOCKS5 command 9", addr, []byte{5, 1, 0, 5, 9, 0, 1, 127, 0, 0, 1, 0, 80}},
		{"SOCKS5 address type 7", addr, []byte{5, 1, 0, 5, 1, 0, 7, 1, 2, 3, 4}},
		{"SOCKS5 empty hostname", addr, []byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80}},
		{"SOCKS5 port 0", addr, []byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 0}},
		{"HTTP to the SOCKS port", addr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"HTTP CONNECT 1 MiB header", httpAddr, append([]byte("CONNECT 127.0.0.1:80 HTTP/1.1\r\nX: "), huge...)},
		{"HTTP CONNECT 1 MiB request line", httpAddr, append([]byte("CONNECT "), huge...)},
		{"HTTP GET to the CONNECT port", httpAddr, []byte("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")},
		{"binary lines to the CONNECT port", httpAddr, bytes.Repeat([]byte("\x00\xff\x16\x03\r\n"), 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cn, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer cn.Close()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the server may close before reading everything
				defer wg.Done()
				cn.SetWriteDeadline(time.Now().Add(10 * time.Second))
				cn.Write(tc.send)
			}()
			ok, reply := closedWithin(cn, 10*time.Second)
			wg.Wait()
			if !ok {
				t.Fatalf("connection still open 10 s after a hostile handshake (got %d bytes back)", len(reply))
			}
			if len(reply) > 4096 {
				t.Fatalf("reply of %d bytes", len(reply))
			}
			t.Logf("closed, reply %q", truncate(reply, 60))
		})
	}
	if err := socksGet(addr, fmt.Sprintf("127.0.0.1:%d", srv.Port), time.Minute); err != nil {
		t.Fatalf("SOCKS port no longer serves: %v", err)
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// TestControlPortRequiresAuth: with CookieAuthentication, the control
// port answers every command before AUTHENTICATE with 514 and closes, and
// refuses a wrong cookie with 515.
func TestControlPortRequiresAuth(t *testing.T) {
	c, _, _, srv := localClient(t)
	ca := c.ControlAddr()
	if ca == nil {
		t.Fatal("no control port")
	}
	for _, tc := range []struct {
		name, send, want string
	}{
		{"GETINFO before AUTHENTICATE", "GETINFO version\r\n", "514"},
		{"SIGNAL SHUTDOWN before AUTHENTICATE", "SIGNAL SHUTDOWN\r\n", "514"},
		{"SETCONF before AUTHENTICATE", "SETCONF SocksPort=1.2.3.4:9050\r\n", "514"},
		{"empty AUTHENTICATE", "AUTHENTICATE\r\n", "515"},
		{"wrong cookie", "AUTHENTICATE " + strings.Repeat("00", 32) + "\r\n", "515"},
		{"wrong password", "AUTHENTICATE \"hunter2\"\r\n", "515"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cn, err := net.Dial("tcp", ca.String())
			if err != nil {
				t.Fatal(err)
			}
			defer cn.Close()
			io.WriteString(cn, tc.send)
			io.WriteString(cn, "GETINFO version\r\n")
			ok, reply := closedWithin(cn, 10*time.Second)
			if !strings.HasPrefix(string(reply), tc.want) {
				t.Fatalf("reply %q, want %s", reply, tc.want)
			}
			if strings.Contains(string(reply), "250") {
				t.Fatalf("a command succeeded without authentication: %q", reply)
			}
			if !ok {
				t.Fatalf("connection still open after %q", reply)
			}
			t.Logf("%q", strings.TrimSpace(string(reply)))
		})
	}
	// The unauthenticated SIGNAL SHUTDOWN did not stop the client.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := fetchHello(ctx, c, srv); err != nil {
		t.Fatalf("client no longer serves after an unauthenticated SIGNAL SHUTDOWN: %v", err)
	}
}

// TestDataDirectoryModes: DataDirectory is 0700, and the files with
// secrets or history (the control cookie, the guard state, the cached
// directory) are 0600.
func TestDataDirectoryModes(t *testing.T) {
	c, _, dir, srv := localClient(t)
	if err := fetchOnce(c, srv); err != nil { // guard state written
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("DataDirectory %s mode %v, want 0700", dir, st.Mode().Perm())
	}
	want := map[string]bool{"control_auth_cookie": true, "state": true}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		delete(want, e.Name())
		if info.IsDir() {
			if info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s/ mode %v: readable by others", e.Name(), info.Mode().Perm())
			}
			continue
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
		t.Logf("%-30s %v", e.Name(), info.Mode().Perm())
	}
	for name := range want {
		t.Errorf("%s missing from the DataDirectory", name)
	}
}

// TestNoSecretsInInfoLogs sends requests with SOCKS credentials and a
// hostname, successful and failing, then checks that none of them
// appears in the client's log at info level.
func TestNoSecretsInInfoLogs(t *testing.T) {
	c, logs, _, srv := localClient(t)
	const user, pass = "reliab-user-8731", "reliab-pass-5512"
	host := testnet.DefaultTestName
	d, err := proxy.SOCKS5("tcp", c.SocksAddrs()[0], &proxy.Auth{User: user, Password: pass}, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.Dial("tcp", fmt.Sprintf("%s:%d", host, srv.Port))
	if err != nil {
		t.Fatalf("SOCKS5 with credentials and a hostname: %v", err)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host)
	conn.SetDeadline(time.Now().Add(time.Minute))
	if b, err := io.ReadAll(conn); err != nil || !bytes.Contains(b, []byte(testnet.HelloBody)) {
		t.Fatalf("fetch by name: %v %q", err, b)
	}
	conn.Close()
	// Failures: a closed port, an unresolvable name, via SOCKS and the API.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := d.Dial("tcp", fmt.Sprintf("%s:%d", host, closedPort)); err == nil {
		t.Error("connection to a closed port succeeded")
	}
	if _, err := d.Dial("tcp", "reliab-nxdomain-4411.example:80"); err == nil {
		t.Error("connection to an unknown name succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cn, err := c.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", host, closedPort)); err == nil {
		cn.Close()
		t.Error("API connection to a closed port succeeded")
	}
	// Bad handshakes are logged too (at debug); send one with a password.
	if cn, err := net.Dial("tcp", c.SocksAddrs()[0]); err == nil {
		cn.Write(append(append([]byte{5, 1, 2, 1, byte(len(user))}, user...), append([]byte{byte(len(pass))}, pass...)...))
		cn.Write([]byte{5, 9, 0, 3, byte(len(host))})
		closedWithin(cn, 5*time.Second)
		cn.Close()
	}
	out := logs.String()
	for _, secret := range []string{user, pass, host, "reliab-nxdomain-4411"} {
		if strings.Contains(out, secret) {
			i := strings.Index(out, secret)
			t.Errorf("info-level log contains %q: ...%s...", secret, out[max(0, i-200):min(len(out), i+100)])
		}
	}
	t.Logf("%d bytes of info-level log checked", len(out))
}

// TestNoLocalDNS replaces the process's resolver with one that fails the
// test if it is ever asked, then connects by hostname through the Go API,
// the SOCKS port (SOCKS5 with a name, SOCKS4a) and the HTTP CONNECT port:
// the names are resolved by the exit only.
func TestNoLocalDNS(t *testing.T) {
	c, _, _, srv := localClient(t)
	var lookups atomic.Int64
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		lookups.Add(1)
		return nil, errors.New("reliability test: local DNS is forbidden")
	}}
	defer func() { net.DefaultResolver = old }()
	host := testnet.DefaultTestName
	target := fmt.Sprintf("%s:%d", host, srv.Port)

	check := func(name string, conn net.Conn, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host)
		b, err := io.ReadAll(conn)
		if err != nil || !bytes.Contains(b, []byte(testnet.HelloBody)) {
			t.Fatalf("%s: %v %q", name, err, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.DialContext(ctx, "tcp", target)
	check("DialContext", conn, err)

	d, _ := proxy.SOCKS5("tcp", c.SocksAddrs()[0], nil, proxy.Direct)
	conn, err = d.Dial("tcp", target)
	check("SOCKS5 hostname", conn, err)

	conn, err = net.Dial("tcp", c.SocksAddrs()[0])
	if err == nil {
		req := append([]byte{4, 1, byte(srv.Port >> 8), byte(srv.Port), 0, 0, 0, 1, 0}, append([]byte(host), 0)...)
		conn.Write(req)
		rep := make([]byte, 8)
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err = io.ReadFull(conn, rep); err == nil && rep[1] != 90 {
			err = fmt.Errorf("SOCKS4a reply code %d", rep[1])
		}
	}
	check("SOCKS4a", conn, err)

	conn, err = net.Dial("tcp", c.HTTPTunnelAddrs()[0])
	if err == nil {
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(conn)
		line, rerr := br.ReadString('\n')
		for rerr == nil {
			l, e := br.ReadString('\n')
			if e != nil || l == "\r\n" {
				rerr = e
				break
			}
		}
		if rerr != nil || !strings.Contains(line, " 200") {
			err = fmt.Errorf("CONNECT: %q %v", line, rerr)
		} else {
			conn = &bufConn{Conn: conn, r: br}
		}
	}
	check("HTTP CONNECT", conn, err)

	if n := lookups.Load(); n != 0 {
		t.Fatalf("%d local DNS lookups", n)
	}
	// The trap works: a local lookup of the same name is caught.
	if _, err := net.DefaultResolver.LookupHost(context.Background(), host); err == nil || lookups.Load() == 0 {
		t.Fatalf("the resolver trap did not see a local lookup (err %v)", err)
	}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
