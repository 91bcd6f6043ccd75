package config

// Configuration at run time, as C tor's control port sees it
// (control-spec §3.1 SETCONF, §3.2 RESETCONF, §3.3 GETCONF, §3.6
// SAVECONF, §3.9 GETINFO config-text, config/names, config/defaults,
// §3.22 LOADCONF): every option's value as torrc lines, a configuration
// changed by SETCONF-style changes, and a torrc written back.
//
// A changed configuration is built the way C tor's options_trial_assign
// builds one: the current configuration as torrc lines (each option gotor
// implements that differs from its default, and the ignored options as
// given), the changed options' lines replaced, then FromLines — so the
// same parsers, defaults (TestingTorNetwork's included) and Validate
// apply as to a torrc, and a change is all or nothing.

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/gotor/gotor/internal/torrc"
)

// ErrUnknownOption: a SETCONF/GETCONF key names no option gotor or C tor
// knows (control-spec: 552 Unrecognized option).
var ErrUnknownOption = errors.New("unknown option")

// Change is one key of a SETCONF or RESETCONF command.
type Change struct {
	Key string
	// Values replace every value of the option, in order.
	Values []string
	// Reset (RESETCONF) sets the option back to its default before
	// Values are applied. A SETCONF key without values (Reset false, no
	// Values) sets a Boolean to 0 and any other option to its default,
	// which for gotor is C tor's "0 or NULL" (control-spec §3.1).
	Reset bool
}

// optionTypes are C tor's type names of the implemented options, for
// GETINFO config/names (C tor's struct_var_get_typename).
var optionTypes = map[string]string{
	"SocksPort": "LineList", "HTTPTunnelPort": "LineList", "ControlPort": "LineList", "ControlSocket": "LineList",
	"MetricsPort": "LineList", "MetricsPortPolicy": "LineList", "DirAuthority": "LineList", "FallbackDir": "LineList",
	"HashedControlPassword": "LineList", "Log": "LineList",
	"DataDirectory": "Filename", "CookieAuthFile": "Filename", "ClientOnionAuthDir": "Filename", "ControlPortWriteToFile": "Filename",
	"IsolationLevel": "String", "__OwningControllerProcess": "String",
	"MaxCircuitDirtiness": "TimeInterval", "CircuitBuildTimeout": "TimeInterval", "NewCircuitPeriod": "TimeInterval",
	"SocksTimeout": "TimeInterval", "KeepalivePeriod": "TimeInterval",
	"ConnectionPadding": "Autobool", "ReducedConnectionPadding": "Boolean",
	"ExitNodes": "RouterList", "EntryNodes": "RouterList", "ExcludeNodes": "RouterList", "ExcludeExitNodes": "RouterList",
	"NumEntryGuards":         "Integer",
	"UseDefaultFallbackDirs": "Boolean", "TestingTorNetwork": "Boolean", "IsolateDestinations": "Boolean",
	"IsolateSOCKSAuth": "Boolean", "IsolateClientPort": "Boolean", "EnableCircuitPrebuilding": "Boolean",
	"LearnCircuitBuildTimeout": "Boolean",
	"StrictNodes":              "Boolean", "EnforceDistinctSubnets": "Boolean", "ClientRejectInternalAddresses": "Boolean",
	"ClientDNSRejectInternalAddresses": "Boolean", "SafeSocks": "Boolean", "UseEntryGuards": "Boolean",
	"ClientOnly": "Boolean", "CookieAuthentication": "Boolean", "CookieAuthFileGroupReadable": "Boolean",
	"ControlPortFileGroupReadable": "Boolean", "ControlSocketsGroupWritable": "Boolean", "DisableNetwork": "Boolean",
	"__ReloadTorrcOnSIGHUP": "Boolean",
}

// CanonicalName returns the canonical spelling of an option name (case
// insensitive, C tor's aliases and unique prefixes accepted), or
// ErrUnknownOption.
func CanonicalName(key string) (string, error) {
	name, _, err := resolve(torrc.Line{Key: key})
	if err != nil {
		return "", fmt.Errorf("%q: %w", key, ErrUnknownOption)
	}
	return name, nil
}

// Get returns the canonical name and the values of an option, as GETCONF
// reports them: the configured value or the default ("SocksPort",
// "127.0.0.1:9050"; intervals in seconds, Booleans 0 or 1). No values
// means unset. C tor options gotor does not implement are unset; the
// options it ignores show what was configured.
func (c *Config) Get(key string) (string, []string, error) {
	name, err := CanonicalName(key)
	if err != nil {
		return "", nil, err
	}
	if d, ok := dumpers[name]; ok {
		vals := d(c)
		for i, v := range vals {
			// A HiddenServiceDir block dumps as one value of several
			// lines; GETCONF HiddenServiceDir shows the directory.
			vals[i], _, _ = strings.Cut(v, "\n")
		}
		return name, vals, nil
	}
	if _, ok := ignored[name]; ok {
		var out []string
		for _, l := range c.ignored {
			if l.Key == name {
				out = append(out, l.Value)
			}
		}
		return name, out, nil
	}
	if ok := acceptedAtDefault[name]; ok != nil && !strings.HasSuffix(name, "Port") {
		return name, []string{ok[0]}, nil
	}
	return name, nil, nil
}

// defaultsFor returns the configuration c's defaults are compared with:
// DefaultConfig, with C tor's testing-network defaults under
// TestingTorNetwork (as FromLines applies them, and as Dump compares).
func defaultsFor(c *Config) *Config {
	d := DefaultConfig()
	if c.TestingTorNetwork {
		d.UseTestingTorNetwork()
		d.TestingTorNetwork = false // itself compared with its own default
	}
	return d
}

// lines returns c as torrc lines: every implemented option whose value
// differs from its default (as Dump compares), then the ignored options.
// hidden includes the "__" options, which C tor never writes to a torrc
// (CFLG_NODUMP).
func (c *Config) lines(hidden bool) []torrc.Line {
	d := defaultsFor(c)
	var out []torrc.Line
	for _, name := range OptionNames() {
		dump := dumpers[name]
		if dump == nil || !hidden && strings.HasPrefix(name, "__") {
			continue
		}
		v := dump(c)
		if slices.Equal(v, dump(d)) {
			continue
		}
		if len(v) == 0 {
			// Unset where the default is set (an empty list): say so.
			out = append(out, torrc.Line{Key: name, Op: torrc.OpClear})
			continue
		}
		for _, x := range v {
			// A value of several lines (a HiddenServiceDir block) is the
			// option's value, then "Option value" lines.
			first, rest, more := strings.Cut(x, "\n")
			out = append(out, torrc.Line{Key: name, Value: first})
			for more {
				var l string
				l, rest, more = strings.Cut(rest, "\n")
				k, val, _ := strings.Cut(l, " ")
				out = append(out, torrc.Line{Key: k, Value: val})
			}
		}
	}
	for _, l := range c.ignored {
		out = append(out, torrc.Line{Key: l.Key, Value: l.Value, File: l.File, LineNo: l.LineNo})
	}
	return out
}

// Apply returns a copy of c with the changes made, checked as a whole
// like a torrc (FromLines); c is not modified. Errors: ErrUnknownOption
// (wrapped) for a key no option has; an *OptionError for a value its
// option refuses (control-spec 513); any other error for a configuration
// that does not validate (553). Warnings are those FromLines gives for
// the changed options.
func (c *Config) Apply(changes []Change) (*Config, []Warning, error) {
	names := make([]string, len(changes))
	for i, ch := range changes {
		n, err := CanonicalName(ch.Key)
		if err != nil {
			return nil, nil, err
		}
		names[i] = n
	}
	lines := c.lines(true)
	cleared := map[string]bool{}
	for i, ch := range changes {
		name := names[i]
		// The option's old lines go, or for a group all of its lines,
		// once: later changes of the same group add to the first's.
		if g := group(name); !cleared[g] || g == name {
			cleared[g] = true
			lines = slices.DeleteFunc(lines, func(l torrc.Line) bool {
				return l.File != "SETCONF" && group(l.Key) == g || l.Key == name
			})
		}
		if len(ch.Values) == 0 && !ch.Reset && optionTypes[name] == "Boolean" {
			lines = append(lines, torrc.Line{Key: name, Value: "0", File: "SETCONF", LineNo: i + 1})
		}
		for _, v := range ch.Values {
			lines = append(lines, torrc.Line{Key: name, Value: v, File: "SETCONF", LineNo: i + 1})
		}
	}
	nc, warns, err := FromLines(lines)
	if nc != nil {
		nc.TransportDialers = maps.Clone(c.TransportDialers) // Go only: no torrc form
	}
	var mine []Warning
	for _, w := range warns {
		if w.File == "SETCONF" {
			mine = append(mine, w)
		}
	}
	return nc, mine, err
}

// group is the option's group: the HiddenService* options of the
// hosted services are one (C tor's virtual HiddenServiceOptions, where
// setting any of them replaces all, control-spec §3.1), every other
// option its own.
func group(name string) string {
	if _, ok := options[name]; ok && strings.HasPrefix(name, "HiddenService") {
		return "HiddenServiceOptions"
	}
	return name
}

// Text returns c as a torrc (GETINFO config-text, SAVECONF): one
// "Option value" line per value that differs from the default, values
// quoted where a torrc needs it. The "__" options are left out, as C tor
// does.
func (c *Config) Text() string {
	var b strings.Builder
	for _, l := range c.lines(false) {
		if l.Op == torrc.OpClear {
			b.WriteString("/" + l.Key + "\n")
			continue
		}
		b.WriteString(l.Key + " " + torrcValue(l.Value) + "\n")
	}
	return b.String()
}

// torrcValue quotes v as a C string when a torrc would read it otherwise
// (a comment sign, a quote, a backslash at the end, control characters,
// or space at either end).
func torrcValue(v string) string {
	need := v != strings.TrimSpace(v) || strings.ContainsAny(v, "#\"\n\r\t") || strings.HasSuffix(v, "\\")
	if !need {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch ch := v[i]; ch {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// OptionInfo is one line of GETINFO config/names.
type OptionInfo struct {
	Name string
	Type string // C tor's type name: Boolean, TimeInterval, LineList, ...
}

// Options lists the options gotor implements (GETINFO config/names),
// sorted by name. Options gotor accepts but ignores are not listed.
func Options() []OptionInfo {
	names := OptionNames()
	out := make([]OptionInfo, 0, len(names))
	for _, n := range names {
		out = append(out, OptionInfo{Name: n, Type: optionTypes[n]})
	}
	return out
}

// DefaultLines returns "Option value" for the default value of every
// implemented option that has one (GETINFO config/defaults).
func DefaultLines() []string {
	d := DefaultConfig()
	var out []string
	for _, n := range OptionNames() {
		for _, v := range dumpers[n](d) {
			out = append(out, strings.TrimSpace(n+" "+v))
		}
	}
	return out
}

// LoadString is Load with text standing for the torrc (control-spec §3.22
// LOADCONF: "loaded as if it had been read from disk"): the defaults file
// and command line in args still apply. name is used in messages.
func LoadString(text, name string, args []string) (*Config, []Warning, error) {
	lines, err := torrc.ParseIncludes([]byte(text), name)
	if err != nil {
		return nil, nil, err
	}
	if lines == nil {
		lines = []torrc.Line{}
	}
	return loadSources("", args, nil, lines)
}

// UsesInclude reports whether the torrc at path has a %include line
// (SAVECONF then refuses to overwrite it unless forced, as C tor does).
func UsesInclude(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	lines, err := torrc.Parse(data, path)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(lines, func(l torrc.Line) bool { return strings.EqualFold(l.Key, "%include") }), nil
}

// Changes lists what differs between two configurations as C tor's
// CONF_CHANGED event does (control-spec §4.1.18): "Option=value" for each
// value of an option that changed, "Option" for one now unset.
func Changes(old, nc *Config) []string {
	names := OptionNames()
	for _, cfg := range []*Config{old, nc} {
		for _, l := range cfg.ignored {
			if !slices.Contains(names, l.Key) {
				names = append(names, l.Key)
			}
		}
	}
	var out []string
	for _, n := range names {
		_, ov, _ := old.Get(n)
		_, nv, _ := nc.Get(n)
		if slices.Equal(ov, nv) {
			continue
		}
		for _, v := range nv {
			if v == "" {
				out = append(out, n) // C tor: an empty value shows as the name alone
			} else {
				out = append(out, n+"="+v)
			}
		}
		if len(nv) == 0 {
			out = append(out, n)
		}
	}
	return out
}
