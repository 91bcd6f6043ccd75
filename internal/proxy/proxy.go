// Package proxy opens TCP connections through an outbound proxy, as C tor
// does for every connection to a relay or bridge when Socks4Proxy,
// Socks5Proxy or HTTPSProxy is set (tor(1) "Socks4Proxy", "Socks5Proxy",
// "HTTPSProxy"), and as gotor does to reach a pluggable transport's local
// SOCKS listener (pt-spec §3.5).
//
// Files by protocol: socks4.go (SOCKS4, openssh.com/txt/socks4.protocol),
// socks5.go (RFC 1928 CONNECT, RFC 1929 username/password), https.go (HTTP
// CONNECT, RFC 9110 §9.3.6, with Basic Proxy-Authorization, RFC 7617).
//
// Each proxy type has a DialContext method with the signature of
// net.Dialer.DialContext. Only "tcp", "tcp4" and "tcp6" are dialed. The
// context bounds the connection to the proxy and the proxy handshake;
// once DialContext returns, the connection has no deadline.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// DialFunc dials a TCP connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func direct(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func forwardOr(f DialFunc) DialFunc {
	if f == nil {
		return direct
	}
	return f
}

// Error is a failure to connect through a proxy. It never names the
// destination (a bridge's address is a secret worth keeping out of logs);
// the caller knows what it asked for.
type Error struct {
	Proxy string // e.g. "SOCKS5 proxy 127.0.0.1:1080"
	Msg   string // what went wrong, e.g. "connection refused (reply 5)"
	// Code is the proxy's answer when it refused: the SOCKS5 reply code
	// (RFC 1928 §6), the SOCKS4 result code (90-93) or the HTTP status;
	// 0 when the proxy did not answer with one.
	Code int
	Err  error // underlying error, if any
}

func (e *Error) Error() string {
	s := "proxy: " + e.Proxy + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return fmt.Errorf("proxy: network %q not supported (tcp only)", network)
}

// handshake runs fn on conn with ctx's deadline and cancellation applied
// to conn, then clears the deadline. On error conn is closed and, if ctx
// ended, the error says so.
func handshake(ctx context.Context, conn net.Conn, name string, fn func() error) error {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := fn()
	stopped := stop()
	if err == nil && !stopped {
		err = context.Cause(ctx) // cancelled just as the handshake ended
	}
	if err != nil {
		conn.Close()
		// A read that hit the context's deadline may end a moment
		// before the context itself does.
		dl, hasDL := ctx.Deadline()
		ended := ctx.Err() != nil || (hasDL && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl))
		if ended && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			var pe *Error
			if errors.As(err, &pe) && pe.Code != 0 {
				return err
			}
			cause := context.Cause(ctx)
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return &Error{Proxy: name, Msg: "handshake interrupted", Err: cause}
		}
		return err
	}
	conn.SetDeadline(time.Time{})
	return nil
}

// dialProxy connects to the proxy itself.
func dialProxy(ctx context.Context, f DialFunc, network, addr, name string) (net.Conn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	conn, err := forwardOr(f)(ctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Proxy: name, Msg: "cannot connect to the proxy", Err: err}
	}
	return conn, nil
}
