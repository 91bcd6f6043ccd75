package testnet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"
)

// socksHTTPClient is an HTTP client that connects through the SOCKS5 proxy
// at socksAddr. Host names are passed to the proxy unresolved, so the exit
// resolves them.
func socksHTTPClient(t *testing.T, socksAddr string) *http.Client {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", socksAddr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	cd := d.(proxy.ContextDialer)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:              nil,
			DialContext:        cd.DialContext,
			DisableCompression: true,
		},
		Timeout: 2 * time.Minute,
	}
}

func TestIntegrationNetworkLayout(t *testing.T) {
	n := Shared(t)
	t.Logf("time to ready: %v", n.ReadyAfter.Round(time.Millisecond))
	all := n.Relays()
	if len(all) != 8 || len(n.Authorities()) != 3 || len(n.Exits()) != 2 {
		t.Fatalf("got %d nodes, %d authorities, %d exits", len(all), len(n.Authorities()), len(n.Exits()))
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.Fingerprint] || seen[r.Ed25519] {
			t.Errorf("%s: identity used twice in one network", r.Nickname)
		}
		seen[r.Fingerprint], seen[r.Ed25519] = true, true
		if len(r.Fingerprint) != 40 || r.Ed25519 == "" || r.Pid == 0 || r.ORPort == 0 || r.DirPort == 0 {
			t.Errorf("incomplete node info %+v", r)
		}
		if !strings.HasPrefix(r.Address, "127.") {
			t.Errorf("%s on non-loopback %s", r.Nickname, r.Address)
		}
	}
	lines := n.DirAuthorityLines()
	if len(lines) != 3 {
		t.Fatalf("DirAuthorityLines: %q", lines)
	}
	for i, l := range lines {
		a := n.Authorities()[i]
		want := fmt.Sprintf("DirAuthority %s orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s", a.Nickname, a.ORPort, a.V3Ident, a.DirPort, a.Fingerprint)
		if l != want {
			t.Errorf("DirAuthorityLines[%d] = %q, want %q", i, l, want)
		}
	}
	// Every node serves a consensus naming every node.
	for _, r := range all {
		if err := checkNodeServes(context.Background(), r, all); err != nil {
			t.Error(err)
		}
	}
}

func TestIntegrationDownload10MiB(t *testing.T) {
	n := Shared(t)
	c := SharedReferenceClient(t)
	t.Logf("network ready after %v; reference client bootstrapped in %v", n.ReadyAfter.Round(time.Millisecond), c.BootstrapTime.Round(time.Millisecond))
	srv, err := StartHTTPServer(DefaultRandomSize)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hc := socksHTTPClient(t, c.SocksAddr())

	start := time.Now()
	resp, err := hc.Get(srv.URL + "/random")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	nbytes, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("after %d bytes: %v", nbytes, err)
	}
	el := time.Since(start)
	if nbytes != int64(srv.Size) {
		t.Fatalf("got %d bytes, want %d", nbytes, srv.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != srv.SHA256 {
		t.Fatalf("sha256 %s, want %s", got, srv.SHA256)
	}
	t.Logf("downloaded %d bytes through C tor in %v: %.2f MiB/s", nbytes, el.Round(time.Millisecond), float64(nbytes)/(1<<20)/el.Seconds())

	// Upload and echo endpoints.
	body := strings.Repeat("gotor", 50000)
	resp2, err := hc.Post(srv.URL+"/upload", "application/octet-stream", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	sum := sha256.Sum256([]byte(body))
	if want := fmt.Sprintf("%d %x\n", len(body), sum); string(b) != want {
		t.Fatalf("upload answered %q, want %q", b, want)
	}
}

func TestIntegrationExitResolvesTestName(t *testing.T) {
	n := Shared(t)
	c := SharedReferenceClient(t)
	srv, err := StartHTTPServer(1024)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	name := "resolve-check.gotor-test.example"
	if err := n.DNS().AddName(name, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	hc := socksHTTPClient(t, c.SocksAddr())
	before := n.DNS().Queries(name)
	resp, err := hc.Get(fmt.Sprintf("http://%s:%d/", name, srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != HelloBody {
		t.Fatalf("body %q, want %q", b, HelloBody)
	}
	if q := n.DNS().Queries(name); q <= before {
		t.Fatalf("DNS responder saw %d queries for %s, want more than %d", q, name, before)
	}
	t.Logf("exit resolved %s through the harness DNS responder (%d queries)", name, n.DNS().Queries(name))

	// A name the responder does not know fails to resolve at the exit.
	_, err = hc.Get(fmt.Sprintf("http://unknown.gotor-test.example:%d/", srv.Port))
	if err == nil {
		t.Fatal("unknown name resolved")
	}
	if n.DNS().Queries("unknown.gotor-test.example") == 0 {
		t.Error("exit did not ask the responder about unknown.gotor-test.example")
	}
}

func TestIntegrationKillNode(t *testing.T) {
	// A separate small network: killing a node of the shared one would
	// disturb the other tests.
	IntegrationEnabled(t)
	ctx := context.Background()
	n, err := Start(ctx, Options{Relays: 1, Exits: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	r, ok := n.Node("relay0")
	if !ok {
		t.Fatal("no relay0")
	}
	if err := n.KillNode("relay0"); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", r.ORAddr(), time.Second); err == nil {
		t.Error("relay0 still accepts connections after KillNode")
	}
	if err := n.KillNode("nosuch"); err == nil {
		t.Error("KillNode(nosuch) succeeded")
	}
}

// TestIntegrationLinkLatency checks the delay proxies of the shared
// network: each node listens behind its advertised ORPort, and a TLS
// handshake with an ORPort (one round trip at least) takes at least twice
// the one-way delay through the proxy. (A lower bound is a correctness
// check; the numbers are logged, not bounded from above.)
func TestIntegrationLinkLatency(t *testing.T) {
	n := Shared(t)
	handshake := func(addr string) time.Duration {
		t.Helper()
		start := time.Now()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // a relay's link certificate is self-signed (tor-spec §2)
		if err != nil {
			t.Fatalf("TLS to %s: %v", addr, err)
		}
		el := time.Since(start)
		c.Close()
		return el
	}
	for _, r := range n.Relays() {
		if r.ListenORPort == r.ORPort || r.ListenORPort == 0 {
			t.Fatalf("%s: advertised ORPort %d, listening at %d: no delay proxy", r.Nickname, r.ORPort, r.ListenORPort)
		}
		direct := handshake(fmt.Sprintf("%s:%d", r.Address, r.ListenORPort))
		delayed := handshake(r.ORAddr())
		if delayed < 2*sharedLatency {
			t.Errorf("%s: TLS handshake through the delay proxy took %v, want >= %v", r.Nickname, delayed, 2*sharedLatency)
		}
		t.Logf("%s: TLS handshake direct %v, through the %v proxy %v", r.Nickname, direct.Round(10*time.Microsecond), sharedLatency, delayed.Round(10*time.Microsecond))
	}
}
