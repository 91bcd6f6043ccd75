package path

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/path/pathtest"
)

func seeded(seed uint64) *Selector {
	s := New()
	s.Rand = rand.New(rand.NewPCG(seed, seed^0xdeadbeef))
	return s
}

func relay(nick string, id byte, addr string, flags netdir.Flags, bw uint32) *netdir.Relay {
	r := &netdir.Relay{Nickname: nick, Addr: netip.MustParseAddr(addr), ORPort: 9001,
		Flags:     flags | netdir.FlagRunning | netdir.FlagValid | netdir.FlagFast | netdir.FlagStable | netdir.FlagV2Dir,
		Bandwidth: bw, HasMicrodesc: true}
	r.RSAID[0] = id
	r.RSAID[19] = id
	return r
}

func hexID(r *netdir.Relay) string { return fmt.Sprintf("$%X", r.RSAID) }

func TestRelayWeightClasses(t *testing.T) {
	d := &netdir.NetDir{WeightScale: 10000, Weights: pathtest.DefaultWeights}
	g := relay("g", 1, "1.0.0.1", netdir.FlagGuard, 100)
	e := relay("e", 2, "2.0.0.1", netdir.FlagExit, 100)
	ge := relay("ge", 3, "3.0.0.1", netdir.FlagGuard|netdir.FlagExit, 100)
	m := relay("m", 4, "4.0.0.1", 0, 100)
	bad := relay("bad", 5, "5.0.0.1", netdir.FlagExit|netdir.FlagBadExit, 100) // weighted as a middle
	nodir := relay("nodir", 6, "6.0.0.1", netdir.FlagExit, 100)
	nodir.Flags &^= netdir.FlagV2Dir
	cases := []struct {
		r    *netdir.Relay
		rule Rule
		want float64 // = Wxy/10000 * Wxb/10000 * 100
	}{
		{g, WeightForGuard, 60}, {m, WeightForGuard, 60}, {e, WeightForGuard, 0}, {ge, WeightForGuard, 30},
		{g, WeightForMiddle, 40}, {m, WeightForMiddle, 100}, {e, WeightForMiddle, 15 * 0.9}, {ge, WeightForMiddle, 25},
		{g, WeightForExit, 20}, {m, WeightForExit, 25}, {e, WeightForExit, 85 * 0.9}, {ge, WeightForExit, 45},
		{g, WeightForDir, 30}, {m, WeightForDir, 100}, {e, WeightForDir, 50}, {ge, WeightForDir, 20},
		{bad, WeightForExit, 25}, {nodir, WeightForExit, 85},
		{ge, NoWeighting, 100},
	}
	for _, c := range cases {
		if got := RelayWeight(d, c.r, c.rule); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("RelayWeight(%s, %v) = %v, want %v", c.r.Nickname, c.rule, got, c.want)
		}
	}
	// No bandwidth-weights line, or a negative entry: plain bandwidth.
	for _, w := range []map[string]int64{nil, {"Wgg": -1, "Wgm": 1, "Wgd": 1}} {
		d := &netdir.NetDir{WeightScale: 10000, Weights: w}
		if got := RelayWeight(d, ge, WeightForGuard); got != 100 {
			t.Errorf("weights %v: got %v, want 100", w, got)
		}
	}
}

func TestNodeSet(t *testing.T) {
	a := relay("Alpha", 1, "10.1.2.3", 0, 1)
	b := relay("beta", 2, "192.0.2.9", 0, 1)
	b.IPv6 = netip.MustParseAddrPort("[2001:db8::1]:9001")
	c := relay("gamma", 3, "172.16.0.1", 0, 1)
	for _, tc := range []struct {
		spec string
		want [3]bool
	}{
		{hexID(a), [3]bool{true, false, false}},
		{strings.TrimPrefix(hexID(a), "$"), [3]bool{true, false, false}},
		{strings.ToLower(hexID(a)) + "~Alpha", [3]bool{true, false, false}},
		{hexID(b) + "=beta, gamma", [3]bool{false, true, true}},
		{"ALPHA", [3]bool{true, false, false}},
		{"192.0.2.0/24", [3]bool{false, true, false}},
		{"2001:db8::/32", [3]bool{false, true, false}},
		{"172.16.0.1", [3]bool{false, false, true}},
		{"*", [3]bool{true, true, true}},
		{"", [3]bool{}},
	} {
		s, err := ParseNodeSet(tc.spec)
		if err != nil {
			t.Fatalf("%q: %v", tc.spec, err)
		}
		got := [3]bool{s.Contains(a), s.Contains(b), s.Contains(c)}
		if got != tc.want {
			t.Errorf("%q: got %v want %v", tc.spec, got, tc.want)
		}
		if s.Empty() != (tc.spec == "") {
			t.Errorf("%q: Empty() = %v", tc.spec, s.Empty())
		}
	}
	if _, err := ParseNodeSet("{us}"); !errors.Is(err, ErrCountryCodes) {
		t.Errorf("{us}: err %v, want ErrCountryCodes", err)
	}
	for _, bad := range []string{"$1234", "not a nick!", "$" + strings.Repeat("g", 40)} {
		if _, err := ParseNodeSet(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	var nilSet *NodeSet
	if nilSet.Contains(a) || !nilSet.Empty() {
		t.Error("nil NodeSet must be empty")
	}
}

func TestCompatible(t *testing.T) {
	a := relay("a", 1, "10.1.0.1", 0, 1)
	b := relay("b", 2, "10.2.0.1", 0, 1)
	if !Compatible(a, b, true) {
		t.Fatal("unrelated relays incompatible")
	}
	if Compatible(a, a, false) {
		t.Error("relay compatible with itself")
	}
	// One-sided declaration: not a family (path-spec §5.3).
	a.Family = []string{hexID(b)}
	if !Compatible(a, b, true) {
		t.Error("one-sided family treated as family")
	}
	b.Family = []string{hexID(a) + "~a"}
	if Compatible(a, b, true) || !SameFamily(a, b) {
		t.Error("mutual $HEX family not detected")
	}
	b.Family = []string{"A"} // nickname, case-insensitive
	if Compatible(a, b, true) {
		t.Error("mutual family by nickname not detected")
	}
	a.Family, b.Family = nil, nil
	a.FamilyIDs = []string{"ed25519:x", "ed25519:y"}
	b.FamilyIDs = []string{"ed25519:y"}
	if Compatible(a, b, true) {
		t.Error("shared family-id not detected")
	}
	b.FamilyIDs = []string{"ed25519:z"}
	if !Compatible(a, b, true) {
		t.Error("distinct family-ids treated as family")
	}
	// Subnets.
	c := relay("c", 3, "10.1.200.7", 0, 1)
	if Compatible(a, c, true) {
		t.Error("same /16 allowed")
	}
	if !Compatible(a, c, false) {
		t.Error("same /16 refused with EnforceDistinctSubnets off")
	}
	d := relay("d", 4, "11.0.0.1", 0, 1)
	e := relay("e", 5, "12.0.0.1", 0, 1)
	d.IPv6 = netip.MustParseAddrPort("[2001:db8:1::1]:1")
	e.IPv6 = netip.MustParseAddrPort("[2001:db8:ffff::2]:1")
	if Compatible(d, e, true) {
		t.Error("same IPv6 /32 allowed")
	}
	e.IPv6 = netip.MustParseAddrPort("[2001:db9::2]:1")
	if !Compatible(d, e, true) {
		t.Error("different IPv6 /32 refused")
	}
	if !New().Compatible(a, b) || New().Compatible(a, c) || !(&Selector{}).Compatible(a, c) {
		t.Error("Selector.Compatible ignores EnforceDistinctSubnets")
	}
	if ok := New().CompatibleWith(a, d); ok(c) || !ok(e) {
		t.Error("CompatibleWith: wrong verdict")
	}
	// Same Ed25519 identity, different RSA identity.
	f, g := relay("f", 6, "13.0.0.1", 0, 1), relay("g", 7, "14.0.0.1", 0, 1)
	f.HasEd25519, g.HasEd25519 = true, true
	if Compatible(f, g, true) {
		t.Error("same Ed25519 identity allowed")
	}
}

func TestPickExitRules(t *testing.T) {
	d := pathtest.Build(pathtest.Options{N: 600, Seed: 7})
	s := seeded(1)
	for _, port := range []uint16{22, 80, 443, 8080} {
		p := port
		for i := 0; i < 500; i++ {
			r, err := s.PickExit(d, &p)
			if err != nil {
				t.Fatalf("port %d: %v", port, err)
			}
			if !r.ExitPolicy.Allows(port) || r.Flags&(netdir.FlagBadExit|netdir.FlagMiddleOnly) != 0 || !r.IsUsable() {
				t.Fatalf("port %d: bad exit %s flags %b policy %+v", port, r.Nickname, r.Flags, r.ExitPolicy)
			}
			if port == 22 && !r.Flags.Has(netdir.FlagStable) {
				t.Fatalf("long-lived port 22 got non-Stable exit %s", r.Nickname)
			}
		}
	}
	// No port: 80 or 443.
	for i := 0; i < 500; i++ {
		r, err := s.PickExit(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !r.ExitPolicy.Allows(80) && !r.ExitPolicy.Allows(443) {
			t.Fatalf("any-exit %s allows neither 80 nor 443", r.Nickname)
		}
	}
	// IPv6: only relays whose p6 summary allows the port.
	v6 := d.Relays[len(d.Relays)-1]
	v6.ExitPolicy6 = pathtest.PolicySSH
	s2 := seeded(30)
	for i := 0; i < 50; i++ {
		p, err := s2.PickPath(d, nil, Usage{ExitPort: 22, ExitIPv6: true})
		if err != nil {
			t.Fatal(err)
		}
		if p[2] != v6 {
			t.Fatalf("IPv6 exit %s has no p6 for 22", p[2].Nickname)
		}
	}
	// No synthetic policy allows port 25.
	p := uint16(25)
	if _, err := s.PickExit(d, &p); !errors.Is(err, ErrNoRelays) {
		t.Errorf("port 25: err %v, want ErrNoRelays", err)
	}
}

func TestNodeOptions(t *testing.T) {
	d := pathtest.Build(pathtest.Options{N: 300, Seed: 3})
	var exits []*netdir.Relay
	for _, r := range d.Relays {
		if exitOK(nil, false)(r) && r.Flags.Has(netdir.FlagFast) {
			exits = append(exits, r)
		}
	}
	if len(exits) < 4 {
		t.Fatal("too few exits in synthetic consensus")
	}
	// ExitNodes by fingerprint and nickname.
	s := seeded(2)
	s.ExitNodes = MustParseNodeSet(hexID(exits[0]), exits[1].Nickname)
	seen := map[*netdir.Relay]bool{}
	for i := 0; i < 200; i++ {
		r, err := s.PickExit(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r != exits[0] && r != exits[1] {
			t.Fatalf("ExitNodes ignored: got %s", r.Nickname)
		}
		seen[r] = true
	}
	if len(seen) != 2 {
		t.Errorf("ExitNodes: saw %d of 2 exits", len(seen))
	}
	// ExcludeExitNodes and ExcludeNodes.
	s = seeded(3)
	s.ExcludeExitNodes = MustParseNodeSet(hexID(exits[0]))
	s.ExcludeNodes = MustParseNodeSet(exits[1].Nickname)
	for i := 0; i < 3000; i++ {
		path, err := s.PickPath(d, nil, Usage{})
		if err != nil {
			t.Fatal(err)
		}
		if path[2] == exits[0] {
			t.Fatal("ExcludeExitNodes ignored")
		}
		for _, r := range path {
			if r == exits[1] {
				t.Fatal("ExcludeNodes ignored")
			}
		}
	}
	// EntryNodes restricts PickGuard.
	var guard *netdir.Relay
	for _, r := range d.Relays {
		if guardOK(r) {
			guard = r
			break
		}
	}
	s = seeded(4)
	s.EntryNodes = MustParseNodeSet(guard.Nickname)
	for i := 0; i < 50; i++ {
		if g, err := s.PickGuard(d); err != nil || g != guard {
			t.Fatalf("EntryNodes: got %v, %v", g, err)
		}
	}
}

func TestStrictNodesInternal(t *testing.T) {
	d := &netdir.NetDir{WeightScale: 10000}
	g := relay("g", 1, "1.0.0.1", netdir.FlagGuard, 10)
	m := relay("m", 2, "2.0.0.1", 0, 10)
	x := relay("x", 3, "3.0.0.1", 0, 10)
	d.Relays = []*netdir.Relay{g, m, x}
	d.Index()
	s := seeded(5)
	s.ExcludeNodes = MustParseNodeSet("x")
	// Internal circuit needs g, m and x: x is excluded but StrictNodes is
	// off, so it is used as a last resort.
	if _, err := s.PickPath(d, g, Usage{Internal: true}); err != nil {
		t.Fatalf("non-strict internal: %v", err)
	}
	s.StrictNodes = true
	if _, err := s.PickPath(d, g, Usage{Internal: true}); !errors.Is(err, ErrNoRelays) {
		t.Fatalf("strict internal: err %v, want ErrNoRelays", err)
	}
}

func TestFastStableFallback(t *testing.T) {
	d := &netdir.NetDir{WeightScale: 10000}
	g := relay("g", 1, "1.0.0.1", netdir.FlagGuard, 10)
	m := relay("m", 2, "2.0.0.1", 0, 10)
	m.Flags &^= netdir.FlagFast | netdir.FlagStable
	e := relay("e", 3, "3.0.0.1", netdir.FlagExit, 10)
	e.ExitPolicy = pathtest.PolicyWeb
	d.Relays = []*netdir.Relay{g, m, e}
	d.Index()
	p, err := seeded(6).PickPath(d, nil, Usage{ExitPort: 443})
	if err != nil {
		t.Fatal(err)
	}
	if p[0] != g || p[1] != m || p[2] != e {
		t.Fatalf("path %s,%s,%s", p[0].Nickname, p[1].Nickname, p[2].Nickname)
	}
}

// TestZeroWeightsUniform: a fresh TestingTorNetwork consensus has no
// measured bandwidths and all-zero weights; selection must fall back to
// a uniform choice (C tor's choose_array_element_by_weight) instead of
// failing.
func TestZeroWeightsUniform(t *testing.T) {
	zeroW := map[string]int64{}
	for k := range pathtest.DefaultWeights {
		zeroW[k] = 0
	}
	for name, o := range map[string]pathtest.Options{
		"zero-bandwidth": {N: 40, Seed: 9, ZeroBandwidth: true, FamilyFraction: 1e-9, SubnetFraction: 1e-9},
		"zero-weights":   {N: 40, Seed: 9, Weights: zeroW, FamilyFraction: 1e-9, SubnetFraction: 1e-9},
	} {
		t.Run(name, func(t *testing.T) {
			d := pathtest.Build(o)
			s := seeded(10)
			var mids []*netdir.Relay
			for _, r := range d.Relays {
				if middleOK(r) && r.Flags.Has(netdir.FlagFast) {
					mids = append(mids, r)
				}
			}
			const n = 40000
			count := map[*netdir.Relay]int{}
			for i := 0; i < n; i++ {
				r, err := s.PickMiddle(d)
				if err != nil {
					t.Fatal(err)
				}
				count[r]++
			}
			exp := float64(n) / float64(len(mids))
			for _, r := range mids {
				if dev := math.Abs(float64(count[r])-exp) / exp; dev > 0.1 {
					t.Errorf("%s: %d picks, expected %.0f (uniform)", r.Nickname, count[r], exp)
				}
			}
			if _, err := s.PickPath(d, nil, Usage{ExitPort: 80}); err != nil {
				t.Errorf("PickPath: %v", err)
			}
		})
	}
}

// chiSquareOK bins expected counts (bins of at least 20 expected
// observations) and compares the chi-square statistic with the 0.9999
// quantile of the chi-square distribution (Wilson-Hilferty
// approximation).
func chiSquareOK(t *testing.T, what string, exp map[*netdir.Relay]float64, got map[*netdir.Relay]int) {
	t.Helper()
	type kv struct {
		e float64
		o int
	}
	var all []kv
	for r, e := range exp {
		all = append(all, kv{e, got[r]})
	}
	for r, o := range got {
		if exp[r] == 0 {
			t.Errorf("%s: %s chosen %d times with zero expected weight", what, r.Nickname, o)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].e < all[j].e })
	var chi float64
	bins := 0
	var be float64
	var bo int
	for i, x := range all {
		be += x.e
		bo += x.o
		if be >= 20 || i == len(all)-1 {
			chi += (float64(bo) - be) * (float64(bo) - be) / be
			bins++
			be, bo = 0, 0
		}
	}
	df := float64(bins - 1)
	const z = 3.719 // 0.9999 normal quantile
	crit := df * math.Pow(1-2/(9*df)+z*math.Sqrt(2/(9*df)), 3)
	t.Logf("%s: chi2=%.1f df=%.0f critical(0.9999)=%.1f", what, chi, df, crit)
	if chi > crit {
		t.Errorf("%s: chi2 %.1f exceeds %.1f (df %.0f)", what, chi, crit, df)
	}
}

// TestSelectionFrequencies draws 100,000 relays for each position from a
// synthetic 400-relay consensus whose bandwidth-weights are all non-zero
// and checks the observed frequencies against the expected probability
// Bandwidth*W(position,class)/sum, computed here from the weight table,
// with a chi-square test at the 0.9999 level (the seed is fixed, so the
// test is deterministic). It also checks that each class's share of the
// picks is within 1 percentage point of its expected share.
func TestSelectionFrequencies(t *testing.T) {
	d := pathtest.Build(pathtest.Options{N: 400, Seed: 11})
	W := func(k string) float64 { return float64(d.Weights[k]) / 10000 }
	class := func(r *netdir.Relay) byte {
		e := r.Flags.Has(netdir.FlagExit) && !r.Flags.Has(netdir.FlagBadExit)
		g := r.Flags.Has(netdir.FlagGuard)
		switch {
		case g && e:
			return 'd'
		case g:
			return 'g'
		case e:
			return 'e'
		}
		return 'm'
	}
	table := map[string]map[byte]float64{
		"guard":  {'g': W("Wgg") * W("Wgb"), 'm': W("Wgm") * W("Wmb"), 'e': 0, 'd': W("Wgd") * W("Wdb")},
		"middle": {'g': W("Wmg") * W("Wgb"), 'm': W("Wmm") * W("Wmb"), 'e': W("Wme") * W("Web"), 'd': W("Wmd") * W("Wdb")},
		"exit":   {'g': W("Weg") * W("Wgb"), 'm': W("Wem") * W("Wmb"), 'e': W("Wee") * W("Web"), 'd': W("Wed") * W("Wdb")},
		"dir":    {'g': W("Wbg"), 'm': W("Wbm"), 'e': W("Wbe"), 'd': W("Wbd")},
	}
	port := uint16(443)
	positions := []struct {
		name string
		elig func(*netdir.Relay) bool
		pick func(*Selector) (*netdir.Relay, error)
	}{
		{"guard", func(r *netdir.Relay) bool { return guardOK(r) }, func(s *Selector) (*netdir.Relay, error) { return s.PickGuard(d) }},
		{"middle", func(r *netdir.Relay) bool { return middleOK(r) && r.Flags.Has(netdir.FlagFast) }, func(s *Selector) (*netdir.Relay, error) { return s.PickMiddle(d) }},
		{"exit", func(r *netdir.Relay) bool { return exitOK(&port, false)(r) && r.Flags.Has(netdir.FlagFast) }, func(s *Selector) (*netdir.Relay, error) { return s.PickExit(d, &port) }},
		{"dir", dirOK, func(s *Selector) (*netdir.Relay, error) { return s.PickDirectory(d) }},
	}
	const n = 100000
	for _, pos := range positions {
		t.Run(pos.name, func(t *testing.T) {
			exp := map[*netdir.Relay]float64{}
			expClass := map[byte]float64{}
			total := 0.0
			for _, r := range d.Relays {
				if pos.elig(r) {
					w := float64(r.Bandwidth) * table[pos.name][class(r)]
					exp[r] = w
					total += w
				}
			}
			for r := range exp {
				exp[r] *= n / total
				expClass[class(r)] += exp[r] / n
			}
			s := seeded(12)
			got := map[*netdir.Relay]int{}
			gotClass := map[byte]float64{}
			for i := 0; i < n; i++ {
				r, err := pos.pick(s)
				if err != nil {
					t.Fatal(err)
				}
				got[r]++
				gotClass[class(r)] += 1.0 / n
			}
			chiSquareOK(t, pos.name, exp, got)
			for c, e := range expClass {
				if math.Abs(gotClass[c]-e) > 0.01 {
					t.Errorf("class %c share %.4f, expected %.4f", c, gotClass[c], e)
				}
			}
			t.Logf("%s class shares: got %v expected %v", pos.name, gotClass, expClass)
		})
	}
}

// independent re-implementation of the path rules for checking.
func violates(a, b *netdir.Relay) string {
	if a.RSAID == b.RSAID {
		return "same relay"
	}
	if a.Addr.As4()[0] == b.Addr.As4()[0] && a.Addr.As4()[1] == b.Addr.As4()[1] {
		return "same /16"
	}
	if a.IPv6.IsValid() && b.IPv6.IsValid() {
		x, y := a.IPv6.Addr().As16(), b.IPv6.Addr().As16()
		if [4]byte(x[:4]) == [4]byte(y[:4]) {
			return "same IPv6 /32"
		}
	}
	lists := func(x, y *netdir.Relay) bool {
		if len(x.Family) == 0 {
			return false
		}
		yid := fmt.Sprintf("$%X", y.RSAID)
		for _, f := range x.Family {
			if strings.EqualFold(f, yid) || strings.EqualFold(f, y.Nickname) {
				return true
			}
		}
		return false
	}
	if lists(a, b) && lists(b, a) {
		return "mutual family"
	}
	for _, x := range a.FamilyIDs {
		for _, y := range b.FamilyIDs {
			if x == y {
				return "family-id"
			}
		}
	}
	return ""
}

// TestPathRules builds 100,000 paths (10,000 with -race or -short) on a 1,000-relay consensus with many
// families and shared subnets and checks every one against an
// independent implementation of the rules.
func TestPathRules(t *testing.T) {
	d := pathtest.Build(pathtest.Options{N: 1000, Seed: 13, FamilyFraction: 0.5, SubnetFraction: 0.3})
	s := seeded(14)
	ports := []uint16{0, 80, 443, 22, 8080, 6667}
	var guards []*netdir.Relay
	for _, r := range d.Relays {
		if guardOK(r) {
			guards = append(guards, r)
		}
	}
	exitCount := map[*netdir.Relay]int{}
	n := 100000
	if raceEnabled || testing.Short() {
		n = 10000
	}
	for i := 0; i < n; i++ {
		u := Usage{ExitPort: ports[i%len(ports)], Internal: i%17 == 0}
		var g *netdir.Relay
		if i%2 == 0 {
			g = guards[i%len(guards)]
		}
		p, err := s.PickPath(d, g, u)
		if err != nil {
			t.Fatalf("path %d (%+v): %v", i, u, err)
		}
		if g != nil && p[0] != g {
			t.Fatal("given guard not used")
		}
		for a := 0; a < 3; a++ {
			for b := a + 1; b < 3; b++ {
				if v := violates(p[a], p[b]); v != "" {
					t.Fatalf("path %d: %s and %s: %s", i, p[a].Nickname, p[b].Nickname, v)
				}
			}
		}
		if !p[0].Flags.Has(netdir.FlagGuard) {
			t.Fatalf("path %d: first hop %s not a Guard", i, p[0].Nickname)
		}
		if !u.Internal {
			e := p[2]
			if e.Flags&(netdir.FlagBadExit|netdir.FlagMiddleOnly) != 0 {
				t.Fatalf("path %d: exit %s is BadExit/MiddleOnly", i, e.Nickname)
			}
			if u.ExitPort != 0 && !e.ExitPolicy.Allows(u.ExitPort) {
				t.Fatalf("path %d: exit %s refuses port %d", i, e.Nickname, u.ExitPort)
			}
			if u.ExitPort == 0 && !e.ExitPolicy.Allows(80) && !e.ExitPolicy.Allows(443) {
				t.Fatalf("path %d: exit %s refuses 80 and 443", i, e.Nickname)
			}
			exitCount[e]++
		}
		for _, r := range p[1:] {
			if !r.Flags.Has(netdir.FlagFast) {
				t.Fatalf("path %d: %s not Fast", i, r.Nickname)
			}
		}
	}
	t.Logf("%d distinct exits used", len(exitCount))
}

// cpuTime is the process's user+system CPU time in ns: on a shared,
// overloaded machine cpu-ns/op is a steadier figure than wall-clock ns/op.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestFamilyFromOtherNetDir: a path member that is not in the NetDir
// being used (a guard from an older consensus) still excludes its family.
func TestFamilyFromOtherNetDir(t *testing.T) {
	d := pathtest.Build(pathtest.Options{N: 400, Seed: 5, BigFamilies: 1})
	s := seeded(8)
	a := d.Relays[0] // member of the 200-relay family
	old := *a        // same relay, another NetDir's copy
	gone := *a       // a relay that has left: not in d at all
	gone.RSAID[0] ^= 0xff
	gone.Ed25519ID[0] ^= 0xff
	for _, r := range d.Relays[1:200] { // its family still lists it
		r.Family = append(r.Family, fmt.Sprintf("$%X", gone.RSAID))
	}
	for _, p := range []*netdir.Relay{a, &old, &gone} {
		for i := 0; i < 300; i++ {
			r, err := s.PickMiddle(d, p)
			if err != nil {
				t.Fatal(err)
			}
			if idx := slices.Index(d.Relays, r); idx < 200 {
				t.Fatalf("picked %s, in the family of %s", r.Nickname, a.Nickname)
			}
		}
	}
}

// BenchmarkCacheBigFamilies: building the per-NetDir cache with 10
// families of 200 relays each (40,000 family entries).
func BenchmarkCacheBigFamilies(b *testing.B) {
	d := pathtest.Build(pathtest.Options{N: 7000, Seed: 1, BigFamilies: 10})
	b.ReportAllocs()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		s := New()
		s.cacheFor(d)
	}
}

func BenchmarkPickPath(b *testing.B) {
	d := pathtest.Build(pathtest.Options{N: 7000, Seed: 1})
	s := seeded(1)
	var guards []*netdir.Relay
	for _, r := range d.Relays {
		if guardOK(r) {
			guards = append(guards, r)
		}
	}
	for _, bc := range []struct {
		name  string
		guard bool
		u     Usage
	}{
		{"guard-given/port443", true, Usage{ExitPort: 443}},
		{"guard-given/any", true, Usage{}},
		{"guard-given/internal", true, Usage{Internal: true}},
		{"no-guard/port443", false, Usage{ExitPort: 443}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := s.PickPath(d, nil, bc.u); err != nil { // warm the cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			cpu0 := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
			for b.Loop() {
				var g *netdir.Relay
				if bc.guard {
					g = guards[i%len(guards)]
				}
				i++
				if _, err := s.PickPath(d, g, bc.u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("cold-cache", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
		for b.Loop() {
			s := seeded(2)
			if _, err := s.PickPath(d, guards[0], Usage{ExitPort: 443}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The middle of an exit circuit never falls back to an excluded relay,
// even with StrictNodes off (issue 17 item 17; C tor relaxes ExcludeNodes
// only for internal circuits).
func TestExcludeNodesMiddleOfExitCircuit(t *testing.T) {
	d := &netdir.NetDir{WeightScale: 10000}
	g := relay("g", 1, "1.0.0.1", netdir.FlagGuard, 10)
	m := relay("m", 2, "2.0.0.1", 0, 10)
	e := relay("e", 3, "3.0.0.1", netdir.FlagExit, 10)
	e.ExitPolicy = pathtest.PolicyWeb
	d.Relays = []*netdir.Relay{g, m, e}
	d.Index()
	s := seeded(7)
	s.ExcludeNodes = MustParseNodeSet("m")
	if r, err := s.PickMiddle(d, g, e); !errors.Is(err, ErrNoRelays) {
		t.Fatalf("PickMiddle with the only middle excluded: %v, %v; want ErrNoRelays", r, err)
	}
	if _, err := s.PickPath(d, g, Usage{ExitPort: 443}); !errors.Is(err, ErrNoRelays) {
		t.Fatalf("exit path with the only middle excluded: %v; want ErrNoRelays", err)
	}
}

// PickRendezvous weighs by bandwidth, honours ExcludeNodes and the
// caller's filter (issue 17 item 6).
func TestPickRendezvous(t *testing.T) {
	d := &netdir.NetDir{WeightScale: 10000}
	a := relay("a", 1, "1.0.0.1", 0, 10)
	b := relay("b", 2, "2.0.0.1", 0, 30)
	x := relay("x", 3, "3.0.0.1", 0, 1000)
	n := relay("n", 4, "4.0.0.1", 0, 1000)
	d.Relays = []*netdir.Relay{a, b, x, n}
	d.Index()
	s := seeded(8)
	s.ExcludeNodes = MustParseNodeSet("x")
	notN := func(r *netdir.Relay) bool { return r != n }
	count := map[*netdir.Relay]int{}
	const picks = 20000
	for i := 0; i < picks; i++ {
		r, err := s.PickRendezvous(d, notN)
		if err != nil {
			t.Fatal(err)
		}
		count[r]++
	}
	if count[x] != 0 || count[n] != 0 {
		t.Fatalf("excluded or filtered relays picked: x %d, n %d", count[x], count[n])
	}
	// b has three times a's bandwidth: about 3/4 of the picks.
	if f := float64(count[b]) / picks; f < 0.70 || f > 0.80 {
		t.Fatalf("b picked %.2f of the time, want about 0.75 (bandwidth-weighted)", f)
	}
}
