package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/testnet"
)

// startEngine starts an engine without listeners on the shared network.
func startEngine(t *testing.T, n *testnet.Network) *Engine {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.DataDirectory = filepath.Join(t.TempDir(), "data")
	cfg.DirAuthorities = n.DirAuthorityLines()
	cfg.UseTestingTorNetwork()
	cfg.SocksPorts = nil
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(cfg, nil)
	if err == nil {
		err = c.Start(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// TestCongestionControlOnLatencyNetwork: on a network with 20 ms per
// link, the engine's exit circuits negotiate congestion control (the
// consensus has no cc_alg, so the default 2; C tor 0.4.9 exits list
// FlowCtrl=2), a 10 MiB download arrives intact (the exit's TOR_VEGAS
// paced by our SENDMEs), and a 4 MiB upload runs ours: it saw the
// network's round trip (at least 6 x 20 ms, a lower bound) and grew its
// window.
func TestCongestionControlOnLatencyNetwork(t *testing.T) {
	n := testnet.Shared(t)
	srv, err := testnet.StartHTTPServer(10 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := startEngine(t, n)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	conn, err := c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /random HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	ttfb := time.Since(start)
	h := sha256.New()
	nb, err := io.Copy(h, resp.Body)
	el := time.Since(start)
	if err != nil || nb != int64(srv.Size) || hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
		t.Fatalf("download: %d of %d bytes, sha256 match %v, err %v", nb, srv.Size, hex.EncodeToString(h.Sum(nil)) == srv.SHA256, err)
	}

	// An upload on the same circuit runs our own TOR_VEGAS, paced by the
	// exit's SENDMEs.
	up := bytes.Repeat([]byte("gotor-cc"), (4<<20)/8)
	conn2, err := c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	upStart := time.Now()
	fmt.Fprintf(conn2, "POST /upload HTTP/1.0\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(up))
	if _, err := conn2.Write(up); err != nil {
		t.Fatal(err)
	}
	resp2, err := http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp2.Body)
	upEl := time.Since(upStart)
	if want := fmt.Sprintf("%d %x\n", len(up), sha256.Sum256(up)); string(answer) != want {
		t.Fatalf("upload answered %q, want %q", answer, want)
	}

	// Every exit circuit runs congestion control; the one that carried
	// the upload measured the network's round trip.
	circs := c.Circuits()
	if len(circs) == 0 {
		t.Fatal("no exit circuits")
	}
	var used bool
	for _, ci := range circs {
		if !ci.CongestionControl {
			t.Errorf("circuit %d through %v: fixed windows, want congestion control", ci.ID, ci.Path)
		}
		ec, ok := c.circs.Lookup(ci.ID)
		if !ok {
			continue
		}
		st, ok := ec.Vegas()
		if !ok {
			t.Fatalf("circuit %d has no Vegas state", ci.ID)
		}
		if st.EwmaRTT == 0 {
			continue // carried no upload
		}
		used = true
		if min := 6 * testLatency; st.MinRTT < min {
			t.Errorf("RTT_min %v below the network's %v", st.MinRTT, min)
		}
		if st.Cwnd <= 124 {
			t.Errorf("cwnd %d after a 4 MiB upload, want growth beyond cc_cwnd_init (124)", st.Cwnd)
		}
		t.Logf("circuit %d: TOR_VEGAS cwnd %d cells, slow start %v, RTT min %v ewma %v max %v",
			ci.ID, st.Cwnd, st.InSlowStart, st.MinRTT.Round(time.Millisecond), st.EwmaRTT.Round(time.Millisecond), st.MaxRTT.Round(time.Millisecond))
	}
	if !used {
		t.Fatal("no circuit measured an RTT: the upload did not run TOR_VEGAS")
	}
	t.Logf("10 MiB download %.2f MiB/s (TTFB %v), 4 MiB upload %.2f MiB/s, %v one-way per link",
		float64(nb)/(1<<20)/el.Seconds(), ttfb.Round(time.Millisecond), 4/upEl.Seconds(), testLatency)
}
