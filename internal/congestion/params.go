// Package congestion is circuit-level congestion control for one
// circuit endpoint: fixed SENDME windows (tor-spec §7.3) and TOR_VEGAS
// (prop 324 §3.3), with the RTT and BDP estimation it uses (prop 324 §2.1,
// §3.1.2) and the consensus parameters that tune both (prop 324 §6.5).
//
// Arithmetic follows C tor (congestion_control_common.c,
// congestion_control_vegas.c), the reference implementation the spec was
// tuned with: integer cells and microseconds, multiply before divide.
// Defaults are the real network's consensus values, as C tor's are since
// 0.4.8 (its bug 40709); parameters the consensus does not set keep C
// tor's older defaults.
//
// A controller is used by one circuit under its send lock; nothing here
// locks or does I/O.
package congestion

// Algorithms (consensus parameter cc_alg).
const (
	AlgFixed = 0 // fixed windows (no negotiation)
	AlgVegas = 2 // TOR_VEGAS
)

// Path is the kind of circuit, which selects the Vegas parameter set
// (prop 324 §6.5.3).
type Path int

// Paths.
const (
	PathExit  Path = iota // 3-hop exit circuits: *_exit
	PathOnion             // onion service rendezvous circuits: *_onion
	PathSBWS              // 2-hop bandwidth scanner circuits: *_sbws
)

// ParamFunc returns consensus parameter name, or def when absent, clamped
// to [min, max] (netdir.NetDir.Param has this signature).
type ParamFunc func(name string, def, min, max int32) int32

// tlsRecordCells is the number of cells in one TLS record (16 KiB / 514),
// C tor's TLS_RECORD_MAX_CELLS, the unit of most defaults.
const tlsRecordCells = 31

// outbufCells is C tor's OUTBUF_CELLS.
const outbufCells = 2 * tlsRecordCells

// Params are the congestion control consensus parameters of one circuit
// (prop 324 §6.5.1, §6.5.3), each defaulted and clamped as C tor does.
type Params struct {
	Alg       int // cc_alg
	SendmeInc int // cc_sendme_inc: cells per SENDME (negotiated per circuit)

	CwndInit     int   // cc_cwnd_init
	CwndMin      int   // cc_cwnd_min
	CwndMax      int64 // cc_cwnd_max
	CwndInc      int   // cc_cwnd_inc: steady-state step
	CwndIncPctSS int   // cc_cwnd_inc_pct_ss: slow-start step, percent of sendme_inc
	CwndIncRate  int   // cc_cwnd_inc_rate: updates per cwnd after slow start

	EwmaCwndPct int // cc_ewma_cwnd_pct
	EwmaMax     int // cc_ewma_max
	EwmaSS      int // cc_ewma_ss
	RTTResetPct int // cc_rtt_reset_pct

	// TOR_VEGAS, for the circuit's Path.
	Alpha, Beta, Gamma, Delta int   // cc_vegas_{alpha,beta,gamma,delta}_PATH, in cells of queue
	SSCap                     int   // cc_sscap_PATH: RFC 3742 cap
	SSMax                     int64 // cc_ss_max: hard maximum in slow start

	CwndFullGap     int  // cc_cwnd_full_gap, in sendme_inc multiples
	CwndFullMinPct  int  // cc_cwnd_full_minpct
	CwndFullPerCwnd bool // cc_cwnd_full_per_cwnd
}

// DefaultParams are the parameters with every consensus value absent.
func DefaultParams(path Path) Params {
	return ParamsFrom(func(_ string, def, _, _ int32) int32 { return def }, path)
}

// ParamsFrom reads the parameters for a circuit of kind path from the
// consensus (get is netdir.NetDir.Param or equivalent).
func ParamsFrom(get ParamFunc, path Path) Params {
	const int32Max = 1<<31 - 1
	p := Params{
		Alg:       int(get("cc_alg", AlgVegas, 0, 2)),
		SendmeInc: int(get("cc_sendme_inc", tlsRecordCells, 1, 255)),

		CwndInit:     int(get("cc_cwnd_init", 4*tlsRecordCells, tlsRecordCells, 10000)),
		CwndMin:      int(get("cc_cwnd_min", 4*tlsRecordCells, tlsRecordCells, 1000)),
		CwndMax:      int64(get("cc_cwnd_max", int32Max, 500, int32Max)),
		CwndInc:      int(get("cc_cwnd_inc", 1, 1, 1000)),
		CwndIncPctSS: int(get("cc_cwnd_inc_pct_ss", 100, 1, 500)),
		CwndIncRate:  int(get("cc_cwnd_inc_rate", tlsRecordCells, 1, 250)),

		EwmaCwndPct: int(get("cc_ewma_cwnd_pct", 50, 1, 255)),
		EwmaMax:     int(get("cc_ewma_max", 10, 2, int32Max)),
		EwmaSS:      int(get("cc_ewma_ss", 2, 2, int32Max)),
		RTTResetPct: int(get("cc_rtt_reset_pct", 100, 0, 100)),

		SSMax:           int64(get("cc_ss_max", 5000, 500, int32Max)),
		CwndFullGap:     int(get("cc_cwnd_full_gap", 4, 0, 1<<15-1)),
		CwndFullMinPct:  int(get("cc_cwnd_full_minpct", 25, 0, 100)),
		CwndFullPerCwnd: get("cc_cwnd_full_per_cwnd", 1, 0, 1) == 1,
	}
	suffix, alpha, beta, gamma, delta, sscap := "exit", 3*outbufCells, 4*outbufCells, 3*outbufCells, 5*outbufCells, 600
	switch path {
	case PathOnion:
		suffix, alpha, beta, gamma, delta, sscap = "onion", 3*outbufCells, 6*outbufCells, 4*outbufCells, 7*outbufCells, 475
	case PathSBWS:
		suffix, alpha, beta, gamma, delta, sscap = "sbws", 3*outbufCells, 4*outbufCells, 3*outbufCells, 5*outbufCells, 600
	}
	p.Alpha = int(get("cc_vegas_alpha_"+suffix, int32(alpha), 0, 1000))
	p.Beta = int(get("cc_vegas_beta_"+suffix, int32(beta), 0, 1000))
	p.Gamma = int(get("cc_vegas_gamma_"+suffix, int32(gamma), 0, 1000))
	p.Delta = int(get("cc_vegas_delta_"+suffix, int32(delta), 0, int32Max))
	p.SSCap = int(get("cc_sscap_"+suffix, int32(sscap), 100, int32Max))
	return p
}

// Enabled reports whether the consensus asks clients to negotiate
// congestion control (prop 324 §10.1: a non-zero cc_alg; gotor runs
// TOR_VEGAS for any non-zero value, as C tor runs its default).
func (p Params) Enabled() bool { return p.Alg != AlgFixed }

// AcceptSendmeInc reports whether an exit's negotiated sendme_inc may be
// used: non-zero and within one of the consensus value. Prop 324 §10.5
// allows a factor of two; C tor narrowed it to one since 0.4.8 (its bug
// 40569, congestion_control_validate_sendme_increment), as arti does.
func (p Params) AcceptSendmeInc(inc int) bool {
	return inc > 0 && inc <= p.SendmeInc+1 && inc >= p.SendmeInc-1
}
