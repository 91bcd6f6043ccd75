package client_test

// Onion services hosted by gotor, reached by the C tor reference client
// and by gotor's own onion client on the private network.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

// ListenOnion: a Go program hosts an HTTP server reachable only as a
// .onion; the C tor client fetches 10 MiB from it intact, and so does a
// gotor client.
func TestListenOnion(t *testing.T) {
	c, n, _ := shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ln, err := c.ListenOnion(ctx, client.OnionConfig{Ports: []uint16{80}, WaitPublished: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !strings.HasSuffix(ln.Hostname(), ".onion") || ln.Addr().Network() != "onion" {
		t.Fatalf("address %v (%s)", ln.Addr(), ln.Addr().Network())
	}
	data := make([]byte, 10<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))

	ref := testnet.SharedReferenceClient(t)
	start := time.Now()
	body, err := fetchOnion(t, ref.SocksAddr(), ln.Hostname(), "/", 2*time.Minute)
	if err != nil {
		t.Fatalf("C tor client: %v", err)
	}
	if got := sha256.Sum256(body); got != sum {
		t.Fatalf("C tor client got %d bytes, sha256 %x; want %d bytes %x", len(body), got, len(data), sum)
	}
	t.Logf("C tor client fetched 10 MiB from the gotor-hosted service in %v", time.Since(start).Round(time.Millisecond))

	other := itest.Open(t, testConfig(t, n), nil)
	start = time.Now()
	body, err = fetchOnion(t, other.SocksAddrs()[0], ln.Hostname(), "/", 2*time.Minute)
	if err != nil {
		t.Fatalf("gotor client: %v", err)
	}
	if got := sha256.Sum256(body); got != sum {
		t.Fatalf("gotor client got %d bytes, want %d intact", len(body), len(data))
	}
	t.Logf("gotor client fetched 10 MiB from the gotor-hosted service in %v", time.Since(start).Round(time.Millisecond))

	// Close unpublishes: a fresh client can no longer connect.
	ln.Close()
}

// A torrc HiddenServiceDir block: gotor makes the keys in C tor's
// formats, writes hostname, and serves the mapped local port.
func TestHiddenServiceDir(t *testing.T) {
	_, n, srv := shared(t)
	dir := filepath.Join(t.TempDir(), "hs")
	cfg := testConfig(t, n)
	cfg.OnionServices = []config.OnionServiceConfig{{Dir: dir,
		Ports: []config.OnionPort{{Virtual: 80, Target: fmt.Sprintf("127.0.0.1:%d", srv.Port)}}}}
	c := itest.Open(t, cfg, nil)
	host, err := os.ReadFile(filepath.Join(dir, "hostname"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"hs_ed25519_secret_key", "hs_ed25519_public_key"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	// gotor's own onion client first: it retries until the descriptor
	// is up, where C tor would remember a failed fetch for a while.
	name := strings.TrimSpace(string(host))
	for _, who := range []struct{ name, socks string }{
		{"gotor", c.SocksAddrs()[0]}, {"C tor", testnet.SharedReferenceClient(t).SocksAddr()}} {
		body, err := fetchOnion(t, who.socks, name, "/random", 2*time.Minute)
		if err != nil {
			t.Fatalf("%s client: %v", who.name, err)
		}
		if got := sha256.Sum256(body); hex.EncodeToString(got[:]) != srv.SHA256 {
			t.Fatalf("%s client got %d bytes, not the server's file", who.name, len(body))
		}
	}
}
