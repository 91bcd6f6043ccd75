package client

import (
	"context"
	"net"
	"net/url"

	"github.com/gotor/gotor/internal/isolation"
)

// IsolationToken names a session: streams dialled with different tokens
// never share a circuit (the design's "session" isolation level, like
// arti's IsolationToken). The zero token means none.
type IsolationToken uint64

// NewIsolationToken returns a token no other call returns.
func NewIsolationToken() IsolationToken { return IsolationToken(isolation.NewToken()) }

type tokenKey struct{}

// WithIsolationToken returns a context whose DialContext calls (and
// HTTPClient requests) carry tok.
func WithIsolationToken(ctx context.Context, tok IsolationToken) context.Context {
	return context.WithValue(ctx, tokenKey{}, tok)
}

func tokenOf(ctx context.Context) IsolationToken {
	tok, _ := ctx.Value(tokenKey{}).(IsolationToken)
	return tok
}

// DialContext opens a TCP stream to addr ("host:port") through Tor. The
// host is resolved by the exit relay, never locally. network must be
// "tcp", "tcp4" or "tcp6". Streams carry the isolation token of ctx, if
// any (WithIsolationToken). A failure is an *Error.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.e.DialContext(ctx, network, addr, isolation.Token(tokenOf(ctx)))
	if err != nil {
		return nil, publicError(err, addr)
	}
	return conn, nil
}

// Dial is DialContext with a background context.
func (c *Client) Dial(network, addr string) (net.Conn, error) {
	return c.DialContext(context.Background(), network, addr)
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
