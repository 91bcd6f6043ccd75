package dirmgr

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/netdoc"
)

func TestParseDirAuthority(t *testing.T) {
	good := []struct {
		line string
		want string
	}{
		{"DirAuthority moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498",
			"moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498"},
		{"tor26 orport=443 v3ident=14C131DFC5C6F93646BE72FA1401C02A8DF2E8B4 ipv6=[2001:858:2:2:aabb:0:563b:1526]:443 86.59.21.38:80 847B 1F85 0344 D787 6491 A548 92F9 0493 4E4E B85D",
			"tor26 orport=443 v3ident=14C131DFC5C6F93646BE72FA1401C02A8DF2E8B4 ipv6=[2001:858:2:2:aabb:0:563b:1526]:443 86.59.21.38:80 847B1F850344D7876491A54892F904934E4EB85D"},
		{"DirAuthority auth0 orport=5000 no-v2 v3ident=E9309A92D5E723E70B7DC8FE246A3F65E416E6BB 127.0.0.1:5001 0123456789ABCDEF0123456789ABCDEF01234567",
			"auth0 orport=5000 no-v2 v3ident=E9309A92D5E723E70B7DC8FE246A3F65E416E6BB 127.0.0.1:5001 0123456789ABCDEF0123456789ABCDEF01234567"},
		{"Serge orport=9001 bridge 66.111.2.131:9030 BA44 A889 E64B 93FA A2B1 14E0 2C2A 279A 8555 C533",
			"Serge orport=9001 bridge 66.111.2.131:9030 BA44A889E64B93FAA2B114E02C2A279A8555C533"},
	}
	for _, tc := range good {
		a, err := ParseDirAuthority(tc.line)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got := a.String(); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.line, got, tc.want)
		}
	}
	bad := []string{
		"",
		"DirAuthority",
		"moria1 orport=9201 128.31.0.39:9231", // no fingerprint
		"moria1 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498",          // no orport
		"moria1 orport=x 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498", // bad orport
		"moria1 orport=1 v3ident=F5 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498",
		"moria1 orport=1 128.31.0.39 1A25C6358DB91342AA51720A5038B72742732498",       // no dirport
		"moria1 orport=1 [::1]:80 1A25C6358DB91342AA51720A5038B72742732498",          // IPv6 dir address
		"moria1 orport=1 1.2.3.4:80 1A25C6358DB91342AA51720A5038B7274273249",         // short fp
		"moria1 orport=1 1.2.3.4:80 1A25C 6358DB91342AA51720A5038B72742732498",       // bad grouping
		"moria1 orport=1 1.2.3.4:80 1A25C6358DB91342AA51720A5038B72742732498 extra",  // trailing junk
		"moria1 orport=1 frob=2 1.2.3.4:80 1A25C6358DB91342AA51720A5038B72742732498", // unknown flag
		"moria1 orport=1 1.2.3.4:80 ZZ25C6358DB91342AA51720A5038B72742732498",        // not hex
	}
	for _, l := range bad {
		if a, err := ParseDirAuthority(l); err == nil {
			t.Errorf("%q accepted: %v", l, a)
		}
	}
}

func TestDefaults(t *testing.T) {
	auths := DefaultAuthorities()
	v3 := 0
	for _, a := range auths {
		if a.HasV3Ident {
			v3++
		}
	}
	if len(auths) != 10 || v3 != 9 {
		t.Errorf("%d authorities, %d with v3ident", len(auths), v3)
	}
	fbs := DefaultFallbacks()
	if len(fbs) != 200 {
		t.Errorf("%d fallbacks", len(fbs))
	}
	if _, err := New(Config{}); err != nil {
		t.Error(err)
	}
	if _, err := New(Config{Authorities: auths[3:4]}); err == nil {
		t.Error("bridge authority alone accepted")
	}
}

// fakeDir serves testdata documents as a directory cache.
type fakeDir struct {
	cons, certs string
	mds         map[string]string // base64 digest -> text
	delay       time.Duration
	hits        atomic.Int64
	consHits    atomic.Int64
	ln          net.Listener
	srv         *http.Server
}

func readTD(t testing.TB, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "netdoc", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newFakeDir(t *testing.T, delay time.Duration, compress bool) *fakeDir {
	f := &fakeDir{cons: readTD(t, "consensus-microdesc.txt"), certs: readTD(t, "certs.txt"), delay: delay, mds: map[string]string{}}
	mds, err := netdoc.ParseMicrodescs(readTD(t, "microdescs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, md := range mds {
		f.mds[base64.RawStdEncoding.EncodeToString(md.Digest[:])] = md.Text
	}
	f.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-r.Context().Done():
				return
			}
		}
		p := strings.TrimSuffix(r.URL.Path, ".z")
		var body string
		switch {
		case p == "/tor/status-vote/current/consensus-microdesc":
			f.consHits.Add(1)
			body = f.cons
		case strings.HasPrefix(p, "/tor/keys/"):
			body = f.certs
		case strings.HasPrefix(p, "/tor/micro/d/"):
			for d := range strings.SplitSeq(strings.TrimPrefix(p, "/tor/micro/d/"), "-") {
				body += f.mds[d]
			}
		default:
			http.NotFound(w, r)
			return
		}
		if compress && strings.HasSuffix(r.URL.Path, ".z") {
			var b bytes.Buffer
			zw := zlib.NewWriter(&b)
			zw.Write([]byte(body))
			zw.Close()
			w.Header().Set("Content-Encoding", "deflate")
			w.Write(b.Bytes())
			return
		}
		w.Write([]byte(body))
	})}
	go f.srv.Serve(f.ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeDir) port() uint16 { return uint16(f.ln.Addr().(*net.TCPAddr).Port) }

func fakeAuthorities(t *testing.T, dirs ...*fakeDir) []Authority {
	certs, err := netdoc.ParseKeyCerts(readTD(t, "certs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Authority
	for i, kc := range certs {
		d := dirs[i%len(dirs)]
		out = append(out, Authority{
			Nickname: fmt.Sprintf("fake%d", i), ORPort: 1, V3Ident: kc.Fingerprint, HasV3Ident: true,
			DirAddr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), d.port()), Fingerprint: [20]byte{byte(i)},
		})
	}
	return out
}

func consensusTime(t *testing.T) time.Time {
	c, err := netdoc.ParseConsensus(readTD(t, "consensus-microdesc.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return c.ValidAfter.Add(time.Second)
}

func TestBootstrapOffline(t *testing.T) {
	slow := newFakeDir(t, time.Minute, true)
	fast := newFakeDir(t, 0, true)
	plain := newFakeDir(t, 0, false)
	now := consensusTime(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	var dials atomic.Int64
	mk := func() *Manager {
		m, err := New(Config{
			Authorities: fakeAuthorities(t, slow, fast, plain), DataDir: dataDir, TestingTorNetwork: true,
			Now: func() time.Time { return now },
			DirDial: func(ctx context.Context, dir *netdir.Relay) (net.Conn, error) {
				dials.Add(1)
				return plainDial(ctx, dir)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		m.hedgeDelay = 100 * time.Millisecond
		m.requestTimeout = 2 * time.Second
		m.retryDelay = 10 * time.Millisecond
		return m
	}
	m := mk()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := m.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("bootstrap took %v despite a slow directory", d)
	}
	if dials.Load() == 0 {
		t.Error("DirDial not used")
	}
	nd := m.NetDir()
	if nd == nil || len(nd.Relays) == 0 {
		t.Fatal("no relays")
	}
	for _, r := range nd.Relays {
		if !r.IsUsable() {
			t.Errorf("relay %s not usable", r.Nickname)
		}
	}
	if s := m.Stats(); s.ConsensusDownloads != 1 {
		t.Errorf("stats %+v", s)
	}
	// Restart: cached consensus, no download.
	before := fast.consHits.Load() + plain.consHits.Load() + slow.consHits.Load()
	m2 := mk()
	if err := m2.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if s := m2.Stats(); s.ConsensusDownloads != 0 || s.ConsensusFromCache != 1 || s.MicrodescsDownloaded != 0 {
		t.Errorf("warm stats %+v", s)
	}
	if after := fast.consHits.Load() + plain.consHits.Load() + slow.consHits.Load(); after != before {
		t.Errorf("warm bootstrap requested the consensus")
	}
	if len(m2.NetDir().Relays) != len(nd.Relays) {
		t.Error("warm NetDir differs")
	}
	// Past valid-until but reasonably live: the network has nothing
	// newer, so the cached consensus is used.
	now = now.Add(12 * time.Hour)
	m4 := mk()
	if err := m4.Bootstrap(ctx); err != nil {
		t.Fatalf("reasonably live cached consensus: %v", err)
	}
	if s := m4.Stats(); s.ConsensusFromCache != 1 || s.ConsensusDownloads != 0 {
		t.Errorf("reasonably live stats %+v", s)
	}
	now = now.Add(-12 * time.Hour)
	// Past valid-until + 24 h the cache is useless and the network
	// only has the same expired consensus: bootstrap fails with ErrExpired.
	now = now.Add(48 * time.Hour)
	m3 := mk()
	err := m3.Bootstrap(ctx)
	if !errors.Is(err, netdoc.ErrExpired) {
		t.Errorf("stale bootstrap: %v", err)
	}
}

func TestNextFetch(t *testing.T) {
	va := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	c := &netdoc.Consensus{ValidAfter: va, FreshUntil: va.Add(time.Hour), ValidUntil: va.Add(3 * time.Hour)}
	m := &Manager{}
	for range 100 {
		at := m.nextFetch(c)
		if at.Before(va.Add(105*time.Minute)) || at.After(va.Add(171*time.Minute)) {
			t.Fatalf("nextFetch = %v", at)
		}
	}
	m.cfg.TestingTorNetwork = true
	c = &netdoc.Consensus{ValidAfter: va, FreshUntil: va.Add(10 * time.Second), ValidUntil: va.Add(30 * time.Second)}
	for range 100 {
		at := m.nextFetch(c)
		if at.Before(c.FreshUntil) || at.After(c.ValidUntil) {
			t.Fatalf("testing nextFetch = %v", at)
		}
	}
}

func TestBuildNetDirZeroWeights(t *testing.T) {
	c, err := netdoc.ParseConsensus(readTD(t, "consensus-microdesc.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c.BandwidthWeights = nil
	c.Params = map[string]int32{"bwweightscale": 0}
	for i := range c.Routers {
		c.Routers[i].Bandwidth = 0
	}
	nd := BuildNetDir(c, nil)
	if nd.WeightScale < 1 || nd.Weights == nil || len(nd.Relays) != len(c.Routers) {
		t.Errorf("NetDir weights %v scale %d", nd.Weights, nd.WeightScale)
	}
	for _, r := range nd.Relays {
		if r.HasMicrodesc || r.IsUsable() {
			t.Error("relay without microdescriptor marked usable")
		}
	}
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

// Bootstrap asks the fallbacks first (dir-spec §5.1), and succeeds from
// them alone when no authority answers.
func TestBootstrapFromFallbacks(t *testing.T) {
	auth := newFakeDir(t, 0, true)
	fb := newFakeDir(t, 0, true)
	now := consensusTime(t)
	fallback := Fallback{Addr: deadAddr(t), DirPort: fb.port(), ID: [20]byte{0xfb}}
	for _, authsAlive := range []bool{true, false} {
		auths := fakeAuthorities(t, auth)
		if !authsAlive {
			for i := range auths {
				auths[i].DirAddr = deadAddr(t)
			}
		}
		m, err := New(Config{Authorities: auths, Fallbacks: []Fallback{fallback}, TestingTorNetwork: true,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		m.hedgeDelay = time.Minute // one request at a time: the order shows
		m.retryDelay = 10 * time.Millisecond
		before := auth.consHits.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = m.Bootstrap(ctx)
		cancel()
		if err != nil {
			t.Fatalf("authorities alive %v: %v", authsAlive, err)
		}
		if fb.consHits.Load() == 0 || auth.consHits.Load() != before {
			t.Errorf("authorities alive %v: consensus requests: fallback %d, authorities %d; want the fallback only",
				authsAlive, fb.consHits.Load(), auth.consHits.Load()-before)
		}
		fb.consHits.Store(0)
	}
	if _, err := ParseFallback("FallbackDir 127.0.0.1:80 orport=9001 id=0123456789ABCDEF0123456789ABCDEF01234567 weight=1 ipv6=[::1]:9001"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"FallbackDir 127.0.0.1:80 id=0123456789ABCDEF0123456789ABCDEF01234567",
		"FallbackDir 127.0.0.1:80 orport=1 id=0123456789ABCDEF0123456789ABCDEF01234567 frob=1",
		"FallbackDir [::1]:80 orport=1 id=0123456789ABCDEF0123456789ABCDEF01234567"} {
		if _, err := ParseFallback(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A consensus is used up to 24 hours past valid-until; after that Usable
// reports ErrConsensusTooOld, and Run keeps asking for a new one
// (dir-spec §5.1, issue 17 item 10).
func TestLiveness(t *testing.T) {
	d := newFakeDir(t, 0, true)
	var now atomic.Pointer[time.Time]
	start := consensusTime(t)
	now.Store(&start)
	m, err := New(Config{Authorities: fakeAuthorities(t, d), TestingTorNetwork: true,
		Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Usable(); !errors.Is(err, ErrNoConsensus) || m.Liveness() != NoConsensus {
		t.Errorf("before bootstrap: %v, %v", m.Liveness(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	validUntil := m.NetDir().ValidUntil
	for _, tc := range []struct {
		at   time.Time
		want Liveness
	}{
		{start, Live},
		{validUntil, Live},
		{validUntil.Add(time.Second), ReasonablyLive},
		{validUntil.Add(24 * time.Hour), ReasonablyLive},
		{validUntil.Add(24*time.Hour + time.Second), TooOld},
	} {
		now.Store(&tc.at)
		err := m.Usable()
		if l := m.Liveness(); l != tc.want || (err != nil) != (tc.want == TooOld) {
			t.Errorf("at valid-until%+v: %v, Usable %v; want %v", tc.at.Sub(validUntil), l, err, tc.want)
		}
		if tc.want == TooOld && !errors.Is(err, ErrConsensusTooOld) {
			t.Errorf("too old: Usable = %v", err)
		}
	}
	if m.NetDir() == nil {
		t.Error("NetDir dropped")
	}
	// Run keeps trying while the directory has nothing newer.
	m.refreshRetry = 50 * time.Millisecond
	before := d.consHits.Load()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for d.consHits.Load() < before+3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if n := d.consHits.Load() - before; n < 3 {
		t.Errorf("Run asked for a consensus %d times while its own was too old, want >= 3", n)
	}
	if m.Liveness() != TooOld {
		t.Errorf("liveness %v after failed refreshes", m.Liveness())
	}
}
