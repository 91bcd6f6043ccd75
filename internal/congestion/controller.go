package congestion

import (
	"errors"
	"time"
)

// Controller decides how many DATA cells one circuit endpoint may have in
// flight (sent, not yet acknowledged by a SENDME) and learns from the
// SENDMEs. The circuit keeps, for every cell Sent reports as eliciting a
// SENDME, that cell's digest (prop 289) and send time, and hands the time
// to OnSendme when the SENDME with that digest arrives.
type Controller interface {
	// SendmeInc is the number of DATA cells one SENDME acknowledges.
	SendmeInc() int
	// Window is how many DATA cells may be sent now (0 when none).
	Window() int
	// Sent accounts one DATA cell sent and reports whether the other end
	// answers it with a SENDME: the sendme_inc-th cell since the last one
	// (tor-spec §7.3; C tor's circuit_sent_cell_for_sendme).
	Sent() (elicitsSendme bool)
	// OnSendme processes one circuit SENDME, which acknowledges the cell
	// sent at sentAt, received at now. ErrUnexpectedSendme (nothing
	// changed) means fewer than SendmeInc cells were in flight: the other
	// end sent a SENDME it may not send.
	OnSendme(sentAt, now time.Time) error
}

// ErrUnexpectedSendme is returned by OnSendme for a SENDME that
// acknowledges cells that were never sent.
var ErrUnexpectedSendme = errors.New("congestion: SENDME acknowledges more cells than are in flight")

// Fixed is the fixed circuit window of tor-spec §7.3: 1000 cells, a
// SENDME per 100.
type Fixed struct {
	inflight int
}

// Fixed-window constants (tor-spec §7.3).
const (
	FixedWindow    = 1000
	FixedIncrement = 100
)

// SendmeInc implements Controller.
func (f *Fixed) SendmeInc() int { return FixedIncrement }

// Window implements Controller.
func (f *Fixed) Window() int { return FixedWindow - f.inflight }

// Sent implements Controller.
func (f *Fixed) Sent() bool {
	f.inflight++
	return f.inflight%FixedIncrement == 0
}

// OnSendme implements Controller.
func (f *Fixed) OnSendme(_, _ time.Time) error {
	if f.inflight < FixedIncrement {
		return ErrUnexpectedSendme
	}
	f.inflight -= FixedIncrement
	return nil
}
