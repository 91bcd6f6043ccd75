// Persistent guard state: the "state" file of guard-spec Appendix A.5.
// Each sampled guard is a "Guard" line of K=V fields: in, rsa_id,
// nickname, sampled_on, sampled_idx, sampled_by, listed, unlisted_since,
// confirmed_on, confirmed_idx, and C tor's path bias counts pb_*
// (pathbias.go; written as C tor's entry_guard_encode_for_state does,
// successes including the open circuits'). Unrecognised fields, Guard lines of other
// instances ("in" other than "default") and all other lines of the file
// are kept as they are, so components sharing the file do not clobber
// each other. Writes are atomic (temporary file, fsync, rename) and the
// file is mode 0600.

package guard

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StateFile is the file name inside DataDirectory.
const StateFile = "state"

const (
	timeFormat = "2006-01-02T15:04:05"
)

func (m *Manager) statePath() string { return filepath.Join(m.cfg.DataDirectory, StateFile) }

type loaded struct {
	entries                  []*entry
	sampledIdx, confirmedIdx []int
}

// readState splits the state file into our guard entries, by instance,
// and other lines.
func readState(p string) (inst map[string]*loaded, other []string, err error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	inst = make(map[string]*loaded)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# gotor guard state") {
			continue
		}
		rest, ok := strings.CutPrefix(line, "Guard ")
		if !ok {
			if strings.TrimSpace(line) != "" {
				other = append(other, line)
			}
			continue
		}
		e, sIdx, cIdx, in, perr := parseGuardLine(rest)
		if (in != InstanceDefault && in != InstanceRestricted && in != InstanceBridges) || perr != nil || seen[in+string(e.id[:])] {
			other = append(other, line) // not ours, or unparseable: keep verbatim
			continue
		}
		seen[in+string(e.id[:])] = true
		l := inst[in]
		if l == nil {
			l = &loaded{}
			inst[in] = l
		}
		l.entries = append(l.entries, e)
		l.sampledIdx = append(l.sampledIdx, sIdx)
		l.confirmedIdx = append(l.confirmedIdx, cIdx)
	}
	return inst, other, sc.Err()
}

func parseGuardLine(s string) (e *entry, sampledIdx, confirmedIdx int, in string, err error) {
	e = &entry{}
	sampledIdx, confirmedIdx = math.MaxInt, math.MaxInt
	haveID, haveListed := false, false
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		var perr error
		switch k {
		case "in":
			in = v
		case "rsa_id":
			var b []byte
			b, perr = hex.DecodeString(v)
			if perr == nil && len(b) != 20 {
				perr = errors.New("rsa_id length")
			}
			copy(e.id[:], b)
			haveID = perr == nil
		case "nickname":
			e.nickname = v
		case "sampled_on":
			e.sampledOn, perr = time.Parse(timeFormat, v)
		case "sampled_by":
			e.sampledBy = v
		case "sampled_idx":
			sampledIdx, perr = strconv.Atoi(v)
		case "listed":
			e.listed, haveListed = v == "1", true
		case "unlisted_since":
			e.unlistedSince, perr = time.Parse(timeFormat, v)
		case "confirmed_on":
			e.confirmedOn, perr = time.Parse(timeFormat, v)
		case "confirmed_idx":
			confirmedIdx, perr = strconv.Atoi(v)
		default:
			if !slices.Contains(pbFields, k) {
				e.extra = append(e.extra, kv)
			} else if f, ferr := strconv.ParseFloat(v, 64); ferr == nil && f >= 0 && f <= 1e9 {
				*e.pb.field(k) = f // else dropped, the line kept (as C tor)
			}
		}
		if perr != nil {
			return nil, 0, 0, in, fmt.Errorf("guard state: %s: %v", kv, perr)
		}
	}
	if !haveID || e.sampledOn.IsZero() || !haveListed {
		return nil, 0, 0, in, errors.New("guard state: missing required field")
	}
	return e, sampledIdx, confirmedIdx, in, nil
}

// load reads the state file into m: the default instance becomes
// current, the restricted and bridges ones (if any) are parked.
func (m *Manager) load() error {
	inst, other, err := readState(m.statePath())
	if err != nil {
		return fmt.Errorf("guard: reading state: %w", err)
	}
	m.otherLines = other
	for name, l := range inst {
		in := l.order()
		if name == m.cur {
			m.sampled, m.confirmed = in.sampled, in.confirmed
		} else {
			m.parked[name] = in
		}
	}
	return nil
}

// order sorts loaded entries into sample and confirmation order.
func (l *loaded) order() *instance {
	order := make([]int, len(l.entries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpInt(l.sampledIdx[a], l.sampledIdx[b]) })
	in := &instance{}
	for _, i := range order {
		in.sampled = append(in.sampled, l.entries[i])
	}
	corder := slices.Clone(order)
	slices.SortStableFunc(corder, func(a, b int) int { return cmpInt(l.confirmedIdx[a], l.confirmedIdx[b]) })
	for _, i := range corder {
		if l.entries[i].confirmed() {
			in.confirmed = append(in.confirmed, l.entries[i])
		}
	}
	return in
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// save writes the state file if persistence is enabled; errors are
// logged (the in-memory state stays authoritative).
func (m *Manager) save() {
	m.dirty, m.lastSave = false, m.now()
	if m.cfg.DataDirectory == "" {
		return
	}
	if err := m.writeState(); err != nil {
		m.logf("guard: saving state: %v", err)
	}
}

func (m *Manager) writeState() error {
	if err := os.MkdirAll(m.cfg.DataDirectory, 0o700); err != nil {
		return err
	}
	// Keep whatever other components wrote since we loaded.
	if _, other, err := readState(m.statePath()); err == nil {
		m.otherLines = other
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# gotor guard state, written %s\n", m.now().UTC().Format(timeFormat))
	for _, l := range m.otherLines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	writeInstance(&buf, m.cur, m.sampled, m.confirmed)
	for _, name := range []string{InstanceDefault, InstanceRestricted, InstanceBridges} {
		if in := m.parked[name]; in != nil && name != m.cur {
			writeInstance(&buf, name, in.sampled, in.confirmed)
		}
	}
	return writeFileAtomic(m.statePath(), buf.Bytes())
}

func writeInstance(buf *bytes.Buffer, name string, sampled, confirmed []*entry) {
	for i, e := range sampled {
		fmt.Fprintf(buf, "Guard in=%s rsa_id=%X", name, e.id)
		if e.nickname != "" {
			fmt.Fprintf(buf, " nickname=%s", e.nickname)
		}
		fmt.Fprintf(buf, " sampled_on=%s sampled_idx=%d", e.sampledOn.UTC().Format(timeFormat), i)
		if e.sampledBy != "" {
			fmt.Fprintf(buf, " sampled_by=%s", e.sampledBy)
		}
		listed := 0
		if e.listed {
			listed = 1
		}
		fmt.Fprintf(buf, " listed=%d", listed)
		if !e.listed && !e.unlistedSince.IsZero() {
			fmt.Fprintf(buf, " unlisted_since=%s", e.unlistedSince.UTC().Format(timeFormat))
		}
		if ci := slices.Index(confirmed, e); ci >= 0 {
			fmt.Fprintf(buf, " confirmed_on=%s confirmed_idx=%d", e.confirmedOn.UTC().Format(timeFormat), ci)
		}
		pb := e.pb
		pb.useSuccesses, pb.successfulClosed = pb.useSuccess(), pb.closeSuccess()
		for _, k := range pbFields {
			if v := *pb.field(k); v >= 1e-6 {
				fmt.Fprintf(buf, " %s=%f", k, v)
			}
		}
		for _, x := range e.extra {
			buf.WriteByte(' ')
			buf.WriteString(x)
		}
		buf.WriteByte('\n')
	}
}

// writeFileAtomic writes data to p through a temporary file in the same
// directory, fsyncs it and renames it over p, mode 0600.
func writeFileAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
