package stream_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
)

// TestConcurrentCircuitsAndStreams builds circuits concurrently over
// shared channels and runs several downloads on each at once, then
// checks that closing everything leaves no goroutines behind.
func TestConcurrentCircuitsAndStreams(t *testing.T) {
	_, p, srv := setup(t)
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	mgr := channel.NewManager()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const circuits, streams = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, circuits*streams)
	for i := range circuits {
		wg.Go(func() {
			ex := p.Exits[i%len(p.Exits)]
			c, err := circuit.Build(ctx, mgr, []circuit.Target{p.Relays[i%len(p.Relays)], p.Relays[(i+1)%len(p.Relays)], ex})
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			var sw sync.WaitGroup
			for range streams {
				sw.Go(func() {
					resp, conn, err := httpGet(ctx, c, srv.Port, "/random")
					if err != nil {
						errs <- err
						return
					}
					defer conn.Close()
					h := sha256.New()
					// Read only part of some downloads, then close early:
					// exercises RELAY_END with data still in flight.
					if i%3 == 0 {
						_, err = io.CopyN(h, resp.Body, 1<<20)
						if err != nil {
							errs <- err
						}
						return
					}
					if _, err := io.Copy(h, resp.Body); err != nil {
						errs <- err
						return
					}
					if hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
						errs <- errors.New("sha256 mismatch")
					}
				})
			}
			sw.Wait()
			if c.Err() != nil {
				errs <- c.Err()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(mgr.Channels()); n > len(p.Relays) {
		t.Errorf("%d channels for %d guards", n, len(p.Relays))
	}
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
