package main_test

// Tor Browser's start-up through stem (Debian's python3-stem), on the
// private network of C tor relays: gotor launched with DisableNetwork 1
// and __OwningControllerProcess, TAKEOWNERSHIP and RESETCONF
// __OwningControllerProcess (stem's authenticate does both, as Tor
// Browser does), SETCONF DisableNetwork=0, the bootstrap followed over
// STATUS_CLIENT events, fetches with per-site SOCKS credentials, SETCONF
// of a second SocksPort, NEWNYM; then the owner exits and gotor stops.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

// alive reports whether pid is a running process (not gone, not a
// zombie waiting for its parent).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestTorBrowserStartupThroughStem(t *testing.T) {
	n := testnet.Shared(t)
	py := testnet.NeedStem(t)
	gotor := buildGotor(t)
	srv, err := testnet.StartHTTPServer(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	dir := t.TempDir()
	socks, ctrl, newSocks := itest.FreePort(t), itest.FreePort(t), itest.FreePort(t)
	logFile := filepath.Join(dir, "notice.log")
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
	config["DisableNetwork"] = []string{"1"}
	config["__ReloadTorrcOnSIGHUP"] = []string{"0"}
	config["Log"] = []string{"notice stdout", "notice file " + logFile}
	cfgJSON, _ := json.Marshal(config)

	_, file, _, _ := runtime.Caller(0)
	host := strings.TrimPrefix(srv.URL, "http://")
	hh, hp, _ := strings.Cut(host, ":")
	cmd := exec.Command(py, filepath.Join(filepath.Dir(file), "testdata", "stem_tbflow.py"), gotor, string(cfgJSON),
		fmt.Sprint(ctrl), hh, hp, fmt.Sprint(newSocks))
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	var first struct {
		GotorPID int `json:"gotor_pid"`
	}
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &first) != nil || first.GotorPID == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("stem did not launch gotor: %q %v", lines.Text(), lines.Err())
	}
	defer func() {
		if alive(first.GotorPID) {
			syscall.Kill(first.GotorPID, syscall.SIGKILL)
		}
	}()
	var got struct {
		OwnerPID          int        `json:"owner_pid"`
		InitLines         []string   `json:"init_lines"`
		OwningAfterAuth   string     `json:"owning_after_auth"`
		DisableNetwork    string     `json:"disable_network"`
		PhaseBefore       string     `json:"phase_before"`
		SocksBefore       [][]any    `json:"socks_before"`
		BootstrapSeconds  float64    `json:"bootstrap_seconds"`
		BootstrapProgress []int      `json:"bootstrap_progress"`
		PhaseAfter        string     `json:"phase_after"`
		Established       string     `json:"circuit_established"`
		SocksAfter        []int      `json:"socks_after"`
		FetchA            [2]float64 `json:"fetch_a"`
		FetchB            [2]float64 `json:"fetch_b"`
		FetchAAgain       [2]float64 `json:"fetch_a_again"`
		SocksAfterSetconf []int      `json:"socks_after_setconf"`
		FetchNewPort      [2]float64 `json:"fetch_new_port"`
		FetchAfterNewnym  [2]float64 `json:"fetch_after_newnym"`
	}
	if !lines.Scan() {
		cmd.Wait()
		t.Fatalf("stem script failed before reporting")
	}
	if err := json.Unmarshal(lines.Bytes(), &got); err != nil {
		t.Fatalf("stem output %q: %v", lines.Text(), err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("stem script: %v", err)
	}
	t.Logf("Tor Browser's start-up through stem: bootstrap %.2f s after DisableNetwork 0, phases %v; circuits: site-a %v, site-b %v, site-a again %v, new port %v, after NEWNYM %v",
		got.BootstrapSeconds, got.BootstrapProgress, got.FetchA[1], got.FetchB[1], got.FetchAAgain[1], got.FetchNewPort[1], got.FetchAfterNewnym[1])

	if !strings.Contains(strings.Join(got.InitLines, "\n"), "Bootstrapped 0% (starting): Starting") {
		t.Errorf("launch lines %q", got.InitLines)
	}
	if got.OwningAfterAuth != "<unset>" {
		t.Errorf("__OwningControllerProcess after stem's TAKEOWNERSHIP and RESETCONF: %q", got.OwningAfterAuth)
	}
	if got.DisableNetwork != "1" || !strings.Contains(got.PhaseBefore, "PROGRESS=0 ") || len(got.SocksBefore) != 0 {
		t.Errorf("with DisableNetwork 1: DisableNetwork=%q, phase %q, SOCKS listeners %v", got.DisableNetwork, got.PhaseBefore, got.SocksBefore)
	}
	if len(got.BootstrapProgress) < 3 || got.BootstrapProgress[len(got.BootstrapProgress)-1] != 100 ||
		!strings.Contains(got.PhaseAfter, "PROGRESS=100 TAG=done") || got.Established != "1" {
		t.Errorf("bootstrap: events %v, phase %q, circuit-established %q", got.BootstrapProgress, got.PhaseAfter, got.Established)
	}
	if len(got.SocksAfter) != 1 || got.SocksAfter[0] != socks {
		t.Errorf("SOCKS listeners after DisableNetwork 0: %v, want [%d]", got.SocksAfter, socks)
	}
	for name, f := range map[string][2]float64{"site-a": got.FetchA, "site-b": got.FetchB, "site-a again": got.FetchAAgain,
		"new port": got.FetchNewPort, "after NEWNYM": got.FetchAfterNewnym} {
		if f[0] != 64<<10 || f[1] == 0 {
			t.Errorf("fetch %s: %v bytes on circuit %v", name, f[0], f[1])
		}
	}
	if got.FetchA[1] == got.FetchB[1] {
		t.Error("two sites' SOCKS credentials shared a circuit")
	}
	if got.FetchA[1] != got.FetchAAgain[1] {
		t.Error("one site's credentials got two circuits")
	}
	if len(got.SocksAfterSetconf) != 2 || got.SocksAfterSetconf[1] != newSocks {
		t.Errorf("SOCKS listeners after SETCONF: %v", got.SocksAfterSetconf)
	}
	if got.FetchNewPort[1] == got.FetchA[1] {
		t.Error("the new SocksPort's stream shared the first port's circuit")
	}
	if got.FetchAfterNewnym[1] == got.FetchA[1] {
		t.Error("NEWNYM: the same credentials kept their circuit")
	}

	// The owner is gone (the script exited with its control connection
	// open): gotor stops, cleanly.
	deadline := time.Now().Add(20 * time.Second)
	for alive(first.GotorPID) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(first.GotorPID) {
		t.Fatal("gotor still runs after its owning controller exited")
	}
	waitFor(t, logFile, "Owning controller connection has closed -- exiting now.", 5*time.Second)
}
