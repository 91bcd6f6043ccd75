// GETINFO (control-spec §3.9): the keys controllers read — nyx, stem's
// Controller methods, Tor Browser — answered from the Backend or, for the
// process and the control port's own state, here, with C tor's formats
// (control_getinfo.c, entrynodes.c getinfo_helper_entry_guards,
// control_events.c get_bw_samples).
package control

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// errUnknownInfo makes GETINFO reply 552 Unrecognized key.
var errUnknownInfo = errors.New("unrecognized key")

// errNotServer is C tor's answer to relay-only keys (551).
var errNotServer = errors.New("Not running in server mode")

// infoNames documents the keys for GETINFO info/names.
var infoNames = []string{
	"version", "config-file", "config-text", "config-can-saveconf", "config/defaults", "config/names",
	"status/bootstrap-phase", "status/circuit-established", "status/enough-dir-info",
	"status/version/current", "status/version/recommended", "network-liveness",
	"circuit-status", "stream-status", "orconn-status", "entry-guards",
	"net/listeners/socks", "net/listeners/control", "net/listeners/dns", "net/listeners/trans",
	"net/listeners/natd", "net/listeners/httptunnel", "net/listeners/metrics",
	"traffic/read", "traffic/written", "bw-event-cache", "uptime",
	"ns/id/*", "ns/all", "ns/purpose/bridge", "md/id/*", "md/name/*", "md/all",
	"address-mappings/*", "ip-to-country/*", "exit-policy/default", "exit-policy/full",
	"process/pid", "process/uid", "process/user", "process/descriptor-limit",
	"current-time/local", "current-time/utc",
	"events/names", "features/names", "signal/names", "info/names", "dormant", "accounting/enabled",
	"onions/current", "onions/detached",
}

// defaultExitPolicy is C tor's DEFAULT_EXIT_POLICY (policies.c), what
// GETINFO exit-policy/default reports (stem's get_exit_policy builds a
// client's policy from it).
const defaultExitPolicy = "reject *:25,reject *:119,reject *:135-139,reject *:445," +
	"reject *:563,reject *:1214,reject *:4661-4666," +
	"reject *:6346-6429,reject *:6699,reject *:6881-6999,accept *:*"

// bwCacheLen is how many BW samples bw-event-cache keeps (C tor's
// N_BW_EVENTS_TO_CACHE).
const bwCacheLen = 300

// bwCache is the ring of the last BW events (read, written per second).
type bwCache struct {
	samples [bwCacheLen][2]uint64
	n, next int
}

func (b *bwCache) add(r, w uint64) {
	b.samples[b.next] = [2]uint64{r, w}
	b.next = (b.next + 1) % bwCacheLen
	if b.n < bwCacheLen {
		b.n++
	}
}

// String is "read,written" pairs, oldest first, space-separated.
func (b *bwCache) String() string {
	parts := make([]string, 0, b.n)
	for i := 0; i < b.n; i++ {
		s := b.samples[(b.next-b.n+i+bwCacheLen)%bwCacheLen]
		parts = append(parts, u64(s[0])+","+u64(s[1]))
	}
	return strings.Join(parts, " ")
}

func boolInfo(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (c *conn) getInfo(key string) (string, error) {
	b := c.s.b
	lk := strings.ToLower(key)
	switch lk {
	case "version":
		return b.Version(), nil
	case "config-file":
		return b.ConfigFile(), nil
	case "status/bootstrap-phase":
		bs := b.BootstrapStatus()
		sev := "NOTICE"
		if bs.Warning != "" {
			sev = "WARN"
		}
		return sev + " BOOTSTRAP " + BootstrapStatusArgs(bs), nil
	case "status/circuit-established":
		for _, ci := range b.Circuits() {
			if ci.State == CircBuilt {
				return "1", nil
			}
		}
		return "0", nil
	case "status/enough-dir-info":
		// C tor's phase 75, enough_dirinfo (control-spec §5.5).
		return boolInfo(b.BootstrapStatus().Percent >= 75), nil
	case "status/version/current":
		cur, _ := b.VersionStatus()
		return cur, nil
	case "status/version/recommended":
		_, rec := b.VersionStatus()
		return rec, nil
	case "network-liveness":
		if b.NetworkLive() {
			return "up", nil
		}
		return "down", nil
	case "circuit-status":
		var lines []string
		for _, ci := range b.Circuits() {
			lines = append(lines, circuitStatusLine(&ci))
		}
		return strings.Join(lines, "\n"), nil
	case "stream-status":
		var lines []string
		for _, st := range b.Streams() {
			lines = append(lines, streamStatusLine(&st))
		}
		return strings.Join(lines, "\n"), nil
	case "orconn-status":
		var lines []string
		for _, o := range b.ORConns() {
			lines = append(lines, formatPath([]Hop{o.Relay})+" "+o.Status)
		}
		return strings.Join(lines, "\n"), nil
	case "entry-guards":
		var lines []string
		for _, g := range b.EntryGuards() {
			l := formatPath([]Hop{g.Relay}) + " " + g.Status
			if !g.Since.IsZero() {
				l += " " + g.Since.UTC().Format(isoTime)
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n"), nil
	case "traffic/read":
		return u64(b.TrafficRead()), nil
	case "traffic/written":
		return u64(b.TrafficWritten()), nil
	case "bw-event-cache":
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
		return c.s.bw.String(), nil
	case "uptime":
		return strconv.FormatInt(int64(time.Since(c.s.started)/time.Second), 10), nil
	case "process/pid":
		return strconv.Itoa(os.Getpid()), nil
	case "process/uid":
		return strconv.Itoa(os.Geteuid()), nil
	case "process/user":
		if u, err := user.Current(); err == nil {
			return u.Username, nil
		}
		return "", nil
	case "process/descriptor-limit":
		return strconv.FormatInt(descriptorLimit(), 10), nil
	case "current-time/local":
		return time.Now().Format("2006-01-02T15:04:05"), nil
	case "current-time/utc":
		return time.Now().UTC().Format("2006-01-02T15:04:05"), nil
	case "events/names":
		return strings.Join(allEventNames, " "), nil
	case "features/names":
		return "VERBOSE_NAMES EXTENDED_EVENTS", nil
	case "signal/names":
		return strings.Join(signalNames, " "), nil
	case "info/names":
		return strings.Join(infoNames, "\n"), nil
	case "config-text":
		return b.ConfigText(), nil
	case "config-can-saveconf":
		return boolInfo(b.CanSaveConf()), nil
	case "config/defaults":
		return strings.Join(b.ConfigDefaults(), "\n"), nil
	case "config/names":
		cl, ok := b.(ConfigLister)
		if !ok {
			return "", errUnknownInfo
		}
		var lines []string
		for _, o := range cl.ConfigNames() {
			l := o.Name + " " + o.Type
			if o.Doc != "" {
				l += " " + oneLine(o.Doc)
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n"), nil
	case "onions/current", "onions/detached":
		return c.onionsInfo(lk == "onions/detached"), nil
	case "dormant", "accounting/enabled":
		return "0", nil
	case "fingerprint", "exit-policy/full", "exit-policy/ipv4", "exit-policy/ipv6":
		return "", errNotServer
	case "exit-policy/default":
		return defaultExitPolicy, nil
	case "address":
		return "", errors.New("Address unknown")
	case "ip-to-country/ipv4-available", "ip-to-country/ipv6-available":
		return "0", nil
	case "ns/all":
		if a, ok := b.(NSAller); ok {
			return a.NSAll()
		}
		return "", errUnknownInfo
	case "ns/purpose/bridge":
		return b.BridgeNS(), nil
	case "md/all":
		return b.Microdesc("", "")
	}
	switch {
	case strings.HasPrefix(lk, "net/listeners/"):
		kind := lk[len("net/listeners/"):]
		addrs := b.Listeners(kind)
		if kind == "control" && len(addrs) == 0 {
			addrs = c.s.listenerStrings()
		}
		var q []string
		for _, a := range addrs {
			q = append(q, quote(a))
		}
		return strings.Join(q, " "), nil
	case strings.HasPrefix(lk, "address-mappings/"):
		return c.addressMappings(lk[len("address-mappings/"):])
	case strings.HasPrefix(lk, "ns/id/"):
		fp := relayID(key[len("ns/id/"):])
		if fp == "" {
			return "", errUnknownInfo
		}
		ns, err := b.NSByID(fp)
		if errors.Is(err, ErrUnknownKey) {
			return "", errUnknownInfo
		}
		return ns, err
	case strings.HasPrefix(lk, "md/id/"), strings.HasPrefix(lk, "md/name/"):
		var md string
		var err error
		if strings.HasPrefix(lk, "md/id/") {
			fp := relayID(key[len("md/id/"):])
			if fp == "" {
				return "", errUnknownInfo
			}
			md, err = b.Microdesc(fp, "")
		} else {
			md, err = b.Microdesc("", key[len("md/name/"):])
		}
		if errors.Is(err, ErrUnknownKey) {
			return "", errUnknownInfo
		}
		return md, err
	case strings.HasPrefix(lk, "ip-to-country/"):
		return "", errors.New("GeoIP data not loaded")
	}
	return "", errUnknownInfo
}

func isAllHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func (c *conn) cmdGetInfo(cmd command) bool {
	keys := strings.Fields(cmd.Args)
	r := newReply(250) // no keys: "250 OK", as C tor
	for _, k := range keys {
		v, err := c.getInfo(k)
		if errors.Is(err, errUnknownInfo) {
			c.writeLine(552, "Unrecognized key "+quote(k))
			return true
		}
		if err != nil {
			c.writeLine(551, oneLine(err.Error()))
			return true
		}
		if strings.ContainsAny(v, "\r\n") {
			r.Data(k+"=", v)
		} else {
			r.Line(k + "=" + v)
		}
	}
	c.write(r.Line("OK").Bytes())
	return true
}
