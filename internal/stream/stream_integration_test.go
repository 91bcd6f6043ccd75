package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

var (
	setupOnce sync.Once
	httpSrv   *testnet.HTTPServer
	paths     *circtest.Path
	setupErr  error
)

func setup(t *testing.T) (*testnet.Network, *circtest.Path, *testnet.HTTPServer) {
	t.Helper()
	net := testnet.Shared(t)
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		paths, setupErr = circtest.Targets(ctx, net)
		if setupErr == nil {
			httpSrv, setupErr = testnet.StartHTTPServer(10 << 20)
		}
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return net, paths, httpSrv
}

func httpGet(ctx context.Context, c *circuit.Circuit, port int, path string) (*http.Response, net.Conn, error) {
	conn, err := stream.Begin(ctx, c, "127.0.0.1", uint16(port), 0)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return resp, conn, nil
}

func build(t *testing.T, ctx context.Context, mgr *channel.Manager, p *circtest.Path, i int, exit circuit.Target) *circuit.Circuit {
	t.Helper()
	g := p.Relays[i%len(p.Relays)]
	m := p.Relays[(i+1)%len(p.Relays)]
	c, err := circuit.Build(ctx, mgr, []circuit.Target{g, m, exit})
	if err != nil {
		t.Fatalf("build via %s: %v", p.Nicks[exit.RSAID], err)
	}
	return c
}

// TestFetchThroughEachExit builds 20 3-hop circuits per exit and fetches
// a small document over a RELAY_BEGIN stream on each.
func TestFetchThroughEachExit(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	n := 0
	for _, ex := range p.Exits {
		for i := range 20 {
			c := build(t, ctx, mgr, p, i, ex)
			resp, conn, err := httpGet(ctx, c, srv.Port, "/")
			if err != nil {
				t.Fatalf("exit %s circuit %d: %v", p.Nicks[ex.RSAID], i, err)
			}
			body, err := io.ReadAll(resp.Body)
			conn.Close()
			if err != nil || string(body) != testnet.HelloBody {
				t.Fatalf("exit %s circuit %d: body %q err %v", p.Nicks[ex.RSAID], i, body, err)
			}
			c.Close()
			n++
		}
	}
	t.Logf("%d circuits built and used in %v (%v per circuit+fetch)", n, time.Since(start), time.Since(start)/time.Duration(n))
}

// TestDownload10MiB fetches the 10 MiB file through each exit; it needs
// both circuit (1000/100) and stream (500/50) SENDMEs.
func TestDownload10MiB(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for i, ex := range p.Exits {
		c := build(t, ctx, mgr, p, i, ex)
		start := time.Now()
		resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		nb, err := io.Copy(h, resp.Body)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if nb != int64(srv.Size) || hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
			t.Fatalf("got %d bytes, sha256 mismatch", nb)
		}
		t.Logf("exit %s: %d bytes in %v (%.1f MiB/s)", p.Nicks[ex.RSAID], nb, el, float64(nb)/el.Seconds()/(1<<20))
		c.Close()
	}
}

// TestUpload sends 4 MiB to the exit: our package windows and the exit's
// authenticated SENDMEs.
func TestUpload(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := build(t, ctx, mgr, p, 0, p.Exits[0])
	defer c.Close()
	conn, err := stream.Begin(ctx, c, "127.0.0.1", uint16(srv.Port), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	sum := sha256.Sum256(data)
	start := time.Now()
	go func() {
		fmt.Fprintf(conn, "POST /upload HTTP/1.0\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(data))
		conn.Write(data)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf("%d %x\n", len(data), sum)
	if string(body) != want {
		t.Fatalf("upload answer %q want %q", body, want)
	}
	t.Logf("uploaded %d bytes in %v", len(data), time.Since(start))
}

// TestManyStreamsOneCircuit runs concurrent streams on one circuit.
func TestManyStreamsOneCircuit(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := build(t, ctx, mgr, p, 1, p.Exits[0])
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			h := sha256.New()
			io.Copy(h, resp.Body)
			if hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
				errs <- errors.New("sha256 mismatch")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestEndReasons(t *testing.T) {
	_, p, _ := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := build(t, ctx, mgr, p, 2, p.Exits[0])
	defer c.Close()
	// A port nobody listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err := stream.Begin(ctx, c, "127.0.0.1", uint16(port), 0)
	var ee *stream.EndError
	if !errors.As(err, &ee) {
		t.Fatalf("got %v, want *stream.EndError", err)
	}
	t.Logf("closed port: %v (reason %d)", err, ee.Reason)
	if ee.Reason != stream.ReasonConnectRefused && ee.Reason != stream.ReasonMisc && ee.Reason != stream.ReasonConnReset {
		t.Fatalf("reason %v", ee.Reason)
	}
	// An unresolvable name.
	_, err = stream.Begin(ctx, c, "no-such-name.invalid", 80, 0)
	if !errors.As(err, &ee) || ee.Reason != stream.ReasonResolveFailed {
		t.Fatalf("unresolvable: %v", err)
	}
	// The circuit is still usable.
	if _, err := stream.Resolve(ctx, c, testnet.DefaultTestName); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	net, p, srv := setup(t)
	net.DNS().AddName("resolve-me.example", "127.0.0.1")
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := build(t, ctx, mgr, p, 0, p.Exits[1%len(p.Exits)])
	defer c.Close()
	addrs, err := stream.Resolve(ctx, c, "resolve-me.example")
	if err != nil || len(addrs) != 1 || addrs[0].String() != "127.0.0.1" {
		t.Fatalf("%v %v", addrs, err)
	}
	if _, err := stream.Resolve(ctx, c, "nope.invalid"); err == nil {
		t.Fatal("nonexistent name resolved")
	}
	// Begin by hostname.
	conn, err := stream.Begin(ctx, c, "resolve-me.example", uint16(srv.Port), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CONNECTED %+v", conn.Connected())
	conn.Close()
	// Reverse lookup: the test DNS responder has no PTR records, so
	// only check that we get an answer or a clean ResolveError.
	_, err = stream.ResolvePTR(ctx, c, addrs[0])
	var re *stream.ResolveError
	if err != nil && !errors.As(err, &re) {
		t.Fatalf("PTR: %v", err)
	}
}

func TestBeginDir(t *testing.T) {
	_, p, _ := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g := p.Relays[0]
	ch, err := mgr.Get(ctx, g.Addr, g.Identity())
	if err != nil {
		t.Fatal(err)
	}
	c, err := circuit.Create(ctx, ch, g)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := stream.BeginDir(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /tor/server/authority HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "router ") {
		t.Fatalf("%s %.100q", resp.Status, body)
	}
}

func TestDeadline(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := build(t, ctx, mgr, p, 0, p.Exits[0])
	defer c.Close()
	conn, err := stream.Begin(ctx, c, "127.0.0.1", uint16(srv.Port), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	_, err = conn.Read(b[:])
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("got %v, want timeout", err)
	}
}

// TestRelayKilledMidCircuit kills a middle relay during a download and
// checks the stream fails cleanly and no goroutines leak. It runs its
// own small network, since the killed relay stays dead.
func TestRelayKilledMidCircuit(t *testing.T) {
	_, _, srv := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	net, err := testnet.Start(ctx, testnet.Options{Relays: 2, Exits: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	p, err := circtest.Targets(ctx, net)
	if err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	mgr := channel.NewManager()
	mid := p.Relays[len(p.Relays)-1]
	c, err := circuit.Build(ctx, mgr, []circuit.Target{p.Relays[0], mid, p.Exits[0]})
	if err != nil {
		t.Fatal(err)
	}
	resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if err := net.KillNode(p.Nicks[mid.RSAID]); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Fatal("download completed although the middle relay was killed")
	}
	t.Logf("stream error after kill: %v", err)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("circuit not closed")
	}
	var de *circuit.DestroyedError
	if !errors.As(c.Err(), &de) {
		t.Fatalf("circuit error %v, want *circuit.DestroyedError", c.Err())
	}
	t.Logf("circuit error: %v", c.Err())
	conn.Close()

	// Now the guard: the channel itself dies under a two-hop circuit.
	guard := p.Relays[0]
	c2, err := circuit.Build(ctx, mgr, []circuit.Target{guard, p.Exits[0]})
	if err != nil {
		t.Fatal(err)
	}
	resp, conn, err = httpGet(ctx, c2, srv.Port, "/random")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if err := net.KillNode(p.Nicks[guard.RSAID]); err != nil {
		t.Fatal(err)
	}
	if _, err = io.Copy(io.Discard, resp.Body); err == nil {
		t.Fatal("download completed although the guard was killed")
	}
	t.Logf("stream error after guard kill: %v", err)
	<-c2.Done()
	<-c2.Channel().Done()
	conn.Close()
	mgr.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestNtorV3Circuit builds 3-hop circuits with ntor v3 (prop 332) at
// every hop and fetches through them.
func TestNtorV3Circuit(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, ex := range p.Exits {
		path := []circuit.Target{p.Relays[0], p.Relays[1], ex}
		ch, err := mgr.Get(ctx, path[0].Addr, path[0].Identity())
		if err != nil {
			t.Fatal(err)
		}
		c, err := circuit.CreateWith(ctx, ch, path[0], circuit.NtorV3)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range path[1:] {
			if err := c.ExtendWith(ctx, h, nil, circuit.NtorV3); err != nil {
				t.Fatal(err)
			}
		}
		resp, conn, err := httpGet(ctx, c, srv.Port, "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		c.Close()
		if string(body) != testnet.HelloBody {
			t.Fatalf("%q", body)
		}
	}
}
