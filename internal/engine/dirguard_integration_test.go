package engine

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

// Once a consensus is known, directory requests go over BEGIN_DIR to a
// primary directory guard (guard-spec §4.6), whatever relay the directory
// manager named.
func TestDirectoryRequestsUseDirectoryGuards(t *testing.T) {
	n := testnet.Shared(t)
	c := startEngine(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	primary := map[[20]byte]bool{}
	for _, id := range c.guards.PrimaryGuards() {
		primary[id] = true
	}
	// Forget the bootstrap's one-hop circuits (made before there was a
	// consensus, to the authorities), then ask for a relay that is not a
	// primary guard.
	c.dirCircs.mu.Lock()
	for id, circ := range c.dirCircs.circs {
		circ.Close()
		delete(c.dirCircs.circs, id)
	}
	c.dirCircs.mu.Unlock()
	var asked *struct{ nick string }
	nd := c.dir.NetDir()
	for _, r := range nd.Relays {
		if !primary[r.RSAID] {
			asked = &struct{ nick string }{r.Nickname}
			conn, err := c.dirDial(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET /tor/status-vote/current/consensus-microdesc HTTP/1.0\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			conn.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("directory request over BEGIN_DIR: %s", resp.Status)
			}
			break
		}
	}
	if asked == nil {
		t.Skip("every relay is a primary guard")
	}
	c.dirCircs.mu.Lock()
	defer c.dirCircs.mu.Unlock()
	if len(c.dirCircs.circs) == 0 {
		t.Fatal("no one-hop directory circuit")
	}
	for id := range c.dirCircs.circs {
		if !primary[id] {
			t.Errorf("directory circuit to $%X, not a primary guard (asked for %s)", id, asked.nick)
		}
	}
}
