// Configuration helpers: the design's IsolationLevel / Isolate* fields
// and C tor's SocksPort isolation options (tor(1) "SocksPort", parsed in
// C tor's config.c parse_port_config) both become Flags.

package isolation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Level is a set of the design's isolation levels.
type Level uint8

// Levels. They combine: "destination,credential" isolates on both.
const (
	LevelDestination Level = 1 << iota // destination address and port
	LevelCredential                    // SOCKS username/password (and prop 351 isolation strings)
	LevelPort                          // client source port (gotor extension)
	LevelSession                       // Go API session tokens
)

// LevelNone is the empty set.
const LevelNone Level = 0

// ParseLevel parses the design's IsolationLevel: "none", "destination",
// "credential" (or "credentials"), "port", "session", or several of them
// separated by ",", "+", "|" or spaces. "" means "none".
func ParseLevel(s string) (Level, error) {
	var l Level
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ',' || r == '+' || r == '|' || r == ' ' || r == '\t'
	})
	sawNone := false
	for _, w := range words {
		switch w {
		case "none":
			sawNone = true
		case "destination", "dest":
			l |= LevelDestination
		case "credential", "credentials":
			l |= LevelCredential
		case "port":
			l |= LevelPort
		case "session":
			l |= LevelSession
		default:
			return 0, fmt.Errorf("isolation: unknown IsolationLevel %q", w)
		}
	}
	if sawNone && l != 0 {
		return 0, fmt.Errorf("isolation: IsolationLevel %q combines none with other levels", s)
	}
	return l, nil
}

func (l Level) String() string {
	if l == 0 {
		return "none"
	}
	var parts []string
	for _, x := range []struct {
		l Level
		s string
	}{{LevelDestination, "destination"}, {LevelCredential, "credential"}, {LevelPort, "port"}, {LevelSession, "session"}} {
		if l&x.l != 0 {
			parts = append(parts, x.s)
		}
	}
	return strings.Join(parts, ",")
}

// Config holds the design's isolation fields (as found on gotor's
// config.Config) plus the C tor options that have no design name.
type Config struct {
	IsolationLevel      string // see ParseLevel
	IsolateDestinations bool   // = level "destination"
	IsolateSOCKSAuth    bool   // = level "credential"; C tor's default is on
	IsolateClientPort   bool   // = level "port"

	// C tor options without a design field.
	NoIsolateClientAddr       bool // C tor NoIsolateClientAddr
	IsolateClientProtocol     bool // C tor IsolateClientProtocol
	KeepAliveIsolateSOCKSAuth bool // C tor KeepAliveIsolateSOCKSAuth
}

// ErrKeepAliveWithoutAuth mirrors C tor's refusal of
// "NoIsolateSOCKSAuth KeepAliveIsolateSOCKSAuth".
var ErrKeepAliveWithoutAuth = errors.New("isolation: KeepAliveIsolateSOCKSAuth needs SOCKS auth isolation")

// FlagsFromConfig converts the design's fields to Flags.
//
//   - Isolation is off — only the always-on fields (NEWNYM epoch, session
//     group i.e. listener, explicit session tokens) — when IsolationLevel
//     is "none" (or empty) and IsolateSOCKSAuth, IsolateDestinations,
//     IsolateClientPort and IsolateClientProtocol are all false.
//   - Otherwise IsolateClientAddr is on (C tor's default) unless
//     NoIsolateClientAddr, and each level/field adds its fields:
//     destination → IsolateDestAddr+IsolateDestPort; credential →
//     IsolateSOCKSAuth; port → IsolateClientPort+IsolateClientAddr (a
//     source port only names an application together with its host);
//     session → IsolateSessionToken (always on anyway).
//
// So IsolationLevel "none" with IsolateSOCKSAuth true is exactly C tor's
// ISO_DEFAULT.
func FlagsFromConfig(c Config) (Flags, error) {
	l, err := ParseLevel(c.IsolationLevel)
	if err != nil {
		return 0, err
	}
	if c.IsolateDestinations {
		l |= LevelDestination
	}
	if c.IsolateSOCKSAuth {
		l |= LevelCredential
	}
	if c.IsolateClientPort {
		l |= LevelPort
	}
	if c.KeepAliveIsolateSOCKSAuth && l&LevelCredential == 0 {
		return 0, ErrKeepAliveWithoutAuth
	}
	f := Always
	if l&^LevelSession == 0 && !c.IsolateClientProtocol {
		return f, nil // off
	}
	if !c.NoIsolateClientAddr {
		f |= IsolateClientAddr
	}
	if l&LevelDestination != 0 {
		f |= IsolateDestAddr | IsolateDestPort
	}
	if l&LevelCredential != 0 {
		f |= IsolateSOCKSAuth
	}
	if l&LevelPort != 0 {
		f |= IsolateClientPort | IsolateClientAddr
	}
	if c.IsolateClientProtocol {
		f |= IsolateClientProtocol
	}
	if c.KeepAliveIsolateSOCKSAuth {
		f |= KeepAliveIsolateSOCKSAuth
	}
	return f, nil
}

// ListenerOptions are the isolation options of one SocksPort line.
type ListenerOptions struct {
	Flags        Flags
	SessionGroup int // SessionGroupUnset if not given
}

// DefaultListenerOptions are those of a SocksPort line without options:
// C tor's ISO_DEFAULT, no session group.
func DefaultListenerOptions() ListenerOptions {
	return ListenerOptions{Flags: Default, SessionGroup: SessionGroupUnset}
}

// ApplySocksPortOption applies one C tor SocksPort option word
// ("IsolateDestAddr", "NoIsolateClientAddr", "SessionGroup=3",
// "KeepAliveIsolateSOCKSAuth", plurals accepted as in C tor, and gotor's
// "IsolateClientPort"). It returns false if opt is not an isolation
// option (e.g. "IPv6Traffic"), leaving o unchanged. Call Validate after
// the last option.
func (o *ListenerOptions) ApplySocksPortOption(opt string) (bool, error) {
	if v, ok := cutPrefixFold(opt, "SessionGroup="); ok {
		g, err := strconv.ParseInt(v, 10, 32)
		if err != nil || g < 0 {
			return true, fmt.Errorf("isolation: invalid SocksPort option %q", opt)
		}
		if o.SessionGroup >= 0 {
			return true, fmt.Errorf("isolation: multiple SessionGroup options on one SocksPort")
		}
		o.SessionGroup = int(g)
		return true, nil
	}
	word, no := opt, false
	if rest, ok := cutPrefixFold(word, "No"); ok {
		word, no = rest, true
	}
	if strings.EqualFold(word, "KeepAliveIsolateSOCKSAuth") {
		if no {
			o.Flags &^= KeepAliveIsolateSOCKSAuth
		} else {
			o.Flags |= KeepAliveIsolateSOCKSAuth
		}
		return true, nil
	}
	if len(word) > 1 && (word[len(word)-1] == 's' || word[len(word)-1] == 'S') {
		word = word[:len(word)-1] // C tor kills plurals
	}
	var f Flags
	switch strings.ToLower(word) {
	case "isolatedestport":
		f = IsolateDestPort
	case "isolatedestaddr":
		f = IsolateDestAddr
	case "isolatesocksauth":
		f = IsolateSOCKSAuth
	case "isolateclientprotocol":
		f = IsolateClientProtocol
	case "isolateclientaddr":
		f = IsolateClientAddr
	case "isolateclientport":
		f = IsolateClientPort
	default:
		return false, nil
	}
	if no {
		o.Flags &^= f
	} else {
		o.Flags |= f
	}
	return true, nil
}

// Validate checks the combination, as C tor does after parsing a port.
func (o *ListenerOptions) Validate() error {
	if o.Flags&KeepAliveIsolateSOCKSAuth != 0 && o.Flags&IsolateSOCKSAuth == 0 {
		return ErrKeepAliveWithoutAuth
	}
	o.Flags |= Always
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
