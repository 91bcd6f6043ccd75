package client_test

// path-spec §2.2: no two relays of a circuit in one IPv4 /16. On a
// private network where every node has its own 127.N.0.1 address, gotor
// runs with EnforceDistinctSubnets on (its real-network default) and
// still builds circuits and carries streams.

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/internal/testnet"
)

func TestDistinctSubnetsNetwork(t *testing.T) {
	testnet.IntegrationEnabled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Options{DistinctAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	srv, err := testnet.StartHTTPServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	cfg := testConfig(t, n, filepath.Join(t.TempDir(), "data"))
	cfg.SocksPorts = cfg.SocksPorts[:1]
	cfg.EnforceDistinctSubnets = true
	c, err := client.Open(ctx, cfg, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for i := 0; i < 5; i++ {
		tok := client.WithIsolationToken(ctx, client.NewIsolationToken())
		conn, err := c.DialContext(tok, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		body := httpGet(t, conn, "127.0.0.1", "/random")
		if sha(body) != srv.SHA256 {
			t.Fatalf("stream %d: sha256 mismatch", i)
		}
	}
	checked := 0
	for _, ci := range c.Circuits() {
		seen := map[netip.Prefix]string{}
		for _, h := range ci.Path {
			ap, err := netip.ParseAddrPort(h.Addr)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := ap.Addr().Prefix(16)
			if other, dup := seen[p]; dup {
				t.Errorf("circuit %d: %s and %s share %s", ci.ID, other, h.Nickname, p)
			}
			seen[p] = h.Nickname
		}
		if len(ci.Path) == 3 {
			checked++
		}
	}
	if checked < 5 {
		t.Errorf("only %d built circuits to check", checked)
	}
	t.Logf("%d circuits, each through three distinct /16s", checked)
}
