package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gotor/gotor/internal/torrc"
)

// TestDumpCoversEveryOption: every option gotor implements prints in a
// dump, so --dump-config and the option table cannot drift apart.
func TestDumpCoversEveryOption(t *testing.T) {
	for _, n := range OptionNames() {
		if _, ok := dumpers[n]; !ok {
			t.Errorf("option %s has no dumper", n)
		}
	}
	for n := range dumpers {
		if _, ok := options[n]; !ok {
			t.Errorf("dumper %s is not an option", n)
		}
	}
}

const testAuthority = "auth0 orport=5000 no-v2 v3ident=0123456789ABCDEF0123456789ABCDEF01234567 127.0.0.1:7000 0123456789ABCDEF0123456789ABCDEF01234567"

const dumpTorrc = `DataDirectory /tmp/gotor-dump
SocksPort 9150 IsolateDestAddr SessionGroup=3
SocksPort [::1]:auto NoIsolateClientAddr OnionTrafficOnly ExtendedErrors
SocksPort 127.0.0.1:9151 NoIPv6Traffic PreferIPv6 KeepAliveIsolateSOCKSAuth PreferSOCKSNoAuth NoDNSRequest
HTTPTunnelPort auto IsolateClientProtocol IsolateDestPort IsolateClientPort
TestingTorNetwork 1
DirAuthority ` + testAuthority + `
IsolationLevel destination,credential
MaxCircuitDirtiness 5 minutes
CircuitBuildTimeout 1.5 minutes
SocksTimeout 1 hour
ExitNodes $0123456789ABCDEF0123456789ABCDEF01234567,exit1
ExcludeNodes 10.0.0.0/8
StrictNodes 1
UseEntryGuards 0
NumEntryGuards 2
SafeSocks 1
ControlPort 9051
ControlSocket /tmp/gotor-dump/control
CookieAuthentication 1
CookieAuthFile /tmp/gotor-dump/cookie
HashedControlPassword 16:2A46245071CB9B746019D53533391D803819594F8B494486A81097DAB7
MetricsPort 9035
MetricsPortPolicy accept 127.0.0.1
Log [handshake]debug [*]notice file /tmp/gotor-dump/notice.log
Log warn stderr
`

func loadText(t *testing.T, text string) *Config {
	t.Helper()
	lines, err := torrc.Parse([]byte(text), "torrc")
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := FromLines(lines)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return c
}

// TestDumpRoundTrip: a full and a short dump read back to the same
// configuration.
func TestDumpRoundTrip(t *testing.T) {
	for _, text := range []string{dumpTorrc, "SocksPort 0\nDataDirectory /x\n", ""} {
		c := loadText(t, text)
		for _, defaults := range []*Config{nil, DefaultConfig()} {
			dump := c.Dump(defaults)
			back := loadText(t, strings.Join(dump, "\n")+"\n")
			if !reflect.DeepEqual(c, back) {
				t.Errorf("dump (defaults %v) does not read back:\n%s\ngot  %+v\nwant %+v", defaults != nil, strings.Join(dump, "\n"), back, c)
			}
		}
	}
}

// TestDumpShort: the short dump lists exactly what differs from the
// defaults, with values in C tor's form.
func TestDumpShort(t *testing.T) {
	c := loadText(t, "DataDirectory /x\nSocksPort 9050\nMaxCircuitDirtiness 5 minutes\nSafeSocks 0\nUseEntryGuards 0\n")
	want := []string{"DataDirectory /x", "MaxCircuitDirtiness 300", "UseEntryGuards 0"}
	if got := c.Dump(DefaultConfig()); !slices.Equal(got, want) {
		t.Errorf("short dump %q, want %q", got, want)
	}
	if got := DefaultConfig().Dump(DefaultConfig()); len(got) != 0 {
		t.Errorf("short dump of the defaults: %q", got)
	}
	// C tor's testing defaults are not differences.
	tn := loadText(t, "DataDirectory /x\nTestingTorNetwork 1\nDirAuthority "+testAuthority+"\n")
	for _, l := range tn.Dump(DefaultConfig()) {
		if strings.HasPrefix(l, "EnforceDistinctSubnets") || strings.HasPrefix(l, "ClientRejectInternalAddresses") {
			t.Errorf("short dump of a testing network lists %q", l)
		}
	}
	full := strings.Join(DefaultConfig().Dump(nil), "\n")
	for _, l := range []string{"SocksPort 127.0.0.1:9050", "ExitNodes\n", "MaxCircuitDirtiness 600", "UseEntryGuards 1"} {
		if !strings.Contains(full+"\n", l) {
			t.Errorf("full dump lacks %q:\n%s", l, full)
		}
	}
}

// TestPortConfigString: every flag combination reads back.
func TestPortConfigString(t *testing.T) {
	for _, v := range []string{
		"9050", "auto", "[::1]:9050", "127.0.0.1:auto", "9050 NoIsolateClientAddr NoIsolateSOCKSAuth",
		"9050 IsolateDestAddr IsolateDestPort IsolateClientProtocol IsolateClientPort SessionGroup=0",
		"9050 OnionTrafficOnly", "9050 NoIPv4Traffic", "9050 NoOnionTraffic", "9050 NoIPv6Traffic NoDNSRequest",
		"9050 KeepAliveIsolateSOCKSAuth ExtendedErrors PreferSOCKSNoAuth PreferIPv6",
	} {
		p, _, err := ParsePortConfig(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		back, _, err := ParsePortConfig(portString(*p))
		if err != nil || !reflect.DeepEqual(p, back) {
			t.Errorf("%q -> %q -> %+v, %v; want %+v", v, portString(*p), back, err, p)
		}
	}
}

// TestControlSocket: C tor's ControlSocket is a Unix control listener,
// kept apart from ControlPort's values while loading;
// ControlSocketsGroupWritable applies to every Unix listener, whichever
// line comes first.
func TestControlSocket(t *testing.T) {
	for _, args := range [][]string{
		{"ControlSocket", "/run/gotor/control", "ControlPort", "9051", "ControlSocketsGroupWritable", "1", "+ControlPort", "unix:/run/gotor/c2"},
		{"ControlSocketsGroupWritable", "1", "ControlPort", "9051", "+ControlPort", "unix:/run/gotor/c2", "ControlSocket", "/run/gotor/control"},
	} {
		c, _, err := Load("", args)
		if err != nil {
			t.Fatal(err)
		}
		want := []ControlPortConfig{{Addr: "127.0.0.1:9051"}, {Unix: "/run/gotor/c2", GroupWritable: true}, {Unix: "/run/gotor/control", GroupWritable: true}}
		if !reflect.DeepEqual(c.ControlPorts, want) {
			t.Errorf("%q: ControlPorts %+v, want %+v", args, c.ControlPorts, want)
		}
	}
	c, _, err := Load("", []string{"ControlSocket", "0"})
	if err != nil || len(c.ControlPorts) != 0 {
		t.Errorf("ControlSocket 0: %+v, %v", c.ControlPorts, err)
	}
	c, _, err = Load("", []string{"ControlSocket", "/s GroupWritable"})
	if err != nil || !reflect.DeepEqual(c.ControlPorts, []ControlPortConfig{{Unix: "/s", GroupWritable: true}}) {
		t.Errorf("ControlSocket with a flag: %+v, %v", c.ControlPorts, err)
	}
	// A command-line ControlSocket replaces the torrc's, not its ControlPort.
	dir := t.TempDir()
	torrcPath := filepath.Join(dir, "torrc")
	os.WriteFile(torrcPath, []byte("ControlPort 9051\nControlSocket /a\n"), 0o600)
	c, _, err = Load(torrcPath, []string{"ControlSocket", "/b"})
	if err != nil || !reflect.DeepEqual(c.ControlPorts, []ControlPortConfig{{Addr: "127.0.0.1:9051"}, {Unix: "/b"}}) {
		t.Errorf("command-line ControlSocket: %+v, %v", c.ControlPorts, err)
	}
}

// TestLoadWithStdin: "-f -" reads the given text as the torrc, named
// <stdin>, below the command line; Load alone refuses it.
func TestLoadWithStdin(t *testing.T) {
	args := []string{"-f", "-", "--SocksPort", "9999"}
	c, _, err := LoadWithStdin(args, []byte("SocksPort 9150\nDataDirectory /tmp/stdin-dd\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDirectory != "/tmp/stdin-dd" || len(c.SocksPorts) != 1 || c.SocksPorts[0].Addr != "127.0.0.1:9999" {
		t.Errorf("got DataDirectory %q SocksPorts %+v", c.DataDirectory, c.SocksPorts)
	}
	if _, _, err := LoadWithStdin(args, []byte("DataDirectory /x\nBogus 1\n")); err == nil || !strings.Contains(err.Error(), "<stdin>:2") {
		t.Errorf("error %v, want one naming <stdin>:2", err)
	}
	if _, _, err := Load("", args); err == nil || !strings.Contains(err.Error(), "LoadWithStdin") {
		t.Errorf("Load with -f -: %v", err)
	}
	// A file named "-" is still a file for --defaults-torrc.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "-"), []byte("SafeSocks 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	c, _, err = LoadWithStdin([]string{"--defaults-torrc", "-", "-f", "-"}, []byte("DataDirectory /x\n"))
	if err != nil || !c.SafeSocks {
		t.Errorf("defaults file named -: SafeSocks %v, %v", c != nil && c.SafeSocks, err)
	}
}
