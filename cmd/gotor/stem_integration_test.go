package main_test

// stem's launch_tor_with_config (Debian's python3-stem) starts gotor as
// controller applications start tor: the torrc on gotor's standard input
// ("-f -"), readiness read from gotor's standard output
// ("Bootstrapped 100%"), which stem then closes; then stem talks to the
// control port and an application uses the SocksPort, on the private
// network of C tor relays.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/gotor/gotor/internal/testnet"
)

func TestStemLaunchTorWithConfig(t *testing.T) {
	n := testnet.Shared(t)
	py := testnet.NeedStem(t)
	testnet.NeedTool(t, "curl")
	gotor := buildGotor(t)
	srv, err := testnet.StartHTTPServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// The network's client torrc, as a stem config dictionary.
	dir := t.TempDir()
	socks, ctrl := itest.FreePort(t), itest.FreePort(t)
	config := map[string][]string{}
	for _, l := range strings.Split(n.ClientTorrc(filepath.Join(dir, "data"), socks), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, _ := strings.Cut(l, " ")
		config[k] = append(config[k], v)
	}
	config["ControlPort"] = []string{fmt.Sprint(ctrl)}
	config["CookieAuthentication"] = []string{"1"}
	cfgJSON, _ := json.Marshal(config)

	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(py, filepath.Join(filepath.Dir(file), "testdata", "stem_launch.py"), gotor, string(cfgJSON), fmt.Sprint(ctrl))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stem script: %v", err)
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Error("stem script did not finish")
		}
	}()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	if !lines.Scan() {
		t.Fatalf("stem script ended early: %v", lines.Err())
	}
	var got struct {
		SystemVersion    string   `json:"system_version"`
		TorrcViaStdin    bool     `json:"torrc_via_stdin"`
		LaunchSeconds    float64  `json:"launch_seconds"`
		InitLines        []string `json:"init_lines"`
		Version          string   `json:"version"`
		BootstrapPhase   string   `json:"bootstrap_phase"`
		SocksListeners   [][]any  `json:"socks_listeners"`
		AliveAfterReload bool     `json:"alive_after_reload"`
		VersionAfter     string   `json:"version_after_reload"`
	}
	if err := json.Unmarshal(lines.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, lines.Bytes())
	}
	t.Logf("stem: gotor --version parsed as %s; launched in %.2f s; control port says version %s, %s",
		got.SystemVersion, got.LaunchSeconds, got.Version, got.BootstrapPhase)
	if !got.TorrcViaStdin {
		t.Errorf("stem does not pass the torrc on stdin to gotor %s", got.SystemVersion)
	}
	if !slices.ContainsFunc(got.InitLines, func(l string) bool { return strings.Contains(l, "[notice] Bootstrapped 100%") }) {
		t.Errorf("no 'Bootstrapped 100%%' among the start-up lines stem read:\n%s", strings.Join(got.InitLines, "\n"))
	}
	if slices.ContainsFunc(got.InitLines, func(l string) bool { return strings.Contains(l, "[warn]") || strings.Contains(l, "[err]") }) {
		t.Logf("warnings at start-up:\n%s", strings.Join(got.InitLines, "\n"))
	}
	if !strings.Contains(got.BootstrapPhase, "PROGRESS=100") {
		t.Errorf("status/bootstrap-phase %q", got.BootstrapPhase)
	}
	if len(got.SocksListeners) != 1 || fmt.Sprint(got.SocksListeners[0][1]) != fmt.Sprint(socks) {
		t.Errorf("SOCKS listeners %v, want port %d", got.SocksListeners, socks)
	}
	if !got.AliveAfterReload || got.VersionAfter == "" {
		t.Errorf("after RELOAD with its stdout closed: alive %v, version %q", got.AliveAfterReload, got.VersionAfter)
	}

	// The RELOAD read the same torrc again (the one stem wrote to gotor's
	// standard input, read once), so nothing changed.
	notice := filepath.Join(dir, "data", "notice.log")
	waitFor(t, notice, "SIGHUP: configuration re-read; nothing changed", 10*time.Second)
	// The start-up messages, logged before the Log lines were open, are in
	// the log file too.
	waitFor(t, notice, "(a Tor client in Go, following Tor", time.Second)

	// An application uses the SocksPort of the gotor stem launched.
	out, err := curl(t, "--socks5-hostname", fmt.Sprintf("127.0.0.1:%d", socks), srv.URL+"/random")
	if err != nil {
		t.Fatal(err)
	}
	if sum(out) != srv.SHA256 {
		t.Errorf("download through gotor: %d bytes, SHA-256 mismatch", len(out))
	}

	stdin.Write([]byte("\n"))
	if !lines.Scan() {
		t.Fatalf("stem script ended without stopping gotor: %v", lines.Err())
	}
	var end struct {
		ReturnCode int `json:"returncode"`
	}
	json.Unmarshal(lines.Bytes(), &end)
	if end.ReturnCode != 0 {
		t.Errorf("gotor exited with %d after SIGTERM, want 0", end.ReturnCode)
	}
}
