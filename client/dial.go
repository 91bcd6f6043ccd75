package client

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// IsolationToken names a session: streams dialled with different tokens
// never share a circuit (the design's "session" isolation level, like
// arti's IsolationToken). The zero token means none.
type IsolationToken uint64

// NewIsolationToken returns a token no other call returns.
func NewIsolationToken() IsolationToken { return IsolationToken(isolation.NewToken()) }

type tokenKey struct{}

// WithIsolationToken returns a context whose DialContext calls carry tok.
func WithIsolationToken(ctx context.Context, tok IsolationToken) context.Context {
	return context.WithValue(ctx, tokenKey{}, tok)
}

// apiListener is the listener id of streams opened through the Go API;
// SOCKS and HTTP listeners are numbered from 1.
const apiListener = 0

// apiFlags are the isolation flags for Go API streams, from the design's
// fields (IsolationLevel, IsolateDestinations, IsolateSOCKSAuth,
// IsolateClientPort).
func (c *Client) apiFlags() isolation.Flags {
	f, err := isolation.FlagsFromConfig(isolation.Config{
		IsolationLevel:      c.cfg.IsolationLevel,
		IsolateDestinations: c.cfg.IsolateDestinations,
		IsolateSOCKSAuth:    c.cfg.IsolateSOCKSAuth,
		IsolateClientPort:   c.cfg.IsolateClientPort,
	})
	if err != nil { // Validate already checked IsolationLevel
		return isolation.Default
	}
	return f
}

// DialContext opens a TCP stream to addr ("host:port") through Tor. The
// host is resolved by the exit relay, never locally. network must be
// "tcp", "tcp4" or "tcp6". Streams carry the isolation token of ctx, if
// any (WithIsolationToken).
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("client: network %q not supported (Tor carries TCP only)", network)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("client: bad port in %q", addr)
	}
	tok, _ := ctx.Value(tokenKey{}).(IsolationToken)
	if c.cfg.SocksTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.SocksTimeout)
		defer cancel()
	}
	return c.openStream(ctx, streamRequest{
		host: host,
		port: uint16(port),
		info: isolation.StreamInfo{
			DestAddr:     host,
			DestPort:     uint16(port),
			Listener:     apiListener,
			SessionGroup: isolation.SessionGroupUnset,
			Protocol:     isolation.ProtoAPI,
			Token:        isolation.Token(tok),
		},
		flags: c.apiFlags(),
	})
}

// Dial is DialContext with a background context.
func (c *Client) Dial(network, addr string) (net.Conn, error) {
	return c.DialContext(context.Background(), network, addr)
}

// Transport returns an http.Transport whose connections go through Tor.
func (c *Client) Transport() *http.Transport {
	return &http.Transport{
		DialContext:           c.DialContext,
		Proxy:                 nil,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// HTTPClient returns an http.Client that sends every request through Tor.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: c.Transport()}
}

// ProxyURL returns the URL of the first SOCKS listener
// ("socks5h://127.0.0.1:9050"), for programs that take a proxy setting.
// It is nil when no SocksPort is open.
func (c *Client) ProxyURL() *url.URL {
	addrs := c.SocksAddrs()
	if len(addrs) == 0 {
		return nil
	}
	return &url.URL{Scheme: "socks5h", Host: addrs[0]}
}
