package channel_test

// Connection padding against the private network's C tor guard
// (padding-spec §2): gotor's channel to its guard pads when idle and the
// guard pads back; with ReducedConnectionPadding the guard honours
// gotor's PADDING_NEGOTIATE STOP and stops padding; the circuit still
// carries a stream after the idle minute. The same counting proxy
// measures a C tor client's guard channel for comparison.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/testnet"
)

// idleWindow is how long the channels stay idle while measured.
const idleWindow = 60 * time.Second

// singleCellRecord reports whether a chunk read from a TLS connection is
// one TLS record holding exactly one 514-byte cell: 536 bytes in TLS 1.3
// (5 header + 514 + 1 content type + 16 tag), 543 in TLS 1.2 AES-GCM. On
// an idle channel these are the padding cells.
func singleCellRecord(n int) bool { return n >= 530 && n <= 560 }

// chunk is one read from one side of a proxied connection.
type chunk struct {
	at time.Time
	up bool // client to relay
	n  int
}

// countedConn is one connection through the counting proxy.
type countedConn struct {
	target string
	mu     sync.Mutex
	chunks []chunk
}

func (c *countedConn) add(up bool, n int) {
	c.mu.Lock()
	c.chunks = append(c.chunks, chunk{time.Now(), up, n})
	c.mu.Unlock()
}

// countingProxy forwards TCP connections, as a plain forwarder to one
// target or as a SOCKS5 proxy (RFC 1928, CONNECT with IPv4, no
// authentication: what C tor's Socks5Proxy speaks), recording what each
// carries.
type countingProxy struct {
	ln     net.Listener
	target string // "" for SOCKS5
	mu     sync.Mutex
	conns  []*countedConn
	wg     sync.WaitGroup
}

func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *countingProxy) serve(in net.Conn) {
	defer in.Close()
	target := p.target
	if target == "" {
		var err error
		if target, err = socks5Accept(in); err != nil {
			return
		}
	}
	out, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	if p.target == "" {
		// Succeeded, bound to 0.0.0.0:0.
		if _, err := in.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
			return
		}
	}
	cc := &countedConn{target: target}
	p.mu.Lock()
	p.conns = append(p.conns, cc)
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, up bool) {
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				cc.add(up, n)
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(out, in, true)
	go pipe(in, out, false)
	<-done
	<-done
}

// socks5Accept reads a SOCKS5 greeting and CONNECT request and returns
// the target.
func socks5Accept(c net.Conn) (string, error) {
	br := bufio.NewReader(c)
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr[0] != 5 {
		return "", fmt.Errorf("greeting")
	}
	if _, err := io.ReadFull(br, make([]byte, hdr[1])); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return "", err
	}
	var req [10]byte
	if _, err := io.ReadFull(br, req[:]); err != nil || req[1] != 1 || req[3] != 1 {
		return "", fmt.Errorf("request %x", req)
	}
	if br.Buffered() > 0 {
		return "", fmt.Errorf("data after the request")
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte(req[4:8])), binary.BigEndian.Uint16(req[8:]))
	return ap.String(), nil
}

// window is what one connection carried in a time window. Isolated
// counts the single-cell records with nothing else on the connection,
// either way, within quiet of them: on an idle channel, padding; a
// directory fetch or circuit build is a burst and does not count.
type window struct {
	target                   string
	upBytes, downBytes       int64
	upSingle, downSingle     int
	upIsolated, downIsolated int
}

const quiet = time.Second

func (p *countingProxy) window(from, to time.Time) []window {
	p.mu.Lock()
	conns := append([]*countedConn(nil), p.conns...)
	p.mu.Unlock()
	var out []window
	for _, c := range conns {
		c.mu.Lock()
		ch := append([]chunk(nil), c.chunks...)
		c.mu.Unlock()
		w := window{target: c.target}
		for i, k := range ch {
			if k.at.Before(from) || k.at.After(to) {
				continue
			}
			single := singleCellRecord(k.n)
			isolated := single &&
				(i == 0 || k.at.Sub(ch[i-1].at) >= quiet) && (i == len(ch)-1 || ch[i+1].at.Sub(k.at) >= quiet)
			if k.up {
				w.upBytes += int64(k.n)
				w.upSingle += b2i(single)
				w.upIsolated += b2i(isolated)
			} else {
				w.downBytes += int64(k.n)
				w.downSingle += b2i(single)
				w.downIsolated += b2i(isolated)
			}
		}
		if w.upBytes+w.downBytes > 0 {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].upIsolated+out[i].downIsolated > out[j].upIsolated+out[j].downIsolated
	})
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func perMinute(n int) float64 { return float64(n) / idleWindow.Minutes() }

// gotorChannel opens a 3-hop circuit whose guard channel runs through
// the proxy, with the padding configuration cfg.
func gotorChannel(ctx context.Context, t *testing.T, path []circuit.Target, proxy *countingProxy, cfg channel.PaddingConfig) (*channel.Manager, *circuit.Circuit) {
	t.Helper()
	m := channel.NewManager()
	t.Cleanup(m.Close)
	m.SetPadding(cfg)
	m.DialFunc = func(ctx context.Context, _ netip.AddrPort, want channel.Identity) (*channel.Channel, error) {
		return channel.Dial(ctx, netip.MustParseAddrPort(proxy.ln.Addr().String()), want)
	}
	c, err := circuit.Build(ctx, m, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return m, c
}

// stillUsable fetches the exit's own descriptor over a BEGIN_DIR stream
// on the circuit: the guard still relays after the idle minute.
func stillUsable(ctx context.Context, t *testing.T, c *circuit.Circuit) {
	t.Helper()
	s, err := stream.BeginDir(ctx, c)
	if err != nil {
		t.Fatalf("BEGIN_DIR after the idle window: %v", err)
	}
	defer s.Close()
	if _, err := io.WriteString(s, "GET /tor/server/authority HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(s), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("directory answer after the idle window: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestPaddingAgainstCTorGuard(t *testing.T) {
	n := testnet.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	p, err := circtest.Targets(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	guard, path := p.Relays[0], []circuit.Target{p.Relays[0], p.Relays[1], p.Exits[0]}
	proxyDefault, proxyReduced := startCountingProxy(t, guard.Addr.String()), startCountingProxy(t, guard.Addr.String())
	mDefault, cDefault := gotorChannel(ctx, t, path, proxyDefault, channel.PaddingConfig{})
	mReduced, cReduced := gotorChannel(ctx, t, path, proxyReduced, channel.PaddingConfig{Reduced: true})
	chDefault, chReduced := mDefault.Channels()[0], mReduced.Channels()[0]
	if chDefault.LinkProtocol() < 5 {
		t.Fatalf("link protocol %d: the guard does not pad", chDefault.LinkProtocol())
	}

	// A C tor client through a SOCKS5 counting proxy, for comparison.
	ctor := startCountingProxy(t, "")
	// No circuit build timeout learning: its test circuits would keep
	// the client busy for its first minutes.
	rc, err := n.StartReferenceClientWith(ctx, "Socks5Proxy "+ctor.ln.Addr().String(), "LearnCircuitBuildTimeout 0")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Stop()
	time.Sleep(20 * time.Second) // let its first circuits settle

	sDefault, sReduced := chDefault.PaddingStats(), chReduced.PaddingStats()
	from := time.Now()
	time.Sleep(idleWindow)
	to := time.Now()
	dDefault, dReduced := chDefault.PaddingStats(), chReduced.PaddingStats()
	dDefault.Sent -= sDefault.Sent
	dDefault.Received -= sDefault.Received
	dReduced.Sent -= sReduced.Sent
	dReduced.Received -= sReduced.Received

	t.Logf("gotor, default padding, %v idle: sent %d PADDING (%.1f/min), guard sent %d (%.1f/min)",
		idleWindow, dDefault.Sent, perMinute(int(dDefault.Sent)), dDefault.Received, perMinute(int(dDefault.Received)))
	t.Logf("gotor, ReducedConnectionPadding, %v idle: sent %d PADDING (%.1f/min), guard sent %d",
		idleWindow, dReduced.Sent, perMinute(int(dReduced.Sent)), dReduced.Received)
	nick := map[string]string{}
	for _, r := range n.Relays() {
		nick[r.ORAddr()] = r.Nickname
	}
	logFlows := func(who string, ws []window) {
		for _, w := range ws {
			t.Logf("%s channel to %s (%s): up %d B, %d single-cell records, %d isolated (%.1f/min); down %d B, %d, %d (%.1f/min)",
				who, w.target, nick[w.target], w.upBytes, w.upSingle, w.upIsolated, perMinute(w.upIsolated),
				w.downBytes, w.downSingle, w.downIsolated, perMinute(w.downIsolated))
		}
	}
	logFlows("gotor default", proxyDefault.window(from, to))
	logFlows("gotor reduced", proxyReduced.window(from, to))
	logFlows("C tor client", ctor.window(from, to))

	// Default: both ends pad, each resetting its timer on the other's
	// cells: a cell every 1.5 + E[min(Y,Y)] ≈ 5.8 s in all, about 10 a
	// minute, never more than one per 1.5 s from each end.
	if dDefault.Sent < 2 || dDefault.Received < 2 || dDefault.Sent+dDefault.Received < 5 {
		t.Errorf("default padding: sent %d, received %d in %v", dDefault.Sent, dDefault.Received, idleWindow)
	}
	if max := uint64(idleWindow / (1500 * time.Millisecond)); dDefault.Sent > max {
		t.Errorf("sent %d PADDING cells in %v: more than one per nf_ito_low", dDefault.Sent, idleWindow)
	}
	// Reduced: the guard obeyed STOP; gotor pads every 9-14 s.
	if dReduced.Received != 0 {
		t.Errorf("the guard sent %d PADDING cells after PADDING_NEGOTIATE STOP", dReduced.Received)
	}
	if dReduced.Sent < uint64(idleWindow/(14*time.Second)) || dReduced.Sent > uint64(idleWindow/(9*time.Second))+1 {
		t.Errorf("reduced padding: sent %d in %v, want one per 9-14 s", dReduced.Sent, idleWindow)
	}
	for _, ch := range []*channel.Channel{chDefault, chReduced} {
		if err := ch.Err(); err != nil {
			t.Fatalf("channel closed during the idle window: %v", err)
		}
	}
	stillUsable(ctx, t, cDefault)
	stillUsable(ctx, t, cReduced)
}
