// Package pt runs client pluggable transports as pt-spec ("Pluggable
// Transport Specification (Version 1)") describes them, and connects
// through them.
//
// Files by concern:
//   - args.go: transport names (§3.1) and the per-connection k=v arguments
//     of a Bridge line, encoded for the SOCKS handshake (§3.5);
//   - plugin.go: the ClientTransportPlugin torrc line (tor(1));
//   - proto.go, kvline.go: the lines a transport writes on stdout (§3.3);
//   - process.go: one managed transport process: environment (§3.2),
//     configuration protocol, shutdown (§3.4);
//   - manager.go: transports by name, each process started the first
//     time a bridge needs one of its transports (as C tor launches only
//     the proxies some Bridge line uses) and restarted after it died.
package pt

import (
	"fmt"
	"strings"
)

// ValidName reports whether s is a valid transport name: a C identifier,
// [a-zA-Z_][a-zA-Z0-9_]* (pt-spec §3.1).
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Arg is one KEY=VALUE argument of a Bridge line.
type Arg struct{ Key, Value string }

// Args are a bridge's transport arguments, in Bridge line order.
type Args []Arg

// ParseArg parses one KEY=VALUE item: the key is everything before the
// first '=' and must not be empty (C tor's string_is_key_value).
func ParseArg(s string) (Arg, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return Arg{}, fmt.Errorf("pt: %q is not a k=v argument", s)
	}
	if k == "" {
		return Arg{}, fmt.Errorf("pt: %q has an empty key", s)
	}
	return Arg{Key: k, Value: v}, nil
}

// Get returns the value of the first argument named key.
func (a Args) Get(key string) (string, bool) {
	for _, x := range a {
		if x.Key == key {
			return x.Value, true
		}
	}
	return "", false
}

// String gives the arguments as on a Bridge line: "k=v k=v".
func (a Args) String() string {
	parts := make([]string, len(a))
	for i, x := range a {
		parts[i] = x.Key + "=" + x.Value
	}
	return strings.Join(parts, " ")
}

// MaxEncodedArgs is the longest encoded argument string that fits the
// SOCKS5 username and password fields together (255 bytes each): C tor's
// MAX_SOCKS5_AUTH_SIZE_TOTAL.
const MaxEncodedArgs = 2 * 255

// Encode returns the arguments as a transport reads them from the SOCKS
// authentication fields (pt-spec §3.5): each k=v escaped, joined by ';'.
// Backslash and ';' are escaped with a backslash everywhere, '=' in keys
// too. Values keep their '=' unescaped: C tor (pt_stringify_socks_args)
// does not escape it, and a transport reads a value up to the next
// unescaped ';', so "url=https://x/?a=b" reaches it intact either way.
func (a Args) Encode() string {
	var b strings.Builder
	for i, x := range a {
		if i > 0 {
			b.WriteByte(';')
		}
		escape(&b, x.Key, "\\;=")
		b.WriteByte('=')
		escape(&b, x.Value, "\\;")
	}
	return b.String()
}

func escape(b *strings.Builder, s, special string) {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(special, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
}

// SOCKS5Auth returns the RFC 1929 username and password that carry the
// arguments (pt-spec §3.5, C tor's connection_read_proxy_handshake): the
// encoded string in the username, and a single NUL as password, or, when
// it is longer than 255 bytes, its first 255 bytes as username and the
// rest as password. No arguments: no authentication (both empty).
func (a Args) SOCKS5Auth() (user, pass string, err error) {
	s := a.Encode()
	switch {
	case len(a) == 0:
		return "", "", nil
	case len(s) > MaxEncodedArgs:
		return "", "", fmt.Errorf("pt: transport arguments are %d bytes encoded, more than the %d that fit in SOCKS5 username and password", len(s), MaxEncodedArgs)
	case len(s) > 255:
		return s[:255], s[255:], nil
	default:
		return s, "\x00", nil
	}
}
