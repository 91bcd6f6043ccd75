package netdir

// Subprotocol versions of a relay (dir-spec §3.4.1 "pr" line,
// tor-spec §9): "Relay=1-4 FlowCtrl=1-2 ...".

import (
	"strconv"
	"strings"
)

// Subprotocol versions clients check before using a feature.
const (
	ProtoRelayNtorV3  = 4 // Relay=4: ntor v3 in CREATE2/EXTEND2 (prop 332)
	ProtoFlowCtrlCC   = 2 // FlowCtrl=2: congestion control (prop 324 §2.2)
	protoNameRelay    = "Relay"
	protoNameFlowCtrl = "FlowCtrl"
)

// Supports reports whether the relay's "pr" line lists version v of
// subprotocol name. A relay without a "pr" line supports nothing.
func (r *Relay) Supports(name string, v int) bool { return protoSupports(r.Protocols, name, v) }

// SupportsNtorV3 reports Relay=4 (prop 332) and an Ed25519 identity,
// which ntor v3 needs.
func (r *Relay) SupportsNtorV3() bool {
	return r.HasEd25519 && r.Supports(protoNameRelay, ProtoRelayNtorV3)
}

// SupportsCongestionControl reports FlowCtrl=2 together with ntor v3, the
// handshake that negotiates it (C tor's supports_congestion_control).
func (r *Relay) SupportsCongestionControl() bool {
	return r.SupportsNtorV3() && r.Supports(protoNameFlowCtrl, ProtoFlowCtrlCC)
}

func protoSupports(pr, name string, v int) bool {
	for _, ent := range strings.Fields(pr) {
		k, vals, ok := strings.Cut(ent, "=")
		if !ok || k != name {
			continue
		}
		for _, rng := range strings.Split(vals, ",") {
			lo, hi, isRange := strings.Cut(rng, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && l <= v && v <= h {
				return true
			}
		}
	}
	return false
}
