package congestion

import "time"

// Vegas is TOR_VEGAS (prop 324 §3.3) with RFC 3742 limited slow start,
// run on every SENDME. Its queue estimate is cwnd minus the congestion
// window BDP estimator of §3.1.2 (cwnd * RTT_min / RTT_ewma), the only
// estimator C tor's Vegas uses (vegas_bdp); the SENDME-rate and inflight
// estimators of §3.1.1/§3.1.3 feed nothing here and are not kept.
//
// gotor has no signal for a blocked local OR connection (C tor's
// "orconn_blocked": a circuit cell queue above cellq_high): a circuit's
// cells are written to the channel directly, so that signal is always
// false and congestion is seen through the RTT alone. For the same
// reason the clock heuristics (§2.1.1) get their baseline once slow start
// is over (C tor also uses the SENDME-rate estimate as one).
type Vegas struct {
	p Params

	cwnd, inflight int64
	inSlowStart    bool
	cwndFull       bool
	nextCCEvent    int64 // SENDMEs until the next steady-state update
	nextCwndEvent  int64 // SENDMEs until a cwnd's worth has been acked
	bdp            int64
	rtt            rttState

	// Counters for introspection and tests.
	stalls int // samples rejected by the clock heuristics
}

// NewVegas returns the controller of a circuit that negotiated congestion
// control with SENDME increment sendmeInc (the exit's, prop 324 §10.3).
func NewVegas(p Params, sendmeInc int) *Vegas {
	p.SendmeInc = sendmeInc
	v := &Vegas{p: p, cwnd: int64(p.CwndInit), inSlowStart: true}
	v.nextCCEvent = v.cwndUpdateRate()
	return v
}

// SendmeInc implements Controller.
func (v *Vegas) SendmeInc() int { return v.p.SendmeInc }

// Window implements Controller: cwnd - inflight, 0 if the window was
// just reduced below what is in flight.
func (v *Vegas) Window() int {
	if v.inflight >= v.cwnd {
		return 0
	}
	return int(min(v.cwnd-v.inflight, 1<<31-1))
}

// Sent implements Controller.
func (v *Vegas) Sent() bool {
	v.inflight++
	return v.inflight%int64(v.p.SendmeInc) == 0
}

// sendmePerCwnd is SENDME_PER_CWND: SENDMEs in one cwnd, rounded.
func (v *Vegas) sendmePerCwnd() int64 {
	inc := int64(v.p.SendmeInc)
	return (v.cwnd + inc/2) / inc
}

// cwndUpdateRate is CWND_UPDATE_RATE: SENDMEs between cwnd updates; 1 in
// slow start, else cwnd/(cc_cwnd_inc_rate*sendme_inc) rounded (0 means
// every SENDME).
func (v *Vegas) cwndUpdateRate() int64 {
	if v.inSlowStart {
		return 1
	}
	d := int64(v.p.CwndIncRate) * int64(v.p.SendmeInc)
	return (v.cwnd + d/2) / d
}

// ewmaCount is the N of N-EWMA (§2.1.2): cc_ewma_ss in slow start, else
// CWND_UPDATE_RATE * cc_ewma_cwnd_pct / 100 capped at cc_ewma_max; at
// least 2.
func (v *Vegas) ewmaCount() int64 {
	n := int64(v.p.EwmaSS)
	if !v.inSlowStart {
		n = min(v.cwndUpdateRate()*int64(v.p.EwmaCwndPct)/100, int64(v.p.EwmaMax))
	}
	return max(n, 2)
}

// ssInc is the RFC 3742 slow-start increment (rfc3742_ss_inc).
func (v *Vegas) ssInc() int64 {
	inc := int64(v.p.SendmeInc)
	if v.cwnd <= int64(v.p.SSCap) {
		return (int64(v.p.CwndIncPctSS)*inc + 50) / 100
	}
	return max((inc*int64(v.p.SSCap)+v.cwnd)/(2*v.cwnd), 1)
}

// updateEstimates takes the RTT sample of one SENDME and refreshes the
// BDP estimate (congestion_control_update_circuit_estimates). It reports
// whether the algorithm may run on this SENDME.
func (v *Vegas) updateEstimates(rtt int64) bool {
	// RTT (congestion_control_update_circuit_rtt).
	useHeuristics := !v.inSlowStart && v.rtt.ewma != 0
	if v.rtt.stalledOrJumped(rtt, useHeuristics) {
		v.stalls++
		rtt = 0
	} else {
		v.rtt.ewma = nCountEWMA(rtt, v.rtt.ewma, v.ewmaCount())
		v.rtt.max = max(v.rtt.max, rtt)
		switch {
		case v.rtt.min == 0:
			v.rtt.min = v.rtt.ewma
		case v.cwnd == int64(v.p.CwndMin) && !v.inSlowStart:
			// Stuck at cwnd_min: raise RTT_min out of the wedge
			// (cc_rtt_reset_pct, §3.1.2).
			v.rtt.min = percentMaxMix(v.rtt.ewma, v.rtt.min, v.p.RTTResetPct)
		case v.rtt.ewma < v.rtt.min:
			v.rtt.min = v.rtt.ewma
		}
	}
	// BDP (congestion_control_update_circuit_bdp, cwnd estimator).
	if v.rtt.ewma == 0 {
		// Every sample so far was a stall: no estimate but the window.
		v.bdp = v.cwnd
		return false
	}
	v.bdp = v.cwnd * v.rtt.min / v.rtt.ewma
	return rtt != 0
}

// OnSendme implements Controller: the TOR_VEGAS update of prop 324 §3.3
// (congestion_control_vegas_process_sendme), then the cc_cwnd_max clamp.
func (v *Vegas) OnSendme(sentAt, now time.Time) error {
	inc := int64(v.p.SendmeInc)
	if v.inflight < inc {
		return ErrUnexpectedSendme
	}
	if v.nextCCEvent > 0 {
		v.nextCCEvent--
	}
	if v.nextCwndEvent > 0 {
		v.nextCwndEvent--
	}
	if !v.updateEstimates(now.Sub(sentAt).Microseconds()) {
		v.inflight -= inc
		return nil
	}

	queueUse := int64(0)
	if v.bdp <= v.cwnd {
		queueUse = v.cwnd - v.bdp
	}
	if v.inflight+int64(v.p.CwndFullGap)*inc >= v.cwnd {
		v.cwndFull = true
	} else if 100*v.inflight < int64(v.p.CwndFullMinPct)*v.cwnd {
		v.cwndFull = false
	}

	if v.inSlowStart {
		if queueUse < int64(v.p.Gamma) {
			if v.cwndFull {
				ssInc := v.ssInc()
				v.cwnd += ssInc
				// Exit when the slow-start step is no bigger than steady
				// state's over one cwnd.
				if ssInc*v.sendmePerCwnd() <= int64(v.p.CwndInc)*int64(v.p.CwndIncRate) {
					v.inSlowStart = false
				}
			}
		} else {
			// Queue above gamma: congestion signal.
			v.cwnd = v.bdp + int64(v.p.Gamma)
			v.inSlowStart = false
		}
		if v.cwnd >= v.p.SSMax {
			v.cwnd = v.p.SSMax
			v.inSlowStart = false
		}
	} else if v.nextCCEvent == 0 {
		switch {
		case queueUse > int64(v.p.Delta):
			v.cwnd = v.bdp + int64(v.p.Delta) - int64(v.p.CwndInc)
		case queueUse > int64(v.p.Beta):
			v.cwnd -= int64(v.p.CwndInc)
		case v.cwndFull && queueUse < int64(v.p.Alpha):
			v.cwnd += int64(v.p.CwndInc)
		}
		v.cwnd = max(v.cwnd, int64(v.p.CwndMin))
	}

	if v.nextCwndEvent == 0 {
		v.nextCwndEvent = v.sendmePerCwnd()
	}
	if v.nextCCEvent == 0 {
		v.nextCCEvent = v.cwndUpdateRate()
	}
	if v.p.CwndFullPerCwnd {
		if v.nextCwndEvent == v.sendmePerCwnd() {
			v.cwndFull = false
		}
	} else if v.nextCCEvent == v.cwndUpdateRate() {
		v.cwndFull = false
	}
	v.inflight -= inc
	v.cwnd = min(v.cwnd, v.p.CwndMax)
	return nil
}

// VegasState is a snapshot of a Vegas controller, for introspection.
type VegasState struct {
	Cwnd, Inflight   int64
	InSlowStart      bool
	BDP              int64 // cells
	MinRTT, EwmaRTT  time.Duration
	MaxRTT           time.Duration
	RejectedSamples  int // RTT samples the clock heuristics refused
	SendmeIncrement  int
	NextUpdateSendme int64 // SENDMEs until the next steady-state update
}

// State returns a snapshot of v.
func (v *Vegas) State() VegasState {
	us := time.Microsecond
	return VegasState{
		Cwnd: v.cwnd, Inflight: v.inflight, InSlowStart: v.inSlowStart, BDP: v.bdp,
		MinRTT: time.Duration(v.rtt.min) * us, EwmaRTT: time.Duration(v.rtt.ewma) * us,
		MaxRTT: time.Duration(v.rtt.max) * us, RejectedSamples: v.stalls,
		SendmeIncrement: v.p.SendmeInc, NextUpdateSendme: v.nextCCEvent,
	}
}
