package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
)

// The simplest embedding: the zero-config client, one HTTP request.
// (Examples here compile but do not run under go test: they need a Tor
// network; client's integration tests run the same calls against a
// private one.)
func Example() {
	cfg := config.DefaultConfig()
	c, err := client.New(cfg, slog.Default())
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil { // returns once bootstrapped
		panic(err)
	}
	defer c.Stop()

	resp, err := c.HTTPClient().Get("https://example.com/")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, len(body))
}

// DialContext opens a TCP stream through Tor; the exit resolves the name.
func ExampleClient_DialContext() {
	c, _ := client.New(config.DefaultConfig(), nil)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		panic(err)
	}
	defer c.Stop()
	conn, err := c.DialContext(ctx, "tcp", "example.com:80")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "HEAD / HTTP/1.0\r\nHost: example.com\r\n\r\n")
}

// Isolation tokens keep a program's identities apart: streams dialled
// with different tokens never share a circuit.
func ExampleWithIsolationToken() {
	c, _ := client.New(config.DefaultConfig(), nil)
	ctx := context.Background()
	_ = c.Start(ctx)
	defer c.Stop()

	alice := client.WithIsolationToken(ctx, client.NewIsolationToken())
	bob := client.WithIsolationToken(ctx, client.NewIsolationToken())
	a, _ := c.DialContext(alice, "tcp", "example.com:80")
	b, _ := c.DialContext(bob, "tcp", "example.com:80")
	sa, _ := c.StreamOf(a)
	sb, _ := c.StreamOf(b)
	fmt.Println(sa.CircuitID != sb.CircuitID) // true
}

// A multi-user SOCKS proxy: users isolated by their SOCKS credentials.
func ExampleClient_ProxyURL() {
	cfg := config.DefaultConfig()
	cfg.IsolationLevel = "credential"
	cfg.IsolateSOCKSAuth = true
	c, _ := client.New(cfg, nil)
	_ = c.Start(context.Background())
	defer c.Stop()
	fmt.Println(c.ProxyURL()) // socks5h://127.0.0.1:9050
}

// Errors from DialContext (and HTTPClient requests) are *client.Error:
// match a kind with errors.Is, or read the details with errors.As.
func ExampleError() {
	// What a failed c.DialContext(ctx, "tcp", "example.com:81") returns
	// when the exit's connection is refused, wrapped by the caller:
	err := fmt.Errorf("fetch: %w", &client.Error{Kind: client.ErrConnectionRefused, Addr: "example.com:81"})

	fmt.Println(errors.Is(err, client.ErrConnectionRefused))
	var ce *client.Error
	if errors.As(err, &ce) {
		fmt.Printf("%s: %v\n", ce.Addr, ce.Kind)
	}
	// Output:
	// true
	// example.com:81: connection refused
}
