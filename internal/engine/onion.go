package engine

// v3 onion services through the client's real circuits (rend-spec-v3
// §2.2.6 descriptor fetch on 3-hop circuits, §3 introduction, §4
// rendezvous): internal/onion drives the protocol over this builder.

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"strconv"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/errkind"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/stream"
)

// onionBuilder builds the circuits the onion client asks for: guard,
// middle, then the requested last hop (HSDir, introduction point or
// rendezvous point). These circuits never carry other traffic.
type onionBuilder struct{ c *Engine }

func (b onionBuilder) BuildCircuit(ctx context.Context, last onion.Target, purpose onion.Purpose) (onion.Circ, error) {
	c := b.c
	if err := c.checkNetwork(); err != nil {
		return nil, err
	}
	dir := c.dir.NetDir()
	if dir == nil {
		return nil, errors.New("no directory yet")
	}
	lastT, specs, err := onionTarget(last)
	if err != nil {
		return nil, err
	}
	var avoid []*netdir.Relay
	if last.Relay != nil {
		avoid = append(avoid, last.Relay)
	} else if r := dir.ByRSAID[lastT.RSAID]; r != nil {
		avoid = append(avoid, r)
	}
	g, att, err := c.guards.Pick(c.guardDir(dir), guard.Usage{Restrict: func(r *netdir.Relay) bool {
		for _, a := range avoid {
			if !c.selector().Compatible(r, a) {
				return false
			}
		}
		return true
	}})
	if err != nil {
		return nil, fmt.Errorf("pick guard: %w", err)
	}
	// Someone else chose the HSDir (the hash ring) or the introduction
	// point (the service): 4 hops, so that last hop and our guard are
	// never adjacent (C tor route_len_for_purpose). We chose the
	// rendezvous point: 3 hops.
	middles := 1
	if purpose == onion.PurposeHSDir || purpose == onion.PurposeIntro {
		middles = 2
	}
	path := append([]*netdir.Relay{g}, avoid...)
	var hops []circuit.Target
	for i := 0; i < middles; i++ {
		mid, err := c.selector().PickMiddle(dir, path...)
		if err != nil {
			att.Close()
			return nil, fmt.Errorf("pick middle: %w", err)
		}
		path = append(path, mid)
		hops = append(hops, circuit.TargetFromRelay(mid))
	}
	circ, err := c.buildThrough(ctx, g, att, append(hops, lastT), specs)
	if err != nil {
		return nil, err
	}
	return onionCirc{circ}, nil
}

// onionTarget turns the onion client's target into a circuit target and
// the EXTEND2 link specifiers to send (nil: derived from the target).
func onionTarget(t onion.Target) (circuit.Target, []cell.LinkSpec, error) {
	if t.Relay != nil && len(t.LinkSpecs) == 0 {
		return circuit.TargetFromRelay(t.Relay), nil, nil
	}
	var ct circuit.Target
	if t.Relay != nil {
		ct = circuit.TargetFromRelay(t.Relay)
	}
	ct.NtorKey = t.NtorKey
	specs := make([]cell.LinkSpec, 0, len(t.LinkSpecs))
	haveID := t.Relay != nil
	for _, ls := range t.LinkSpecs {
		l := cell.LinkSpec{Type: ls.Type, Data: ls.Data}
		specs = append(specs, l)
		switch ls.Type {
		case 0: // TLS-over-TCP, IPv4
			if ap, ok := l.AddrPort(); ok {
				ct.Addr = ap
			}
		case 2: // legacy identity
			if len(ls.Data) == 20 {
				copy(ct.RSAID[:], ls.Data)
				haveID = true
			}
		case 3: // Ed25519 identity
			if len(ls.Data) == 32 {
				copy(ct.Ed25519ID[:], ls.Data)
				ct.HasEd25519 = true
			}
		}
	}
	if !haveID {
		return ct, nil, errors.New("onion-service hop has no RSA identity link specifier")
	}
	return ct, specs, nil
}

// onionCirc adapts a circuit to onion.Circ.
type onionCirc struct{ *circuit.Circuit }

func (o onionCirc) SendRelay(ctx context.Context, cmd byte, body []byte) error {
	return o.Circuit.SendRelay(ctx, cell.RelayMsg{Command: cell.RelayCommand(cmd), Data: body})
}

func (o onionCirc) ReceiveRelay(ctx context.Context) (byte, []byte, error) {
	r, err := o.Circuit.ReceiveControl(ctx)
	if err != nil {
		return 0, nil, err
	}
	return byte(r.Command), r.Data, nil
}

func (o onionCirc) BeginDir(ctx context.Context) (net.Conn, error) {
	return stream.BeginDir(ctx, o.Circuit)
}

func (o onionCirc) ExtendVirtualHop(keys hscrypto.RendKeys) error {
	return o.Circuit.ExtendVirtual(hscrypto.NewRendHop(keys))
}

func (o onionCirc) OpenStream(ctx context.Context, port uint16) (net.Conn, error) {
	return stream.Begin(ctx, o.Circuit, "", port, 0)
}

func (o onionCirc) Close() error { return o.Circuit.Close() }

var onionSeed = maphash.MakeSeed()

// dialOnion connects to an onion service; the stream's isolation key
// decides which rendezvous circuits it may share.
func (c *Engine) dialOnion(ctx context.Context, r streamRequest, key isolation.Key) (net.Conn, error) {
	if c.onion == nil {
		return nil, errkind.New(errkind.NotRunning, errors.New("onion services unavailable"))
	}
	// The key reduced to the fields its flags isolate on: streams that may
	// share an exit circuit share a rendezvous circuit (the full key would
	// differ by each SOCKS connection's source port).
	iso := strconv.FormatUint(maphash.Comparable(onionSeed, key.Project(key.Flags())), 16)
	conn, err := c.onion.DialIsolated(ctx, r.host, r.port, iso)
	if err != nil {
		return nil, errkind.Wrap(err)
	}
	return conn, nil
}
