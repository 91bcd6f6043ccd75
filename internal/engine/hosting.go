package engine

// Hosting onion services (rend-spec-v3 §2.2 publishing, §3.1
// introduction points, §4.2 rendezvous): internal/onion/service runs the
// protocol over the circuits built here, 4 hops each (C tor's
// route_len_for_purpose for service circuits). Services come from the
// torrc's HiddenServiceDir blocks (started with the engine) and from the
// Go API (ListenOnion).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/service"
)

// serviceNet is the engine as a service.Network.
type serviceNet struct{ c *Engine }

func (n serviceNet) NetDir() *netdir.NetDir { return n.c.dir.NetDir() }

// BuildCircuit builds guard, middles, then req.Last: the middles and the
// guard are kept apart from the last hop (family, /16) when it is listed.
func (n serviceNet) BuildCircuit(ctx context.Context, req service.CircuitRequest) (*circuit.Circuit, error) {
	c := n.c
	if err := c.dir.Usable(); err != nil {
		return nil, err
	}
	dir := c.dir.NetDir()
	sel := c.selector()
	hops := req.Hops
	if hops < 2 {
		hops = service.ServiceCircuitHops
	}
	var avoid []*netdir.Relay
	if req.Relay != nil {
		avoid = append(avoid, req.Relay)
	}
	g, att, err := c.guards.Pick(c.guardDir(dir), guard.Usage{Restrict: func(r *netdir.Relay) bool {
		for _, a := range avoid {
			if !sel.Compatible(r, a) {
				return false
			}
		}
		return true
	}})
	if err != nil {
		return nil, fmt.Errorf("pick guard: %w", err)
	}
	path := append([]*netdir.Relay{g}, avoid...)
	var rest []circuit.Target
	for i := 0; i < hops-2; i++ {
		mid, err := sel.PickMiddle(dir, path...)
		if err != nil {
			att.Close()
			return nil, fmt.Errorf("pick middle: %w", err)
		}
		path = append(path, mid)
		rest = append(rest, circuit.TargetFromRelay(mid))
	}
	return c.buildThrough(ctx, g, att, append(rest, req.Last), req.LinkSpecs)
}

// OnionService is a hosted onion service (a net.Listener for its ports
// without a target); Close takes it down and out of the engine.
type OnionService struct {
	*service.Service
	c *Engine
	// ephemeral marks a service of ADD_ONION (addonion.go), the only
	// kind DEL_ONION may remove. Under c.mu.
	ephemeral bool
}

// ErrOnionExists is ListenOnion's error for a key whose service runs
// already (C tor's RSAE_ADDREXISTS).
var ErrOnionExists = errors.New("an onion service with this key is running already")

// hosting returns the running service with address addr, or nil. Under c.mu.
func (c *Engine) hosting(addr string) *OnionService {
	for _, s := range c.services {
		if s.Hostname() == addr {
			return s
		}
	}
	return nil
}

// Close unpublishes the service: its introduction points and rendezvous
// circuits close, and it leaves the engine.
func (o *OnionService) Close() error {
	o.c.mu.Lock()
	for i, x := range o.c.services {
		if x == o {
			o.c.services = append(o.c.services[:i], o.c.services[i+1:]...)
			break
		}
	}
	o.c.mu.Unlock()
	return o.Service.Close()
}

// ListenOnion starts an onion service with cfg (its Identity required)
// and returns it once started; Stop closes it if Close did not. The
// service lives until then: ctx bounds the start only.
func (c *Engine) ListenOnion(ctx context.Context, cfg service.Config) (*OnionService, error) {
	c.mu.Lock()
	started, stopped, life := c.started, c.stopped, c.runCtx
	c.mu.Unlock()
	if !started || stopped {
		return nil, errNotStarted
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log
	}
	cfg.TestingNetwork = c.conf().TestingTorNetwork
	if cfg.OnEvent == nil && cfg.Identity != nil {
		cfg.OnEvent = c.serviceDescEvents(cfg.Identity.Address().Label())
	}
	if cfg.Identity != nil {
		c.mu.Lock()
		dup := c.hosting(cfg.Identity.Address().String()) != nil
		c.mu.Unlock()
		if dup {
			return nil, ErrOnionExists
		}
	}
	s, err := service.New(serviceNet{c}, cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.Start(life); err != nil {
		s.Close()
		return nil, err
	}
	o := &OnionService{Service: s, c: c}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		s.Close()
		return nil, errNotStarted
	}
	if c.hosting(s.Hostname()) != nil { // started meanwhile
		c.mu.Unlock()
		s.Close()
		return nil, ErrOnionExists
	}
	c.services = append(c.services, o)
	c.mu.Unlock()
	return o, nil
}

// startServices starts the torrc's onion services (HiddenServiceDir
// blocks); their keys are loaded, or made, in C tor's formats.
func (c *Engine) startServices(ctx context.Context) error {
	for _, hs := range c.conf().OnionServices {
		keys, err := service.LoadDir(hs.Dir, hs.DirGroupReadable, nil, c.log)
		if err != nil {
			return fmt.Errorf("HiddenServiceDir %s: %w", hs.Dir, err)
		}
		scfg := service.Config{
			Identity:               keys.Identity,
			AuthorizedClients:      keys.AuthorizedClients,
			NumIntroPoints:         hs.NumIntroPoints,
			MaxStreams:             hs.MaxStreams,
			MaxStreamsCloseCircuit: hs.MaxStreamsCloseCircuit,
			Logger:                 c.log.With(slog.String("service", hs.Dir)),
		}
		for _, p := range hs.Ports {
			scfg.Ports = append(scfg.Ports, service.Port{Virtual: p.Virtual, Target: p.Target})
		}
		if hs.IntroDoSDefense {
			scfg.IntroDoS = &hscell.DoSParams{RatePerSec: hs.IntroDoSRatePerSec, BurstPerSec: hs.IntroDoSBurstPerSec}
		}
		s, err := c.ListenOnion(ctx, scfg)
		if err != nil {
			return fmt.Errorf("HiddenServiceDir %s: %w", hs.Dir, err)
		}
		c.log.Info("onion service started", "dir", hs.Dir, "generated key", keys.Generated, "address", s.Hostname())
	}
	return nil
}

// closeServices closes every onion service (Stop).
func (c *Engine) closeServices() {
	c.mu.Lock()
	svcs := c.services
	c.services = nil
	c.mu.Unlock()
	var errs []error
	for _, s := range svcs {
		errs = append(errs, s.Service.Close())
	}
	if err := errors.Join(errs...); err != nil {
		c.log.Debug("closing onion services", "err", err)
	}
}
