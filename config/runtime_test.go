package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/torrc"
)

// Every implemented option has its type for config/names.
func TestOptionTypes(t *testing.T) {
	for n := range options {
		if optionTypes[n] == "" {
			t.Errorf("option %s has no type", n)
		}
	}
	for n := range optionTypes {
		if _, ok := options[n]; !ok {
			t.Errorf("type for %s, which is not an implemented option", n)
		}
	}
}

// richTorrc sets every implemented option to something other than its
// default.
func richTorrc(dir string) string {
	return `DataDirectory ` + dir + `
SocksPort 127.0.0.1:9150 IsolateDestAddr NoIsolateClientAddr SessionGroup=2 ExtendedErrors
SocksPort [::1]:0 OnionTrafficOnly PreferSOCKSNoAuth IsolateClientProtocol IsolateClientPort KeepAliveIsolateSOCKSAuth IsolateDestPort
SocksPort 9152 NoIPv6Traffic PreferIPv6 NoIsolateSOCKSAuth
HTTPTunnelPort 8118 NoIPv4Traffic
ControlPort 9051
ControlPort unix:"/tmp/a b/ctl" GroupWritable
MetricsPort 127.0.0.1:9035
MetricsPortPolicy accept 127.0.0.1
DisableNetwork 1
TestingTorNetwork 1
DirAuthority auth0 orport=40001 no-v2 v3ident=` + id1 + ` 127.0.0.1:40002 ` + fp1 + `
IsolationLevel destination,credential
IsolateDestinations 1
IsolateSOCKSAuth 0
IsolateClientPort 1
EnableCircuitPrebuilding 0
MaxCircuitDirtiness 90.5 seconds
CircuitBuildTimeout 2 minutes
NewCircuitPeriod 10
SocksTimeout 1 hour
ExitNodes $` + fp1 + `,exit2
EntryNodes 10.0.0.0/8
ExcludeNodes bad1
ExcludeExitNodes bad2
StrictNodes 1
EnforceDistinctSubnets 1
ClientOnionAuthDir ` + dir + `/auth
SafeSocks 1
UseEntryGuards 0
NumEntryGuards 2
ClientOnly 1
CookieAuthentication 1
CookieAuthFile ` + dir + `/cookie
CookieAuthFileGroupReadable 1
HashedControlPassword 16:ABCD
HashedControlPassword 16:EF01
ControlPortWriteToFile "` + dir + `/port #1"
ControlPortFileGroupReadable 1
Log notice file ` + dir + `/notice.log
Log [handshake]debug [*]info-warn stderr
__OwningControllerProcess 4242
__ReloadTorrcOnSIGHUP 0
GeoIPFile /usr/share/tor/geoip
SafeLogging 0
HiddenServiceDir ` + dir + `/hs1
HiddenServicePort 80 127.0.0.1:8080
HiddenServicePort 22
HiddenServiceMaxStreams 5
HiddenServiceDir ` + dir + `/hs2
HiddenServicePort 443 unix:/tmp/web.sock
HiddenServiceEnableIntroDoSDefense 1
`
}

// The configuration as lines reads back to the same configuration, for
// the defaults, a test network client and every option set.
func TestLinesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"empty": "", "testnet": testnetTorrc(dir), "rich": richTorrc(dir)} {
		c, _, err := load(t, text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, _, err := FromLines(c.lines(true))
		if err != nil {
			t.Fatalf("%s: lines do not load: %v\n%v", name, err, c.lines(true))
		}
		if !reflect.DeepEqual(back, c) {
			t.Errorf("%s: round trip differs:\n got %+v\nwant %+v", name, back, c)
		}
		// Text is a torrc: without the hidden options it loads to c with
		// those options at their defaults.
		lines, err := torrc.Parse([]byte(c.Text()), "saved")
		if err != nil {
			t.Fatalf("%s: Text does not parse: %v\n%s", name, err, c.Text())
		}
		fromText, _, err := FromLines(lines)
		if err != nil {
			t.Fatalf("%s: Text does not load: %v\n%s", name, err, c.Text())
		}
		want := c.Clone()
		want.OwningControllerProcess, want.ReloadTorrcOnSIGHUP = 0, true
		for i := range fromText.ignored {
			fromText.ignored[i].File, fromText.ignored[i].LineNo = want.ignored[i].File, want.ignored[i].LineNo
		}
		if !reflect.DeepEqual(fromText, want) {
			t.Errorf("%s: Text round trip differs:\n%s\n got %+v\nwant %+v", name, c.Text(), fromText, want)
		}
		if strings.Contains(c.Text(), "__") {
			t.Errorf("%s: Text shows a hidden option:\n%s", name, c.Text())
		}
	}
	if txt := DefaultConfig().Text(); txt != "" {
		t.Errorf("default config as text: %q", txt)
	}
}

func TestGet(t *testing.T) {
	c, _, err := load(t, richTorrc(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, name string
		want      []string
	}{
		{"socksport", "SocksPort", []string{"127.0.0.1:9150 NoIsolateClientAddr IsolateDestAddr SessionGroup=2 ExtendedErrors",
			"[::1]:auto IsolateClientProtocol IsolateDestPort IsolateClientPort KeepAliveIsolateSOCKSAuth OnionTrafficOnly PreferSOCKSNoAuth",
			"127.0.0.1:9152 NoIsolateSOCKSAuth NoIPv6Traffic PreferIPv6"}},
		{"MaxCircuitDirtiness", "MaxCircuitDirtiness", []string{"90.5"}},
		{"SocksTimeout", "SocksTimeout", []string{"3600"}},
		{"ExitNodes", "ExitNodes", []string{"$" + fp1 + ",exit2"}},
		{"StrictNodes", "StrictNodes", []string{"1"}},
		{"UseEntryGuards", "UseEntryGuards", []string{"0"}},
		{"ControlPort", "ControlPort", []string{"127.0.0.1:9051", `unix:"/tmp/a b/ctl" GroupWritable`}},
		{"__owningcontrollerprocess", "__OwningControllerProcess", []string{"4242"}},
		{"DisableNetwork", "DisableNetwork", []string{"1"}},
		{"GeoIPFile", "GeoIPFile", []string{"/usr/share/tor/geoip"}},
		{"Log", "Log", []string{"notice file " + c.DataDirectory + "/notice.log", "[handshake]debug [*]info-warn stderr"}},
		{"l", "Log", []string{"notice file " + c.DataDirectory + "/notice.log", "[handshake]debug [*]info-warn stderr"}},
		{"MaxCircuitDirt", "MaxCircuitDirtiness", []string{"90.5"}},
		// Unset, accepted at default, not implemented:
		{"GeoIPv6File", "GeoIPv6File", nil},
		{"ORPort", "ORPort", nil},
		{"RunAsDaemon", "RunAsDaemon", []string{"0"}},
		{"Bridge", "Bridge", nil},
		{"Nickname", "Nickname", nil},
	}
	for _, tt := range tests {
		name, vals, err := c.Get(tt.key)
		if err != nil || name != tt.name || !slices.Equal(vals, tt.want) {
			t.Errorf("Get(%q) = %q %q %v, want %q %q", tt.key, name, vals, err, tt.name, tt.want)
		}
	}
	d := DefaultConfig()
	for key, want := range map[string][]string{"SocksPort": {"127.0.0.1:9050"}, "HTTPTunnelPort": nil,
		"MaxCircuitDirtiness": {"600"}, "ExitNodes": {""}, "IsolationLevel": {"none"}, "__OwningControllerProcess": nil,
		"__ReloadTorrcOnSIGHUP": {"1"}, "DisableNetwork": {"0"}} {
		if _, vals, err := d.Get(key); err != nil || !slices.Equal(vals, want) {
			t.Errorf("default Get(%q) = %q %v, want %q", key, vals, err, want)
		}
	}
	noSocks, _, _ := load(t, "SocksPort 0\n")
	if _, vals, _ := noSocks.Get("SocksPort"); !slices.Equal(vals, []string{"0"}) {
		t.Errorf("SocksPort 0 shows as %q", vals)
	}
	for _, bad := range []string{"NoSuchOption", "", "Sock"} {
		if _, _, err := c.Get(bad); !errors.Is(err, ErrUnknownOption) {
			t.Errorf("Get(%q): %v, want ErrUnknownOption", bad, err)
		}
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	base, _, err := load(t, testnetTorrc(dir))
	if err != nil {
		t.Fatal(err)
	}
	orig := base.Clone()
	apply := func(changes ...Change) *Config {
		t.Helper()
		c, _, err := base.Apply(changes)
		if err != nil {
			t.Fatalf("Apply(%+v): %v", changes, err)
		}
		return c
	}
	c := apply(Change{Key: "SocksPort", Values: []string{"9150", "127.0.0.1:9151 IsolateDestAddr"}})
	if len(c.SocksPorts) != 2 || c.SocksPorts[0].Addr != "127.0.0.1:9150" || !c.SocksPorts[1].IsolateDestAddr {
		t.Errorf("SETCONF SocksPort: %+v", c.SocksPorts)
	}
	if c.DataDirectory != base.DataDirectory || !c.TestingTorNetwork || len(c.DirAuthorities) != 2 || c.EnforceDistinctSubnets {
		t.Errorf("SETCONF SocksPort changed other options: %+v", c)
	}
	if c := apply(Change{Key: "SocksPort", Reset: true}); !reflect.DeepEqual(c.SocksPorts, DefaultConfig().SocksPorts) {
		t.Errorf("RESETCONF SocksPort: %+v", c.SocksPorts)
	}
	if c := apply(Change{Key: "SocksPort"}); !reflect.DeepEqual(c.SocksPorts, DefaultConfig().SocksPorts) {
		t.Errorf("SETCONF SocksPort (no value): %+v", c.SocksPorts)
	}
	if c := apply(Change{Key: "SocksPort", Values: []string{"0"}}); len(c.SocksPorts) != 0 {
		t.Errorf("SETCONF SocksPort=0: %+v", c.SocksPorts)
	}
	// Booleans: no value is 0, RESETCONF is the default.
	if c := apply(Change{Key: "UseEntryGuards"}); c.UseEntryGuards {
		t.Error("SETCONF UseEntryGuards (no value) left it on")
	}
	if c := apply(Change{Key: "UseEntryGuards", Values: []string{"0"}}, Change{Key: "UseEntryGuards", Reset: true}); !c.UseEntryGuards {
		t.Error("RESETCONF UseEntryGuards did not restore the default")
	}
	// The last change of a key wins; several keys change together.
	c = apply(Change{Key: "MaxCircuitDirtiness", Values: []string{"30"}}, Change{Key: "exitnodes", Values: []string{"a,b"}},
		Change{Key: "DisableNetwork", Values: []string{"1"}}, Change{Key: "__OwningControllerProcess", Values: []string{"77"}})
	if c.MaxCircuitDirtiness != 30*time.Second || !slices.Equal(c.ExitNodes, []string{"a", "b"}) || !c.DisableNetwork || c.OwningControllerProcess != 77 {
		t.Errorf("several changes: %v %q %v %d", c.MaxCircuitDirtiness, c.ExitNodes, c.DisableNetwork, c.OwningControllerProcess)
	}
	if c2, _, err := c.Apply([]Change{{Key: "__OwningControllerProcess", Reset: true}}); err != nil || c2.OwningControllerProcess != 0 {
		t.Errorf("RESETCONF __OwningControllerProcess: %d %v", c2.OwningControllerProcess, err)
	}
	// Under TestingTorNetwork the testing defaults are the defaults; without
	// it C tor's.
	if c := apply(Change{Key: "EnforceDistinctSubnets", Reset: true}); c.EnforceDistinctSubnets {
		t.Error("RESETCONF EnforceDistinctSubnets under TestingTorNetwork is 1")
	}
	if c := apply(Change{Key: "TestingTorNetwork", Values: []string{"0"}}); c.TestingTorNetwork || !c.EnforceDistinctSubnets {
		t.Errorf("TestingTorNetwork 0 kept the testing defaults: %+v", c)
	}
	// Ignored options are kept, with a warning.
	c, warns, err := base.Apply([]Change{{Key: "GeoIPv6File", Values: []string{"/g6"}}})
	if err != nil || len(warns) != 1 || warns[0].Option != "GeoIPv6File" {
		t.Errorf("ignored option: %v %v", warns, err)
	}
	if _, v, _ := c.Get("GeoIPv6File"); !slices.Equal(v, []string{"/g6"}) {
		t.Errorf("ignored option after SETCONF: %q", v)
	}
	if _, v, _ := c.Get("GeoIPFile"); !slices.Equal(v, []string{""}) {
		t.Errorf("ignored option from the torrc: %q", v)
	}

	// Errors: unknown key, bad value, invalid whole; nothing changes.
	_, _, err = base.Apply([]Change{{Key: "SocksPort", Values: []string{"9999"}}, {Key: "NoSuchThing", Values: []string{"1"}}})
	if !errors.Is(err, ErrUnknownOption) {
		t.Errorf("unknown key: %v", err)
	}
	var oe *OptionError
	_, _, err = base.Apply([]Change{{Key: "SafeSocks", Values: []string{"maybe"}}})
	if !errors.As(err, &oe) || oe.Option != "SafeSocks" {
		t.Errorf("bad value: %v", err)
	}
	_, _, err = base.Apply([]Change{{Key: "TCPProxy", Values: []string{"haproxy 1.2.3.4:443"}}})
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("unsupported option: %v", err)
	}
	_, _, err = base.Apply([]Change{{Key: "DirAuthority"}})
	if err == nil || errors.As(err, &oe) || !strings.Contains(err.Error(), "TestingTorNetwork needs DirAuthority") {
		t.Errorf("invalid configuration: %v", err)
	}
	_, _, err = base.Apply([]Change{{Key: "SocksPort", Values: []string{"9050"}}, {Key: "HTTPTunnelPort", Values: []string{"9050"}}})
	if err == nil || errors.As(err, &oe) {
		t.Errorf("two listeners on one address: %v", err)
	}
	if !reflect.DeepEqual(base, orig) {
		t.Error("Apply modified its receiver")
	}
}

func TestOptionsAndDefaults(t *testing.T) {
	opts := Options()
	if len(opts) != len(options) || opts[0].Name != "Bridge" {
		t.Errorf("Options: %v", opts)
	}
	for _, o := range opts {
		if o.Type == "" {
			t.Errorf("%s has no type", o.Name)
		}
	}
	defs := DefaultLines()
	for _, want := range []string{"SocksPort 127.0.0.1:9050", "MaxCircuitDirtiness 600", "UseEntryGuards 1", "__ReloadTorrcOnSIGHUP 1"} {
		if !slices.Contains(defs, want) {
			t.Errorf("DefaultLines lacks %q: %q", want, defs)
		}
	}
}

func TestLoadString(t *testing.T) {
	dir := t.TempDir()
	defaults := filepath.Join(dir, "defaults")
	os.WriteFile(defaults, []byte("SafeSocks 1\nNumEntryGuards 4\n"), 0o600)
	c, _, err := LoadString("SocksPort 9150\nNumEntryGuards 2\n", "LOADCONF",
		[]string{"--defaults-torrc", defaults, "-f", "/nonexistent", "--MaxCircuitDirtiness", "30"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SocksPorts[0].Addr != "127.0.0.1:9150" || !c.SafeSocks || c.NumEntryGuards != 2 || c.MaxCircuitDirtiness != 30*time.Second {
		t.Errorf("LoadString: %+v", c)
	}
	if _, _, err := LoadString("SocksPort 9150\nBogus 1\n", "LOADCONF", nil); err == nil || !strings.Contains(err.Error(), "LOADCONF:2: Bogus") {
		t.Errorf("LoadString error: %v", err)
	}
}

func TestUsesInclude(t *testing.T) {
	dir := t.TempDir()
	plain, inc := filepath.Join(dir, "plain"), filepath.Join(dir, "inc")
	os.WriteFile(plain, []byte("SocksPort 9050\n# %include nothing\n"), 0o600)
	os.WriteFile(inc, []byte("SocksPort 9050\n%include "+plain+"\n"), 0o600)
	if u, err := UsesInclude(plain); err != nil || u {
		t.Errorf("plain: %v %v", u, err)
	}
	if u, err := UsesInclude(inc); err != nil || !u {
		t.Errorf("with %%include: %v %v", u, err)
	}
}

func TestChanges(t *testing.T) {
	old, _, err := load(t, "ExitNodes a,b\nSocksPort 9150\nSafeLogging 0\n")
	if err != nil {
		t.Fatal(err)
	}
	nc, _, err := old.Apply([]Change{{Key: "ExitNodes"}, {Key: "SocksPort", Values: []string{"9151", "9152"}},
		{Key: "SafeLogging", Values: []string{"1"}}, {Key: "UseEntryGuards", Values: []string{"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ExitNodes", "SocksPort=127.0.0.1:9151", "SocksPort=127.0.0.1:9152", "SafeLogging=1"}
	if got := Changes(old, nc); !slices.Equal(got, want) {
		t.Errorf("Changes %q, want %q", got, want)
	}
	if got := Changes(nc, nc); len(got) != 0 {
		t.Errorf("no change: %q", got)
	}
}
