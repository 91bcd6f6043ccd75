package testnet

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// consensusEntry is what the readiness check needs from one router entry of
// a microdesc consensus: r, s and m lines (dir-spec §3.4.1).
type consensusEntry struct {
	Nickname    string
	Fingerprint string // RSA identity, upper-case hex
	Flags       map[string]bool
	MicroDigest string // base64, unpadded
}

// parseConsensusEntries is a deliberately tiny line-based reader of a
// microdesc consensus. It does not verify anything.
func parseConsensusEntries(doc string) ([]consensusEntry, error) {
	if !strings.HasPrefix(doc, "network-status-version 3") {
		return nil, fmt.Errorf("not a v3 consensus")
	}
	var out []consensusEntry
	var cur *consensusEntry
	for _, line := range strings.Split(doc, "\n") {
		kw, rest, _ := strings.Cut(line, " ")
		switch kw {
		case "r":
			f := strings.Fields(rest)
			if len(f) < 2 {
				return nil, fmt.Errorf("bad r line %q", line)
			}
			id, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(f[1], "="))
			if err != nil || len(id) != 20 {
				return nil, fmt.Errorf("bad identity in r line %q", line)
			}
			out = append(out, consensusEntry{Nickname: f[0], Fingerprint: strings.ToUpper(hex.EncodeToString(id)), Flags: map[string]bool{}})
			cur = &out[len(out)-1]
		case "s":
			if cur != nil {
				for _, fl := range strings.Fields(rest) {
					cur.Flags[fl] = true
				}
			}
		case "m":
			if cur != nil {
				cur.MicroDigest = strings.TrimSpace(rest)
			}
		case "directory-footer":
			cur = nil
		}
	}
	return out, nil
}

// checkConsensus reports nil when every node in want (by fingerprint) is
// listed Running and Valid, and at least one of them is Guard and one Exit.
func checkConsensus(doc string, want []NodeInfo) ([]consensusEntry, error) {
	entries, err := parseConsensusEntries(doc)
	if err != nil {
		return nil, err
	}
	byFP := map[string]consensusEntry{}
	for _, e := range entries {
		byFP[e.Fingerprint] = e
	}
	var missing []string
	guards, exits := 0, 0
	for _, n := range want {
		e, ok := byFP[n.Fingerprint]
		if !ok {
			missing = append(missing, n.Nickname+" (absent)")
			continue
		}
		if !e.Flags["Running"] || !e.Flags["Valid"] {
			missing = append(missing, n.Nickname+" (not Running+Valid)")
			continue
		}
		if e.Flags["Guard"] {
			guards++
		}
		if e.Flags["Exit"] && !e.Flags["BadExit"] {
			exits++
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("consensus lacks %s", strings.Join(missing, ", "))
	}
	if guards == 0 || exits == 0 {
		return nil, fmt.Errorf("consensus has %d Guard and %d Exit relays, want at least one of each", guards, exits)
	}
	return entries, nil
}

var dirClient = &http.Client{
	Transport: &http.Transport{
		DisableCompression: true,
		DisableKeepAlives:  true,
		Proxy:              nil,
		DialContext:        (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
	},
	Timeout: 10 * time.Second,
}

// dirGet fetches one document from a DirPort.
func dirGet(ctx context.Context, addr string, port int, path string) (string, error) {
	u := "http://" + net.JoinHostPort(addr, strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return "", err
	}
	resp, err := dirClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), nil
}

const consensusPath = "/tor/status-vote/current/consensus-microdesc"

// checkNodeServes checks that node n serves, from its own DirPort, a
// consensus that passes checkConsensus and every microdescriptor it lists.
func checkNodeServes(ctx context.Context, n NodeInfo, want []NodeInfo) error {
	doc, err := dirGet(ctx, n.Address, n.DirPort, consensusPath)
	if err != nil {
		return fmt.Errorf("%s: %v", n.Nickname, err)
	}
	entries, err := checkConsensus(doc, want)
	if err != nil {
		return fmt.Errorf("%s: %v", n.Nickname, err)
	}
	var digests []string
	for _, e := range entries {
		if e.MicroDigest != "" {
			digests = append(digests, e.MicroDigest)
		}
	}
	sort.Strings(digests)
	if len(digests) == 0 {
		return fmt.Errorf("%s: consensus lists no microdescriptors", n.Nickname)
	}
	mds, err := dirGet(ctx, n.Address, n.DirPort, "/tor/micro/d/"+strings.Join(digests, "-"))
	if err != nil {
		return fmt.Errorf("%s: microdescriptors: %v", n.Nickname, err)
	}
	if got := strings.Count("\n"+mds, "\nntor-onion-key "); got < len(digests) {
		return fmt.Errorf("%s: serves %d of %d microdescriptors", n.Nickname, got, len(digests))
	}
	return nil
}
