// Typed onion service errors, mapped to the SOCKS5 extended error codes
// of prop304 (socks-extensions.txt §"Extended error codes", F0–F7).

package onion

import (
	"errors"
	"fmt"
)

// ErrorKind classifies onion service connection failures the way SOCKS
// reports them: prop304 extended error codes (socks-extensions.txt).
type ErrorKind int

// Error kinds, with their SOCKS5 reply codes.
const (
	KindDescNotFound      ErrorKind = iota + 1 // F0
	KindDescInvalid                            // F1
	KindIntroFailed                            // F2
	KindRendFailed                             // F3
	KindClientAuthMissing                      // F4
	KindClientAuthBad                          // F5
	KindBadAddress                             // F6
	KindIntroTimeout                           // F7
)

// SOCKSReply returns the prop304 reply code (0xF0..0xF7).
func (k ErrorKind) SOCKSReply() byte {
	switch k {
	case KindDescNotFound:
		return 0xF0
	case KindDescInvalid:
		return 0xF1
	case KindIntroFailed:
		return 0xF2
	case KindRendFailed:
		return 0xF3
	case KindClientAuthMissing:
		return 0xF4
	case KindClientAuthBad:
		return 0xF5
	case KindBadAddress:
		return 0xF6
	case KindIntroTimeout:
		return 0xF7
	}
	return 0x01 // general failure
}

func (k ErrorKind) String() string {
	switch k {
	case KindDescNotFound:
		return "onion service descriptor can not be found"
	case KindDescInvalid:
		return "onion service descriptor is invalid"
	case KindIntroFailed:
		return "onion service introduction failed"
	case KindRendFailed:
		return "onion service rendezvous failed"
	case KindClientAuthMissing:
		return "onion service missing client authorization"
	case KindClientAuthBad:
		return "onion service wrong client authorization"
	case KindBadAddress:
		return "onion service invalid address"
	case KindIntroTimeout:
		return "onion service introduction timed out"
	}
	return fmt.Sprintf("onion error kind %d", int(k))
}

// Error is returned by Client.Dial and friends.
type Error struct {
	Kind ErrorKind
	Addr string // the .onion hostname as given
	Err  error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	s := "onion: " + e.Kind.String()
	if e.Addr != "" {
		s += " (" + e.Addr + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// SOCKSReply extracts the prop304 reply code from err if it is (or wraps)
// an *Error.
func SOCKSReply(err error) (byte, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind.SOCKSReply(), true
	}
	return 0, false
}

// KindOf returns the ErrorKind of err, or 0.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
