// Reaching bridges: a channel to a bridge is a TLS link handshake
// (internal/channel) over a connection through the bridge's pluggable
// transport (pt-spec §3.5: the line's k=v arguments in the SOCKS
// handshake) or, for a plain bridge, a TCP connection (through the
// outbound proxy, if one is configured). With UseBridges the client
// connects to no other relay address: the dialer refuses every address
// that is not a configured bridge's (guard-spec §2 A, tor(1) UseBridges).

package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/proxy"
	"github.com/gotor/gotor/internal/pt"
)

// Transports reaches bridges through pluggable transports; *pt.Manager
// is one, and an in-process transport (a Go function mapped to a
// transport name) can be another.
type Transports interface {
	Has(transport string) bool
	Dial(ctx context.Context, transport, addr string, args pt.Args) (net.Conn, error)
}

// TransportFunc is an in-process pluggable transport: it connects to
// addr (a bridge's ADDR:PORT) with the bridge line's arguments, e.g.
// lyrebird's ClientFactory.Dial wrapped by a program that embeds gotor.
type TransportFunc func(ctx context.Context, addr string, args pt.Args) (net.Conn, error)

// WithFuncs returns Transports that serve the named transports with
// in-process functions first, and the others with managed (nil: none).
func WithFuncs(funcs map[string]TransportFunc, managed *pt.Manager) Transports {
	return funcTransports{funcs: funcs, managed: managed}
}

type funcTransports struct {
	funcs   map[string]TransportFunc
	managed *pt.Manager
}

func (f funcTransports) Has(t string) bool {
	_, ok := f.funcs[t]
	return ok || (f.managed != nil && f.managed.Has(t))
}

func (f funcTransports) Dial(ctx context.Context, t, addr string, args pt.Args) (net.Conn, error) {
	if fn, ok := f.funcs[t]; ok {
		return fn(ctx, addr, args)
	}
	if f.managed == nil {
		return nil, &pt.UnknownTransportError{Transport: t}
	}
	return f.managed.Dial(ctx, t, addr, args)
}

// Dialer opens channels to the configured bridges, and only to them.
type Dialer struct {
	byAddr     map[netip.AddrPort]Line
	transports Transports
	direct     proxy.DialFunc
}

// NewDialer returns a dialer for lines. transports serves the lines that
// name a transport (it may be nil when none does); direct dials plain
// bridges (nil: a direct TCP connection; an outbound proxy's DialContext
// otherwise). It fails, naming the bridge, when a line's transport has no
// provider, or when two lines share an address.
func NewDialer(lines []Line, transports Transports, direct proxy.DialFunc) (*Dialer, error) {
	d := &Dialer{byAddr: map[netip.AddrPort]Line{}, transports: transports, direct: direct}
	for _, l := range lines {
		if l.Transport != "" && (transports == nil || !transports.Has(l.Transport)) {
			return nil, &Error{Bridge: l.Name(), Msg: fmt.Sprintf("no ClientTransportPlugin line provides transport %s", l.Transport)}
		}
		if prev, dup := d.byAddr[l.Addr]; dup {
			return nil, &Error{Bridge: l.Name(), Msg: "same address as " + prev.Name()}
		}
		d.byAddr[l.Addr] = l
	}
	if d.direct == nil {
		d.direct = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, addr)
		}
	}
	return d, nil
}

// Dial opens a channel to the bridge of line and checks its identity
// against the line's fingerprint; without one it accepts the identity the
// bridge proves (Channel.Peer).
func (d *Dialer) Dial(ctx context.Context, line Line) (*channel.Channel, error) {
	var want *channel.Identity
	if line.HasFingerprint {
		want = &channel.Identity{RSAID: line.Fingerprint}
	}
	return d.dial(ctx, line, want)
}

// DialChannel opens a channel to the bridge at addr whose identity must
// be want: the dial function of a channel.Manager (Manager.DialFunc)
// when UseBridges is set. Any other address is refused.
func (d *Dialer) DialChannel(ctx context.Context, addr netip.AddrPort, want channel.Identity) (*channel.Channel, error) {
	line, ok := d.byAddr[addr]
	if !ok {
		return nil, fmt.Errorf("bridge: refusing to connect to %s: with UseBridges, only configured bridges are contacted", addr)
	}
	if line.HasFingerprint && want.RSAID != line.Fingerprint {
		return nil, &Error{Bridge: line.Name(), Msg: fmt.Sprintf("asked for identity $%X, not the bridge line's", want.RSAID)}
	}
	return d.dial(ctx, line, &want)
}

func (d *Dialer) dial(ctx context.Context, line Line, want *channel.Identity) (*channel.Channel, error) {
	var (
		conn net.Conn
		err  error
	)
	if line.Transport != "" {
		conn, err = d.transports.Dial(ctx, line.Transport, line.Addr.String(), line.Args)
	} else {
		conn, err = d.direct(ctx, "tcp", line.Addr.String())
	}
	if err != nil {
		return nil, &Error{Bridge: line.Name(), Msg: "unreachable", Err: err}
	}
	ch, err := channel.Handshake(ctx, conn, line.Addr, want)
	if err != nil {
		msg := "link handshake failed"
		if line.Transport != "" {
			msg += fmt.Sprintf(" (through transport %s)", line.Transport)
		}
		var mm *channel.IdentityMismatchError
		if errors.As(err, &mm) {
			msg = "wrong identity: the bridge is not the one the line's fingerprint names"
		}
		return nil, &Error{Bridge: line.Name(), Msg: msg, Err: err}
	}
	return ch, nil
}
