// SOCKS5 client: RFC 1928 (method negotiation, CONNECT, replies) and RFC
// 1929 (username/password authentication), as C tor's Socks5Proxy and its
// connections to pluggable transports speak it
// (connection_proxy_connect, connection_read_proxy_handshake).

package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// SOCKS5 dials through a SOCKS5 proxy.
type SOCKS5 struct {
	// Addr is the proxy's HOST:PORT.
	Addr string
	// Username and Password, when either is set, are sent with RFC 1929
	// authentication (each 1 to 255 bytes, any bytes: a pluggable
	// transport's arguments travel here, pt-spec §3.5). Both empty: only
	// "no authentication" is offered.
	Username, Password string
	// Forward dials the proxy itself (nil: a plain TCP connection).
	Forward DialFunc
}

// SOCKS5 reply codes (RFC 1928 §6).
var socks5Replies = map[byte]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

func (p *SOCKS5) name() string { return "SOCKS5 proxy " + p.Addr }

// DialContext connects to addr (HOST:PORT; a name is sent to the proxy
// unresolved) through the proxy.
func (p *SOCKS5) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	req, err := socks5Request(addr)
	if err != nil {
		return nil, err
	}
	auth := p.Username != "" || p.Password != ""
	if auth && (len(p.Username) == 0 || len(p.Username) > 255 || len(p.Password) == 0 || len(p.Password) > 255) {
		return nil, &Error{Proxy: p.name(), Msg: "username and password must each be 1 to 255 bytes"}
	}
	conn, err := dialProxy(ctx, p.Forward, network, p.Addr, p.name())
	if err != nil {
		return nil, err
	}
	err = handshake(ctx, conn, p.name(), func() error { return p.connect(conn, req, auth) })
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// socks5Request builds the CONNECT request for addr.
func socks5Request(addr string) ([]byte, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: bad destination %q: %v", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("proxy: bad destination port %q", portStr)
	}
	req := []byte{5, 1, 0} // VER, CMD CONNECT, RSV
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.Is4() {
			req = append(req, 1)
		} else {
			req = append(req, 4)
		}
		req = append(req, ip.AsSlice()...)
	} else {
		if len(host) == 0 || len(host) > 255 {
			return nil, fmt.Errorf("proxy: destination host name must be 1 to 255 bytes")
		}
		req = append(req, 3, byte(len(host)))
		req = append(req, host...)
	}
	return binary.BigEndian.AppendUint16(req, uint16(port)), nil
}

func (p *SOCKS5) connect(conn net.Conn, req []byte, auth bool) error {
	// Offer "no authentication", and username/password when we have
	// credentials (C tor offers both then).
	greet := []byte{5, 1, 0}
	if auth {
		greet = []byte{5, 2, 0, 2}
	}
	if _, err := conn.Write(greet); err != nil {
		return &Error{Proxy: p.name(), Msg: "sending greeting", Err: err}
	}
	var b [2]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return &Error{Proxy: p.name(), Msg: "reading method choice", Err: err}
	}
	if b[0] != 5 {
		return &Error{Proxy: p.name(), Msg: fmt.Sprintf("not a SOCKS5 server (version %d)", b[0])}
	}
	switch {
	case b[1] == 0:
	case b[1] == 2 && auth:
		msg := make([]byte, 0, 3+len(p.Username)+len(p.Password))
		msg = append(msg, 1, byte(len(p.Username)))
		msg = append(msg, p.Username...)
		msg = append(msg, byte(len(p.Password)))
		msg = append(msg, p.Password...)
		if _, err := conn.Write(msg); err != nil {
			return &Error{Proxy: p.name(), Msg: "sending username/password", Err: err}
		}
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return &Error{Proxy: p.name(), Msg: "reading authentication status", Err: err}
		}
		if b[1] != 0 {
			return &Error{Proxy: p.name(), Msg: fmt.Sprintf("username/password rejected (status %d)", b[1]), Code: int(b[1])}
		}
	case b[1] == 0xFF:
		if auth {
			return &Error{Proxy: p.name(), Msg: "no acceptable authentication method"}
		}
		return &Error{Proxy: p.name(), Msg: "proxy requires authentication (no Socks5ProxyUsername/Socks5ProxyPassword set)"}
	default:
		return &Error{Proxy: p.name(), Msg: fmt.Sprintf("proxy chose authentication method %d, which was not offered", b[1])}
	}

	if _, err := conn.Write(req); err != nil {
		return &Error{Proxy: p.name(), Msg: "sending CONNECT", Err: err}
	}
	var h [4]byte
	if _, err := io.ReadFull(conn, h[:]); err != nil {
		return &Error{Proxy: p.name(), Msg: "reading CONNECT reply", Err: err}
	}
	if h[0] != 5 {
		return &Error{Proxy: p.name(), Msg: fmt.Sprintf("bad reply version %d", h[0])}
	}
	if h[1] != 0 {
		reason := socks5Replies[h[1]]
		if reason == "" {
			reason = "unknown error"
		}
		return &Error{Proxy: p.name(), Msg: fmt.Sprintf("%s (reply %d)", reason, h[1]), Code: int(h[1])}
	}
	// Skip BND.ADDR and BND.PORT.
	var n int
	switch h[3] {
	case 1:
		n = 4
	case 4:
		n = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return &Error{Proxy: p.name(), Msg: "reading CONNECT reply", Err: err}
		}
		n = int(l[0])
	default:
		return &Error{Proxy: p.name(), Msg: fmt.Sprintf("bad address type %d in reply", h[3])}
	}
	var rest [258]byte
	if _, err := io.ReadFull(conn, rest[:n+2]); err != nil {
		return &Error{Proxy: p.name(), Msg: "reading CONNECT reply", Err: err}
	}
	return nil
}
