package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/gotor/gotor/client"
)

// ExitNodes (torrc syntax, a $fingerprint) restricts every exit circuit
// to that exit; ExcludeNodes keeps a relay out of every circuit.
func TestExitNodesAndExcludeNodes(t *testing.T) {
	_, n, srv := shared(t)
	exits := n.Exits()
	want, excluded := exits[0], exits[1]
	var middle string
	for _, r := range n.Relays() {
		if !r.IsExit && !r.IsAuthority {
			middle = r.Fingerprint
			break
		}
	}
	cfg := testConfig(t, n)
	cfg.SocksPorts = cfg.SocksPorts[:1]
	cfg.ExitNodes = []string{"$" + want.Fingerprint}
	cfg.ExcludeNodes = []string{"$" + middle}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := itest.Open(t, cfg, nil)
	for i := 0; i < 4; i++ {
		conn, err := c.DialContext(client.WithIsolationToken(ctx, client.NewIsolationToken()), "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
		if err != nil {
			t.Fatal(err)
		}
		httpGet(t, conn, "127.0.0.1", "/")
	}
	n3 := 0
	for _, ci := range c.Circuits() {
		if len(ci.Path) != 3 {
			continue
		}
		n3++
		if last := ci.Path[2]; last.Fingerprint != want.Fingerprint {
			t.Errorf("circuit %d exits at %s (%s), not the ExitNodes relay %s", ci.ID, last.Nickname, last.Fingerprint, want.Nickname)
		}
		for _, h := range ci.Path {
			if h.Fingerprint == middle {
				t.Errorf("circuit %d uses the excluded relay %s", ci.ID, h.Nickname)
			}
			if h.Fingerprint == excluded.Fingerprint && h == ci.Path[2] {
				t.Errorf("circuit %d exits at %s", ci.ID, excluded.Nickname)
			}
		}
	}
	if n3 < 4 {
		t.Fatalf("only %d circuits to check", n3)
	}
}
