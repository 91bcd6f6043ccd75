package engine

// Path bias (path-spec §7, internal/guard/pathbias.go): the engine tells
// each circuit's guard attempt how the circuit fared. Construction is
// counted in buildThrough for every circuit of more than one hop except
// introduction circuits (C tor pathbias_should_count: the service named
// the introduction point); use, for exit circuits, in openStream and
// resolve. Onion circuits' use (rendezvous) is not reported, and C tor's
// end-of-life probe of circuits whose streams all went unanswered is not
// sent: such circuits count as unusable.

import (
	"errors"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/stream"
)

// closedByRelay reports whether circ ended from the relay side: a
// DESTROY or TRUNCATED, or its channel closing other than by us (C tor's
// END_CIRC_REASON_FLAG_REMOTE and "channel closed, not requested").
func closedByRelay(circ *circuit.Circuit) bool {
	err := circ.Err()
	var de *circuit.DestroyedError
	if errors.As(err, &de) {
		return true
	}
	chErr := circ.Channel().Err()
	return chErr != nil && err == chErr && !errors.Is(chErr, channel.ErrClosed)
}

// noteStreamOutcome reports a stream attempt's answer (err from
// stream.Begin or a resolve) to path bias, as C tor's relay.c and
// connection_edge.c do: an answer from the exit means the path works;
// END TORPROTOCOL or DESTROY may be a tag that reached the exit; END
// INTERNAL says nothing; no answer (timeout, circuit gone) undoes an
// earlier success, so the circuit counts as used only if a later stream
// succeeds.
func noteStreamOutcome(a *guard.Attempt, err error) {
	var end *stream.EndError
	var res *stream.ResolveError
	switch {
	case err == nil, errors.As(err, &res):
		a.UseSucceeded()
	case errors.As(err, &end):
		switch end.Reason {
		case stream.ReasonTorProtocol, stream.ReasonDestroy:
			a.UseFailed()
		case stream.ReasonInternal:
		default:
			a.UseSucceeded()
		}
	default:
		a.UseRolledBack()
	}
}
