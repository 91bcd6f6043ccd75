package netdir

import "testing"

func TestPortPolicy(t *testing.T) {
	acc := PortPolicy{Accept: true, Ranges: []PortRange{{80, 80}, {443, 443}}}
	rej := PortPolicy{Ranges: []PortRange{{25, 25}}}
	all := PortPolicy{Ranges: []PortRange{{1, 65535}}}
	var zero PortPolicy
	for _, tc := range []struct {
		p    PortPolicy
		port uint16
		want bool
	}{
		{acc, 80, true}, {acc, 81, false}, {rej, 25, false}, {rej, 80, true},
		{all, 80, false}, {zero, 80, false},
	} {
		if got := tc.p.Allows(tc.port); got != tc.want {
			t.Errorf("%+v.Allows(%d) = %v", tc.p, tc.port, got)
		}
	}
	if !acc.AllowsAny() || !rej.AllowsAny() || all.AllowsAny() || zero.AllowsAny() {
		t.Error("AllowsAny")
	}
}

func TestParamAndIndex(t *testing.T) {
	d := &NetDir{Params: map[string]int32{"a": 5, "b": -3}}
	if d.Param("a", 1, 0, 3) != 3 || d.Param("b", 1, 0, 3) != 0 || d.Param("c", 2, 0, 3) != 2 {
		t.Error("Param clamping")
	}
	r := &Relay{RSAID: [20]byte{1}, Flags: FlagRunning | FlagValid, HasMicrodesc: true}
	d.Relays = []*Relay{r}
	d.Index()
	if d.ByRSAID[[20]byte{1}] != r || !r.IsUsable() {
		t.Error("Index / IsUsable")
	}
	if ParseFlag("Guard") != FlagGuard || ParseFlag("Nope") != 0 {
		t.Error("ParseFlag")
	}
}
