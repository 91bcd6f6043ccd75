package client_test

// Stream isolation observed from outside the pool: each open stream's
// circuit as the client reports it (Client.Streams), on the private
// network of real C tor relays.

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"golang.org/x/net/proxy"

	"github.com/gotor/gotor/client"
)

// openVia opens a SOCKS5 stream through socksAddr (with credentials if
// user != "") to the test server and returns it still open.
func openVia(t *testing.T, socksAddr, user, pass, target string) net.Conn {
	t.Helper()
	var auth *proxy.Auth
	if user != "" {
		auth = &proxy.Auth{User: user, Password: pass}
	}
	d, err := proxy.SOCKS5("tcp", socksAddr, auth, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatalf("dial %s as %q: %v", target, user, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// circuitOf returns the circuit the client put the stream from conn's
// local address on.
func circuitOf(t *testing.T, c *client.Client, conn net.Conn) uint64 {
	t.Helper()
	src := conn.LocalAddr().String()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Streams() {
			if s.Source == src {
				return s.CircuitID
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no stream from %s in %+v", src, c.Streams())
	return 0
}

func TestIsolationBySOCKSCredentials(t *testing.T) {
	c, _, srv := shared(t)
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	socks := c.SocksAddrs()[0]
	alice1 := openVia(t, socks, "alice", "x", target)
	alice2 := openVia(t, socks, "alice", "x", target)
	bob := openVia(t, socks, "bob", "x", target)
	a1, a2, b := circuitOf(t, c, alice1), circuitOf(t, c, alice2), circuitOf(t, c, bob)
	if a1 != a2 {
		t.Errorf("two streams of alice used circuits %d and %d; want one", a1, a2)
	}
	if a1 == b {
		t.Errorf("alice and bob share circuit %d", a1)
	}
	// Same user, other password: a different identity in C tor's rules.
	alice3 := openVia(t, socks, "alice", "y", target)
	if circuitOf(t, c, alice3) == a1 {
		t.Errorf("alice:y shares alice:x's circuit %d", a1)
	}
	t.Logf("alice: circuit %d (twice), bob: circuit %d", a1, b)
}

func TestIsolationByDestination(t *testing.T) {
	c, _, srv := shared(t)
	socks := c.SocksAddrs()[1] // IsolateDestAddr IsolateDestPort
	byIP := openVia(t, socks, "", "", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	byIP2 := openVia(t, socks, "", "", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	byName := openVia(t, socks, "", "", fmt.Sprintf("gotor-test.example:%d", srv.Port))
	x, y, z := circuitOf(t, c, byIP), circuitOf(t, c, byIP2), circuitOf(t, c, byName)
	if x != y {
		t.Errorf("same destination used circuits %d and %d", x, y)
	}
	if x == z {
		t.Errorf("destinations 127.0.0.1 and gotor-test.example share circuit %d", x)
	}
	// And the default port, without destination isolation, lets both
	// destinations share a circuit.
	def := c.SocksAddrs()[0]
	d1 := openVia(t, def, "", "", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	d2 := openVia(t, def, "", "", fmt.Sprintf("gotor-test.example:%d", srv.Port))
	if a, b := circuitOf(t, c, d1), circuitOf(t, c, d2); a != b {
		t.Errorf("without IsolateDestAddr, two destinations used circuits %d and %d", a, b)
	}
	// Listeners never share circuits with each other (session groups).
	if circuitOf(t, c, d1) == x {
		t.Errorf("streams of two SocksPorts share circuit %d", x)
	}
}

func TestIsolationByClientPort(t *testing.T) {
	c, _, srv := shared(t)
	socks := c.SocksAddrs()[2] // IsolateClientPort
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	a := openVia(t, socks, "", "", target)
	b := openVia(t, socks, "", "", target)
	if x, y := circuitOf(t, c, a), circuitOf(t, c, b); x == y {
		t.Errorf("connections from source ports %s and %s share circuit %d", a.LocalAddr(), b.LocalAddr(), x)
	}
}

func TestNewIdentity(t *testing.T) {
	c, _, srv := shared(t)
	socks := c.SocksAddrs()[0]
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	before := openVia(t, socks, "carol", "x", target)
	old := circuitOf(t, c, before)
	c.NewIdentity()
	after := openVia(t, socks, "carol", "x", target)
	if now := circuitOf(t, c, after); now == old {
		t.Errorf("after NEWNYM a new stream reused circuit %d", old)
	}
}

func TestIsolationTokens(t *testing.T) {
	c, _, srv := shared(t)
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t1, t2 := client.NewIsolationToken(), client.NewIsolationToken()
	dial := func(tok client.IsolationToken) uint64 {
		conn, err := c.DialContext(client.WithIsolationToken(ctx, tok), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		s, ok := c.StreamOf(conn)
		if !ok {
			t.Fatal("stream not listed")
		}
		return s.CircuitID
	}
	a, b, a2 := dial(t1), dial(t2), dial(t1)
	if a == b {
		t.Errorf("two isolation tokens share circuit %d", a)
	}
	if a != a2 {
		t.Errorf("one token used circuits %d and %d", a, a2)
	}
}

// IsolationLevel "none" with IsolateSOCKSAuth false turns isolation off,
// SOCKS ports included: different users then share a circuit.
func TestIsolationOff(t *testing.T) {
	_, n, srv := shared(t)
	cfg := testConfig(t, n)
	cfg.IsolationLevel = "none"
	cfg.IsolateSOCKSAuth = false
	cfg.SocksPorts = cfg.SocksPorts[:1]
	c := itest.Open(t, cfg, nil)
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	a := openVia(t, c.SocksAddrs()[0], "alice", "x", target)
	b := openVia(t, c.SocksAddrs()[0], "bob", "y", target)
	if x, y := circuitOf(t, c, a), circuitOf(t, c, b); x != y {
		t.Errorf("with isolation off, alice and bob used circuits %d and %d", x, y)
	}
}

// The design's example 1, as written: IsolationLevel "destination" with
// IsolateDestinations and prebuilding, on a plain SocksPort.
func TestDesignExampleDestinationIsolation(t *testing.T) {
	_, n, srv := shared(t)
	cfg := testConfig(t, n)
	cfg.SocksPorts = cfg.SocksPorts[:1] // C tor's default flags only
	cfg.IsolationLevel = "destination"
	cfg.IsolateDestinations = true
	cfg.EnableCircuitPrebuilding = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(cfg, itest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	socks := c.SocksAddrs()[0]
	a := openVia(t, socks, "", "", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	b := openVia(t, socks, "", "", fmt.Sprintf("gotor-test.example:%d", srv.Port))
	a2 := openVia(t, socks, "", "", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	x, y, x2 := circuitOf(t, c, a), circuitOf(t, c, b), circuitOf(t, c, a2)
	if x == y {
		t.Errorf("two destinations share circuit %d", x)
	}
	if x != x2 {
		t.Errorf("one destination used circuits %d and %d", x, x2)
	}
}
