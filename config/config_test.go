package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"

	"github.com/gotor/gotor/internal/torrc"
)

const (
	fp1 = "0123456789ABCDEF0123456789ABCDEF01234567"
	fp2 = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
	id1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	id2 = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

func load(t *testing.T, text string) (*Config, []Warning, error) {
	t.Helper()
	lines, err := torrc.Parse([]byte(text), "torrc")
	if err != nil {
		t.Fatal(err)
	}
	return FromLines(lines)
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := DefaultPort("127.0.0.1:9050")
	if len(c.SocksPorts) != 1 || c.SocksPorts[0] != want {
		t.Errorf("SocksPorts %+v", c.SocksPorts)
	}
	p := c.SocksPorts[0]
	if !p.IsolateClientAddr || !p.IsolateSOCKSAuth || p.SessionGroup != -1 || !p.IPv4Traffic || !p.IPv6Traffic || !p.DNSRequest || !p.OnionTraffic {
		t.Errorf("port defaults %+v", p)
	}
	if c.MaxCircuitDirtiness != 10*time.Minute || c.NewCircuitPeriod != 30*time.Second || c.CircuitBuildTimeout != 60*time.Second {
		t.Errorf("timings %v %v %v", c.MaxCircuitDirtiness, c.NewCircuitPeriod, c.CircuitBuildTimeout)
	}
	if !c.EnableCircuitPrebuilding || !c.EnforceDistinctSubnets || !c.UseEntryGuards || c.TestingTorNetwork || len(c.DirAuthorities) != 0 {
		t.Errorf("defaults %+v", c)
	}
	if c.IsolationLevel != "none" || !c.IsolateSOCKSAuth {
		t.Errorf("isolation defaults %q %v", c.IsolationLevel, c.IsolateSOCKSAuth)
	}
	if cache, err := os.UserCacheDir(); err == nil && c.DataDirectory != filepath.Join(cache, "gotor") {
		t.Errorf("DataDirectory %q", c.DataDirectory)
	}
	// An empty torrc is the default config.
	got, warns, err := load(t, "# nothing\n")
	if err != nil || len(warns) != 0 || !reflect.DeepEqual(got, c) {
		t.Errorf("empty torrc: %+v %v %v", got, warns, err)
	}
}

// testnetTorrc is what a C tor client on gotor's private test network
// runs with (internal/testnet ClientTorrc) plus the other lines such
// torrcs commonly carry.
func testnetTorrc(dir string) string {
	return `# gotor testnet client torrc
DataDirectory ` + dir + `
SocksPort 127.0.0.1:19050
TestingTorNetwork 1
Log notice file ` + dir + `/notice.log
DirAuthority auth0 orport=40001 no-v2 v3ident=` + id1 + ` 127.0.0.1:40002 ` + fp1 + `
DirAuthority auth1 orport=40003 no-v2 v3ident=` + id2 + ` 127.0.0.1:40004 ` + fp2 + `
ControlPort 19051
CookieAuthentication 1
ExitNodes $` + fp1 + `,$` + fp2 + `
MaxCircuitDirtiness 10 minutes
SafeLogging 0
GeoIPFile ""
GeoIPv6File ""
ClientOnly 1
DisableNetwork 0
AssumeReachable 1
RunAsDaemon 0
ShutdownWaitLength 0
Log info stderr
__OwningControllerProcess 1
`
}

func TestTestnetTorrc(t *testing.T) {
	dir := t.TempDir()
	c, warns, err := load(t, testnetTorrc(dir))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDirectory != dir || len(c.SocksPorts) != 1 || c.SocksPorts[0].Addr != "127.0.0.1:19050" {
		t.Errorf("ports/datadir: %+v %q", c.SocksPorts, c.DataDirectory)
	}
	if !c.TestingTorNetwork || c.EnforceDistinctSubnets || c.ClientRejectInternalAddresses || c.ClientDNSRejectInternalAddresses {
		t.Errorf("testing defaults not applied: %+v", c)
	}
	if len(c.DirAuthorities) != 2 || !strings.HasPrefix(c.DirAuthorities[1], "auth1 ") {
		t.Errorf("DirAuthorities %q", c.DirAuthorities)
	}
	if !reflect.DeepEqual(c.ControlPorts, []ControlPortConfig{{Addr: "127.0.0.1:19051"}}) || !c.CookieAuthentication || !c.ClientOnly {
		t.Errorf("control %+v", c)
	}
	if !reflect.DeepEqual(c.ExitNodes, []string{"$" + fp1, "$" + fp2}) || c.MaxCircuitDirtiness != 10*time.Minute {
		t.Errorf("ExitNodes %q dirtiness %v", c.ExitNodes, c.MaxCircuitDirtiness)
	}
	wantLogs := []LogConfig{
		{Severity: "notice", MinSeverity: "notice", MaxSeverity: "err", Dest: "file", Path: dir + "/notice.log"},
		{Severity: "info", MinSeverity: "info", MaxSeverity: "err", Dest: "stderr"},
	}
	if !reflect.DeepEqual(c.Logs, wantLogs) {
		t.Errorf("Logs %+v", c.Logs)
	}
	var warned []string
	for _, w := range warns {
		warned = append(warned, w.Option)
		if w.File != "torrc" || w.LineNo == 0 {
			t.Errorf("warning without position: %v", w)
		}
	}
	want := []string{"SafeLogging", "GeoIPFile", "GeoIPv6File", "AssumeReachable", "ShutdownWaitLength"}
	if !reflect.DeepEqual(warned, want) {
		t.Errorf("warnings for %q, want %q", warned, want)
	}
	// Explicit settings win over the testing defaults.
	c, _, err = load(t, testnetTorrc(dir)+"EnforceDistinctSubnets 1\n")
	if err != nil || !c.EnforceDistinctSubnets || c.ClientRejectInternalAddresses {
		t.Errorf("explicit EnforceDistinctSubnets: %v %v", c.EnforceDistinctSubnets, err)
	}
}

// TestCTorAcceptsTestnetTorrc checks the torrc above is one C tor really
// accepts (tor --verify-config), so the test above proves compatibility.
func TestCTorAcceptsTestnetTorrc(t *testing.T) {
	tor := testnet.NeedTool(t, "tor")
	dir := t.TempDir()
	path := filepath.Join(dir, "torrc")
	// C tor refuses to verify with __OwningControllerProcess naming a
	// process that is not running; use our own PID.
	text := strings.Replace(testnetTorrc(dir), "__OwningControllerProcess 1", "__OwningControllerProcess "+strconv.Itoa(os.Getpid()), 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tor, "--verify-config", "--defaults-torrc", os.DevNull, "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tor --verify-config: %v\n%s", err, out)
	}
	if _, _, err := Load(path, nil); err != nil {
		t.Fatalf("gotor: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SocksPrt 9050\n", "torrc:1: SocksPrt: unknown option"},
		{"\nFooBar 1\n", "torrc:2: FooBar: unknown option"},
		{"HiddenServiceDir /x\n", "HiddenServiceDir /x has no HiddenServicePort"},
		{"HiddenServicePort 80\n", "torrc:1: HiddenServicePort: comes before any HiddenServiceDir"},
		{"HiddenServiceDir /x\nHiddenServicePort 80 example.com:80\n", "torrc:2: HiddenServicePort: target \"example.com:80\": not an IP address"},
		{"HiddenServiceDir /x\nHiddenServiceVersion 2\n", "torrc:2: HiddenServiceVersion: \"2\": only version 3"},
		{"HiddenServiceDir /x\nHiddenServiceNumIntroductionPoints 21\n", "torrc:2: HiddenServiceNumIntroductionPoints:"},
		{"RunAsDaemon 1\n", "RunAsDaemon: gotor only supports RunAsDaemon 0"},
		{"DisableNetwork 2\n", "DisableNetwork: boolean must be 0 or 1"},
		{"__OwningControllerProcess me\n", "not a process ID"},
		{"SafeSocks yes\n", "torrc:1: SafeSocks: boolean must be 0 or 1"},
		{"MaxCircuitDirtiness 10 fortnights\n", "unknown unit \"fortnights\""},
		{"MaxCircuitDirtiness 0\n", "MaxCircuitDirtiness 0s: must be between"},
		{"NewCircuitPeriod soon\n", "not a number"},
		{"SocksPort 9050 IsolateEverything\n", "torrc:1: SocksPort: unknown flag \"IsolateEverything\""},
		{"SocksPort 9050 NoOnionTrafficOnly\n", "unsupported flag"},
		{"SocksPort example.com:9050\n", "not an IP address"},
		{"SocksPort 127.0.0.1\n", "cannot parse address"},
		{"SocksPort 127.0.0.1:99999\n", "bad port"},
		{"SocksPort unix:/tmp/s\n", "unix socket"},
		{"SocksPort 9050 GroupWritable\n", "only applies to unix sockets"},
		{"SocksPort 9050 NoIPv4Traffic NoIPv6Traffic NoOnionTraffic\n", "all disabled"},
		{"SocksPort 9050 NoIPv4Traffic NoIPv6Traffic\n", "DNSRequest is enabled"},
		{"SocksPort 9050 NoIsolateSOCKSAuth KeepAliveIsolateSOCKSAuth\n", "KeepAliveIsolateSOCKSAuth"},
		{"SocksPort 9050 SessionGroup=x\n", "invalid SocksPort option"},
		{"SocksPort 9050 SessionGroup=1 SessionGroup=2\n", "multiple SessionGroup"},
		{"SocksPort 0\nSocksPort 9150\n", "torrc:2: SocksPort: a nonzero SocksPort together with \"SocksPort 0\""},
		{"SocksPort 9050\nHTTPTunnelPort 9050\n", "address already used"},
		{"DirAuthority nonsense\n", "torrc:1: DirAuthority:"},
		{"TestingTorNetwork 1\n", "TestingTorNetwork needs DirAuthority"},
		{"IsolationLevel everything\n", "torrc:1: IsolationLevel:"},
		{"IsolationLevel none,destination\n", "combines none"},
		{"ExitNodes {us}\n", "country code {us} needs GeoIP"},
		{"Log loud stdout\n", "unknown severity"},
		{"Log err-debug stdout\n", "reversed"},
		{"Log notice file\n", "missing file name"},
		{"Log notice stdout extra\n", "unexpected"},
		{"Log notice android\n", "android"},
		{"HashedControlPassword secret\n", "16:HEX"},
		{"NumEntryGuards -1\n", "non-negative"},
		{"ControlPort nowhere\n", "ControlPort: cannot parse"},
		{"MetricsPort 1.2.3:99\n", "MetricsPort:"},
		{"DataDirectory \"\"\n", "empty path"},
		{"Sock 1\n", "ambiguous abbreviation"},
	}
	for _, tt := range tests {
		_, _, err := load(t, tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.want)
		}
	}
	// All errors are reported, not just the first.
	_, _, err := load(t, "Foo 1\nSafeSocks 2\nBar 3\n")
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("joined errors: %v", err)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		in    string
		check func(c *Config) bool
	}{
		{"SocksPort 9150\nSocksPort [::1]:9151 IsolateDestAddr IsolateDestPorts NoIsolateClientAddr SessionGroup=3\n", func(c *Config) bool {
			p := c.SocksPorts
			return len(p) == 2 && p[0].Addr == "127.0.0.1:9150" && p[1].Addr == "[::1]:9151" &&
				p[1].IsolateDestAddr && p[1].IsolateDestPort && !p[1].IsolateClientAddr && p[1].IsolateSOCKSAuth && p[1].SessionGroup == 3
		}},
		{"SocksPort 0\n", func(c *Config) bool { return len(c.SocksPorts) == 0 }},
		{"SocksPort auto OnionTrafficOnly ExtendedErrors PreferSOCKSNoAuth IsolateClientProtocol IsolateClientPort KeepAliveIsolateSOCKSAuth\n", func(c *Config) bool {
			p := c.SocksPorts[0]
			return p.Addr == "127.0.0.1:0" && p.OnionTrafficOnly() && p.ExtendedErrors && p.PreferSOCKSNoAuth &&
				p.IsolateClientProtocol && p.IsolateClientPort && p.KeepAliveIsolateSOCKSAuth
		}},
		{"SocksPort localhost:9050 NoIPv6Traffic PreferIPv6 NoDNSRequest\n", func(c *Config) bool {
			p := c.SocksPorts[0]
			return p.Addr == "127.0.0.1:9050" && !p.IPv6Traffic && p.IPv4Traffic && p.PreferIPv6 && !p.DNSRequest
		}},
		{"HTTPTunnelPort 8118\n", func(c *Config) bool {
			return len(c.HTTPTunnelPorts) == 1 && c.HTTPTunnelPorts[0].Addr == "127.0.0.1:8118" && len(c.SocksPorts) == 1
		}},
		{"__SocksPort 9999\n", func(c *Config) bool { return c.SocksPorts[0].Addr == "127.0.0.1:9999" }},
		{"IsolationLevel destination,credential\nIsolateClientPort 1\nIsolateSOCKSAuth 0\nIsolateDestinations 1\nEnableCircuitPrebuilding 0\n", func(c *Config) bool {
			return c.IsolationLevel == "destination,credential" && c.IsolateClientPort && !c.IsolateSOCKSAuth && c.IsolateDestinations && !c.EnableCircuitPrebuilding
		}},
		{"CircuitBuildTimeout 1.5 minutes\nNewCircuitPeriod 45\nSocksTimeout 1 hour\n", func(c *Config) bool {
			return c.CircuitBuildTimeout == 90*time.Second && c.NewCircuitPeriod == 45*time.Second && c.SocksTimeout == time.Hour
		}},
		{"EntryNodes a, b ,c\nExcludeNodes 10.0.0.0/8\nExcludeExitNodes $" + fp1 + "\nStrictNodes 1\n", func(c *Config) bool {
			return reflect.DeepEqual(c.EntryNodes, []string{"a", "b", "c"}) && c.ExcludeNodes[0] == "10.0.0.0/8" &&
				c.ExcludeExitNodes[0] == "$"+fp1 && c.StrictNodes
		}},
		{"SafeSocks 1\nNumEntryGuards 3\nUseEntryGuards 0\nEnforceDistinctSubnets 0\n", func(c *Config) bool {
			return c.SafeSocks && c.NumEntryGuards == 3 && !c.UseEntryGuards && !c.EnforceDistinctSubnets
		}},
		{"ControlPort 0\nMetricsPort 127.0.0.1:9035\nMetricsPortPolicy accept 127.0.0.1\nHashedControlPassword 16:ABCD\nCookieAuthFile /x/cookie\n", func(c *Config) bool {
			return len(c.ControlPorts) == 0 && c.MetricsPort == "127.0.0.1:9035" && c.MetricsPortPolicy[0] == "accept 127.0.0.1" &&
				c.HashedControlPassword[0] == "16:ABCD" && c.CookieAuthFile == "/x/cookie"
		}},
		{"Log [handshake]debug [*]notice-warn syslog\nl info file /var/log/tor log.txt\n", func(c *Config) bool {
			return len(c.Logs) == 2 && c.Logs[0].MinSeverity == "notice" && c.Logs[0].MaxSeverity == "warn" && c.Logs[0].Dest == "syslog" &&
				c.Logs[1].Path == "/var/log/tor log.txt" && c.Logs[1].MinSeverity == "info"
		}},
		{"Log notice\n", func(c *Config) bool { return c.Logs[0].Dest == "stdout" }},
		{"DirServer auth orport=1 v3ident=" + id1 + " 127.0.0.1:2 " + fp1 + "\n", func(c *Config) bool { return len(c.DirAuthorities) == 1 }},
		{"socksport 9150\nSAFESOCKS 1\n", func(c *Config) bool { return c.SocksPorts[0].Addr == "127.0.0.1:9150" && c.SafeSocks }},
		{"ExitNodes a\n/ExitNodes\n", func(c *Config) bool { return c.ExitNodes == nil }},
		{"SafeSocks 1\nSafeSocks 0\n", func(c *Config) bool { return !c.SafeSocks }},
		{"UseMicrodescriptors auto\nTestingClientDownloadInitialDelay 0\nAllowDotExit 1\n", func(c *Config) bool { return true }},
	}
	for _, tt := range tests {
		c, _, err := load(t, tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("%q: got %+v", tt.in, c)
		}
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct{ in, option, msg string }{
		{"AvoidDiskWrites 1\n", "AvoidDiskWrites", "ignored"},
		{"SafeSocks 1\nSafeSocks 1\n", "SafeSocks", "more than once"},
		{"MaxCircuitDirt 5 minutes\n", "MaxCircuitDirt", "abbreviation"},
		{"AllowDotExit 1\n", "AllowDotExit", "obsolete"},
		{"TestingClientDownloadInitialDelay 0\n", "TestingClientDownloadInitialDelay", "test-network"},
		{"SocksPort 9050 CacheDNS\n", "SocksPort", "DNS cache"},
	}
	for _, tt := range tests {
		_, warns, err := load(t, tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if len(warns) != 1 || warns[0].Option != tt.option || !strings.Contains(warns[0].Msg, tt.msg) {
			t.Errorf("%q: warnings %v", tt.in, warns)
		}
	}
}

func TestParseInterval(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true},
		{"30 seconds", 30 * time.Second, true},
		{"1 second", time.Second, true},
		{"10 minutes", 10 * time.Minute, true},
		{"10minutes", 10 * time.Minute, true},
		{"1 hour", time.Hour, true},
		{"2 days", 48 * time.Hour, true},
		{"1 week", 7 * 24 * time.Hour, true},
		{"1 MONTH", 2629728 * time.Second, true},
		{"0.5 hours", 30 * time.Minute, true},
		{"", 0, false},
		{"-5", 0, false},
		{"5 lightyears", 0, false},
		{"1e3", 0, false},
		{"99999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseInterval(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseInterval(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestPortMerge(t *testing.T) {
	c := DefaultConfig()
	c.IsolationLevel = "destination,port"
	c.IsolateSOCKSAuth = false
	p := c.Port(DefaultPort("127.0.0.1:1"))
	if !p.IsolateDestAddr || !p.IsolateDestPort || !p.IsolateClientPort || !p.IsolateClientAddr || !p.IsolateSOCKSAuth {
		t.Errorf("merged %+v", p)
	}
	c = DefaultConfig()
	p = PortConfig{Addr: "127.0.0.1:1"}
	if got := c.Port(p); !got.IsolateSOCKSAuth || got.IsolateDestAddr {
		t.Errorf("default merge %+v", got)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	defaults := filepath.Join(dir, "defaults")
	main := filepath.Join(dir, "torrc")
	write(t, defaults, "SocksPort 9001\nExitNodes a\nLog notice stdout\nSafeSocks 1\n")
	write(t, main, "SocksPort 9002\nSocksPort 9003\n+Log info file "+dir+"/info.log\nNumEntryGuards 2\n")
	c, warns, err := Load("", []string{"-f", main, "--defaults-torrc", defaults, "--SocksPort", "9004", "+SocksPort", "9005", "/ExitNodes", "NumEntryGuards", "5"})
	if err != nil {
		t.Fatal(err, warns)
	}
	var ports []string
	for _, p := range c.SocksPorts {
		ports = append(ports, p.Addr)
	}
	// The command line's first SocksPort replaces the torrc's; its second
	// uses "+" but only the first line of a source decides.
	if !reflect.DeepEqual(ports, []string{"127.0.0.1:9004", "127.0.0.1:9005"}) {
		t.Errorf("ports %v", ports)
	}
	if len(c.Logs) != 2 || c.Logs[0].Dest != "stdout" || c.Logs[1].Dest != "file" {
		t.Errorf("logs appended: %+v", c.Logs)
	}
	if c.ExitNodes != nil || !c.SafeSocks || c.NumEntryGuards != 5 {
		t.Errorf("precedence: %+v", c)
	}

	// path argument, missing files.
	if _, _, err := Load(main, nil); err != nil {
		t.Error(err)
	}
	if _, _, err := Load(filepath.Join(dir, "nope"), nil); err == nil {
		t.Error("missing torrc accepted")
	}
	if _, _, err := Load(filepath.Join(dir, "nope"), []string{"--ignore-missing-torrc"}); err != nil {
		t.Errorf("--ignore-missing-torrc: %v", err)
	}
	if c, _, err := Load("", []string{"--defaults-torrc", filepath.Join(dir, "nope")}); err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("missing defaults file: %v", err)
	}
	if _, _, err := Load("", []string{"--SocksPort"}); err == nil {
		t.Error("dangling option accepted")
	}
	// Errors carry the file and line.
	write(t, main, "SocksPort 9002\n\nBogus 1\n")
	if _, _, err := Load(main, nil); err == nil || !strings.Contains(err.Error(), main+":3: Bogus") {
		t.Errorf("error position: %v", err)
	}
	write(t, main, "Bogus 1\nSafeSocks 1\nAlsoBogus 2\n")
	if _, _, err := Load(main, nil); err == nil || !strings.Contains(err.Error(), ":1: Bogus") || !strings.Contains(err.Error(), ":3: AlsoBogus") {
		t.Errorf("all unknown options reported: %v", err)
	}
	if _, _, err := Load("", []string{"Bogus", "1"}); err == nil || !strings.Contains(err.Error(), "command line argument 1: Bogus") {
		t.Errorf("command-line error position: %v", err)
	}
}

func TestValidateGoConfig(t *testing.T) {
	c := DefaultConfig()
	c.SocksPorts = append(c.SocksPorts, PortConfig{Addr: "localhost:1", IPv4Traffic: true})
	c.Logs = []LogConfig{{MinSeverity: "info", Dest: "stderr"}}
	c.IsolationLevel = "bogus"
	c.NumEntryGuards = -1
	err := c.Validate()
	for _, want := range []string{"localhost:1", "IsolationLevel", "NumEntryGuards"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	c = DefaultConfig()
	c.UseTestingTorNetwork()
	if err := c.Validate(); err == nil {
		t.Error("TestingTorNetwork without authorities accepted")
	}
	c.DirAuthorities = []string{"a orport=1 v3ident=" + id1 + " 127.0.0.1:2 " + fp1}
	if err := c.Validate(); err != nil || c.EnforceDistinctSubnets {
		t.Errorf("testing network: %v", err)
	}
}

// TestOptionTables checks that every option gotor names in its tables is
// a real C tor option (or a gotor extension), and that docs/TORRC.md
// documents every option gotor implements or ignores.
func TestOptionTables(t *testing.T) {
	ctor := map[string]bool{}
	for _, n := range cTorOptions {
		ctor[n] = true
	}
	for _, n := range gotorOnly {
		ctor[n] = true
	}
	doc, err := os.ReadFile("../docs/TORRC.md")
	if err != nil {
		t.Fatal(err)
	}
	check := func(n string) {
		if !ctor[n] {
			t.Errorf("%s is not a C tor option", n)
		}
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("docs/TORRC.md does not mention `%s`", n)
		}
	}
	for n := range options {
		check(n)
	}
	for n := range ignored {
		check(n)
	}
	for n := range acceptedAtDefault {
		check(n)
	}
	for _, n := range aliases {
		if known[strings.ToLower(n)] != n {
			t.Errorf("alias target %s unknown", n)
		}
	}
}
