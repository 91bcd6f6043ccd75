package client

// Hosting onion services from Go (rend-spec-v3): the service is
// reachable as a .onion address, its streams arrive through Accept.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"

	"github.com/gotor/gotor/internal/engine"
	"github.com/gotor/gotor/internal/onion/service"
)

// OnionConfig configures ListenOnion.
type OnionConfig struct {
	// Dir, if set, is a HiddenServiceDir in C tor's format: the key in
	// it is used (a new one is made and saved if there is none), the
	// hostname file written, authorized_clients/*.auth read. A C tor
	// service directory moves to gotor unchanged, and back.
	Dir string
	// Key is the service's ed25519 identity when Dir is empty; nil makes
	// a new one (a new address each time).
	Key ed25519.PrivateKey
	// Ports are the virtual ports; streams to any of them are returned
	// by Accept. At least one.
	Ports []uint16
	// ClientAuth are the x25519 public keys of the clients allowed to
	// connect (restricted discovery); none makes the service public.
	ClientAuth [][32]byte
	// NumIntroPoints is the number of introduction points (0: 3).
	NumIntroPoints int
	// WaitPublished makes ListenOnion return only once the descriptor
	// is on the HSDirs, so that clients can reach the service at once.
	WaitPublished bool
}

// OnionListener is a hosted onion service: a net.Listener whose Addr is
// the .onion address and whose Accept returns the streams of clients.
type OnionListener struct {
	s *engine.OnionService
}

// ListenOnion publishes an onion service and returns its listener;
// Close takes the service down. The client must be started.
func (c *Client) ListenOnion(ctx context.Context, cfg OnionConfig) (*OnionListener, error) {
	if len(cfg.Ports) == 0 {
		return nil, errors.New("client: ListenOnion needs at least one port")
	}
	scfg := service.Config{NumIntroPoints: cfg.NumIntroPoints, AuthorizedClients: cfg.ClientAuth}
	switch {
	case cfg.Dir != "":
		keys, err := service.LoadDir(cfg.Dir, false, nil, nil)
		if err != nil {
			return nil, err
		}
		scfg.Identity = keys.Identity
		scfg.AuthorizedClients = append(scfg.AuthorizedClients, keys.AuthorizedClients...)
	case cfg.Key != nil:
		id, err := service.GenerateIdentity(bytes.NewReader(cfg.Key.Seed()))
		if err != nil {
			return nil, err
		}
		scfg.Identity = id
	default:
		id, err := service.GenerateIdentity(nil)
		if err != nil {
			return nil, err
		}
		scfg.Identity = id
	}
	for _, p := range cfg.Ports {
		scfg.Ports = append(scfg.Ports, service.Port{Virtual: p})
	}
	s, err := c.e.ListenOnion(ctx, scfg)
	if err != nil {
		return nil, publicError(err, "")
	}
	if cfg.WaitPublished {
		if err := s.WaitPublished(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return &OnionListener{s: s}, nil
}

// Accept waits for the next stream from a client of the service.
func (l *OnionListener) Accept() (net.Conn, error) { return l.s.Accept() }

// Close unpublishes the service: its introduction points close, and no
// client can reach it any more. Accepted streams go on.
func (l *OnionListener) Close() error { return l.s.Close() }

// Addr is the service's address: Network "onion", String
// "<56 base32>.onion:0".
func (l *OnionListener) Addr() net.Addr { return l.s.Addr() }

// Hostname is the service's .onion name.
func (l *OnionListener) Hostname() string { return l.s.Hostname() }
