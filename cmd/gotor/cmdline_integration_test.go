package main_test

// gotor's command line against C tor's (Debian's tor 0.4.9), offline:
// each flag's output and exit code, side by side where C tor can run the
// same flag without a network.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/gotor/gotor/internal/testnet"
)

// result is one run of gotor or C tor.
type result struct {
	stdout, stderr string
	code           int
}

// logLine matches C tor's log format on standard output.
var logLine = regexp.MustCompile(`^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}\.\d{3} \[(debug|info|notice|warn|err)\] `)

// logs returns the severities of the log lines, in order.
func (r result) logs() []string {
	var out []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := logLine.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// text returns the lines of standard output that are not log lines.
func (r result) text() []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		if l != "" && !logLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// hasLog reports whether a log line of severity sev contains s.
func (r result) hasLog(sev, s string) bool {
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := logLine.FindStringSubmatch(l); m != nil && m[1] == sev && strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// exec1 runs bin with args (and stdin), in dir, bounded by 60 s.
func exec1(t *testing.T, dir, stdin string, env []string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not exit within 60 s:\n%s", bin, args, r.stdout)
	}
	return r
}

func torBin(t *testing.T) string {
	t.Helper()
	testnet.IntegrationEnabled(t)
	return testnet.NeedTool(t, "tor")
}

// offlineTorrc writes a client torrc whose only directory authority is
// the address of ln, so that any attempt to bootstrap shows there.
func offlineTorrc(t *testing.T, dir string, ln net.Listener, extra string) string {
	t.Helper()
	port := ln.Addr().(*net.TCPAddr).Port
	fp := strings.Repeat("AB", 20)
	text := fmt.Sprintf("DataDirectory %s\nSocksPort 127.0.0.1:%d\nDirAuthority auth0 orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s\n%s",
		filepath.Join(dir, "data"), itest.FreePort(t), port, strings.Repeat("CD", 20), port, fp, extra)
	path := filepath.Join(dir, "torrc")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// countConns accepts on ln and counts connections until ln closes.
func countConns(ln net.Listener) func() int {
	n := make(chan int, 1)
	go func() {
		c := 0
		for {
			conn, err := ln.Accept()
			if err != nil {
				n <- c
				return
			}
			c++
			conn.Close()
		}
	}()
	return func() int { ln.Close(); return <-n }
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestCommandLineAgainstCTor runs each flag on gotor and on C tor with
// the same files and compares exit codes and output.
func TestCommandLineAgainstCTor(t *testing.T) {
	tor := torBin(t)
	gotor := buildGotor(t)
	dir := t.TempDir()
	ln := listen(t)
	conns := countConns(ln)
	torrc := offlineTorrc(t, dir, ln, "MaxCircuitDirtiness 5 minutes\nSafeSocks 1\nControlPort 9911\nLog notice stdout\n")
	bad := filepath.Join(dir, "bad-torrc")
	os.WriteFile(bad, []byte("DataDirectory "+dir+"\nSocksPort 0\nNoSuchOption 1\n"), 0o600)
	defaults := filepath.Join(dir, "defaults")
	os.WriteFile(defaults, []byte("SafeSocks 1\nNewCircuitPeriod 45\n"), 0o600)
	missing := filepath.Join(dir, "missing")
	stdinTorrc, _ := os.ReadFile(torrc)

	type check func(t *testing.T, g, c result)
	sameText := func(t *testing.T, g, c result) {
		if !slices.Equal(g.text(), c.text()) {
			t.Errorf("output differs:\ngotor:\n%s\nC tor:\n%s", g.stdout, c.stdout)
		}
	}
	sameStderr := func(t *testing.T, g, c result) {
		if g.stderr != c.stderr {
			t.Errorf("stderr differs:\ngotor: %q\nC tor: %q", g.stderr, c.stderr)
		}
	}
	noNotice := func(t *testing.T, g, c result) { // --hush and the one-shot commands
		for _, r := range []result{g, c} {
			if slices.Contains(r.logs(), "notice") {
				t.Errorf("notice lines under a hushed command:\n%s", r.stdout)
			}
		}
	}
	valid := func(want bool) check {
		return func(t *testing.T, g, c result) {
			for name, r := range map[string]result{"gotor": g, "C tor": c} {
				if got := slices.Contains(r.text(), "Configuration was valid"); got != want {
					t.Errorf("%s: 'Configuration was valid' printed: %v, want %v:\n%s", name, got, want, r.stdout)
				}
			}
		}
	}
	failed := func(option string) check { // C tor's failure lines: [warn] naming the cause, then [err]
		return func(t *testing.T, g, c result) {
			for name, r := range map[string]result{"gotor": g, "C tor": c} {
				if !r.hasLog("warn", option) || !r.hasLog("err", "Reading config failed--see warnings above.") {
					t.Errorf("%s: want a [warn] naming %q and C tor's [err] line:\n%s", name, option, r.stdout)
				}
			}
		}
	}
	// sameOptions: both dumps name the same options (values in each
	// program's canonical form, compared by TestDumpConfigReadsBack).
	sameOptions := func(t *testing.T, g, c result) {
		names := func(r result) []string {
			var out []string
			for _, l := range r.text() {
				out = append(out, strings.Fields(l)[0])
			}
			slices.Sort(out)
			return slices.Compact(out)
		}
		if !slices.Equal(names(g), names(c)) {
			t.Errorf("dumped options differ:\ngotor: %q\nC tor: %q", names(g), names(c))
		}
	}

	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		checks []check
	}{
		{"help", []string{"--help"}, "", []check{noNotice, func(t *testing.T, g, c result) {
			if !strings.Contains(g.stdout, "-f <torrc> [args]") || !strings.Contains(c.stdout, "-f <torrc> [args]") {
				t.Errorf("usage lines:\n%s\n%s", g.stdout, c.stdout)
			}
		}}},
		{"h", []string{"-h"}, "", []check{noNotice}},
		{"list-modules", []string{"--list-modules"}, "", []check{noNotice, func(t *testing.T, g, c result) {
			key := func(r result) (out []string) {
				for _, l := range r.text() {
					out = append(out, strings.SplitN(l, ":", 2)[0])
				}
				return out
			}
			if !slices.Equal(key(g), key(c)) {
				t.Errorf("modules %q, C tor %q", key(g), key(c))
			}
		}}},
		{"list-deprecated-options", []string{"--list-deprecated-options"}, "", []check{sameText}},
		{"list-torrc-options", []string{"--list-torrc-options"}, "", []check{noNotice, func(t *testing.T, g, c result) {
			extensions := []string{"EnableCircuitPrebuilding", "IsolateClientPort", "IsolateDestinations", "IsolateSOCKSAuth", "IsolationLevel"}
			var own []string
			for _, n := range g.text() {
				if !slices.Contains(c.text(), n) {
					own = append(own, n)
				}
			}
			if !slices.Equal(own, extensions) {
				t.Errorf("gotor lists %q that C tor does not; want exactly gotor's extensions %q", own, extensions)
			}
			if len(g.text()) < 30 {
				t.Errorf("gotor lists %d options", len(g.text()))
			}
		}}},
		{"library-versions", []string{"--library-versions"}, "", []check{noNotice, func(t *testing.T, g, c result) {
			for _, r := range []result{g, c} {
				if !strings.HasPrefix(r.stdout, "Tor version ") || !strings.Contains(r.stdout, "Library versions\tCompiled\t\tRuntime\n") {
					t.Errorf("library versions:\n%s", r.stdout)
				}
			}
		}}},
		{"version", []string{"--version"}, "", []check{noNotice, func(t *testing.T, g, c result) {
			re := regexp.MustCompile(`^Tor version [0-9]+\.[0-9]+\.[0-9]+(\.[0-9]+)?(-\S*)?( \(\S*\))*\.\n`)
			for _, r := range []result{g, c} {
				if !re.MatchString(r.stdout) {
					t.Errorf("first line is not a tor version line:\n%s", r.stdout)
				}
			}
			if !strings.Contains(strings.SplitN(g.stdout, "\n", 2)[0], "gotor") {
				t.Errorf("gotor's version line does not say gotor: %q", g.stdout)
			}
		}}},
		{"verify-config", []string{"--verify-config", "-f", torrc}, "", []check{valid(true), func(t *testing.T, g, c result) {
			if !g.hasLog("notice", fmt.Sprintf("Read configuration file %q.", torrc)) || !c.hasLog("notice", fmt.Sprintf("Read configuration file %q.", torrc)) {
				t.Errorf("no 'Read configuration file' notice:\n%s\n%s", g.stdout, c.stdout)
			}
		}}},
		{"verify-config-torrc-file", []string{"--torrc-file", torrc, "--verify-config"}, "", []check{valid(true)}},
		{"verify-config-hush", []string{"--hush", "--verify-config", "-f", torrc}, "", []check{valid(false), noNotice}},
		{"verify-config-quiet", []string{"--verify-config", "--quiet", "-f", torrc}, "", []check{func(t *testing.T, g, c result) {
			if g.stdout != "" || c.stdout != "" {
				t.Errorf("--quiet printed:\ngotor: %q\nC tor: %q", g.stdout, c.stdout)
			}
		}}},
		{"verify-config-bad", []string{"--verify-config", "-f", bad}, "", []check{failed("NoSuchOption")}},
		{"verify-config-bad-hush", []string{"--verify-config", "--hush", "-f", bad}, "", []check{failed("NoSuchOption"), noNotice}},
		{"verify-config-missing", []string{"--verify-config", "-f", missing}, "", []check{failed(fmt.Sprintf("Unable to open configuration file %q.", missing))}},
		{"ignore-missing-torrc", []string{"--ignore-missing-torrc", "-f", missing, "--verify-config"}, "", []check{valid(true), func(t *testing.T, g, c result) {
			if !g.hasLog("notice", "not present, using reasonable defaults.") {
				t.Errorf("gotor:\n%s", g.stdout)
			}
		}}},
		{"allow-missing-torrc", []string{"--allow-missing-torrc", "-f", missing, "--verify-config"}, "", []check{valid(true)}},
		{"stdin", []string{"-f", "-", "--verify-config"}, string(stdinTorrc), []check{valid(true)}},
		{"stdin-bad", []string{"--verify-config", "-f", "-"}, "SocksPort 0\nDataDirectory " + dir + "\nNoSuchOption 1\n", []check{failed("NoSuchOption")}},
		{"unknown-option", []string{"--verify-config", "-f", torrc, "--NoSuchOption", "1"}, "", []check{failed("NoSuchOption")}},
		{"unknown-word", []string{"-f", torrc, "NoSuchOption", "--verify-config"}, "", []check{failed("NoSuchOption")}},
		{"no-value", []string{"--verify-config", "-f", torrc, "--SocksPort"}, "", []check{failed("SocksPort")}},
		{"dump-short", []string{"--dump-config", "short", "-f", torrc}, "", []check{sameOptions}},
		{"dump-short-cmdline", []string{"-f", torrc, "--SafeSocks", "0", "+ControlPort", "9912", "MaxCircuitDirtiness", "1 hour", "--dump-config", "short"}, "", []check{sameOptions, func(t *testing.T, g, c result) {
			for _, r := range []result{g, c} {
				txt := strings.Join(r.text(), "\n")
				if strings.Contains(txt, "SafeSocks") || !strings.Contains(txt, "MaxCircuitDirtiness 3600") || strings.Count(txt, "ControlPort ") != 2 {
					t.Errorf("command-line options not applied over the torrc:\n%s", txt)
				}
			}
		}}},
		{"dump-short-stdin", []string{"-f", "-", "--dump-config", "short"}, string(stdinTorrc), []check{sameOptions}},
		{"dump-short-defaults", []string{"--defaults-torrc", defaults, "-f", torrc, "--dump-config", "short"}, "", []check{sameOptions}},
		{"dump-non-builtin", []string{"--dump-config", "non-builtin", "-f", torrc}, "", []check{sameOptions, sameStderr}},
		{"dump-no-argument", []string{"--dump-config", "-f", torrc}, "", []check{sameStderr}},
		{"dump-bad-argument", []string{"--dump-config", "everything", "-f", torrc}, "", []check{sameStderr}},
		{"dump-full", []string{"--dump-config", "full", "-f", torrc}, "", []check{func(t *testing.T, g, c result) {
			ctor := strings.Join(c.text(), "\n")
			for _, l := range g.text() {
				name := strings.Fields(l)[0]
				if !strings.Contains("\n"+ctor, "\n"+name) && !strings.HasPrefix(name, "Isolat") && name != "EnableCircuitPrebuilding" {
					t.Errorf("gotor dumps %s, which C tor's full dump does not have", name)
				}
			}
		}}},
		{"hash-password", []string{"--hash-password", "secret"}, "", []check{noNotice, func(t *testing.T, g, c result) {
			re := regexp.MustCompile(`^16:[0-9A-F]{58}$`)
			if len(g.text()) != 1 || !re.MatchString(g.text()[0]) || len(c.text()) != 1 || !re.MatchString(c.text()[0]) {
				t.Errorf("hashes:\ngotor: %q\nC tor: %q", g.stdout, c.stdout)
			}
		}}},
		{"hash-password-ignores-torrc", []string{"--hash-password", "secret", "-f", bad}, "", nil},
		{"hash-password-checks-options", []string{"--hash-password", "secret", "--NoSuchOption", "1"}, "", []check{failed("NoSuchOption")}},
		{"list-fingerprint", []string{"--list-fingerprint", "-f", torrc}, "", nil},
		{"key-expiration", []string{"--key-expiration", "-f", torrc}, "", nil},
		{"format", []string{"--format", "iso8601", "-f", torrc}, "", nil},
		{"newpass", []string{"--newpass", "-f", torrc}, "", nil},
		{"no-passphrase", []string{"--no-passphrase", "-f", torrc}, "", nil},
		{"passphrase-fd", []string{"--passphrase-fd", "0", "-f", torrc}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := exec1(t, dir, tc.stdin, nil, gotor, tc.args...)
			c := exec1(t, dir, tc.stdin, nil, tor, tc.args...)
			if g.code != c.code {
				t.Errorf("exit code %d, C tor %d\ngotor:\n%s%s\nC tor:\n%s%s", g.code, c.code, g.stdout, g.stderr, c.stdout, c.stderr)
			}
			for _, r := range []result{g} {
				for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
					if strings.Contains(l, "[") && strings.Contains(l, "] ") && !logLine.MatchString(l) && !strings.HasPrefix(tc.name, "dump") {
						t.Errorf("a log line not in C tor's format: %q", l)
					}
				}
			}
			for _, ch := range tc.checks {
				ch(t, g, c)
			}
		})
	}
	if n := conns(); n != 0 {
		t.Errorf("%d connections to the directory authority: a command started a client", n)
	}
}

// TestRelayFlagsRefused: the relay-only commands say that gotor is a
// client, and exit 1.
func TestRelayFlagsRefused(t *testing.T) {
	testnet.IntegrationEnabled(t)
	gotor := buildGotor(t)
	dir := t.TempDir()
	for _, args := range [][]string{{"--keygen"}, {"--list-fingerprint"}, {"--key-expiration", "sign"},
		{"--keygen", "--newpass"}, {"--nt-service"}, {"--dbg-dump-subsystem-list"}} {
		r := exec1(t, dir, "", nil, gotor, args...)
		if r.code != 1 || !r.hasLog("err", "gotor is a Tor client") {
			t.Errorf("%q: exit %d:\n%s", args, r.code, r.stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, "keys")); err == nil {
			t.Errorf("%q made a keys directory", args)
		}
	}
}

// TestHashPasswordBothWays: a hash gotor prints opens C tor's control
// port, and a hash C tor prints opens gotor's; the wrong password opens
// neither.
func TestHashPasswordBothWays(t *testing.T) {
	tor := torBin(t)
	gotor := buildGotor(t)
	dir := t.TempDir()
	const pw = "correct horse battery staple"
	hash := func(bin string) string {
		r := exec1(t, dir, "", nil, bin, "--hash-password", pw)
		txt := r.text()
		if r.code != 0 || len(txt) != 1 {
			t.Fatalf("%s --hash-password: exit %d:\n%s", bin, r.code, r.stdout)
		}
		return txt[0]
	}
	gHash, cHash := hash(gotor), hash(tor)
	if again := hash(gotor); again == gHash {
		t.Errorf("two gotor hashes of one password are equal (%s): no fresh salt", gHash)
	}

	// C tor with gotor's hash: DisableNetwork keeps it offline.
	cPort := itest.FreePort(t)
	cDir := filepath.Join(dir, "ctor")
	os.MkdirAll(cDir, 0o700)
	ctor := exec.Command(tor, "--SocksPort", "0", "--DataDirectory", cDir, "--DisableNetwork", "1",
		"--ControlPort", fmt.Sprint(cPort), "--HashedControlPassword", gHash, "--Log", "warn stderr")
	startBackground(t, ctor)

	// gotor with C tor's hash: its authority is a listener that answers
	// nothing, so gotor keeps trying to bootstrap and serves its control
	// port meanwhile.
	ln := listen(t)
	defer countConns(ln)()
	gPort := itest.FreePort(t)
	torrc := offlineTorrc(t, dir, ln, fmt.Sprintf("ControlPort %d\nHashedControlPassword %s\n", gPort, cHash))
	startBackground(t, exec.Command(gotor, "-f", torrc, "--quiet"))

	for name, port := range map[string]int{"C tor (gotor's hash)": cPort, "gotor (C tor's hash)": gPort} {
		if got := authenticate(t, port, pw); !strings.HasPrefix(got, "250") {
			t.Errorf("%s: AUTHENTICATE with the password: %q", name, got)
		}
		if got := authenticate(t, port, pw+"!"); !strings.HasPrefix(got, "515") {
			t.Errorf("%s: AUTHENTICATE with a wrong password: %q", name, got)
		}
	}
}

// startBackground starts cmd and stops it when the test ends.
func startBackground(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// authenticate sends AUTHENTICATE with pw (control-spec §3.5) to the
// control port, retrying the connection for up to 30 s, and returns the
// reply line.
func authenticate(t *testing.T, port int, pw string) string {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("control port %d: %v", port, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "AUTHENTICATE %q\r\n", pw)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("control port %d: %v", port, err)
	}
	return strings.TrimSpace(line)
}

// TestControlSocket: ControlSocket and ControlSocketsGroupWritable open a
// Unix control socket of mode 0660 next to a ControlPort, whichever line
// comes first, and stem talks to both. (Password authentication: with
// CookieAuthentication each listener's server writes its own cookie to
// the one cookie file, so only the last one started accepts it; see the
// engine's startControl.)
func TestControlSocket(t *testing.T) {
	testnet.IntegrationEnabled(t)
	py := testnet.NeedStem(t)
	gotor := buildGotor(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	ctrl := itest.FreePort(t)
	ln := listen(t)
	defer countConns(ln)()
	const pw = "socket secret"
	hash := exec1(t, dir, "", nil, gotor, "--hash-password", pw).text()[0]
	torrc := offlineTorrc(t, dir, ln, fmt.Sprintf("ControlSocketsGroupWritable 1\nControlSocket %s\nControlPort %d\nHashedControlPassword %s\n", sock, ctrl, hash))
	startBackground(t, exec.Command(gotor, "-f", torrc, "--hush"))
	if got := authenticate(t, ctrl, pw); !strings.HasPrefix(got, "250") { // also waits for the listeners
		t.Fatalf("ControlPort: %q", got)
	}
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Errorf("%s: mode %v, want a socket of mode 0660", sock, st.Mode())
	}
	out, err := exec.Command(py, "-c", `
import sys, stem.control
for c in (stem.control.Controller.from_socket_file(sys.argv[1]), stem.control.Controller.from_port(port=int(sys.argv[2]))):
    c.authenticate(password=sys.argv[3])
    print(c.get_info("version"))
    c.close()
`, sock, fmt.Sprint(ctrl), pw).CombinedOutput()
	if err != nil || strings.Count(string(out), "gotor") != 2 {
		t.Errorf("stem over the socket and the port: %v\n%s", err, out)
	}
}
