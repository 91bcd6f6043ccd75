package netdir

import "testing"

func TestSupports(t *testing.T) {
	// The "pr" line of a C tor 0.4.9 relay.
	const pr = "Conflux=1 Cons=2 Desc=2 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4-5 HSRend=1-2 Link=1-5 LinkAuth=1,3 Microdesc=2 Padding=2 Relay=1-4"
	r := &Relay{Protocols: pr, HasEd25519: true}
	for _, tc := range []struct {
		name string
		v    int
		want bool
	}{
		{"Relay", 4, true}, {"Relay", 5, false}, {"FlowCtrl", 2, true}, {"FlowCtrl", 3, false},
		{"LinkAuth", 1, true}, {"LinkAuth", 2, false}, {"LinkAuth", 3, true}, {"Nope", 1, false},
	} {
		if got := r.Supports(tc.name, tc.v); got != tc.want {
			t.Errorf("Supports(%s, %d) = %v", tc.name, tc.v, got)
		}
	}
	if !r.SupportsNtorV3() || !r.SupportsCongestionControl() {
		t.Error("0.4.9 relay: no ntor v3 or congestion control")
	}
	old := &Relay{Protocols: "FlowCtrl=1 Relay=1-3", HasEd25519: true}
	if old.SupportsNtorV3() || old.SupportsCongestionControl() {
		t.Error("Relay=1-3 relay: ntor v3 or congestion control")
	}
	noEd := &Relay{Protocols: pr}
	if noEd.SupportsNtorV3() || noEd.SupportsCongestionControl() {
		t.Error("relay without an Ed25519 identity: ntor v3")
	}
	if (&Relay{Protocols: "FlowCtrl=2 Relay=1-3", HasEd25519: true}).SupportsCongestionControl() {
		t.Error("FlowCtrl=2 without Relay=4: congestion control")
	}
	if (&Relay{Protocols: "Relay=x-4 FlowCtrl"}).Supports("Relay", 4) {
		t.Error("malformed entries accepted")
	}
}
