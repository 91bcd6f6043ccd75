package client

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxTokenTransports bounds how many isolation tokens keep a transport
// (and its idle connections) at once; the least recently used one is
// closed beyond it.
const maxTokenTransports = 64

// router is HTTPClient's RoundTripper: one http.Transport per isolation
// token, so a pooled connection (and so its circuit) is never reused for
// a request of another token, while requests of one token reuse theirs.
type router struct {
	c    *Client
	mu   sync.Mutex
	byTk map[IsolationToken]*tokenTransport
	tick uint64
}

type tokenTransport struct {
	t    *http.Transport
	used uint64
}

func newRouter(c *Client) *router {
	return &router{c: c, byTk: map[IsolationToken]*tokenTransport{}}
}

// RoundTrip sends req on the transport of the token of req's context.
func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.transport(tokenOf(req.Context())).RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach every
// token's transport.
func (r *router) CloseIdleConnections() { r.closeIdle() }

func (r *router) transport(tok IsolationToken) *http.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tick++
	if tt := r.byTk[tok]; tt != nil {
		tt.used = r.tick
		return tt.t
	}
	if len(r.byTk) >= maxTokenTransports {
		var oldest IsolationToken
		var min uint64 = ^uint64(0)
		for k, tt := range r.byTk {
			if tt.used < min {
				oldest, min = k, tt.used
			}
		}
		r.byTk[oldest].t.CloseIdleConnections()
		delete(r.byTk, oldest)
	}
	t := r.c.newTransport(tok)
	r.byTk[tok] = &tokenTransport{t: t, used: r.tick}
	return t
}

func (r *router) closeIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tt := range r.byTk {
		tt.t.CloseIdleConnections()
	}
}

// newTransport is an http.Transport whose every connection is a Tor
// stream with isolation token tok, whatever the request's context says.
func (c *Client) newTransport(tok IsolationToken) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.DialContext(WithIsolationToken(ctx, tok), network, addr)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Transport returns the http.Transport of isolation token tok (0: none):
// every connection it opens is a Tor stream carrying tok, and it pools
// connections only among requests of that token. The same transport is
// returned for the same token until Stop.
func (c *Client) Transport(tok IsolationToken) *http.Transport { return c.rt.transport(tok) }

// HTTPClient returns an http.Client that sends every request through Tor.
// A request whose context carries an isolation token (WithIsolationToken)
// goes on that token's connections and circuits only; requests of one
// token reuse each other's connections.
func (c *Client) HTTPClient() *http.Client { return &http.Client{Transport: c.rt} }
