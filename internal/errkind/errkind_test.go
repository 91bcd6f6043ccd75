package errkind

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/socks"
	"github.com/gotor/gotor/internal/stream"
)

func TestReplyForEndReason(t *testing.T) {
	tests := []struct {
		reason cell.EndReason
		want   byte
	}{
		{0, socks.ReplySucceeded},
		{cell.EndMisc, socks.ReplyGeneralFailure},
		{cell.EndResolveFailed, socks.ReplyHostUnreachable},
		{cell.EndConnectRefused, socks.ReplyConnRefused},
		{cell.EndExitPolicy, socks.ReplyNotAllowed},
		{cell.EndDestroy, socks.ReplyGeneralFailure},
		{cell.EndDone, socks.ReplyConnRefused},
		{cell.EndTimeout, socks.ReplyTTLExpired},
		{cell.EndNoRoute, socks.ReplyHostUnreachable},
		{cell.EndHibernating, socks.ReplyGeneralFailure},
		{cell.EndInternal, socks.ReplyGeneralFailure},
		{cell.EndResourceLimit, socks.ReplyGeneralFailure},
		{cell.EndConnReset, socks.ReplyConnRefused},
		{cell.EndTorProtocol, socks.ReplyGeneralFailure},
		{cell.EndNotDirectory, socks.ReplyGeneralFailure},
		{200, socks.ReplyGeneralFailure},
	}
	for _, tt := range tests {
		if got := replyForEnd(tt.reason); got != tt.want {
			t.Errorf("replyForEnd(%s) = %d, want %d", tt.reason, got, tt.want)
		}
	}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Kind
	}{
		{&stream.EndError{Reason: stream.ReasonConnectRefused}, ConnectionRefused},
		{fmt.Errorf("wrapped: %w", &stream.EndError{Reason: stream.ReasonExitPolicy}), ExitPolicy},
		{&stream.EndError{Reason: stream.ReasonMisc}, StreamClosed},
		{&onion.Error{Kind: onion.KindDescNotFound}, OnionDescNotFound},
		{&onion.Error{Kind: onion.KindClientAuthMissing}, OnionAuthRequired},
		{context.DeadlineExceeded, Timeout},
		{New(NoCircuit, errors.New("x")), NoCircuit},
		{errors.New("x"), Other},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	// Wrap keeps the RELAY_END reason for the SOCKS reply.
	w := Wrap(&stream.EndError{Reason: stream.ReasonDone})
	if r, ok := w.(socks.Replier); !ok || r.SOCKSReply() != socks.ReplyConnRefused {
		t.Errorf("Wrap(END DONE) replies %v, want connection refused", w)
	}
	if Wrap(nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
	// The onion kinds keep their prop304 codes.
	if got := OnionIntroFailed.SOCKSReply(); got != socks.ReplyOnionIntroFailed {
		t.Errorf("OnionIntroFailed replies %#x", got)
	}
}
