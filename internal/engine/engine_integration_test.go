package engine

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/onion/service"
	"github.com/gotor/gotor/internal/testnet"
)

// With several control listeners and CookieAuthentication, each accepts
// the one cookie in the cookie file (every listener used to write its
// own, so only the last one's matched the file).
func TestCookieSharedByControlListeners(t *testing.T) {
	n := testnet.Shared(t)
	cfg := config.DefaultConfig()
	cfg.DataDirectory = filepath.Join(t.TempDir(), "data")
	cfg.DirAuthorities = n.DirAuthorityLines()
	cfg.UseTestingTorNetwork()
	cfg.SocksPorts = nil
	cfg.CookieAuthentication = true
	sock := filepath.Join(t.TempDir(), "control.sock")
	cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}, {Addr: "127.0.0.1:0"}, {Unix: sock}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(cfg, nil)
	if err == nil {
		err = c.Start(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cookie, err := os.ReadFile(filepath.Join(cfg.DataDirectory, "control_auth_cookie"))
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.controlAddrs()
	if len(addrs) != 3 {
		t.Fatalf("%d control listeners, want 3: %v", len(addrs), addrs)
	}
	for _, a := range addrs {
		conn, err := net.Dial(a.Network(), a.String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "AUTHENTICATE %s\r\n", hex.EncodeToString(cookie))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.HasPrefix(line, "250") {
			t.Errorf("listener %s: AUTHENTICATE with the file's cookie: %q %v", a, line, err)
		}
	}
}

// Circuits to an HSDir or an introduction point, whose last relay someone
// else chose, have 4 hops; a rendezvous circuit, whose point we chose, 3
// (C tor route_len_for_purpose; issue 17 item 4). Service circuits: 4.
func TestOnionCircuitLengths(t *testing.T) {
	n := testnet.Shared(t)
	c := startEngine(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := c.dir.NetDir()
	var last *netdir.Relay
	for _, r := range dir.Relays {
		if r.IsUsable() && !r.Flags.Has(netdir.FlagGuard) {
			last = r
			break
		}
	}
	if last == nil {
		last = dir.Relays[len(dir.Relays)-1]
	}
	for _, tc := range []struct {
		purpose onion.Purpose
		hops    int
	}{{onion.PurposeHSDir, 4}, {onion.PurposeIntro, 4}, {onion.PurposeRend, 3}} {
		circ, err := onionBuilder{c}.BuildCircuit(ctx, onion.Target{Relay: last}, tc.purpose)
		if err != nil {
			t.Fatalf("purpose %d: %v", tc.purpose, err)
		}
		if got := circ.(onionCirc).NumHops(); got != tc.hops {
			t.Errorf("purpose %d: %d hops, want %d", tc.purpose, got, tc.hops)
		}
		circ.Close()
	}
	sc, err := serviceNet{c}.BuildCircuit(ctx, service.CircuitRequest{Purpose: service.PurposeIntro,
		Hops: service.ServiceCircuitHops, Last: circuit.TargetFromRelay(last), Relay: last})
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.NumHops(); got != 4 {
		t.Errorf("service circuit: %d hops, want 4", got)
	}
	sc.Close()
}
