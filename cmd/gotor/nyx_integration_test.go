package main_test

// nyx (Debian's nyx, a curses status monitor built on stem) against the
// gotor binary, in a detached tmux session on the private network of C
// tor relays: it connects with the cookie, and each of its pages
// (bandwidth graph and log, connections, configuration, torrc) renders
// with gotor's data; nyx logs no error. Through nyx: the configuration
// editor sets an option (SETCONF), 'w' saves the torrc (SAVECONF), the
// interpreter page reads it back (GETCONF), and nyx quits cleanly.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

// tmuxSession is a tmux server of the test's own (-L) with one window.
type tmuxSession struct {
	t    *testing.T
	sock string
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen returns the pane's text.
func (s *tmuxSession) screen() string { return s.run("capture-pane", "-p", "-t", "nyx") }

func (s *tmuxSession) keys(keys ...string) {
	s.run(append([]string{"send-keys", "-t", "nyx"}, keys...)...)
}

// text types s literally.
func (s *tmuxSession) text(text string) { s.run("send-keys", "-t", "nyx", "-l", text) }

// waitScreen waits until the pane matches every one of the regular
// expressions in want, and checks that it shows no error.
func (s *tmuxSession) waitScreen(within time.Duration, want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		scr := s.screen()
		if bad := nyxTrouble(scr); bad != "" {
			s.t.Fatalf("nyx shows %q:\n%s", bad, scr)
		}
		ok := true
		for _, w := range want {
			ok = ok && regexp.MustCompile(w).MatchString(scr)
		}
		if ok {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("screen lacks %q after %v:\n%s", want, within, scr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nyxTrouble returns the first sign of an error on a screen: a Python
// traceback, nyx's own warnings and errors in its log panel, gotor's WARN
// and ERR events (but the SOCKS warning the test's curl earns, giving
// 127.0.0.1), an error popup, or nyx's end.
func nyxTrouble(scr string) string {
	for _, line := range strings.Split(scr, "\n") {
		for _, bad := range []string{"Traceback", "[NYX_WARNING]", "[NYX_ERROR]", "[ERR]", "[WARN]", "Unable to", "(press any key)", "nyx exited"} {
			if strings.Contains(line, bad) && !strings.Contains(line, "socks: application gave an IP address") {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

func TestNyxAgainstGotor(t *testing.T) {
	testnet.NeedTool(t, "nyx")
	testnet.NeedTool(t, "tmux")
	testnet.NeedTool(t, "curl")
	n := testnet.Shared(t)
	srv, err := testnet.StartHTTPServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctrl := itest.FreePort(t)
	g := startGotor(t, n, fmt.Sprintf("ControlPort %d\nCookieAuthentication 1\n", ctrl))
	torrc := filepath.Join(filepath.Dir(filepath.Dir(g.log)), "torrc")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // traffic for the graph and connections
		for ctx.Err() == nil {
			exec.CommandContext(ctx, "curl", "-s", "-o", "/dev/null", "--socks5-hostname", g.socks, srv.URL+"/random").Run()
		}
	}()

	dir := t.TempDir()
	nyxCfg := filepath.Join(dir, "nyxrc")
	if err := os.WriteFile(nyxCfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{t: t, sock: "gotor-nyx-" + filepath.Base(dir)}
	s.run("new-session", "-d", "-s", "nyx", "-x", "200", "-y", "150", // room for all of page 2's list
		// The shell keeps the pane (and its last screen) when nyx ends.
		// (nyx's -d debug log fails on Debian's Python: platform.dist.)
		fmt.Sprintf("env HOME=%s TERM=xterm nyx -i 127.0.0.1:%d -c %s; echo nyx exited with status $?; sleep 600",
			dir, ctrl, nyxCfg))
	defer exec.Command("tmux", "-L", s.sock, "kill-server").Run()
	q := regexp.QuoteMeta

	// Page 1: the header names gotor's version, pid and control port;
	// the graph counts the curl traffic (BW events); the log panel has
	// gotor's notices (its log file and events).
	scr := s.waitScreen(60*time.Second, q("Tor 0.4.9.0-gotor"), fmt.Sprintf("pid: %d ", g.cmd.Process.Pid),
		fmt.Sprintf(q("Control Port (cookie): %d"), ctrl), q("page 1 / 5"),
		`Download \([0-9.]+ [KM]B/sec +- avg: [0-9.]+ [KM]B/sec, total: [0-9.]+ [KM]B\)`, q("Upload ("),
		q("[NOTICE] Bootstrapped 100% (done): Done"))
	t.Logf("page 1:\n%s", scr)

	// Page 2: connections to the relays (nyx infers them from all of the
	// user's connections to relays, so the testnet's relays' own count
	// too), then gotor's circuits, each of three hops ending at an exit
	// of the network, and nyx's control connection.
	s.keys("Right")
	s.waitScreen(30*time.Second, q("page 2 / 5"), `Connections \([0-9]+ outbound, [1-9][0-9]* circuit, 1 control\)`,
		`(auth|relay|exit)[0-9] +[+ 0-9.]+s \(OUTBOUND\)`)
	scr = s.waitScreen(30*time.Second, `Purpose: General, Circuit ID: [0-9]+ +[+ 0-9.]+s \(CIRCUIT\)`,
		`(auth|relay|exit)[0-9] +1 / Guard`, `(auth|relay|exit)[0-9] +2 / Middle`, `exit[0-9] +3 / End`,
		fmt.Sprintf(`127\.0\.0\.1:%d +nyx \([0-9]+\) +[+ 0-9.]+s \(CONTROL\)`, ctrl))
	t.Logf("page 2:\n%s", scr)

	// Page 3: the options as gotor has them; set MaxCircuitDirtiness in
	// the editor (Enter on the option, type, Enter) and save the torrc.
	s.keys("Right")
	scr = s.waitScreen(30*time.Second, q("page 3 / 5"), q("Tor Configuration (press 'a'"),
		fmt.Sprintf(`ControlPort +127\.0\.0\.1:%d `, ctrl), `SocksPort +`+q(g.socks)+` `, `CookieAuthentication +True `,
		`MaxCircuitDirtiness +10 minutes `)
	t.Logf("page 3:\n%s", scr)
	for i := 0; !strings.Contains(s.screen(), "x MaxCircuitDirtiness ("); i++ {
		if i == 40 {
			t.Fatalf("the editor's selection never reaches MaxCircuitDirtiness:\n%s", s.screen())
		}
		s.keys("Down")
		time.Sleep(100 * time.Millisecond)
	}
	s.keys("Enter")
	s.waitScreen(10*time.Second, q("MaxCircuitDirtiness Value (esc to cancel):"))
	s.text("1234")
	s.keys("Enter")
	scr = s.waitScreen(10*time.Second, `MaxCircuitDirtiness +20 minutes`)
	t.Logf("page 3 after the edit:\n%s", scr)
	s.keys("w")
	// The dialog shows config-text; Cancel is selected first.
	s.waitScreen(10*time.Second, q("Torrc to save:"), `xMaxCircuitDirtiness 1234 `,
		fmt.Sprintf(`xControlPort 127\.0\.0\.1:%d `, ctrl), q("[Save] [Cancel]"))
	s.keys("Left")
	time.Sleep(200 * time.Millisecond)
	s.keys("Enter")
	s.waitScreen(10*time.Second, q("Saved configuration to "+torrc))
	s.waitScreen(10*time.Second, q("page 3 / 5")) // the message takes the next key for 2 s
	saved, err := os.ReadFile(torrc)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^MaxCircuitDirtiness 1234$`).Match(saved) ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^ControlPort .*%d$`, ctrl)).Match(saved) {
		t.Fatalf("the torrc nyx saved lacks the edit or the control port:\n%s", saved)
	}

	// Page 4: the torrc gotor read.
	s.keys("Right")
	scr = s.waitScreen(30*time.Second, q("page 4 / 5"), q("Tor Configuration File ("+torrc+")"),
		fmt.Sprintf(`[0-9]+ ControlPort %d`, ctrl), `[0-9]+ SocksPort `+q(g.socks))
	t.Logf("page 4:\n%s", scr)

	// Page 5: the interpreter; gotor answers and has the edited value.
	s.keys("Right")
	s.waitScreen(30*time.Second, q("page 5 / 5"), q("Control Interpreter:"))
	s.keys("Enter")
	s.waitScreen(10*time.Second, q(`Control Interpreter (enter "/help" for usage or a blank line to stop):`))
	s.text("GETINFO version")
	s.keys("Enter")
	s.waitScreen(10*time.Second, q("250-version=0.4.9.0-gotor"))
	s.text("GETCONF MaxCircuitDirtiness")
	s.keys("Enter")
	scr = s.waitScreen(10*time.Second, q("250 MaxCircuitDirtiness=1234"))
	t.Logf("page 5:\n%s", scr)
	s.keys("Enter") // a blank line leaves input mode

	// Back to page 1: still no error in the log panel; then quit.
	s.keys("Right")
	s.waitScreen(30*time.Second, q("page 1 / 5"), q("Events ("))
	s.keys("q", "q")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.screen(), "nyx exited with status 0") {
		if time.Now().After(deadline) {
			t.Fatalf("nyx did not quit:\n%s", s.screen())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := g.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("gotor is gone after nyx quit: %v", err)
	}
}
