// Bandwidth-weighted relay choice.
//
// Spec: dir-spec §3.8.3 ("Computing Bandwidth Weights": Wgg, Wgm, Wgd,
// Wmg, Wmm, Wme, Wmd, Wee, Weg, Wem, Wed, Wgb, Wmb, Web, Wdb, Wbg, Wbm,
// Wbe, Wbd, scaled by bwweightscale) and path-spec §2.2 ("Choosing a
// path": relays are chosen in proportion to their weighted consensus
// bandwidth). The mapping of rules to weights follows C tor's
// compute_weighted_bandwidths: a relay is classed as guard+exit ("d"),
// guard ("g"), exit ("e") or middle ("m"), where "exit" means Exit and
// not BadExit, and directory caches (V2Dir) are further multiplied by the
// matching W?b weight.

package path

import (
	"math/rand/v2"

	"github.com/gotor/gotor/internal/netdir"
)

// Rule says which position a relay is being weighted for.
type Rule int

// Weighting rules (C tor's bandwidth_weight_rule_t).
const (
	// WeightForGuard weights for the first hop (Wgg, Wgm, Wgd; We=0).
	WeightForGuard Rule = iota
	// WeightForMiddle weights for a middle hop (Wmg, Wmm, Wme, Wmd).
	WeightForMiddle
	// WeightForExit weights for the last hop of an exit circuit
	// (Weg, Wem, Wee, Wed).
	WeightForExit
	// WeightForDir weights for a directory fetch from any cache
	// (Wbg, Wbm, Wbe, Wbd).
	WeightForDir
	// NoWeighting weights every relay by its bandwidth alone.
	NoWeighting
	numRules
)

func (r Rule) String() string {
	switch r {
	case WeightForGuard:
		return "guard"
	case WeightForMiddle:
		return "middle"
	case WeightForExit:
		return "exit"
	case WeightForDir:
		return "dir"
	case NoWeighting:
		return "none"
	}
	return "unknown"
}

// positionWeights are the per-class multipliers of one rule, already
// divided by the weight scale.
type positionWeights struct {
	g, m, e, d     float64 // guard, middle, exit, guard+exit
	gb, mb, eb, db float64 // extra factor for directory caches
}

// weightsFor returns the multipliers for rule from dir's
// bandwidth-weights. Missing or negative weights make every multiplier 1
// (C tor's "naive selection" fallback).
func weightsFor(dir *netdir.NetDir, rule Rule) positionWeights {
	scale := float64(dir.WeightScale)
	if scale < 1 {
		scale = 10000
	}
	get := func(k string) float64 {
		v, ok := dir.Weights[k]
		if !ok {
			return -1
		}
		if float64(v) > scale { // networkstatus_get_bw_weight clamps
			return scale
		}
		return float64(v)
	}
	var w positionWeights
	switch rule {
	case WeightForGuard:
		w = positionWeights{g: get("Wgg"), m: get("Wgm"), e: 0, d: get("Wgd"),
			gb: get("Wgb"), mb: get("Wmb"), eb: get("Web"), db: get("Wdb")}
	case WeightForMiddle:
		w = positionWeights{g: get("Wmg"), m: get("Wmm"), e: get("Wme"), d: get("Wmd"),
			gb: get("Wgb"), mb: get("Wmb"), eb: get("Web"), db: get("Wdb")}
	case WeightForExit:
		w = positionWeights{g: get("Weg"), m: get("Wem"), e: get("Wee"), d: get("Wed"),
			gb: get("Wgb"), mb: get("Wmb"), eb: get("Web"), db: get("Wdb")}
	case WeightForDir:
		w = positionWeights{g: get("Wbg"), m: get("Wbm"), e: get("Wbe"), d: get("Wbd"),
			gb: scale, mb: scale, eb: scale, db: scale}
	default:
		w = positionWeights{scale, scale, scale, scale, scale, scale, scale, scale}
	}
	if w.g < 0 || w.m < 0 || w.e < 0 || w.d < 0 || w.gb < 0 || w.mb < 0 || w.eb < 0 || w.db < 0 {
		w = positionWeights{scale, scale, scale, scale, scale, scale, scale, scale}
	}
	w.g /= scale
	w.m /= scale
	w.e /= scale
	w.d /= scale
	w.gb /= scale
	w.mb /= scale
	w.eb /= scale
	w.db /= scale
	return w
}

// weight is r's weighted bandwidth under w.
func (w *positionWeights) weight(r *netdir.Relay) float64 {
	isExit := r.Flags.Has(netdir.FlagExit) && !r.Flags.Has(netdir.FlagBadExit)
	isGuard := r.Flags.Has(netdir.FlagGuard)
	isDir := r.Flags.Has(netdir.FlagV2Dir)
	var f float64
	switch {
	case isGuard && isExit:
		f = w.d
		if isDir {
			f *= w.db
		}
	case isGuard:
		f = w.g
		if isDir {
			f *= w.gb
		}
	case isExit:
		f = w.e
		if isDir {
			f *= w.eb
		}
	default:
		f = w.m
		if isDir {
			f *= w.mb
		}
	}
	if f < 0 {
		f = 0
	}
	return f * float64(r.Bandwidth)
}

// RelayWeight returns r's weighted consensus bandwidth for rule: the
// quantity that path selection makes a relay's choice probability
// proportional to.
func RelayWeight(dir *netdir.NetDir, r *netdir.Relay, rule Rule) float64 {
	w := weightsFor(dir, rule)
	return w.weight(r)
}

// ChooseWeighted picks one of cands with probability proportional to
// RelayWeight(dir, c, rule). If every candidate weighs zero (all
// bandwidths or all applicable weights are 0, as in a fresh test
// network) the choice is uniform, as in C tor. It returns nil only when
// cands is empty. A nil rnd uses the package-level math/rand/v2 source
// (ChaCha8, seeded from the OS).
func ChooseWeighted(dir *netdir.NetDir, cands []*netdir.Relay, rule Rule, rnd *rand.Rand) *netdir.Relay {
	if len(cands) == 0 {
		return nil
	}
	w := weightsFor(dir, rule)
	ws := make([]float64, len(cands))
	total := 0.0
	for i, c := range cands {
		ws[i] = w.weight(c)
		total += ws[i]
	}
	return cands[chooseIndex(ws, total, rnd)]
}

// chooseIndex picks an index of ws in proportion to its value, or
// uniformly if total is 0.
func chooseIndex(ws []float64, total float64, rnd *rand.Rand) int {
	if total <= 0 {
		return intN(rnd, len(ws))
	}
	x := float64Rand(rnd) * total
	last := -1
	for i, v := range ws {
		if v <= 0 {
			continue
		}
		last = i
		if x < v {
			return i
		}
		x -= v
	}
	return last // floating point rounding: the last positive entry
}

func intN(rnd *rand.Rand, n int) int {
	if rnd == nil {
		return rand.IntN(n)
	}
	return rnd.IntN(n)
}

func float64Rand(rnd *rand.Rand) float64 {
	if rnd == nil {
		return rand.Float64()
	}
	return rnd.Float64()
}
