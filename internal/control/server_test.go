package control

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type testServer struct {
	s    *Server
	b    *fakeBackend
	addr string
	dir  string
}

func startServer(t *testing.T, mod func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		Listeners:             []ListenerConfig{{Addr: "127.0.0.1:0"}},
		CookieAuthentication:  true,
		DataDirectory:         dir,
		HashedControlPassword: []string{torHashFoo},
		BWInterval:            50 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	b := newFakeBackend()
	s, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ts := &testServer{s: s, b: b, dir: dir}
	for _, a := range s.Addrs() {
		if a.Network() == "tcp" {
			ts.addr = a.String()
		}
	}
	return ts
}

func (ts *testServer) dial(t *testing.T) *testClient {
	return dialClient(t, "tcp", ts.addr)
}

func (ts *testServer) authed(t *testing.T) *testClient {
	c := ts.dial(t)
	expect(t, c.do(`AUTHENTICATE "foo"`), "250 OK")
	return c
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("reply mismatch\n got: %q\nwant: %q", got, want)
	}
}

func TestProtocolInfo(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t)
	cookie := filepath.Join(ts.dir, "control_auth_cookie")
	expect(t, c.do("PROTOCOLINFO 1"),
		"250-PROTOCOLINFO 1",
		`250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE="`+cookie+`"`,
		`250-VERSION Tor="0.4.9.0-gotor"`,
		"250 OK")
	// A second PROTOCOLINFO before authentication is refused (C tor).
	expect(t, c.do("PROTOCOLINFO"), "514 Authentication required.")
	c.expectClosed()
}

func TestProtocolInfoNull(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.CookieAuthentication = false
		c.HashedControlPassword = nil
		c.AllowNullAuth = true
	})
	c := ts.dial(t)
	r := c.do("PROTOCOLINFO")
	if r[1] != "250-AUTH METHODS=NULL" {
		t.Fatalf("got %q", r)
	}
	expect(t, c.do("AUTHENTICATE"), "250 OK")
	expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
}

func TestNoAuthConfigured(t *testing.T) {
	if _, err := New(Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}}}, newFakeBackend()); err == nil {
		t.Fatal("expected error without auth methods")
	}
	if _, err := New(Config{Listeners: []ListenerConfig{{Addr: "0.0.0.0:9051"}}, AllowNullAuth: true}, newFakeBackend()); err == nil {
		t.Fatal("expected error for non-loopback")
	}
}

func TestAuthCookie(t *testing.T) {
	ts := startServer(t, nil)
	cookie, err := os.ReadFile(filepath.Join(ts.dir, "control_auth_cookie"))
	if err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t)
	expect(t, c.do("AUTHENTICATE "+hex.EncodeToString(cookie)), "250 OK")
	expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")

	// Cookie as a QuotedString of raw bytes is also valid, if printable;
	// a wrong cookie fails with 515 and closes.
	c2 := ts.dial(t)
	bad := make([]byte, 32)
	r := c2.do("AUTHENTICATE " + hex.EncodeToString(bad))
	if len(r) != 1 || !strings.HasPrefix(r[0], "515 Authentication failed: ") {
		t.Fatalf("got %q", r)
	}
	c2.expectClosed()
}

func TestAuthPassword(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t)
	expect(t, c.do(`AUTHENTICATE "foo"`), "250 OK")
	// Hex-encoded password works too.
	c = ts.dial(t)
	expect(t, c.do("AUTHENTICATE "+hex.EncodeToString([]byte("foo"))), "250 OK")

	c = ts.dial(t)
	expect(t, c.do(`AUTHENTICATE "wrong"`),
		"515 Authentication failed: Password did not match HashedControlPassword *or* authentication cookie.")
	c.expectClosed()

	ts2 := startServer(t, func(c *Config) { c.CookieAuthentication = false })
	c = ts2.dial(t)
	expect(t, c.do(`AUTHENTICATE "wrong"`),
		"515 Authentication failed: Password did not match HashedControlPassword value from configuration")
	c.expectClosed()
	c = ts2.dial(t)
	r := c.do(`AUTHENTICATE nothex`)
	if !strings.HasPrefix(r[0], "551 Invalid hexadecimal encoding.") {
		t.Fatalf("got %q", r)
	}
	c.expectClosed()
}

func TestAuthSafeCookie(t *testing.T) {
	ts := startServer(t, nil)
	cookie, _ := os.ReadFile(filepath.Join(ts.dir, "control_auth_cookie"))
	c := ts.dial(t)
	nonce := make([]byte, 32)
	rand.Read(nonce)
	r := c.do("AUTHCHALLENGE SAFECOOKIE " + hex.EncodeToString(nonce))
	var sh, sn string
	if _, err := fmt.Sscanf(r[0], "250 AUTHCHALLENGE SERVERHASH=%64s SERVERNONCE=%64s", &sh, &sn); err != nil {
		t.Fatalf("%q: %v", r, err)
	}
	serverNonce, _ := hex.DecodeString(sn)
	msg := append(append(append([]byte{}, cookie...), nonce...), serverNonce...)
	m := hmac.New(sha256.New, []byte("Tor safe cookie authentication server-to-controller hash"))
	m.Write(msg)
	if !strings.EqualFold(hex.EncodeToString(m.Sum(nil)), sh) {
		t.Fatal("server hash mismatch")
	}
	m = hmac.New(sha256.New, []byte("Tor safe cookie authentication controller-to-server hash"))
	m.Write(msg)
	expect(t, c.do("AUTHENTICATE "+hex.EncodeToString(m.Sum(nil))), "250 OK")

	// After AUTHCHALLENGE, the plain cookie is no longer acceptable.
	c = ts.dial(t)
	c.do("AUTHCHALLENGE SAFECOOKIE " + hex.EncodeToString(nonce))
	r = c.do("AUTHENTICATE " + hex.EncodeToString(cookie))
	expect(t, r, "515 Authentication failed: Safe cookie response did not match expected value.")
	c.expectClosed()

	c = ts.dial(t)
	expect(t, c.do("AUTHCHALLENGE HMAC x"), "513 AUTHCHALLENGE only supports SAFECOOKIE authentication")
	c.expectClosed()
}

func TestPreAuth(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t)
	expect(t, c.do("GETINFO version"), "514 Authentication required.")
	c.expectClosed()
	c = ts.dial(t)
	expect(t, c.do("QUIT"), "250 closing connection")
	c.expectClosed()
	c = ts.dial(t)
	c.send("GET / HTTP/1.1")
	l, _ := c.r.ReadString('\n')
	if !strings.HasPrefix(l, "HTTP/1.0 501") {
		t.Fatalf("got %q", l)
	}
	// Line bound before authentication.
	c = ts.dial(t)
	c.send("PROTOCOLINFO " + strings.Repeat("1", 5000))
	expect(t, c.readReply(), "500 Line too long.")
	c.expectClosed()
}

func TestGetInfo(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	expect(t, c.do("GETINFO version config-file"),
		"250-version=0.4.9.0-gotor", "250-config-file=/etc/gotor/torrc", "250 OK")
	expect(t, c.do("GETINFO status/bootstrap-phase"),
		`250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"`, "250 OK")
	expect(t, c.do("GETINFO status/circuit-established"), "250-status/circuit-established=1", "250 OK")
	A, B, C, D := strings.Repeat("A", 40), strings.Repeat("B", 40), strings.Repeat("C", 40), strings.Repeat("D", 40)
	expect(t, c.do("GETINFO circuit-status"),
		"250+circuit-status=",
		"1 BUILT $"+A+"~guard1,$"+B+"~middle2,$"+C+"~exit3 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-27T03:00:00.123456 SOCKS_USERNAME=\"alice\" SOCKS_PASSWORD=\"pw\"",
		"2 EXTENDED $"+D+" BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-27T03:00:00.123456",
		".",
		"250 OK")
	expect(t, c.do("GETINFO stream-status"), "250-stream-status=7 SUCCEEDED 1 example.com:443", "250 OK")
	expect(t, c.do("GETINFO net/listeners/socks"),
		`250-net/listeners/socks="127.0.0.1:9050" "unix:/tmp/sock"`, "250 OK")
	expect(t, c.do("GETINFO net/listeners/dns"), "250-net/listeners/dns=", "250 OK")
	expect(t, c.do("GETINFO net/listeners/control"), `250-net/listeners/control="`+ts.addr+`"`, "250 OK")
	ts.b.read.Store(1234)
	ts.b.written.Store(99)
	expect(t, c.do("GETINFO traffic/read traffic/written"),
		"250-traffic/read=1234", "250-traffic/written=99", "250 OK")
	expect(t, c.do("GETINFO ns/id/"+A),
		"250+ns/id/"+A+"=",
		"r guard1 qqqqqqqqqqqqqqqqqqqqqqqqqqo 2026-11-27 00:00:00 10.0.0.1 9001 0",
		"s Fast Guard Running Stable Valid",
		"w Bandwidth=1000",
		".",
		"250 OK")
	expect(t, c.do("GETINFO ns/id/"+B), `552 Unrecognized key "ns/id/`+B+`"`)
	expect(t, c.do("GETINFO ns/id/xyz"), `552 Unrecognized key "ns/id/xyz"`)
	expect(t, c.do("GETINFO ip-to-country/1.2.3.4"), "551 GeoIP data not loaded")
	expect(t, c.do("GETINFO ip-to-country/ipv4-available"), "250-ip-to-country/ipv4-available=0", "250 OK")
	expect(t, c.do("GETINFO config/names"), "250+config/names=", "SocksPort LineList",
		"DataDirectory Filename", "ExitNodes RouterList", ".", "250 OK")
	expect(t, c.do("GETINFO nonsense"), `552 Unrecognized key "nonsense"`)
	expect(t, c.do("GETINFO"), "250 OK")
}

func TestConf(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	expect(t, c.do("GETCONF SocksPort ExitNodes"), "250-SocksPort=127.0.0.1:9050", "250 ExitNodes")
	expect(t, c.do("GETCONF Nope Nada"),
		`552-Unrecognized configuration key "Nope"`, `552 Unrecognized configuration key "Nada"`)
	expect(t, c.do("GETCONF"), "250 OK")
	expect(t, c.do("SETEVENTS CONF_CHANGED"), "250 OK")
	expect(t, c.do(`SETCONF SocksPort=9999 SocksPort="127.0.0.1:1 IsolateSOCKSAuth" ExitNodes`), "250 OK")
	expect(t, c.do("GETCONF socksport"), "250-SocksPort=9999", `250 SocksPort=127.0.0.1:1 IsolateSOCKSAuth`)
	expect(t, c.do("SETCONF Bogus=1"), `552 Unrecognized option: Unknown option "Bogus": unrecognized key`)
	expect(t, c.do("SETCONF SocksPort=bad"), `513 Unacceptable option value: value "bad": invalid configuration value`)
	expect(t, c.do(`SETCONF SocksPort="unterminated`), `512 Bad arguments to SETCONF: Cannot parse keyword argument(s)`)
	expect(t, c.do("RESETCONF SocksPort"), "250 OK")
	expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	want := []string{
		"650-CONF_CHANGED", "650-SocksPort=9999", "650-SocksPort=127.0.0.1:1 IsolateSOCKSAuth", "650-ExitNodes", "650 OK",
		"650-CONF_CHANGED", "650-SocksPort", "650 OK",
	}
	c.waitAsync(len(want))
	if !slices.Equal(c.async, want) {
		t.Fatalf("async %q", c.async)
	}
}

func TestSignal(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	expect(t, c.do("SETEVENTS SIGNAL"), "250 OK")
	expect(t, c.do("SIGNAL NEWNYM"), "250 OK")
	expect(t, c.do("SIGNAL hup"), "250 OK")
	expect(t, c.do("SIGNAL BOGUS"), `552 Unrecognized signal code "BOGUS"`)
	expect(t, c.do("SIGNAL"), "512 Bad arguments to SIGNAL: Need at least 1 argument(s)")
	expect(t, c.do("SIGNAL HALT"), "250 OK")
	c.do("GETINFO version")
	waitSignal(t, ts.b, "HALT") // delivered asynchronously after the reply
	if got := ts.b.gotSignals(); !slices.Equal(got, []string{"NEWNYM", "RELOAD", "HALT"}) {
		t.Fatalf("signals %v", got)
	}
	c.waitAsync(2)
	if !slices.Equal(c.async, []string{"650 SIGNAL NEWNYM", "650 SIGNAL RELOAD"}) {
		t.Fatalf("async %q", c.async)
	}
}

func TestMisc(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	expect(t, c.do("FROBNICATE now"), `510 Unrecognized command "FROBNICATE"`)
	expect(t, c.do("EXTENDCIRCUIT 0"), "551 EXTENDCIRCUIT is not supported by this implementation")
	c.send("+GETINFO")
	c.send(".")
	expect(t, c.readReply(), `510 Unrecognized command "+GETINFO"`)
	expect(t, c.do("SETEVENTS CIRC BOGUS"), `552 Unrecognized event "BOGUS"`)
	expect(t, c.do("SETEVENTS EXTENDED CIRC STREAM"), "250 OK")
	expect(t, c.do("USEFEATURE VERBOSE_NAMES EXTENDED_EVENTS"), "250 OK")
	expect(t, c.do("MAPADDRESS 1.2.3.4=example.com"), "250 1.2.3.4=example.com")
	expect(t, c.do("DROPOWNERSHIP"), "250 OK")
	expect(t, c.do("TAKEOWNERSHIP"), "250 OK")
	expect(t, c.do("DROPOWNERSHIP"), "250 OK")
	// LF-only line endings are accepted.
	c.nc.Write([]byte("GETINFO version\n"))
	expect(t, c.readReply(), "250-version=0.4.9.0-gotor", "250 OK")
	expect(t, c.do("QUIT"), "250 closing connection")
	c.expectClosed()
}

func TestOwnershipHalts(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	expect(t, c.do("TAKEOWNERSHIP"), "250 OK")
	c.nc.Close()
	waitSignal(t, ts.b, "HALT")
}

func waitSignal(t *testing.T, b *fakeBackend, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(b.gotSignals(), name) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s signal", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestShutdownClosesServer: a backend whose SHUTDOWN handler closes the
// control server (as the real client will) must not deadlock.
func TestShutdownClosesServer(t *testing.T) {
	ts := startServer(t, nil)
	closed := make(chan struct{})
	ts.b.mu.Lock()
	ts.b.onSignal = func(name string) {
		if name == "SHUTDOWN" || name == "HALT" {
			ts.s.Close()
			close(closed)
		}
	}
	ts.b.mu.Unlock()
	c := ts.authed(t)
	expect(t, c.do("SIGNAL SHUTDOWN"), "250 OK")
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close from Signal deadlocked")
	}
	c.expectClosed()

	// Same when the owning controller leaves.
	ts = startServer(t, nil)
	closed = make(chan struct{})
	ts.b.onSignal = func(name string) {
		ts.s.Close()
		close(closed)
	}
	c = ts.authed(t)
	expect(t, c.do("TAKEOWNERSHIP"), "250 OK")
	c.nc.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close after owner left deadlocked")
	}
}

func TestEvents(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	other := ts.authed(t) // not subscribed: must see nothing
	expect(t, c.do("SETEVENTS CIRC STREAM STATUS_CLIENT NOTICE"), "250 OK")
	circ := ts.b.Circuits()[0]
	circ.State = CircClosed
	circ.Reason = "FINISHED"
	circ.RemoteReason = "DESTROYED"
	ts.b.emit(Event{Type: EventCirc, Circuit: &circ})
	ts.b.emit(Event{Type: EventStream, Stream: &StreamInfo{ID: 9, Status: StreamNew, Target: "example.org:80",
		SourceAddr: "127.0.0.1:4444", Purpose: "USER", SocksUsername: "u\"1", ClientProtocol: "SOCKS5",
		HasNymEpoch: true, NymEpoch: 3, HasSessionGroup: true, SessionGroup: -1,
		IsoFields: []string{"SOCKS_USERNAME", "SOCKS_PASSWORD", "NYM_EPOCH"}}})
	ts.b.emit(BootstrapEvent(Bootstrap{Percent: 100, Tag: "done", Summary: "Done"}))
	ts.b.emit(Event{Type: EventNotice, Message: "two\nlines"})
	ts.b.emit(Event{Type: EventInfo, Message: "not subscribed"})
	c.do("GETINFO version")
	c.waitAsync(4)
	A, B, C := strings.Repeat("A", 40), strings.Repeat("B", 40), strings.Repeat("C", 40)
	want := []string{
		"650 CIRC 1 CLOSED $" + A + "~guard1,$" + B + "~middle2,$" + C + "~exit3 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-27T03:00:00.123456 REASON=FINISHED REMOTE_REASON=DESTROYED SOCKS_USERNAME=\"alice\" SOCKS_PASSWORD=\"pw\"",
		`650 STREAM 9 NEW 0 example.org:80 SOURCE_ADDR=127.0.0.1:4444 PURPOSE=USER SOCKS_USERNAME="u\"1" CLIENT_PROTOCOL=SOCKS5 NYM_EPOCH=3 SESSION_GROUP=-1 ISO_FIELDS=SOCKS_USERNAME,SOCKS_PASSWORD,NYM_EPOCH`,
		`650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"`,
		"650 NOTICE two lines",
	}
	if !slices.Equal(c.async, want) {
		t.Fatalf("events\n got: %q\nwant: %q", c.async, want)
	}
	expect(t, other.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	if len(other.async) != 0 {
		t.Fatalf("unsubscribed connection got %q", other.async)
	}
	// SETEVENTS with no arguments unsubscribes.
	expect(t, c.do("SETEVENTS"), "250 OK")
	ts.b.emit(Event{Type: EventNotice, Message: "gone"})
	c.async = nil
	expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	if len(c.async) != 0 {
		t.Fatalf("got %q after unsubscribe", c.async)
	}
}

func TestBWEvents(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	expect(t, c.do("SETEVENTS BW"), "250 OK")
	ts.b.read.Add(500)
	ts.b.written.Add(70)
	seen := false
	for i := 0; i < 40 && !seen; i++ {
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var r, w uint64
		if _, err := fmt.Sscanf(l, "650 BW %d %d\r\n", &r, &w); err != nil {
			t.Fatalf("bad BW line %q", l)
		}
		seen = r == 500 && w == 70
	}
	if !seen {
		t.Fatal("no BW event with the traffic delta")
	}
}

// TestSlowReader checks that a controller which never reads cannot block
// event publication: events beyond its queue are dropped.
func TestSlowReader(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.EventQueueLen = 16; c.WriteTimeout = 2 * time.Second })
	c := ts.authed(t)
	expect(t, c.do("SETEVENTS NOTICE"), "250 OK")
	msg := strings.Repeat("x", 4000)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 20000; i++ {
			ts.b.emit(Event{Type: EventNotice, Message: msg})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a slow reader")
	}
	// The stalled connection is eventually dropped by the write timeout;
	// other controllers keep working meanwhile.
	c2 := ts.authed(t)
	expect(t, c2.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
}

func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	ts := startServer(t, func(c *Config) { c.Listeners = []ListenerConfig{{Unix: sock}} })
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v", fi.Mode())
	}
	c := dialClient(t, "unix", sock)
	expect(t, c.do(`AUTHENTICATE "foo"`), "250 OK")
	expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	ts.s.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatal("socket not removed on Close")
	}
}

func TestCloseWhileServing(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	ts.s.Close()
	c.expectClosed()
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatal("listener still open")
	}
}

func TestPortWriteToFile(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "control.port")
	sock := filepath.Join(dir, "c.sock")
	ts := startServer(t, func(c *Config) { c.PortWriteToFile = pf; c.Listeners = append(c.Listeners, ListenerConfig{Unix: sock}) })
	b, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	want := "PORT=" + ts.addr + "\nUNIX_PORT=" + sock + "\n"
	if string(b) != want {
		t.Fatalf("got %q want %q", b, want)
	}
}
