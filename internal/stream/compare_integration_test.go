package stream_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/testnet"
)

// socks5Connect does a minimal SOCKS5 CONNECT (no auth) to 127.0.0.1:port.
func socks5Connect(proxy string, port int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.Write([]byte{5, 1, 0})
	var b [10]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("socks5 auth: %v %x", err, b[:2])
	}
	c.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)})
	if _, err := io.ReadFull(c, b[:10]); err != nil || b[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("socks5 connect: %v %x", err, b[:10])
	}
	return c, nil
}

// TestThroughputVersusCTor downloads the 10 MiB file through gotor's
// circuit code and through a C tor client on the same network, and logs
// both rates (numbers for docs/BENCHMARKS.md).
func TestThroughputVersusCTor(t *testing.T) {
	_, p, srv := setup(t)
	ref := testnet.SharedReferenceClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	mgr := channel.NewManager()
	defer mgr.Close()
	var gotorBest, ctorBest time.Duration
	for i := range 3 {
		c := build(t, ctx, mgr, p, i, p.Exits[i%len(p.Exits)])
		start := time.Now()
		resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, resp.Body)
		el := time.Since(start)
		conn.Close()
		c.Close()
		if hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
			t.Fatal("gotor: sha256 mismatch")
		}
		if gotorBest == 0 || el < gotorBest {
			gotorBest = el
		}
	}
	var ccBest time.Duration
	for i := range 3 {
		c := buildCC(t, ctx, mgr, p, i)
		start := time.Now()
		resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, resp.Body)
		el := time.Since(start)
		conn.Close()
		c.Close()
		if hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
			t.Fatal("gotor CC: sha256 mismatch")
		}
		if ccBest == 0 || el < ccBest {
			ccBest = el
		}
	}
	_ = circuit.CircWindowStart
	for range 3 {
		conn, err := socks5Connect(ref.SocksAddr(), srv.Port)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fmt.Fprintf(conn, "GET /random HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, resp.Body)
		el := time.Since(start)
		conn.Close()
		if hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
			t.Fatal("C tor: sha256 mismatch")
		}
		if ctorBest == 0 || el < ctorBest {
			ctorBest = el
		}
	}
	mib := float64(srv.Size) / (1 << 20)
	t.Logf("10 MiB best of 3: gotor %v (%.1f MiB/s), gotor with congestion control %v (%.1f MiB/s), C tor client %v (%.1f MiB/s)",
		gotorBest, mib/gotorBest.Seconds(), ccBest, mib/ccBest.Seconds(), ctorBest, mib/ctorBest.Seconds())
}
