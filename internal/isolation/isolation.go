// Package isolation decides which streams may share a circuit (stream
// isolation).
//
// Spec and reference behaviour:
//   - path-spec §2.1 "When we build" / §2.2 "Attaching streams to
//     circuits": a client must not attach a stream to a circuit whose
//     earlier streams it is to be isolated from.
//   - socks-extensions §1 (SOCKS4 user ID and SOCKS5 username/password as
//     isolation inputs) and proposal 351 / socks-extensions "extended
//     authentication" (a username of "<torS0X>0" makes the password the
//     isolation string).
//   - C tor's model (connection_edge.c: connection_edge_compatible_with_
//     circuit, connection_edge_update_circuit_isolation; or.h ISO_*): a
//     circuit records the isolation fields of the first stream attached to
//     it and a "mixed" bit per field for which later streams carried a
//     different value. A new stream may attach only if, for every field
//     its own listener isolates on, the circuit is not mixed and the
//     circuit's recorded value equals the stream's.
//
// gotor's Key is a fixed-size comparable value: credentials are stored
// only as (truncated) SHA-256 digests and destination addresses only as a
// keyed 128-bit hash, never in clear.
package isolation

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Flags select the fields a stream is isolated on. They are a property of
// the listener (SocksPort) the stream arrived on, as in C tor, and are
// carried inside every Key.
type Flags uint16

// Isolation fields. The first seven have the meaning of C tor's ISO_*
// bits of the same name.
const (
	// IsolateDestPort: streams to different destination ports never
	// share a circuit (C tor IsolateDestPort, ISO_DESTPORT).
	IsolateDestPort Flags = 1 << iota
	// IsolateDestAddr: streams to different destination addresses (as
	// the application gave them, compared case-insensitively) never share
	// a circuit (C tor IsolateDestAddr, ISO_DESTADDR).
	IsolateDestAddr
	// IsolateSOCKSAuth: streams with different SOCKS credentials never
	// share (C tor IsolateSOCKSAuth, ISO_SOCKSAUTH). Username and password
	// are compared separately; an empty field counts as absent.
	IsolateSOCKSAuth
	// IsolateClientProtocol: streams that arrived with different local
	// protocols (SOCKS4/4a, SOCKS5, HTTP CONNECT, Go API) never share
	// (C tor IsolateClientProtocol, ISO_CLIENTPROTO).
	IsolateClientProtocol
	// IsolateClientAddr: streams from different client IP addresses never
	// share (C tor IsolateClientAddr, ISO_CLIENTADDR).
	IsolateClientAddr
	// IsolateSessionGroup: streams from different session groups never
	// share (C tor ISO_SESSIONGRP). Always set by NewKey: C tor has no
	// option to turn it off, and each listener has its own group unless
	// SessionGroup= is configured.
	IsolateSessionGroup
	// IsolateNymEpoch: streams from before and after a NEWNYM never share
	// (C tor ISO_NYM_EPOCH). Always set by NewKey.
	IsolateNymEpoch
	// IsolateClientPort: streams from different client source ports
	// never share (gotor extension; the design's IsolationLevel "port").
	IsolateClientPort
	// IsolateSessionToken: streams carrying different Go API session
	// tokens never share (the design's "session" level; like arti's
	// IsolationToken). Always set by NewKey: a token is only ever given
	// by a caller that explicitly asked for isolation.
	IsolateSessionToken

	// KeepAliveIsolateSOCKSAuth is not an isolation field but a listener
	// option (C tor KeepAliveIsolateSOCKSAuth): attaching a stream that
	// carries SOCKS credentials renews the circuit's dirtiness timer, so
	// the circuit stays usable for that user while it is in use. Only
	// meaningful together with IsolateSOCKSAuth.
	KeepAliveIsolateSOCKSAuth Flags = 1 << 15
)

const (
	// fieldMask covers the bits that name isolation fields.
	fieldMask = IsolateDestPort | IsolateDestAddr | IsolateSOCKSAuth |
		IsolateClientProtocol | IsolateClientAddr | IsolateSessionGroup |
		IsolateNymEpoch | IsolateClientPort | IsolateSessionToken
	// Always are the fields NewKey always isolates on.
	Always = IsolateSessionGroup | IsolateNymEpoch | IsolateSessionToken
	// Default is C tor's ISO_DEFAULT (IsolateClientAddr, IsolateSOCKSAuth,
	// session group, NEWNYM epoch) plus gotor's session token.
	Default = IsolateClientAddr | IsolateSOCKSAuth | Always
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{IsolateDestPort, "IsolateDestPort"},
	{IsolateDestAddr, "IsolateDestAddr"},
	{IsolateSOCKSAuth, "IsolateSOCKSAuth"},
	{IsolateClientProtocol, "IsolateClientProtocol"},
	{IsolateClientAddr, "IsolateClientAddr"},
	{IsolateSessionGroup, "SessionGroup"},
	{IsolateNymEpoch, "NymEpoch"},
	{IsolateClientPort, "IsolateClientPort"},
	{IsolateSessionToken, "SessionToken"},
	{KeepAliveIsolateSOCKSAuth, "KeepAliveIsolateSOCKSAuth"},
}

// String lists the set flags with their torrc-style names, joined by "+".
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	var b strings.Builder
	for _, n := range flagNames {
		if f&n.f != 0 {
			if b.Len() > 0 {
				b.WriteByte('+')
			}
			b.WriteString(n.name)
		}
	}
	return b.String()
}

// Protocol is the local protocol a stream arrived with (the input of
// IsolateClientProtocol). The numbering matches internal/socks.Protocol.
type Protocol uint8

// Protocols.
const (
	ProtoUnknown Protocol = iota
	ProtoSOCKS4
	ProtoSOCKS4a
	ProtoSOCKS5
	ProtoHTTPConnect
	ProtoAPI // gotor's Go API (client.DialContext)
)

func (p Protocol) String() string {
	switch p {
	case ProtoSOCKS4:
		return "socks4"
	case ProtoSOCKS4a:
		return "socks4a"
	case ProtoSOCKS5:
		return "socks5"
	case ProtoHTTPConnect:
		return "http-connect"
	case ProtoAPI:
		return "api"
	}
	return "unknown"
}

// class folds protocols the way C tor compares them: it compares the
// listener type and the SOCKS version, and SOCKS4a is SOCKS version 4.
func (p Protocol) class() uint8 {
	if p == ProtoSOCKS4a {
		return uint8(ProtoSOCKS4)
	}
	return uint8(p)
}

// SessionGroupUnset means the listener has no SessionGroup= option; the
// stream is then in its listener's own group, as in C tor.
const SessionGroupUnset = -1

// Token is a session token from the Go API. Streams with different tokens
// never share a circuit. The zero Token is "no token".
type Token uint64

var tokenCounter atomic.Uint64

// NewToken returns a token no other call of NewToken has returned.
func NewToken() Token { return Token(tokenCounter.Add(1)) }

// ExtendedAuthPrefix is the proposal 351 username prefix. A username of
// exactly "<torS0X>0" makes the password the isolation string.
const ExtendedAuthPrefix = "<torS0X>"

// StreamInfo is everything about a stream that isolation may look at.
// Credentials are read by NewKey and not retained.
type StreamInfo struct {
	// DestAddr is the destination as the application gave it (hostname
	// or IP literal), before any local resolution; DestPort its port.
	DestAddr string
	DestPort uint16

	// Username and Password are the SOCKS5 RFC 1929 credentials, the
	// SOCKS4 user ID (Username only), or for HTTP CONNECT the
	// Proxy-Authorization (Username) and X-Tor-Stream-Isolation
	// (Password) header values, as C tor maps them. Empty means absent.
	Username, Password []byte
	// ExtFormat is the proposal 351 format code if the username began
	// with "<torS0X>" ('0' or '1'); 0 for legacy credentials. If it is 0
	// and Username begins with the prefix, NewKey parses it itself.
	ExtFormat byte

	// ClientAddr is the application's address and source port.
	ClientAddr netip.AddrPort

	// Listener identifies the listener (SocksPort) the stream arrived on;
	// SessionGroup is that listener's SessionGroup= value or
	// SessionGroupUnset. Streams of listeners without an explicit group
	// are in a group of their own per listener.
	Listener     uint32
	SessionGroup int
	Protocol     Protocol

	// Token is the Go API session token (0 = none).
	Token Token
	// Epoch is the NEWNYM epoch at the time the stream arrived
	// (circmgr.Manager.Epoch).
	Epoch uint64
}

// APIListener is the Listener of streams opened through the Go API;
// SOCKS and HTTP CONNECT listeners are numbered from 1.
const APIListener uint32 = 0

// APIStreamInfo is the isolation input of a Go API stream to host:port
// with session token tok: no credentials, no client address, the API's
// own listener and protocol. (The SOCKS side is socks.Request.StreamInfo.)
func APIStreamInfo(host string, port uint16, tok Token) StreamInfo {
	return StreamInfo{
		DestAddr:     host,
		DestPort:     port,
		Listener:     APIListener,
		SessionGroup: SessionGroupUnset,
		Protocol:     ProtoAPI,
		Token:        tok,
	}
}

// authKind says how the credentials were given.
const (
	authNone     uint8 = iota // no credentials
	authLegacy                // username and/or password compared as given
	authExtended              // "<torS0X>0"/"<torS0X>1": the password is the isolation string
)

// Key is the isolation key of one stream: the stream's isolation flags
// plus the value of every isolation field. It is comparable, fixed-size
// (80 bytes) and holds no credential or address in clear.
//
// The zero Key is valid: no flags, no values.
type Key struct {
	flags      Flags
	proto      uint8
	authKind   uint8
	destPort   uint16
	clientPort uint16
	group      int64
	token      Token
	epoch      uint64
	clientAddr [16]byte
	dest       [16]byte // keyed hash of the lower-cased destination address
	auth       [16]byte // SHA-256 of the credentials (injective encoding), truncated
}

// NewKey builds the isolation key of a stream whose listener isolates on
// flags. IsolateSessionGroup, IsolateNymEpoch and IsolateSessionToken are
// always added. It does not allocate for destinations up to 255 bytes and
// credentials up to 255 bytes each.
func NewKey(info StreamInfo, flags Flags) Key {
	k := Key{
		flags:      flags | Always,
		proto:      info.Protocol.class(),
		destPort:   info.DestPort,
		clientPort: info.ClientAddr.Port(),
		token:      info.Token,
		epoch:      info.Epoch,
	}
	if info.SessionGroup >= 0 {
		k.group = int64(info.SessionGroup)
	} else {
		// Automatic groups are negative and distinct per listener, so
		// they never equal an explicit SessionGroup= (>= 0).
		k.group = -2 - int64(info.Listener)
	}
	if info.ClientAddr.IsValid() {
		k.clientAddr = info.ClientAddr.Addr().Unmap().As16()
		if info.ClientAddr.Addr().Unmap().Is4() {
			// Keep IPv4 and the IPv4-mapped form equal but distinct
			// from a real IPv6 address.
			k.clientAddr[0] = 4
		}
	}
	k.dest = hashDest(info.DestAddr)
	k.authKind, k.auth = hashAuth(info.Username, info.Password, info.ExtFormat)
	return k
}

// Destination hashing uses two independently seeded maphash values (a
// 128-bit keyed hash with a per-process secret seed): destinations are not
// credentials, and this keeps NewKey well under a microsecond.
var destSeed1, destSeed2 = maphash.MakeSeed(), maphash.MakeSeed()

// hashDest hashes a destination address case-insensitively (C tor
// compares with strcasecmp).
func hashDest(s string) (out [16]byte) {
	if s == "" {
		return out
	}
	var stack [256]byte
	buf := stack[:0]
	if len(s) > len(stack) {
		buf = make([]byte, 0, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	binary.LittleEndian.PutUint64(out[:8], maphash.Bytes(destSeed1, buf))
	binary.LittleEndian.PutUint64(out[8:], maphash.Bytes(destSeed2, buf))
	if out == ([16]byte{}) {
		out[0] = 1 // keep "" distinct
	}
	return out
}

// hashAuth hashes credentials so that (username, password) pairs map
// injectively: each field is length-prefixed and marked present/absent,
// as C tor compares username and password separately and treats empty
// fields as absent.
func hashAuth(user, pass []byte, ext byte) (uint8, [16]byte) {
	var out [16]byte
	if ext == 0 && len(user) >= len(ExtendedAuthPrefix) &&
		string(user[:len(ExtendedAuthPrefix)]) == ExtendedAuthPrefix {
		if len(user) == len(ExtendedAuthPrefix)+1 {
			ext = user[len(ExtendedAuthPrefix)]
		} else {
			// Malformed extension (e.g. "<torS0X>0junk"): the SOCKS
			// layer rejects these; if it did not, isolate on the
			// whole credentials, which is never weaker.
			ext = 0
		}
	}
	kind := authLegacy
	if ext != 0 {
		kind = authExtended
		// The isolation string is the password; the format code is
		// part of it so '0' and '1' never mix.
		user = []byte{ext}
	}
	if len(user) == 0 && len(pass) == 0 {
		// (An extended username never gets here: user holds the
		// format code, so an empty isolation string is still distinct
		// from "no credentials".)
		return authNone, out
	}
	return kind, hash16(kind, user, pass)
}

func hash16(kind uint8, user, pass []byte) (out [16]byte) {
	var stack [1 + 5 + 255 + 5 + 255]byte
	buf := stack[:0]
	if n := 11 + len(user) + len(pass); n > len(stack) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, kind)
	buf = appendField(buf, user)
	buf = appendField(buf, pass)
	sum := sha256.Sum256(buf)
	copy(out[:], sum[:16])
	return out
}

func appendField(buf, f []byte) []byte {
	if len(f) == 0 {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(f)))
	return append(buf, f...)
}

// Flags returns the isolation flags the key was built with.
func (k Key) Flags() Flags { return k.flags }

// Epoch returns the NEWNYM epoch recorded in the key.
func (k Key) Epoch() uint64 { return k.epoch }

// DestPort returns the destination port recorded in the key.
func (k Key) DestPort() uint16 { return k.destPort }

// HasAuth reports whether the stream carried SOCKS credentials (or a
// proposal 351 isolation string).
func (k Key) HasAuth() bool { return k.authKind != authNone }

// Diff returns the isolation fields on which a and b carry different
// values, whatever their flags.
func Diff(a, b Key) Flags {
	var d Flags
	if a.destPort != b.destPort {
		d |= IsolateDestPort
	}
	if a.dest != b.dest {
		d |= IsolateDestAddr
	}
	if a.authKind != b.authKind || a.auth != b.auth {
		d |= IsolateSOCKSAuth
	}
	if a.proto != b.proto {
		d |= IsolateClientProtocol
	}
	if a.clientAddr != b.clientAddr {
		d |= IsolateClientAddr
	}
	if a.group != b.group {
		d |= IsolateSessionGroup
	}
	if a.epoch != b.epoch {
		d |= IsolateNymEpoch
	}
	if a.clientPort != b.clientPort {
		d |= IsolateClientPort
	}
	if a.token != b.token {
		d |= IsolateSessionToken
	}
	return d
}

// Compatible reports whether two streams may share a circuit, checking
// every field that either stream's flags isolate on. It is symmetric and
// at least as strict as C tor's rule (which looks only at the newer
// stream's flags); Binding implements the exact C tor rule for circuits.
func (k Key) Compatible(other Key) bool {
	return Diff(k, other)&(k.flags|other.flags)&fieldMask == 0
}

// Project returns the key reduced to the fields that f isolates on, with
// flags f: two keys have equal projections onto f exactly when they agree
// on every field in f. Used as an index key by the circuit pool.
func (k Key) Project(f Flags) Key {
	f &= fieldMask
	p := Key{flags: f}
	if f&IsolateDestPort != 0 {
		p.destPort = k.destPort
	}
	if f&IsolateDestAddr != 0 {
		p.dest = k.dest
	}
	if f&IsolateSOCKSAuth != 0 {
		p.authKind, p.auth = k.authKind, k.auth
	}
	if f&IsolateClientProtocol != 0 {
		p.proto = k.proto
	}
	if f&IsolateClientAddr != 0 {
		p.clientAddr = k.clientAddr
	}
	if f&IsolateSessionGroup != 0 {
		p.group = k.group
	}
	if f&IsolateNymEpoch != 0 {
		p.epoch = k.epoch
	}
	if f&IsolateClientPort != 0 {
		p.clientPort = k.clientPort
	}
	if f&IsolateSessionToken != 0 {
		p.token = k.token
	}
	return p
}

// Tag returns 8 hex characters identifying the key, for logs and the
// control port. It is a hash prefix and reveals no field.
func (k Key) Tag() string {
	var b [80]byte
	buf := binary.BigEndian.AppendUint16(b[:0], uint16(k.flags))
	buf = append(buf, k.proto, k.authKind)
	buf = binary.BigEndian.AppendUint16(buf, k.destPort)
	buf = binary.BigEndian.AppendUint16(buf, k.clientPort)
	buf = binary.BigEndian.AppendUint64(buf, uint64(k.group))
	buf = binary.BigEndian.AppendUint64(buf, uint64(k.token))
	buf = binary.BigEndian.AppendUint64(buf, k.epoch)
	buf = append(buf, k.clientAddr[:]...)
	buf = append(buf, k.dest[:]...)
	buf = append(buf, k.auth[:]...)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:4])
}

// String is Tag plus the flags; it never shows a credential, address or
// port.
func (k Key) String() string { return k.Tag() + "/" + k.flags.String() }

// Binding is the isolation state of one circuit, as in C tor: the key of
// the first stream attached and the fields on which later streams
// differed ("mixed"). The zero Binding is unbound. It is not safe for
// concurrent use.
type Binding struct {
	set   bool
	first Key
	mixed Flags
}

// IsSet reports whether a stream has been attached.
func (b *Binding) IsSet() bool { return b.set }

// First returns the key of the first attached stream.
func (b *Binding) First() Key { return b.first }

// Mixed returns the fields on which attached streams differ.
func (b *Binding) Mixed() Flags { return b.mixed }

// Compatible reports whether a stream with key k may attach: the circuit
// is unbound, or for every field k's flags isolate on, the circuit is not
// mixed and its recorded value equals k's (C tor's
// connection_edge_compatible_with_circuit).
func (b *Binding) Compatible(k Key) bool {
	if !b.set {
		return true
	}
	f := k.flags & fieldMask
	if f&b.mixed != 0 {
		return false
	}
	return Diff(b.first, k)&f == 0
}

// Attach records that a stream with key k was attached (C tor's
// connection_edge_update_circuit_isolation). The caller must have checked
// Compatible.
func (b *Binding) Attach(k Key) {
	if !b.set {
		b.set, b.first = true, k
		return
	}
	b.mixed |= Diff(b.first, k)
}

// Clear forgets the binding (C tor's circuit_clear_isolation); only valid
// for a circuit that never carried a stream.
func (b *Binding) Clear() { *b = Binding{} }
