package engine

// What GETINFO reads of the engine beyond circuits and streams
// (control-spec §3.9): entry-guards (C tor's
// getinfo_helper_format_single_entry_guard status words), orconn-status,
// md/*, status/version/* (C tor's tor_version_is_obsolete),
// network-liveness and ns/purpose/bridge.

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/gotor/gotor/internal/control"
)

func (b controlBackend) EntryGuards() []control.GuardInfo {
	c := b.c
	dir := c.guardDir(c.dir.NetDir())
	var out []control.GuardInfo
	for _, g := range c.guards.Sampled() {
		gi := control.GuardInfo{Relay: control.Hop{Fingerprint: hexID(g.ID)}}
		if dir != nil && dir.ByRSAID[g.ID] != nil {
			gi.Relay.Nickname = g.Nickname // C tor names only guards it knows
		}
		switch {
		case !g.Confirmed:
			gi.Status = "never-connected"
		case !g.Listed:
			gi.Status = "unusable"
		case g.Reachable == "no":
			gi.Status = "down"
		default:
			gi.Status = "up"
		}
		out = append(out, gi)
	}
	return out
}

// hexID is a relay's fingerprint as the control port writes it.
func hexID(id [20]byte) string { return strings.ToUpper(hex.EncodeToString(id[:])) }

// ORConns lists the open channels (C tor's CONNECTED; gotor's channel
// manager shows only channels whose link handshake is done).
func (b controlBackend) ORConns() []control.ORConnInfo {
	c := b.c
	dir := c.dir.NetDir()
	var out []control.ORConnInfo
	for _, ch := range c.chans.Channels() {
		id := ch.Peer().RSAID
		h := control.Hop{Fingerprint: hexID(id)}
		if dir != nil {
			if r := dir.ByRSAID[id]; r != nil {
				h.Nickname = r.Nickname
			}
		}
		out = append(out, control.ORConnInfo{Relay: h, Status: "CONNECTED"})
	}
	return out
}

func (b controlBackend) Microdesc(fp, nickname string) (string, error) {
	c := b.c
	dir := c.dir.NetDir()
	if dir == nil {
		return "", control.ErrUnknownKey
	}
	var texts []string
	for _, r := range dir.Relays {
		switch {
		case fp != "" && hexID(r.RSAID) != fp:
			continue
		case nickname != "" && !strings.EqualFold(r.Nickname, nickname):
			continue
		}
		if t, ok := c.dir.MicrodescText(r.MicrodescDigest); ok {
			texts = append(texts, strings.TrimSuffix(t, "\n"))
			if fp != "" || nickname != "" {
				break
			}
		}
	}
	if len(texts) == 0 && (fp != "" || nickname != "") {
		return "", control.ErrUnknownKey
	}
	return strings.Join(texts, "\n"), nil
}

func (b controlBackend) VersionStatus() (string, string) {
	rec, ok := b.c.dir.ClientVersions()
	if !ok {
		return "unknown", "?"
	}
	return versionStatus(TorVersion, rec), strings.Join(rec, ",")
}

// torVersion is a parsed Tor version (version-spec): four numbers and a
// tag ("-alpha", "-gotor").
type torVersion struct {
	n   [4]int
	tag string
}

func parseTorVersion(s string) (torVersion, bool) {
	var v torVersion
	s = strings.TrimPrefix(s, "Tor ")
	nums, tag, _ := strings.Cut(s, "-")
	parts := strings.Split(nums, ".")
	if len(parts) < 3 || len(parts) > 4 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v.n[i] = n
	}
	v.tag = tag
	return v, true
}

// versionStatus is C tor's tor_version_is_obsolete: mine against the
// consensus's recommended versions.
func versionStatus(mine string, recommended []string) string {
	if len(recommended) == 0 {
		return "none recommended"
	}
	me, _ := parseTorVersion(mine)
	var newer, older, newerInSeries, anyInSeries bool
	for _, r := range recommended {
		o, ok := parseTorVersion(r)
		if !ok {
			continue
		}
		same := o.n[0] == me.n[0] && o.n[1] == me.n[1] && o.n[2] == me.n[2]
		anyInSeries = anyInSeries || same
		cmp := 0
		for i := 0; i < 4 && cmp == 0; i++ {
			cmp = me.n[i] - o.n[i]
		}
		if cmp == 0 {
			cmp = strings.Compare(me.tag, o.tag)
		}
		switch {
		case cmp == 0:
			return "recommended"
		case cmp < 0:
			newer = true
			newerInSeries = newerInSeries || same
		default:
			older = true
		}
	}
	switch {
	case anyInSeries && !newerInSeries && newer:
		return "new in series"
	case newer && !older:
		return "obsolete"
	case older && !newer:
		return "new"
	}
	return "unrecommended"
}

// NetworkLive reports "up" while the network is enabled and a channel to
// a relay is open (C tor: a cell arrived recently).
func (b controlBackend) NetworkLive() bool {
	return !b.c.rt.net.isDisabled() && len(b.c.chans.Channels()) > 0
}

// BridgeNS returns the configured bridges' entries, from their
// descriptors (C tor's ns/purpose/bridge).
func (b controlBackend) BridgeNS() string {
	if b.c.br == nil {
		return ""
	}
	nd := b.c.br.nd.Load()
	if nd == nil {
		return ""
	}
	var out []string
	for _, r := range nd.Relays {
		out = append(out, nsEntry(nd, r))
	}
	return strings.Join(out, "\n")
}

// noteBootstrapProblem publishes a bootstrap problem (STATUS_CLIENT WARN
// BOOTSTRAP ... WARNING= REASON=) and keeps it for status/bootstrap-phase.
func (c *Engine) noteBootstrapProblem(b control.Bootstrap) {
	c.obs.mu.Lock()
	c.obs.problem = b
	c.obs.mu.Unlock()
	c.obs.publish(control.BootstrapEvent(b))
}

// problemThreshold is C tor's BOOTSTRAP_PROBLEM_THRESHOLD: before it, a
// failed directory attempt is reported with recommendation "ignore".
const problemThreshold = 10

// directoryProblem reports a failed directory bootstrap attempt.
func (c *Engine) directoryProblem(err error) {
	c.obs.mu.Lock()
	c.obs.problems++
	n := c.obs.problems
	c.obs.mu.Unlock()
	rec := "ignore"
	if n >= problemThreshold {
		rec = "warn"
	}
	p := c.Bootstrap()
	c.noteBootstrapProblem(control.Bootstrap{Percent: p.Percent, Tag: p.Tag, Summary: p.Summary,
		Warning: err.Error(), Reason: bridgeReason(err), Count: n, Recommendation: rec})
}
