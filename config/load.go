package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/isolation"
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
		if f == "" {
			continue
		}
		lines, err := torrc.ParseFile(f)
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
}

func (st *loadState) warn(l torrc.Line, name, format string, args ...any) {
	st.warns = append(st.warns, Warning{File: l.File, LineNo: l.LineNo, Option: name, Msg: fmt.Sprintf(format, args...)})
}

// option is a torrc option gotor implements.
type option struct {
	list  bool                                                         // may repeat; the first line replaces the default
	reset func(c *Config)                                              // back to the default ("/Option", first line of a list)
	set   func(c *Config, st *loadState, l torrc.Line, v string) error // apply one value
}

func boolOpt(f func(*Config) *bool) option {
	return option{
		reset: func(c *Config) { *f(c) = *f(DefaultConfig()) },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) (err error) {
			*f(c), err = parseBool(v)
			return err
		},
	}
}

func intervalOpt(f func(*Config) *time.Duration) option {
	return option{
		reset: func(c *Config) { *f(c) = *f(DefaultConfig()) },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) (err error) {
			*f(c), err = ParseInterval(v)
			return err
		},
	}
}

func stringOpt(f func(*Config) *string, check func(string) error) option {
	return option{
		reset: func(c *Config) { *f(c) = *f(DefaultConfig()) },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*f(c) = v
			return nil
		},
	}
}

func listOpt(f func(*Config) *[]string, check func(string) error) option {
	return option{
		list:  true,
		reset: func(c *Config) { *f(c) = nil },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*f(c) = append(*f(c), v)
			return nil
		},
	}
}

func routersetOpt(f func(*Config) *[]string) option {
	return option{
		reset: func(c *Config) { *f(c) = nil },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) (err error) {
			*f(c), err = parseRouterset(v)
			return err
		},
	}
}

func portOpt(kind string, f func(*Config) *[]PortConfig) option {
	return option{
		list:  true,
		reset: func(c *Config) { *f(c) = nil },
		set: func(c *Config, st *loadState, l torrc.Line, v string) error {
			p, notes, err := ParsePortConfig(v)
			for _, n := range notes {
				st.warn(l, kind, "%s", n)
			}
			if err != nil {
				return err
			}
			if st.zero == nil {
				st.zero = map[string]bool{}
			}
			if p == nil {
				st.zero[kind] = true
			}
			if st.zero[kind] && (p != nil || len(*f(c)) > 0) {
				return fmt.Errorf("a nonzero %s together with \"%s 0\" is invalid", kind, kind)
			}
			if p != nil {
				*f(c) = append(*f(c), *p)
			}
			return nil
		},
	}
}

// options are the torrc options gotor implements, by canonical name.
var options = map[string]option{
	"SocksPort":      portOpt("SocksPort", func(c *Config) *[]PortConfig { return &c.SocksPorts }),
	"HTTPTunnelPort": portOpt("HTTPTunnelPort", func(c *Config) *[]PortConfig { return &c.HTTPTunnelPorts }),
	"DataDirectory": {
		reset: func(c *Config) { c.DataDirectory = DefaultDataDirectory() },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			if v == "" {
				return errors.New("empty path")
			}
			c.DataDirectory = expandHome(v)
			return nil
		},
	},
	"DirAuthority": listOpt(func(c *Config) *[]string { return &c.DirAuthorities }, func(v string) error {
		_, err := dirmgr.ParseDirAuthority(v)
		return err
	}),
	"TestingTorNetwork": boolOpt(func(c *Config) *bool { return &c.TestingTorNetwork }),
	"IsolationLevel": stringOpt(func(c *Config) *string { return &c.IsolationLevel }, func(v string) error {
		_, err := isolation.ParseLevel(v)
		return err
	}),
	"IsolateDestinations":              boolOpt(func(c *Config) *bool { return &c.IsolateDestinations }),
	"IsolateSOCKSAuth":                 boolOpt(func(c *Config) *bool { return &c.IsolateSOCKSAuth }),
	"IsolateClientPort":                boolOpt(func(c *Config) *bool { return &c.IsolateClientPort }),
	"EnableCircuitPrebuilding":         boolOpt(func(c *Config) *bool { return &c.EnableCircuitPrebuilding }),
	"MaxCircuitDirtiness":              intervalOpt(func(c *Config) *time.Duration { return &c.MaxCircuitDirtiness }),
	"CircuitBuildTimeout":              intervalOpt(func(c *Config) *time.Duration { return &c.CircuitBuildTimeout }),
	"NewCircuitPeriod":                 intervalOpt(func(c *Config) *time.Duration { return &c.NewCircuitPeriod }),
	"SocksTimeout":                     intervalOpt(func(c *Config) *time.Duration { return &c.SocksTimeout }),
	"ExitNodes":                        routersetOpt(func(c *Config) *[]string { return &c.ExitNodes }),
	"EntryNodes":                       routersetOpt(func(c *Config) *[]string { return &c.EntryNodes }),
	"ExcludeNodes":                     routersetOpt(func(c *Config) *[]string { return &c.ExcludeNodes }),
	"ExcludeExitNodes":                 routersetOpt(func(c *Config) *[]string { return &c.ExcludeExitNodes }),
	"StrictNodes":                      boolOpt(func(c *Config) *bool { return &c.StrictNodes }),
	"EnforceDistinctSubnets":           boolOpt(func(c *Config) *bool { return &c.EnforceDistinctSubnets }),
	"ClientRejectInternalAddresses":    boolOpt(func(c *Config) *bool { return &c.ClientRejectInternalAddresses }),
	"ClientDNSRejectInternalAddresses": boolOpt(func(c *Config) *bool { return &c.ClientDNSRejectInternalAddresses }),
	"SafeSocks":                        boolOpt(func(c *Config) *bool { return &c.SafeSocks }),
	"UseEntryGuards":                   boolOpt(func(c *Config) *bool { return &c.UseEntryGuards }),
	"ClientOnly":                       boolOpt(func(c *Config) *bool { return &c.ClientOnly }),
	"CookieAuthentication":             boolOpt(func(c *Config) *bool { return &c.CookieAuthentication }),
	"NumEntryGuards": {
		reset: func(c *Config) { c.NumEntryGuards = 0 },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not a non-negative integer", v)
			}
			c.NumEntryGuards = n
			return nil
		},
	},
	"ControlPort": {
		list:  true,
		reset: func(c *Config) { c.ControlPorts = nil },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			p, ok, err := parseControlPort(v)
			if err == nil && ok {
				c.ControlPorts = append(c.ControlPorts, p)
			}
			return err
		},
	},
	"CookieAuthFile":     stringOpt(func(c *Config) *string { return &c.CookieAuthFile }, nil),
	"ClientOnionAuthDir": stringOpt(func(c *Config) *string { return &c.ClientOnionAuthDir }, nil),
	"HashedControlPassword": listOpt(func(c *Config) *[]string { return &c.HashedControlPassword }, func(v string) error {
		if !strings.HasPrefix(v, "16:") {
			return errors.New("not a \"16:HEX\" password hash (use tor --hash-password)")
		}
		return nil
	}),
	"MetricsPort": {
		reset: func(c *Config) { c.MetricsPort = "" },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			f := strings.Fields(v)
			if len(f) == 0 || f[0] == "0" {
				c.MetricsPort = ""
				return nil
			}
			a, err := ParseListenAddr(f[0], "127.0.0.1")
			if err != nil {
				return err
			}
			c.MetricsPort = a
			return nil
		},
	},
	"MetricsPortPolicy": listOpt(func(c *Config) *[]string { return &c.MetricsPortPolicy }, nil),
	"Log": {
		list:  true,
		reset: func(c *Config) { c.Logs = nil },
		set: func(c *Config, _ *loadState, _ torrc.Line, v string) error {
			l, err := parseLog(v)
			if err != nil {
				return err
			}
			c.Logs = append(c.Logs, l)
			return nil
		},
	},
}

// acceptedAtDefault are C tor options gotor accepts only with the value
// that matches what gotor does (lower case).
var acceptedAtDefault = map[string][]string{
	"DisableNetwork":             {"0"},
	"RunAsDaemon":                {"0"},
	"ORPort":                     {"0"},
	"DirPort":                    {"0"},
	"DNSPort":                    {"0"},
	"TransPort":                  {"0"},
	"NATDPort":                   {"0"},
	"ExtORPort":                  {"0"},
	"Sandbox":                    {"0"},
	"UseBridges":                 {"0"},
	"AutomapHostsOnResolve":      {"0"},
	"UseMicrodescriptors":        {"auto", "1"},
	"__DisablePredictedCircuits": {"0"},
	"__LeaveStreamsUnattached":   {"0"},
}

// ignored are C tor options whose effect does not matter to a gotor
// client: accepted with a warning. Options starting with "Testing" are
// ignored too (they tune C tor's directory timings on test networks).
var ignored = map[string]string{
	"SafeLogging":                 "log scrubbing is not configurable in gotor",
	"AssumeReachable":             "relay option",
	"GeoIPFile":                   "gotor has no GeoIP support",
	"GeoIPv6File":                 "gotor has no GeoIP support",
	"AvoidDiskWrites":             "not configurable in gotor",
	"PidFile":                     "gotor does not write a PID file",
	"Nickname":                    "relay option",
	"ContactInfo":                 "relay option",
	"Address":                     "relay option",
	"AddressDisableIPv6":          "relay option",
	"ExitPolicy":                  "relay option",
	"ExitRelay":                   "relay option",
	"ExitPolicyRejectPrivate":     "relay option",
	"ShutdownWaitLength":          "relay option",
	"LogTimeGranularity":          "the log format is not configurable in gotor",
	"ProtocolWarnings":            "not configurable in gotor",
	"DisableDebuggerAttachment":   "not applicable to gotor",
	"HardwareAccel":               "Go's crypto uses hardware acceleration when available",
	"MaxMemInQueues":              "gotor has no memory-pressure handling to tune",
	"ConnLimit":                   "not applicable to gotor",
	"NumCPUs":                     "the Go runtime schedules on all CPUs",
	"LearnCircuitBuildTimeout":    "gotor uses the fixed CircuitBuildTimeout",
	"FetchUselessDescriptors":     "directory fetching is not configurable in gotor",
	"FetchDirInfoEarly":           "directory fetching is not configurable in gotor",
	"FetchDirInfoExtraEarly":      "directory fetching is not configurable in gotor",
	"KeepalivePeriod":             "not configurable in gotor",
	"CookieAuthFileGroupReadable": "file modes are not configurable in gotor",
	"DataDirectoryGroupReadable":  "file modes are not configurable in gotor",
	"CacheDirectoryGroupReadable": "file modes are not configurable in gotor",
	"DirAllowPrivateAddresses":    "relay option",
	"ExtendAllowPrivateAddresses": "relay option",
	"CountPrivateBandwidth":       "relay option",
	"ConnDirectionStatistics":     "relay statistics",
	"DirReqStatistics":            "relay statistics",
	"EntryStatistics":             "relay statistics",
	"ExitPortStatistics":          "relay statistics",
	"CellStatistics":              "relay statistics",
	"HiddenServiceStatistics":     "relay statistics",
	"ExtraInfoStatistics":         "relay statistics",
	"__OwningControllerProcess":   "gotor does not watch a controller process",
	"__ReloadTorrcOnSIGHUP":       "gotor does not reload its torrc",
	"__AllDirActionsPrivate":      "not configurable in gotor",
	"__AlwaysCongestionControl":   "not configurable in gotor",
	"__SbwsExit":                  "relay option",
	"ControlPortWriteToFile":      "gotor does not write the control port address to a file",
}

// aliases are C tor's alternative spellings (option_abbrevs_ in C
// tor's config.c) and hidden "__" names, lower-cased.
var aliases = map[string]string{
	"l": "Log", "dirserver": "DirAuthority",
	"entrynode": "EntryNodes", "excludenode": "ExcludeNodes", "strictnode": "StrictNodes",
	"strictexitnode": "StrictNodes", "strictentrynode": "StrictNodes",
	"usehelpernodes": "UseEntryGuards", "useentrynodes": "UseEntryGuards",
	"numhelpernodes": "NumEntryGuards", "numentrynodes": "NumEntryGuards",
	"maxconn": "ConnLimit", "maxmemincellqueues": "MaxMemInQueues",
	"__socksport": "SocksPort", "__httptunnelport": "HTTPTunnelPort",
	"__controlport": "ControlPort", "__metricsport": "MetricsPort",
	"__hashedcontrolsessionpassword": "HashedControlPassword",
	"__orport":                       "ORPort", "__dirport": "DirPort", "__dnsport": "DNSPort",
	"__transport": "TransPort", "__natdport": "NATDPort", "__extorport": "ExtORPort",
}

// gotorOnly are options gotor adds (not in C tor).
var gotorOnly = []string{"IsolationLevel", "IsolateDestinations", "IsolateSOCKSAuth",
	"IsolateClientPort", "EnableCircuitPrebuilding"}

// known maps every option name gotor recognises, lower-cased, to its
// canonical spelling.
var known = func() map[string]string {
	m := map[string]string{}
	for _, list := range [][]string{cTorOptions, cTorObsolete, gotorOnly} {
		for _, n := range list {
			m[strings.ToLower(n)] = n
		}
	}
	for n := range options {
		m[strings.ToLower(n)] = n
	}
	return m
}()

var obsolete = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range cTorObsolete {
		m[n] = true
	}
	return m
}()

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

// parseBool accepts C tor's booleans, "0" and "1".
func parseBool(v string) (bool, error) {
	switch v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("boolean must be 0 or 1, not %q", v)
}

var timeUnits = map[string]float64{
	"": 1, "second": 1, "seconds": 1, "minute": 60, "minutes": 60,
	"hour": 3600, "hours": 3600, "day": 86400, "days": 86400,
	"week": 7 * 86400, "weeks": 7 * 86400, "month": 2629728, "months": 2629728,
}

// ParseInterval parses a C tor time interval: a number (integer or
// decimal), optional whitespace, and an optional unit: second(s),
// minute(s), hour(s), day(s), week(s), month(s) (30.4 days), case
// insensitive. A plain number is seconds.
func ParseInterval(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("interval %q: not a number", v)
	}
	mult, ok := timeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("interval %q: unknown unit %q", v, strings.TrimSpace(s[i:]))
	}
	secs := n * mult
	if secs > math.MaxInt32 {
		return 0, fmt.Errorf("interval %q is too large", v)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// parseRouterset splits a C tor routerset ("$FP,nick,1.2.3.0/24").
func parseRouterset(v string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if strings.HasPrefix(e, "{") {
			return nil, fmt.Errorf("country code %s needs GeoIP data, which gotor does not support", e)
		}
		out = append(out, e)
	}
	return out, nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[1:])
		}
	}
	return p
}

// parseListenAddr parses C tor's listener address forms: "PORT", "auto",
// "ADDR:PORT", "ADDR:auto", "[IPv6]:PORT"; ADDR is an IP address or
// "localhost". It returns "host:port" (port 0 for auto).

// ParsePortConfig parses a SocksPort or HTTPTunnelPort value: an address
// ("9050", "127.0.0.1:9050", "[::1]:9050", "auto") and C tor's flags. It
// returns nil for "0" (no listener), and notes about flags that have no
// effect in gotor. Unknown flags are errors.
func ParsePortConfig(v string) (*PortConfig, []string, error) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil, nil, errors.New("missing address")
	}
	if f[0] == "0" {
		if len(f) > 1 {
			return nil, nil, errors.New("flags given for port 0")
		}
		return nil, nil, nil
	}
	if strings.HasPrefix(f[0], "unix:") {
		return nil, nil, errors.New("unix socket listeners are not supported by gotor")
	}
	addr, err := ParseListenAddr(f[0], "127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	p := DefaultPort(addr)
	iso := isolation.DefaultListenerOptions()
	var notes []string
	for _, flag := range f[1:] {
		ok, err := iso.ApplySocksPortOption(flag)
		if err != nil {
			return nil, notes, err
		}
		if ok {
			continue
		}
		word, no := flag, false
		if len(word) > 2 && strings.EqualFold(word[:2], "No") {
			word, no = word[2:], true
		}
		switch strings.ToLower(word) {
		case "ipv4traffic":
			p.IPv4Traffic = !no
		case "ipv6traffic":
			p.IPv6Traffic = !no
		case "preferipv6":
			p.PreferIPv6 = !no
		case "dnsrequest":
			p.DNSRequest = !no
		case "oniontraffic":
			p.OnionTraffic = !no
		case "oniontrafficonly":
			if no {
				return nil, notes, fmt.Errorf("unsupported flag %q; use DNSRequest, IPv4Traffic and/or IPv6Traffic", flag)
			}
			p.IPv4Traffic, p.IPv6Traffic, p.DNSRequest = false, false, false
		case "extendederrors":
			p.ExtendedErrors = !no
		case "prefersocksnoauth":
			p.PreferSOCKSNoAuth = !no
		case "cacheipv4dns", "cacheipv6dns", "cachedns", "useipv4cache", "useipv6cache", "usednscache":
			notes = append(notes, fmt.Sprintf("flag %s ignored: gotor has no client-side DNS cache", flag))
		case "preferipv6automap":
			notes = append(notes, fmt.Sprintf("flag %s ignored: gotor does not map virtual addresses", flag))
		case "groupwritable", "worldwritable", "relaxdirmodecheck":
			return nil, notes, fmt.Errorf("flag %q only applies to unix sockets", flag)
		default:
			return nil, notes, fmt.Errorf("unknown flag %q", flag)
		}
	}
	if err := iso.Validate(); err != nil {
		return nil, notes, err
	}
	p.IsolateClientAddr = iso.Flags&isolation.IsolateClientAddr != 0
	p.IsolateSOCKSAuth = iso.Flags&isolation.IsolateSOCKSAuth != 0
	p.IsolateClientProtocol = iso.Flags&isolation.IsolateClientProtocol != 0
	p.IsolateDestPort = iso.Flags&isolation.IsolateDestPort != 0
	p.IsolateDestAddr = iso.Flags&isolation.IsolateDestAddr != 0
	p.IsolateClientPort = iso.Flags&isolation.IsolateClientPort != 0
	p.KeepAliveIsolateSOCKSAuth = iso.Flags&isolation.KeepAliveIsolateSOCKSAuth != 0
	p.SessionGroup = iso.SessionGroup
	if err := p.validate(); err != nil {
		return nil, notes, err
	}
	return &p, notes, nil
}

var severities = []string{"debug", "info", "notice", "warn", "err"}

// parseLog parses a Log value: severity ranges ("notice", "info-err",
// "[handshake,~net]debug") followed by stdout, stderr, syslog or
// "file PATH"; severity alone logs to stdout.
func parseLog(v string) (LogConfig, error) {
	f := strings.Fields(v)
	var l LogConfig
	var sev []string
	i := 0
	for ; i < len(f); i++ {
		w := strings.ToLower(f[i])
		if w == "stdout" || w == "stderr" || w == "syslog" || w == "file" || w == "android" {
			break
		}
		sev = append(sev, f[i])
	}
	if len(sev) == 0 {
		return l, errors.New("missing severity")
	}
	l.Severity = strings.Join(sev, " ")
	var first, whole []string
	for _, s := range sev {
		min, max, all, err := parseSeverityRange(s)
		if err != nil {
			return l, err
		}
		if first == nil {
			first = []string{min, max}
		}
		if all && whole == nil {
			whole = []string{min, max}
		}
	}
	if whole == nil {
		whole = first
	}
	l.MinSeverity, l.MaxSeverity = whole[0], whole[1]
	if i == len(f) {
		l.Dest = "stdout"
		return l, nil
	}
	l.Dest = strings.ToLower(f[i])
	switch l.Dest {
	case "android":
		return l, errors.New("android logging is not supported by gotor")
	case "file":
		if i == len(f)-1 {
			return l, errors.New("missing file name")
		}
		l.Path = expandHome(strings.Join(f[i+1:], " "))
		return l, nil
	}
	if i != len(f)-1 {
		return l, fmt.Errorf("unexpected %q after %s", f[i+1], l.Dest)
	}
	return l, nil
}

// parseSeverityRange parses "[domains]min[-max]"; all reports whether it
// applies to every domain (no brackets, or "[*]").
func parseSeverityRange(s string) (min, max string, all bool, err error) {
	all = true
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false, fmt.Errorf("bad log domains in %q", s)
		}
		doms := s[1:end]
		all = doms == "*"
		for _, d := range strings.Split(doms, ",") {
			d = strings.TrimPrefix(d, "~")
			if d == "" || strings.ContainsAny(d, "[] ") {
				return "", "", false, fmt.Errorf("bad log domains in %q", s)
			}
		}
		s = s[end+1:]
	}
	lo, hi, rng := strings.Cut(strings.ToLower(s), "-")
	if !rng {
		hi = "err"
	}
	li, hiI := slices.Index(severities, lo), slices.Index(severities, hi)
	if li < 0 || hiI < 0 {
		return "", "", false, fmt.Errorf("unknown severity in %q (want debug, info, notice, warn or err)", s)
	}
	if li > hiI {
		return "", "", false, fmt.Errorf("severity range %q is reversed", s)
	}
	return lo, hi, all, nil
}
