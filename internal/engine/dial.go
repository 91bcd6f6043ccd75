package engine

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/gotor/gotor/internal/errkind"
	"github.com/gotor/gotor/internal/isolation"
)

// apiFlags are the isolation flags for Go API streams, from the design's
// fields (IsolationLevel, IsolateDestinations, IsolateSOCKSAuth,
// IsolateClientPort).
func (c *Engine) apiFlags() isolation.Flags {
	cfg := c.conf()
	f, err := isolation.FlagsFromConfig(isolation.Config{
		IsolationLevel:      cfg.IsolationLevel,
		IsolateDestinations: cfg.IsolateDestinations,
		IsolateSOCKSAuth:    cfg.IsolateSOCKSAuth,
		IsolateClientPort:   cfg.IsolateClientPort,
	})
	if err != nil { // Validate already checked IsolationLevel
		return isolation.Default
	}
	return f
}

// DialContext opens a TCP stream to addr ("host:port") through Tor for
// the Go API. The host is resolved by the exit relay, never locally.
// network must be "tcp", "tcp4" or "tcp6"; tok is the stream's isolation
// token (0: none). Errors are *errkind.Error.
func (c *Engine) DialContext(ctx context.Context, network, addr string, tok isolation.Token) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, errkind.New(errkind.BadRequest, fmt.Errorf("network %q not supported (Tor carries TCP only)", network))
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, errkind.New(errkind.BadRequest, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, errkind.New(errkind.BadRequest, fmt.Errorf("bad port in %q", addr))
	}
	if err := checkHostname(host); err != nil {
		return nil, errkind.New(errkind.BadRequest, err)
	}
	if t := c.conf().SocksTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	return c.openStream(ctx, streamRequest{
		host:  host,
		port:  uint16(port),
		info:  isolation.APIStreamInfo(host, uint16(port), tok),
		flags: c.apiFlags(),
	})
}

// checkHostname refuses names no DNS name or address literal has: empty,
// longer than a SOCKS5 name (255 bytes), or with control characters or
// spaces, which would otherwise reach RELAY_BEGIN and the control port's
// STREAM events verbatim (a CR/LF there forges event lines).
func checkHostname(host string) error {
	if host == "" || len(host) > 255 {
		return fmt.Errorf("bad hostname length %d", len(host))
	}
	for i := 0; i < len(host); i++ {
		if b := host[i]; b <= ' ' || b == 0x7f {
			return fmt.Errorf("hostname contains a control character or space (byte %d)", i)
		}
	}
	return nil
}
