package circuit

// Circuit targets: the relays a circuit is created or extended to, and
// the EXTEND2 link specifiers naming them (tor-spec §5.1.2).

import (
	"net/netip"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/congestion"
	"github.com/gotor/gotor/internal/netdir"
)

// Target is a relay to create or extend a circuit to.
type Target struct {
	RSAID      [20]byte
	Ed25519ID  [32]byte
	HasEd25519 bool
	NtorKey    [32]byte
	Addr       netip.AddrPort

	// Handshake is the handshake Create and Extend use (Ntor when zero;
	// HopFor chooses it from the relay's protocols).
	Handshake Handshake
	// CC holds the consensus's congestion control parameters for a
	// NtorV3CC hop: the request's sendme_inc check and TOR_VEGAS's
	// tuning (nil: the defaults, with TOR_VEGAS).
	CC *congestion.Params
}

// TargetFromRelay returns the Target for a relay of the consensus.
func TargetFromRelay(r *netdir.Relay) Target {
	return Target{
		RSAID: r.RSAID, Ed25519ID: r.Ed25519ID, HasEd25519: r.HasEd25519,
		NtorKey: r.NtorOnionKey, Addr: r.ORAddrPort(),
	}
}

// Identity returns the channel identity of t.
func (t Target) Identity() channel.Identity {
	return channel.Identity{RSAID: t.RSAID, Ed25519ID: t.Ed25519ID, HasEd25519: t.HasEd25519}
}

func (t Target) linkSpecs() []cell.LinkSpec {
	specs := []cell.LinkSpec{cell.LinkSpecAddr(t.Addr), cell.LinkSpecRSAID(t.RSAID)}
	if t.HasEd25519 {
		specs = append(specs, cell.LinkSpecEd25519ID(t.Ed25519ID))
	}
	return specs
}
