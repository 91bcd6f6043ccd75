package client_test

// path-spec §2.2: no two relays of a circuit in one IPv4 /16. The client
// package's network has every node on its own 127.N.0.1 address except
// one pair, the first exit and the relay before it, which share a /16
// (testnet.SharedSubnetPair). A client whose every circuit ends at that
// exit must never pick its neighbour as guard or middle.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/internal/itest"
)

func TestDistinctSubnets(t *testing.T) {
	_, n, srv := shared(t)
	var exit, neighbour string
	byPrefix := map[netip.Prefix][]string{}
	for _, nd := range n.Relays() {
		a := netip.MustParseAddr(nd.Address)
		p, _ := a.Prefix(16)
		byPrefix[p] = append(byPrefix[p], nd.Nickname)
		if nd.IsExit && strings.HasSuffix(nd.Address, ".1.1") {
			exit = nd.Nickname
		}
	}
	for _, nicks := range byPrefix {
		if len(nicks) == 2 {
			neighbour = nicks[0]
			if neighbour == exit {
				neighbour = nicks[1]
			}
		}
	}
	if exit == "" || neighbour == "" {
		t.Fatalf("the network has no exit sharing a /16 with a relay: %v", byPrefix)
	}
	cfg := testConfig(t, n)
	cfg.SocksPorts = nil
	cfg.ExitNodes = []string{exit}
	cfg.EntryNodes = nil
	c := itest.Open(t, cfg, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const streams = 16 // a broken rule picks the neighbour as middle in about 1 in 4
	for i := 0; i < streams; i++ {
		tok := client.WithIsolationToken(ctx, client.NewIsolationToken())
		conn, err := c.DialContext(tok, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if _, path := itest.CircuitPath(t, c, conn); path[2].Nickname != exit {
			t.Fatalf("stream %d left through %s, not the ExitNodes exit %s", i, path[2].Nickname, exit)
		}
		if body := httpGet(t, conn, "127.0.0.1", "/"); len(body) == 0 {
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
	if checked < streams {
		t.Errorf("only %d built circuits to check, want %d", checked, streams)
	}
	t.Logf("%d circuits through %s, none through its /16 neighbour %s", checked, exit, neighbour)
}
