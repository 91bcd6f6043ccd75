// Package guard keeps gotor's entry guards.
//
// Spec: guard-spec §2 (state instances: default, restricted, and
// bridges with UseBridges), §4.0 {GUARDS} (Guard, Stable, Fast, V2Dir, Running, Valid),
// §4.1 the persistent sampled set (bandwidth-weighted with the Wgg/Wgm/Wgd
// weights of dir-spec §3.8.3, bounded by guard-max-sample-size and
// guard-max-sample-threshold-percent, expired after guard-lifetime-days
// or guard-remove-unlisted-guards-after-days), §4.2 filtered and usable
// sets (EntryNodes, ExcludeNodes), §4.3 confirmed guards, §4.4 primary
// guards, §4.5 retry schedules (C tor's get_retry_schedule), §4.6 guard
// selection for circuits (NUM_USABLE_PRIMARY_GUARDS /
// NUM_USABLE_PRIMARY_DIRECTORY_GUARDS), §4.7-§4.9 circuit success and
// failure and the waiting-for-better-guard rule, §4.10 new consensus,
// §4.12 missing descriptors, Appendix A.1 parameters (read from the
// consensus "params" with C tor's names and bounds) and A.5 the state
// file format; path-spec §7 path bias per guard (pathbias.go).
//
// Use: create a Manager with New, give it each new NetDir with
// SetNetDir (or pass it to Pick), and for each circuit call Pick, then
// report the outcome of the first hop on the returned Attempt. Directory
// fetches go through guards too, with Usage{Dir: true}.
package guard

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/path"
)

// Errors returned by Pick.
var (
	// ErrNoDirectory: Pick was called before any NetDir was known.
	ErrNoDirectory = errors.New("guard: no network directory yet")
	// ErrNoGuards: no sampled guard passes the filter and restriction.
	ErrNoGuards = errors.New("guard: no usable guard")
	// ErrNeedDescriptors: the guards to use lack microdescriptors
	// (guard-spec §4.12); fetch them (a Dir pick still works) and retry.
	ErrNeedDescriptors = errors.New("guard: missing microdescriptors for primary guards")
)

// Default parameter values (guard-spec A.1, C tor entrynodes.h).
const (
	DefaultNumPrimaryGuards      = 3
	DefaultNumEntryGuards        = 1
	DefaultNumDirectoryGuards    = 3
	defaultMaxSampleThresholdPct = 20
	defaultMaxSampleSize         = 60
	defaultMinFilteredSample     = 20
	defaultRemoveUnlistedDays    = 20
	defaultLifetimeDays          = 120
	defaultConfirmedMinDays      = 60
	defaultInternetDownSecs      = 600
	defaultConnectTimeoutSecs    = 15
	defaultIdleTimeoutSecs       = 600
	// stateSaveDelay bounds how long changed path bias counts wait to be
	// written (C tor marks its state file dirty for 600 s).
	stateSaveDelay = 10 * time.Minute
)

// Config configures a Manager. The zero value is usable: no persistence,
// default parameters, the real clock and an OS-seeded RNG.
type Config struct {
	// DataDirectory holds the "state" file; empty disables persistence.
	DataDirectory string
	// EntryNodes, if non-empty, restricts guards to its members;
	// ExcludeNodes are never used as guards (guard-spec §4.2).
	EntryNodes, ExcludeNodes *path.NodeSet
	// NumPrimaryGuards, NumEntryGuards and NumDirectoryGuards override
	// the consensus parameters guard-n-primary-guards,
	// guard-n-primary-guards-to-use and guard-n-primary-dir-guards-to-use
	// when positive.
	NumPrimaryGuards, NumEntryGuards, NumDirectoryGuards int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the randomness source (default: OS-seeded ChaCha8).
	Rand *rand.Rand
	// Logf, if set, receives diagnostics (state file errors) and path
	// bias warnings; Noticef, if set, path bias notices (default Logf).
	Logf, Noticef func(format string, args ...any)
	// Version is recorded as sampled_by (default "gotor").
	Version string
	// UseBridges makes the configured bridges the guards (guard-spec §2
	// A, C tor's GS_TYPE_BRIDGE): the NetDirs given to SetNetDir and
	// Pick then list the bridges (bridge.Descriptor.Relay), not the
	// consensus. They are kept in their own state instance ("bridges"),
	// sampled uniformly with no upper bound on the sample, and
	// EntryNodes does not apply (ExcludeNodes still does).
	UseBridges bool
}

type reach int8

const (
	reachMaybe reach = iota
	reachYes
	reachNo
)

// entry is one sampled guard (guard-spec §4.1).
type entry struct {
	id       [20]byte
	nickname string

	// Persistent.
	sampledOn     time.Time
	sampledBy     string
	listed        bool
	unlistedSince time.Time // zero: none
	confirmedOn   time.Time // zero: not confirmed
	extra         []string  // unrecognised K=V fields, kept

	// Run-time.
	reachable    reach
	failingSince time.Time
	lastTried    time.Time
	pending      bool
	primary      bool

	pb pathBias // pathbias.go; counts persistent
}

func (e *entry) confirmed() bool { return !e.confirmedOn.IsZero() }

// instance is a parked guard-spec §2 state instance.
type instance struct{ sampled, confirmed []*entry }

// Instance names (the state file's "in" field).
const (
	InstanceDefault    = "default"
	InstanceRestricted = "restricted"
	InstanceBridges    = "bridges"
)

// Manager is the guard state of one client. It is safe for concurrent
// use.
type Manager struct {
	mu  sync.Mutex
	cfg Config
	rng *rand.Rand

	dir       *netdir.NetDir
	sampled   []*entry // sample order
	confirmed []*entry // priority order
	primary   []*entry

	// cur names the active state instance (guard-spec §2): "default",
	// or "restricted" when EntryNodes/ExcludeNodes leave fewer than
	// MEANINGFUL_RESTRICTION_FRAC of the guards. parked holds the other.
	cur    string
	parked map[string]*instance

	attempts           map[*Attempt]struct{}
	lastTimeOnInternet time.Time
	dirty              bool      // path bias counts changed since the last save
	lastSave           time.Time // of the state file
	otherLines         []string  // state-file lines that are not ours
}

// New creates a Manager, loading DataDirectory/state if it exists.
func New(cfg Config) (*Manager, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "gotor"
	}
	m := &Manager{cfg: cfg, rng: cfg.Rand, attempts: make(map[*Attempt]struct{}),
		cur: InstanceDefault, parked: make(map[string]*instance)}
	if m.rng == nil {
		var seed [32]byte
		for i := range seed {
			seed[i] = byte(rand.Uint32()) // package source is OS-seeded
		}
		m.rng = rand.New(rand.NewChaCha8(seed))
	}
	if cfg.DataDirectory != "" {
		if err := m.load(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

func (m *Manager) logf(format string, args ...any) {
	if m.cfg.Logf != nil {
		m.cfg.Logf(format, args...)
	}
}

func (m *Manager) noticef(format string, args ...any) {
	if m.cfg.Noticef != nil {
		m.cfg.Noticef(format, args...)
	} else {
		m.logf(format, args...)
	}
}

// param reads a consensus parameter (defaults when no directory).
func (m *Manager) param(name string, def, lo, hi int32) int {
	if m.dir == nil {
		return int(def)
	}
	return int(m.dir.Param(name, def, lo, hi))
}

func (m *Manager) nPrimary() int {
	if m.cfg.NumPrimaryGuards > 0 {
		return m.cfg.NumPrimaryGuards
	}
	return m.param("guard-n-primary-guards", DefaultNumPrimaryGuards, 1, 1<<30)
}

func (m *Manager) nToUse(dirUse bool) int {
	if dirUse {
		if m.cfg.NumDirectoryGuards > 0 {
			return m.cfg.NumDirectoryGuards
		}
		return m.param("guard-n-primary-dir-guards-to-use", DefaultNumDirectoryGuards, 1, 1<<30)
	}
	if m.cfg.NumEntryGuards > 0 {
		return m.cfg.NumEntryGuards
	}
	return m.param("guard-n-primary-guards-to-use", DefaultNumEntryGuards, 1, 1<<30)
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

func (m *Manager) lifetime() time.Duration {
	return days(m.param("guard-lifetime-days", defaultLifetimeDays, 1, 3650))
}

func (m *Manager) confirmedMinLifetime() time.Duration {
	return days(m.param("guard-confirmed-min-lifetime-days", defaultConfirmedMinDays, 1, 3650))
}

func (m *Manager) removeUnlistedAfter() time.Duration {
	return days(m.param("guard-remove-unlisted-guards-after-days", defaultRemoveUnlistedDays, 1, 3650))
}

func (m *Manager) secs(name string, def int32) time.Duration {
	return time.Duration(m.param(name, def, 1, 1<<30)) * time.Second
}

// randPast is guard-spec A.2 RAND(now, interval).
func (m *Manager) randPast(now time.Time, interval time.Duration) time.Time {
	if interval <= 0 {
		return now
	}
	return now.Add(-time.Duration(m.rng.Int64N(int64(interval)))).Truncate(time.Second)
}

// IsGuardCandidate reports whether r belongs to {GUARDS} (guard-spec
// §4.0): Guard, Stable, Fast, V2Dir, Running and Valid (and not
// MiddleOnly, prop 335).
func IsGuardCandidate(r *netdir.Relay) bool {
	const need = netdir.FlagGuard | netdir.FlagStable | netdir.FlagFast | netdir.FlagV2Dir | netdir.FlagRunning | netdir.FlagValid
	return r.Flags.Has(need) && !r.Flags.Has(netdir.FlagMiddleOnly)
}

func (m *Manager) relay(e *entry) *netdir.Relay {
	if m.dir == nil {
		return nil
	}
	return m.dir.ByRSAID[e.id]
}

// passes applies the configuration part of the guard-spec §4.2 filter.
func (m *Manager) passes(r *netdir.Relay) bool {
	if m.cfg.ExcludeNodes.Contains(r) {
		return false
	}
	return m.cfg.UseBridges || m.cfg.EntryNodes.Empty() || m.cfg.EntryNodes.Contains(r)
}

// filtered is membership of {FILTERED_GUARDS} (guard-spec §4.2); a guard
// path bias disabled is not (C tor entry_guard_passes_filter).
func (m *Manager) filtered(e *entry) bool {
	if !e.listed || e.pb.disabled {
		return false
	}
	r := m.relay(e)
	return r != nil && m.passes(r)
}

// chooseInstance picks the state instance for the configuration and dir
// (guard-spec §2.B), with the 5% hysteresis, and switches to it.
func (m *Manager) chooseInstance(dir *netdir.NetDir, first bool) {
	want := InstanceDefault
	if m.cfg.UseBridges {
		want = InstanceBridges
	} else if !m.cfg.EntryNodes.Empty() || !m.cfg.ExcludeNodes.Empty() {
		n, ok := 0, 0
		for _, r := range dir.Relays {
			if IsGuardCandidate(r) {
				n++
				if m.passes(r) {
					ok++
				}
			}
		}
		frac := 1.0
		if n > 0 {
			frac = float64(ok) / float64(n)
		}
		meaningful := float64(dir.Param("guard-meaningful-restriction-percent", 20, 1, 100)) / 100
		extreme := float64(dir.Param("guard-extreme-restriction-percent", 1, 1, 100)) / 100
		switch {
		case first:
			if frac < meaningful {
				want = InstanceRestricted
			}
		case m.cur == InstanceRestricted:
			if frac <= meaningful+0.05 {
				want = InstanceRestricted
			}
		default:
			if frac < meaningful-0.05 {
				want = InstanceRestricted
			}
		}
		if frac < extreme {
			m.logf("guard: EntryNodes/ExcludeNodes leave only %d of %d guards: this makes you easier to recognise", ok, n)
		}
	}
	if want == m.cur {
		return
	}
	m.parked[m.cur] = &instance{sampled: m.sampled, confirmed: m.confirmed}
	in := m.parked[want]
	delete(m.parked, want)
	if in == nil {
		in = &instance{}
	}
	for _, e := range m.sampled {
		e.primary = false
	}
	m.cur, m.sampled, m.confirmed, m.primary = want, in.sampled, in.confirmed, nil
}

func (m *Manager) usableFiltered(e *entry) bool { return e.reachable != reachNo && m.filtered(e) }

// SetNetDir installs a new consensus (guard-spec §4.10): it updates
// IS_LISTED, expires sampled guards, tops up the sample and recomputes the
// primary guards, then saves the state.
func (m *Manager) SetNetDir(dir *netdir.NetDir) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setNetDirLocked(dir)
}

func (m *Manager) setNetDirLocked(dir *netdir.NetDir) {
	if dir == nil || dir == m.dir {
		return
	}
	m.chooseInstance(dir, m.dir == nil)
	m.dir = dir
	now := m.now()
	// Bridges come from the configuration, not from a consensus that
	// could be stale (C tor's reasonably_live_consensus_is_missing).
	live := m.cfg.UseBridges || !now.Before(dir.ValidAfter) && now.Before(dir.ValidUntil)
	for _, e := range m.sampled {
		r := dir.ByRSAID[e.id]
		listed := r != nil && IsGuardCandidate(r)
		if listed {
			e.nickname = r.Nickname
			e.listed, e.unlistedSince = true, time.Time{}
		} else if e.listed || e.unlistedSince.IsZero() {
			e.listed = false
			e.unlistedSince = m.randPast(now, m.removeUnlistedAfter()/5)
			if e.unlistedSince.Before(e.sampledOn) {
				e.unlistedSince = e.sampledOn
			}
		}
	}
	if live {
		m.expire(now)
	}
	m.expandSample()
	m.updatePrimary()
	m.save()
}

// expire removes sampled guards per the guard-spec §4.1 rules.
func (m *Manager) expire(now time.Time) {
	removeAfter, lifetime, confMin := m.removeUnlistedAfter(), m.lifetime(), m.confirmedMinLifetime()
	keep := m.sampled[:0]
	for _, e := range m.sampled {
		gone := !e.listed && !e.unlistedSince.IsZero() && now.Sub(e.unlistedSince) > removeAfter
		if now.Sub(e.sampledOn) > lifetime && (!e.confirmed() || now.Sub(e.confirmedOn) > confMin) {
			gone = true
		}
		if !gone {
			keep = append(keep, e)
		}
	}
	clear(m.sampled[len(keep):])
	m.sampled = keep
	m.confirmed = slices.DeleteFunc(m.confirmed, func(e *entry) bool { return !slices.Contains(m.sampled, e) })
	m.primary = slices.DeleteFunc(m.primary, func(e *entry) bool { return !slices.Contains(m.sampled, e) })
}

// maxSample is the bound of guard-spec §4.1 (none for bridges: "we
// impose no upper limit on the sample size", §2 A).
func (m *Manager) maxSample(nGuards int) int {
	if m.cfg.UseBridges {
		return nGuards
	}
	pct := m.param("guard-max-sample-threshold-percent", defaultMaxSampleThresholdPct, 1, 100)
	abs := m.param("guard-max-sample-size", defaultMaxSampleSize, 1, 1<<30)
	mx := min(nGuards*pct/100, abs)
	return max(mx, m.param("guard-min-filtered-sample-size", defaultMinFilteredSample, 1, 1<<30))
}

// expandSample adds guards until {USABLE_FILTERED_GUARDS} has
// MIN_FILTERED_SAMPLE members or the sample is full (guard-spec §4.2).
// It reports whether anything was added.
func (m *Manager) expandSample() bool {
	if m.dir == nil {
		return false
	}
	minFiltered := m.param("guard-min-filtered-sample-size", defaultMinFilteredSample, 1, 1<<30)
	usable := 0
	for _, e := range m.sampled {
		if m.usableFiltered(e) {
			usable++
		}
	}
	if usable >= minFiltered {
		return false
	}
	inSample := make(map[[20]byte]bool, len(m.sampled))
	for _, e := range m.sampled {
		inSample[e.id] = true
	}
	var cands []*netdir.Relay
	nGuards := 0
	restricted := m.cur == InstanceRestricted
	for _, r := range m.dir.Relays {
		if IsGuardCandidate(r) && (!restricted || m.passes(r)) {
			nGuards++
			if !inSample[r.RSAID] {
				cands = append(cands, r)
			}
		}
	}
	maxS := m.maxSample(nGuards)
	added := false
	now := m.now()
	for usable < minFiltered && len(m.sampled) < maxS && len(cands) > 0 {
		var r *netdir.Relay
		if m.cfg.UseBridges {
			// Bridges have no consensus weights: uniformly, as C tor's
			// select_and_add_guard_item_for_sample.
			r = cands[m.rng.IntN(len(cands))]
		} else {
			r = path.ChooseWeighted(m.dir, cands, path.WeightForGuard, m.rng)
		}
		cands = slices.DeleteFunc(cands, func(c *netdir.Relay) bool { return c == r })
		e := &entry{id: r.RSAID, nickname: r.Nickname, listed: true,
			sampledOn: m.randPast(now, m.lifetime()/10), sampledBy: m.cfg.Version}
		m.sampled = append(m.sampled, e)
		added = true
		if m.usableFiltered(e) {
			usable++
		}
	}
	return added
}

// updatePrimary recomputes {PRIMARY_GUARDS} (guard-spec §4.4): confirmed
// filtered guards first, then the previous primaries that are still
// filtered, then filtered guards in sample order.
func (m *Manager) updatePrimary() {
	n := m.nPrimary()
	var p []*entry
	add := func(e *entry) {
		if len(p) < n && m.filtered(e) && !slices.Contains(p, e) {
			p = append(p, e)
		}
	}
	for _, e := range m.confirmed {
		add(e)
	}
	for _, e := range m.primary {
		add(e)
	}
	for _, e := range m.sampled {
		add(e)
	}
	for _, e := range m.sampled {
		e.primary = false
	}
	for _, e := range p {
		e.primary = true
	}
	m.primary = p
}

// retryDelay is the retry schedule of guard-spec A.1 as C tor implements
// it (get_retry_schedule).
func retryDelay(failingFor time.Duration, primary bool) time.Duration {
	sched := []struct {
		upTo              time.Duration
		primary, nonprime time.Duration
	}{
		{6 * time.Hour, 10 * time.Minute, time.Hour},
		{4 * 24 * time.Hour, 90 * time.Minute, 4 * time.Hour},
		{7 * 24 * time.Hour, 4 * time.Hour, 18 * time.Hour},
	}
	for _, s := range sched {
		if failingFor <= s.upTo {
			if primary {
				return s.primary
			}
			return s.nonprime
		}
	}
	if primary {
		return 9 * time.Hour
	}
	return 36 * time.Hour
}

// considerRetries applies guard-spec §4.5.
func (m *Manager) considerRetries(now time.Time) {
	for _, e := range m.sampled {
		if e.reachable != reachNo {
			continue
		}
		d := retryDelay(now.Sub(e.failingSince), e.primary)
		if e.lastTried.IsZero() || !now.Before(e.lastTried.Add(d)) {
			e.reachable = reachMaybe
		}
	}
}

// Usage describes what a guard is wanted for.
type Usage struct {
	// Dir asks for a directory guard (a one-hop BEGIN_DIR fetch): any of
	// the first NumDirectoryGuards reachable primaries, with or without
	// a microdescriptor.
	Dir bool
	// Restrict, if set, must accept the guard (for example
	// path.Compatible with an already chosen exit).
	Restrict func(*netdir.Relay) bool
}

func (m *Manager) obeys(e *entry, u Usage) (r *netdir.Relay, ok, needMD bool) {
	r = m.relay(e)
	if r == nil || !m.filtered(e) {
		return nil, false, false
	}
	if u.Restrict != nil && !u.Restrict(r) {
		return nil, false, false
	}
	if !u.Dir && !r.HasMicrodesc {
		return nil, false, true
	}
	return r, true, false
}

// Pick chooses a guard for a new circuit (guard-spec §4.6). If dir
// differs from the last NetDir seen, it is installed first (as
// SetNetDir). The caller must report the first hop's outcome on the
// returned Attempt.
func (m *Manager) Pick(dir *netdir.NetDir, u Usage) (*netdir.Relay, *Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if dir != nil {
		m.setNetDirLocked(dir)
	}
	if m.dir == nil {
		return nil, nil, ErrNoDirectory
	}
	now := m.now()
	m.considerRetries(now)
	if m.expandSample() {
		m.updatePrimary()
		m.save()
	} else if m.dirty && now.Sub(m.lastSave) >= stateSaveDelay {
		m.save() // path bias counts, at most every stateSaveDelay
	}
	for round := 0; round < 2; round++ {
		r, a, needMD := m.pickLocked(now, u)
		if a != nil {
			return r, a, nil
		}
		if needMD {
			return nil, nil, ErrNeedDescriptors
		}
		if slices.ContainsFunc(m.sampled, m.usableFiltered) {
			break // usable guards exist; the restriction excludes them
		}
		// {USABLE_FILTERED_GUARDS} exhausted: mark every guard maybe
		// reachable and try again (guard-spec §4.6, last case).
		for _, e := range m.sampled {
			e.reachable = reachMaybe
		}
	}
	return nil, nil, ErrNoGuards
}

func (m *Manager) pickLocked(now time.Time, u Usage) (*netdir.Relay, *Attempt, bool) {
	needMD := false
	// Primary guards.
	nUse := m.nToUse(u.Dir)
	var choices []*entry
	var relays []*netdir.Relay
	for _, e := range m.primary {
		if len(choices) >= nUse {
			break
		}
		if e.reachable == reachNo {
			continue
		}
		r, ok, md := m.obeys(e, u)
		needMD = needMD || md
		if ok {
			choices = append(choices, e)
			relays = append(relays, r)
		}
	}
	if len(choices) > 0 {
		i := m.rng.IntN(len(choices))
		return relays[i], m.newAttempt(choices[i], u, stateOnCompletion, now), false
	}
	if needMD {
		return nil, nil, true
	}
	// Confirmed guards, then the rest of the usable filtered sample in
	// sample order; guards with a circuit attempt already pending only
	// if there is nothing else (as C tor's
	// select_confirmed_guard_for_circuit and
	// select_filtered_guard_for_circuit).
	for _, allowPending := range []bool{false, true} {
		for _, list := range [][]*entry{m.confirmed, m.sampled} {
			for _, e := range list {
				if e.primary || e.reachable == reachNo || (e.pending && !allowPending) {
					continue
				}
				if r, ok, _ := m.obeys(e, u); ok {
					e.pending = true
					return r, m.newAttempt(e, u, stateIfNoBetter, now), false
				}
			}
		}
	}
	return nil, nil, false
}

// PrimaryGuards returns the current primary guards, best first (for
// status displays and tests).
func (m *Manager) PrimaryGuards() [][20]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][20]byte, len(m.primary))
	for i, e := range m.primary {
		out[i] = e.id
	}
	return out
}

// GuardInfo is a snapshot of one sampled guard.
type GuardInfo struct {
	ID        [20]byte
	Nickname  string
	Listed    bool
	Confirmed bool
	Primary   bool
	Reachable string // "yes", "no" or "maybe"
	SampledOn time.Time
	PathBias  PathBiasCounts
}

// Sampled returns the sampled guards in sample order.
func (m *Manager) Sampled() []GuardInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]GuardInfo, len(m.sampled))
	for i, e := range m.sampled {
		out[i] = GuardInfo{ID: e.id, Nickname: e.nickname, Listed: e.listed,
			Confirmed: e.confirmed(), Primary: e.primary,
			Reachable: [...]string{"maybe", "yes", "no"}[e.reachable], SampledOn: e.sampledOn,
			PathBias: e.pb.export()}
	}
	return out
}

func (e *entry) String() string { return fmt.Sprintf("%s ($%X)", e.nickname, e.id) }
