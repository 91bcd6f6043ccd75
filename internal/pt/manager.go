// Transports by name: which ClientTransportPlugin line provides each, the
// managed processes started when a bridge first needs one of their
// transports (C tor launches only the proxies some Bridge line uses:
// pt_parse_transport_line's transport_is_needed), restarted after they
// died (managed_proxy_exit_callback, proxy_prepare_for_restart), and
// dialing a bridge through a transport's SOCKS listener (pt-spec §3.5).

package pt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/proxy"
)

// Restart backoff after a transport failed to start or died: the first
// restart is immediate, later ones wait restartMin, doubling up to
// restartMax, until a connection through the transport succeeds.
var (
	restartMin = time.Second
	restartMax = time.Minute
)

// ErrClosed is returned by a Manager after Close.
var ErrClosed = errors.New("pt: transport manager closed")

// UnknownTransportError is a transport no ClientTransportPlugin line
// provides.
type UnknownTransportError struct{ Transport string }

func (e *UnknownTransportError) Error() string {
	return "pt: no ClientTransportPlugin line provides transport " + e.Transport
}

// Manager runs the transports of a set of ClientTransportPlugin lines.
// Its methods are safe for concurrent use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	plugins []*plugin
	byName  map[string]*plugin

	mu     sync.Mutex
	closed bool
}

// plugin is one line and, for a managed one, its current process.
type plugin struct {
	Plugin
	mu        sync.Mutex
	proc      *Process
	starting  chan struct{} // closed when the start in progress ends
	startErr  error         // of the last start
	lastStart time.Time
	failures  int // consecutive failed starts or deaths
}

// NewManager returns a manager for the lines, in torrc order. When two
// lines provide the same transport the first one is used, and a warning
// is logged. Nothing is started yet.
func NewManager(plugins []Plugin, cfg Config) *Manager {
	m := &Manager{cfg: cfg, log: cfg.logger(), byName: map[string]*plugin{}}
	for _, p := range plugins {
		pl := &plugin{Plugin: p}
		m.plugins = append(m.plugins, pl)
		for _, t := range p.Transports {
			if prev, dup := m.byName[t]; dup {
				m.log.Warn("transport provided by two ClientTransportPlugin lines; using the first", "transport", t, "first", prev.String(), "ignored", p.String())
				continue
			}
			m.byName[t] = pl
		}
	}
	return m
}

// Has reports whether some line provides the transport.
func (m *Manager) Has(transport string) bool {
	_, ok := m.byName[transport]
	return ok
}

// Start starts, in parallel, the managed transports providing the named
// transports (those the configured bridges use), so that a missing or
// broken transport program is reported at start-up. It returns every
// failure joined.
func (m *Manager) Start(ctx context.Context, transports ...string) error {
	seen := map[*plugin]bool{}
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, t := range transports {
		pl, ok := m.byName[t]
		if !ok {
			errs = append(errs, &UnknownTransportError{Transport: t})
			continue
		}
		if seen[pl] || !pl.Managed() {
			continue
		}
		seen[pl] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.process(ctx, pl); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Method returns the SOCKS listener of a transport, starting (or
// restarting) its program if needed.
func (m *Manager) Method(ctx context.Context, transport string) (Method, error) {
	pl, ok := m.byName[transport]
	if !ok {
		return Method{}, &UnknownTransportError{Transport: transport}
	}
	if !pl.Managed() {
		return Method{Transport: transport, Protocol: pl.Protocol, Addr: pl.Addr}, nil
	}
	pr, err := m.process(ctx, pl)
	if err != nil {
		return Method{}, err
	}
	return pr.Method(transport)
}

// Dial connects to addr (a bridge's ADDR:PORT) through the transport,
// passing the bridge's arguments (pt-spec §3.5).
func (m *Manager) Dial(ctx context.Context, transport, addr string, args Args) (net.Conn, error) {
	meth, err := m.Method(ctx, transport)
	if err != nil {
		return nil, err
	}
	conn, err := meth.Dial(ctx, addr, args)
	if err == nil {
		if pl := m.byName[transport]; pl.Managed() {
			pl.mu.Lock()
			pl.failures = 0
			pl.mu.Unlock()
		}
	}
	return conn, err
}

// process returns the running process of a managed line, starting it
// when there is none (one start at a time; concurrent callers wait for
// it).
func (m *Manager) process(ctx context.Context, pl *plugin) (*Process, error) {
	for {
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		pl.mu.Lock()
		if pl.proc != nil {
			select {
			case <-pl.proc.Done():
				pl.proc = nil
				pl.failures++
			default:
				pr := pl.proc
				pl.mu.Unlock()
				return pr, nil
			}
		}
		if ch := pl.starting; ch != nil {
			pl.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			pl.mu.Lock()
			pr, err := pl.proc, pl.startErr
			pl.mu.Unlock()
			if pr != nil {
				return pr, nil
			}
			if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				continue // that caller gave up; try with our own context
			}
			return nil, err
		}
		wait := time.Duration(0)
		if pl.failures > 1 {
			wait = restartMin << min(pl.failures-2, 16)
			wait = min(wait, restartMax) - time.Since(pl.lastStart)
		}
		ch := make(chan struct{})
		pl.starting = ch
		pl.mu.Unlock()

		if wait > 0 {
			m.log.Debug("managed transport failed recently; waiting before restarting it", "transport", pl.Transports, "wait", wait.Round(time.Millisecond))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				pl.mu.Lock()
				pl.starting = nil
				pl.mu.Unlock()
				close(ch)
				return nil, fmt.Errorf("pt: waiting to restart transport %v: %w", pl.Transports, ctx.Err())
			}
		}
		pr, err := Start(ctx, pl.Plugin, m.cfg)
		pl.mu.Lock()
		pl.lastStart = time.Now()
		pl.starting = nil
		pl.startErr = err
		if err != nil {
			pl.failures++
		}
		pl.proc = pr
		m.mu.Lock()
		lateClose := m.closed && pr != nil
		m.mu.Unlock()
		pl.mu.Unlock()
		close(ch)
		if lateClose {
			pr.Close()
			return nil, ErrClosed
		}
		return pr, err
	}
}

// Processes returns the running managed transport processes.
func (m *Manager) Processes() []*Process {
	var out []*Process
	for _, pl := range m.plugins {
		pl.mu.Lock()
		if pl.proc != nil {
			out = append(out, pl.proc)
		}
		pl.mu.Unlock()
	}
	return out
}

// Close stops every managed transport (Process.Close, in parallel) and
// makes later calls fail with ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, pr := range m.Processes() {
		wg.Add(1)
		go func() { defer wg.Done(); pr.Close() }()
	}
	wg.Wait()
	return nil
}

// Dial connects to addr (a bridge's ADDR:PORT) through the listener,
// passing args in the SOCKS handshake (pt-spec §3.5): the USERID of
// SOCKS4, the username and password of SOCKS5 (Args.SOCKS5Auth).
func (meth Method) Dial(ctx context.Context, addr string, args Args) (net.Conn, error) {
	var (
		conn net.Conn
		err  error
	)
	switch meth.Protocol {
	case "socks5":
		user, pass, aerr := args.SOCKS5Auth()
		if aerr != nil {
			return nil, aerr
		}
		p := &proxy.SOCKS5{Addr: meth.Addr, Username: user, Password: pass}
		conn, err = p.DialContext(ctx, "tcp", addr)
	case "socks4":
		p := &proxy.SOCKS4{Addr: meth.Addr, UserID: args.Encode()}
		conn, err = p.DialContext(ctx, "tcp", addr)
	default:
		return nil, fmt.Errorf("pt: transport %s: unknown protocol %q", meth.Transport, meth.Protocol)
	}
	if err != nil {
		var pe *proxy.Error
		switch {
		case errors.As(err, &pe) && pe.Code != 0:
			return nil, fmt.Errorf("pt: transport %s could not reach the bridge (a wrong bridge argument, such as obfs4's cert, looks like this too): %w", meth.Transport, err)
		case errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("pt: transport %s did not reach the bridge in time (a wrong bridge argument, such as obfs4's cert, looks like this too: an obfs4 bridge stays silent): %w", meth.Transport, err)
		}
		return nil, fmt.Errorf("pt: transport %s: %w", meth.Transport, err)
	}
	return conn, nil
}
