package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
)

// buildCC builds guard-middle-exit with ntor, then ntor v3 requesting
// congestion control at the exit.
func buildCC(t *testing.T, ctx context.Context, mgr *channel.Manager, p *circtest.Path, i int) *circuit.Circuit {
	t.Helper()
	g, m, ex := p.Relays[i%len(p.Relays)], p.Relays[(i+1)%len(p.Relays)], p.Exits[i%len(p.Exits)]
	c, err := circuit.Build(ctx, mgr, []circuit.Target{g, m})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ExtendWith(ctx, ex, nil, circuit.NtorV3CC); err != nil {
		t.Fatal(err)
	}
	cc, inc := c.CongestionControl()
	if !cc {
		t.Fatal("exit did not accept congestion control")
	}
	t.Logf("congestion control negotiated with %s: cc_sendme_inc %d", p.Nicks[ex.RSAID], inc)
	return c
}

// TestCongestionControlDownloadUpload downloads 10 MiB and uploads 4 MiB
// on circuits with prop 324 congestion control (SENDMEs every
// cc_sendme_inc cells, XON/XOFF instead of stream windows).
func TestCongestionControlDownloadUpload(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for i := range p.Exits {
		c := buildCC(t, ctx, mgr, p, i)
		start := time.Now()
		resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		conn.Close()
		if err != nil || hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
			t.Fatalf("download: %d bytes, %v", n, err)
		}
		el := time.Since(start)
		t.Logf("CC download %d bytes in %v (%.1f MiB/s)", n, el, float64(n)/el.Seconds()/(1<<20))

		up, err := stream.Begin(ctx, c, "127.0.0.1", uint16(srv.Port), 0)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("gotor-cc"), 4<<20/8)
		sum := sha256.Sum256(data)
		go func() {
			fmt.Fprintf(up, "POST /upload HTTP/1.0\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(data))
			up.Write(data)
		}()
		r2, err := http.ReadResponse(bufio.NewReader(up), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r2.Body)
		up.Close()
		if want := fmt.Sprintf("%d %x\n", len(data), sum); string(body) != want {
			t.Fatalf("upload: %q", body)
		}
		if c.Err() != nil {
			t.Fatal(c.Err())
		}
		c.Close()
	}
}

// TestCongestionControlSlowReader stops reading mid-download and
// resumes, against a real C tor exit with congestion control: the client
// must send XOFF once XoffCells are buffered (and nothing more while the
// application does not read), the exit must stop (the circuit survives
// the bound on cells past the XOFF), and the client must send XON when
// reading resumes, after which every byte arrives (issue 21 item 7).
func TestCongestionControlSlowReader(t *testing.T) {
	_, p, srv := setup(t)
	mgr := channel.NewManager()
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := buildCC(t, ctx, mgr, p, 1)
	defer c.Close()
	resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := conn.(*stream.Conn)
	h := sha256.New()
	if _, err := io.CopyN(h, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	// The application stops reading: the buffer fills to XoffCells and
	// the client sends XOFF. Wait for it (not for a time).
	waitFor := func(what string, cond func(xoff, xon int) bool) (int, int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			xoff, xon := s.XonXoffSent()
			if cond(xoff, xon) {
				return xoff, xon
			}
			if c.Err() != nil || time.Now().After(deadline) {
				t.Fatalf("%s: XOFF sent %d, XON sent %d (circuit: %v)", what, xoff, xon, c.Err())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	xoff, xon := waitFor("no XOFF while the application does not read", func(xoff, xon int) bool { return xoff == xon+1 })
	t.Logf("stopped reading after 1 MiB: XOFF sent %d, XON sent %d", xoff, xon)
	// Reading resumes: the client sends XON, and the download completes.
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatalf("after resuming: %v (XON sent %d)", err, func() int { _, n := s.XonXoffSent(); return n }())
	}
	if hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
		t.Fatal("sha256 mismatch")
	}
	xoff2, xon2 := s.XonXoffSent()
	if xon2 <= xon {
		t.Fatalf("reading resumed but no XON sent (XOFF %d, XON %d)", xoff2, xon2)
	}
	t.Logf("download complete: XOFF sent %d, XON sent %d", xoff2, xon2)
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
}
