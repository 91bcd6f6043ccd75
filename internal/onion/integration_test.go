package onion

// Integration test against a C tor onion service on the private network
// (internal/testnet): gotor computes the HSDir ring for the testing
// network's time periods and SRV, fetches the service's descriptor over
// real 3-hop circuits and BEGIN_DIR, and verifies and decrypts it.
//
// Introduction and rendezvous over real circuits await internal/circuit
// support for HS relay messages on stream 0 and for a virtual hop; the
// adapter below reports them as unsupported.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/dirmgr"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/testnet"
	"golang.org/x/crypto/curve25519"
)

// A network larger than the default, so that the HSDir ring is not
// trivially "every HSDir" (2 replicas x 4 store spread = 8 HSDirs store
// each descriptor): 3 authorities + 10 relays + 2 exits. Its authorities
// do not run the shared-random protocol (testnet's default), so every
// test on it runs the disaster-SRV case, and asserts so;
// TestIntegrationFetchWithSRV (srv_integration_test.go) runs the
// real-SRV case on a second network.
func TestMain(m *testing.M) { testnet.Main(m, testnet.Options{Relays: 10}) }

// sharedNet returns the package's shared network, and starts the
// shared-random network of TestIntegrationFetchWithSRV in the background
// so that it ages while the other tests run.
func sharedNet(t *testing.T) *testnet.Network {
	t.Helper()
	testnet.StartExtra(t, srvNetName, srvNetOptions)
	return testnet.Shared(t)
}

// wantDisaster fails t unless both gotor's fetch parameters for nd and
// the harness's own reading of the network's consensus say that there is
// no shared random value, i.e. the disaster case.
func wantDisaster(t *testing.T, ctx context.Context, n *testnet.Network, p hscrypto.FetchParams) {
	t.Helper()
	sr, err := n.ConsensusSharedRandom(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Disaster || sr.Current != "" || sr.Previous != "" {
		t.Fatalf("want the disaster SRV case: gotor's disaster=%v, the consensus of %s has current %q, previous %q",
			p.Disaster, sr.ValidAfter.Format(time.TimeOnly), sr.Current, sr.Previous)
	}
}

var errUnsupported = errors.New("not yet supported by internal/circuit")

// realBuilder builds 3-hop circuits with internal/circuit: two random
// usable relays, then the target.
type realBuilder struct {
	mgr *channel.Manager
	dir func() *netdir.NetDir
}

func (b *realBuilder) BuildCircuit(ctx context.Context, last Target, _ Purpose) (Circ, error) {
	var lt circuit.Target
	if last.Relay != nil {
		lt = circuit.TargetFromRelay(last.Relay)
	} else {
		s := hscell.Summarize(last.LinkSpecs)
		if !s.HasRSA || !s.IPv4.IsValid() {
			return nil, errors.New("intro point without RSA id or IPv4")
		}
		lt = circuit.Target{RSAID: s.RSAID, Ed25519ID: s.Ed25519, HasEd25519: s.HasEd, Addr: s.IPv4, NtorKey: last.NtorKey}
	}
	var cands []*netdir.Relay
	for _, r := range b.dir().Relays {
		if r.IsUsable() && r.RSAID != lt.RSAID && r.NtorOnionKey != ([32]byte{}) {
			cands = append(cands, r)
		}
	}
	if len(cands) < 2 {
		return nil, errors.New("not enough relays")
	}
	p := mrand.Perm(len(cands))
	path := []circuit.Target{circuit.TargetFromRelay(cands[p[0]]), circuit.TargetFromRelay(cands[p[1]]), lt}
	c, err := circuit.Build(ctx, b.mgr, path)
	if err != nil {
		return nil, err
	}
	return &realCirc{c}, nil
}

type realCirc struct{ c *circuit.Circuit }

func (r *realCirc) SendRelay(context.Context, byte, []byte) error { return errUnsupported }
func (r *realCirc) ReceiveRelay(context.Context) (byte, []byte, error) {
	return 0, nil, errUnsupported
}
func (r *realCirc) BeginDir(ctx context.Context) (net.Conn, error) { return stream.BeginDir(ctx, r.c) }
func (r *realCirc) ExtendVirtualHop(hscrypto.RendKeys) error       { return errUnsupported }
func (r *realCirc) OpenStream(context.Context, uint16) (net.Conn, error) {
	return nil, errUnsupported
}
func (r *realCirc) Close() error          { return r.c.Close() }
func (r *realCirc) Done() <-chan struct{} { return r.c.Done() }

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startOnionService runs a C tor onion service on the network
// (testnet.StartOnionService) and returns its address.
func startOnionService(t *testing.T, n *testnet.Network) string {
	return startOnionServiceTo(t, n, freePort(t))
}

func startOnionServiceTo(t *testing.T, n *testnet.Network, port int) string {
	return startOnionServiceAuth(t, n, port, nil)
}

// startOnionServiceAuth also installs authorized client x25519 public
// keys (rend-spec Appendix G.1.2 ".auth" files).
func startOnionServiceAuth(t *testing.T, n *testnet.Network, port int, clients [][32]byte) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := n.StartOnionService(ctx, port, clients...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	t.Logf("onion service %s (HiddenServiceDir %s)", svc.Hostname, svc.Dir)
	return svc.Hostname
}

func TestIntegrationFetchDescriptorFromCTorService(t *testing.T) {
	n := sharedNet(t)
	host := startOnionService(t, n)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dm := newDirMgr(t, ctx, n)
	mgr := channel.NewManager()
	defer mgr.Close()
	b := &realBuilder{mgr: mgr, dir: dm.NetDir}

	// The service needs a consensus, intro circuits and an upload; poll.
	var lastErr error
	for attempt := 0; ctx.Err() == nil; attempt++ {
		// Refresh the directory so valid-after (hence period and SRV)
		// follows the network's 10-second voting rounds.
		if attempt > 0 {
			dm.Bootstrap(ctx)
		}
		nd := dm.NetDir()
		c := New(Config{Builder: b, NetDir: func() *netdir.NetDir { return nd }, TestingNetwork: true,
			HSDirTimeout: 20 * time.Second})
		d, _, err := c.FetchDescriptor(ctx, host)
		if err == nil {
			sched := hscrypto.ScheduleFor(nd, true)
			p := hscrypto.ClientFetchParams(nd, sched)
			t.Logf("attempt %d: descriptor for period %d (length %d min, disaster SRV %v): revision %d, %d intro points",
				attempt, p.PeriodNum, sched.PeriodLength, p.Disaster, d.RevisionCounter, len(d.IntroPoints))
			wantDisaster(t, ctx, n, p)
			if len(d.IntroPoints) == 0 {
				t.Fatal("no intro points")
			}
			for _, ip := range d.IntroPoints {
				s := hscell.Summarize(ip.LinkSpecs)
				if nd.ByRSAID[s.RSAID] == nil {
					t.Errorf("intro point %x not in consensus", s.RSAID)
				}
			}
			// The introduction step reaches the circuit layer and stops
			// there for now.
			_, err := c.Dial(ctx, host, 80)
			t.Logf("Dial (expected to stop at the circuit layer): %v", err)
			if KindOf(err) != KindRendFailed && KindOf(err) != KindIntroFailed {
				t.Errorf("Dial: unexpected error kind: %v", err)
			}
			return
		}
		lastErr = err
		t.Logf("attempt %d: %v", attempt, err)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	t.Fatalf("descriptor never fetched: %v", lastErr)
}

func newDirMgr(t *testing.T, ctx context.Context, n *testnet.Network) *dirmgr.Manager {
	t.Helper()
	var auths []dirmgr.Authority
	for _, l := range n.DirAuthorityLines() {
		a, err := dirmgr.ParseDirAuthority(l)
		if err != nil {
			t.Fatal(err)
		}
		auths = append(auths, a)
	}
	dm, err := dirmgr.New(dirmgr.Config{Authorities: auths, TestingTorNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return dm
}

// miniBuilder builds HSDir circuits with internal/circuit and intro and
// rendezvous circuits with the test-only miniCirc.
type miniBuilder struct{ realBuilder }

func (b *miniBuilder) BuildCircuit(ctx context.Context, last Target, purpose Purpose) (Circ, error) {
	if purpose == PurposeHSDir {
		return b.realBuilder.BuildCircuit(ctx, last, purpose)
	}
	var lt circuit.Target
	var lastSpecs []cell.LinkSpec
	if last.Relay != nil {
		lt = circuit.TargetFromRelay(last.Relay)
	}
	if len(last.LinkSpecs) > 0 {
		s := hscell.Summarize(last.LinkSpecs)
		lt = circuit.Target{RSAID: s.RSAID, Ed25519ID: s.Ed25519, HasEd25519: s.HasEd, Addr: s.IPv4, NtorKey: last.NtorKey}
		for _, l := range last.LinkSpecs {
			lastSpecs = append(lastSpecs, cell.LinkSpec{Type: l.Type, Data: l.Data})
		}
	}
	var cands []*netdir.Relay
	for _, r := range b.dir().Relays {
		if r.IsUsable() && r.RSAID != lt.RSAID && r.NtorOnionKey != ([32]byte{}) {
			cands = append(cands, r)
		}
	}
	p := mrand.Perm(len(cands))
	path := []circuit.Target{circuit.TargetFromRelay(cands[p[0]]), circuit.TargetFromRelay(cands[p[1]]), lt}
	return buildMini(ctx, b.mgr, path, lastSpecs)
}

// TestIntegrationDialCTorService connects to a C tor onion service end to
// end: descriptor fetch, rendezvous, INTRODUCE1 through a real intro
// point, RENDEZVOUS2, the virtual hop with SHA3-256/AES-256 relay crypto,
// RELAY_BEGIN to the service and data both ways.
func TestIntegrationDialCTorService(t *testing.T) {
	n := sharedNet(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hello from a C tor onion service\n")
				io.Copy(c, c)
			}()
		}
	}()
	host := startOnionServiceTo(t, n, ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dm := newDirMgr(t, ctx, n)
	mgr := channel.NewManager()
	defer mgr.Close()
	b := &miniBuilder{realBuilder{mgr: mgr, dir: dm.NetDir}}
	var lastErr error
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			dm.Bootstrap(ctx)
		}
		nd := dm.NetDir()
		c := New(Config{Builder: b, NetDir: func() *netdir.NetDir { return nd }, TestingNetwork: true,
			HSDirTimeout: 20 * time.Second, IntroTimeout: 20 * time.Second, RendezvousTimeout: 30 * time.Second})
		conn, err := c.Dial(ctx, host, 80)
		if err != nil {
			lastErr = err
			t.Logf("attempt %d: %v", attempt, err)
			time.Sleep(5 * time.Second)
			continue
		}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(conn)
		line, err := br.ReadString('\n')
		if err != nil || line != "hello from a C tor onion service\n" {
			t.Fatalf("greeting %q: %v", line, err)
		}
		msg := strings.Repeat("ping through the virtual hop ", 40) + "\n"
		io.WriteString(conn, msg)
		echo, err := br.ReadString('\n')
		if err != nil || echo != msg {
			t.Fatalf("echo %d bytes: %v", len(echo), err)
		}
		t.Logf("attempt %d: connected, greeting and %d-byte echo OK", attempt, len(msg))
		wantDisaster(t, ctx, n, hscrypto.ClientFetchParams(nd, hscrypto.ScheduleFor(nd, true)))
		// A second stream reuses the rendezvous circuit.
		conn2, err := c.Dial(ctx, "www."+host, 80)
		if err != nil {
			t.Fatalf("second dial: %v", err)
		}
		line, err = bufio.NewReader(conn2).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "hello") {
			t.Fatalf("second stream %q: %v", line, err)
		}
		conn.Close()
		conn2.Close()
		c.Close()
		return
	}
	t.Fatalf("never connected: %v", lastErr)
}

// TestIntegrationClientAuthCTorService: a C tor service with client
// authorization; without our key the descriptor's inner layer is closed
// (F4), with a wrong key F5, with the right key we connect.
func TestIntegrationClientAuthCTorService(t *testing.T) {
	n := sharedNet(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "authorized\n")
			c.Close()
		}
	}()
	var sk [32]byte
	rand.Read(sk[:])
	pk, _ := curve25519.X25519(sk[:], curve25519.Basepoint)
	host := startOnionServiceAuth(t, n, ln.Addr().(*net.TCPAddr).Port, [][32]byte{[32]byte(pk)})
	addr, _ := ParseAddress(host)
	good := NewClientAuth()
	good.Add(addr, sk)
	bad := NewClientAuth()
	bad.Add(addr, [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dm := newDirMgr(t, ctx, n)
	mgr := channel.NewManager()
	defer mgr.Close()
	b := &miniBuilder{realBuilder{mgr: mgr, dir: dm.NetDir}}
	mk := func(nd *netdir.NetDir, a *ClientAuth) *Client {
		return New(Config{Builder: b, NetDir: func() *netdir.NetDir { return nd }, TestingNetwork: true, ClientAuth: a,
			HSDirTimeout: 20 * time.Second, IntroTimeout: 20 * time.Second, RendezvousTimeout: 30 * time.Second})
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			time.Sleep(5 * time.Second)
			dm.Bootstrap(ctx)
		}
		nd := dm.NetDir()
		_, err := mk(nd, nil).Dial(ctx, host, 80)
		if KindOf(err) == KindDescNotFound {
			t.Logf("attempt %d: %v", attempt, err)
			continue
		}
		if KindOf(err) != KindClientAuthMissing {
			t.Fatalf("without key: %v", err)
		}
		if _, err := mk(nd, bad).Dial(ctx, host, 80); KindOf(err) != KindClientAuthBad {
			t.Fatalf("wrong key: %v", err)
		}
		conn, err := mk(nd, good).Dial(ctx, host, 80)
		if err != nil {
			t.Fatalf("right key: %v", err)
		}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if line != "authorized\n" {
			t.Fatalf("got %q: %v", line, err)
		}
		conn.Close()
		t.Logf("attempt %d: F4 without key, F5 with a wrong key, connected with the right key", attempt)
		wantDisaster(t, ctx, n, hscrypto.ClientFetchParams(nd, hscrypto.ScheduleFor(nd, true)))
		return
	}
	t.Fatal("descriptor never found")
}

// TestIntegrationHSDirRing checks gotor's hash ring against where a C tor
// service actually stored its descriptor: every HSDir gotor computes as a
// store location for the client's blinded key (replicas x
// hsdir_spread_store) must serve it, and every other HSDir must answer 404.
// A wrong ring cannot pass this by chance.
func TestIntegrationHSDirRing(t *testing.T) {
	n := sharedNet(t)
	host := startOnionService(t, n)
	addr, _ := ParseAddress(host)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dm := newDirMgr(t, ctx, n)
	mgr := channel.NewManager()
	defer mgr.Close()
	b := &realBuilder{mgr: mgr, dir: dm.NetDir}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			time.Sleep(5 * time.Second)
			dm.Bootstrap(ctx)
		}
		if checkRing(t, ctx, b, dm.NetDir(), addr, attempt) {
			nd := dm.NetDir()
			wantDisaster(t, ctx, n, hscrypto.ClientFetchParams(nd, hscrypto.ScheduleFor(nd, true)))
			return
		}
	}
	t.Fatal("HSDir ring never matched the service's uploads")
}

// checkRing fetches the descriptor from every HSDir of nd and reports
// whether exactly the computed store set serves it.
func checkRing(t *testing.T, ctx context.Context, b *realBuilder, nd *netdir.NetDir, addr hscrypto.Address, attempt int) bool {
	get := func(hd *netdir.Relay, blinded [32]byte) error {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		circ, err := b.BuildCircuit(cctx, Target{Relay: hd}, PurposeHSDir)
		if err != nil {
			return err
		}
		defer circ.Close()
		conn, err := circ.BeginDir(cctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = getDescriptor(cctx, conn, "HSDir "+hd.Nickname, blinded)
		return err
	}
	sched := hscrypto.ScheduleFor(nd, true)
	p := hscrypto.ClientFetchParams(nd, sched)
	blinded, _ := hscrypto.BlindPublicKey(addr.PubKey, p.PeriodNum, sched.PeriodLength)
	store := p
	store.SpreadFetch = int(nd.Param("hsdir_spread_store", hscrypto.DefaultHSDirSpreadStore, 1, 128))
	ring := hscrypto.NewRing(nd, store)
	stored := map[*netdir.Relay]bool{}
	for _, r := range ring.Responsible(blinded) {
		stored[r] = true
	}
	for _, r := range hscrypto.NewRing(nd, p).Responsible(blinded) {
		if !stored[r] {
			t.Fatalf("fetch set not within store set")
		}
	}
	var good, bad, unexpected []string
	var transient error
	for _, r := range nd.Relays {
		if !hscrypto.SupportsHSDirV3(r) {
			continue
		}
		err := get(r, blinded)
		switch {
		case err == nil && stored[r]:
			good = append(good, r.Nickname)
		case errors.Is(err, errNotFound) && !stored[r]:
			bad = append(bad, r.Nickname)
		case err == nil || errors.Is(err, errNotFound):
			unexpected = append(unexpected, fmt.Sprintf("%s(stored=%v,err=%v)", r.Nickname, stored[r], err))
		default:
			transient = err
		}
	}
	t.Logf("ring check %d: valid-after %s period %d TP->SRV=%v disaster=%v ring=%d: served by computed store set %v; 404 elsewhere %v; mismatches %v; transient %v",
		attempt, nd.ValidAfter.Format("15:04:05"), p.PeriodNum, sched.InPeriodBetweenTPAndSRV(nd.ValidAfter), p.Disaster, ring.Len(), good, bad, unexpected, transient)
	if len(unexpected) == 0 && transient == nil && len(good) == len(stored) && len(bad) == ring.Len()-len(stored) {
		if len(bad) == 0 {
			t.Fatal("network too small for a meaningful check")
		}
		return true
	}
	return false
}
