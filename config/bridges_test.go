package config

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
)

const (
	obfs4Line = "obfs4 192.0.2.1:443 " + fp1 + " cert=AAAA iat-mode=0"
	plainLine = "192.0.2.2:9001 " + fp2
)

// Tor Browser's torrc-defaults (tor-browser-build, Linux), as Tor Browser
// starts tor with it: every line must load, the transports unused.
const torBrowserDefaults = `# torrc-defaults for Tor Browser
AvoidDiskWrites 1
Log notice stdout
CookieAuthentication 1
DormantCanceledByStartup 1
## fteproxy configuration
## obfs4proxy configuration
ClientTransportPlugin meek_lite,obfs2,obfs3,obfs4,scramblesuit,webtunnel exec ./TorBrowser/Tor/PluggableTransports/lyrebird
## snowflake configuration
ClientTransportPlugin snowflake exec ./TorBrowser/Tor/PluggableTransports/snowflake-client
## conjure configuration
ClientTransportPlugin conjure exec ./TorBrowser/Tor/PluggableTransports/conjure-client -registerURL https://registration.refraction.network/api
`

func TestTorBrowserDefaults(t *testing.T) {
	c, _, err := load(t, torBrowserDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ClientTransportPlugins) != 3 || c.UseBridges {
		t.Fatalf("ClientTransportPlugins %q, UseBridges %v", c.ClientTransportPlugins, c.UseBridges)
	}
	// The Windows spelling, and a snowflake bridge through it (its
	// address is a placeholder; snowflake-client ignores it).
	c, _, err = load(t, `ClientTransportPlugin meek_lite,obfs2,obfs3,obfs4,scramblesuit,webtunnel exec TorBrowser\Tor\PluggableTransports\lyrebird.exe
ClientTransportPlugin snowflake exec TorBrowser\Tor\PluggableTransports\snowflake-client.exe
UseBridges 1
Bridge snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 url=https://snowflake-broker.torproject.net/ fronts=foursquare.com,github.githubassets.com ice=stun:stun.l.google.com:19302,stun:stun.antisip.com:3478 utls-imitate=hellorandomizedalpn
Bridge webtunnel [2001:db8:9443:367a:3276:1e74:91c3:7a5a]:443 54BF1146B161573185FBA0299B0DC3A8F7D08080 url=https://d3pyjtpvxs6z0u.cloudfront.net/Exch8Ooc4ahbaePhu ver=0.0.1
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Bridges) != 2 || !c.UseBridges {
		t.Fatalf("Bridges %q", c.Bridges)
	}
}

func TestBridgeOptions(t *testing.T) {
	c, _, err := load(t, "UseBridges 1\nBridge "+obfs4Line+"\nBridge "+plainLine+"\nClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n"+
		"Socks5Proxy 127.0.0.1:1080\nSocks5ProxyUsername user\nSocks5ProxyPassword pass\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.UseBridges || !reflect.DeepEqual(c.Bridges, []string{obfs4Line, plainLine}) ||
		c.ClientTransportPlugins[0] != "obfs4 exec /usr/bin/obfs4proxy" || c.Socks5Proxy != "127.0.0.1:1080" ||
		c.Socks5ProxyUsername != "user" || c.Socks5ProxyPassword != "pass" {
		t.Errorf("got %+v", c)
	}
	// Bridge lines without UseBridges are unused and need no transport,
	// as in C tor.
	if _, _, err := load(t, "Bridge "+obfs4Line+"\nHTTPSProxy proxy.example:3128\nHTTPSProxyAuthenticator u:p\n"); err != nil {
		t.Error(err)
	}
	// A round trip through --dump-config.
	for _, defaults := range []*Config{nil, DefaultConfig()} {
		dump := c.Dump(defaults)
		back := loadText(t, strings.Join(dump, "\n")+"\n")
		if !reflect.DeepEqual(c, back) {
			t.Errorf("dump %q read back differently", dump)
		}
	}
}

func TestBridgeOptionErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"UseBridges 1\n", "torrc:1: UseBridges: if you set UseBridges, you must specify at least one bridge"},
		{"UseBridges yes\n", "torrc:1: UseBridges: boolean must be 0 or 1"},
		{"Bridge\n", "torrc:1: Bridge: Bridge: empty line"},
		{"Bridge bridge.example.com:443\n", "torrc:1: Bridge: Bridge: address \"bridge.example.com:443\""},
		{"Bridge 192.0.2.1:443 ABCD\n", "torrc:1: Bridge: Bridge: fingerprint \"ABCD\" is not 40 hex digits"},
		{"Bridge 192.0.2.1:443 cert=x\n", "k=v arguments are for a pluggable transport"},
		{"\nUseBridges 1\nBridge " + obfs4Line + "\n", "torrc:3: Bridge: bridge $" + fp1 + " (obfs4) uses transport obfs4, which no ClientTransportPlugin line"},
		{"UseBridges 1\nBridge " + plainLine + "\nBridge 192.0.2.2:9001\n", "torrc:3: Bridge: bridge 192.0.2.2:9001: same address as bridge $" + fp2},
		{"UseBridges 1\nBridge " + plainLine + "\nEntryNodes nick\n", "torrc:1: UseBridges: you cannot set both UseBridges and EntryNodes"},
		{"UseBridges 1\nBridge " + plainLine + "\nUseEntryGuards 0\n", "torrc:1: UseBridges: setting UseBridges requires also setting UseEntryGuards"},
		{"ClientTransportPlugin obfs4\n", "torrc:1: ClientTransportPlugin: ClientTransportPlugin: too few arguments"},
		{"ClientTransportPlugin obfs4 socks6 127.0.0.1:1\n", "unknown type \"socks6\""},
		{"ClientTransportPlugin obfs4,meek socks5 127.0.0.1:1\n", "provides one transport"},
		{"ClientTransportPlugin 4bfs exec /x\n", "not a C identifier"},
		{"Socks5Proxy 127.0.0.1:99999\n", "torrc:1: Socks5Proxy: bad port"},
		{"Socks4Proxy a b\n", "torrc:1: Socks4Proxy: want HOST[:PORT]"},
		{"HTTPSProxy a/b:3128\n", "torrc:1: HTTPSProxy: want HOST[:PORT]"},
		{"Socks5ProxyUsername " + strings.Repeat("u", 256) + "\n", "torrc:1: Socks5ProxyUsername: must be between 1 and 255 characters"},
		{"HTTPSProxyAuthenticator nocolon\n", "torrc:1: HTTPSProxyAuthenticator: HTTPSProxyAuthenticator must be USERNAME:PASSWORD"},
		{"Socks4Proxy 127.0.0.1\nHTTPSProxy 127.0.0.1\n", "torrc:2: HTTPSProxy: more than one proxy type"},
		{"Socks5Proxy 127.0.0.1\nSocks5ProxyUsername u\n", "torrc:2: Socks5ProxyUsername: Socks5ProxyUsername and Socks5ProxyPassword must be set together"},
		{"Socks5ProxyUsername u\nSocks5ProxyPassword p\n", "torrc:2: Socks5ProxyPassword: Socks5ProxyUsername set without Socks5Proxy"},
		{"HTTPSProxyAuthenticator u:p\n", "torrc:1: HTTPSProxyAuthenticator: HTTPSProxyAuthenticator set without HTTPSProxy"},
		{"TCPProxy haproxy 127.0.0.1:1\n", "torrc:1: TCPProxy: C tor option not supported by gotor"},
	}
	for _, tt := range tests {
		_, _, err := load(t, tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.want)
		}
	}
}

// A Config built in Go: Validate makes the same checks, and a
// TransportDialer stands for a ClientTransportPlugin.
func TestValidateBridges(t *testing.T) {
	c := DefaultConfig()
	c.UseBridges = true
	c.Bridges = []string{obfs4Line, "192.0.2.9:1 nonsense"}
	c.Socks5Proxy, c.HTTPSProxy = "127.0.0.1", "127.0.0.1"
	err := c.Validate()
	for _, want := range []string{"transport obfs4, which no ClientTransportPlugin line", "is not 40 hex digits", "more than one proxy type"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	c = DefaultConfig()
	c.UseBridges = true
	c.Bridges = []string{obfs4Line}
	c.TransportDialers = map[string]TransportDialer{"obfs4": func(context.Context, string, map[string][]string) (net.Conn, error) {
		return nil, nil
	}}
	if err := c.Validate(); err != nil {
		t.Errorf("a TransportDialer for obfs4: %v", err)
	}
	if c.Clone().TransportDialers["obfs4"] == nil {
		t.Error("Clone dropped TransportDialers")
	}
	c.TransportDialers["bad-name"] = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `TransportDialers: transport name "bad-name"`) {
		t.Errorf("bad transport name: %v", err)
	}
}

// TestBridgeAcceptanceAgainstCTor: C tor (--verify-config) and gotor agree
// on these torrcs, except where gotor is stricter, as said.
func TestBridgeAcceptanceAgainstCTor(t *testing.T) {
	tor := ctor(t)
	cases := []struct {
		text          string
		gotorStricter string
	}{
		{text: torBrowserDefaults},
		{text: "UseBridges 1\n"},
		{text: "UseBridges 1\nBridge " + plainLine + "\n"},
		{text: "UseBridges 1\nBridge 192.0.2.2\n"},
		{text: "UseBridges 1\nBridge " + obfs4Line + "\nClientTransportPlugin obfs4 exec /nonexistent/obfs4proxy\n"},
		{text: "UseBridges 1\nBridge " + obfs4Line + "\nClientTransportPlugin obfs4 socks5 127.0.0.1:9999\n"},
		{text: "UseBridges 1\nBridge " + plainLine + "\nEntryNodes nick\n"},
		{text: "UseBridges 1\nBridge " + plainLine + "\nUseEntryGuards 0\n"},
		{text: "Bridge bridge.example.com:443\n"},
		{text: "Bridge 192.0.2.1:443 ABCD\n"},
		{text: "ClientTransportPlugin obfs4\n"},
		{text: "ClientTransportPlugin obfs4 socks6 127.0.0.1:1\n"},
		{text: "ClientTransportPlugin obfs4,meek socks5 127.0.0.1:1\n"},
		{text: "Socks5Proxy 127.0.0.1:1080\nSocks5ProxyUsername u\nSocks5ProxyPassword p\n"},
		{text: "Socks4Proxy 127.0.0.1\n"},
		{text: "HTTPSProxy 127.0.0.1:3128\nHTTPSProxyAuthenticator u:p\n"},
		{text: "Socks4Proxy 127.0.0.1\nHTTPSProxy 127.0.0.1\n"},
		{text: "Socks5Proxy 127.0.0.1\nSocks5ProxyUsername u\n"},
		{text: "Socks5ProxyUsername " + strings.Repeat("u", 256) + "\nSocks5ProxyPassword p\nSocks5Proxy 127.0.0.1\n"},
		{text: "UseBridges 1\nBridge " + obfs4Line + "\n", gotorStricter: "a bridge whose transport no line provides is an error (C tor leaves it unused, with a warning)"},
		{text: "Socks5ProxyUsername u\nSocks5ProxyPassword p\n", gotorStricter: "credentials without their proxy are an error"},
	}
	for _, c := range cases {
		out, torErr := runCTor(t, tor, c.text, "--verify-config")
		_, _, ourErr := load(t, "DataDirectory "+t.TempDir()+"\n"+c.text)
		switch {
		case c.gotorStricter != "":
			if torErr != nil || ourErr == nil {
				t.Errorf("%q: expected C tor to accept (%v) and gotor to refuse (%v): %s", c.text, torErr, ourErr, c.gotorStricter)
			}
		case (torErr != nil) != (ourErr != nil):
			t.Errorf("%q: C tor error %v, gotor error %v\n%s", c.text, torErr, ourErr, out)
		}
	}
}
