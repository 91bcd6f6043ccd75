package engine

// SocksPort and HTTPTunnelPort listeners (tor(1) SocksPort,
// HTTPTunnelPort; socks-extensions). Each listener has its own isolation
// flags and, unless SessionGroup= joins them, its own session group, so
// streams from different listeners never share a circuit (C tor).

import (
	"context"
	"io"
	"net"
	"strings"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/socks"
)

// listenerHandler serves one SocksPort or HTTPTunnelPort.
type listenerHandler struct {
	c            *Engine
	id           uint32
	flags        isolation.Flags
	sessionGroup int
}

func portFlags(p config.PortConfig) isolation.Flags {
	var f isolation.Flags
	if p.IsolateClientAddr {
		f |= isolation.IsolateClientAddr
	}
	if p.IsolateSOCKSAuth {
		f |= isolation.IsolateSOCKSAuth
	}
	if p.IsolateClientProtocol {
		f |= isolation.IsolateClientProtocol
	}
	if p.IsolateDestPort {
		f |= isolation.IsolateDestPort
	}
	if p.IsolateDestAddr {
		f |= isolation.IsolateDestAddr
	}
	if p.IsolateClientPort {
		f |= isolation.IsolateClientPort
	}
	if p.KeepAliveIsolateSOCKSAuth {
		f |= isolation.KeepAliveIsolateSOCKSAuth
	}
	return f
}

func (h *listenerHandler) request(req *socks.Request) streamRequest {
	return streamRequest{
		host:  req.Host,
		port:  req.Port,
		info:  req.StreamInfo(h.id, h.sessionGroup),
		flags: h.flags,
	}
}

func (h *listenerHandler) HandleConnect(ctx context.Context, req *socks.Request) (net.Conn, error) {
	conn, err := h.c.openStream(ctx, h.request(req))
	if err != nil {
		return nil, err
	}
	return endOnEOF{conn}, nil
}

// endOnEOF ends the stream (RELAY_END, reason DONE) when the application
// stops sending, as C tor does on EOF from a SOCKS client (tor-spec §6.3:
// streams have no half-close). Without it a stream whose application went
// away would live on at the exit until the server closed it.
type endOnEOF struct{ net.Conn }

func (e endOnEOF) CloseWrite() error { return e.Conn.Close() }

// WriteTo forwards to the stream's WriteTo, which io.Copy would not find
// behind the embedded net.Conn: the SOCKS splice then copies stream data
// to the application without a 32 KiB buffer per stream.
func (e endOnEOF) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := e.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{e.Conn})
}

func (h *listenerHandler) HandleResolve(ctx context.Context, req *socks.Request) (socks.ResolveAnswer, error) {
	return h.c.resolve(ctx, h.request(req), req.Command == socks.CmdResolvePTR)
}

// openListeners opens every SocksPort and HTTPTunnelPort (none while
// DisableNetwork is set); from then on reconfiguration keeps them as
// configured (runtime.go).
func (c *Engine) openListeners() error {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	if c.rt.stopped {
		return errNotStarted
	}
	c.ports.activate()
	plan, err := c.ports.prepare(c, c.wantedPorts(c.conf()))
	if err != nil {
		return err
	}
	plan.commit()
	return nil
}

// wantedPorts lists the listeners cfg asks for: none while
// DisableNetwork is set (C tor then listens only for controllers).
func (c *Engine) wantedPorts(cfg *config.Config) []portWant {
	if cfg.DisableNetwork {
		return nil
	}
	var out []portWant
	off := isolationOff(cfg)
	for i, list := range [][]config.PortConfig{cfg.SocksPorts, cfg.HTTPTunnelPorts} {
		for _, pc := range list {
			p := cfg.Port(pc)
			if off {
				// The design's "turn it off": IsolationLevel "none" with
				// IsolateSOCKSAuth false clears C tor's default port flags too.
				p.IsolateClientAddr, p.IsolateSOCKSAuth = false, false
			}
			sg := p.SessionGroup
			if sg < 0 {
				sg = isolation.SessionGroupUnset
			}
			out = append(out, portWant{
				http: i == 1,
				addr: pc.Addr,
				set: portSettings{
					flags:        portFlags(p),
					sessionGroup: sg,
					safeSocks:    cfg.SafeSocks,
					noAuth:       p.PreferSOCKSNoAuth,
					extErrors:    p.ExtendedErrors,
					timeout:      cfg.SocksTimeout,
					noIPv4:       !p.IPv4Traffic,
					noIPv6:       !p.IPv6Traffic,
					noDNS:        !p.DNSRequest,
					noOnion:      !p.OnionTraffic,
				},
			})
		}
	}
	return out
}

// SocksAddrs returns the addresses the SOCKS listeners are bound to (with
// "auto" ports resolved).
func (c *Engine) SocksAddrs() []string { return c.ports.addrs(false) }

// HTTPTunnelAddrs returns the addresses of the HTTP CONNECT listeners.
func (c *Engine) HTTPTunnelAddrs() []string { return c.ports.addrs(true) }

// isolationOff reports whether the design's fields ask for no isolation
// at all: IsolationLevel "none" (or empty) with IsolateSOCKSAuth,
// IsolateDestinations and IsolateClientPort all false. (The always-on
// fields remain: listener, NEWNYM epoch, session tokens.)
func isolationOff(cfg *config.Config) bool {
	lvl := strings.TrimSpace(strings.ToLower(cfg.IsolationLevel))
	return (lvl == "" || lvl == "none") && !cfg.IsolateSOCKSAuth && !cfg.IsolateDestinations && !cfg.IsolateClientPort
}
