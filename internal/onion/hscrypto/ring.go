// Time periods and the HSDir hash ring: rend-spec-v3 §2.2.1
// [TIME-PERIODS], §2.2.3 [WHERE-HSDESC], §2.2.4.1 [CLIENTFETCH], §2.3.1
// (disaster SRV). Where the spec and C tor differ in detail (the name of
// the period-length parameter, TestingTorNetwork periods) we follow C tor
// (src/feature/hs/hs_common.c, shared_random_client.c).

package hscrypto

import (
	"bytes"
	"crypto/sha3"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

// Consensus parameter defaults and ranges (rend-spec §2.2.1, §2.2.3).
const (
	DefaultPeriodLength      = 1440 // minutes
	DefaultHSDirNReplicas    = 2
	DefaultHSDirSpreadFetch  = 3
	DefaultHSDirSpreadStore  = 4
	srNRounds                = 12 // SHARED_RANDOM_N_ROUNDS
	srNPhases                = 2
	defaultVotingIntervalSec = 3600
)

// Schedule holds what is needed to map times to time periods: the period
// length (minutes) and the voting interval that fixes the rotation offset
// (12 voting intervals) and the SRV protocol run (24 intervals).
type Schedule struct {
	PeriodLength   uint64 // minutes
	VotingInterval int64  // seconds
}

// DefaultSchedule is the public network's schedule: 1440-minute periods,
// one-hour voting interval, hence a 12-hour rotation offset.
var DefaultSchedule = Schedule{PeriodLength: DefaultPeriodLength, VotingInterval: defaultVotingIntervalSec}

// ScheduleFor derives the schedule from a consensus. The voting interval
// is fresh-until minus valid-after, as C tor's get_voting_interval. On a
// TestingTorNetwork (testing=true), the period length is one SRV protocol
// run (24 voting intervals) as in C tor's get_time_period_length;
// otherwise it is the consensus param "hsdir_interval" (C tor's name;
// rend-spec writes "hsdir-interval") in [30, 14400], default 1440.
func ScheduleFor(dir *netdir.NetDir, testing bool) Schedule {
	s := DefaultSchedule
	if dir != nil {
		if v := int64(dir.FreshUntil.Sub(dir.ValidAfter) / time.Second); v > 0 {
			s.VotingInterval = v
		}
		s.PeriodLength = uint64(dir.Param("hsdir_interval", DefaultPeriodLength, 30, 14400))
	}
	if testing {
		s.PeriodLength = uint64(s.VotingInterval * srNRounds * srNPhases / 60)
		if s.PeriodLength == 0 {
			s.PeriodLength = 1
		}
	}
	return s
}

// RotationOffset is the offset of time periods from the epoch: one SRV
// phase, 12 voting intervals (12 h on the public network).
func (s Schedule) RotationOffset() time.Duration {
	return time.Duration(s.VotingInterval*srNRounds) * time.Second
}

// PeriodNum returns the time period number containing t.
func (s Schedule) PeriodNum(t time.Time) uint64 {
	mins := t.Unix() / 60
	off := int64(s.RotationOffset() / time.Minute)
	if mins <= off || s.PeriodLength == 0 {
		return 0
	}
	return uint64(mins-off) / s.PeriodLength
}

// PeriodStart returns when time period num begins.
func (s Schedule) PeriodStart(num uint64) time.Time {
	return time.Unix(int64(num*s.PeriodLength*60)+int64(s.RotationOffset()/time.Second), 0).UTC()
}

// SRVRunStart returns the start of the SRV protocol run containing the
// round that begins at validAfter (C tor's
// sr_state_get_start_time_of_current_protocol_run with a live consensus).
func (s Schedule) SRVRunStart(validAfter time.Time) time.Time {
	v := s.VotingInterval
	va := validAfter.Unix()
	slot := (va / v) % (srNRounds * srNPhases)
	return time.Unix(va-slot*v, 0).UTC()
}

// InPeriodBetweenTPAndSRV reports whether validAfter lies between the
// start of a time period and the next SRV (the "-" segments of the
// rend-spec §2.2.4 figure). Clients then use the current SRV, otherwise
// the previous one.
func (s Schedule) InPeriodBetweenTPAndSRV(validAfter time.Time) bool {
	srvStart := s.SRVRunStart(validAfter)
	tpStart := s.PeriodStart(s.PeriodNum(srvStart) + 1)
	return !(!validAfter.Before(srvStart) && validAfter.Before(tpStart))
}

// DisasterSRV returns SHA3-256("shared-random-disaster" |
// INT_8(period_length) | INT_8(period_num)) (rend-spec §2.3.1).
func DisasterSRV(periodLength, periodNum uint64) [32]byte {
	var b bytes.Buffer
	b.WriteString("shared-random-disaster")
	b.Write(binary.BigEndian.AppendUint64(nil, periodLength))
	b.Write(binary.BigEndian.AppendUint64(nil, periodNum))
	return sha3.Sum256(b.Bytes())
}

// HSIndex returns SHA3-256("store-at-idx" | blinded | INT_8(replica) |
// INT_8(period_length) | INT_8(period_num)).
func HSIndex(blinded [32]byte, replica, periodLength, periodNum uint64) [32]byte {
	b := append([]byte("store-at-idx"), blinded[:]...)
	b = binary.BigEndian.AppendUint64(b, replica)
	b = binary.BigEndian.AppendUint64(b, periodLength)
	b = binary.BigEndian.AppendUint64(b, periodNum)
	return sha3.Sum256(b)
}

// HSDirIndex returns SHA3-256("node-idx" | ed25519_id | srv |
// INT_8(period_num) | INT_8(period_length)). (Note the order of the two
// integers differs from HSIndex, as in the spec and C tor.)
func HSDirIndex(id [32]byte, srv []byte, periodNum, periodLength uint64) [32]byte {
	b := append([]byte("node-idx"), id[:]...)
	b = append(b, srv...)
	b = binary.BigEndian.AppendUint64(b, periodNum)
	b = binary.BigEndian.AppendUint64(b, periodLength)
	return sha3.Sum256(b)
}

// FetchParams are the inputs of the client's hash ring for a consensus.
type FetchParams struct {
	Schedule    Schedule
	PeriodNum   uint64
	SRV         [32]byte
	Disaster    bool // SRV is the disaster value (no SRV in the consensus)
	NReplicas   int
	SpreadFetch int
}

// ClientFetchParams computes, per rend-spec §2.2.4.1 and C tor's
// node_set_hsdir_index, the time period (from the consensus valid-after)
// and SRV a client uses to fetch descriptors.
func ClientFetchParams(dir *netdir.NetDir, sched Schedule) FetchParams {
	p := FetchParams{Schedule: sched, PeriodNum: sched.PeriodNum(dir.ValidAfter)}
	srv := dir.SharedRandPrevious
	if sched.InPeriodBetweenTPAndSRV(dir.ValidAfter) {
		srv = dir.SharedRandCurrent
	}
	if len(srv) == 32 {
		copy(p.SRV[:], srv)
	} else {
		p.SRV = DisasterSRV(sched.PeriodLength, p.PeriodNum)
		p.Disaster = true
	}
	p.NReplicas = int(dir.Param("hsdir_n_replicas", DefaultHSDirNReplicas, 1, 16))
	p.SpreadFetch = int(dir.Param("hsdir_spread_fetch", DefaultHSDirSpreadFetch, 1, 128))
	return p
}

// SupportsHSDirV3 reports whether r can serve v3 descriptors: HSDir flag,
// an ed25519 identity, and (when a "pr" line is known) HSDir=2.
func SupportsHSDirV3(r *netdir.Relay) bool {
	if !r.Flags.Has(netdir.FlagHSDir) || !r.HasEd25519 {
		return false
	}
	if r.Protocols == "" {
		return true
	}
	return ProtoSupports(r.Protocols, "HSDir", 2)
}

// ProtoSupports reports whether a "pr" line lists version v of subprotocol name.
func ProtoSupports(pr, name string, v int) bool {
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

// Ring is the HSDir hash ring of one consensus for one (period, SRV):
// the v3 HSDirs sorted by hsdir_index. Building it costs one SHA3-256 per
// HSDir; reuse it for every lookup with the same FetchParams and NetDir.
type Ring struct {
	params FetchParams
	idx    [][32]byte
	relays []*netdir.Relay
}

// NewRing builds the ring of dir for p.
func NewRing(dir *netdir.NetDir, p FetchParams) *Ring {
	type ent struct {
		idx [32]byte
		r   *netdir.Relay
	}
	ents := make([]ent, 0, len(dir.Relays)/2)
	var buf [8 + 32 + 32 + 16]byte
	copy(buf[:], "node-idx")
	copy(buf[40:72], p.SRV[:])
	binary.BigEndian.PutUint64(buf[72:], p.PeriodNum)
	binary.BigEndian.PutUint64(buf[80:], p.Schedule.PeriodLength)
	for _, r := range dir.Relays {
		if SupportsHSDirV3(r) {
			copy(buf[8:40], r.Ed25519ID[:])
			ents = append(ents, ent{sha3.Sum256(buf[:]), r})
		}
	}
	slices.SortFunc(ents, func(a, b ent) int { return bytes.Compare(a.idx[:], b.idx[:]) })
	rg := &Ring{params: p, idx: make([][32]byte, len(ents)), relays: make([]*netdir.Relay, len(ents))}
	for i, e := range ents {
		rg.idx[i], rg.relays[i] = e.idx, e.r
	}
	return rg
}

// Params returns the parameters the ring was built for.
func (rg *Ring) Params() FetchParams { return rg.params }

// Len is the number of HSDirs on the ring.
func (rg *Ring) Len() int { return len(rg.relays) }

// Responsible returns the HSDirs to fetch the descriptor for blinded
// from, in ring order: for each replica 1..n, the first spread relays
// whose hsdir_index follows hs_index, skipping relays already chosen
// (rend-spec §2.2.3; C tor's hs_get_responsible_hsdirs with
// for_fetching). Clients pick randomly among the result.
func (rg *Ring) Responsible(blinded [32]byte) []*netdir.Relay {
	n := len(rg.relays)
	if n == 0 {
		return nil
	}
	p := rg.params
	nrep, spread := p.NReplicas, p.SpreadFetch
	if nrep <= 0 {
		nrep = DefaultHSDirNReplicas
	}
	if spread <= 0 {
		spread = DefaultHSDirSpreadFetch
	}
	var out []*netdir.Relay
	chosen := map[*netdir.Relay]bool{}
	for rep := 1; rep <= nrep; rep++ {
		hsIdx := HSIndex(blinded, uint64(rep), p.Schedule.PeriodLength, p.PeriodNum)
		start, _ := slices.BinarySearchFunc(rg.idx, hsIdx, func(e, t [32]byte) int { return bytes.Compare(e[:], t[:]) })
		if start == n {
			start = 0
		}
		i, added := start, 0
		for added < spread {
			r := rg.relays[i]
			if !chosen[r] {
				chosen[r] = true
				out = append(out, r)
				added++
			}
			i = (i + 1) % n
			if i == start {
				break
			}
		}
	}
	return out
}

// ResponsibleHSDirs is NewRing(dir, p).Responsible(blinded).
func ResponsibleHSDirs(dir *netdir.NetDir, blinded [32]byte, p FetchParams) []*netdir.Relay {
	return NewRing(dir, p).Responsible(blinded)
}
