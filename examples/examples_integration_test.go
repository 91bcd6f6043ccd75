// Package examples holds small programs that embed gotor; this test builds
// each and runs it against the private network of real C tor relays.
package examples

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

func build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./"+name).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

func torrc(t *testing.T, n *testnet.Network) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "torrc")
	if err := os.WriteFile(p, []byte(n.ClientTorrc(filepath.Join(dir, "data"), 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
	}
	return string(out)
}

func TestFetchExample(t *testing.T) {
	n := testnet.Shared(t)
	srv, err := testnet.StartHTTPServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out := run(t, build(t, "fetch"), "-f", torrc(t, n), srv.URL+"/random")
	if !strings.Contains(out, "200 OK") || !strings.Contains(out, srv.SHA256) {
		t.Fatalf("fetch printed %q; want 200 OK and sha256 %s", out, srv.SHA256)
	}
	t.Log(strings.TrimSpace(out))
}

func TestPerAppIsolationExample(t *testing.T) {
	n := testnet.Shared(t)
	srv, err := testnet.StartHTTPServer(1024)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out := run(t, build(t, "per-app-isolation"), "-f", torrc(t, n), srv.URL+"/")
	if !strings.Contains(out, "OK: mail and chat use different circuits") {
		t.Fatalf("per-app-isolation printed:\n%s", out)
	}
	t.Log(strings.TrimSpace(out))
}

func TestMultiUserProxyExample(t *testing.T) {
	n := testnet.Shared(t)
	srv, err := testnet.StartHTTPServer(1024)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", itest.FreePort(t))
	// A control port in the torrc the example loads, to read which
	// circuit each user's stream is on.
	ctrlPort := itest.FreePort(t)
	rc := torrc(t, n)
	f, err := os.OpenFile(rc, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "ControlPort 127.0.0.1:%d\n", ctrlPort)
	f.Close()
	cmd := exec.Command(build(t, "multiuser-proxy"), "-f", rc, "-listen", addr)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "multi-user SOCKS proxy on") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(2 * time.Minute):
		t.Fatal("proxy did not start")
	}
	for _, user := range []string{"alice", "bob"} {
		out, err := exec.Command("curl", "-sS", "--max-time", "60", "--socks5-hostname",
			fmt.Sprintf("%s:pass@%s", user, addr), srv.URL+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "hello") {
			t.Fatalf("%s through the proxy: %v %s", user, err, out)
		}
	}

	// alice and bob, each with a stream held open: two circuits.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	for _, user := range []string{"alice", "bob"} {
		conn, err := itest.SOCKSDial(ctx, addr, target, user)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		defer conn.Close()
	}
	ctl, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrlPort))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ctl.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(ctl, "AUTHENTICATE\r\nGETINFO stream-status\r\nQUIT\r\n")
	reply, _ := io.ReadAll(ctl)
	circs := map[string]bool{}
	for _, line := range strings.Split(string(reply), "\n") {
		// "ID STATUS CIRCID TARGET", after "250+stream-status=" or alone.
		line = strings.TrimPrefix(strings.TrimSpace(line), "250-stream-status=")
		f := strings.Fields(line)
		if len(f) == 4 && f[1] == "SUCCEEDED" && f[3] == target {
			circs[f[2]] = true
		}
	}
	if len(circs) != 2 {
		t.Fatalf("alice's and bob's open streams are on %d circuit(s), want 2; control port said:\n%s", len(circs), reply)
	}
}

// onion-server: an HTTP server reachable only as a .onion (ListenOnion);
// the C tor reference client fetches a file from it intact through the
// private network, and the address is the one written to -hs-dir.
func TestOnionServerExample(t *testing.T) {
	n := testnet.Shared(t)
	ref := testnet.SharedReferenceClient(t)
	root, hsDir := t.TempDir(), filepath.Join(t.TempDir(), "hs")
	data := make([]byte, 1<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(root, "file"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(build(t, "onion-server"), "-f", torrc(t, n), "-hs-dir", hsDir, "-root", root)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("onion-server exited: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("onion-server did not exit on SIGINT")
		}
	}()
	start := time.Now()
	host := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if h, ok := strings.CutPrefix(sc.Text(), "serving http://"); ok {
				host <- strings.TrimSuffix(h, "/")
			}
		}
		exited <- cmd.Wait()
	}()
	var name string
	select {
	case name = <-host:
	case err := <-exited:
		exited <- err
		t.Fatalf("onion-server exited before serving: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("onion-server did not publish its service")
	}
	t.Logf("onion-server published %s in %v", name, time.Since(start).Round(time.Millisecond))
	if b, err := os.ReadFile(filepath.Join(hsDir, "hostname")); err != nil || strings.TrimSpace(string(b)) != name {
		t.Fatalf("hostname file %q (%v), printed %q", b, err, name)
	}

	var out []byte
	var err error
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err = exec.Command("curl", "-sS", "--fail", "--max-time", "60", "--socks5-hostname", ref.SocksAddr(),
			"http://"+name+"/file").Output()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		t.Fatalf("C tor client fetching http://%s/file: %v", name, err)
	}
	if sha256.Sum256(out) != sha256.Sum256(data) {
		t.Fatalf("C tor client got %d bytes, not the 1 MiB file", len(out))
	}
	t.Logf("C tor client fetched 1 MiB from the example's .onion, %v after start", time.Since(start).Round(time.Millisecond))
}
