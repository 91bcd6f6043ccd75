package cbt

// Persistence of the build time history (path-spec §2.4.2): as C tor
// writes it to its state file, a histogram of 10 ms bins
// ("CircuitBuildTimeBin MS COUNT", MS the bin's midpoint), the number of
// abandoned circuits ("CircuitBuildAbandonedCount") and the total
// ("TotalBuildTimes"). Loading expands the bins and shuffles the times,
// so that old values still expire in a random order.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Bin is one histogram bin: Count build times whose 10 ms bin has
// midpoint MS.
type Bin struct {
	MS    uint32
	Count uint32
}

// State is the persisted history.
type State struct {
	Total     int // TotalBuildTimes
	Abandoned int // CircuitBuildAbandonedCount
	Bins      []Bin
}

// State returns the history to persist (circuit_build_times_update_state).
func (e *Estimator) State() State {
	st := State{Total: e.total}
	for _, t := range e.times {
		if t == abandonedMS {
			st.Abandoned++
		}
	}
	st.Bins = e.histogram()
	return st
}

// Lines returns st as C tor's state file lines.
func (st State) Lines() []string {
	out := []string{fmt.Sprintf("TotalBuildTimes %d", st.Total), fmt.Sprintf("CircuitBuildAbandonedCount %d", st.Abandoned)}
	for _, b := range st.Bins {
		out = append(out, fmt.Sprintf("CircuitBuildTimeBin %d %d", b.MS, b.Count))
	}
	return out
}

// ParseState reads the lines Lines writes (others are ignored).
func ParseState(lines []string) (State, error) {
	var st State
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		num := func(s string, bits int) (uint64, error) {
			v, err := strconv.ParseUint(s, 10, bits)
			if err != nil {
				return 0, fmt.Errorf("cbt: %q: %w", l, err)
			}
			return v, nil
		}
		switch f[0] {
		case "TotalBuildTimes", "CircuitBuildAbandonedCount":
			if len(f) != 2 {
				return st, fmt.Errorf("cbt: %q: want one value", l)
			}
			v, err := num(f[1], 31)
			if err != nil {
				return st, err
			}
			if f[0] == "TotalBuildTimes" {
				st.Total = int(v)
			} else {
				st.Abandoned = int(v)
			}
		case "CircuitBuildTimeBin":
			if len(f) != 3 {
				return st, fmt.Errorf("cbt: %q: want MS COUNT", l)
			}
			ms, err := num(f[1], 31)
			if err != nil {
				return st, err
			}
			c, err := num(f[2], 32)
			if err != nil {
				return st, err
			}
			if ms == 0 || ms >= abandonedMS {
				return st, fmt.Errorf("cbt: %q: bin out of range", l)
			}
			st.Bins = append(st.Bins, Bin{MS: uint32(ms), Count: uint32(c)})
		}
	}
	return st, nil
}

// ErrStateMismatch is returned by Load when the bins and the abandoned
// count do not add up to the total (a corrupt state file; C tor then
// starts afresh, as the caller should).
var ErrStateMismatch = errors.New("cbt: state file build time counts do not add up")

// maxStateTotal bounds the build times a state file may claim: C tor
// writes at most NumObserved; a file claiming millions would only cost
// memory to expand.
const maxStateTotal = 100 * NumObserved

// Load returns an estimator with the history st, its times shuffled
// with rnd (nil: a random source), keeping at most NumObserved
// (circuit_build_times_parse_state). The timeouts are computed at once.
func Load(p Params, st State, rnd *rand.Rand) (*Estimator, error) {
	e := New(p)
	if p.Disabled {
		return e, nil
	}
	if st.Total < 0 || st.Abandoned < 0 || st.Abandoned > st.Total || st.Total > maxStateTotal {
		return e, ErrStateMismatch
	}
	var sum uint64 = uint64(st.Abandoned)
	for _, b := range st.Bins {
		sum += uint64(b.Count)
	}
	if sum != uint64(st.Total) {
		return e, ErrStateMismatch
	}
	times := make([]uint32, 0, st.Total)
	bins := append([]Bin(nil), st.Bins...)
	sort.Slice(bins, func(i, j int) bool { return bins[i].MS < bins[j].MS })
	for _, b := range bins {
		for range b.Count {
			times = append(times, b.MS)
		}
	}
	for range st.Abandoned {
		times = append(times, abandonedMS)
	}
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	rnd.Shuffle(len(times), func(i, j int) { times[i], times[j] = times[j], times[i] })
	for _, t := range times[:min(len(times), NumObserved)] {
		e.add(t)
	}
	e.setTimeout()
	return e, nil
}
