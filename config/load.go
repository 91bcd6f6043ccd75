package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/gotor/gotor/internal/torrc"
)

// Line is one torrc entry (see FromLines).
type Line = torrc.Line

// Warning reports a configuration line that was accepted but ignored or
// deprecated.
type Warning struct {
	File   string
	LineNo int
	Option string
	Msg    string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s: %s: %s", pos(w.File, w.LineNo), w.Option, w.Msg)
}

// OptionError is a configuration line that cannot be used.
type OptionError struct {
	File   string
	LineNo int
	Option string
	Msg    string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s: %s: %s", pos(e.File, e.LineNo), e.Option, e.Msg)
}

func pos(file string, line int) string {
	return torrc.Line{File: file, LineNo: line}.Pos()
}

// Load reads a torrc and command-line arguments the way C tor does:
// args are C tor's command line ("-f FILE", "--defaults-torrc FILE",
// "--ignore-missing-torrc", then "--Option value" or "Option value"
// pairs). The torrc is path, or the -f argument if given; "" (and no -f)
// means no torrc. Options from the command line override the torrc,
// which overrides the defaults file, which overrides DefaultConfig: a
// list option given in a higher-priority source replaces the lower
// one's values unless its first line starts with "+" (append); "/Option"
// clears it. The flags --verify-config, --version and --help are left
// to the caller (see torrc.ParseCommandLine).
func Load(path string, args []string) (*Config, []Warning, error) {
	return loadSources(path, args, nil, nil)
}

// loadSources is Load; stdin is the torrc of "-f -" (LoadWithStdin);
// main, if not nil, stands for the torrc, whatever args name (LoadString).
func loadSources(path string, args []string, stdin []byte, main []torrc.Line) (*Config, []Warning, error) {
	cl, err := torrc.ParseCommandLine(args)
	if err != nil {
		return nil, nil, err
	}
	if f := cl.ConfigFile(); f != "" {
		path = f
	}
	allowMissing := cl.Has("--ignore-missing-torrc") || cl.Has("--allow-missing-torrc")
	var sources [][]torrc.Line
	for i, f := range []string{cl.DefaultsFile(), path} {
		if f == "" && (i == 0 || main == nil) {
			continue
		}
		var lines []torrc.Line
		var err error
		if i == 1 && main != nil {
			lines = main
		} else {
			lines, err = parseTorrc(f, i == 1, stdin)
		}
		if errors.Is(err, os.ErrNotExist) && (i == 0 || allowMissing) {
			continue // C tor tolerates a missing defaults file
		}
		if err != nil {
			return nil, nil, err
		}
		sources = append(sources, lines)
	}
	sources = append(sources, cl.Options)
	var warns []Warning
	var merged []torrc.Line
	index := map[string][]int{} // canonical name -> positions in merged
	for _, src := range sources {
		seen := map[string]bool{}
		for _, l := range src {
			name, w, err := resolve(l)
			if err != nil {
				merged = append(merged, l) // FromLines reports it with the others
				continue
			}
			if w != nil {
				warns = append(warns, *w)
			}
			l.Key = name
			if !seen[name] {
				seen[name] = true
				if l.Op != torrc.OpAppend {
					for _, i := range index[name] {
						merged[i].Key = "" // replaced by this source
					}
					index[name] = nil
				}
			}
			index[name] = append(index[name], len(merged))
			merged = append(merged, l)
		}
	}
	merged = slices.DeleteFunc(merged, func(l torrc.Line) bool { return l.Key == "" })
	cfg, w2, err := FromLines(merged)
	return cfg, append(warns, w2...), err
}

// FromLines builds a Config from DefaultConfig and torrc lines (as from
// torrc.Parse or torrc.ParseFile), applied in order. Errors name the
// option and its file:line; all errors are reported, joined.
func FromLines(lines []Line) (*Config, []Warning, error) {
	c := DefaultConfig()
	st := &loadState{set: map[string]bool{}}
	var errs []error
	for _, l := range lines {
		name, w, err := resolve(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if w != nil {
			st.warns = append(st.warns, *w)
		}
		if err := st.apply(c, name, l); err != nil {
			errs = append(errs, &OptionError{File: l.File, LineNo: l.LineNo, Option: name, Msg: err.Error()})
		}
	}
	st.finishControlSockets(c)
	if c.TestingTorNetwork {
		// C tor's testing defaults (testnet.inc) that matter to a client,
		// unless the torrc set them.
		for name, f := range map[string]*bool{
			"EnforceDistinctSubnets":           &c.EnforceDistinctSubnets,
			"ClientRejectInternalAddresses":    &c.ClientRejectInternalAddresses,
			"ClientDNSRejectInternalAddresses": &c.ClientDNSRejectInternalAddresses,
		} {
			if !st.set[name] {
				*f = false
			}
		}
	}
	if len(errs) == 0 {
		errs = st.finishOutbound(c)
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, st.warns, errors.Join(errs...)
	}
	return c, st.warns, nil
}

type loadState struct {
	set   map[string]bool // options given at least once
	warns []Warning
	zero  map[string]bool // port options that were given as "0"
	// controlSockets and socketsGroupWritable: ControlSocket's
	// listeners and ControlSocketsGroupWritable (controlsocket.go).
	controlSockets       []ControlPortConfig
	socketsGroupWritable bool
	// outbound are the lines of bridges.go's options, for the
	// positions of its cross checks.
	outbound []trackedLine
}

func (st *loadState) warn(l torrc.Line, name, format string, args ...any) {
	st.warns = append(st.warns, Warning{File: l.File, LineNo: l.LineNo, Option: name, Msg: fmt.Sprintf(format, args...)})
}

// resolve returns the canonical name of l's keyword: exact (case
// insensitive), an alias, or, as C tor allows with a warning, a unique
// prefix of an option name.
func resolve(l torrc.Line) (string, *Warning, error) {
	low := strings.ToLower(l.Key)
	if n, ok := aliases[low]; ok {
		return n, nil, nil
	}
	if n, ok := known[low]; ok {
		return n, nil, nil
	}
	var match []string
	for k, n := range known {
		if strings.HasPrefix(k, low) && !strings.HasPrefix(k, "__") {
			match = append(match, n)
		}
	}
	if len(match) == 1 && len(low) >= 3 {
		return match[0], &Warning{File: l.File, LineNo: l.LineNo, Option: l.Key,
			Msg: fmt.Sprintf("the abbreviation %q is deprecated; use %q", l.Key, match[0])}, nil
	}
	msg := "unknown option"
	if len(match) > 1 && len(low) >= 3 {
		slices.Sort(match)
		msg = fmt.Sprintf("unknown option (ambiguous abbreviation of %s)", strings.Join(match, ", "))
	}
	return "", nil, &OptionError{File: l.File, LineNo: l.LineNo, Option: l.Key, Msg: msg}
}

func (st *loadState) apply(c *Config, name string, l torrc.Line) error {
	v := l.Value
	if o, ok := options[name]; ok {
		first := !st.set[name]
		st.set[name] = true
		if l.Op == torrc.OpClear {
			o.reset(c)
			return nil
		}
		if o.list && first && l.Op != torrc.OpAppend {
			o.reset(c)
		}
		if !o.list && !first {
			st.warn(l, name, "option used more than once; all but the last value are ignored")
		}
		return o.set(c, st, l, v)
	}
	if ok := acceptedAtDefault[name]; ok != nil {
		if l.Op == torrc.OpClear || slices.Contains(ok, strings.ToLower(v)) {
			return nil
		}
		return fmt.Errorf("gotor only supports %s %s", name, ok[0])
	}
	if why, ok := ignored[name]; ok {
		st.warn(l, name, "not supported by gotor, ignored (%s)", why)
		if l.Op == torrc.OpClear {
			c.ignored = slices.DeleteFunc(c.ignored, func(x torrc.Line) bool { return x.Key == name })
		} else {
			l.Key = name
			c.ignored = append(c.ignored, l)
		}
		return nil
	}
	if strings.HasPrefix(name, "Testing") {
		st.warn(l, name, "not supported by gotor, ignored (C tor test-network tuning)")
		return nil
	}
	if obsolete[name] {
		st.warn(l, name, "obsolete option, ignored (as C tor does)")
		return nil
	}
	return errors.New("C tor option not supported by gotor")
}

// parseListenAddr parses C tor's listener address forms: "PORT", "auto",
// "ADDR:PORT", "ADDR:auto", "[IPv6]:PORT"; ADDR is an IP address or
// "localhost". It returns "host:port" (port 0 for auto).
