package main_test

// The gotor binary against the private network of real C tor relays:
// it runs from the same torrc a C tor client uses, unchanged, and
// applications reach the network through its SocksPort with curl.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/gotor/gotor/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

type gotorProc struct {
	cmd   *exec.Cmd
	socks string
	log   string
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func buildGotor(t *testing.T) string {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gotor-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "gotor")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// startGotor runs the gotor binary with the network's client torrc (the
// one C tor uses) plus extra lines, and waits for "Bootstrapped 100%".
func startGotor(t *testing.T, n *testnet.Network, extra string) *gotorProc {
	t.Helper()
	bin := buildGotor(t)
	dir := t.TempDir()
	port := itest.FreePort(t)
	torrcText := n.ClientTorrc(filepath.Join(dir, "data"), port) + extra
	torrcPath := filepath.Join(dir, "torrc")
	if err := os.WriteFile(torrcPath, []byte(torrcText), 0o600); err != nil {
		t.Fatal(err)
	}
	// The torrc is the one a C tor client uses, unchanged: gotor logs to
	// the file it names (DATADIR/notice.log), where readiness shows.
	cmd := exec.Command(bin, "-f", torrcPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gotorProc{cmd: cmd, socks: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(dir, "data", "notice.log")}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Signal(syscall.SIGQUIT) // goroutine dump on stderr
			time.Sleep(2 * time.Second)
			cmd.Process.Kill()
			t.Error("gotor did not exit within 10 s of SIGINT")
		}
	})
	waitFor(t, p.log, "Bootstrapped 100%", 90*time.Second)
	return p
}

func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--max-time", "100"}, args...)...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), fmt.Errorf("curl: %v: %s", err, ee.Stderr)
	}
	return string(out), err
}

var (
	sharedOnce sync.Once
	sharedG    *gotorProc
	sharedSrv  *testnet.HTTPServer
)

func shared(t *testing.T) (*gotorProc, *testnet.Network, *testnet.HTTPServer) {
	n := testnet.Shared(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed: apt-get install -y curl")
	}
	sharedOnce.Do(func() {
		srv, err := testnet.StartHTTPServer(10 << 20)
		if err != nil {
			t.Fatal(err)
		}
		sharedSrv = srv
	})
	if sharedG == nil {
		// Started per first test; the cleanup of that test stops it, so
		// give each test its own process if needed.
		g := startGotor(t, n, "")
		return g, n, sharedSrv
	}
	return sharedG, n, sharedSrv
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestCurlThroughGotor(t *testing.T) {
	g, n, srv := shared(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/random", srv.Port)
	for _, mode := range []string{"--socks5-hostname", "--socks4a", "--socks5", "--socks4"} {
		t.Run(strings.TrimPrefix(mode, "--"), func(t *testing.T) {
			start := time.Now()
			out, err := curl(t, mode, g.socks, url)
			if err != nil {
				t.Fatal(err)
			}
			if sum(out) != srv.SHA256 {
				t.Fatalf("%s: got %d bytes, SHA-256 mismatch", mode, len(out))
			}
			t.Logf("%s: 10 MiB in %v", mode, time.Since(start).Round(time.Millisecond))
		})
	}

	t.Run("upload", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "up")
		data := strings.Repeat("gotor upload test\n", (10<<20)/18)
		os.WriteFile(f, []byte(data), 0o600)
		out, err := curl(t, "--socks5-hostname", g.socks, "--data-binary", "@"+f, fmt.Sprintf("http://127.0.0.1:%d/echo", srv.Port))
		if err != nil {
			t.Fatal(err)
		}
		if sum(out) != sum(data) {
			t.Fatalf("echo of %d bytes came back as %d bytes, different", len(data), len(out))
		}
	})

	t.Run("parallel50", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		small := fmt.Sprintf("http://127.0.0.1:%d/", srv.Port)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := curl(t, "--socks5-hostname", g.socks, small)
				if err == nil && !strings.Contains(out, "hello") {
					err = fmt.Errorf("unexpected body %q", out)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		failed := 0
		for err := range errs {
			if err != nil {
				failed++
				t.Log(err)
			}
		}
		if failed > 0 {
			t.Fatalf("%d of 50 parallel downloads failed", failed)
		}
	})

	t.Run("exit-resolves-name", func(t *testing.T) {
		before := n.DNS().Queries(testnet.DefaultTestName)
		out, err := curl(t, "--socks5-hostname", g.socks, fmt.Sprintf("http://%s:%d/", testnet.DefaultTestName, srv.Port))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "hello") {
			t.Fatalf("unexpected body %q", out)
		}
		if n.DNS().Queries(testnet.DefaultTestName) <= before {
			t.Fatal("the exits' DNS responder saw no query: the name was not resolved at the exit")
		}
	})

	t.Run("connection-refused", func(t *testing.T) {
		// The exit learns of the refusal asynchronously and C tor exits
		// then send END reason MISC, not CONNECTREFUSED; so the reply
		// code must be the one the C tor client sends in the same case.
		url := fmt.Sprintf("http://127.0.0.1:%d/", itest.FreePort(t))
		_, err := curl(t, "--socks5-hostname", g.socks, url)
		ref := testnet.SharedReferenceClient(t)
		_, refErr := curl(t, "--socks5-hostname", ref.SocksAddr(), url)
		if err == nil || refErr == nil {
			t.Fatalf("closed port: gotor err %v, C tor err %v; want both to fail", err, refErr)
		}
		if socksCode(err) != socksCode(refErr) {
			t.Fatalf("closed port: gotor replied %s, C tor %s", socksCode(err), socksCode(refErr))
		}
		t.Logf("closed port: gotor and C tor both reply SOCKS5 code %s", socksCode(err))
	})

	t.Run("unresolvable", func(t *testing.T) {
		_, err := curl(t, "--socks5-hostname", g.socks, "http://no-such-name.invalid/")
		if err == nil || !strings.Contains(err.Error(), "(4)") {
			t.Fatalf("want SOCKS 'host unreachable', got %v", err)
		}
	})
}

// socksCode extracts the SOCKS5 reply code curl prints as "(N)".
func socksCode(err error) string {
	s := err.Error()
	i := strings.LastIndex(s, "(")
	j := strings.LastIndex(s, ")")
	if i < 0 || j < i {
		return "?"
	}
	return s[i+1 : j]
}
