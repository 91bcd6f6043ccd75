package config_test

import (
	"context"
	"fmt"
	"net"

	"github.com/gotor/gotor/config"
)

// Bridges in Go: one obfs4 bridge through a transport program gotor
// runs (a ClientTransportPlugin line), one through a transport the
// program embeds (a TransportDialer: it dials the bridge's ADDR:PORT
// with the line's k=v arguments; lyrebird's ClientFactory.Dial fits
// here). client.New(cfg, ...) then reaches the network through them
// only; cmd/gotor's bridge tests run exactly this against C tor bridges.
func ExampleTransportDialer() {
	cfg := config.DefaultConfig()
	cfg.UseBridges = true
	cfg.Bridges = []string{
		"obfs4 192.0.2.1:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=AAAA iat-mode=0",
		"embedded 192.0.2.2:443 89ABCDEF0123456789ABCDEF0123456789ABCDEF secret=42",
	}
	cfg.ClientTransportPlugins = []string{"obfs4 exec /usr/bin/obfs4proxy"}
	cfg.TransportDialers = map[string]config.TransportDialer{
		"embedded": func(ctx context.Context, addr string, args map[string][]string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			// A real transport wraps conn in its protocol, keyed by
			// args["secret"][0].
			return conn, err
		},
	}
	fmt.Println(cfg.Validate())

	// Without its dialer, the second bridge has no transport.
	delete(cfg.TransportDialers, "embedded")
	fmt.Println(cfg.Validate())
	// Output:
	// <nil>
	// Bridge: bridge $89ABCDEF0123456789ABCDEF0123456789ABCDEF (embedded) uses transport embedded, which no ClientTransportPlugin line (nor TransportDialers) provides
}
