package engine

// SocksPort and HTTPTunnelPort listeners (tor(1) SocksPort,
// HTTPTunnelPort; socks-extensions). Each listener has its own isolation
// flags and, unless SessionGroup= joins them, its own session group, so
// streams from different listeners never share a circuit (C tor).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/logging"
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

// openListeners opens every SocksPort and HTTPTunnelPort.
func (c *Engine) openListeners() error {
	id := uint32(1)
	var ports []struct {
		p    config.PortConfig
		http bool
	}
	for _, p := range c.cfg.SocksPorts {
		ports = append(ports, struct {
			p    config.PortConfig
			http bool
		}{p, false})
	}
	for _, p := range c.cfg.HTTPTunnelPorts {
		ports = append(ports, struct {
			p    config.PortConfig
			http bool
		}{p, true})
	}
	off := isolationOff(c.cfg)
	for _, pp := range ports {
		p := c.cfg.Port(pp.p)
		if off {
			// The design's "turn it off": IsolationLevel "none" with
			// IsolateSOCKSAuth false clears C tor's default port flags too.
			p.IsolateClientAddr, p.IsolateSOCKSAuth = false, false
		}
		ln, err := net.Listen("tcp", p.Addr)
		if err != nil {
			return fmt.Errorf("client: listen on %s: %w", p.Addr, err)
		}
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			c.log.Warn("listener is not on a loopback address: anyone who can reach it can use this client", "addr", ln.Addr().String())
		}
		h := &listenerHandler{c: c, id: id, flags: portFlags(p), sessionGroup: p.SessionGroup}
		if h.sessionGroup < 0 {
			h.sessionGroup = isolation.SessionGroupUnset
		}
		id++
		srv := &socks.Server{
			Handler:           h,
			Logger:            c.log,
			SafeSocks:         c.cfg.SafeSocks,
			PreferSOCKSNoAuth: p.PreferSOCKSNoAuth,
			ExtendedErrors:    p.ExtendedErrors,
			ConnectTimeout:    c.cfg.SocksTimeout,
			NoIPv4Traffic:     !p.IPv4Traffic,
			NoIPv6Traffic:     !p.IPv6Traffic,
			NoDNSRequest:      !p.DNSRequest,
			NoOnionTraffic:    !p.OnionTraffic,
		}
		c.listeners = append(c.listeners, ln)
		c.servers = append(c.servers, srv)
		kind := "SOCKS"
		serve := srv.Serve
		if pp.http {
			kind = "HTTP tunnel"
			serve = srv.ServeHTTPTunnel
			c.httpAddrs = append(c.httpAddrs, ln.Addr().String())
		} else {
			c.socksAddrs = append(c.socksAddrs, ln.Addr().String())
		}
		c.log.Log(context.Background(), logging.LevelNotice, "Opened "+kind+" listener on "+ln.Addr().String())
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := serve(ln); err != nil && !errors.Is(err, socks.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				c.log.Warn("listener stopped", "kind", kind, "err", err)
			}
		}()
	}
	return nil
}

// SocksAddrs returns the addresses the SOCKS listeners are bound to (with
// "auto" ports resolved).
func (c *Engine) SocksAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.socksAddrs...)
}

// HTTPTunnelAddrs returns the addresses of the HTTP CONNECT listeners.
func (c *Engine) HTTPTunnelAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.httpAddrs...)
}

// isolationOff reports whether the design's fields ask for no isolation
// at all: IsolationLevel "none" (or empty) with IsolateSOCKSAuth,
// IsolateDestinations and IsolateClientPort all false. (The always-on
// fields remain: listener, NEWNYM epoch, session tokens.)
func isolationOff(cfg *config.Config) bool {
	lvl := strings.TrimSpace(strings.ToLower(cfg.IsolationLevel))
	return (lvl == "" || lvl == "none") && !cfg.IsolateSOCKSAuth && !cfg.IsolateDestinations && !cfg.IsolateClientPort
}
