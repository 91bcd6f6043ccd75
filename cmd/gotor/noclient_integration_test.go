package main_test

// No command-line flag of C tor's starts a client: each runs against a
// torrc whose only directory authority is a local listener, which would
// see any bootstrap attempt, and must exit on its own.

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ctorFlags are C tor 0.4.9's command-line-only flags
// (CMDLINE_ONLY_OPTIONS in src/app/config/config.c), with a value for
// those that take one.
var ctorFlags = []struct {
	flag, value string
	modifier    bool // changes how another command runs; alone with a torrc it runs tor, as in C tor
}{
	{"--torrc-file", "TORRC", true}, {"-f", "TORRC", true}, {"--allow-missing-torrc", "", true},
	{"--defaults-torrc", "TORRC", true}, {"--ignore-missing-torrc", "", true},
	{"--quiet", "", true}, {"--hush", "", true},
	{"--hash-password", "pw", false}, {"--dump-config", "short", false}, {"--dump-config", "full", false},
	{"--dump-config", "", false}, {"--list-fingerprint", "", false}, {"--keygen", "", false},
	{"--key-expiration", "sign", false}, {"--format", "iso8601", false}, {"--newpass", "", false},
	{"--no-passphrase", "", false}, {"--passphrase-fd", "0", false}, {"--verify-config", "", false},
	{"--version", "", false}, {"--list-modules", "", false}, {"--library-versions", "", false},
	{"--help", "", false}, {"-h", "", false}, {"--list-torrc-options", "", false},
	{"--list-deprecated-options", "", false}, {"--nt-service", "", false}, {"-nt-service", "", false},
	{"--dbg-dump-subsystem-list", "", false},
}

func TestNoFlagStartsClient(t *testing.T) {
	torBin(t) // the integration-test gate
	gotor := buildGotor(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	env := []string{"XDG_CACHE_HOME=" + cache, "HOME=" + filepath.Join(dir, "home")}
	ln := listen(t)
	conns := countConns(ln)
	torrc := offlineTorrc(t, dir, ln, "")

	// run reports whether gotor exited within 20 s (a client keeps
	// retrying its bootstrap and never does).
	run := func(args ...string) (bool, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, gotor, args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		err := cmd.Run()
		if ctx.Err() != nil {
			return false, -1
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return true, ee.ExitCode()
		}
		return true, 0
	}
	for _, f := range ctorFlags {
		args := []string{f.flag}
		if f.value == "TORRC" {
			args = append(args, torrc)
		} else if f.value != "" {
			args = append(args, f.value)
		}
		var variants [][]string
		if f.modifier {
			// Before a command: it must not take the command as its value.
			variants = [][]string{append(append([]string{}, args...), "--verify-config", "-f", torrc)}
		} else {
			// With the torrc, and with it as the defaults file only (no
			// -f, as a new user would type the flag).
			variants = [][]string{
				append(append([]string{}, args...), "-f", torrc),
				append(append([]string{}, args...), "--defaults-torrc", torrc),
			}
		}
		for _, a := range variants {
			exited, code := run(a...)
			if !exited {
				t.Errorf("gotor %q did not exit within 20 s: it started a client", a)
				continue
			}
			t.Logf("gotor %q: exit %d", a, code)
		}
	}
	if n := conns(); n != 0 {
		t.Errorf("%d connections to the directory authority", n)
	}
	if _, err := os.Stat(filepath.Join(cache, "gotor")); err == nil {
		t.Errorf("a flag created the default DataDirectory %s", filepath.Join(cache, "gotor"))
	}

	// The detector works: plain "-f torrc" does start a client, which
	// connects to the authority and keeps running.
	ln2 := listen(t)
	defer ln2.Close()
	dir2 := filepath.Join(dir, "control")
	os.MkdirAll(dir2, 0o700)
	cmd := exec.Command(gotor, "-f", offlineTorrc(t, dir2, ln2, ""))
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	ln2.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
	if c, err := ln2.Accept(); err != nil {
		t.Errorf("gotor -f torrc never connected to its authority (%v): the check above proves nothing", err)
	} else {
		c.Close()
	}
	select {
	case <-exited:
		t.Error("gotor -f torrc exited on its own")
	default:
	}
	cmd.Process.Kill()
	<-exited
}
