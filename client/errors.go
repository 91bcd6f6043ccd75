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
// reply codes of the same kinds.
const (
	ErrOther             = ErrorKind(errkind.Other)             // none of the below
	ErrNotRunning        = ErrorKind(errkind.NotRunning)        // the client is not started or was stopped
	ErrBadRequest        = ErrorKind(errkind.BadRequest)        // malformed address, port or network
	ErrNoCircuit         = ErrorKind(errkind.NoCircuit)         // no circuit could be built
	ErrTimeout           = ErrorKind(errkind.Timeout)           // no answer in time
	ErrExitPolicy        = ErrorKind(errkind.ExitPolicy)        // the exit refuses the destination
	ErrConnectionRefused = ErrorKind(errkind.ConnectionRefused) // the destination refused the connection
	ErrResolveFailed     = ErrorKind(errkind.ResolveFailed)     // the exit could not resolve the name
	ErrHostUnreachable   = ErrorKind(errkind.HostUnreachable)   // the exit has no route to the host
	ErrStreamClosed      = ErrorKind(errkind.StreamClosed)      // the exit or the circuit closed the stream
	ErrInternalAddress   = ErrorKind(errkind.InternalAddress)   // a private address refused locally
	ErrOnionNotFound     = ErrorKind(errkind.OnionDescNotFound) // no descriptor for the onion service
	ErrOnionDescInvalid  = ErrorKind(errkind.OnionDescInvalid)  // its descriptor did not verify or decrypt
	ErrOnionIntroFailed  = ErrorKind(errkind.OnionIntroFailed)  // every introduction point failed
	ErrOnionRendFailed   = ErrorKind(errkind.OnionRendFailed)   // the rendezvous failed
	ErrOnionAuthRequired = ErrorKind(errkind.OnionAuthRequired) // the service needs client authorization
	ErrOnionAuthBad      = ErrorKind(errkind.OnionAuthBad)      // the client authorization was refused
	ErrOnionBadAddress   = ErrorKind(errkind.OnionBadAddress)   // malformed .onion address
	ErrOnionIntroTimeout = ErrorKind(errkind.OnionIntroTimeout) // the introduction timed out
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
