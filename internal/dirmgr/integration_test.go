package dirmgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/dirclient"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/netdoc"
	"github.com/gotor/gotor/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

func testAuthorities(t *testing.T, n *testnet.Network) []Authority {
	t.Helper()
	var auths []Authority
	for _, l := range n.DirAuthorityLines() {
		a, err := ParseDirAuthority(l)
		if err != nil {
			t.Fatalf("ParseDirAuthority(%q): %v", l, err)
		}
		auths = append(auths, a)
	}
	return auths
}

type progressLog struct {
	mu sync.Mutex
	ps []Progress
}

func (p *progressLog) add(x Progress) { p.mu.Lock(); p.ps = append(p.ps, x); p.mu.Unlock() }
func (p *progressLog) list() []Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Progress(nil), p.ps...)
}

func newTestManager(t *testing.T, n *testnet.Network, dataDir string, pl *progressLog) *Manager {
	t.Helper()
	cfg := Config{
		Authorities:       testAuthorities(t, n),
		DataDir:           dataDir,
		TestingTorNetwork: true,
	}
	if pl != nil {
		cfg.Progress = pl.add
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkNetDir(t *testing.T, n *testnet.Network, nd *netdir.NetDir) {
	t.Helper()
	if nd == nil {
		t.Fatal("no NetDir")
	}
	want := n.Relays()
	if len(nd.Relays) != len(want) {
		t.Errorf("NetDir has %d relays, network has %d", len(nd.Relays), len(want))
	}
	for _, r := range nd.Relays {
		if !r.HasMicrodesc {
			t.Errorf("relay %s has no microdescriptor", r.Nickname)
		}
		if !r.HasEd25519 {
			t.Errorf("relay %s has no ed25519 id", r.Nickname)
		}
	}
	for _, w := range want {
		id, ok := parseHex20(w.Fingerprint)
		if !ok {
			t.Fatalf("bad fingerprint %q", w.Fingerprint)
		}
		if nd.ByRSAID[id] == nil {
			t.Errorf("relay %s missing from NetDir", w.Nickname)
		}
	}
}

// fetchRaw fetches a document from the first authority's DirPort.
func fetchRaw(t *testing.T, m *Manager, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out string
	err := m.fetchAny(ctx, m.auths, path, nil, maxConsensusSize, func(_ *netdir.Relay, b []byte) error {
		out = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIntegrationBootstrapAndCache(t *testing.T) {
	n := testnet.Shared(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var pl progressLog
	m := newTestManager(t, n, dataDir, &pl)
	start := time.Now()
	if err := m.Bootstrap(ctx); err != nil {
		t.Fatalf("cold bootstrap: %v", err)
	}
	t.Logf("cold bootstrap took %v, stats %+v", time.Since(start), m.Stats())
	checkNetDir(t, n, m.NetDir())
	ps := pl.list()
	if len(ps) == 0 || ps[len(ps)-1] != PhaseDone {
		t.Fatalf("last progress = %v, want %v", ps, PhaseDone)
	}
	seen := map[string]bool{}
	last := -1
	for _, p := range ps {
		t.Log(p)
		if p.Percent < last {
			t.Errorf("progress went backwards: %v", ps)
		}
		last = p.Percent
		seen[p.Tag] = true
	}
	for _, tag := range []string{"starting", "conn", "requesting_status", "loading_status", "loading_keys", "requesting_descriptors", "loading_descriptors", "enough_dirinfo", "done"} {
		if !seen[tag] {
			t.Errorf("no %q progress event", tag)
		}
	}
	if s := m.Stats(); s.ConsensusDownloads != 1 || s.ConsensusFromCache != 0 {
		t.Errorf("cold stats = %+v, want one consensus download", s)
	}
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: %v %v", fi.Mode(), err)
	}

	// Restart from cache: no consensus download.
	m2 := newTestManager(t, n, dataDir, nil)
	if err := m2.Bootstrap(ctx); err != nil {
		t.Fatalf("warm bootstrap: %v", err)
	}
	s := m2.Stats()
	t.Logf("warm stats %+v", s)
	if s.ConsensusDownloads != 0 || s.ConsensusFromCache != 1 {
		t.Errorf("warm bootstrap downloaded a consensus: %+v", s)
	}
	if s.CertDownloads != 0 {
		t.Errorf("warm bootstrap downloaded certificates: %+v", s)
	}
	checkNetDir(t, n, m2.NetDir())

	// Refresh: Run fetches the next consensus (10 s voting interval).
	sub, unsub := m2.Subscribe()
	defer unsub()
	first := <-sub
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m2.Run(runCtx) }()
	select {
	case nd := <-sub:
		if !nd.ValidAfter.After(first.ValidAfter) {
			t.Errorf("refreshed NetDir not newer: %v vs %v", nd.ValidAfter, first.ValidAfter)
		}
		checkNetDir(t, n, nd)
	case <-time.After(90 * time.Second):
		t.Error("no refreshed NetDir within 90 s")
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}

	if dir := os.Getenv("GOTOR_SAVE_TESTDATA"); dir != "" {
		saveTestdata(t, m, dir)
	}
}

// saveTestdata stores real documents of the private network as fuzz
// seeds and unit-test inputs (run with GOTOR_SAVE_TESTDATA=path).
func saveTestdata(t *testing.T, m *Manager, dir string) {
	cons := fetchRaw(t, m, "/tor/status-vote/current/consensus-microdesc.z")
	ns := fetchRaw(t, m, "/tor/status-vote/current/consensus.z")
	certs := fetchRaw(t, m, "/tor/keys/all.z")
	c, err := netdoc.ParseConsensus(cons)
	if err != nil {
		t.Fatal(err)
	}
	var mds strings.Builder
	for _, r := range c.Routers {
		if md := m.mds[r.MicrodescDigest]; md != nil {
			mds.WriteString(md.Text)
		}
	}
	desc := fetchRaw(t, m, "/tor/server/all.z")
	for name, text := range map[string]string{
		"consensus-microdesc.txt": cons, "consensus-ns.txt": ns, "certs.txt": certs,
		"microdescs.txt": mds.String(), "server-descriptors.txt": desc,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tamper helpers operate on a real consensus fetched from the network.

func TestIntegrationRefusals(t *testing.T) {
	n := testnet.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := newTestManager(t, n, "", nil)
	text := fetchRaw(t, m, "/tor/status-vote/current/consensus-microdesc.z")
	now := time.Now()
	c, err := m.VerifyConsensus(ctx, text, now)
	if err != nil {
		t.Fatalf("genuine consensus refused: %v", err)
	}
	if len(c.Signatures) < 3 {
		t.Fatalf("consensus has %d signatures, want 3", len(c.Signatures))
	}

	t.Run("one bad signature of three", func(t *testing.T) {
		// Two of three authorities are a majority: the consensus is
		// accepted, the bad signature logged (as C tor does).
		bad := flipSignatureByte(t, text, 0)
		if _, err := m.VerifyConsensus(ctx, bad, now); err != nil {
			t.Fatalf("one bad signature of three: %v", err)
		}
	})
	t.Run("two bad signatures of three", func(t *testing.T) {
		bad := flipSignatureByte(t, flipSignatureByte(t, text, 0), 1)
		_, err := m.VerifyConsensus(ctx, bad, now)
		t.Logf("error: %v", err)
		if !errors.Is(err, netdoc.ErrBadSignature) || !errors.Is(err, netdoc.ErrTooFewSignatures) {
			t.Fatalf("got %v, want ErrBadSignature and ErrTooFewSignatures", err)
		}
	})
	t.Run("one of three signatures", func(t *testing.T) {
		one := keepSignatures(text, 1)
		_, err := m.VerifyConsensus(ctx, one, now)
		t.Logf("error: %v", err)
		if !errors.Is(err, netdoc.ErrTooFewSignatures) || errors.Is(err, netdoc.ErrBadSignature) {
			t.Fatalf("got %v, want ErrTooFewSignatures", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		_, err := m.VerifyConsensus(ctx, text, c.ValidUntil.Add(time.Minute))
		t.Logf("error: %v", err)
		if !errors.Is(err, netdoc.ErrExpired) || errors.Is(err, netdoc.ErrBadSignature) || errors.Is(err, netdoc.ErrTooFewSignatures) {
			t.Fatalf("got %v, want ErrExpired", err)
		}
	})
}

// flipSignatureByte changes one byte of the k-th directory-signature's
// signature (one base64 character of its object).
func flipSignatureByte(t *testing.T, text string, k int) string {
	i := strings.Index(text, "\ndirectory-signature ")
	for ; k > 0 && i >= 0; k-- {
		j := strings.Index(text[i+1:], "\ndirectory-signature ")
		if j < 0 {
			t.Fatal("too few directory-signatures")
		}
		i += 1 + j
	}
	if i < 0 {
		t.Fatal("no directory-signature")
	}
	j := strings.Index(text[i:], "-----BEGIN SIGNATURE-----\n")
	if j < 0 {
		t.Fatal("no signature object")
	}
	p := i + j + len("-----BEGIN SIGNATURE-----\n") + 10
	b := []byte(text)
	if b[p] == 'A' {
		b[p] = 'B'
	} else {
		b[p] = 'A'
	}
	return string(b)
}

// keepSignatures drops all but the first k directory-signature items.
func keepSignatures(text string, k int) string {
	parts := strings.SplitAfter(text, "-----END SIGNATURE-----\n")
	// parts[0..] each end with one signature; the tail is "".
	var b strings.Builder
	for i := 0; i < k && i < len(parts); i++ {
		b.WriteString(parts[i])
	}
	return b.String()
}

// Bootstrap from the network's C tor relays as fallback directories
// (torrc FallbackDir lines), with every authority's DirPort dead.
func TestIntegrationFallbackBootstrap(t *testing.T) {
	n := testnet.Shared(t)
	auths := testAuthorities(t, n)
	for i := range auths {
		auths[i].DirAddr = deadAddr(t)
	}
	var fbs []Fallback
	for _, r := range n.Relays() {
		if r.IsAuthority {
			continue
		}
		fb, err := ParseFallback(fmt.Sprintf("FallbackDir %s orport=%d id=%s", r.DirAddr(), r.ORPort, r.Fingerprint))
		if err != nil {
			t.Fatal(err)
		}
		fbs = append(fbs, fb)
	}
	m, err := New(Config{Authorities: auths, Fallbacks: fbs, TestingTorNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap from %d fallbacks: %v", len(fbs), err)
	}
	checkNetDir(t, n, m.NetDir())
	if s := m.Stats(); s.ConsensusDownloads != 1 || s.CertDownloads != 1 {
		t.Errorf("stats %+v, want one consensus and one certificate download", s)
	}
}

// The private network's C tor directory caches answer in the encodings
// gotor offers (dir-spec §6.1, proposal 278), and the documents decode
// and verify. C tor may fall back to deflate or identity (it serves
// certificates in LZMA only precompressed, i.e. never, and gzip not at
// all), but zstd and LZMA consensuses come as asked.
func TestIntegrationCompression(t *testing.T) {
	n := testnet.Shared(t)
	m := newTestManager(t, n, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var relay testnet.NodeInfo
	for _, r := range n.Relays() {
		if !r.IsAuthority {
			relay = r
			break
		}
	}
	seen := map[string]bool{}
	get := func(path, enc string) *dirclient.Response {
		t.Helper()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", relay.DirAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := dirclient.Get(ctx, conn, relay.Nickname, dirclient.Request{Path: path, AcceptEncoding: []string{enc}, MaxBody: maxConsensusSize})
		if err != nil {
			t.Fatalf("%s %s: %v", path, enc, err)
		}
		if resp.Encoding != enc && resp.Encoding != "deflate" && resp.Encoding != "identity" {
			t.Errorf("%s: asked for %s, got %s", path, enc, resp.Encoding)
		}
		seen[resp.Encoding] = true
		return resp
	}
	for _, enc := range []string{"x-zstd", "x-tor-lzma", "deflate", "gzip", "identity"} {
		cons := get("/tor/status-vote/current/consensus-microdesc", enc)
		if (enc == "x-zstd" || enc == "x-tor-lzma") && cons.Encoding != enc {
			t.Errorf("consensus: asked for %s, got %s", enc, cons.Encoding)
		}
		if _, err := m.VerifyConsensus(ctx, string(cons.Body), time.Now()); err != nil {
			t.Errorf("%s consensus: %v", enc, err)
		}
		certs := get("/tor/keys/all", enc)
		if kcs, err := netdoc.ParseKeyCerts(string(certs.Body)); err != nil || len(kcs) != 3 {
			t.Errorf("%s certificates: %d, %v", enc, len(kcs), err)
		}
		t.Logf("%-10s consensus %s %6d bytes on the wire for %6d; certificates %s %5d for %5d",
			enc, cons.Encoding, cons.WireSize, len(cons.Body), certs.Encoding, certs.WireSize, len(certs.Body))
	}
	for _, enc := range []string{"x-zstd", "x-tor-lzma", "deflate", "identity"} {
		if !seen[enc] {
			t.Errorf("no answer in %s", enc)
		}
	}
}

// After the first consensus, refreshes ask for a diff from it
// (X-Or-Diff-From-Consensus, dir-spec §4.5.2) and the private network's
// C tor caches send one: the client applies it and the result verifies.
func TestIntegrationConsensusDiff(t *testing.T) {
	n := testnet.Shared(t)
	m := newTestManager(t, n, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := m.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	sub, unsub := m.Subscribe()
	defer unsub()
	first := <-sub
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	defer func() { stop(); <-done }()
	for refreshes := 0; refreshes < 4 && m.Stats().ConsensusDiffs == 0; refreshes++ {
		select {
		case nd := <-sub:
			if !nd.ValidAfter.After(first.ValidAfter) {
				t.Fatalf("refreshed NetDir not newer")
			}
			checkNetDir(t, n, nd)
		case <-time.After(90 * time.Second):
			t.Fatal("no refreshed NetDir within 90 s")
		}
	}
	s := m.Stats()
	t.Logf("stats %+v", s)
	if s.ConsensusDiffs == 0 {
		t.Errorf("%d consensus downloads after the first, none as a diff", s.ConsensusDownloads-1)
	}
}
