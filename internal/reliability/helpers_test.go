package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

// ownNetwork starts a private network for one test that kills or
// replaces nodes, so the package's shared network stays intact.
func ownNetwork(t *testing.T, opts testnet.Options) *testnet.Network {
	t.Helper()
	testnet.IntegrationEnabled(t)
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := testnet.Start(ctx, opts)
	if err != nil {
		t.Fatalf("own network: %v", err)
	}
	t.Cleanup(func() { n.Stop() })
	return n
}

// logBuffer collects a client's slog output for inspection.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// clientOpts tunes newClient.
type clientOpts struct {
	dataDir string // default: a new temporary directory
	level   slog.Level
	logs    *logBuffer // default: a new buffer
	// avoidAuthorities keeps the authorities out of exit circuits
	// (ExcludeNodes), so killing a circuit's hop never kills an authority.
	avoidAuthorities bool
	mutate           func(*config.Config)
	startTimeout     time.Duration
}

// newClient starts a gotor client on n and stops it at the end of the
// test.
func newClient(t *testing.T, n *testnet.Network, o clientOpts) (*client.Client, *logBuffer) {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = filepath.Join(t.TempDir(), "data")
	}
	if o.logs == nil {
		o.logs = &logBuffer{}
	}
	if o.startTimeout == 0 {
		o.startTimeout = 2 * time.Minute
	}
	cfg := itest.Config(t, n)
	cfg.DataDirectory = o.dataDir
	if o.avoidAuthorities {
		for _, a := range n.Authorities() {
			cfg.ExcludeNodes = append(cfg.ExcludeNodes, "$"+a.Fingerprint)
		}
	}
	if o.mutate != nil {
		o.mutate(cfg)
	}
	var w io.Writer = o.logs
	if os.Getenv("GOTOR_TEST_LOG") != "" {
		w = io.MultiWriter(o.logs, os.Stderr)
	}
	c, err := client.New(cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: o.level})))
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.startTimeout)
	defer cancel()
	start := time.Now()
	if err := c.Start(ctx); err != nil {
		c.Stop()
		t.Fatalf("client.Start: %v\n--- log ---\n%s", err, tail(o.logs.String(), 30))
	}
	t.Logf("gotor bootstrapped in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { c.Stop() })
	return c, o.logs
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// endlessServer writes data to every connection until the peer goes
// away, paced so that a transfer lasts as long as the test wants.
type endlessServer struct {
	ln   net.Listener
	port int
	wg   sync.WaitGroup
}

func startEndlessServer(t *testing.T) *endlessServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &endlessServer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				chunk := bytes.Repeat([]byte("gotor-reliability "), 455) // ~8 KiB
				for i := 0; i < 1_000_000; i++ {
					c.SetWriteDeadline(time.Now().Add(30 * time.Second))
					if _, err := c.Write(chunk); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond) // pacing, ~1.6 MB/s
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *endlessServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// startTransfer opens a stream to the endless server and reads until
// data flows. The returned channel receives the error that ends the
// transfer.
func startTransfer(t *testing.T, c *client.Client, s *endlessServer) (net.Conn, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		t.Fatalf("DialContext: %v", err)
	}
	buf := make([]byte, 64<<10)
	got := 0
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	for got < 256<<10 {
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("transfer did not start: %v after %d bytes", err, got)
		}
		got += k
	}
	done := make(chan error, 1)
	go func() {
		total := got
		for {
			// Any single read may wait at most this long: a transfer that
			// hangs instead of failing shows up as a deadline error.
			conn.SetReadDeadline(time.Now().Add(90 * time.Second))
			k, err := conn.Read(buf)
			total += k
			if err != nil {
				if err != io.EOF { // a clean EOF is passed on as is
					err = fmt.Errorf("after %d bytes: %w", total, err)
				}
				done <- err
				return
			}
		}
	}()
	return conn, done
}

// fetchHello fetches the hello page of srv through c on a fresh stream.
func fetchHello(ctx context.Context, c *client.Client, srv *testnet.HTTPServer) error {
	conn, err := c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
	body, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		return err
	}
	if !bytes.Contains(body, []byte(testnet.HelloBody)) {
		return fmt.Errorf("unexpected answer %q", body)
	}
	return nil
}

// untilSuccess retries f until it succeeds or limit passes, and returns
// how long it took and the attempts' errors.
func untilSuccess(limit time.Duration, f func(ctx context.Context) error) (time.Duration, []error) {
	start := time.Now()
	var errs []error
	for attempt := 0; attempt < 1000 && time.Since(start) < limit; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), limit-time.Since(start))
		err := f(ctx)
		cancel()
		if err == nil {
			return time.Since(start), errs
		}
		errs = append(errs, err)
		time.Sleep(200 * time.Millisecond) // back-off between attempts, not an assertion
	}
	return -1, errs
}

// torProc is a tor process a test started itself (a node restarted after
// KillNode).
type torProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// restartNode runs tor again with a killed node's torrc (same ports and
// data directory). With newIdentity, the node's keys are deleted first,
// so tor generates a new identity.
func restartNode(t *testing.T, n *testnet.Network, nd testnet.NodeInfo, newIdentity bool) *torProc {
	t.Helper()
	torPath, _, err := testnet.LookTor("")
	if err != nil {
		t.Fatal(err)
	}
	if newIdentity {
		keys := filepath.Join(nd.DataDir, "keys")
		ents, err := os.ReadDir(keys)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(keys, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []string{"fingerprint", "fingerprint-ed25519", "hashed-fingerprint"} {
			os.Remove(filepath.Join(nd.DataDir, f))
		}
	}
	out, err := os.OpenFile(filepath.Join(nd.DataDir, "restart.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(torPath, "--defaults-torrc", filepath.Join(n.Dir(), "empty"), "-f", filepath.Join(nd.DataDir, "torrc"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatal(err)
	}
	p := &torProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); out.Close(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// waitORPort waits until addr accepts TCP connections.
func waitORPort(t *testing.T, addr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not accepting connections after %v", addr, limit)
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
