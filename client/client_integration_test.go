package client_test

// End-to-end tests of gotor against the private network of real C tor
// relays (internal/testnet): bootstrap, SOCKS, the Go API.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

// The client package's shared network puts every node on its own
// 127.N.0.1 address (its own /16), so these tests run with
// EnforceDistinctSubnets on, as on the real network; the cmd/gotor and
// examples tests use the one-address network with TestingTorNetwork's
// defaults.
func TestMain(m *testing.M) {
	testnet.Main(m, testnet.Options{DistinctAddresses: true, SharedSubnetPair: true})
}

var (
	sharedOnce   sync.Once
	sharedClient *client.Client
	sharedErr    error
	sharedHTTP   *testnet.HTTPServer
)

// testConfig is a gotor config for the shared network, with a SOCKS port
// on a free port.
func testConfig(t testing.TB, n *testnet.Network) *config.Config {
	t.Helper()
	cfg := itest.Config(t, n)
	cfg.EnforceDistinctSubnets = true
	// Port 0: C tor's defaults. Port 1: destination isolation (the
	// design's example 1). Port 2: per-application client-port isolation
	// (example 3).
	dest := config.DefaultPort("127.0.0.1:0")
	dest.IsolateDestAddr, dest.IsolateDestPort = true, true
	perApp := config.DefaultPort("127.0.0.1:0")
	perApp.IsolateClientPort = true
	perApp.ExtendedErrors = true
	cfg.SocksPorts = []config.PortConfig{config.DefaultPort("127.0.0.1:0"), dest, perApp}
	return cfg
}

// shared returns one bootstrapped gotor client for the package's tests.
func shared(t *testing.T) (*client.Client, *testnet.Network, *testnet.HTTPServer) {
	t.Helper()
	n := testnet.Shared(t)
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gotor-client-test-")
		if err != nil {
			sharedErr = err
			return
		}
		cfg := testConfig(t, n)
		cfg.DataDirectory = filepath.Join(dir, "data") // outlives the first test
		c, err := client.New(cfg, itest.Logger())
		if err != nil {
			sharedErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		start := time.Now()
		if err := c.Start(ctx); err != nil {
			sharedErr = err
			return
		}
		fmt.Printf("gotor bootstrapped in %v\n", time.Since(start).Round(time.Millisecond))
		sharedClient = c
		sharedHTTP, sharedErr = testnet.StartHTTPServer(10 << 20)
	})
	if sharedErr != nil {
		t.Fatalf("shared gotor client: %v", sharedErr)
	}
	return sharedClient, n, sharedHTTP
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func httpGet(t *testing.T, conn net.Conn, host, path string) []byte {
	t.Helper()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host)
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	i := strings.Index(string(raw), "\r\n\r\n")
	if i < 0 {
		t.Fatalf("no HTTP header in %d bytes", len(raw))
	}
	return raw[i+4:]
}

func TestSOCKSDownload10MiB(t *testing.T) {
	c, _, srv := shared(t)
	d, err := proxy.SOCKS5("tcp", c.SocksAddrs()[0], nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	if err != nil {
		t.Fatalf("SOCKS dial: %v", err)
	}
	body := httpGet(t, conn, "127.0.0.1", "/random")
	el := time.Since(start)
	if sha(body) != srv.SHA256 {
		t.Fatalf("got %d bytes, sha256 mismatch", len(body))
	}
	t.Logf("10 MiB through gotor SOCKS in %v (%.1f MiB/s)", el.Round(time.Millisecond), 10/el.Seconds())
}

func TestDialContext(t *testing.T) {
	c, _, srv := shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	if err != nil {
		t.Fatalf("DialContext: %v", err)
	}
	body := httpGet(t, conn, "127.0.0.1", "/")
	if !strings.Contains(string(body), "hello") {
		t.Fatalf("unexpected body %q", body)
	}
}

func TestConnectRefusedReason(t *testing.T) {
	c, _, _ := shared(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.DialContext(ctx, "tcp", addr)
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	// The private network's C tor 0.4.9 exits answer a refused connect
	// with RELAY_END reason MISC (seen here), which the client reports as
	// a closed stream naming the reason.
	if !errors.Is(err, client.ErrStreamClosed) || !strings.Contains(err.Error(), "MISC") {
		t.Fatalf("closed port: %v, want kind %v with the exit's reason MISC", err, client.ErrStreamClosed)
	}
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Addr != addr {
		t.Fatalf("closed port: %v is not a *client.Error naming %s", err, addr)
	}
}

func TestHTTPTunnelPort(t *testing.T) {
	n := testnet.Shared(t)
	cfg := testConfig(t, n)
	cfg.SocksPorts = nil
	cfg.HTTPTunnelPorts = []config.PortConfig{config.DefaultPort("127.0.0.1:0")}
	c := itest.Open(t, cfg, nil)
	srv, err := testnet.StartHTTPServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tunnel := c.HTTPTunnelAddrs()[0]
	connect := func(isolation string) (net.Conn, uint64) {
		conn, err := net.Dial("tcp", tunnel)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tor-Stream-Isolation: %s\r\n\r\n", srv.Port, isolation)
		buf := make([]byte, 0, 256)
		one := make([]byte, 1)
		for !strings.HasSuffix(string(buf), "\r\n\r\n") {
			if _, err := conn.Read(one); err != nil {
				t.Fatalf("CONNECT reply: %v (%q)", err, buf)
			}
			buf = append(buf, one[0])
		}
		if !strings.Contains(string(buf), " 200 ") {
			t.Fatalf("CONNECT reply %q", buf)
		}
		src := conn.LocalAddr().String()
		for _, s := range c.Streams() {
			if s.Source == src {
				return conn, s.CircuitID
			}
		}
		t.Fatalf("stream from %s not listed", src)
		return nil, 0
	}
	a, ca := connect("app-a")
	b, cb := connect("app-b")
	if ca == cb {
		t.Errorf("X-Tor-Stream-Isolation app-a and app-b share circuit %d", ca)
	}
	body := httpGet(t, a, "127.0.0.1", "/random")
	b.Close()
	if sha(body) != srv.SHA256 {
		t.Fatalf("1 MiB through the HTTP tunnel: sha256 mismatch (%d bytes)", len(body))
	}
}

// When the application closes its SOCKS connection, gotor ends the stream
// (as C tor does), instead of keeping it open at the exit.
func TestSOCKSCloseEndsStream(t *testing.T) {
	c, _, srv := shared(t)
	before := len(c.Streams())
	var conns []net.Conn
	for i := 0; i < 20; i++ {
		d, _ := proxy.SOCKS5("tcp", c.SocksAddrs()[0], nil, proxy.Direct)
		conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	if n := len(c.Streams()); n < before+20 {
		t.Fatalf("%d streams open, want at least %d", n, before+20)
	}
	for _, conn := range conns {
		conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Streams()) > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(c.Streams()); n > before {
		t.Fatalf("%d streams still open 10 s after their applications closed", n-before)
	}
}
