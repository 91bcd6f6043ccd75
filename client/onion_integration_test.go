package client_test

// v3 onion services through gotor: a C tor process on the private
// network serves an onion service; gotor fetches from it over its SOCKS
// port (rend-spec-v3 descriptor fetch, introduction, rendezvous).

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"encoding/base32"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/net/proxy"

	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// fetchOnion fetches url through socksAddr, retrying while the service's
// descriptor is not yet published (it appears some seconds after start).
func fetchOnion(t *testing.T, socksAddr, host, path string, within time.Duration) ([]byte, error) {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", socksAddr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		conn, err := d.Dial("tcp", host+":80")
		if err == nil {
			return httpGet(t, conn, host, path), nil
		}
		last = err
		time.Sleep(2 * time.Second)
	}
	return nil, last
}

func TestOnionService(t *testing.T) {
	c, n, srv := shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc, err := n.StartOnionService(ctx, srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	start := time.Now()
	body, err := fetchOnion(t, c.SocksAddrs()[0], svc.Hostname, "/random", 2*time.Minute)
	if err != nil {
		t.Fatalf("fetching from %s: %v", svc.Hostname, err)
	}
	if sha(body) != srv.SHA256 {
		t.Fatalf("10 MiB from the onion service: sha256 mismatch (%d bytes)", len(body))
	}
	t.Logf("10 MiB from a C tor onion service through gotor, %v after the service started", time.Since(start).Round(time.Millisecond))
	// The network's authorities do not run the shared-random protocol
	// (testnet's default): gotor and the C tor service met in the
	// disaster-SRV case (internal/onion's TestIntegrationFetchWithSRV
	// runs the other).
	if sr, err := n.ConsensusSharedRandom(ctx); err != nil || sr.Current != "" || sr.Previous != "" {
		t.Fatalf("want a consensus without shared random values: %+v, %v", sr, err)
	}

	// A well-formed address of no service fails with prop 304's
	// "descriptor not found" (0xF0, on a port with ExtendedErrors), a
	// malformed one with "bad address" (0xF6): the same codes a C tor
	// client with ExtendedErrors on the same network sends. Each side's
	// reply is waited for (no time bound: speed is not asserted here).
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	absent := hscrypto.Address{PubKey: [32]byte(pub)}.Label() + ".onion"
	malformed := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion"
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	refExt := fmt.Sprintf("127.0.0.1:%d", itest.FreePort(t))
	ref, err := n.StartReferenceClientWith(rctx, "SocksPort "+refExt+" ExtendedErrors")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Stop()
	ext := c.SocksAddrs()[2] // ExtendedErrors
	for _, tc := range []struct {
		name, host string
		want       byte
	}{{"absent onion service", absent, 0xF0}, {"malformed onion address", malformed, 0xF6}} {
		t0 := time.Now()
		got := socks5Connect(t, ext, tc.host, 80)
		el := time.Since(t0)
		theirs := socks5Connect(t, refExt, tc.host, 80)
		t.Logf("%s: gotor %#x after %v, C tor %#x", tc.name, got, el.Round(time.Millisecond), theirs)
		if got != tc.want || theirs != tc.want {
			t.Errorf("%s: SOCKS5 reply gotor %#x, C tor %#x; want %#x from both", tc.name, got, theirs, tc.want)
		}
	}
}

// socks5Connect does a SOCKS5 CONNECT by hostname and returns the reply
// code.
func socks5Connect(t *testing.T, socksAddr, host string, port int) byte {
	t.Helper()
	conn, err := net.Dial("tcp", socksAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Minute))
	req := []byte{5, 1, 0, 5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = append(req, byte(port>>8), byte(port))
	conn.Write(req)
	resp := make([]byte, 4)
	if _, err := io.ReadFull(conn, resp[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, resp); err != nil {
		t.Fatalf("SOCKS5 reply: %v", err)
	}
	return resp[1]
}

func TestOnionServiceClientAuth(t *testing.T) {
	_, n, srv := shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var sk [32]byte
	rand.Read(sk[:])
	pkb, err := curve25519.X25519(sk[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := n.StartOnionService(ctx, srv.Port, [32]byte(pkb))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()

	authDir := t.TempDir()
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	line := fmt.Sprintf("%s:descriptor:x25519:%s\n", strings.TrimSuffix(svc.Hostname, ".onion"), b32.EncodeToString(sk[:]))
	if err := os.WriteFile(filepath.Join(authDir, "svc.auth_private"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, n)
	cfg.SocksPorts = cfg.SocksPorts[:1]
	cfg.ClientOnionAuthDir = authDir
	c := itest.Open(t, cfg, nil)
	body, err := fetchOnion(t, c.SocksAddrs()[0], svc.Hostname, "/", 2*time.Minute)
	if err != nil {
		t.Fatalf("with the client key: %v", err)
	}
	if !strings.Contains(string(body), "hello") {
		t.Fatalf("unexpected body %q", body)
	}
}

// A SOCKS RESOLVE of a .onion name is refused locally: the name never
// reaches an exit or its resolver (issue 17 item 8).
func TestResolveOnionRefused(t *testing.T) {
	c, n, _ := shared(t)
	name := strings.Repeat("a", 56) + ".onion"
	before := n.DNS().Queries(name)
	conn, err := net.Dial("tcp", c.SocksAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	// SOCKS5, no auth; then RESOLVE (0xF0, socks-extensions) of a domain.
	req := []byte{5, 1, 0, 5, 0xF0, 0, 3, byte(len(name))}
	req = append(append(req, name...), 0, 0)
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 4)
	if _, err := io.ReadFull(conn, reply[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, reply); err != nil {
		t.Fatal(err)
	}
	if reply[1] == 0 {
		t.Fatalf("RESOLVE %s succeeded", name)
	}
	if q := n.DNS().Queries(name) - before; q != 0 {
		t.Fatalf("the exits' resolver was asked %d times for %s", q, name)
	}
}
