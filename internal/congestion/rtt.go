package congestion

// RTT estimation from SENDMEs (prop 324 §2.1): the time from sending the
// cell that elicits a SENDME to the SENDME's arrival, smoothed with
// N-EWMA (§2.1.2), with min and max, guarded by the clock heuristics of
// §2.1.1. C tor: congestion_control_update_circuit_rtt and
// time_delta_stalled_or_jumped.

// deltaDiscrepancyRatioMax is how many times larger (or smaller) than the
// smoothed RTT a new sample may be before it is taken for a clock jump.
const deltaDiscrepancyRatioMax = 5000

// nCountEWMA is N-EWMA in the spec's rounding form:
// (2*curr + (N-1)*prev) / (N+1); the first sample is taken as is.
func nCountEWMA(curr, prev, n int64) int64 {
	if prev == 0 {
		return curr
	}
	return (2*curr + (n-1)*prev) / (n + 1)
}

// percentMaxMix is pct% of the larger of a, b plus the rest of the
// smaller (C tor's percent_max_mix).
func percentMaxMix(a, b int64, pct int) int64 {
	hi, lo := max(a, b), min(a, b)
	return int64(pct)*hi/100 + int64(100-pct)*lo/100
}

// rttState is a circuit's RTT estimate, in microseconds.
type rttState struct {
	ewma, min, max int64
	// clockBroken caches the last verdict on the clock (C tor keeps one
	// for the process; per circuit is enough here): a zero sample sets
	// it, an accepted one clears it.
	clockBroken bool
}

// stalledOrJumped applies the clock heuristics to a new sample rtt
// (§2.1.1). useHeuristics is false until the estimate has a baseline.
func (r *rttState) stalledOrJumped(rtt int64, useHeuristics bool) bool {
	if rtt <= 0 {
		r.clockBroken = true
		return true
	}
	if !useHeuristics {
		return false
	}
	if r.ewma > rtt*deltaDiscrepancyRatioMax {
		// Much smaller than usual: a stall only if we saw one before.
		return r.clockBroken
	}
	if rtt > r.ewma*deltaDiscrepancyRatioMax {
		return true // a jump forward, or a suspended peer
	}
	r.clockBroken = false
	return false
}
