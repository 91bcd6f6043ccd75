// Package itest holds what gotor's integration tests share: a client
// configuration for the private test network (internal/testnet), starting
// a client for one test, free ports, SOCKS dials and the circuit a
// stream uses. Test packages import it instead of keeping
// their own copies.
package itest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/testnet"
)

// Config is a client configuration for n: a fresh DataDirectory in the
// test's temporary directory, n's authorities, C tor's testing defaults
// (TestingTorNetwork) and one SOCKS port on a free port.
func Config(t testing.TB, n *testnet.Network) *config.Config {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.DataDirectory = filepath.Join(t.TempDir(), "data")
	cfg.DirAuthorities = n.DirAuthorityLines()
	cfg.UseTestingTorNetwork()
	cfg.SocksPorts = []config.PortConfig{config.DefaultPort("127.0.0.1:0")}
	return cfg
}

// Logger is where test clients log: nowhere, unless GOTOR_TEST_LOG is
// set (then stderr, at debug level).
func Logger() *slog.Logger {
	if os.Getenv("GOTOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Open starts a client with cfg (bootstrapped within two minutes) and
// stops it when the test ends. A nil logger means Logger().
func Open(t testing.TB, cfg *config.Config, logger *slog.Logger) *client.Client {
	t.Helper()
	if logger == nil {
		logger = Logger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := client.Open(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("client.Open: %v", err)
	}
	t.Logf("gotor bootstrapped in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { c.Stop() })
	return c
}

// FreePort returns a TCP port of 127.0.0.1 free right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// SOCKSDial opens target ("host:port") through the SOCKS5 port at
// socksAddr, with SOCKS credentials user:user when user is not empty
// (their only use is isolation).
func SOCKSDial(ctx context.Context, socksAddr, target, user string) (net.Conn, error) {
	var auth *proxy.Auth
	if user != "" {
		auth = &proxy.Auth{User: user, Password: user}
	}
	d, err := proxy.SOCKS5("tcp", socksAddr, auth, proxy.Direct)
	if err != nil {
		return nil, err
	}
	return d.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
}

// CircuitPath returns the id and the path of the circuit carrying conn,
// a stream that c.DialContext returned; the path must have 3 hops.
func CircuitPath(t testing.TB, c *client.Client, conn net.Conn) (uint64, []client.Hop) {
	t.Helper()
	si, ok := c.StreamOf(conn)
	if !ok {
		t.Fatal("StreamOf: stream unknown")
	}
	return si.CircuitID, Path(t, c, si.CircuitID)
}

// Path returns the 3-hop path of c's circuit id.
func Path(t testing.TB, c *client.Client, id uint64) []client.Hop {
	t.Helper()
	for _, ci := range c.Circuits() {
		if ci.ID == id {
			if len(ci.Path) != 3 {
				t.Fatalf("circuit %d has path %v, want 3 hops", ci.ID, ci.Path)
			}
			return ci.Path
		}
	}
	t.Fatalf("circuit %d not in Circuits()", id)
	return nil
}

// NodeOf maps a hop to the network's node.
func NodeOf(t testing.TB, n *testnet.Network, h client.Hop) testnet.NodeInfo {
	t.Helper()
	for _, nd := range n.Relays() {
		if strings.EqualFold(nd.Fingerprint, h.Fingerprint) {
			return nd
		}
	}
	t.Fatalf("hop %s (%s) is not a node of the network", h.Nickname, h.Fingerprint)
	return testnet.NodeInfo{}
}
