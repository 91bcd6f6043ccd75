// Package client is gotor's public Go API: a Tor client that bootstraps
// from the directory authorities, builds circuits, and carries streams
// for a SOCKS port, an HTTP CONNECT port and Go programs.
//
//	cfg := config.DefaultConfig()
//	c, err := client.Open(ctx, cfg, slog.Default()) // returns once bootstrapped
//	if err != nil { ... }
//	defer c.Stop()
//	conn, err := c.DialContext(ctx, "tcp", "example.com:80")
//
// Names are always resolved by the exit relay, never locally. Errors
// that a caller can act on are *Error values with a Kind.
package client

import (
	"context"
	"log/slog"
	"net"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/engine"
)

// Client is a running (or ready to start) Tor client. Create it with New
// or Open.
type Client struct {
	e   *engine.Engine
	cfg *config.Config
	rt  *router
}

// New checks cfg and prepares a client; nothing touches the network until
// Start. The client keeps its own copy of cfg: later changes to cfg do
// not affect it. A nil cfg means config.DefaultConfig() (SocksPort
// 127.0.0.1:9050, the real network); a nil logger discards logs.
func New(cfg *config.Config, logger *slog.Logger) (*Client, error) {
	if cfg == nil {
		cfg = config.DefaultConfig()
	}
	cfg = cfg.Clone()
	e, err := engine.New(cfg, logger)
	if err != nil {
		return nil, err
	}
	c := &Client{e: e, cfg: cfg}
	c.rt = newRouter(c)
	return c, nil
}

// Open is the one-call start: New and Start together. Use ProxyURL,
// DialContext or HTTPClient on the result, and Stop it when done.
func Open(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Client, error) {
	c, err := New(cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Start bootstraps the client (directory, then circuits) and opens the
// configured listeners. It returns once the client can carry streams, or
// when ctx ends. The client keeps running after ctx ends; call Stop.
func (c *Client) Start(ctx context.Context) error { return c.e.Start(ctx) }

// Stop closes listeners, circuits and channels, saves state and waits for
// the client's goroutines. It is safe to call more than once.
func (c *Client) Stop() error {
	c.rt.closeIdle()
	return c.e.Stop()
}

// Config returns a copy of the client's configuration.
func (c *Client) Config() *config.Config { return c.cfg.Clone() }

// Bootstrap returns the latest bootstrap progress.
func (c *Client) Bootstrap() Progress { return Progress(c.e.Bootstrap()) }

// ProgressEvents returns a channel that receives every later bootstrap
// progress report; it is closed by Stop. Slow readers miss reports.
func (c *Client) ProgressEvents() <-chan Progress {
	in := c.e.ProgressEvents()
	out := make(chan Progress, cap(in))
	go func() {
		defer close(out)
		for p := range in {
			select {
			case out <- Progress(p):
			default:
			}
		}
	}()
	return out
}

// NewIdentity is NEWNYM: no existing circuit takes new streams, new
// streams are isolated from all earlier ones, and the idle connections
// of HTTPClient are closed.
func (c *Client) NewIdentity() {
	c.e.NewIdentity()
	c.rt.closeIdle()
}

// SocksAddrs lists the addresses of the open SOCKS listeners.
func (c *Client) SocksAddrs() []string { return c.e.SocksAddrs() }

// HTTPTunnelAddrs lists the addresses of the open HTTP CONNECT listeners.
func (c *Client) HTTPTunnelAddrs() []string { return c.e.HTTPTunnelAddrs() }

// ControlAddr is the control port's address, or nil without one.
func (c *Client) ControlAddr() net.Addr { return c.e.ControlAddr() }
