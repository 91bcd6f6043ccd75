package client_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"golang.org/x/net/proxy"

	"github.com/gotor/gotor/client"
)

// A client that bootstraps, carries SOCKS and Go API streams (one left
// open) and stops leaves no goroutine behind.
func TestStopLeavesNoGoroutines(t *testing.T) {
	_, n, srv := shared(t) // the shared client's goroutines are part of the baseline
	runtime.GC()
	before := runtime.NumGoroutine()

	cfg := testConfig(t, n)
	cfg.SocksPorts = cfg.SocksPorts[:1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Open(ctx, cfg, itest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	httpGet(t, conn, "127.0.0.1", "/")
	d, _ := proxy.SOCKS5("tcp", c.SocksAddrs()[0], nil, proxy.Direct)
	open, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close() // still open when the client stops
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		s := string(buf[:runtime.Stack(buf, true)])
		var ours []string
		for _, g := range strings.Split(s, "\n\n") {
			if strings.Contains(g, "gotor/internal") || strings.Contains(g, "gotor/client") {
				ours = append(ours, g)
			}
		}
		t.Fatalf("%d goroutines before, %d after Stop; gotor's:\n%s", before, after, strings.Join(ours, "\n\n"))
	}
}
