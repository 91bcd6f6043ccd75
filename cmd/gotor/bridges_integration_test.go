package main_test

// Bridges, pluggable transports and an outbound proxy, end to end on the
// private network (issue 19): the gotor binary from a C tor style torrc,
// and the Go API (client with the config fields set in Go), reach the
// network through a C tor obfs4 bridge (obfs4proxy on both sides) or a
// plain bridge, and while they run the kernel's socket table shows they
// connect to nothing else. One obfs4 and one plain bridge serve every
// test of the package (itest.Bridges).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

var bridgeHTTP struct {
	once sync.Once
	srv  *testnet.HTTPServer
	err  error
}

// bridgeSetup returns the network, its bridges and a 10 MiB HTTP server.
func bridgeSetup(t *testing.T) (*testnet.Network, *testnet.Bridge, *testnet.Bridge, *testnet.HTTPServer) {
	t.Helper()
	n := testnet.Shared(t)
	obfs4, plain := itest.Bridges(t, n)
	return n, obfs4, plain, httpServer(t)
}

// httpServer is the package's 10 MiB HTTP server for these tests.
func httpServer(t *testing.T) *testnet.HTTPServer {
	t.Helper()
	bridgeHTTP.once.Do(func() { bridgeHTTP.srv, bridgeHTTP.err = testnet.StartHTTPServer(10 << 20) })
	if bridgeHTTP.err != nil {
		t.Fatal(bridgeHTTP.err)
	}
	return bridgeHTTP.srv
}

func addrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// checkEndpoints fails the test unless every label's connections went
// only where allowed says, and each label was seen connecting at all (so
// that the check cannot pass on an empty table).
func checkEndpoints(t *testing.T, w *itest.Endpoints, allowed map[string]func(netip.AddrPort) bool) {
	t.Helper()
	w.Stop()
	seen, samples := w.Seen()
	for label, ok := range allowed {
		if len(seen[label]) == 0 {
			t.Errorf("%s: no outbound connection seen in %d samples of the socket table", label, samples)
		}
		for r, n := range seen[label] {
			if !ok(r) {
				t.Errorf("%s connected to %v (in %d of %d samples): not allowed", label, r, n, samples)
			}
		}
	}
	t.Logf("socket table sampled %d times; outbound endpoints %v; listeners %v", samples, seen, w.Listeners())
}

// listenerOf allows the addresses label listened on (a transport's SOCKS
// listener, restarted on a new port after it died).
func listenerOf(w *itest.Endpoints, label string) func(netip.AddrPort) bool {
	return func(a netip.AddrPort) bool { return w.Listeners()[label][a] }
}

func only(addrs ...netip.AddrPort) func(netip.AddrPort) bool {
	return func(a netip.AddrPort) bool { return slices.Contains(addrs, a) }
}

func curlSum(t *testing.T, socks, url string) (string, error) {
	t.Helper()
	out, err := curl(t, "--socks5-hostname", socks, url)
	return sum(out), err
}

// The binary with a C tor style torrc and the obfs4 bridge line:
// bootstrap, 10 MiB intact, only the transport's listener and the
// bridge's obfs4 port in the socket tables; then the transport process is
// killed, which gotor reports, and a new download works through a new
// one.
func TestBridgeObfs4Torrc(t *testing.T) {
	n, obfs4, _, srv := bridgeSetup(t)
	start := time.Now()
	g := launchGotor(t, n, "UseBridges 1\nBridge "+obfs4.Line()+"\nClientTransportPlugin obfs4 exec "+itest.Obfs4proxy(t)+"\n")
	pid := g.cmd.Process.Pid
	pts := func() []int { return itest.Children(pid, "obfs4proxy") }
	w := itest.WatchEndpoints(t, func() map[string][]int { return map[string][]int{"gotor": {pid}, "obfs4proxy": pts()} })
	waitFor(t, g.log, "Bootstrapped 100%", 90*time.Second)
	t.Logf("gotor bootstrapped through the obfs4 bridge in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if got, err := curlSum(t, g.socks, srv.URL+"/random"); err != nil || got != srv.SHA256 {
		t.Fatalf("10 MiB through the obfs4 bridge: %v (sha256 %s, want %s)", err, got, srv.SHA256)
	}
	t.Logf("10 MiB through the obfs4 bridge in %v", time.Since(start).Round(time.Millisecond))

	old := pts()
	if len(old) != 1 {
		t.Fatalf("obfs4proxy children of gotor: %v, want one", old)
	}
	if err := syscall.Kill(old[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, g.log, "managed pluggable transport exited", 30*time.Second)
	start = time.Now()
	var err error
	for time.Since(start) < 90*time.Second {
		var got string
		if got, err = curlSum(t, g.socks, srv.URL+"/random"); err == nil && got == srv.SHA256 {
			break
		}
		if err == nil {
			err = fmt.Errorf("sha256 %s, want %s", got, srv.SHA256)
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("after the transport was killed: %v", err)
	}
	if now := pts(); len(now) != 1 || now[0] == old[0] {
		t.Errorf("obfs4proxy children after the kill: %v (the killed one was %d)", now, old[0])
	}
	t.Logf("transport %d killed; 10 MiB again %v later through a new one", old[0], time.Since(start).Round(time.Millisecond))
	checkEndpoints(t, w, map[string]func(netip.AddrPort) bool{
		"gotor":      listenerOf(w, "obfs4proxy"),
		"obfs4proxy": only(addrPort(t, obfs4.TransportAddr)),
	})
	// On exit gotor stops its transport (pt-spec §3.4).
	last := pts()
	stopGotor(t, g)
	for _, p := range last {
		if err := syscall.Kill(p, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("obfs4proxy %d still runs after gotor exited (%v)", p, err)
		}
	}
}

// A wrong cert: the obfs4 bridge stays silent, gotor does not bootstrap
// and its log and the control port's bootstrap status say which bridge
// fails, through which transport, and that the cert may be the cause.
func TestBridgeWrongCertTorrc(t *testing.T) {
	n, obfs4, _, _ := bridgeSetup(t)
	bad := strings.Replace(obfs4.Line(), "cert="+obfs4.Cert, "cert="+flipped(obfs4.Cert), 1)
	ctlPort := itest.FreePort(t)
	g := launchGotor(t, n, fmt.Sprintf("UseBridges 1\nBridge %s\nClientTransportPlugin obfs4 exec %s\nControlPort %d\n", bad, itest.Obfs4proxy(t), ctlPort))
	events := make(chan string, 1)
	go func() { events <- bootstrapWarning(fmt.Sprintf("127.0.0.1:%d", ctlPort), 60*time.Second) }()
	waitFor(t, g.log, "Problem bootstrapping", 60*time.Second)
	ev := <-events
	for _, want := range []string{"650 STATUS_CLIENT WARN BOOTSTRAP", "TAG=conn", "$" + obfs4.Fingerprint + " (obfs4)", "cert", "REASON=TIMEOUT", "RECOMMENDATION=warn"} {
		if !strings.Contains(ev, want) {
			t.Errorf("control port event %q lacks %q", ev, want)
		}
	}
	b, _ := os.ReadFile(g.log)
	line := lineWith(string(b), "Problem bootstrapping")
	for _, want := range []string{"$" + obfs4.Fingerprint + " (obfs4)", "cert", "TIMEOUT"} {
		if !strings.Contains(line, want) {
			t.Errorf("problem line %q lacks %q", line, want)
		}
	}
	if strings.Contains(string(b), "Bootstrapped 100%") {
		t.Error("bootstrapped with a wrong cert")
	}
	t.Log(line)
}

// A missing transport program is an error at start-up: gotor exits 1
// at once, naming the program.
func TestBridgeMissingTransportTorrc(t *testing.T) {
	n, obfs4, _, _ := bridgeSetup(t)
	missing := filepath.Join(t.TempDir(), "obfs4proxy-not-installed")
	g := launchGotor(t, n, "UseBridges 1\nBridge "+obfs4.Line()+"\nClientTransportPlugin obfs4 exec "+missing+"\n")
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("gotor still runs 30 s after start with a missing transport program")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	b, _ := os.ReadFile(g.log)
	line := lineWith(string(b), "bootstrap failed")
	if !strings.Contains(line, missing) || !strings.Contains(line, "cannot start") {
		t.Errorf("log lacks the program and the reason:\n%s", b)
	}
	t.Log(line)
}

// Both bridges through a SOCKS5 proxy with credentials: gotor connects
// only to the proxy and its transport's listener, the transport only to
// the proxy (TOR_PT_PROXY), and the proxy is asked for the bridges only.
func TestBridgeSocks5ProxyTorrc(t *testing.T) {
	n, obfs4, plain, srv := bridgeSetup(t)
	px := itest.StartSOCKS5Server(t, "gotor-user", "gotor-pass")
	g := launchGotor(t, n, "UseBridges 1\nBridge "+obfs4.Line()+"\nBridge "+plain.Line()+
		"\nClientTransportPlugin obfs4 exec "+itest.Obfs4proxy(t)+
		"\nSocks5Proxy "+px.Addr+"\nSocks5ProxyUsername gotor-user\nSocks5ProxyPassword gotor-pass\n")
	pid := g.cmd.Process.Pid
	w := itest.WatchEndpoints(t, func() map[string][]int {
		return map[string][]int{"gotor": {pid}, "obfs4proxy": itest.Children(pid, "obfs4proxy")}
	})
	waitFor(t, g.log, "Bootstrapped 100%", 90*time.Second)
	start := time.Now()
	if got, err := curlSum(t, g.socks, srv.URL+"/random"); err != nil || got != srv.SHA256 {
		t.Fatalf("10 MiB through the proxy: %v (sha256 %s, want %s)", err, got, srv.SHA256)
	}
	t.Logf("10 MiB through the SOCKS5 proxy and a bridge in %v", time.Since(start).Round(time.Millisecond))
	proxyAddr := addrPort(t, px.Addr)
	pt := listenerOf(w, "obfs4proxy")
	checkEndpoints(t, w, map[string]func(netip.AddrPort) bool{
		"gotor":      func(a netip.AddrPort) bool { return a == proxyAddr || pt(a) },
		"obfs4proxy": only(proxyAddr),
	})
	dests := px.Destinations()
	for d := range dests {
		if d != obfs4.TransportAddr && d != plain.ORAddr() {
			t.Errorf("the proxy was asked for %s, not a bridge", d)
		}
	}
	if dests[obfs4.TransportAddr] == 0 || dests[plain.ORAddr()] == 0 || px.Authenticated() == 0 {
		t.Errorf("proxy destinations %v, %d authenticated: want both bridges, with credentials", dests, px.Authenticated())
	}
	t.Logf("proxy destinations %v", dests)
}

// An outbound proxy without bridges: every connection of gotor is to the
// proxy, which is asked for relays' ORPorts only (authorities'
// included: directory requests go over BEGIN_DIR too).
func TestSocks5ProxyTorrc(t *testing.T) {
	n, srv := testnet.Shared(t), httpServer(t)
	px := itest.StartSOCKS5Server(t, "", "")
	g := launchGotor(t, n, "Socks5Proxy "+px.Addr+"\n")
	pid := g.cmd.Process.Pid
	w := itest.WatchEndpoints(t, func() map[string][]int { return map[string][]int{"gotor": {pid}} })
	waitFor(t, g.log, "Bootstrapped 100%", 90*time.Second)
	if got, err := curlSum(t, g.socks, srv.URL+"/random"); err != nil || got != srv.SHA256 {
		t.Fatalf("10 MiB through the proxy: %v (sha256 %s, want %s)", err, got, srv.SHA256)
	}
	checkEndpoints(t, w, map[string]func(netip.AddrPort) bool{"gotor": only(addrPort(t, px.Addr))})
	orports := map[string]bool{}
	for _, r := range n.Relays() {
		orports[r.ORAddr()] = true
	}
	dests := px.Destinations()
	for d := range dests {
		if !orports[d] {
			t.Errorf("the proxy was asked for %s, not a relay's ORPort", d)
		}
	}
	if len(dests) < 2 {
		t.Errorf("proxy destinations %v: want the guard's and the directories' at least", dests)
	}
	t.Logf("proxy destinations %v", dests)
}

// The Go API: UseBridges, Bridges and ClientTransportPlugins set in Go;
// bootstrap, 10 MiB intact over DialContext, and in the socket table of
// this test process (which runs no other client while it does) only the
// transport's listener, and of its obfs4proxy only the bridge's port.
func TestBridgeObfs4GoAPI(t *testing.T) {
	n, obfs4, _, srv := bridgeSetup(t)
	self := os.Getpid()
	base, _ := itest.Outbound(self)
	cfg := itest.Config(t, n)
	cfg.SocksPorts = nil
	cfg.UseBridges = true
	cfg.Bridges = []string{obfs4.Line()}
	cfg.ClientTransportPlugins = []string{"obfs4 exec " + itest.Obfs4proxy(t)}
	w := itest.WatchEndpoints(t, func() map[string][]int {
		return map[string][]int{"test process": {self}, "obfs4proxy": itest.Children(self, "obfs4proxy")}
	})
	c := itest.Open(t, cfg, nil)
	get(t, c, srv, "/random", srv.SHA256)
	pt := listenerOf(w, "obfs4proxy")
	checkEndpoints(t, w, map[string]func(netip.AddrPort) bool{
		"test process": func(a netip.AddrPort) bool { return pt(a) || slices.Contains(base, a) },
		"obfs4proxy":   only(addrPort(t, obfs4.TransportAddr)),
	})
}

// A plain bridge line without fingerprint (the identity is learnt from
// the bridge), through the Go API: only the bridge's ORPort is
// contacted.
func TestBridgePlainGoAPI(t *testing.T) {
	n, _, plain, srv := bridgeSetup(t)
	self := os.Getpid()
	base, _ := itest.Outbound(self)
	cfg := itest.Config(t, n)
	cfg.SocksPorts = nil
	cfg.UseBridges = true
	cfg.Bridges = []string{plain.ORAddr()}
	w := itest.WatchEndpoints(t, func() map[string][]int { return map[string][]int{"test process": {self}} })
	c := itest.Open(t, cfg, nil)
	get(t, c, srv, "/random", srv.SHA256)
	bridgeAddr := addrPort(t, plain.ORAddr())
	checkEndpoints(t, w, map[string]func(netip.AddrPort) bool{
		"test process": func(a netip.AddrPort) bool { return a == bridgeAddr || slices.Contains(base, a) },
	})
}

// The dialer hook: a Go function serves a transport name, with the
// bridge line's arguments (here it simply connects to the plain bridge).
func TestBridgeTransportDialerGoAPI(t *testing.T) {
	n, _, plain, srv := bridgeSetup(t)
	var mu sync.Mutex
	var calls []string
	cfg := itest.Config(t, n)
	cfg.SocksPorts = nil
	cfg.UseBridges = true
	cfg.Bridges = []string{"inproc " + plain.Line() + " mode=direct mode=plain key=a;b=c"}
	cfg.TransportDialers = map[string]config.TransportDialer{
		"inproc": func(ctx context.Context, addr string, args map[string][]string) (net.Conn, error) {
			mu.Lock()
			calls = append(calls, fmt.Sprintf("%s %v", addr, args))
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	c := itest.Open(t, cfg, nil)
	get(t, c, srv, "/", sha(testnet.HelloBody))
	mu.Lock()
	defer mu.Unlock()
	want := plain.ORAddr() + " map[key:[a;b=c] mode:[direct plain]]"
	if len(calls) == 0 || calls[0] != want {
		t.Errorf("TransportDialer calls %q, want each %q", calls, want)
	}
	t.Logf("%d connections through the in-process transport", len(calls))
}

// A Bridge line whose fingerprint is another relay's: the client does
// not bootstrap, and the error and the log say which bridge and why.
func TestBridgeWrongFingerprintGoAPI(t *testing.T) {
	n, obfs4, plain, _ := bridgeSetup(t)
	cfg := itest.Config(t, n)
	cfg.UseBridges = true
	cfg.Bridges = []string{strings.Replace(plain.Line(), plain.Fingerprint, obfs4.Fingerprint, 1)}
	var logs syncBuffer
	c, err := client.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Start(ctx)
	if err == nil {
		t.Fatal("bootstrapped through a bridge with the wrong identity")
	}
	for _, want := range []string{"no usable bridge", "bridge $" + obfs4.Fingerprint, "wrong identity"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start: %v; want %q", err, want)
		}
	}
	if l := logs.String(); !strings.Contains(l, "Problem bootstrapping") || !strings.Contains(l, "IDENTITY") {
		t.Errorf("log lacks the bootstrap problem:\n%s", l)
	}
	if p := c.Bootstrap(); p.Percent >= 25 {
		t.Errorf("bootstrap reached %v", p)
	}
	t.Log(err)
}

// get fetches path through c (over DialContext) and checks its sha256.
func get(t *testing.T, c *client.Client, srv *testnet.HTTPServer, path, want string) {
	t.Helper()
	start := time.Now()
	resp, err := c.HTTPClient().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if sha(string(body)) != want {
		t.Fatalf("GET %s: %d bytes, sha256 mismatch", path, len(body))
	}
	t.Logf("GET %s: %d bytes intact in %v", path, len(body), time.Since(start).Round(time.Millisecond))
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// launchGotor starts the binary like startGotor, without waiting for
// the bootstrap; the test's end stops it (stopGotor) if it still runs.
func launchGotor(t *testing.T, n *testnet.Network, extra string) *gotorProc {
	t.Helper()
	bin := buildGotor(t)
	dir := t.TempDir()
	port := itest.FreePort(t)
	torrcPath := filepath.Join(dir, "torrc")
	if err := os.WriteFile(torrcPath, []byte(n.ClientTorrc(filepath.Join(dir, "data"), port)+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", torrcPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gotorProc{cmd: cmd, socks: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(dir, "data", "notice.log")}
	t.Cleanup(func() { stopGotor(t, g) })
	return g
}

// stopGotor stops a running gotor with SIGINT; it must exit within 10 s.
func stopGotor(t *testing.T, g *gotorProc) {
	if g.cmd.ProcessState != nil || g.cmd.Process.Signal(os.Interrupt) != nil {
		return // exited (and waited for) already
	}
	done := make(chan struct{})
	go func() { g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.cmd.Process.Kill()
		<-done
		t.Error("gotor did not exit within 10 s of SIGINT")
	}
}

// bootstrapWarning reads the first STATUS_CLIENT BOOTSTRAP warning from
// the control port at addr (no authentication configured), or what went
// wrong.
func bootstrapWarning(addr string, within time.Duration) string {
	deadline := time.Now().Add(within)
	var conn net.Conn
	var err error
	for time.Now().Before(deadline) {
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if conn == nil {
		return fmt.Sprintf("control port: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	fmt.Fprintf(conn, "AUTHENTICATE\r\nSETEVENTS STATUS_CLIENT\r\n")
	r := bufio.NewReader(conn)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return fmt.Sprintf("control port: %v", err)
		}
		if strings.HasPrefix(l, "650 STATUS_CLIENT WARN BOOTSTRAP") {
			return strings.TrimSpace(l)
		}
	}
}

func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// flipped changes a cert's first two characters (another valid-looking
// cert).
func flipped(s string) string {
	r := []byte(s)
	for i := 0; i < 2 && i < len(r); i++ {
		if r[i] == 'A' {
			r[i] = 'B'
		} else {
			r[i] = 'A'
		}
	}
	return string(r)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
