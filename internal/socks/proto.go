package socks

// Wire format of SOCKS4/4a (socks4.protocol, socks4a.protocol), SOCKS5
// (RFC 1928), username/password subnegotiation (RFC 1929) and Tor's
// extensions (torspec socks-extensions.txt, proposals 304 and 351).
// Every read is bounded; malformed input yields a *protoError, never a
// panic.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

const (
	// maxSOCKS4Field bounds a SOCKS4 user ID, as C tor's
	// MAX_SOCKS_MESSAGE_LEN.
	maxSOCKS4Field = 512
	// maxHostLen bounds a hostname (C tor's MAX_SOCKS_ADDR_LEN is 256
	// including the NUL).
	maxHostLen = 255
	// maxSOCKSHandshake bounds the bytes read before a request is
	// complete: a SOCKS5 handshake carries at most 2+255 (methods),
	// 3+255+255 (auth) and 7+255 (request) bytes; SOCKS4a at most
	// 8+513+256. Bytes beyond that still in the buffer are optimistic data.
	maxSOCKSHandshake = 2048
)

// protoError is a handshake failure. reply is the code to send (a SOCKS5
// code, translated for SOCKS4); noReply means close without replying.
type protoError struct {
	version byte
	reply   byte
	noReply bool
	msg     string
}

func (e *protoError) Error() string { return "socks: " + e.msg }

func errf(version, reply byte, format string, args ...any) *protoError {
	return &protoError{version: version, reply: reply, msg: fmt.Sprintf(format, args...)}
}

// errHTTPOnSOCKS reports that the client spoke HTTP to a SOCKS port
// (socks-extensions §4).
var errHTTPOnSOCKS = errors.New("socks: client sent an HTTP request to a SOCKS port")

// handshakeOpts are the per-port settings the parser needs.
type handshakeOpts struct {
	safeSocks    bool
	preferNoAuth bool
	warnUnsafe   func(proto Protocol, host string, port uint16, rejected bool)
}

// readHandshake reads one SOCKS request from r, writing the SOCKS5 method
// selection and authentication replies to w. It does not write the final
// reply. On error the returned *protoError says what reply to send.
func readHandshake(r *bufio.Reader, w io.Writer, o *handshakeOpts) (*Request, error) {
	ver, err := r.Peek(1)
	if err != nil {
		return nil, &protoError{noReply: true, msg: "reading version: " + err.Error()}
	}
	switch ver[0] {
	case 4:
		return readSOCKS4(r, o)
	case 5:
		return readSOCKS5(r, w, o)
	case 'G', 'H', 'P', 'C':
		return nil, errHTTPOnSOCKS
	}
	return nil, &protoError{noReply: true, msg: fmt.Sprintf("unknown version %#02x", ver[0])}
}

// readFull reads exactly n bytes.
func readFull(r *bufio.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// readCString reads a NUL-terminated string of at most max bytes
// (excluding the NUL).
func readCString(r *bufio.Reader, max int) ([]byte, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == 0 {
			return b, nil
		}
		if len(b) == max {
			return nil, errors.New("string too long")
		}
		b = append(b, c)
	}
}

// readSOCKS4 parses a SOCKS4 or SOCKS4a request:
//
//	VN=4 CD DSTPORT(2) DSTIP(4) USERID NUL [HOSTNAME NUL if DSTIP=0.0.0.x, x!=0]
func readSOCKS4(r *bufio.Reader, o *handshakeOpts) (*Request, error) {
	hdr, err := readFull(r, 8)
	if err != nil {
		return nil, &protoError{version: 4, noReply: true, msg: "socks4: truncated request"}
	}
	req := &Request{Version: 4, Protocol: ProtoSOCKS4, Command: Command(hdr[1]),
		Port: binary.BigEndian.Uint16(hdr[2:4]), AddrType: AddrIPv4}
	ip := [4]byte(hdr[4:8])
	user, err := readCString(r, maxSOCKS4Field)
	if err != nil {
		return nil, errf(4, ReplyGeneralFailure, "socks4: bad user ID: %v", err)
	}
	if len(user) > 0 {
		req.Username = user
	}
	if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
		host, err := readCString(r, maxHostLen)
		if err != nil {
			return nil, errf(4, ReplyGeneralFailure, "socks4a: bad hostname: %v", err)
		}
		if err := checkHostname(host); err != nil {
			return nil, errf(4, ReplyGeneralFailure, "socks4a: %v", err)
		}
		req.Protocol, req.AddrType, req.Host = ProtoSOCKS4a, AddrDomain, string(host)
	} else {
		req.Host = netip.AddrFrom4(ip).String()
	}
	if req.Port == 0 || ip == [4]byte{} {
		return nil, errf(4, ReplyGeneralFailure, "socks4: port or destination address is zero")
	}
	switch req.Command {
	case CmdConnect, CmdResolve:
	default:
		return nil, errf(4, ReplyCmdNotSupported, "socks4: command %v not supported", req.Command)
	}
	if req.Protocol == ProtoSOCKS4 {
		o.warnUnsafe(ProtoSOCKS4, req.Host, req.Port, o.safeSocks)
		if o.safeSocks {
			return nil, errf(4, ReplyNotAllowed, "socks4: request for an IP address refused by SafeSocks")
		}
	}
	return req, nil
}

// readSOCKS5 runs the SOCKS5 method negotiation, the optional RFC 1929
// subnegotiation, and parses the request:
//
//	VER=5 NMETHODS METHODS...
//	[VER=1 ULEN UNAME PLEN PASSWD]
//	VER=5 CMD RSV ATYP DST.ADDR DST.PORT(2)
func readSOCKS5(r *bufio.Reader, w io.Writer, o *handshakeOpts) (*Request, error) {
	hdr, err := readFull(r, 2)
	if err != nil {
		return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated method selection"}
	}
	methods, err := readFull(r, int(hdr[1]))
	if err != nil {
		return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated method list"}
	}
	hasNoAuth := bytes.IndexByte(methods, AuthNone) >= 0
	hasUserPass := bytes.IndexByte(methods, AuthUserPass) >= 0
	method := authNoAccept
	switch {
	case hasUserPass && !(hasNoAuth && o.preferNoAuth):
		method = AuthUserPass
	case hasNoAuth:
		method = AuthNone
	}
	if _, err := w.Write([]byte{5, method}); err != nil {
		return nil, &protoError{version: 5, noReply: true, msg: "socks5: writing method: " + err.Error()}
	}
	if method == authNoAccept {
		return nil, &protoError{version: 5, noReply: true, msg: "socks5: client offers neither no-auth nor username/password"}
	}
	req := &Request{Version: 5, Protocol: ProtoSOCKS5, AuthMethod: method}

	// Like C tor, accept an RFC 1929 message even when no-auth was
	// selected (socks-extensions §1.1).
	next, err := r.Peek(1)
	if err != nil {
		return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated request"}
	}
	if method == AuthUserPass || next[0] == 1 {
		if err := readUserPass(r, w, req); err != nil {
			return nil, err
		}
	}

	hdr, err = readFull(r, 4)
	if err != nil {
		return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated request"}
	}
	if hdr[0] != 5 {
		return nil, errf(5, ReplyGeneralFailure, "socks5: bad request version %#02x", hdr[0])
	}
	req.Command, req.AddrType = Command(hdr[1]), AddrType(hdr[3])
	switch req.Command {
	case CmdConnect, CmdResolve, CmdResolvePTR:
	default:
		return nil, errf(5, ReplyCmdNotSupported, "socks5: command %v not supported", req.Command)
	}
	switch req.AddrType {
	case AddrIPv4, AddrIPv6:
		n := 4
		if req.AddrType == AddrIPv6 {
			n = 16
		}
		b, err := readFull(r, n)
		if err != nil {
			return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated address"}
		}
		a, _ := netip.AddrFromSlice(b)
		req.Host = a.String()
	case AddrDomain:
		n, err := r.ReadByte()
		if err != nil {
			return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated address"}
		}
		b, err := readFull(r, int(n))
		if err != nil {
			return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated address"}
		}
		if err := checkHostname(b); err != nil {
			return nil, errf(5, ReplyGeneralFailure, "socks5: %v", err)
		}
		req.Host = string(b)
	default:
		return nil, errf(5, ReplyAddrNotSupported, "socks5: address type %#02x not supported", byte(req.AddrType))
	}
	port, err := readFull(r, 2)
	if err != nil {
		return nil, &protoError{version: 5, noReply: true, msg: "socks5: truncated port"}
	}
	req.Port = binary.BigEndian.Uint16(port)

	if req.Command == CmdResolvePTR {
		if _, err := netip.ParseAddr(req.Host); err != nil {
			return nil, errf(5, ReplyAddrNotSupported, "socks5: RESOLVE_PTR needs an IP address")
		}
	} else if req.AddrType != AddrDomain {
		o.warnUnsafe(ProtoSOCKS5, req.Host, req.Port, o.safeSocks)
		if o.safeSocks {
			return nil, errf(5, ReplyNotAllowed, "socks5: request for an IP address refused by SafeSocks")
		}
	}
	if err := interpretExtendedAuth(req); err != nil {
		return nil, err
	}
	return req, nil
}

// readUserPass parses an RFC 1929 message and accepts it, whatever the
// credentials (they are isolation inputs, not secrets we check). Empty
// fields are allowed, as C tor allows them.
func readUserPass(r *bufio.Reader, w io.Writer, req *Request) error {
	trunc := &protoError{version: 5, noReply: true, msg: "socks5: truncated username/password"}
	ver, err := r.ReadByte()
	if err != nil {
		return trunc
	}
	if ver != 1 {
		w.Write([]byte{1, 1})
		return &protoError{version: 5, noReply: true, msg: fmt.Sprintf("socks5: bad auth version %#02x", ver)}
	}
	var fields [2][]byte
	for i := range fields {
		n, err := r.ReadByte()
		if err != nil {
			return trunc
		}
		if fields[i], err = readFull(r, int(n)); err != nil {
			return trunc
		}
	}
	req.Username, req.Password = fields[0], fields[1]
	if _, err := w.Write([]byte{1, 0}); err != nil {
		return &protoError{version: 5, noReply: true, msg: "socks5: writing auth reply: " + err.Error()}
	}
	return nil
}

// interpretExtendedAuth applies proposal 351: a username starting with
// "<torS0X>" is followed by a one-byte format code. Format '0' must end
// there and makes the password the isolation string. Format '1' carries
// an RPC object ID; gotor has no RPC, so it is refused, as arti built
// without RPC refuses it (taking it as plain credentials would drop the
// object the application meant). Other forms are refused too.
func interpretExtendedAuth(req *Request) error {
	rest, ok := bytes.CutPrefix(req.Username, []byte(ExtendedAuthPrefix))
	if !ok {
		return nil
	}
	if len(rest) == 0 {
		return errf(5, ReplyGeneralFailure, "socks5: extended auth without a format code")
	}
	switch code, rest := rest[0], rest[1:]; {
	case code == '0' && len(rest) == 0:
		req.ExtFormat = '0'
	case code == '0':
		return errf(5, ReplyGeneralFailure, "socks5: extraneous data after <torS0X>0")
	case code == '1':
		return errf(5, ReplyGeneralFailure, "socks5: <torS0X>1 (an RPC object) is not supported: gotor has no RPC")
	default:
		return errf(5, ReplyGeneralFailure, "socks5: unknown extended auth format %q", code)
	}
	return nil
}

// checkHostname rejects names no resolver would accept and that could
// confuse logs: empty names and control characters.
func checkHostname(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty hostname")
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return errors.New("hostname contains control characters")
		}
	}
	return nil
}

// socks4Reply is VN=0 CD DSTPORT DSTIP. SOCKS4 has one failure code.
func socks4Reply(code byte, addr netip.Addr) []byte {
	b := []byte{0, socks4Granted, 0, 0, 0, 0, 0, 0}
	if code != ReplySucceeded {
		b[1] = socks4Rejected
	}
	if addr.Is4() {
		a := addr.As4()
		copy(b[4:], a[:])
	}
	return b
}

// socks5Reply is VER REP RSV ATYP BND.ADDR BND.PORT. Like C tor, CONNECT
// replies carry 0.0.0.0:0; RESOLVE replies carry the answer address,
// RESOLVE_PTR replies the name.
func socks5Reply(code byte, addr netip.Addr, name string) []byte {
	b := []byte{5, code, 0}
	switch {
	case name != "":
		if len(name) > maxHostLen {
			name = name[:maxHostLen]
		}
		b = append(b, byte(AddrDomain), byte(len(name)))
		b = append(b, name...)
	case addr.Is4():
		a := addr.As4()
		b = append(b, byte(AddrIPv4))
		b = append(b, a[:]...)
	case addr.Is6():
		a := addr.As16()
		b = append(b, byte(AddrIPv6))
		b = append(b, a[:]...)
	default:
		b = append(b, byte(AddrIPv4), 0, 0, 0, 0)
	}
	return append(b, 0, 0)
}
