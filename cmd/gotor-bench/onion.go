package main

// Cold v3 onion-service connections (rend-spec-v3): for each repetition a
// fresh C tor onion service on the private network, so neither client has
// its descriptor or a rendezvous circuit; both clients then fetch 50 KiB
// from it, alternately first. Time to first byte counts from the SOCKS
// request of the attempt that succeeded (an attempt made before the
// service's descriptor reached the HSDirs fails at once and is retried).

import (
	"context"
	"fmt"
	"time"
)

func (b *bench) onionCold(ctx context.Context) error {
	reps := 3
	if b.o.quick {
		reps = 1
	}
	for i := 0; i < reps; i++ {
		svc, err := b.l.net.StartOnionService(ctx, b.srv.port)
		if err != nil {
			return err
		}
		// Give the service time to build its intro circuits and upload
		// its descriptor, so both clients find it on their first try.
		select {
		case <-time.After(15 * time.Second):
		case <-ctx.Done():
			svc.Stop()
			return ctx.Err()
		}
		for _, k := range order(i) {
			var t transfer
			var err error
			for try := 0; try < 15; try++ {
				tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
				t, err = downloadPort(tctx, b.cl[k].socks, svc.Hostname, 80, 50<<10)
				cancel()
				if err == nil {
					break
				}
				time.Sleep(2 * time.Second)
			}
			if err != nil {
				svc.Stop()
				return fmt.Errorf("%v: cold .onion fetch: %w", k, err)
			}
			b.r.onion[k] = append(b.r.onion[k], t.ttfb)
			progress("  %v: cold .onion 50 KiB, first byte after %v (rep %d/%d)", k, t.ttfb.Round(time.Millisecond), i+1, reps)
		}
		svc.Stop()
	}
	return nil
}

// downloadPort is download to a given host and port.
func downloadPort(ctx context.Context, socksAddr, host string, port int, size int64) (transfer, error) {
	return download(ctx, socksAddr, host, port, size, "")
}
