// Package netdir holds gotor's view of the Tor network: an immutable
// snapshot built from a verified microdesc consensus and the
// microdescriptors it references (dir-spec §3.4.1 "microdesc consensus",
// dir-spec §3.3 microdescriptors).
//
// A NetDir is built once by the directory manager (internal/dirmgr) and
// then only read: path selection, the guard manager and the circuit
// manager share it without locks. A new consensus yields a new NetDir.
package netdir

import (
	"net/netip"
	"time"
)

// Flags are the relay status flags of a consensus "s" line (dir-spec §3.4.1).
type Flags uint32

// Relay flags, as named by dir-spec.
const (
	FlagAuthority Flags = 1 << iota
	FlagBadExit
	FlagExit
	FlagFast
	FlagGuard
	FlagHSDir
	FlagMiddleOnly
	FlagNoEdConsensus
	FlagRunning
	FlagStable
	FlagStaleDesc
	FlagSybil
	FlagV2Dir
	FlagValid
)

var flagNames = map[string]Flags{
	"Authority": FlagAuthority, "BadExit": FlagBadExit, "Exit": FlagExit,
	"Fast": FlagFast, "Guard": FlagGuard, "HSDir": FlagHSDir,
	"MiddleOnly": FlagMiddleOnly, "NoEdConsensus": FlagNoEdConsensus,
	"Running": FlagRunning, "Stable": FlagStable, "StaleDesc": FlagStaleDesc,
	"Sybil": FlagSybil, "V2Dir": FlagV2Dir, "Valid": FlagValid,
}

// ParseFlag returns the flag named s; unknown names yield 0 (ignored, as
// dir-spec requires clients to tolerate unknown flags).
func ParseFlag(s string) Flags { return flagNames[s] }

// Has reports whether all of want are set.
func (f Flags) Has(want Flags) bool { return f&want == want }

// PortRange is an inclusive range of TCP ports.
type PortRange struct{ Lo, Hi uint16 }

// PortPolicy is a microdescriptor exit-policy summary ("p" / "p6" lines,
// dir-spec §3.3): either "accept" or "reject" of a list of port ranges.
// The zero value rejects everything.
type PortPolicy struct {
	Accept bool
	Ranges []PortRange
}

// Allows reports whether the summary permits exiting to port.
func (p PortPolicy) Allows(port uint16) bool {
	if len(p.Ranges) == 0 {
		return false // zero value: rejects everything
	}
	in := false
	for _, r := range p.Ranges {
		if port >= r.Lo && port <= r.Hi {
			in = true
			break
		}
	}
	return in == p.Accept
}

// AllowsAny reports whether the summary permits at least one port.
func (p PortPolicy) AllowsAny() bool {
	if p.Accept {
		return len(p.Ranges) > 0
	}
	// A reject policy allows something unless it rejects 1-65535.
	if len(p.Ranges) == 0 {
		return false // zero value
	}
	return !(len(p.Ranges) == 1 && p.Ranges[0].Lo <= 1 && p.Ranges[0].Hi == 65535)
}

// Relay is one router in the consensus together with the fields of its
// microdescriptor that clients use.
type Relay struct {
	Nickname string
	RSAID    [20]byte // SHA-1 of the RSA identity key ("r" line)

	// Ed25519ID is the relay's Ed25519 identity ("id ed25519" in the
	// microdescriptor); HasEd25519 says whether it was present.
	Ed25519ID  [32]byte
	HasEd25519 bool

	Addr    netip.Addr // IPv4 OR address
	ORPort  uint16
	DirPort uint16
	IPv6    netip.AddrPort // from "a" lines, zero if none

	Flags      Flags
	Bandwidth  uint32 // consensus weight ("w Bandwidth="), in kilobytes/s
	Unmeasured bool
	Version    string // "v" line, if any
	Protocols  string // "pr" line, if any

	MicrodescDigest [32]byte // "m" line of a microdesc consensus

	// Fields from the microdescriptor; HasMicrodesc is false until it
	// has been fetched and matched by digest.
	HasMicrodesc bool
	NtorOnionKey [32]byte
	Family       []string // "family" entries as written ($HEX, nicknames)
	FamilyIDs    []string // "family-ids" entries (prop 321), if any
	ExitPolicy   PortPolicy
	ExitPolicy6  PortPolicy
}

// ORAddrPort returns the relay's IPv4 ORPort address.
func (r *Relay) ORAddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Addr, r.ORPort) }

// IsUsable reports whether the relay is Running, Valid and has its
// microdescriptor, the minimum for building circuits through it.
func (r *Relay) IsUsable() bool {
	return r.Flags.Has(FlagRunning|FlagValid) && r.HasMicrodesc
}

// NetDir is an immutable snapshot of the network.
type NetDir struct {
	ValidAfter time.Time
	FreshUntil time.Time
	ValidUntil time.Time

	Relays  []*Relay
	ByRSAID map[[20]byte]*Relay

	// Weights are the consensus "bandwidth-weights" (Wgg, Wgm, ...),
	// scaled by WeightScale (param "bwweightscale", default 10000).
	Weights     map[string]int64
	WeightScale int64

	// Params are the consensus "params" line.
	Params map[string]int32

	// Shared random values (dir-spec §3.4.1, used by onion services).
	SharedRandCurrent  []byte
	SharedRandPrevious []byte
}

// Param returns consensus parameter name, or def when absent, clamped to
// [min, max] as param-spec requires.
func (d *NetDir) Param(name string, def, min, max int32) int32 {
	v, ok := d.Params[name]
	if !ok {
		return def
	}
	if v < min {
		return min
	}
	if v > max {
		return max
	}
	return v
}

// Index (re)builds ByRSAID from Relays.
func (d *NetDir) Index() {
	d.ByRSAID = make(map[[20]byte]*Relay, len(d.Relays))
	for _, r := range d.Relays {
		d.ByRSAID[r.RSAID] = r
	}
}
