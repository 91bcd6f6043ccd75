// Parsing torrc values (tor(1) value types): booleans, intervals,
// routersets, SocksPort/HTTPTunnelPort lines with their flags, Log lines.

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

	"github.com/gotor/gotor/internal/isolation"
)

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
