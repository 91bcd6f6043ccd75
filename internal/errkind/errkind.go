// Package errkind is gotor's one vocabulary for why a stream could not be
// opened: the Go API's client.Error kinds and the SOCKS5 / HTTP CONNECT
// replies are both derived from it, so an application sees the same
// reason whichever way it reached gotor.
//
// Sources: tor-spec §6.3 (RELAY_END reasons), socks-extensions.txt
// ("Extended error codes", proposal 304: F0–F7 for onion services) and
// C tor's stream_end_reason_to_socks5_response for the reply codes.
package errkind

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/socks"
	"github.com/gotor/gotor/internal/stream"
)

// Kind classifies a failure to open or use a stream.
type Kind int

// The kinds. Their numbering is part of client's public API (client
// declares the same values); append, never reorder.
const (
	Other             Kind = iota // none of the below
	NotRunning                    // the client is not started or was stopped
	BadRequest                    // malformed address, port or network
	NoCircuit                     // no circuit could be built for the stream
	Timeout                       // the exit or the circuit did not answer in time
	ExitPolicy                    // the exit's policy refuses the destination
	ConnectionRefused             // the destination refused the connection
	ResolveFailed                 // the exit could not resolve the name
	HostUnreachable               // the exit has no route to the destination
	StreamClosed                  // the exit or the circuit closed the stream
	InternalAddress               // a private or loopback destination was refused locally
	OnionDescNotFound             // no HSDir had the onion service's descriptor
	OnionDescInvalid              // the onion service's descriptor did not verify or decrypt
	OnionIntroFailed              // every introduction point failed
	OnionRendFailed               // the rendezvous failed
	OnionAuthRequired             // the service needs client authorization and none is configured
	OnionAuthBad                  // the configured client authorization was refused
	OnionBadAddress               // the .onion address is malformed
	OnionIntroTimeout             // the introduction timed out
	numKinds
)

var names = [numKinds]string{
	Other:             "stream failed",
	NotRunning:        "client not running",
	BadRequest:        "bad request",
	NoCircuit:         "no circuit",
	Timeout:           "timed out",
	ExitPolicy:        "refused by the exit's policy",
	ConnectionRefused: "connection refused",
	ResolveFailed:     "name resolution failed at the exit",
	HostUnreachable:   "host unreachable",
	StreamClosed:      "stream closed",
	InternalAddress:   "internal address refused",
	OnionDescNotFound: "onion service descriptor not found",
	OnionDescInvalid:  "onion service descriptor invalid",
	OnionIntroFailed:  "onion service introduction failed",
	OnionRendFailed:   "onion service rendezvous failed",
	OnionAuthRequired: "onion service requires client authorization",
	OnionAuthBad:      "onion service client authorization refused",
	OnionBadAddress:   "invalid onion address",
	OnionIntroTimeout: "onion service introduction timed out",
}

func (k Kind) String() string {
	if k >= 0 && k < numKinds {
		return names[k]
	}
	return fmt.Sprintf("error kind %d", int(k))
}

// Error is a classified failure. It carries the RELAY_END reason when an
// exit gave one, so the SOCKS reply is exactly C tor's.
type Error struct {
	Kind      Kind
	EndReason stream.Reason // 0 when no RELAY_END was received
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Kind.String() + ": " + e.Err.Error()
	}
	return e.Kind.String()
}

func (e *Error) Unwrap() error { return e.Err }

// SOCKSReply is the SOCKS5 reply code for e (socks.Replier).
func (e *Error) SOCKSReply() byte {
	if e.EndReason != 0 {
		return replyForEnd(e.EndReason)
	}
	return e.Kind.SOCKSReply()
}

// replyForEnd maps a RELAY_END reason received before the stream was
// connected to the SOCKS5 reply code C tor sends for it
// (stream_end_reason_to_socks5_response in C tor's reasons.c). DONE and
// CONNRESET before CONNECTED mean the exit's connection was refused or
// dropped. Unknown reasons are general failures.
func replyForEnd(r stream.Reason) byte {
	switch r {
	case 0:
		return socks.ReplySucceeded
	case stream.ReasonResolveFailed, stream.ReasonNoRoute:
		return socks.ReplyHostUnreachable
	case stream.ReasonConnectRefused, stream.ReasonDone, stream.ReasonConnReset:
		return socks.ReplyConnRefused
	case stream.ReasonExitPolicy:
		return socks.ReplyNotAllowed
	case stream.ReasonTimeout:
		return socks.ReplyTTLExpired
	}
	return socks.ReplyGeneralFailure // MISC, DESTROY, HIBERNATING, INTERNAL, ...
}

// SOCKSReply is the SOCKS5 reply code for a failure of kind k, the
// onion kinds being prop304's extended codes.
func (k Kind) SOCKSReply() byte {
	switch k {
	case NoCircuit, StreamClosed, Other, NotRunning:
		return socks.ReplyGeneralFailure
	case BadRequest, InternalAddress:
		return socks.ReplyNotAllowed
	case Timeout:
		return socks.ReplyTTLExpired
	case ExitPolicy:
		return socks.ReplyNotAllowed
	case ConnectionRefused:
		return socks.ReplyConnRefused
	case ResolveFailed, HostUnreachable:
		return socks.ReplyHostUnreachable
	}
	if ok := onionKind(k); ok != 0 {
		return ok.SOCKSReply()
	}
	return socks.ReplyGeneralFailure
}

var onionKinds = map[onion.ErrorKind]Kind{
	onion.KindDescNotFound:      OnionDescNotFound,
	onion.KindDescInvalid:       OnionDescInvalid,
	onion.KindIntroFailed:       OnionIntroFailed,
	onion.KindRendFailed:        OnionRendFailed,
	onion.KindClientAuthMissing: OnionAuthRequired,
	onion.KindClientAuthBad:     OnionAuthBad,
	onion.KindBadAddress:        OnionBadAddress,
	onion.KindIntroTimeout:      OnionIntroTimeout,
}

func onionKind(k Kind) onion.ErrorKind {
	for ok, kk := range onionKinds {
		if kk == k {
			return ok
		}
	}
	return 0
}

// endKinds maps RELAY_END reasons (tor-spec §6.3) to kinds.
var endKinds = map[stream.Reason]Kind{
	stream.ReasonResolveFailed:  ResolveFailed,
	stream.ReasonConnectRefused: ConnectionRefused,
	stream.ReasonExitPolicy:     ExitPolicy,
	stream.ReasonTimeout:        Timeout,
	stream.ReasonNoRoute:        HostUnreachable,
}

// Of classifies err: an *Error keeps its kind; a RELAY_END, an onion
// error, a deadline or a dead circuit get theirs.
func Of(err error) Kind {
	var e *Error
	var end *stream.EndError
	var oe *onion.Error
	var destroyed *circuit.DestroyedError
	switch {
	case err == nil:
		return Other
	case errors.As(err, &e):
		return e.Kind
	case errors.As(err, &oe):
		if k, ok := onionKinds[oe.Kind]; ok {
			return k
		}
	case errors.As(err, &end):
		if k, ok := endKinds[end.Reason]; ok {
			return k
		}
		return StreamClosed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return Timeout
	case errors.Is(err, circuit.ErrClosed), errors.As(err, &destroyed):
		return StreamClosed
	}
	return Other
}

// Wrap classifies err as an *Error (nil stays nil; an *Error is returned
// as it is).
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	out := &Error{Kind: Of(err), Err: err}
	var end *stream.EndError
	if errors.As(err, &end) {
		out.EndReason = end.Reason
	}
	return out
}

// New returns an *Error of kind k for err.
func New(k Kind, err error) *Error { return &Error{Kind: k, Err: err} }
