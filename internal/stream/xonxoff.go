package stream

// Stream flow control on congestion-controlled circuits (prop 324 §4):
// no stream windows, but XON/XOFF. We send XOFF when the application
// lets XoffCells pile up in a stream's buffer, and XON once it has read
// it down to XonCells; the exit's XOFF stops our writes until its XON.
//
// A hostile exit has defined outcomes, each a protocol violation that
// closes the circuit (the spec's SHOULD, prop 324 §4.1.4, against
// DropMark side channels; C tor only withholds the cells' "valid" count):
//   - an XOFF before we sent cc_xoff_exit cells' worth of bytes per XOFF
//     received (the exit cannot have buffered that much), or a second
//     XOFF without an XON in between;
//   - an XON before we sent min(cc_xoff_exit, cc_xon_rate) cells' worth
//     per XON received (an XON flood);
//   - a stream SENDME (streams have no windows here);
//   - more than MaxCellsAfterXoff cells buffered past the XOFF threshold
//     (an exit that ignores our XOFF: memory stays bounded).
// The counters are halved when one reaches 200, as in C tor
// (circuit_process_stream_xoff/xon), so long streams keep a recent
// budget.

import "github.com/gotor/gotor/internal/cell"

// XON/XOFF thresholds in buffered cells: XOFF when the application lets
// XoffCells pile up (cc_xoff_client, 500), XON once it has read the
// buffer down to XonCells. Cells already in flight when the exit gets the
// XOFF still arrive, up to the exit's congestion window.
const (
	XoffCells = 500
	XonCells  = 100
	// MaxCellsAfterXoff bounds what an exit may still send after the
	// XOFF threshold: twice cc_ss_max (5000), more than a congestion
	// window reaches on these paths; about 5 MB.
	MaxCellsAfterXoff = 10000
)

// Limits on the exit's XON/XOFF in bytes we sent (prop 324 §4.1.4, with
// the consensus defaults cc_xoff_exit = cc_xon_rate = 500 cells).
const (
	xoffExitBytes  = 500 * cell.RelayDataMax
	xonRateBytes   = 500 * cell.RelayDataMax
	xonXoffScaleAt = 200
)

// xonXoff is one stream's XON/XOFF state; guarded by the stream's mu.
type xonXoff struct {
	xoffSent  bool  // we told the exit to stop
	paused    bool  // the exit told us to stop
	bytesSent int64 // DATA bytes we sent on the stream
	xoffRecv  int
	xonRecv   int
	nXoff     int // XOFFs we sent
	nXon      int // XONs we sent
}

func (x *xonXoff) scaleDown() {
	x.bytesSent /= 2
	x.xoffRecv /= 2
	x.xonRecv /= 2
}

// onXoff applies an XOFF from the exit; it returns a violation or "".
func (x *xonXoff) onXoff() string {
	if x.paused {
		return "second XOFF without an XON"
	}
	if x.xoffRecv == xonXoffScaleAt {
		x.scaleDown()
	}
	x.xoffRecv++
	if x.bytesSent < int64(xoffExitBytes)*int64(x.xoffRecv) {
		return "XOFF before the exit could have buffered cc_xoff_exit bytes"
	}
	x.paused = true
	return ""
}

// onXon applies an XON from the exit (its advisory rate is not used);
// it returns a violation or "".
func (x *xonXoff) onXon() string {
	if x.xonRecv == xonXoffScaleAt {
		x.scaleDown()
	}
	x.xonRecv++
	if x.bytesSent < int64(min(xoffExitBytes, xonRateBytes))*int64(x.xonRecv) {
		return "XON flood: more XONs than the bytes sent allow"
	}
	x.paused = false
	return ""
}

// XonXoffSent returns how many XOFF and XON cells the stream has sent
// (congestion-controlled circuits only): the application stopping and
// resuming reads, as the exit saw it.
func (s *Conn) XonXoffSent() (xoff, xon int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.xx.nXoff, s.xx.nXon
}
