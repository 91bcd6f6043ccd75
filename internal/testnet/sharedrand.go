package testnet

// The shared random values of the network's consensus (dir-spec §3.4.1
// "shared-rand-previous-value" / "shared-rand-current-value" NumReveals
// Value; proposal 250), read by the harness itself so that onion tests
// can check which SRV case they ran without trusting gotor's parser.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SharedRandom is what one consensus says about shared random values.
type SharedRandom struct {
	ValidAfter time.Time
	// Current and Previous are the base64 values, "" when the
	// consensus has none; the Reveals are the NumReveals fields.
	Current, Previous               string
	CurrentReveals, PreviousReveals int
}

// ConsensusSharedRandom reads the shared random values of the microdesc
// consensus that the first authority serves now.
func (n *Network) ConsensusSharedRandom(ctx context.Context) (SharedRandom, error) {
	a := n.Authorities()[0]
	doc, err := dirGet(ctx, a.Address, a.DirPort, consensusPath)
	if err != nil {
		return SharedRandom{}, err
	}
	return parseSharedRandom(doc)
}

func parseSharedRandom(doc string) (SharedRandom, error) {
	var sr SharedRandom
	for _, line := range strings.Split(doc, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "valid-after":
			if len(f) != 3 {
				return sr, fmt.Errorf("testnet: bad line %q", line)
			}
			t, err := time.Parse("2006-01-02 15:04:05", f[1]+" "+f[2])
			if err != nil {
				return sr, fmt.Errorf("testnet: bad line %q: %v", line, err)
			}
			sr.ValidAfter = t
		case "shared-rand-current-value", "shared-rand-previous-value":
			if len(f) != 3 {
				return sr, fmt.Errorf("testnet: bad line %q", line)
			}
			nr, err := strconv.Atoi(f[1])
			if err != nil {
				return sr, fmt.Errorf("testnet: bad line %q: %v", line, err)
			}
			if f[0] == "shared-rand-current-value" {
				sr.Current, sr.CurrentReveals = f[2], nr
			} else {
				sr.Previous, sr.PreviousReveals = f[2], nr
			}
		case "directory-footer":
			return sr, nil
		}
	}
	if sr.ValidAfter.IsZero() {
		return sr, fmt.Errorf("testnet: consensus without valid-after")
	}
	return sr, nil
}

// WaitSharedRandom waits until the first authority's consensus carries a
// current shared random value and, with previous, a previous one too
// (see Options.SharedRandom for how long that takes), and returns it.
func (n *Network) WaitSharedRandom(ctx context.Context, previous bool) (SharedRandom, error) {
	var last error
	for {
		sr, err := n.ConsensusSharedRandom(ctx)
		if err == nil && sr.Current != "" && (!previous || sr.Previous != "") {
			return sr, nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return sr, fmt.Errorf("testnet: no shared random value (previous too: %v) after %v (last consensus valid-after %s; %v): %w",
				previous, time.Since(n.started).Round(time.Second), sr.ValidAfter.Format(time.TimeOnly), last, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}
