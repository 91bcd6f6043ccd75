// Building a netdir.NetDir from a verified microdesc consensus and its
// microdescriptors: dir-spec §3.4.1 (router status entries,
// bandwidth-weights, params), §3.3 (microdescriptor fields) and
// param-spec ("bwweightscale").

package dirmgr

import (
	"maps"
	"math"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/netdoc"
)

// BuildNetDir combines a consensus with the microdescriptors it lists
// (those missing leave Relay.HasMicrodesc false).
func BuildNetDir(c *netdoc.Consensus, mds map[[32]byte]*netdoc.Microdesc) *netdir.NetDir {
	nd := &netdir.NetDir{
		ValidAfter:         c.ValidAfter,
		FreshUntil:         c.FreshUntil,
		ValidUntil:         c.ValidUntil,
		Params:             maps.Clone(c.Params),
		SharedRandCurrent:  c.SharedRandCurrent,
		SharedRandPrevious: c.SharedRandPrevious,
	}
	if nd.Params == nil {
		nd.Params = map[string]int32{}
	}
	nd.WeightScale = int64(nd.Param("bwweightscale", 10000, 1, math.MaxInt32))
	nd.Weights = maps.Clone(c.BandwidthWeights)
	if nd.Weights == nil {
		nd.Weights = map[string]int64{}
	}
	relays := make([]netdir.Relay, len(c.Routers))
	nd.Relays = make([]*netdir.Relay, len(c.Routers))
	for i := range c.Routers {
		rs := &c.Routers[i]
		r := &relays[i]
		*r = netdir.Relay{
			Nickname:        rs.Nickname,
			RSAID:           rs.Identity,
			Addr:            rs.Addr,
			ORPort:          rs.ORPort,
			DirPort:         rs.DirPort,
			IPv6:            rs.IPv6,
			Flags:           rs.Flags,
			Bandwidth:       rs.Bandwidth,
			Unmeasured:      rs.Unmeasured,
			Version:         rs.Version,
			Protocols:       rs.Protocols,
			MicrodescDigest: rs.MicrodescDigest,
		}
		if md, ok := mds[rs.MicrodescDigest]; ok {
			r.HasMicrodesc = true
			r.NtorOnionKey = md.NtorOnionKey
			// dir-spec §3.3: ignore the ed25519 id when the consensus
			// entry has NoEdConsensus.
			if md.HasEd25519 && !rs.Flags.Has(netdir.FlagNoEdConsensus) {
				r.Ed25519ID, r.HasEd25519 = md.Ed25519ID, true
			}
			r.Family = md.Family
			r.FamilyIDs = md.FamilyIDs
			r.ExitPolicy = md.ExitPolicy
			r.ExitPolicy6 = md.ExitPolicy6
			if !r.IPv6.IsValid() && md.IPv6.IsValid() {
				r.IPv6 = md.IPv6
			}
		}
		nd.Relays[i] = r
	}
	nd.Index()
	return nd
}
