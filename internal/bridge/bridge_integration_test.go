package bridge

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/dirclient"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/pt"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/testnet"
)

// Bridges of the shared network, started once for all tests of the
// package (in parallel: each bootstraps on its own).
var bridges struct {
	once         sync.Once
	obfs4, plain *testnet.Bridge
	err          error
}

func obfs4proxy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("obfs4proxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("obfs4proxy is not installed (CI=true: integration tests may not be skipped)")
		}
		t.Skip("obfs4proxy is not installed (apt-get install -y obfs4proxy)")
	}
	return p
}

func sharedBridges(t *testing.T) (obfs4, plain *testnet.Bridge) {
	t.Helper()
	n := testnet.Shared(t)
	obfs4proxy(t)
	bridges.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		var e1, e2 error
		wg.Add(2)
		go func() {
			defer wg.Done()
			bridges.obfs4, e1 = n.StartBridge(ctx, testnet.BridgeOptions{Transport: "obfs4"})
		}()
		go func() { defer wg.Done(); bridges.plain, e2 = n.StartBridge(ctx, testnet.BridgeOptions{}) }()
		wg.Wait()
		bridges.err = errors.Join(e1, e2)
	})
	if bridges.err != nil {
		t.Fatal(bridges.err)
	}
	return bridges.obfs4, bridges.plain
}

func ptManager(t *testing.T, path string) *pt.Manager {
	t.Helper()
	p, err := pt.ParsePlugin("obfs4 exec " + path)
	if err != nil {
		t.Fatal(err)
	}
	m := pt.NewManager([]pt.Plugin{p}, pt.Config{
		StateDir: filepath.Join(t.TempDir(), "pt_state"),
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(func() { m.Close() })
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// checkBridge fetches and checks the bridge's descriptor over ch, builds an
// ntor circuit to it with the descriptor's key and fetches the network's
// consensus from it over BEGIN_DIR (a bridge user's directory requests all
// go to the bridge).
func checkBridge(t *testing.T, ctx context.Context, ch *channel.Channel, line Line, b *testnet.Bridge) *Descriptor {
	t.Helper()
	peer := ch.Peer()
	if got := strings.ToUpper(hex.EncodeToString(peer.RSAID[:])); got != b.Fingerprint {
		t.Fatalf("channel peer $%s, want the bridge's $%s", got, b.Fingerprint)
	}
	desc, err := FetchDescriptor(ctx, ch, line)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Desc.Nickname != b.Nickname {
		t.Errorf("descriptor of %q, want %q", desc.Desc.Nickname, b.Nickname)
	}
	if ed := strings.TrimRight(b64(desc.Ed25519ID[:]), "="); ed != strings.TrimRight(b.Ed25519, "=") {
		t.Errorf("descriptor Ed25519 %s, bridge's fingerprint-ed25519 %s", ed, b.Ed25519)
	}
	r := desc.Relay()
	if r.ORAddrPort() != line.Addr {
		t.Errorf("relay address %v, want the line's %v", r.ORAddrPort(), line.Addr)
	}
	circ, err := circuit.Create(ctx, ch, desc.Target())
	if err != nil {
		t.Fatalf("ntor circuit with the descriptor's key: %v", err)
	}
	defer circ.Close()
	s, err := stream.BeginDir(ctx, circ)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := dirclient.Get(ctx, s, line.Name(), dirclient.Request{
		Path: "/tor/status-vote/current/consensus-microdesc", AcceptEncoding: dirclient.Encodings, MaxBody: 16 << 20})
	if err != nil {
		t.Fatalf("consensus from the bridge: %v", err)
	}
	if !strings.HasPrefix(string(resp.Body), "network-status-version 3 microdesc") {
		t.Errorf("consensus from the bridge starts %q", string(resp.Body[:min(60, len(resp.Body))]))
	}
	t.Logf("%s: descriptor checked, ntor circuit built, %d-byte consensus fetched through it", line.Name(), len(resp.Body))
	return desc
}

// The harness test: gotor's pt package runs obfs4proxy as a client
// transport, reaches the C tor obfs4 bridge through it with the cert from
// the bridge's bridge line, completes the link handshake and checks the
// bridge's identity.
func TestObfs4BridgeThroughManagedTransport(t *testing.T) {
	b, _ := sharedBridges(t)
	m := ptManager(t, obfs4proxy(t))
	line, err := ParseLine(b.Line())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Start(ctx, "obfs4"); err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer([]Line{line}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := d.Dial(ctx, line)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if ch.Addr() != line.Addr {
		t.Errorf("channel address %v, want the line's %v", ch.Addr(), line.Addr)
	}
	desc := checkBridge(t, ctx, ch, line, b)

	// The bridge as the guard (guard-spec §2 A): picked by a guard
	// manager with UseBridges, reached by identity through the same
	// transport process (the channel manager's path).
	gm, err := guard.New(guard.Config{UseBridges: true})
	if err != nil {
		t.Fatal(err)
	}
	g, att, err := gm.Pick(NetDir([]*Descriptor{desc}), guard.Usage{})
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := d.DialChannel(ctx, g.ORAddrPort(), circuit.TargetFromRelay(g).Identity())
	att.Report(err == nil)
	att.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ch2.Peer() != ch.Peer() {
		t.Errorf("second channel to %v, first to %v", ch2.Peer(), ch.Peer())
	}
	ch2.Close()
	if n := len(m.Processes()); n != 1 {
		t.Errorf("%d transport processes, want 1", n)
	}
}

func TestObfs4BridgeWrongCert(t *testing.T) {
	b, _ := sharedBridges(t)
	m := ptManager(t, obfs4proxy(t))
	// Another valid-looking cert: the first characters changed.
	bad := strings.Replace(b.Line(), "cert="+b.Cert, "cert="+flip(b.Cert), 1)
	line, err := ParseLine(bad)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer([]Line{line}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An obfs4 bridge stays silent to a client with the wrong cert
	// (obfs4proxy gives up after a minute); 20 s is as long as a bridge
	// user would wait here.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	ch, err := d.Dial(ctx, line)
	if err == nil {
		ch.Close()
		t.Fatal("dial with a wrong cert succeeded")
	}
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "$"+b.Fingerprint) || !strings.Contains(err.Error(), "transport obfs4") || !strings.Contains(err.Error(), "cert") {
		t.Fatalf("err = %v; want a *bridge.Error naming the bridge, its transport and the cert as a likely cause", err)
	}
	t.Logf("wrong cert failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestBridgeWrongFingerprint(t *testing.T) {
	b, plain := sharedBridges(t)
	m := ptManager(t, obfs4proxy(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, l := range []string{
		strings.Replace(b.Line(), b.Fingerprint, plain.Fingerprint, 1),
		strings.Replace(plain.Line(), plain.Fingerprint, b.Fingerprint, 1),
	} {
		line, err := ParseLine(l)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDialer([]Line{line}, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := d.Dial(ctx, line)
		if err == nil {
			ch.Close()
			t.Fatalf("%s: a bridge with another identity was accepted", line.Name())
		}
		var mm *channel.IdentityMismatchError
		if !errors.As(err, &mm) || !strings.Contains(err.Error(), "wrong identity") || !strings.Contains(err.Error(), line.Name()) {
			t.Errorf("err = %v; want a wrong-identity error naming %s", err, line.Name())
		}
	}
}

func TestPlainBridge(t *testing.T) {
	_, b := sharedBridges(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Without a fingerprint: the identity is learnt from the bridge.
	line, err := ParseLine(b.ORAddr())
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer([]Line{line}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := d.Dial(ctx, line)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	checkBridge(t, ctx, ch, line, b)
	// Only configured bridges are contacted.
	if _, err := d.DialChannel(ctx, netip.MustParseAddrPort(testnet.Shared(t).Relays()[0].ORAddr()), channel.Identity{}); err == nil || !strings.Contains(err.Error(), "only configured bridges") {
		t.Errorf("dial of a non-bridge address: %v", err)
	}
}

func TestMissingTransportProgram(t *testing.T) {
	b, _ := sharedBridges(t)
	m := ptManager(t, filepath.Join(t.TempDir(), "obfs4proxy-not-installed"))
	line, _ := ParseLine(b.Line())
	d, err := NewDialer([]Line{line}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Start(ctx, "obfs4"); err == nil || !strings.Contains(err.Error(), "obfs4proxy-not-installed") || !strings.Contains(err.Error(), "cannot start") {
		t.Errorf("Start: %v", err)
	}
	_, err = d.Dial(ctx, line)
	var pe *pt.Error
	var be *Error
	if !errors.As(err, &pe) || !errors.As(err, &be) {
		t.Errorf("Dial: %v; want a *bridge.Error wrapping a *pt.Error", err)
	}
	if _, err := NewDialer([]Line{line}, nil, nil); err == nil || !strings.Contains(err.Error(), "no ClientTransportPlugin line provides transport obfs4") {
		t.Errorf("NewDialer without transports: %v", err)
	}
}

// flip changes the cert's first two characters.
func flip(s string) string {
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

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
