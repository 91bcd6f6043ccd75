// Microdescriptors: dir-spec §3.3 ("Computing microdescriptors"). A
// microdescriptor's digest is the SHA-256 of its exact text, from its
// first keyword line ("onion-key", or "ntor-onion-key" in newer ones
// that omit the TAP key) through its end.

package netdoc

import (
	"crypto/sha256"
	"net/netip"

	"github.com/gotor/gotor/internal/netdir"
)

// Microdesc is a parsed microdescriptor.
type Microdesc struct {
	Digest       [32]byte
	NtorOnionKey [32]byte
	Ed25519ID    [32]byte
	HasEd25519   bool
	IPv6         netip.AddrPort
	Family       []string
	FamilyIDs    []string
	ExitPolicy   netdir.PortPolicy
	ExitPolicy6  netdir.PortPolicy
	// Text is the exact text the digest covers.
	Text string
}

// ParseMicrodescs parses a concatenation of microdescriptors (as served
// at /tor/micro/d/...). It returns every microdescriptor parsed before
// the first error, and that error.
func ParseMicrodescs(src string) ([]*Microdesc, error) {
	const doc = "microdescriptor"
	t := NewTokenizer(doc, src)
	var out []*Microdesc
	var cur *Microdesc
	var curStart, curLine int
	var seen map[string]bool
	finish := func(end int) error {
		if cur == nil {
			return nil
		}
		if !seen["ntor-onion-key"] {
			return errf(doc, curLine, "microdescriptor without ntor-onion-key")
		}
		cur.Text = src[curStart:end]
		cur.Digest = sha256.Sum256([]byte(cur.Text))
		out = append(out, cur)
		cur = nil
		return nil
	}
	strs := interner{}
	for {
		it, ok := t.Next()
		if !ok {
			break
		}
		if it.Keyword == "onion-key" || (it.Keyword == "ntor-onion-key" && (cur == nil || seen["ntor-onion-key"])) {
			if err := finish(it.Start); err != nil {
				return out, err
			}
			cur = &Microdesc{}
			curStart, curLine = it.Start, it.Line
			seen = map[string]bool{}
		}
		if cur == nil {
			return out, errf(doc, it.Line, "microdescriptor must start with onion-key or ntor-onion-key, got %q", it.Keyword)
		}
		switch it.Keyword {
		case "onion-key", "ntor-onion-key", "family", "family-ids", "p", "p6":
			if seen[it.Keyword] {
				return out, errf(doc, it.Line, "%s appears more than once", it.Keyword)
			}
			seen[it.Keyword] = true
		}
		switch it.Keyword {
		case "onion-key":
			// The TAP key is obsolete; accept it with or without object.
			if it.Object != nil && it.Object.Label != "RSA PUBLIC KEY" {
				return out, errf(doc, it.Line, "onion-key: unexpected object %q", it.Object.Label)
			}
		case "ntor-onion-key":
			if err := decodeFixed(cur.NtorOnionKey[:], it.Arg(0)); err != nil {
				return out, errf(doc, it.Line, "ntor-onion-key: %v", err)
			}
		case "id":
			if it.Arg(0) == "ed25519" {
				if cur.HasEd25519 {
					return out, errf(doc, it.Line, "id ed25519 appears more than once")
				}
				if err := decodeFixed(cur.Ed25519ID[:], it.Arg(1)); err != nil {
					return out, errf(doc, it.Line, "id ed25519: %v", err)
				}
				cur.HasEd25519 = true
			}
		case "a":
			ap, err := netip.ParseAddrPort(it.Arg(0))
			if err != nil {
				return out, errf(doc, it.Line, "a: bad address")
			}
			if ap.Addr().Is6() && !cur.IPv6.IsValid() {
				cur.IPv6 = ap
			}
		case "family":
			cur.Family = internAll(strs, it.Args)
		case "family-ids":
			cur.FamilyIDs = internAll(strs, it.Args)
		case "p", "p6":
			p, ok := ParsePortPolicy(it.Arg(0), it.Arg(1))
			if !ok {
				return out, errf(doc, it.Line, "%s: bad port policy", it.Keyword)
			}
			if it.Keyword == "p" {
				cur.ExitPolicy = p
			} else {
				cur.ExitPolicy6 = p
			}
		}
	}
	if err := t.Err(); err != nil {
		return out, err
	}
	if err := finish(len(src)); err != nil {
		return out, err
	}
	return out, nil
}

func internAll(strs interner, a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = strs.get(s)
	}
	return out
}
