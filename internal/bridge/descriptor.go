// A bridge's own descriptor: clients learn a bridge's keys from the
// bridge itself, since bridges publish nothing to the authorities
// (tor(1) PublishServerDescriptor; dir-spec §4 "/tor/server/authority":
// "used ... if a server is configured as a bridge"; C tor's
// fetch_bridge_descriptors and launch_direct_bridge_descriptor_fetch: a
// BEGIN_DIR request on a one-hop circuit, which for a bridge with no
// known onion key is CREATE_FAST, tor-spec §5.1.5, the channel's CERTS
// having authenticated the bridge). Then the bridge stands in for a
// consensus relay (guard-spec §2 A: with UseBridges the configured
// bridges replace {GUARDS}).

package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/dirclient"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/netdoc"
	"github.com/gotor/gotor/internal/stream"
)

// DescriptorPath is what a bridge is asked for: its own descriptor, deflated
// (C tor asks for "authority.z").
const DescriptorPath = "/tor/server/authority.z"

// maxDescriptor bounds the answer (C tor's descriptors are a few KiB; a
// router descriptor may not exceed 20 KiB, MAX_DESCRIPTOR_UPLOAD_SIZE).
const maxDescriptor = 64 << 10

// Error is a failure to use a bridge. Bridge names it (Line.Name:
// fingerprint and transport, no address when the fingerprint is known).
type Error struct {
	Bridge string
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	s := "bridge: " + e.Bridge + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Descriptor is a bridge's checked server descriptor.
type Descriptor struct {
	Line Line
	Desc *netdoc.ServerDesc
	// RSAID and Ed25519ID are the identities the descriptor proves (its
	// signing-key and master-key-ed25519), equal to those the bridge
	// proved on the channel it came over.
	RSAID     [20]byte
	Ed25519ID [32]byte
	Raw       string
	Fetched   time.Time
}

// FetchDescriptor asks the bridge at the other end of ch for its own
// descriptor (DescriptorPath on a BEGIN_DIR stream of a one-hop
// CREATE_FAST circuit, closed afterwards) and checks it: its signatures,
// its identities against the channel's authenticated peer, and against
// line's fingerprint when the line has one.
func FetchDescriptor(ctx context.Context, ch *channel.Channel, line Line) (*Descriptor, error) {
	fail := func(msg string, err error) (*Descriptor, error) {
		return nil, &Error{Bridge: line.Name(), Msg: msg, Err: err}
	}
	peer := ch.Peer()
	if line.HasFingerprint && peer.RSAID != line.Fingerprint {
		return fail(fmt.Sprintf("the channel is to $%X, not the bridge line's fingerprint", peer.RSAID), nil)
	}
	circ, err := circuit.CreateFast(ctx, ch)
	if err != nil {
		return fail("one-hop circuit for its descriptor", err)
	}
	defer circ.Close()
	s, err := stream.BeginDir(ctx, circ)
	if err != nil {
		return fail("BEGIN_DIR for its descriptor", err)
	}
	defer s.Close()
	resp, err := dirclient.Get(ctx, s, line.Name(), dirclient.Request{
		Path: DescriptorPath,
		// Not x-zstd: C tor's zstd frames declare a window larger
		// than dirclient accepts for a 64 KiB body.
		AcceptEncoding: []string{"deflate", "identity"},
		MaxBody:        maxDescriptor,
	})
	if err != nil {
		return fail("fetching its descriptor", err)
	}
	return checkDescriptor(string(resp.Body), line, peer, time.Now())
}

// checkDescriptor parses and verifies a descriptor the bridge with the
// authenticated identity peer sent.
func checkDescriptor(text string, line Line, peer channel.Identity, now time.Time) (*Descriptor, error) {
	fail := func(msg string, err error) (*Descriptor, error) {
		return nil, &Error{Bridge: line.Name(), Msg: msg, Err: err}
	}
	descs, err := netdoc.ParseServerDescs(text)
	if err != nil {
		return fail("bad descriptor", err)
	}
	if len(descs) != 1 {
		return fail(fmt.Sprintf("sent %d descriptors, want its own one", len(descs)), nil)
	}
	keys, err := verifyDescriptor(text, now)
	if err != nil {
		return fail("descriptor fails verification", err)
	}
	if keys.rsaID != peer.RSAID {
		return fail(fmt.Sprintf("descriptor is for $%X, but the bridge proved $%X on its channel", keys.rsaID, peer.RSAID), nil)
	}
	if peer.HasEd25519 && keys.ed25519ID != peer.Ed25519ID {
		return fail("descriptor's Ed25519 identity differs from the one the bridge proved on its channel", nil)
	}
	if line.HasFingerprint && keys.rsaID != line.Fingerprint {
		return fail(fmt.Sprintf("descriptor is for $%X, not the bridge line's fingerprint", keys.rsaID), nil)
	}
	d := descs[0]
	var zero [32]byte
	if d.NtorOnionKey == zero {
		return fail("descriptor has no ntor-onion-key", nil)
	}
	return &Descriptor{Line: line, Desc: d, RSAID: keys.rsaID, Ed25519ID: keys.ed25519ID, Raw: text, Fetched: now}, nil
}

// Relay returns the bridge as a relay for guard selection and circuit
// building. Its address is the bridge line's (the one the client
// connects to, possibly a transport's), not the descriptor's, as in C
// tor; its keys come from the descriptor. It carries the flags of
// {GUARDS} (guard-spec §4.0), since with UseBridges the bridges are the
// guards, and no exit policy (bridges are never exits for the client).
func (d *Descriptor) Relay() *netdir.Relay {
	const flags = netdir.FlagGuard | netdir.FlagStable | netdir.FlagFast | netdir.FlagV2Dir | netdir.FlagRunning | netdir.FlagValid
	return &netdir.Relay{
		Nickname:     d.Desc.Nickname,
		RSAID:        d.RSAID,
		Ed25519ID:    d.Ed25519ID,
		HasEd25519:   true,
		Addr:         d.Line.Addr.Addr(),
		ORPort:       d.Line.Addr.Port(),
		Flags:        flags,
		Version:      d.Desc.Platform,
		Protocols:    d.Desc.Protocols,
		HasMicrodesc: true,
		NtorOnionKey: d.Desc.NtorOnionKey,
		Family:       d.Desc.Family,
	}
}

// Target returns the circuit target of the bridge (circuit.Create with
// ntor; the Handshake is chosen from the descriptor's protocols by the
// caller, as for any relay).
func (d *Descriptor) Target() circuit.Target {
	return circuit.TargetFromRelay(d.Relay())
}

// NetDir returns the bridges as the NetDir that a guard.Manager with
// UseBridges samples its guards from (guard-spec §2 A): one relay per
// descriptor (Relay), no weights or parameters, valid from the earliest
// fetch.
func NetDir(descs []*Descriptor) *netdir.NetDir {
	nd := &netdir.NetDir{Params: map[string]int32{}, Weights: map[string]int64{}}
	for _, d := range descs {
		nd.Relays = append(nd.Relays, d.Relay())
		if nd.ValidAfter.IsZero() || d.Fetched.Before(nd.ValidAfter) {
			nd.ValidAfter = d.Fetched
		}
	}
	nd.FreshUntil = nd.ValidAfter
	nd.ValidUntil = nd.ValidAfter
	nd.Index()
	return nd
}
