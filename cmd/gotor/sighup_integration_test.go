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

// SIGHUP re-reads the torrc: Log lines take effect at once (a new log
// file is opened), other changed options are named as needing a restart.
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
	waitFor(t, logB, "take effect only after a restart: SocksPorts", 10*time.Second)
}
