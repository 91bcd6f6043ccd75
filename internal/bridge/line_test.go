package bridge

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	const fp = "D9A82D2F9C2F65A18407B1D2B764F130847F8B5D"
	cases := []struct {
		in        string
		transport string
		addr      string
		fp        bool
		args      string
	}{
		{"192.0.2.1:9001", "", "192.0.2.1:9001", false, ""},
		{"192.0.2.1", "", "192.0.2.1:443", false, ""},
		{"192.0.2.1:9001 " + fp, "", "192.0.2.1:9001", true, ""},
		// Without a transport, the fingerprint may be written in groups.
		{"192.0.2.1:9001 D9A8 2D2F 9C2F 65A1 8407 B1D2 B764 F130 847F 8B5D", "", "192.0.2.1:9001", true, ""},
		{"[2001:db8::1]:443 " + fp, "", "[2001:db8::1]:443", true, ""},
		{"[2001:db8::1]", "", "[2001:db8::1]:443", false, ""},
		{"obfs4 192.0.2.2:38224 " + fp + " cert=bjRaMrr1BRiAW8IE9U5z27fQaYgOhX1UCmOpg2pFpoMvo6ZgQMzLsaTzzQNTlm7hNcb+Sg iat-mode=0",
			"obfs4", "192.0.2.2:38224", true, "cert=bjRaMrr1BRiAW8IE9U5z27fQaYgOhX1UCmOpg2pFpoMvo6ZgQMzLsaTzzQNTlm7hNcb+Sg iat-mode=0"},
		// The shapes of Tor Browser's built-in bridges.
		{"meek_lite 192.0.2.20:80 url=https://cdn.example/ front=www.example.net utls=HelloRandomizedALPN",
			"meek_lite", "192.0.2.20:80", false, "url=https://cdn.example/ front=www.example.net utls=HelloRandomizedALPN"},
		{"snowflake 192.0.2.3:80 " + fp + " fingerprint=" + fp + " url=https://b.example/ fronts=a.example,b.example ice=stun:stun.example:3478 utls-imitate=hellorandomizedalpn",
			"snowflake", "192.0.2.3:80", true, "fingerprint=" + fp + " url=https://b.example/ fronts=a.example,b.example ice=stun:stun.example:3478 utls-imitate=hellorandomizedalpn"},
		{"webtunnel [2001:db8::2]:443 " + fp + " url=https://w.example/path?a=b ver=0.0.1",
			"webtunnel", "[2001:db8::2]:443", true, "url=https://w.example/path?a=b ver=0.0.1"},
		{"obfs4 192.0.2.2:1 cert=x", "obfs4", "192.0.2.2:1", false, "cert=x"},
		{"obfs4 192.0.2.2:1", "obfs4", "192.0.2.2:1", false, ""},
	}
	for _, c := range cases {
		l, err := ParseLine(c.in)
		if err != nil {
			t.Errorf("ParseLine(%q): %v", c.in, err)
			continue
		}
		if l.Transport != c.transport || l.Addr != netip.MustParseAddrPort(c.addr) || l.HasFingerprint != c.fp || l.Args.String() != c.args {
			t.Errorf("ParseLine(%q) = %+v", c.in, l)
		}
		if c.fp && l.FingerprintHex() != fp {
			t.Errorf("fingerprint %s", l.FingerprintHex())
		}
		// String round-trips.
		l2, err := ParseLine(l.String())
		if err != nil || l2.String() != l.String() {
			t.Errorf("round trip of %q: %q, %v", l.String(), l2.String(), err)
		}
	}
}

func TestParseLineErrors(t *testing.T) {
	const fp = "D9A82D2F9C2F65A18407B1D2B764F130847F8B5D"
	bad := map[string]string{
		"":                           "empty",
		"obfs4":                      "without an address",
		"obfs4 bridge.example:443":   "host names",
		"192.0.2.1:0":                "port 0",
		"192.0.2.1:70000":            "host names",
		"192.0.2.1:443 D9A8":         "not 40 hex",
		"192.0.2.1:443 " + fp + "00": "not 40 hex",
		"192.0.2.1:443 ZZA82D2F9C2F65A18407B1D2B764F130847F8B5D": "not 40 hex",
		"192.0.2.1:443 " + fp + " cert=x":                        "names none",
		"obfs4 192.0.2.1:443 " + fp + " cert":                    "not a k=v",
		"obfs4 192.0.2.1:443 " + fp + " =x":                      "empty key",
		"obfs4 192.0.2.1:443 " + fp + " " + fp:                   "not a k=v",
		"obfs4 192.0.2.1:443 k=" + strings.Repeat("v", 600):      "more than the 510",
		"obfs4 [fe80::1%eth0]:443":                               "zoned",
	}
	for in, want := range bad {
		_, err := ParseLine(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "Bridge: ") {
			t.Errorf("ParseLine(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestLineName(t *testing.T) {
	l, _ := ParseLine("obfs4 192.0.2.2:1 D9A82D2F9C2F65A18407B1D2B764F130847F8B5D cert=secret")
	if n := l.Name(); n != "bridge $D9A82D2F9C2F65A18407B1D2B764F130847F8B5D (obfs4)" {
		t.Errorf("Name = %q", n)
	}
	l, _ = ParseLine("192.0.2.2:1")
	if n := l.Name(); n != "bridge 192.0.2.2:1" {
		t.Errorf("Name = %q", n)
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add("obfs4 192.0.2.2:38224 D9A82D2F9C2F65A18407B1D2B764F130847F8B5D cert=abc iat-mode=0")
	f.Add("192.0.2.1 D9A8 2D2F 9C2F 65A1 8407 B1D2 B764 F130 847F 8B5D")
	f.Add("[2001:db8::1]:443")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLine(s)
		if err != nil {
			return
		}
		l2, err := ParseLine(l.String())
		if err != nil || l2.String() != l.String() {
			t.Fatalf("%q parsed to %q, which does not round-trip: %q %v", s, l.String(), l2.String(), err)
		}
	})
}
