// SOCKS4 client (https://www.openssh.com/txt/socks4.protocol): CONNECT to
// an IPv4 address, as C tor's Socks4Proxy (which only reaches IPv4
// relays) and a pluggable transport with a "socks4" CMETHOD (whose
// arguments travel in USERID, pt-spec §3.5).

package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
)

// SOCKS4 dials through a SOCKS4 proxy.
type SOCKS4 struct {
	// Addr is the proxy's HOST:PORT.
	Addr string
	// UserID is sent in the request's USERID field (no NUL bytes).
	UserID string
	// Forward dials the proxy itself (nil: a plain TCP connection).
	Forward DialFunc
}

var socks4Replies = map[byte]string{
	91: "request rejected or failed",
	92: "request rejected: proxy cannot reach the client's identd",
	93: "request rejected: identd reports a different user id",
}

func (p *SOCKS4) name() string { return "SOCKS4 proxy " + p.Addr }

// DialContext connects to addr, which must be IPV4:PORT (SOCKS4 has no
// names and no IPv6), through the proxy.
func (p *SOCKS4) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Unmap().Is4() || ap.Port() == 0 {
		return nil, &Error{Proxy: p.name(), Msg: "SOCKS4 reaches only IPv4 addresses with a port"}
	}
	if strings.IndexByte(p.UserID, 0) >= 0 {
		return nil, &Error{Proxy: p.name(), Msg: "USERID contains a NUL byte"}
	}
	req := []byte{4, 1}
	req = binary.BigEndian.AppendUint16(req, ap.Port())
	ip4 := ap.Addr().Unmap().As4()
	req = append(req, ip4[:]...)
	req = append(req, p.UserID...)
	req = append(req, 0)
	conn, err := dialProxy(ctx, p.Forward, network, p.Addr, p.name())
	if err != nil {
		return nil, err
	}
	err = handshake(ctx, conn, p.name(), func() error {
		if _, err := conn.Write(req); err != nil {
			return &Error{Proxy: p.name(), Msg: "sending CONNECT", Err: err}
		}
		var r [8]byte
		if _, err := io.ReadFull(conn, r[:]); err != nil {
			return &Error{Proxy: p.name(), Msg: "reading reply", Err: err}
		}
		if r[0] != 0 {
			return &Error{Proxy: p.name(), Msg: fmt.Sprintf("bad reply version %d", r[0])}
		}
		if r[1] != 90 {
			reason := socks4Replies[r[1]]
			if reason == "" {
				reason = "unknown result"
			}
			return &Error{Proxy: p.name(), Msg: fmt.Sprintf("%s (result %d)", reason, r[1]), Code: int(r[1])}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}
