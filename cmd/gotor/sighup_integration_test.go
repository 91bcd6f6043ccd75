package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/gotor/gotor/internal/testnet"
)

func waitFor(t *testing.T, path, text string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), text) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%q not in %s within %v:\n%s", text, path, within, b)
}

// SIGHUP re-reads the torrc and applies it, as SIGNAL RELOAD does: Log
// lines take effect at once (a new log file is opened), a changed
// SocksPort is opened and the old one closed, while gotor keeps running.
// With __ReloadTorrcOnSIGHUP 0 the torrc is not read again.
func TestSIGHUPReload(t *testing.T) {
	n := testnet.Shared(t)
	bin := buildGotor(t)
	dir := t.TempDir()
	logA, logB := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	port := itest.FreePort(t)
	base := n.ClientTorrc(filepath.Join(dir, "data"), port)
	torrc := filepath.Join(dir, "torrc")
	os.WriteFile(torrc, []byte(base+"Log notice file "+logA+"\n"), 0o600)
	cmd := exec.Command(bin, "-f", torrc)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	waitFor(t, logA, "Bootstrapped 100%", 90*time.Second)

	newPort := itest.FreePort(t)
	changed := strings.Replace(base, fmt.Sprintf("SocksPort 127.0.0.1:%d", port), fmt.Sprintf("SocksPort 127.0.0.1:%d", newPort), 1)
	os.WriteFile(torrc, []byte(changed+"Log notice file "+logB+"\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, logB, fmt.Sprintf("Opened SOCKS listener on 127.0.0.1:%d", newPort), 10*time.Second)
	waitFor(t, logB, fmt.Sprintf("Closing no-longer-configured SOCKS listener on 127.0.0.1:%d", port), 10*time.Second)
	srv, err := testnet.StartHTTPServer(1 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := curl(t, "-o", "/dev/null", "--socks5-hostname", fmt.Sprintf("127.0.0.1:%d", newPort), srv.URL+"/random"); err != nil {
		t.Errorf("fetch through the SocksPort SIGHUP opened: %v", err)
	}
	if _, err := curl(t, "-o", "/dev/null", "--max-time", "10", "--socks5-hostname", fmt.Sprintf("127.0.0.1:%d", port), srv.URL+"/random"); err == nil {
		t.Error("the SocksPort SIGHUP closed still works")
	}

	// __ReloadTorrcOnSIGHUP 0: the next SIGHUP leaves the SocksPort alone.
	third := itest.FreePort(t)
	os.WriteFile(torrc, []byte(strings.Replace(changed, fmt.Sprintf("SocksPort 127.0.0.1:%d", port), fmt.Sprintf("SocksPort 127.0.0.1:%d", third), 1)+
		"Log notice file "+logB+"\n__ReloadTorrcOnSIGHUP 0\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP) // reads the 0 itself
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(logB)
		if strings.Count(string(b), "Received reload signal") == 1 { // the first reload logged it before switching to b.log
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second reload not logged:\n%s", b)
		}
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, logB, "Not reloading config file: the controller told us not to.", 10*time.Second)
}
