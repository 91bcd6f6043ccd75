// tor-spec §2.1 / §5.3.1: a client reuses one open channel per relay
// identity for all its circuits through that relay.
package channel

import (
	"context"
	"encoding/base64"
	"net/netip"
	"sync"
)

func base64NoPad(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// Manager hands out channels, reusing an open channel to the same relay
// identity and coalescing concurrent dials.
type Manager struct {
	// DialFunc, if set, replaces Dial (for tests).
	DialFunc func(ctx context.Context, addr netip.AddrPort, want Identity) (*Channel, error)

	mu      sync.Mutex
	chans   map[[20]byte]*Channel
	pending map[[20]byte]*dialCall
	closed  bool
	pad     *padShared
}

type dialCall struct {
	done chan struct{}
	ch   *Channel
	err  error
}

// NewManager returns an empty manager.
func NewManager() *Manager {
	return &Manager{chans: map[[20]byte]*Channel{}, pending: map[[20]byte]*dialCall{}, pad: newPadShared()}
}

// SetPadding sets how channels opened from now on pad (padding.go;
// C tor's ConnectionPadding, ReducedConnectionPadding, KeepalivePeriod).
// The default is C tor's: ConnectionPadding auto, not reduced.
func (m *Manager) SetPadding(cfg PaddingConfig) { m.pad.cfg.Store(&cfg) }

// SetPaddingParams installs a new consensus's nf_* parameters
// (PaddingParamsFrom) for every channel, open or not.
func (m *Manager) SetPaddingParams(p PaddingParams) {
	m.pad.params.Store(&p)
	for _, ch := range m.Channels() {
		ch.pad.poke()
	}
}

// Get returns an open channel to the relay with identity want at addr,
// dialing one if needed. An existing channel is reused only if its
// authenticated identity matches want (including Ed25519 when given).
func (m *Manager) Get(ctx context.Context, addr netip.AddrPort, want Identity) (*Channel, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if ch, ok := m.chans[want.RSAID]; ok {
			select {
			case <-ch.Done():
				delete(m.chans, want.RSAID)
			default:
				if !want.HasEd25519 || ch.peer.Ed25519ID == want.Ed25519ID {
					if ch.reserve() {
						m.mu.Unlock()
						return ch, nil
					}
					delete(m.chans, want.RSAID) // closed as idle just now
				}
			}
		}
		if call, ok := m.pending[want.RSAID]; ok {
			m.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if call.err != nil {
				return nil, call.err
			}
			continue // re-check identity/ liveness
		}
		call := &dialCall{done: make(chan struct{})}
		m.pending[want.RSAID] = call
		m.mu.Unlock()

		dial := m.DialFunc
		if dial == nil {
			dial = Dial
		}
		call.ch, call.err = dial(ctx, addr, want)
		m.mu.Lock()
		delete(m.pending, want.RSAID)
		if call.err == nil {
			if m.closed {
				call.ch.Close()
				call.err = ErrClosed
			} else {
				m.chans[want.RSAID] = call.ch
			}
		}
		m.mu.Unlock()
		if call.err == nil {
			call.ch.startPadding(m.pad)
		}
		close(call.done)
		return call.ch, call.err
	}
}

// Channels returns the open channels.
func (m *Manager) Channels() []*Channel {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Channel
	for _, c := range m.chans {
		out = append(out, c)
	}
	return out
}

// Close closes every channel; later Gets fail.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	chans := m.chans
	m.chans = map[[20]byte]*Channel{}
	m.mu.Unlock()
	for _, c := range chans {
		c.Close()
	}
}
