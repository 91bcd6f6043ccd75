// Package circtest has test helpers that turn testnet relays into
// circuit targets (fetching each relay's own descriptor for its ntor
// onion key, dir-spec §2.1.1 "ntor-onion-key").
package circtest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/testnet"
)

// Target builds the circuit target of a testnet node.
func Target(ctx context.Context, n testnet.NodeInfo) (circuit.Target, error) {
	var t circuit.Target
	b, err := hex.DecodeString(n.Fingerprint)
	if err != nil || len(b) != 20 {
		return t, fmt.Errorf("circtest: fingerprint %q", n.Fingerprint)
	}
	copy(t.RSAID[:], b)
	e, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(n.Ed25519, "="))
	if err != nil || len(e) != 32 {
		return t, fmt.Errorf("circtest: ed25519 %q", n.Ed25519)
	}
	copy(t.Ed25519ID[:], e)
	t.HasEd25519 = true
	t.Addr, err = netip.ParseAddrPort(n.ORAddr())
	if err != nil {
		return t, err
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.DirAddr()+"/tor/server/authority", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return t, fmt.Errorf("circtest: descriptor of %s: %w", n.Nickname, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return t, fmt.Errorf("circtest: descriptor of %s: %s", n.Nickname, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "ntor-onion-key" {
			k, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(f[1], "="))
			if err != nil || len(k) != 32 {
				return t, fmt.Errorf("circtest: bad ntor-onion-key of %s", n.Nickname)
			}
			copy(t.NtorKey[:], k)
			return t, nil
		}
	}
	return t, fmt.Errorf("circtest: no ntor-onion-key in descriptor of %s", n.Nickname)
}

// Path is a guard-middle-exit set of targets from a testnet.
type Path struct {
	Relays []circuit.Target // non-exit, non-authority relays
	Exits  []circuit.Target
	Nicks  map[[20]byte]string
}

// Targets returns targets for every relay of net.
func Targets(ctx context.Context, net *testnet.Network) (*Path, error) {
	p := &Path{Nicks: map[[20]byte]string{}}
	for _, n := range net.Relays() {
		if n.IsAuthority {
			continue
		}
		t, err := Target(ctx, n)
		if err != nil {
			return nil, err
		}
		p.Nicks[t.RSAID] = n.Nickname
		if n.IsExit {
			p.Exits = append(p.Exits, t)
		} else {
			p.Relays = append(p.Relays, t)
		}
	}
	return p, nil
}
