// HTTP CONNECT client (RFC 9110 §9.3.6), as C tor's HTTPSProxy speaks it
// (connection_proxy_connect, PROXY_CONNECT): "CONNECT ADDR:PORT HTTP/1.0"
// without credentials, HTTP/1.1 with a Host header and "Proxy-Authorization:
// Basic" (RFC 7617) with HTTPSProxyAuthenticator; any status but 200
// fails.

package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// HTTPS dials through an HTTP proxy with the CONNECT method.
type HTTPS struct {
	// Addr is the proxy's HOST:PORT.
	Addr string
	// Authenticator is "USERNAME:PASSWORD" for Basic authentication
	// (HTTPSProxyAuthenticator); empty means none.
	Authenticator string
	// Forward dials the proxy itself (nil: a plain TCP connection).
	Forward DialFunc
}

// Bounds on the proxy's response header.
const (
	maxHeaderLine  = 8 << 10
	maxHeaderLines = 64
)

func (p *HTTPS) name() string { return "HTTPS proxy " + p.Addr }

// DialContext connects to addr (HOST:PORT) through the proxy.
func (p *HTTPS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil || strings.ContainsAny(addr, "\r\n ") {
		return nil, fmt.Errorf("proxy: bad destination %q", addr)
	}
	var req string
	if p.Authenticator != "" {
		req = "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\nProxy-Authorization: Basic " +
			base64.StdEncoding.EncodeToString([]byte(p.Authenticator)) + "\r\n\r\n"
	} else {
		req = "CONNECT " + addr + " HTTP/1.0\r\n\r\n"
	}
	conn, err := dialProxy(ctx, p.Forward, network, p.Addr, p.name())
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, maxHeaderLine)
	err = handshake(ctx, conn, p.name(), func() error {
		if _, err := conn.Write([]byte(req)); err != nil {
			return &Error{Proxy: p.name(), Msg: "sending CONNECT", Err: err}
		}
		return p.readResponse(br)
	})
	if err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		// The destination spoke first and its bytes came with the
		// response header: hand them out before reading the connection.
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

func (p *HTTPS) readResponse(br *bufio.Reader) error {
	line, err := readLine(br)
	if err != nil {
		return &Error{Proxy: p.name(), Msg: "reading CONNECT response", Err: err}
	}
	proto, rest, _ := strings.Cut(line, " ")
	codeStr, reason, _ := strings.Cut(rest, " ")
	code, cerr := strconv.Atoi(codeStr)
	if !strings.HasPrefix(proto, "HTTP/1.") || cerr != nil || len(codeStr) != 3 {
		return &Error{Proxy: p.name(), Msg: fmt.Sprintf("not an HTTP response: %q", truncate(line, 60))}
	}
	for i := 0; ; i++ {
		if i >= maxHeaderLines {
			return &Error{Proxy: p.name(), Msg: fmt.Sprintf("more than %d header lines", maxHeaderLines)}
		}
		h, err := readLine(br)
		if err != nil {
			return &Error{Proxy: p.name(), Msg: "reading CONNECT response", Err: err}
		}
		if h == "" {
			break
		}
	}
	if code != 200 {
		msg := fmt.Sprintf("CONNECT refused: %d %s", code, truncate(reason, 60))
		if code == 407 {
			if p.Authenticator == "" {
				msg += " (the proxy wants credentials: HTTPSProxyAuthenticator)"
			} else {
				msg += " (HTTPSProxyAuthenticator rejected)"
			}
		}
		return &Error{Proxy: p.name(), Msg: msg, Code: code}
	}
	return nil
}

// readLine reads one CRLF- (or LF-) terminated line of at most
// maxHeaderLine bytes.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", fmt.Errorf("header line longer than %d bytes", maxHeaderLine)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// bufferedConn is a connection whose first bytes were read ahead into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(b)
	}
	return c.Conn.Read(b)
}
