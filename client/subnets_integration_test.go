package client_test

// path-spec §2.2: no two relays of a circuit in one IPv4 /16. The client
// package's shared network has every node on its own 127.N.0.1 address,
// and gotor runs with EnforceDistinctSubnets on (its real-network
// default): circuits still build and carry streams, and none breaks the
// rule.

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gotor/gotor/client"
)

func TestDistinctSubnets(t *testing.T) {
	c, _, srv := shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < 5; i++ {
		tok := client.WithIsolationToken(ctx, client.NewIsolationToken())
		conn, err := c.DialContext(tok, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		body := httpGet(t, conn, "127.0.0.1", "/")
		if len(body) == 0 {
			t.Fatalf("stream %d: empty body", i)
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
