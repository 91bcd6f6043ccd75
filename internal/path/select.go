// Package path chooses relays for circuits.
//
// Spec: path-spec §2.2 ("Path selection and constraints": distinct
// relays, families, /16 subnets, Fast/Stable requirements, exit policy
// for the requested port, BadExit), path-spec §2.3 (choosing the exit
// first, then the entry, then the middle), dir-spec §3.8.3 for the
// bandwidth-weights, prop 335 (MiddleOnly relays never serve as guards or
// exits) and the tor manual for ExitNodes, EntryNodes, ExcludeNodes,
// ExcludeExitNodes and StrictNodes. C tor equivalents:
// node_select.c (router_choose_random_node, with its retry without the
// Fast/Stable requirements) and circuitbuild.c (choose_good_exit_server,
// choose_good_middle_server).
//
// Long-term entry guards are managed by internal/guard; a Selector only
// picks guards itself when the caller passes no guard (tests, or
// configurations that disable guards).
package path

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gotor/gotor/internal/netdir"
)

// ErrNoRelays means no relay satisfies the constraints for a position.
var ErrNoRelays = errors.New("path: no suitable relay")

// DefaultLongLivedPorts is the tor default LongLivedPorts: streams to these
// ports need Stable relays.
var DefaultLongLivedPorts = []uint16{21, 22, 706, 1863, 5050, 5190, 5222, 5223, 6523, 6667, 6697, 8300}

// Usage says what the last hop of a circuit must provide.
type Usage struct {
	// ExitPort, if not 0, is a TCP port the exit's policy summary must
	// allow.
	ExitPort uint16
	// AnyExit asks for an exit allowing port 80 or 443 (a prebuilt
	// circuit for the predicted web ports). It is implied when ExitPort
	// is 0 and Internal is false.
	AnyExit bool
	// Internal asks for a circuit whose last hop is chosen as a middle
	// relay (onion services, multi-hop directory fetches): no exit policy
	// requirement.
	Internal bool
	// NeedStable requires Stable relays (implied for ExitPort in
	// LongLivedPorts).
	NeedStable bool
	// ExitIPv6 says the stream's target is an IPv6 address: the exit's
	// IPv6 policy summary ("p6") must allow the port.
	ExitIPv6 bool
}

// Selector picks relays. Its fields are its configuration; set them
// before first use and do not change them afterwards. The zero Selector
// does not enforce distinct subnets: use New for tor's defaults.
type Selector struct {
	// EnforceDistinctSubnets forbids two relays of one IPv4 /16 or IPv6
	// /32 in a circuit (tor's default: true).
	EnforceDistinctSubnets bool

	// ExitNodes, if non-empty, restricts exits to its members.
	ExitNodes *NodeSet
	// EntryNodes, if non-empty, restricts guards to its members (used
	// by PickGuard and internal/guard).
	EntryNodes *NodeSet
	// ExcludeNodes are never used, except, when StrictNodes is false, as
	// a last resort for internal circuits and directory fetches.
	ExcludeNodes *NodeSet
	// ExcludeExitNodes are never used as exits.
	ExcludeExitNodes *NodeSet
	// StrictNodes makes ExcludeNodes absolute.
	StrictNodes bool

	// LongLivedPorts need Stable relays; nil means
	// DefaultLongLivedPorts.
	LongLivedPorts []uint16

	// Rand, if set, is the randomness source (for deterministic tests);
	// the Selector serialises its use. Nil uses math/rand/v2's
	// package-level source, seeded from the OS.
	Rand *rand.Rand

	rmu   sync.Mutex
	cache atomic.Pointer[cachePair]
}

// New returns a Selector with tor's defaults (EnforceDistinctSubnets).
func New() *Selector { return &Selector{EnforceDistinctSubnets: true} }

// dirCache holds per-NetDir precomputed data, indexed like dir.Relays:
// per-rule weights, family/subnet info, and reverse indexes from
// identities, nicknames, family-ids and networks to relays, so that the
// relays related to a path member are found without testing every
// candidate against it.
type dirCache struct {
	dir    *netdir.NetDir
	fam    []famInfo // addresses and family-ids only (addrInfo)
	mutual [][]int32 // relays in a mutually declared family with each relay
	byID   map[[20]byte]int32
	byEd   map[[32]byte][]int32
	byNick map[string][]int32
	byFID  map[string][]int32
	byV4   map[[2]byte][]int32
	byV6   map[[4]byte][]int32
	w      [numRules][]float64
	flags  []netdir.Flags

	// Candidate lists per position (before Fast/Stable, node sets and
	// path restrictions).
	middles, guards, dirs []int32
	exitMu                sync.Mutex
	exits                 map[exitKey][]int32
	exitsWeb              []int32 // port 80 or 443
}

// maxCachedPorts bounds the per-port exit lists of one NetDir.
const maxCachedPorts = 256

func (c *dirCache) filter(ok func(*netdir.Relay) bool) []int32 {
	var out []int32
	for i, r := range c.dir.Relays {
		if ok(r) {
			out = append(out, int32(i))
		}
	}
	return out
}

type exitKey struct {
	port uint16
	ipv6 bool
}

// exitCands returns the relays whose exit policy summary ("p", or "p6"
// for ipv6) allows *port (80 or 443 for nil), excluding BadExit and
// MiddleOnly.
func (c *dirCache) exitCands(port *uint16, ipv6 bool) []int32 {
	if port == nil && !ipv6 {
		return c.exitsWeb
	}
	k := exitKey{ipv6: ipv6}
	if port != nil {
		k.port = *port
	}
	c.exitMu.Lock()
	defer c.exitMu.Unlock()
	if l, ok := c.exits[k]; ok {
		return l
	}
	l := c.filter(exitOK(port, ipv6))
	if len(c.exits) < maxCachedPorts {
		c.exits[k] = l
	}
	return l
}

// cachePair keeps the caches of the two most recent NetDirs, so that
// callers still holding the previous consensus do not force rebuilds.
type cachePair struct{ cur, prev *dirCache }

func (s *Selector) cacheFor(dir *netdir.NetDir) *dirCache {
	p := s.cache.Load()
	if p != nil {
		for _, c := range []*dirCache{p.cur, p.prev} {
			if c != nil && c.dir == dir && len(c.fam) == len(dir.Relays) {
				return c
			}
		}
	}
	c := buildCache(dir)
	np := &cachePair{cur: c}
	if p != nil {
		np.prev = p.cur
	}
	s.cache.Store(np)
	return c
}

func buildCache(dir *netdir.NetDir) *dirCache {
	n := len(dir.Relays)
	c := &dirCache{dir: dir, fam: make([]famInfo, n),
		byID: make(map[[20]byte]int32, n), byEd: make(map[[32]byte][]int32, n),
		byNick: make(map[string][]int32, n), byFID: make(map[string][]int32),
		byV4: make(map[[2]byte][]int32, n), byV6: make(map[[4]byte][]int32)}
	for i, r := range dir.Relays {
		f := addrInfo(r)
		c.fam[i] = f
		k := int32(i)
		c.byID[r.RSAID] = k
		if r.HasEd25519 {
			c.byEd[r.Ed25519ID] = append(c.byEd[r.Ed25519ID], k)
		}
		c.byNick[f.nick] = append(c.byNick[f.nick], k)
		for _, id := range f.famIDs {
			c.byFID[id] = append(c.byFID[id], k)
		}
		if f.hasV4 {
			c.byV4[f.v4] = append(c.byV4[f.v4], k)
		}
		if f.hasV6 {
			c.byV6[f.v6] = append(c.byV6[f.v6], k)
		}
	}
	// Mutual family declarations, resolved to indexes once per NetDir:
	// decl[i] is the sorted list of relays i names in its family line;
	// i and k are a family if each appears in the other's list.
	decl := make([][]int32, n)
	for i, r := range dir.Relays {
		var l []int32
		for _, e := range r.Family {
			if id, ok := parseHexID(e); ok {
				if k, ok := c.byID[id]; ok && int(k) != i {
					l = append(l, k)
				}
			} else if isNickname(e) {
				for _, k := range c.byNick[strings.ToLower(e)] {
					if int(k) != i {
						l = append(l, k)
					}
				}
			}
		}
		slices.Sort(l)
		decl[i] = slices.Compact(l)
	}
	c.mutual = make([][]int32, n)
	for i := range decl {
		var m []int32
		for _, k := range decl[i] {
			if _, ok := slices.BinarySearch(decl[k], int32(i)); ok {
				m = append(m, k)
			}
		}
		c.mutual[i] = m
	}
	for rule := Rule(0); rule < numRules; rule++ {
		pw := weightsFor(dir, rule)
		ws := make([]float64, n)
		for i, r := range dir.Relays {
			ws[i] = pw.weight(r)
		}
		c.w[rule] = ws
	}
	c.flags = make([]netdir.Flags, n)
	for i, r := range dir.Relays {
		c.flags[i] = r.Flags
	}
	c.middles, c.guards, c.dirs = c.filter(middleOK), c.filter(guardOK), c.filter(dirOK)
	c.exitsWeb = c.filter(exitOK(nil, false))
	c.exits = make(map[exitKey][]int32)
	return c
}

// markRelated sets in bad the bit of every relay of the directory that
// may not share a circuit with p.
func (c *dirCache) markRelated(bad []uint64, p *netdir.Relay, subnets bool) {
	set := func(k int32) { bad[k>>6] |= 1 << (uint(k) & 63) }
	var fp famInfo
	if i, ok := c.byID[p.RSAID]; ok && c.dir.Relays[i] == p {
		fp = c.fam[i]
	} else {
		fp = newFamInfo(p)
	}
	if i, ok := c.byID[p.RSAID]; ok {
		set(i)
	}
	if p.HasEd25519 {
		for _, k := range c.byEd[p.Ed25519ID] {
			set(k)
		}
	}
	if subnets {
		if fp.hasV4 {
			for _, k := range c.byV4[fp.v4] {
				set(k)
			}
		}
		if fp.hasV6 {
			for _, k := range c.byV6[fp.v6] {
				set(k)
			}
		}
	}
	for _, id := range fp.famIDs {
		for _, k := range c.byFID[id] {
			set(k)
		}
	}
	// Declared family: only relays p lists that also list p.
	// (A p from another NetDir whose identity is in this one gets the
	// family this consensus gives it.)
	if i, ok := c.byID[p.RSAID]; ok {
		for _, k := range c.mutual[i] {
			set(k)
		}
		return
	}
	// p is not in this NetDir (say, a guard from an older consensus that
	// has since left): check the declarations the slow way.
	check := func(k int32) {
		if declaresRelay(c.dir.Relays[k], p) {
			set(k)
		}
	}
	for id := range fp.ids {
		if k, ok := c.byID[id]; ok {
			check(k)
		}
	}
	for nick := range fp.nicks {
		for _, k := range c.byNick[nick] {
			check(k)
		}
	}
}

// request is one position's constraints.
type request struct {
	what       string
	rule       Rule
	cands      func(c *dirCache) []int32 // eligible for the position
	avoid      []*netdir.Relay           // identities to avoid (no family rule)
	needFast   bool
	needStable bool
	only       *NodeSet // must be in, if non-empty
	exclude    *NodeSet // always excluded
	// relaxExclude allows ExcludeNodes as a last resort (!StrictNodes).
	relaxExclude bool
	// filter, if set, must accept the relay.
	filter func(*netdir.Relay) bool
	path   []*netdir.Relay
	port   *uint16 // for error messages
}

type scratch struct {
	idx []int32
	w   []float64
	bad []uint64
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (s *Selector) pick(dir *netdir.NetDir, q request) (*netdir.Relay, error) {
	if dir == nil {
		return nil, fmt.Errorf("%w for %s: no directory", ErrNoRelays, q.what)
	}
	c := s.cacheFor(dir)
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	words := (len(dir.Relays) + 63) / 64
	if cap(sc.bad) < words {
		sc.bad = make([]uint64, words)
	}
	bad := sc.bad[:words]
	clear(bad)
	for _, p := range q.path {
		c.markRelated(bad, p, s.EnforceDistinctSubnets)
	}
	for _, p := range q.avoid {
		if k, ok := c.byID[p.RSAID]; ok {
			bad[k>>6] |= 1 << (uint(k) & 63)
		}
	}
	cands := q.cands(c)

	useExclude := true
	for attempt := 0; attempt < 3; attempt++ {
		switch attempt {
		case 1: // C tor: retry without Fast/Stable
			if !q.needFast && !q.needStable {
				continue
			}
			q.needFast, q.needStable = false, false
		case 2:
			if !q.relaxExclude || s.StrictNodes || s.ExcludeNodes.Empty() {
				continue
			}
			useExclude = false
		}
		sc.idx, sc.w = sc.idx[:0], sc.w[:0]
		total := 0.0
		ws := c.w[q.rule]
		onlySet := !q.only.Empty()
		var need netdir.Flags
		if q.needFast {
			need |= netdir.FlagFast
		}
		if q.needStable {
			need |= netdir.FlagStable
		}
		sets := onlySet || q.exclude != nil || (useExclude && s.ExcludeNodes != nil) || q.filter != nil
		flags := c.flags
		for _, i := range cands {
			if bad[i>>6]&(1<<(uint(i)&63)) != 0 || flags[i]&need != need {
				continue
			}
			if sets {
				r := dir.Relays[i]
				if onlySet && !q.only.Contains(r) {
					continue
				}
				if q.exclude != nil && q.exclude.Contains(r) {
					continue
				}
				if useExclude && s.ExcludeNodes != nil && s.ExcludeNodes.Contains(r) {
					continue
				}
				if q.filter != nil && !q.filter(r) {
					continue
				}
			}
			sc.idx = append(sc.idx, i)
			sc.w = append(sc.w, ws[i])
			total += ws[i]
		}
		if len(sc.idx) == 0 {
			continue
		}
		s.lockRand()
		k := chooseIndex(sc.w, total, s.Rand)
		s.unlockRand()
		return dir.Relays[sc.idx[k]], nil
	}
	if q.port != nil {
		return nil, fmt.Errorf("%w for %s %d", ErrNoRelays, q.what, *q.port)
	}
	return nil, fmt.Errorf("%w for %s", ErrNoRelays, q.what)
}

func (s *Selector) lockRand() {
	if s.Rand != nil {
		s.rmu.Lock()
	}
}

func (s *Selector) unlockRand() {
	if s.Rand != nil {
		s.rmu.Unlock()
	}
}

func (s *Selector) longLived(port uint16) bool {
	ports := s.LongLivedPorts
	if ports == nil {
		ports = DefaultLongLivedPorts
	}
	return slices.Contains(ports, port)
}

// exitOK is the exit-position predicate for port (nil: 80 or 443),
// using the IPv6 policy summary if ipv6.
func exitOK(port *uint16, ipv6 bool) func(r *netdir.Relay) bool {
	return func(r *netdir.Relay) bool {
		if !r.IsUsable() || r.Flags&(netdir.FlagBadExit|netdir.FlagMiddleOnly) != 0 {
			return false
		}
		pol := &r.ExitPolicy
		if ipv6 {
			pol = &r.ExitPolicy6
		}
		if port != nil {
			return pol.Allows(*port)
		}
		return pol.Allows(443) || pol.Allows(80)
	}
}

func middleOK(r *netdir.Relay) bool { return r.IsUsable() }

func guardOK(r *netdir.Relay) bool {
	return r.IsUsable() && r.Flags.Has(netdir.FlagGuard) && !r.Flags.Has(netdir.FlagMiddleOnly)
}

func dirOK(r *netdir.Relay) bool {
	return r.Flags.Has(netdir.FlagRunning | netdir.FlagValid | netdir.FlagV2Dir)
}

// PickExit chooses an exit whose policy summary allows *port (or, for a
// nil port, 80 or 443), weighted for the exit position, honouring
// ExitNodes, ExcludeExitNodes and ExcludeNodes, and compatible with every
// relay in path.
func (s *Selector) PickExit(dir *netdir.NetDir, port *uint16, path ...*netdir.Relay) (*netdir.Relay, error) {
	return s.pickExit(dir, port, false, false, path)
}

func (s *Selector) pickExit(dir *netdir.NetDir, port *uint16, stable, ipv6 bool, path []*netdir.Relay) (*netdir.Relay, error) {
	what := "exit to ports 80/443"
	if port != nil {
		what = "exit to port"
		stable = stable || s.longLived(*port)
	}
	return s.pick(dir, request{
		what: what, rule: WeightForExit, cands: func(c *dirCache) []int32 { return c.exitCands(port, ipv6) },
		needFast: true, needStable: stable,
		only: s.ExitNodes, exclude: s.ExcludeExitNodes,
		path: path, port: port,
	})
}

// PickMiddle chooses a middle relay compatible with every relay in path.
// ExcludeNodes always applies: C tor relaxes it only for circuits whose
// purpose needs a particular relay, never for the middle of a circuit.
func (s *Selector) PickMiddle(dir *netdir.NetDir, path ...*netdir.Relay) (*netdir.Relay, error) {
	return s.pickMiddle(dir, false, false, "middle", path)
}

// pickMiddle picks for a middle position; relax lets ExcludeNodes be used
// as a last resort, which C tor allows for internal circuits only (when
// StrictNodes is off).
func (s *Selector) pickMiddle(dir *netdir.NetDir, stable, relax bool, what string, path []*netdir.Relay) (*netdir.Relay, error) {
	return s.pick(dir, request{
		what: what, rule: WeightForMiddle, cands: func(c *dirCache) []int32 { return c.middles },
		needFast: true, needStable: stable, relaxExclude: relax, path: path,
	})
}

// PickRendezvous chooses an onion service rendezvous point as C tor does
// (rend-spec-v3 §3.2.1, C tor pick_rendezvous_point: a Fast relay weighted
// for the middle position, honouring ExcludeNodes), accepted by ok (the
// caller checks HSRend support and the onion key), compatible with path.
func (s *Selector) PickRendezvous(dir *netdir.NetDir, ok func(*netdir.Relay) bool, path ...*netdir.Relay) (*netdir.Relay, error) {
	return s.pick(dir, request{
		what: "rendezvous point", rule: WeightForMiddle, cands: func(c *dirCache) []int32 { return c.middles },
		needFast: true, path: path, filter: ok,
	})
}

// PickGuard chooses a Guard-flagged relay for the first hop (weighted for
// the guard position, honouring EntryNodes), compatible with path. Normal
// circuits take their guard from internal/guard instead.
func (s *Selector) PickGuard(dir *netdir.NetDir, path ...*netdir.Relay) (*netdir.Relay, error) {
	return s.pick(dir, request{
		what: "guard", rule: WeightForGuard, cands: func(c *dirCache) []int32 { return c.guards },
		needFast: true, needStable: true, only: s.EntryNodes, path: path,
	})
}

// PickDirectory chooses a directory cache (Running, Valid, V2Dir) for a
// one-hop directory request, weighted with the Wb* weights, avoiding the
// relays in exclude (identity only: no family rule for one-hop fetches).
func (s *Selector) PickDirectory(dir *netdir.NetDir, exclude ...*netdir.Relay) (*netdir.Relay, error) {
	return s.pick(dir, request{what: "directory", rule: WeightForDir,
		cands: func(c *dirCache) []int32 { return c.dirs }, avoid: exclude, relaxExclude: true})
}

// PickPath chooses a three-hop path [guard, middle, last] for u. If guard
// is nil the Selector picks one itself, after the exit, as path-spec §2.3
// orders it; otherwise the exit and middle are chosen compatible with the
// given guard. No two relays of the result are the same, in one family,
// or (with EnforceDistinctSubnets) in one /16 or IPv6 /32.
func (s *Selector) PickPath(dir *netdir.NetDir, guard *netdir.Relay, u Usage) ([]*netdir.Relay, error) {
	var fixed []*netdir.Relay
	if guard != nil {
		fixed = []*netdir.Relay{guard}
	}
	var last *netdir.Relay
	var err error
	switch {
	case u.Internal:
		last, err = s.pickMiddle(dir, u.NeedStable, true, "last hop", fixed)
	case u.ExitPort != 0 && !u.AnyExit:
		p := u.ExitPort
		last, err = s.pickExit(dir, &p, u.NeedStable, u.ExitIPv6, fixed)
	default:
		last, err = s.pickExit(dir, nil, u.NeedStable, u.ExitIPv6, fixed)
	}
	if err != nil {
		return nil, err
	}
	if guard == nil {
		if guard, err = s.PickGuard(dir, last); err != nil {
			return nil, err
		}
	}
	mid, err := s.pickMiddle(dir, u.NeedStable, u.Internal, "middle", []*netdir.Relay{guard, last})
	if err != nil {
		return nil, err
	}
	return []*netdir.Relay{guard, mid, last}, nil
}

// CompatibleWith returns a predicate accepting relays that may share a
// circuit with every relay of path under this Selector's subnet setting;
// use it as guard.Usage.Restrict when the exit is chosen before the
// guard.
func (s *Selector) CompatibleWith(path ...*netdir.Relay) func(*netdir.Relay) bool {
	fams := make([]famInfo, len(path))
	for i, p := range path {
		fams[i] = newFamInfo(p)
	}
	return func(r *netdir.Relay) bool {
		fr := newFamInfo(r)
		for i, p := range path {
			if related(r, p, &fr, &fams[i], s.EnforceDistinctSubnets) {
				return false
			}
		}
		return true
	}
}

// Compatible reports whether a and b may share a circuit under this
// Selector's EnforceDistinctSubnets setting (see the package-level
// Compatible).
func (s *Selector) Compatible(a, b *netdir.Relay) bool {
	return Compatible(a, b, s.EnforceDistinctSubnets)
}
