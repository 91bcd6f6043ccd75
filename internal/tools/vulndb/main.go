// Command vulndb lets govulncheck run without vuln.go.dev, from the Go
// vulnerability database's source module golang.org/x/vulndb, which the Go
// module proxy serves like any other module (its data/osv directory holds
// one OSV JSON file per entry, GO-YYYY-NNNN.json).
//
// It has two subcommands, both used by .ci/run:
//
//	go run ./internal/tools/vulndb build -version V [-sum h1:...] -out DIR
//
// downloads golang.org/x/vulndb@V through the module proxy (go mod
// download, checked against the checksum database as for any module, and
// against -sum when given) and writes DIR in the layout govulncheck's
// -db file:///DIR reads (golang.org/x/vuln/internal/client, localSource):
// uncompressed index/db.json, index/modules.json and ID/<id>.json (the
// HTTP client asks for .json.gz; the file client reads plain .json).
// index/vulns.json is written too, as vuln.go.dev has it.
//
//	go run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -db file://DIR -json ./... |
//		go run ./internal/tools/vulndb report
//
// prints every finding (ID, module, found and fixed versions, whether
// gotor's code calls the vulnerable symbol, with one example trace) and
// exits 1 only when gotor's code calls a vulnerable symbol of a module that
// go.mod requires, which an upgrade in go.mod can fix. Findings in the Go
// standard library (module "stdlib", and "toolchain") are printed but do
// not fail: only a Go toolchain upgrade fixes them.
//
// The entries in x/vulndb's data/osv carry no dates ("modified" and
// "published" are 0001-01-01: vuln.go.dev's deploy sets them from the git
// history, which a module zip lacks). build sets the zero ones to the
// commit time of V, the date of the database, so govulncheck reports that
// date as the DB's last modification.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const vulndbModule = "golang.org/x/vulndb"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = buildCmd(os.Args[2:])
	case "report":
		var fail bool
		fail, err = report(os.Stdin, os.Stdout)
		if err == nil && fail {
			os.Exit(1)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vulndb build -version V [-sum h1:...] -out DIR\n       vulndb report < govulncheck-json")
	os.Exit(2)
}

func buildCmd(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	version := fs.String("version", "", "golang.org/x/vulndb version (a pseudo-version pins a commit)")
	sum := fs.String("sum", "", "expected h1: hash of the module zip (optional)")
	out := fs.String("out", "", "directory to write the database to (created; must be empty or absent)")
	src := fs.String("src", "", "use this directory of OSV files instead of downloading (-modified then dates it)")
	modified := fs.String("modified", "", "with -src: the database date, RFC 3339")
	fs.Parse(args)
	if *out == "" || (*version == "") == (*src == "") {
		return errors.New("build needs -out and exactly one of -version and -src")
	}
	var dir string
	var when time.Time
	if *src != "" {
		dir = *src
		if *modified != "" {
			t, err := time.Parse(time.RFC3339, *modified)
			if err != nil {
				return err
			}
			when = t
		}
	} else {
		m, err := download(*version)
		if err != nil {
			return err
		}
		if *sum != "" && m.Sum != *sum {
			return fmt.Errorf("%s@%s: hash %s, want %s", vulndbModule, m.Version, m.Sum, *sum)
		}
		dir = filepath.Join(m.Dir, "data", "osv")
		when = m.Time
		fmt.Printf("%s@%s (commit time %s, %s)\n", vulndbModule, m.Version, m.Time.UTC().Format(time.RFC3339), m.Sum)
	}
	st, err := build(dir, *out, when)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d entries for %d modules to %s (db modified %s)\n",
		st.entries, st.modules, *out, st.modified.UTC().Format(time.RFC3339))
	return nil
}

type module struct {
	Path, Version, Sum, Dir, Info string
	Time                          time.Time
	Error                         string
}

// download fetches golang.org/x/vulndb@version with the go command, from
// a temporary directory so that no go.mod is read or changed.
func download(version string) (*module, error) {
	tmp, err := os.MkdirTemp("", "vulndb-download")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "mod", "download", "-json", vulndbModule+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	var m module
	if jerr := json.Unmarshal(b, &m); jerr != nil {
		if err != nil {
			return nil, fmt.Errorf("go mod download: %v", err)
		}
		return nil, fmt.Errorf("go mod download: %v", jerr)
	}
	if m.Error != "" {
		return nil, fmt.Errorf("go mod download: %s", m.Error)
	}
	if err != nil {
		return nil, fmt.Errorf("go mod download: %v", err)
	}
	info, err := os.ReadFile(m.Info)
	if err != nil {
		return nil, err
	}
	var i struct{ Time time.Time }
	if err := json.Unmarshal(info, &i); err != nil {
		return nil, fmt.Errorf("%s: %v", m.Info, err)
	}
	m.Time = i.Time
	return &m, nil
}

// entry is the part of an OSV entry the indexes need.
type entry struct {
	ID        string    `json:"id"`
	Modified  time.Time `json:"modified"`
	Published time.Time `json:"published"`
	Aliases   []string  `json:"aliases,omitempty"`
	Affected  []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

// The index formats of https://go.dev/security/vuln/database#api, as
// golang.org/x/vuln/internal/client/schema.go reads them.
type dbMeta struct {
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

// moduleVuln has no "fixed" field: it is optional, and without it the
// client reads every entry of a module and matches the module's version
// against the entry's ranges itself, so no version arithmetic here can
// hide an entry.
type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type vulnMeta struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

type stats struct {
	entries, modules int
	modified         time.Time
}

// build writes the database for the OSV files GO-*.json in src to out,
// giving zero modified and published times the time when.
func build(src, out string, when time.Time) (stats, error) {
	var st stats
	names, err := filepath.Glob(filepath.Join(src, "GO-*.json"))
	if err != nil {
		return st, err
	}
	if len(names) == 0 {
		return st, fmt.Errorf("no OSV entries (GO-*.json) in %s", src)
	}
	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		return st, err
	}
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		return st, err
	}
	modules := map[string]*moduleMeta{}
	var vulns []vulnMeta
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return st, err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return st, fmt.Errorf("%s: %v", name, err)
		}
		if e.ID == "" || filepath.Base(name) != e.ID+".json" {
			return st, fmt.Errorf("%s: entry id %q does not match the file name", name, e.ID)
		}
		if !when.IsZero() && (e.Modified.IsZero() || e.Published.IsZero()) {
			b, err = setDates(b, &e, when)
			if err != nil {
				return st, fmt.Errorf("%s: %v", name, err)
			}
		}
		if err := os.WriteFile(filepath.Join(out, "ID", e.ID+".json"), b, 0o644); err != nil {
			return st, err
		}
		if e.Modified.After(st.modified) {
			st.modified = e.Modified
		}
		vulns = append(vulns, vulnMeta{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		seen := map[string]bool{}
		for _, a := range e.Affected {
			p := a.Package.Name
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			m := modules[p]
			if m == nil {
				m = &moduleMeta{Path: p}
				modules[p] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
		}
	}
	mods := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
	for name, v := range map[string]any{
		"db.json":      dbMeta{Modified: st.modified},
		"modules.json": mods,
		"vulns.json":   vulns,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return st, err
		}
		if err := os.WriteFile(filepath.Join(out, "index", name), b, 0o644); err != nil {
			return st, err
		}
	}
	st.entries, st.modules = len(names), len(mods)
	return st, nil
}

// setDates sets the zero "modified" and "published" of the entry b (and e)
// to when, keeping every other field as it is.
func setDates(b []byte, e *entry, when time.Time) ([]byte, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	t, err := json.Marshal(when.UTC())
	if err != nil {
		return nil, err
	}
	if e.Modified.IsZero() {
		raw["modified"], e.Modified = t, when
	}
	if e.Published.IsZero() {
		raw["published"], e.Published = t, when
	}
	return json.Marshal(raw)
}

// The parts of govulncheck's -json messages (protocol v1,
// golang.org/x/vuln/internal/govulncheck) that report reads.
type message struct {
	Config *struct {
		ScannerVersion string     `json:"scanner_version"`
		DB             string     `json:"db"`
		DBLastModified *time.Time `json:"db_last_modified"`
		GoVersion      string     `json:"go_version"`
		ScanLevel      string     `json:"scan_level"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *finding `json:"finding"`
}

type finding struct {
	OSV          string   `json:"osv"`
	FixedVersion string   `json:"fixed_version"`
	Trace        []*frame `json:"trace"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

// level is how far govulncheck traced a finding: the module is required,
// a vulnerable package is imported, or a vulnerable symbol is called.
func (f *finding) level() int {
	if len(f.Trace) == 0 {
		return 0
	}
	switch t := f.Trace[0]; {
	case t.Function != "":
		return 3
	case t.Package != "":
		return 2
	}
	return 1
}

var levelName = [...]string{"", "module required, not imported", "package imported, not called", "CALLED by gotor's code"}

func (f *frame) String() string {
	s := f.Package
	if s == "" {
		s = f.Module
	}
	if f.Function != "" {
		fn := f.Function
		if f.Receiver != "" {
			fn = strings.TrimPrefix(f.Receiver, "*") + "." + fn
		}
		s = filepath.Base(s) + "." + fn
	}
	if f.Position != nil && f.Position.Filename != "" {
		s += fmt.Sprintf(" (%s:%d)", f.Position.Filename, f.Position.Line)
	}
	return s
}

// stdlib reports whether the module is the Go distribution's, which only a
// toolchain upgrade changes.
func stdlib(mod string) bool { return mod == "stdlib" || mod == "toolchain" }

// report reads govulncheck -json output from r, writes a summary to w and
// says whether CI should fail: a called vulnerable symbol outside the
// standard library.
func report(r io.Reader, w io.Writer) (fail bool, err error) {
	dec := json.NewDecoder(r)
	summaries := map[string]string{}
	type key struct{ osv, module string }
	best := map[key]*finding{}
	var cfg string
	messages := 0
	for {
		var m message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return false, fmt.Errorf("reading govulncheck -json output: %v", err)
		}
		messages++
		switch {
		case m.Config != nil:
			c := m.Config
			date := "unknown"
			if c.DBLastModified != nil {
				date = c.DBLastModified.UTC().Format(time.RFC3339)
			}
			cfg = fmt.Sprintf("govulncheck %s, %s, scan level %s, db %s (last modified %s)",
				c.ScannerVersion, c.GoVersion, c.ScanLevel, c.DB, date)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			k := key{m.Finding.OSV, m.Finding.Trace[0].Module}
			// govulncheck reports a vulnerability again as it traces it
			// further: keep the most precise finding.
			if old := best[k]; old == nil || m.Finding.level() > old.level() {
				best[k] = m.Finding
			}
		}
	}
	if cfg == "" {
		return false, fmt.Errorf("no govulncheck config message in %d messages: not govulncheck -json output", messages)
	}
	fmt.Fprintln(w, cfg)
	keys := make([]key, 0, len(best))
	for k := range best {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := best[keys[i]], best[keys[j]]
		if a.level() != b.level() {
			return a.level() > b.level()
		}
		if keys[i].module != keys[j].module {
			return keys[i].module < keys[j].module
		}
		return keys[i].osv > keys[j].osv
	})
	var nStd, nMod, nFail int
	var buf bytes.Buffer
	for _, k := range keys {
		f := best[k]
		t := f.Trace[0]
		fixed := f.FixedVersion
		if fixed == "" {
			fixed = "no fixed version"
		}
		where := k.module
		if t.Package != "" && t.Package != k.module {
			where = t.Package + " in " + k.module
		}
		fmt.Fprintf(&buf, "%s %s@%s (fixed in %s): %s: %s\n",
			k.osv, where, t.Version, fixed, levelName[f.level()], summaries[k.osv])
		if f.level() == 3 {
			// The trace runs from the vulnerable symbol back to gotor's
			// code: print it from gotor's side.
			var steps []string
			for i := len(f.Trace) - 1; i >= 0; i-- {
				steps = append(steps, f.Trace[i].String())
			}
			fmt.Fprintf(&buf, "    example: %s\n", strings.Join(steps, " -> "))
		}
		if stdlib(k.module) {
			nStd++
		} else {
			nMod++
			if f.level() == 3 {
				nFail++
			}
		}
	}
	fmt.Fprintf(w, "%d findings: %d in the Go standard library (a toolchain upgrade fixes them; they do not fail CI), %d in required modules, %d of them called by gotor's code (these fail CI)\n",
		len(keys), nStd, nMod, nFail)
	w.Write(buf.Bytes())
	return nFail > 0, nil
}
