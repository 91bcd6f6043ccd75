package socks

// HTTP CONNECT tunnel (C tor's HTTPTunnelPort; RFC 9110 §9.3.6). As in C
// tor, the Proxy-Authorization header becomes the request's Username and
// X-Tor-Stream-Isolation its Password, so both feed stream isolation.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// maxHTTPHandshake bounds the request line and headers, as C tor's 8192
// byte limit (plus slack for the request line).
const maxHTTPHandshake = 8192 + 1024

const httpNotAProxy = "HTTP/1.0 405 Method Not Allowed\r\n" +
	"Content-Type: text/html; charset=iso-8859-1\r\n\r\n" +
	"<html><head><title>This is an HTTP CONNECT tunnel, not a full HTTP Proxy</title></head>\n" +
	"<body><h1>This is an HTTP CONNECT tunnel, not an HTTP proxy.</h1>\n" +
	"<p>Configure your application to use it with the CONNECT method only.</p></body></html>\n"

func (s *Server) handleHTTP(c net.Conn) {
	log := s.logger()
	c.SetDeadline(s.handshakeDeadline())
	lr := &limitedReader{r: c, n: maxHTTPHandshake}
	br := bufio.NewReaderSize(lr, 4096)
	hr, err := http.ReadRequest(br)
	if err != nil {
		log.Debug("httptunnel: bad request", "client", c.RemoteAddr().String(), "err", err)
		io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\n")
		return
	}
	if !strings.EqualFold(hr.Method, http.MethodConnect) {
		io.WriteString(c, httpNotAProxy)
		return
	}
	host, portStr, err := net.SplitHostPort(hr.RequestURI)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	if err != nil || perr != nil || port == 0 || checkHostname([]byte(host)) != nil {
		io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\n")
		return
	}
	if len(host) > maxHostLen {
		io.WriteString(c, "HTTP/1.0 414 Request-URI Too Long\r\n\r\n")
		return
	}
	req := &Request{Protocol: ProtoHTTPConnect, Command: CmdConnect, Host: host,
		Port: uint16(port), AddrType: AddrDomain}
	if a, err := netip.ParseAddr(host); err == nil {
		req.Host = a.String()
		req.AddrType = AddrIPv4
		if a.Is6() {
			req.AddrType = AddrIPv6
		}
	}
	if v := hr.Header.Get("Proxy-Authorization"); v != "" {
		req.Username = []byte(v)
	}
	if v := hr.Header.Get("X-Tor-Stream-Isolation"); v != "" {
		req.Password = []byte(v)
	}
	lr.n = -1
	c.SetDeadline(time.Time{})
	s.fillAddrs(c, req)

	if err := s.checkPolicy(req); err != nil {
		io.WriteString(c, httpStatusFor(s.replyCode(err)))
		return
	}
	ctx, cancel := s.handlerContext()
	target, err := s.Handler.HandleConnect(ctx, req)
	cancel()
	if err != nil {
		log.Debug("httptunnel: connect failed", "err", err)
		io.WriteString(c, httpStatusFor(s.replyCode(err)))
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n"); err != nil {
		target.Close()
		return
	}
	stop := context.AfterFunc(s.ctx, func() { target.Close() })
	splice(c, br, target)
	stop()
}

// httpStatusFor turns a SOCKS5 reply code into an HTTP status line.
func httpStatusFor(code byte) string {
	switch code {
	case ReplyNotAllowed:
		return "HTTP/1.0 403 Forbidden\r\n\r\n"
	case ReplyTTLExpired:
		return "HTTP/1.0 504 Gateway Timeout\r\n\r\n"
	case ReplyCmdNotSupported, ReplyAddrNotSupported:
		return "HTTP/1.0 400 Bad Request\r\n\r\n"
	}
	return "HTTP/1.0 502 Bad Gateway\r\n\r\n"
}
