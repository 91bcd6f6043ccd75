package client_test

// The public error kinds and HTTPClient's per-token transports, on the
// private network.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/testnet"
)

func TestErrorKinds(t *testing.T) {
	c, _, _ := shared(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var missing hscrypto.Address
	copy(missing.PubKey[:], pub)

	for _, tc := range []struct {
		name, addr string
		want       client.ErrorKind
	}{
		// C tor 0.4.9 exits end a stream to a closed port with reason
		// MISC, not CONNECTREFUSED: gotor reports what the exit said.
		{"closed port", closedPort, client.ErrStreamClosed},
		{"unresolvable name", "no-such-name.invalid:80", client.ErrResolveFailed},
		{"missing onion service", missing.String() + ":80", client.ErrOnionNotFound},
		{"malformed onion address", "abcdefgh.onion:80", client.ErrOnionBadAddress},
		{"control character in the name", "a\r\nb.example:80", client.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			conn, err := c.DialContext(ctx, "tcp", tc.addr)
			if err == nil {
				conn.Close()
				t.Fatalf("dial %q succeeded", tc.addr)
			}
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *client.Error", err, err)
			}
			if ce.Kind != tc.want {
				t.Fatalf("kind %v (%d), want %v (%d); error: %v", ce.Kind, ce.Kind, tc.want, tc.want, err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("errors.Is(err, %v) is false", tc.want)
			}
			t.Logf("%v", err)
		})
	}
}

// HTTPClient keeps the connections of different isolation tokens apart
// (a pooled connection is a stream on one circuit) and reuses one token's
// connection for its next request.
func TestHTTPClientIsolationTokens(t *testing.T) {
	c, _, _ := shared(t)
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()

	hc := c.HTTPClient()
	defer hc.CloseIdleConnections()
	a, b := client.NewIsolationToken(), client.NewIsolationToken()
	get := func(tok client.IsolationToken) {
		t.Helper()
		ctx, cancel := context.WithTimeout(client.WithIsolationToken(context.Background(), tok), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello" {
			t.Fatalf("body %q", body)
		}
	}
	before := map[uint64]bool{}
	for _, s := range c.Streams() {
		before[s.ID] = true
	}
	get(a)
	get(a)
	get(b)
	mu.Lock()
	n := conns
	mu.Unlock()
	if n != 2 {
		t.Fatalf("the server saw %d connections for tokens a, a, b; want 2 (a's reused, b's own)", n)
	}
	circs := map[uint64]bool{}
	for _, s := range c.Streams() {
		if !before[s.ID] && s.Target == srv.Listener.Addr().String() {
			circs[s.CircuitID] = true
		}
	}
	if len(circs) != 2 {
		t.Fatalf("the two tokens' connections are on %d circuits, want 2", len(circs))
	}
}

// With C tor's real-network defaults ClientRejectInternalAddresses and
// ClientDNSRejectInternalAddresses (the test network turns them off),
// names of the local host are refused before any circuit, and an exit
// that connects a name to an internal address is not believed (issue 17
// item 16).
func TestRejectInternalAddresses(t *testing.T) {
	_, n, srv := shared(t)
	cfg := testConfig(t, n)
	cfg.ClientRejectInternalAddresses = true
	cfg.ClientDNSRejectInternalAddresses = true
	c := itest.Open(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, addr := range []string{"localhost:80", "printer.local:631", "a.localhost:80", "127.0.0.1:80", "[::1]:80"} {
		if _, err := c.DialContext(ctx, "tcp", addr); !errors.Is(err, client.ErrInternalAddress) {
			t.Errorf("%s: %v, want %v", addr, err, client.ErrInternalAddress)
		}
	}
	// The harness resolver answers 127.0.0.1 for its test name.
	before := n.DNS().Queries(testnet.DefaultTestName)
	target := fmt.Sprintf("%s:%d", testnet.DefaultTestName, srv.Port)
	if conn, err := c.DialContext(ctx, "tcp", target); !errors.Is(err, client.ErrInternalAddress) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("%s (resolved by the exit to 127.0.0.1): %v, want %v", target, err, client.ErrInternalAddress)
	}
	if n.DNS().Queries(testnet.DefaultTestName) == before {
		t.Fatal("the exit never resolved the name: the check proved nothing")
	}
}
