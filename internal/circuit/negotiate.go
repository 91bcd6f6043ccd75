package circuit

// Choosing each hop's handshake from the relay's subprotocols and the
// consensus: ntor v3 (prop 332) with every relay that lists Relay=4, and
// the congestion control request (prop 324 §10.1) with an exit circuit's
// last hop when the consensus enables congestion control (cc_alg != 0)
// and the exit lists FlowCtrl=2. Clients do not negotiate congestion
// control on one-hop (directory) or internal (onion service) circuits
// (prop 324 §10.1), so callers ask for it on exit hops only.

import (
	"github.com/gotor/gotor/internal/congestion"
	"github.com/gotor/gotor/internal/netdir"
)

// HopFor returns the target for relay r as a hop of a circuit, with its
// handshake chosen: NtorV3CC when exitHop, cc.Enabled() and
// r.SupportsCongestionControl(); else NtorV3 when r.SupportsNtorV3();
// else Ntor. cc is the consensus's parameters
// (congestion.ParamsFrom(dir.Param, congestion.PathExit)).
func HopFor(r *netdir.Relay, exitHop bool, cc congestion.Params) Target {
	t := TargetFromRelay(r)
	switch {
	case exitHop && cc.Enabled() && r.SupportsCongestionControl():
		t.Handshake, t.CC = NtorV3CC, &cc
	case r.SupportsNtorV3():
		t.Handshake = NtorV3
	}
	return t
}
