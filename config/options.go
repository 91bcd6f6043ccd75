// The torrc options gotor knows (tor(1)): how each one sets the Config,
// the ones accepted at their default, ignored with a warning, aliased or
// obsolete.

package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/torrc"
)

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
	"FallbackDir": listOpt(func(c *Config) *[]string { return &c.FallbackDirs }, func(v string) error {
		_, err := dirmgr.ParseFallback(v)
		return err
	}),
	"UseDefaultFallbackDirs": boolOpt(func(c *Config) *bool { return &c.UseDefaultFallbackDirs }),
	"TestingTorNetwork":      boolOpt(func(c *Config) *bool { return &c.TestingTorNetwork }),
	"IsolationLevel": stringOpt(func(c *Config) *string { return &c.IsolationLevel }, func(v string) error {
		_, err := isolation.ParseLevel(v)
		return err
	}),
	"IsolateDestinations":      boolOpt(func(c *Config) *bool { return &c.IsolateDestinations }),
	"IsolateSOCKSAuth":         boolOpt(func(c *Config) *bool { return &c.IsolateSOCKSAuth }),
	"IsolateClientPort":        boolOpt(func(c *Config) *bool { return &c.IsolateClientPort }),
	"EnableCircuitPrebuilding": boolOpt(func(c *Config) *bool { return &c.EnableCircuitPrebuilding }),
	"MaxCircuitDirtiness":      intervalOpt(func(c *Config) *time.Duration { return &c.MaxCircuitDirtiness }),
	"KeepalivePeriod":          intervalOpt(func(c *Config) *time.Duration { return &c.KeepalivePeriod }),
	"ReducedConnectionPadding": boolOpt(func(c *Config) *bool { return &c.ReducedConnectionPadding }),
	"ConnectionPadding": stringOpt(func(c *Config) *string { return &c.ConnectionPadding }, func(v string) error {
		switch v {
		case "auto", "0", "1":
			return nil
		}
		return fmt.Errorf("%q: must be auto, 0 or 1", v)
	}),
	"CircuitBuildTimeout":              intervalOpt(func(c *Config) *time.Duration { return &c.CircuitBuildTimeout }),
	"LearnCircuitBuildTimeout":         boolOpt(func(c *Config) *bool { return &c.LearnCircuitBuildTimeout }),
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
	"RunAsDaemon":                {"0"},
	"ORPort":                     {"0"},
	"DirPort":                    {"0"},
	"DNSPort":                    {"0"},
	"TransPort":                  {"0"},
	"NATDPort":                   {"0"},
	"ExtORPort":                  {"0"},
	"Sandbox":                    {"0"},
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
	"FetchUselessDescriptors":     "directory fetching is not configurable in gotor",
	"FetchDirInfoEarly":           "directory fetching is not configurable in gotor",
	"FetchDirInfoExtraEarly":      "directory fetching is not configurable in gotor",
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
	"__AllDirActionsPrivate":      "not configurable in gotor",
	"__AlwaysCongestionControl":   "not configurable in gotor",
	"__SbwsExit":                  "relay option",
	"DormantCanceledByStartup":    "gotor has no dormant mode",
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
