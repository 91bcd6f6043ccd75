// Package socks implements the server side of the SOCKS protocols that a
// Tor client offers to applications: SOCKS4 and SOCKS4a
// (https://www.openssh.com/txt/socks4.protocol,
// https://www.openssh.com/txt/socks4a.protocol), SOCKS5 (RFC 1928) with
// username/password authentication (RFC 1929), and Tor's extensions from
// torspec socks-extensions.txt: the RESOLVE (0xF0) and RESOLVE_PTR (0xF1)
// commands, HTTP-resistance, optimistic data, extended error codes
// (proposal 304, "ExtendedErrors") and the "<torS0X>" username
// extension (proposal 351, socks-extensions "extended-auth").
//
// It also implements C tor's HTTPTunnelPort: an HTTP CONNECT proxy whose
// Proxy-Authorization and X-Tor-Stream-Isolation headers are used as
// isolation inputs, as C tor does.
//
// The package only speaks the local protocols. What a request means is up
// to a Handler: it opens a stream (a net.Conn) for CONNECT, or answers a
// RESOLVE. Hostnames are never resolved locally. Handlers report failures
// with a ReplyError (or any error with a SOCKSReply() byte method, such
// as internal/errkind's, which maps Tor's RELAY_END reasons as C tor's
// stream_end_reason_to_socks5_response does).
package socks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/gotor/gotor/internal/isolation"
)

// Command is a SOCKS request command.
type Command byte

// Commands accepted by the server. BIND and UDP ASSOCIATE are refused,
// as in C tor (socks-extensions §1.1).
const (
	CmdConnect    Command = 0x01
	CmdBind       Command = 0x02 // refused
	CmdUDP        Command = 0x03 // refused
	CmdResolve    Command = 0xF0 // Tor extension (socks-extensions §2)
	CmdResolvePTR Command = 0xF1 // Tor extension, SOCKS5 only
)

func (c Command) String() string {
	switch c {
	case CmdConnect:
		return "CONNECT"
	case CmdBind:
		return "BIND"
	case CmdUDP:
		return "UDP_ASSOCIATE"
	case CmdResolve:
		return "RESOLVE"
	case CmdResolvePTR:
		return "RESOLVE_PTR"
	}
	return fmt.Sprintf("Command(%#02x)", byte(c))
}

// AddrType is how the client named the destination (RFC 1928 ATYP).
type AddrType byte

// Address types. SOCKS4 requests have AddrIPv4; SOCKS4a requests and HTTP
// CONNECT requests naming a host have AddrDomain.
const (
	AddrIPv4   AddrType = 0x01
	AddrDomain AddrType = 0x03
	AddrIPv6   AddrType = 0x04
)

// Protocol is the local protocol a request arrived with: the input of
// C tor's IsolateClientProtocol, shared with the isolation package.
type Protocol = isolation.Protocol

// Protocols.
const (
	ProtoSOCKS4      = isolation.ProtoSOCKS4
	ProtoSOCKS4a     = isolation.ProtoSOCKS4a
	ProtoSOCKS5      = isolation.ProtoSOCKS5
	ProtoHTTPConnect = isolation.ProtoHTTPConnect
)

// Authentication methods (RFC 1928 §3). AuthNone is also reported for
// SOCKS4 and HTTP CONNECT requests.
const (
	AuthNone     byte = 0x00
	AuthUserPass byte = 0x02
	authNoAccept byte = 0xFF
)

// Request is one parsed client request. The byte slices are owned by the
// request; a handler may keep them.
type Request struct {
	Version  byte // 4 or 5; 0 for HTTP CONNECT
	Protocol Protocol
	Command  Command
	// Host is the destination as the client gave it: an IP address in
	// canonical text form for AddrIPv4/AddrIPv6, else the hostname,
	// unresolved.
	Host     string
	Port     uint16
	AddrType AddrType

	// AuthMethod is the negotiated SOCKS5 method (AuthNone or AuthUserPass).
	AuthMethod byte
	// Username and Password are the isolation inputs (C tor's
	// IsolateSOCKSAuth): the SOCKS5 RFC 1929 credentials, the SOCKS4
	// user ID (Username only), or for HTTP CONNECT the Proxy-Authorization
	// (Username) and X-Tor-Stream-Isolation (Password) header values.
	// Any credentials are accepted; nil means none were sent.
	Username, Password []byte

	// ExtFormat is the proposal 351 format code when the username began
	// with "<torS0X>": '0', the password is the isolation string (format
	// '1', an RPC object, is refused). It is 0 for legacy credentials.
	ExtFormat byte

	ClientAddr netip.AddrPort // the application's address and source port
	Listener   net.Addr       // the local address the request arrived on
}

// Addr returns "host:port", with IPv6 hosts bracketed.
func (r *Request) Addr() string {
	return net.JoinHostPort(r.Host, fmt.Sprint(r.Port))
}

// StreamInfo is the request's isolation input (C tor's
// connection_edge isolation fields) for a stream that arrived on the
// listener numbered listener with that listener's SessionGroup= value (or
// isolation.SessionGroupUnset).
func (r *Request) StreamInfo(listener uint32, sessionGroup int) isolation.StreamInfo {
	return isolation.StreamInfo{
		DestAddr:     r.Host,
		DestPort:     r.Port,
		Username:     r.Username,
		Password:     r.Password,
		ExtFormat:    r.ExtFormat,
		ClientAddr:   r.ClientAddr,
		Listener:     listener,
		SessionGroup: sessionGroup,
		Protocol:     r.Protocol,
	}
}

// ExtendedAuthPrefix is the proposal 351 username prefix.
const ExtendedAuthPrefix = isolation.ExtendedAuthPrefix

// ResolveAnswer is the answer to a RESOLVE (Addrs) or RESOLVE_PTR (Name).
type ResolveAnswer struct {
	Addrs []netip.Addr
	Name  string
}

// Handler serves parsed requests. Methods are called from the
// connection's goroutine and may block. ctx ends when the server closes,
// when the server's ConnectTimeout expires, or when the method returns:
// like net.Dialer.DialContext's, it governs opening the stream, not the
// returned conn's lifetime.
type Handler interface {
	// HandleConnect opens a stream to req.Host:req.Port. On success the
	// server replies and copies bytes both ways until both sides close;
	// it closes the returned conn. Data the client sent early (optimistic
	// data, socks-extensions §5) is written to the conn after it returns.
	HandleConnect(ctx context.Context, req *Request) (net.Conn, error)
	// HandleResolve answers CmdResolve (fill Addrs) and CmdResolvePTR
	// (fill Name).
	HandleResolve(ctx context.Context, req *Request) (ResolveAnswer, error)
}

// SOCKS5 reply codes (RFC 1928 §6) and the extended codes of proposal 304
// (sent only on ports with ExtendedErrors; otherwise they become
// ReplyGeneralFailure).
const (
	ReplySucceeded          byte = 0x00
	ReplyGeneralFailure     byte = 0x01
	ReplyNotAllowed         byte = 0x02
	ReplyNetUnreachable     byte = 0x03
	ReplyHostUnreachable    byte = 0x04
	ReplyConnRefused        byte = 0x05
	ReplyTTLExpired         byte = 0x06
	ReplyCmdNotSupported    byte = 0x07
	ReplyAddrNotSupported   byte = 0x08
	ReplyOnionDescNotFound  byte = 0xF0
	ReplyOnionDescInvalid   byte = 0xF1
	ReplyOnionIntroFailed   byte = 0xF2
	ReplyOnionRendFailed    byte = 0xF3
	ReplyOnionMissingAuth   byte = 0xF4
	ReplyOnionWrongAuth     byte = 0xF5
	ReplyOnionBadAddress    byte = 0xF6
	ReplyOnionIntroTimedOut byte = 0xF7
)

// SOCKS4 reply codes.
const (
	socks4Granted  byte = 90
	socks4Rejected byte = 91
)

// Replier is implemented by errors that carry a SOCKS5 reply code.
type Replier interface {
	SOCKSReply() byte
}

// ReplyError is an error with the SOCKS5 reply code to send for it.
type ReplyError struct {
	Code byte
	Err  error // optional cause
}

func (e *ReplyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("socks reply %#02x: %v", e.Code, e.Err)
	}
	return fmt.Sprintf("socks reply %#02x", e.Code)
}

func (e *ReplyError) Unwrap() error { return e.Err }

// SOCKSReply implements Replier.
func (e *ReplyError) SOCKSReply() byte { return e.Code }

// ReplyCode returns the SOCKS5 reply code for a handler error: the code of
// a Replier in err's chain; ReplyTTLExpired for deadlines; connection
// refused, host and network unreachable for the matching errno; else
// ReplyGeneralFailure. Proposal 304 codes are replaced by
// ReplyGeneralFailure unless extended is set.
func ReplyCode(err error, extended bool) byte {
	code := ReplyGeneralFailure
	var r Replier
	switch {
	case err == nil:
		return ReplySucceeded
	case errors.As(err, &r):
		code = r.SOCKSReply()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		code = ReplyTTLExpired
	case errors.Is(err, syscall.ECONNREFUSED):
		code = ReplyConnRefused
	case errors.Is(err, syscall.EHOSTUNREACH):
		code = ReplyHostUnreachable
	case errors.Is(err, syscall.ENETUNREACH):
		code = ReplyNetUnreachable
	}
	if code == ReplySucceeded || (code > ReplyAddrNotSupported && !extended) {
		code = ReplyGeneralFailure
	}
	return code
}
