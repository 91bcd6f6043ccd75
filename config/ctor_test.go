package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

func ctor(t *testing.T) string {
	t.Helper()
	return testnet.NeedTool(t, "tor")
}

// runCTor runs tor on a torrc and returns its output and error.
func runCTor(t *testing.T, tor, text string, args ...string) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "torrc")
	text = "DataDirectory " + dir + "\n" + text
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--hush", "--defaults-torrc", os.DevNull, "-f", path)
	return exec.Command(tor, args...).CombinedOutput()
}

// TestIntervalsAgainstCTor compares ParseInterval with the seconds C tor
// reports for the same NewCircuitPeriod value.
func TestIntervalsAgainstCTor(t *testing.T) {
	tor := ctor(t)
	for _, v := range []string{"45", "30 seconds", "1 second", "10 minutes", "10minutes", "1 hour",
		"1.5 hours", "2 days", "1 week", "2 weeks", "1 month", "0.25 days", "3 HOURS", "5 fortnights", "soon", "-5"} {
		out, err := runCTor(t, tor, "SocksPort 0\nNewCircuitPeriod "+v+"\n", "--dump-config", "full")
		got, ourErr := ParseInterval(v)
		if (err != nil) != (ourErr != nil) {
			t.Errorf("%q: C tor error %v, ours %v", v, err, ourErr)
			continue
		}
		if err != nil {
			continue
		}
		want := -1
		for _, l := range strings.Split(string(out), "\n") {
			if s, ok := strings.CutPrefix(l, "NewCircuitPeriod "); ok {
				want, _ = strconv.Atoi(s)
			}
		}
		if want < 0 {
			t.Fatalf("%q: no NewCircuitPeriod in C tor's dump:\n%s", v, out)
		}
		if got != time.Duration(want)*time.Second {
			t.Errorf("%q: ours %v, C tor %ds", v, got, want)
		}
	}
}

// TestAcceptanceAgainstCTor checks that gotor and C tor (--verify-config)
// agree on which torrcs are valid, for options gotor supports. Where
// gotor is deliberately stricter, the case says so.
func TestAcceptanceAgainstCTor(t *testing.T) {
	tor := ctor(t)
	cases := []struct {
		text          string
		gotorStricter string // why gotor refuses what C tor accepts
	}{
		{text: "SocksPort 9050\n"},
		{text: "SocksPort 127.0.0.1:9050 IsolateDestAddr IsolateDestPorts NoIsolateClientAddr SessionGroup=2\n"},
		{text: "SocksPort [::1]:9050 OnionTrafficOnly\n"},
		{text: "SocksPort auto ExtendedErrors PreferSOCKSNoAuth KeepAliveIsolateSOCKSAuth IsolateClientProtocol\n"},
		{text: "SocksPort 9050 NoIPv6Traffic PreferIPv6 NoDNSRequest\n"},
		{text: "SocksPort 9050 NoIPv4Traffic NoIPv6Traffic NoOnionTraffic\n"},
		{text: "SocksPort 9050 NoIPv4Traffic NoIPv6Traffic\n"},
		{text: "SocksPort 9050 SessionGroup=1 SessionGroup=2\n"},
		{text: "SocksPort 9050 SessionGroup=x\n"},
		{text: "SocksPort 0\nSocksPort 9051\n"},
		{text: "SocksPort 127.0.0.1\n"},
		{text: "SocksPort 99999\n"},
		{text: "SocksPort 9050 IsolateEverything\n", gotorStricter: "unknown SocksPort flags are errors (C tor warns)"},
		{text: "SocksPort 9050 NoOnionTrafficOnly\n", gotorStricter: "C tor warns and ignores the flag"},
		{text: "HTTPTunnelPort 8118\n"},
		{text: "SafeSocks 1\nSafeSocks 0\n"},
		{text: "SafeSocks 2\n"},
		{text: "SafeSocks yes\n"},
		{text: "MaxCircuitDirtiness 10 minutes\nCircuitBuildTimeout 30 seconds\nNewCircuitPeriod 30\n"},
		{text: "MaxCircuitDirtiness 10 fortnights\n"},
		{text: "ExitNodes $0123456789ABCDEF0123456789ABCDEF01234567, nick1\nStrictNodes 1\n"},
		{text: "ExcludeNodes 10.0.0.0/8\nExcludeExitNodes nick\nEntryNodes nick2\n"},
		{text: "NumEntryGuards 3\nUseEntryGuards 0\nEnforceDistinctSubnets 0\n"},
		{text: "NumEntryGuards -1\n"},
		{text: "ControlPort 9051\nCookieAuthentication 1\n"},
		{text: "ControlPort 9051\nHashedControlPassword 16:872860B76453A77D60CA2BB8C1A7042072093276A3D701AD684053EC4C\n"},
		{text: "MetricsPort 127.0.0.1:9035\nMetricsPortPolicy accept 127.0.0.1\n"},
		{text: "Log notice stdout\nLog info-err stderr\nLog [handshake]debug [*]notice syslog\n"},
		{text: "Log loud stdout\n"},
		{text: "Log notice file\n"},
		{text: "ClientOnly 1\nDisableNetwork 0\nRunAsDaemon 0\nSafeLogging 0\nAvoidDiskWrites 1\nGeoIPFile \"\"\n"},
		{text: "SocksTimeout 2 minutes\n"},
		{text: "Bogus 1\n"},
		{text: "SocksPrt 9050\n"},
		{text: "MaxCircuitDirt 5 minutes\n"},
		{text: "DirServer auth orport=9001 v3ident=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 127.0.0.1:9030 0123456789ABCDEF0123456789ABCDEF01234567\nTestingTorNetwork 1\n"},
		{text: "TestingTorNetwork 1\n"},
	}
	for _, c := range cases {
		out, torErr := runCTor(t, tor, c.text, "--verify-config")
		lines := "DataDirectory " + t.TempDir() + "\n" + c.text
		_, _, ourErr := load(t, lines)
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
