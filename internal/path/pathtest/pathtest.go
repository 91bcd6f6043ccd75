// Package pathtest builds synthetic NetDirs for tests and benchmarks of
// path selection and guard management: many relays with a realistic mix
// of flags, bandwidths, exit-policy summaries (dir-spec §3.3 "p" lines),
// families (mutual, one-sided, and prop 321 family-ids) and shared /16
// subnets.
package pathtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

// Options configure Build.
type Options struct {
	N    int    // number of relays
	Seed uint64 // RNG seed; equal options give equal NetDirs

	// Weights, if non-nil, replace DefaultWeights; an empty non-nil map
	// means the consensus had no bandwidth-weights line.
	Weights map[string]int64
	// ZeroBandwidth gives every relay Bandwidth 0 and Unmeasured, like a
	// fresh TestingTorNetwork.
	ZeroBandwidth bool
	// FamilyFraction is the fraction of relays placed in families
	// (default 0.2); SubnetFraction the fraction sharing a /16 with
	// another relay (default 0.1).
	FamilyFraction, SubnetFraction float64
	// BigFamilies adds that many families of 200 relays each, every
	// member listing all others by $HEX (as large operators do).
	BigFamilies int
}

// DefaultWeights are bandwidth-weights with every entry non-zero, so that
// every class of relay can appear in every position.
var DefaultWeights = map[string]int64{
	"Wgg": 6000, "Wgm": 6000, "Wgd": 3000,
	"Wmg": 4000, "Wmm": 10000, "Wme": 1500, "Wmd": 2500,
	"Weg": 2000, "Wem": 2500, "Wee": 8500, "Wed": 4500,
	"Wgb": 10000, "Wmb": 10000, "Web": 9000, "Wdb": 10000,
	"Wbg": 3000, "Wbm": 10000, "Wbe": 5000, "Wbd": 2000,
}

// Policies used for exits, in rotation.
var (
	PolicyWeb    = netdir.PortPolicy{Accept: true, Ranges: []netdir.PortRange{pr(80, 80), pr(443, 443)}}
	PolicyMost   = netdir.PortPolicy{Accept: false, Ranges: []netdir.PortRange{pr(25, 25), pr(119, 119), pr(135, 139), pr(445, 445), pr(6881, 6999)}}
	PolicySSH    = netdir.PortPolicy{Accept: true, Ranges: []netdir.PortRange{pr(22, 22), pr(443, 443)}}
	PolicyHigh   = netdir.PortPolicy{Accept: true, Ranges: []netdir.PortRange{pr(1024, 65535)}}
	PolicyReject = netdir.PortPolicy{} // rejects everything
)

// Build returns a synthetic, indexed NetDir.
func Build(o Options) *netdir.NetDir {
	if o.N <= 0 {
		o.N = 100
	}
	if o.FamilyFraction == 0 {
		o.FamilyFraction = 0.2
	}
	if o.SubnetFraction == 0 {
		o.SubnetFraction = 0.1
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	va := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	d := &netdir.NetDir{
		ValidAfter: va, FreshUntil: va.Add(time.Hour), ValidUntil: va.Add(3 * time.Hour),
		WeightScale: 10000, Params: map[string]int32{},
	}
	if o.Weights != nil {
		d.Weights = o.Weights
	} else {
		d.Weights = DefaultWeights
	}
	policies := []netdir.PortPolicy{PolicyWeb, PolicyMost, PolicySSH, PolicyHigh}
	for i := 0; i < o.N; i++ {
		r := &netdir.Relay{Nickname: fmt.Sprintf("relay%d", i), ORPort: 9001, HasMicrodesc: true}
		for j := range r.RSAID {
			r.RSAID[j] = byte(rng.Uint32())
		}
		for j := range r.Ed25519ID {
			r.Ed25519ID[j] = byte(rng.Uint32())
		}
		r.HasEd25519 = true
		// Distinct /16 unless chosen to share one with an earlier relay.
		if i > 0 && rng.Float64() < o.SubnetFraction {
			prev := d.Relays[rng.IntN(i)].Addr.As4()
			r.Addr = netip.AddrFrom4([4]byte{prev[0], prev[1], byte(rng.Uint32()), byte(rng.Uint32())})
		} else {
			r.Addr = netip.AddrFrom4([4]byte{byte(1 + i/250), byte(i % 250), byte(rng.Uint32()), 1 + byte(rng.IntN(250))})
		}
		if rng.IntN(4) == 0 {
			r.IPv6 = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, byte(i >> 8), byte(i), 15: 1}), 9001)
		}
		r.Flags = netdir.FlagRunning | netdir.FlagValid | netdir.FlagV2Dir
		if rng.Float64() < 0.9 {
			r.Flags |= netdir.FlagFast
		}
		if rng.Float64() < 0.75 {
			r.Flags |= netdir.FlagStable
		}
		if r.Flags.Has(netdir.FlagFast|netdir.FlagStable) && rng.Float64() < 0.45 {
			r.Flags |= netdir.FlagGuard
		}
		r.ExitPolicy = PolicyReject
		if rng.Float64() < 0.3 {
			r.ExitPolicy = policies[rng.IntN(len(policies))]
			if r.ExitPolicy.Allows(80) || r.ExitPolicy.Allows(443) {
				r.Flags |= netdir.FlagExit
			}
			if rng.Float64() < 0.03 {
				r.Flags |= netdir.FlagBadExit
			}
		}
		if rng.Float64() < 0.01 {
			r.Flags |= netdir.FlagMiddleOnly
			r.Flags &^= netdir.FlagGuard | netdir.FlagExit
		}
		if !o.ZeroBandwidth {
			// Roughly log-uniform between 10 and 100000 kB/s.
			r.Bandwidth = uint32(10 * math.Pow(10, rng.Float64()*4))
		} else {
			r.Unmeasured = true
		}
		d.Relays = append(d.Relays, r)
	}
	// Families: consecutive groups of 2-4 relays declaring each other by
	// $HEX (or lower-case nickname); a third use prop 321 family-ids; some
	// relays make one-sided declarations, which do not form a family.
	for i := 0; i < o.N; {
		if rng.Float64() >= o.FamilyFraction/3 {
			i++
			continue
		}
		size := 2 + rng.IntN(3)
		if i+size > o.N {
			break
		}
		group := d.Relays[i : i+size]
		switch rng.IntN(3) {
		case 0, 1:
			for _, a := range group {
				for _, b := range group {
					if a == b {
						continue
					}
					if rng.IntN(10) == 0 {
						a.Family = append(a.Family, b.Nickname)
					} else {
						a.Family = append(a.Family, fmt.Sprintf("$%X", b.RSAID))
					}
				}
			}
		case 2:
			id := fmt.Sprintf("ed25519:fam%d", i)
			for _, a := range group {
				a.FamilyIDs = append(a.FamilyIDs, id)
			}
		}
		i += size
	}
	for f := 0; f < o.BigFamilies && (f+1)*200 <= o.N; f++ {
		group := d.Relays[f*200 : (f+1)*200]
		for _, a := range group {
			a.Family, a.FamilyIDs = nil, nil
			for _, b := range group {
				if a != b {
					a.Family = append(a.Family, fmt.Sprintf("$%X", b.RSAID))
				}
			}
		}
	}
	for i := 0; i+1 < o.N; i += 37 { // one-sided: i claims i+1
		a, b := d.Relays[i], d.Relays[i+1]
		if len(a.Family) == 0 && len(b.Family) == 0 && len(a.FamilyIDs) == 0 && len(b.FamilyIDs) == 0 {
			a.Family = append(a.Family, fmt.Sprintf("$%X", b.RSAID))
		}
	}
	d.Index()
	return d
}

func pr(lo, hi uint16) netdir.PortRange { return netdir.PortRange{Lo: lo, Hi: hi} }
