package pt

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

func TestValidName(t *testing.T) {
	for _, s := range []string{"obfs4", "meek_lite", "_x", "A9", "webtunnel"} {
		if !ValidName(s) {
			t.Errorf("ValidName(%q) = false", s)
		}
	}
	for _, s := range []string{"", "9a", "obfs-4", "a b", "é", "a,b"} {
		if ValidName(s) {
			t.Errorf("ValidName(%q) = true", s)
		}
	}
}

func TestArgsEncode(t *testing.T) {
	a := Args{{"cert", "ab+/c"}, {"iat-mode", "0"}}
	if got := a.Encode(); got != "cert=ab+/c;iat-mode=0" {
		t.Errorf("Encode = %q", got)
	}
	// pt-spec §3.5: backslash and ';' escaped; '=' in keys escaped;
	// values keep '=' (C tor's pt_stringify_socks_args).
	a = Args{{"shared-secret", "rahasia"}, {"secrets-file", "/tmp/blob"}}
	if got := a.Encode(); got != "shared-secret=rahasia;secrets-file=/tmp/blob" {
		t.Errorf("Encode = %q", got)
	}
	a = Args{{"k;\\", "v;\\=w"}}
	if got, want := a.Encode(), `k\;\\=v\;\\=w`; got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
}

func TestSOCKS5Auth(t *testing.T) {
	u, p, err := Args(nil).SOCKS5Auth()
	if u != "" || p != "" || err != nil {
		t.Errorf("no args: %q %q %v", u, p, err)
	}
	u, p, err = Args{{"cert", "x"}}.SOCKS5Auth()
	if u != "cert=x" || p != "\x00" || err != nil {
		t.Errorf("short args: %q %q %v", u, p, err)
	}
	long := Args{{"k", strings.Repeat("v", 300)}} // 302 bytes encoded
	u, p, err = long.SOCKS5Auth()
	if err != nil || len(u) != 255 || u+p != long.Encode() {
		t.Errorf("long args: %d+%d bytes, %v", len(u), len(p), err)
	}
	exact := Args{{"k", strings.Repeat("v", 253)}} // 255 bytes
	u, p, err = exact.SOCKS5Auth()
	if err != nil || len(u) != 255 || p != "\x00" {
		t.Errorf("255-byte args: %d+%q, %v", len(u), p, err)
	}
	tooLong := Args{{"k", strings.Repeat("v", MaxEncodedArgs)}}
	if _, _, err := tooLong.SOCKS5Auth(); err == nil {
		t.Error("511+ bytes of arguments accepted")
	}
}

func TestParseArg(t *testing.T) {
	a, err := ParseArg("url=https://x/?a=b")
	if err != nil || a.Key != "url" || a.Value != "https://x/?a=b" {
		t.Errorf("ParseArg = %+v, %v", a, err)
	}
	for _, s := range []string{"novalue", "=v", ""} {
		if _, err := ParseArg(s); err == nil {
			t.Errorf("ParseArg(%q) accepted", s)
		}
	}
}

func TestParsePlugin(t *testing.T) {
	p, err := ParsePlugin("obfs4 exec /usr/bin/obfs4proxy -enableLogging")
	if err != nil || !p.Managed() || p.Path != "/usr/bin/obfs4proxy" || len(p.Args) != 1 || !p.Provides("obfs4") {
		t.Errorf("exec: %+v %v", p, err)
	}
	p, err = ParsePlugin("obfs4 socks5 127.0.0.1:1080")
	if err != nil || p.Managed() || p.Protocol != "socks5" || p.Addr != "127.0.0.1:1080" {
		t.Errorf("socks5: %+v %v", p, err)
	}
	if p.String() != "obfs4 socks5 127.0.0.1:1080" {
		t.Errorf("String = %q", p.String())
	}
	bad := map[string]string{
		"obfs4 exec":                        "too few",
		"obfs-4 exec /x":                    "C identifier",
		"obfs4 fork /x":                     "unknown type",
		"obfs3,obfs4 socks5 127.0.0.1:1":    "one transport",
		"obfs4 socks5 127.0.0.1":            "transport address",
		"obfs4 socks5 127.0.0.1:0":          "bad port",
		"obfs4 socks4 127.0.0.1:1 extra":    "unexpected",
		", exec /x":                         "no transport",
		"obfs4 socks5 127.0.0.1:99999":      "bad port",
		"obfs4 proxy 127.0.0.1:1":           "unknown type",
		"meek_lite,obfs2,,obfs 4 exec /x y": "unknown type",
	}
	for line, want := range bad {
		_, err := ParsePlugin(line)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePlugin(%q) = %v, want error containing %q", line, err, want)
		}
	}
}

// Tor Browser's torrc-defaults (tor-browser-build pt_config.json, 15.0):
// every line must parse, as the issue requires.
func TestParsePluginTorBrowser(t *testing.T) {
	lines := []string{
		"meek_lite,obfs2,obfs3,obfs4,scramblesuit,webtunnel exec ./TorBrowser/Tor/PluggableTransports/lyrebird",
		"snowflake exec ./TorBrowser/Tor/PluggableTransports/lyrebird",
		"conjure exec ./TorBrowser/Tor/PluggableTransports/conjure-client -registerURL https://registration.refraction.network/api",
		`meek_lite,obfs2,obfs3,obfs4,scramblesuit,webtunnel exec TorBrowser\Tor\PluggableTransports\lyrebird.exe`,
	}
	want := [][]string{
		{"meek_lite", "obfs2", "obfs3", "obfs4", "scramblesuit", "webtunnel"},
		{"snowflake"}, {"conjure"},
		{"meek_lite", "obfs2", "obfs3", "obfs4", "scramblesuit", "webtunnel"},
	}
	for i, l := range lines {
		p, err := ParsePlugin(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if strings.Join(p.Transports, ",") != strings.Join(want[i], ",") || !p.Managed() {
			t.Errorf("%q: %+v", l, p)
		}
	}
}

func TestParseLine(t *testing.T) {
	cases := []struct {
		line string
		kind Kind
		text string
	}{
		{"VERSION 1", KindVersion, "1"},
		{"VERSION-ERROR no-version", KindVersionError, "no-version"},
		{"ENV-ERROR No TOR_PT_AUTH_COOKIE_FILE when TOR_PT_EXTENDED_SERVER_PORT set", KindEnvError, "No TOR_PT_AUTH_COOKIE_FILE when TOR_PT_EXTENDED_SERVER_PORT set"},
		{"PROXY DONE", KindProxyDone, ""},
		{"PROXY-ERROR SOCKS 4 upstream proxies unsupported.", KindProxyError, "SOCKS 4 upstream proxies unsupported."},
		{"CMETHOD-ERROR trebuchet no rocks available", KindCMethodError, "no rocks available"},
		{"CMETHODS DONE", KindCMethodsDone, ""},
		{"CMETHODS DONE\r", KindCMethodsDone, ""},
		{"SMETHOD obfs4 1.2.3.4:5", KindUnknown, "SMETHOD"},
		{"FROB", KindUnknown, "FROB"},
		{"", KindUnknown, ""},
		{"bad!keyword x", KindUnknown, ""},
	}
	for _, c := range cases {
		m, err := ParseLine(c.line)
		if err != nil || m.Kind != c.kind || m.Text != c.text {
			t.Errorf("ParseLine(%q) = %v %q, %v; want %v %q", c.line, m.Kind, m.Text, err, c.kind, c.text)
		}
	}
	m, err := ParseLine("CMETHOD trebuchet socks5 127.0.0.1:19999")
	if err != nil || m.Kind != KindCMethod || m.Method != (Method{"trebuchet", "socks5", "127.0.0.1:19999"}) {
		t.Errorf("CMETHOD: %+v %v", m, err)
	}
	m, err = ParseLine("CMETHOD x socks4 [::1]:80")
	if err != nil || m.Method.Addr != "[::1]:80" {
		t.Errorf("CMETHOD v6: %+v %v", m, err)
	}
	m, err = ParseLine(`LOG SEVERITY=debug MESSAGE="Connected to bridge A"`)
	if err != nil || m.Kind != KindLog {
		t.Fatalf("LOG: %+v %v", m, err)
	}
	if v, _ := m.Values.Get("MESSAGE"); v != "Connected to bridge A" {
		t.Errorf("LOG MESSAGE = %q", v)
	}
	m, err = ParseLine(`STATUS TRANSPORT=obfs4 ADDRESS=198.51.100.222:2222 CONNECT=Failed ERRSTR="Connection \"refused\"\n\101"`)
	if err != nil || m.Kind != KindStatus {
		t.Fatalf("STATUS: %+v %v", m, err)
	}
	if v, _ := m.Values.Get("ERRSTR"); v != "Connection \"refused\"\nA" {
		t.Errorf("STATUS ERRSTR = %q", v)
	}
	bad := []string{
		"VERSION", "VERSION 1 2", "PROXY FOO", "CMETHODS", "CMETHODS FOO",
		"CMETHOD x socks5", "CMETHOD 9x socks5 127.0.0.1:1", "CMETHOD x socks6 127.0.0.1:1",
		"CMETHOD x socks5 localhost:1", "CMETHOD x socks5 127.0.0.1:0", "CMETHOD x socks5 127.0.0.1",
		"CMETHOD-ERROR", "LOG MESSAGE=x", "LOG SEVERITY=loud MESSAGE=x", `LOG SEVERITY=info MESSAGE="x`,
		"LOG SEVERITY=info MESSAGE", `LOG SEVERITY=info MESSAGE="a"b`, `LOG SEVERITY=info MESSAGE="\q"`,
		"STATUS CONNECT=Success", "STATUS =x", "VERSION 1\x00",
	}
	for _, l := range bad {
		_, err := ParseLine(l)
		var le *LineError
		if !errors.As(err, &le) {
			t.Errorf("ParseLine(%q) = %v, want a *LineError", l, err)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"VERSION 1", "CMETHOD obfs4 socks5 127.0.0.1:1234", "CMETHODS DONE",
		`LOG SEVERITY=notice MESSAGE="a \"b\" \101"`, "STATUS TRANSPORT=x A=B", "CMETHOD-ERROR x why",
		"PROXY DONE", "ENV-ERROR x", "VERSION-ERROR no-version", "PROXY-ERROR no"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseLine(s)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LineError", err)
			}
			return
		}
		if m.Kind == KindCMethod {
			if !ValidName(m.Method.Transport) || (m.Method.Protocol != "socks4" && m.Method.Protocol != "socks5") || checkHostPort(m.Method.Addr) != nil {
				t.Fatalf("accepted bad CMETHOD %q: %+v", s, m)
			}
		}
	})
}

func startFake(t *testing.T, mode, out string, cfg Config) (*Process, error) {
	t.Helper()
	p := fakePlugin(t, mode, out)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Start(ctx, p, cfg)
}

func TestStartEnvironment(t *testing.T) {
	cfg := testConfig(t)
	cfg.StopGrace = time.Minute // the exit must come from the closed stdin
	cfg.Proxy = "socks5://127.0.0.1:1080"
	envFile := filepath.Join(t.TempDir(), "env")
	t.Setenv("GOTOR_FAKE_PT_ENVFILE", envFile)
	t.Setenv("TOR_PT_ORPORT", "inherited-and-removed")
	pr, err := startFake(t, "stay", "VERSION 1\nPROXY DONE\nCMETHOD fake socks5 127.0.0.1:5555\nCMETHOD other socks5 127.0.0.1:6666\nCMETHODS DONE\n", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(string(b), "\n")
	want := []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=" + cfg.StateDir,
		"TOR_PT_CLIENT_TRANSPORTS=fake", "TOR_PT_EXIT_ON_STDIN_CLOSE=1", "TOR_PT_PROXY=socks5://127.0.0.1:1080"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("environment:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st, err := os.Stat(cfg.StateDir); err != nil || !st.IsDir() {
		t.Errorf("state directory: %v", err)
	}
	m, err := pr.Method("fake")
	if err != nil || m.Addr != "127.0.0.1:5555" || m.Protocol != "socks5" {
		t.Errorf("Method = %+v, %v", m, err)
	}
	if _, err := pr.Method("other"); err == nil {
		t.Error("a transport we did not ask for was accepted")
	}
	// Close: stdin closes and the fake exits on its own, with status 0
	// (not by SIGTERM or SIGKILL).
	pr.Close()
	if err := pr.Err(); err == nil || strings.Contains(err.Error(), "signal") || strings.Contains(err.Error(), "exit status") {
		t.Errorf("Err after Close = %v, want a clean exit", err)
	}
}

func TestStartFailures(t *testing.T) {
	cases := []struct {
		name, mode, out, want string
		proxy                 bool
	}{
		{"version error", "exit", "VERSION-ERROR no-version\n", "VERSION-ERROR no-version", false},
		{"env error", "exit", "VERSION 1\nENV-ERROR bad TOR_PT_STATE_LOCATION\n", "ENV-ERROR bad TOR_PT_STATE_LOCATION", false},
		{"env error first", "stay", "ENV-ERROR broken\n", "ENV-ERROR broken", false},
		{"wrong version", "stay", "VERSION 2\n", `version "2"`, false},
		{"cmethod before version", "stay", "CMETHOD fake socks5 127.0.0.1:1\n", "CMETHOD before VERSION", false},
		{"bad cmethod", "stay", "VERSION 1\nCMETHOD fake socks9 127.0.0.1:1\n", "socks9", false},
		{"version twice", "stay", "VERSION 1\nVERSION 1\n", "VERSION after VERSION", false},
		{"proxy error", "exit", "VERSION 1\nPROXY-ERROR no SOCKS4\n", "PROXY-ERROR no SOCKS4", false},
		{"proxy ignored", "stay", "VERSION 1\nCMETHOD fake socks5 127.0.0.1:1\nCMETHODS DONE\n", "no PROXY DONE", true},
		{"exits silently", "exit", "", "exit status 3", false},
		{"exits mid-way", "exit", "VERSION 1\nCMETHOD fake socks5 127.0.0.1:1\n", "giving up", false},
		{"long line", "stay", "VERSION 1\n" + strings.Repeat("x", maxLine+10) + "\n", "longer than", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			if c.proxy {
				cfg.Proxy = "socks5://127.0.0.1:9"
			}
			pr, err := startFake(t, c.mode, c.out, cfg)
			if err == nil {
				pr.Close()
				t.Fatal("Start succeeded")
			}
			var pe *Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start: %v; want a *pt.Error containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "transport fake (") {
				t.Errorf("error does not name the transport: %v", err)
			}
		})
	}
}

func TestStartTolerates(t *testing.T) {
	// Unknown lines, bad LOG lines, LOG/STATUS before VERSION and a
	// CMETHOD-ERROR for one transport do not fail the start.
	var mu sync.Mutex
	var statuses []string
	cfg := testConfig(t)
	cfg.OnStatus = func(p Plugin, v Args) {
		mu.Lock()
		statuses = append(statuses, v.String())
		mu.Unlock()
	}
	out := "LOG SEVERITY=notice MESSAGE=starting\nHELLO world\nVERSION 1\nLOG junk\nSTATUS TRANSPORT=fake PERCENT=42\n" +
		"CMETHOD-ERROR fake no rocks\nCMETHODS DONE\nSTATUS TRANSPORT=fake PERCENT=100\n"
	pr, err := startFake(t, "stay", out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	_, err = pr.Method("fake")
	if err == nil || !strings.Contains(err.Error(), "CMETHOD-ERROR no rocks") {
		t.Errorf("Method after CMETHOD-ERROR: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(statuses)
		mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(statuses, "|") != "TRANSPORT=fake PERCENT=42|TRANSPORT=fake PERCENT=100" {
		t.Errorf("statuses = %q", statuses)
	}
}

func TestStopEscalates(t *testing.T) {
	for _, mode := range []string{"term", "stubborn"} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(t)
			pr, err := startFake(t, mode, "VERSION 1\nCMETHODS DONE\n", cfg)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { pr.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not stop the process")
			}
			select {
			case <-pr.Done():
			default:
				t.Fatal("Done not closed after Close")
			}
		})
	}
}

func TestMissingBinary(t *testing.T) {
	p := Plugin{Transports: []string{"obfs4"}, Path: filepath.Join(t.TempDir(), "no-such-obfs4proxy")}
	m := NewManager([]Plugin{p}, testConfig(t))
	defer m.Close()
	err := m.Start(context.Background(), "obfs4")
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "cannot start the program") || !strings.Contains(err.Error(), "no-such-obfs4proxy") {
		t.Fatalf("Start = %v", err)
	}
	if _, err := m.Dial(context.Background(), "obfs4", "127.0.0.1:1", nil); !errors.As(err, &pe) {
		t.Errorf("Dial = %v", err)
	}
	var ue *UnknownTransportError
	if err := m.Start(context.Background(), "snowflake"); !errors.As(err, &ue) {
		t.Errorf("unknown transport: %v", err)
	}
}

func TestManagerDialAndRestart(t *testing.T) {
	authFile := filepath.Join(t.TempDir(), "auth")
	t.Setenv("GOTOR_FAKE_PT_AUTHFILE", authFile)
	p := fakePlugin(t, "stay", "VERSION 1\nCMETHOD fake socks5 @SOCKS\nCMETHODS DONE\n", "fake", "unused")
	cfg := testConfig(t)
	exits := make(chan error, 4)
	cfg.OnExit = func(_ Plugin, err error) { exits <- err }
	other := Plugin{Transports: []string{"never"}, Path: "/nonexistent/never-started"}
	m := NewManager([]Plugin{p, other}, cfg)
	defer m.Close()
	if len(m.Processes()) != 0 {
		t.Fatal("a transport started before it was needed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := Args{{"cert", "AAAA;B"}, {"iat-mode", "0"}}
	conn, err := m.Dial(ctx, "fake", "192.0.2.7:443", args)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	conn.Close()
	b, _ := os.ReadFile(authFile)
	if want := `"cert=AAAA\\;B;iat-mode=0" "\x00" 192.0.2.7:443`; string(b) != want {
		t.Errorf("transport saw %s, want %s", b, want)
	}
	procs := m.Processes()
	if len(procs) != 1 {
		t.Fatalf("%d processes, want 1 (the line no bridge uses must not start)", len(procs))
	}
	// Kill the transport: OnExit reports it, the next Dial restarts it.
	first := procs[0]
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exits:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("OnExit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnExit not called after the transport died")
	}
	conn, err = m.Dial(ctx, "fake", "192.0.2.7:443", args)
	if err != nil {
		t.Fatalf("Dial after restart: %v", err)
	}
	conn.Close()
	if procs := m.Processes(); len(procs) != 1 || procs[0] == first {
		t.Errorf("transport not restarted: %v", procs)
	}
	m.Close()
	if _, err := m.Dial(ctx, "fake", "192.0.2.7:443", args); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	for _, pr := range procs {
		select {
		case <-pr.Done():
		default:
			t.Error("a process outlived Close")
		}
	}
	select {
	case err := <-exits:
		t.Errorf("OnExit called for a Close: %v", err)
	default:
	}
}

func TestExternalPlugin(t *testing.T) {
	p, err := ParsePlugin("obfs4 socks5 127.0.0.1:7777")
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager([]Plugin{p}, testConfig(t))
	defer m.Close()
	if !m.Has("obfs4") || m.Has("snowflake") {
		t.Error("Has")
	}
	meth, err := m.Method(context.Background(), "obfs4")
	if err != nil || meth.Addr != "127.0.0.1:7777" || meth.Protocol != "socks5" {
		t.Errorf("Method = %+v, %v", meth, err)
	}
	if err := m.Start(context.Background(), "obfs4"); err != nil {
		t.Errorf("Start of an external transport: %v", err)
	}
}

// obfs4proxy as a managed client transport: the real program speaks the
// configuration protocol (no network needed).
func TestObfs4proxyStarts(t *testing.T) {
	path := testnet.NeedTool(t, "obfs4proxy")
	p, err := ParsePlugin("meek_lite,obfs2,obfs3,obfs4,scramblesuit exec " + path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, err := Start(ctx, p, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range p.Transports {
		m, err := pr.Method(name)
		if err != nil || m.Protocol != "socks5" || !strings.HasPrefix(m.Addr, "127.0.0.1:") {
			t.Errorf("%s: %+v %v", name, m, err)
		}
	}
	start := time.Now()
	pr.Close()
	t.Logf("obfs4proxy stopped %v after its stdin closed", time.Since(start).Round(time.Millisecond))
}
