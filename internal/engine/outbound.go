package engine

// How the engine reaches relays: every channel, and the rare plain
// DirPort request, goes through the outbound proxy when one is set
// (tor(1) Socks4Proxy, Socks5Proxy, HTTPSProxy: "Tor will make all OR
// connections through the proxy"; internal/proxy), and with UseBridges
// only to the configured bridges (bridges.go; guard-spec §2 A).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/proxy"
)

// proxyOptions are the configuration's outbound proxy options.
func (c *Engine) proxyOptions() proxy.Options {
	cfg := c.conf()
	return proxy.Options{
		Socks4Proxy:             cfg.Socks4Proxy,
		Socks5Proxy:             cfg.Socks5Proxy,
		Socks5ProxyUsername:     cfg.Socks5ProxyUsername,
		Socks5ProxyPassword:     cfg.Socks5ProxyPassword,
		HTTPSProxy:              cfg.HTTPSProxy,
		HTTPSProxyAuthenticator: cfg.HTTPSProxyAuthenticator,
	}
}

// setupOutbound sets how channels are opened (New calls it once the
// channel manager exists): through the outbound proxy, and with
// UseBridges to the bridges only (setupBridges).
func (c *Engine) setupOutbound() error {
	popts := c.proxyOptions()
	pdial, err := popts.Dialer()
	if err != nil {
		return fmt.Errorf("client: outbound proxy: %w", err)
	}
	c.proxyDial = pdial
	if c.conf().UseBridges {
		return c.setupBridges(popts, pdial)
	}
	if pdial != nil {
		c.chans.DialFunc = func(ctx context.Context, addr netip.AddrPort, want channel.Identity) (*channel.Channel, error) {
			ctx, cancel := handshakeBound(ctx)
			defer cancel()
			conn, err := pdial(ctx, "tcp", addr.String())
			if err != nil {
				return nil, fmt.Errorf("channel: dial %s: %w", addr, err)
			}
			return channel.Handshake(ctx, conn, addr, &want)
		}
	}
	return nil
}

// handshakeBound gives ctx channel.HandshakeTimeout when it has no
// deadline, as channel.Dial does: the proxy or transport connection and
// the link handshake together.
func handshakeBound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, channel.HandshakeTimeout)
}

// dialDirPort opens a plain TCP connection to a directory's DirPort
// (through the outbound proxy when set). With UseBridges there is none:
// every directory request goes to a bridge over BEGIN_DIR.
func (c *Engine) dialDirPort(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	if c.br != nil {
		return nil, errors.New("with UseBridges, directory requests go to bridges only")
	}
	if c.proxyDial != nil {
		return c.proxyDial(ctx, "tcp", addr.String())
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr.String())
}
