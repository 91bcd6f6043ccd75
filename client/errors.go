package client

import (
	"errors"

	"github.com/gotor/gotor/internal/errkind"
)

// ErrorKind says why a stream could not be opened. It is itself an
// error, so errors.Is(err, client.ErrConnectionRefused) matches any
// *Error of that kind.
type ErrorKind int

// The kinds of Error. The SOCKS and HTTP CONNECT ports answer with the
// reply codes of the same kinds (internal/errkind, in the same order).
const (
	ErrOther             ErrorKind = iota // none of the below
	ErrNotRunning                         // the client is not started or was stopped
	ErrBadRequest                         // malformed address, port or network
	ErrNoCircuit                          // no circuit could be built
	ErrTimeout                            // no answer in time
	ErrExitPolicy                         // the exit refuses the destination
	ErrConnectionRefused                  // the destination refused the connection
	ErrResolveFailed                      // the exit could not resolve the name
	ErrHostUnreachable                    // the exit has no route to the host
	ErrStreamClosed                       // the exit or the circuit closed the stream
	ErrInternalAddress                    // a private address or local name refused locally
	ErrOnionNotFound                      // no descriptor for the onion service
	ErrOnionDescInvalid                   // its descriptor did not verify or decrypt
	ErrOnionIntroFailed                   // every introduction point failed
	ErrOnionRendFailed                    // the rendezvous failed
	ErrOnionAuthRequired                  // the service needs client authorization
	ErrOnionAuthBad                       // the client authorization was refused
	ErrOnionBadAddress                    // malformed .onion address
	ErrOnionIntroTimeout                  // the introduction timed out
)

func (k ErrorKind) Error() string { return errkind.Kind(k).String() }

// String names the kind.
func (k ErrorKind) String() string { return errkind.Kind(k).String() }

// Error is a failed DialContext (or HTTPClient request): its Kind, the
// address asked for, and the underlying cause.
type Error struct {
	Kind ErrorKind
	Addr string // "host:port" as given
	Err  error  // the cause, for logs
}

func (e *Error) Error() string {
	s := "gotor: " + e.Addr + ": " + e.Kind.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's ErrorKind.
func (e *Error) Is(target error) bool {
	k, ok := target.(ErrorKind)
	return ok && k == e.Kind
}

// publicError classifies an engine error for the public API.
func publicError(err error, addr string) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	cause := err
	var ke *errkind.Error
	if errors.As(err, &ke) && ke.Err != nil {
		cause = ke.Err // its text already says the kind
	}
	return &Error{Kind: ErrorKind(errkind.Of(err)), Addr: addr, Err: cause}
}
