package service

// Rendezvous: rend-spec-v3 §4.2 [JOIN_REND] (a circuit to the client's
// rendezvous point, built from the link specifiers and onion key of its
// INTRODUCE2, then RENDEZVOUS1 with the cookie and HANDSHAKE_INFO) and
// §4.2.1 (the virtual hop: the service's side uses Kb/Db forward and
// Kf/Df backward). C tor tries a failed rendezvous circuit again once
// (hs_circ_retry_service_rendezvous_point); so do we.

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
)

const rendAttempts = 2

// rendCirc is a joined rendezvous circuit.
type rendCirc struct {
	c      circ
	active atomic.Int32 // open streams (HiddenServiceMaxStreams)
}

// rendezvous meets the client of req and serves its streams until the
// circuit closes. release is called once the join is done or failed, to
// free the pending-rendezvous slot.
func (s *Service) rendezvous(ctx context.Context, req *introRequest, release func()) {
	var err error
	for range rendAttempts {
		var rc *rendCirc
		if rc, err = s.join(ctx, req); err == nil {
			release()
			s.stats.rendSucceeded.Add(1)
			select {
			case <-rc.c.done():
			case <-ctx.Done():
			}
			rc.c.close()
			s.mu.Lock()
			delete(s.rends, rc)
			s.mu.Unlock()
			return
		}
		if ctx.Err() != nil {
			break
		}
	}
	release()
	s.stats.rendFailed.Add(1)
	s.log.Debug("onion service: rendezvous failed", "err", err)
}

func (s *Service) join(ctx context.Context, req *introRequest) (*rendCirc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RendTimeout)
	defer cancel()
	sum := req.summary
	last := circuit.Target{RSAID: sum.RSAID, Ed25519ID: sum.Ed25519, HasEd25519: sum.HasEd, Addr: sum.IPv4, NtorKey: req.plain.OnionKey}
	specs := make([]cell.LinkSpec, len(req.plain.LinkSpecs))
	for i, l := range req.plain.LinkSpecs {
		specs[i] = cell.LinkSpec{Type: l.Type, Data: l.Data}
	}
	creq := CircuitRequest{Purpose: PurposeRend, Hops: ServiceCircuitHops, Last: last, LinkSpecs: specs}
	if dir := s.net.NetDir(); dir != nil {
		creq.Relay = relayByID(dir, sum.RSAID)
	}
	c, err := s.build(ctx, creq)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	rc := &rendCirc{c: c}
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		c.close()
		return nil, ctx.Err()
	}
	s.rends[rc] = struct{}{}
	s.mu.Unlock()
	body := hscell.Rendezvous1(req.plain.RendezvousCookie, req.hsinfo)
	if err := c.join(ctx, body, hscrypto.ExpandRendKeys(req.seed[:]), func(sr streamRequest) { s.onStream(rc, sr) }); err != nil {
		c.close()
		s.mu.Lock()
		delete(s.rends, rc)
		s.mu.Unlock()
		return nil, fmt.Errorf("RENDEZVOUS1: %w", err)
	}
	return rc, nil
}
