package client_test

// "Like C tor, gotor keeps retrying its bootstrap while the network is
// unreachable" (README): a client whose every authority is unreachable at
// start-up (testnet gates: each connection reset, as a machine without
// network sees it) keeps trying with backoff (the engine's bootstrapDir),
// and bootstraps once the authorities can be reached.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/internal/itest"
)

// countingHandler counts log records whose message starts with prefix
// (and drops every record).
type countingHandler struct {
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

func TestBootstrapRetriesWhileUnreachable(t *testing.T) {
	_, n, srv := shared(t)
	lines, gates, err := n.GatedDirAuthorityLines()
	if err != nil {
		t.Fatal(err)
	}
	defer gates.Close()
	cfg := testConfig(t, n)
	cfg.SocksPorts = cfg.SocksPorts[:1]
	cfg.DirAuthorities = lines

	var failures atomic.Int64
	c, err := client.New(cfg, slog.New(countingHandler{prefix: "directory bootstrap failed; retrying", n: &failures}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- c.Start(ctx) }()

	// Unreachable: Start keeps going through failed attempts.
	for failures.Load() < 3 {
		select {
		case err := <-started:
			t.Fatalf("Start returned while every authority was unreachable (after %d failed attempts): %v", failures.Load(), err)
		case <-ctx.Done():
			t.Fatalf("only %d failed bootstrap attempts", failures.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if got := c.Bootstrap(); got.Percent >= 100 {
		t.Fatalf("bootstrapped to %d%% with every authority unreachable", got.Percent)
	}
	refused := gates.Refused()
	if refused == 0 {
		t.Fatal("no connection reached the gates")
	}
	t.Logf("%d failed bootstrap attempts, %d connections reset", failures.Load(), refused)

	// Reachable again: the next attempt bootstraps.
	gates.Open()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("Start after the authorities came back: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("not bootstrapped after the authorities came back (%d failed attempts)", failures.Load())
	}
	if got := c.Bootstrap(); got.Percent != 100 {
		t.Fatalf("Start returned at %d%%", got.Percent)
	}
	conn, err := itest.SOCKSDial(ctx, c.SocksAddrs()[0], fmt.Sprintf("127.0.0.1:%d", srv.Port), "")
	if err != nil {
		t.Fatal(err)
	}
	if body := httpGet(t, conn, "127.0.0.1", "/"); len(body) == 0 {
		t.Fatal("empty answer")
	}
	t.Logf("bootstrapped after %d failed attempts; a stream works", failures.Load())
}
