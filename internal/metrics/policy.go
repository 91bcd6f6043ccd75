// MetricsPortPolicy (tor manual, MetricsPortPolicy; address patterns as in
// dir-spec §2.1.1 exit policies, port specifiers ignored): an ordered list
// of "accept"/"reject" rules on the client's address, first match wins,
// and anything unmatched is rejected.
package metrics

import (
	"fmt"
	"net/netip"
	"strings"
)

// Rule is one MetricsPortPolicy entry: either Any (the wildcards "*",
// "*4", "*6", restricted to the families V4/V6) or an address Prefix.
type Rule struct {
	Accept bool
	Prefix netip.Prefix
	Any    bool
	V4, V6 bool
	Orig   string // the entry as written
}

// Policy is an ordered list of rules.
type Policy []Rule

// ParsePolicy parses MetricsPortPolicy values. Each value may hold several
// comma-separated entries: "accept 192.0.2.0/24", "reject *",
// "accept6 [::1]", "accept *4", "accept private", "reject 10.0.0.1:*".
func ParsePolicy(values ...string) (Policy, error) {
	var p Policy
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			rs, err := parseRule(e)
			if err != nil {
				return nil, err
			}
			p = append(p, rs...)
		}
	}
	return p, nil
}

// privateNets is what C tor expands "private" to (policies.c).
var privateNets = []string{"0.0.0.0/8", "169.254.0.0/16", "127.0.0.0/8",
	"192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "::/8", "fc00::/7",
	"fe80::/10", "fec0::/10", "ff00::/8", "::/127"}

func parseRule(e string) ([]Rule, error) {
	verb, pat, ok := strings.Cut(e, " ")
	if !ok {
		return nil, fmt.Errorf("metrics: bad policy entry %q", e)
	}
	pat = strings.TrimSpace(pat)
	r := Rule{Orig: e}
	only6 := false
	switch strings.ToLower(verb) {
	case "accept":
		r.Accept = true
	case "reject":
	case "accept6":
		r.Accept, only6 = true, true
	case "reject6":
		only6 = true
	default:
		return nil, fmt.Errorf("metrics: bad policy verb in %q", e)
	}
	// Strip a port specifier: ADDR:PORT, [V6]:PORT, *:PORT.
	if strings.HasPrefix(pat, "[") {
		end := strings.Index(pat, "]")
		if end < 0 {
			return nil, fmt.Errorf("metrics: bad IPv6 in %q", e)
		}
		rest := pat[end+1:]
		pat = pat[1:end] + rest
		if i := strings.LastIndex(rest, ":"); i >= 0 {
			pat = pat[:len(pat)-len(rest)+i]
		}
	} else if strings.Count(pat, ":") == 1 {
		pat = pat[:strings.Index(pat, ":")]
	}
	switch strings.ToLower(pat) {
	case "*":
		r.Any, r.V4, r.V6 = true, !only6, true
		return []Rule{r}, nil
	case "*4":
		r.Any, r.V4 = true, true
		return []Rule{r}, nil
	case "*6":
		r.Any, r.V6 = true, true
		return []Rule{r}, nil
	case "private":
		var out []Rule
		for _, n := range privateNets {
			pr := netip.MustParsePrefix(n)
			if only6 && pr.Addr().Is4() {
				continue
			}
			out = append(out, Rule{Accept: r.Accept, Prefix: pr, Orig: e})
		}
		return out, nil
	}
	var pr netip.Prefix
	var err error
	if strings.Contains(pat, "/") {
		pr, err = netip.ParsePrefix(pat)
		if err == nil {
			pr = pr.Masked()
		}
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(pat)
		if err == nil {
			pr = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: bad address in policy entry %q: %v", e, err)
	}
	if only6 && pr.Addr().Is4() {
		return nil, fmt.Errorf("metrics: IPv4 address in %q", e)
	}
	r.Prefix = pr
	return []Rule{r}, nil
}

// Allows reports whether a client at addr may connect. Unmatched addresses
// are rejected, as in C tor.
func (p Policy) Allows(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, r := range p {
		if r.Any {
			if addr.Is4() && r.V4 || addr.Is6() && r.V6 {
				return r.Accept
			}
			continue
		}
		if r.Prefix.Contains(addr) {
			return r.Accept
		}
	}
	return false
}
