package engine

// Building exit circuits for the circuit manager: path-spec §2.2 (path
// selection through internal/path), guard-spec §4 (first hop from the
// guard manager, its outcome reported back), tor-spec §5 (CREATE2 then
// EXTEND2 through internal/circuit), each hop's handshake chosen by
// circuit.HopFor: ntor v3 (prop 332) with relays that list Relay=4, and
// congestion control (prop 324 §10.1) requested from the exit when the
// consensus's cc_alg and the exit's FlowCtrl=2 allow.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circmgr"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/congestion"
	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/stream"
)

// exitCircuit is a built 3-hop circuit as the circuit manager sees it.
type exitCircuit struct {
	*circuit.Circuit
	relays []*netdir.Relay
	guard  *guard.Attempt // path bias use counts (pathbias.go)
}

// AllowsPort implements circmgr.Circuit using the exit's policy summary.
func (e *exitCircuit) AllowsPort(port uint16) bool {
	exit := e.relays[len(e.relays)-1]
	return exit.ExitPolicy.Allows(port)
}

// Close implements circmgr.Circuit.
func (e *exitCircuit) Close() error { return e.Circuit.Close() }

// buildExitCircuit builds one circuit on a fresh path for u.
func (c *Engine) buildExitCircuit(ctx context.Context, u circmgr.Usage) (*exitCircuit, error) {
	if err := c.checkNetwork(); err != nil {
		return nil, err
	}
	// No new circuit on a consensus that is not reasonably live (dir-spec
	// §5.1: more than 24 h past valid-until); dirmgr keeps fetching.
	if err := c.dir.Usable(); err != nil {
		return nil, err
	}
	dir := c.dir.NetDir()
	// The exit first, then a guard compatible with it, then the middle
	// (path-spec §2.2; C tor picks the exit before the entry guard and
	// restricts the guard to relays other than the exit and its family).
	// Picking the guard first would keep the primary guard from ever
	// being this client's exit: with few exits the remaining ones, even
	// a dead one still listed, would be the only choice.
	var port *uint16
	if u.Port != 0 {
		p := u.Port
		port = &p
	}
	sel := c.selector()
	exit, err := sel.PickExit(dir, port)
	if err != nil {
		return nil, fmt.Errorf("pick path: %w", err)
	}
	g, att, err := c.guards.Pick(c.guardDir(dir), guard.Usage{Restrict: sel.CompatibleWith(exit)})
	if err != nil {
		return nil, fmt.Errorf("pick guard: %w", err)
	}
	mid, err := sel.PickMiddle(dir, g, exit)
	if err != nil {
		att.Close()
		return nil, fmt.Errorf("pick path: %w", err)
	}
	relays := []*netdir.Relay{g, mid, exit}
	cc := congestion.ParamsFrom(dir.Param, congestion.PathExit)
	rest := []circuit.Target{circuit.HopFor(mid, false, cc), circuit.HopFor(exit, true, cc)}
	circ, err := c.buildThrough(ctx, relays[0], att, rest, nil)
	if err != nil {
		return nil, err
	}
	if on, _ := circ.CongestionControl(); rest[1].Handshake == circuit.NtorV3CC && !on {
		c.log.Debug("exit did not accept congestion control: fixed windows", "exit", exit.Nickname)
	}
	return &exitCircuit{Circuit: circ, relays: relays, guard: att}, nil
}

// buildThrough builds a circuit whose first hop is the guard g (the
// outcome reported on att, guard-spec §4.7), extended to each of rest in
// turn; the last EXTEND2 sends lastSpecs verbatim when given (an
// introduction point's link specifiers). It returns once the guard
// manager says the circuit may be used (guard-spec §4.9).
func (c *Engine) buildThrough(ctx context.Context, g *netdir.Relay, att *guard.Attempt, rest []circuit.Target, lastSpecs []cell.LinkSpec) (*circuit.Circuit, error) {
	if err := c.checkNetwork(); err != nil { // DisableNetwork set meanwhile: not the guard's fault
		att.Close()
		return nil, err
	}
	first := circuit.HopFor(g, false, congestion.Params{})
	ch, err := c.chans.Get(ctx, first.Addr, first.Identity())
	if err != nil {
		att.Report(false)
		att.Close()
		return nil, fmt.Errorf("channel to guard %s: %w", g.Nickname, err)
	}
	circ, err := circuit.Create(ctx, ch, first)
	if err != nil {
		att.Report(false)
		att.Close()
		return nil, fmt.Errorf("CREATE2 to guard %s: %w", g.Nickname, err)
	}
	c.sendmeRules(circ)
	att.Report(true)
	circ.AfterClose(func() {
		att.CloseCircuit(closedByRelay(circ))
		c.logCircuitEnd(g, circ.Err())
	})
	pathBias := lastSpecs == nil // not an introduction circuit (pathbias.go)
	for i, t := range rest {
		if i == 0 && pathBias {
			if err := att.BuildAttempted(); err != nil {
				circ.Close()
				return nil, fmt.Errorf("guard %s: %w", g.Nickname, err)
			}
		}
		var err error
		if i == len(rest)-1 && lastSpecs != nil {
			err = circ.ExtendWithSpecs(ctx, t, lastSpecs)
		} else {
			err = circ.Extend(ctx, t)
		}
		if err != nil {
			if pathBias && errors.Is(err, context.DeadlineExceeded) {
				att.BuildTimedOut()
			}
			circ.Close()
			return nil, fmt.Errorf("EXTEND2 to hop %d ($%X): %w", i+2, t.RSAID, err)
		}
	}
	if pathBias {
		att.BuildSucceeded()
	}
	if ok, err := att.Usable(ctx); !ok || err != nil {
		circ.Close()
		if err == nil {
			err = fmt.Errorf("guard %s not usable yet", g.Nickname)
		}
		return nil, err
	}
	return circ, nil
}

// dirCircuits caches one-hop circuits for BEGIN_DIR requests.
type dirCircuits struct {
	mu    sync.Mutex
	circs map[[20]byte]*circuit.Circuit
}

// dirDial opens a directory connection to dir (dir-spec §4): a
// BEGIN_DIR stream on a one-hop circuit to its ORPort, as C tor clients
// do. The circuit uses ntor when the relay's onion key is known, else
// CREATE_FAST (tor-spec §5.1.5; the channel's TLS and certificate checks
// authenticate the relay). Plain HTTP to the DirPort is the last resort,
// for a directory without an ORPort.
//
// Once a consensus is known, requests go to a directory guard instead
// (guard-spec §4.6 "directory guards": one of the first primary guards),
// the relay the directory manager named being the fallback when the
// guards fail.
func (c *Engine) dirDial(ctx context.Context, dir *netdir.Relay) (net.Conn, error) {
	if err := c.checkNetwork(); err != nil {
		return nil, err
	}
	if c.br != nil {
		return c.bridgeDirDial(ctx) // bridges.go
	}
	if nd := c.dir.NetDir(); nd != nil && c.conf().UseEntryGuards {
		if g, att, err := c.guards.Pick(nd, guard.Usage{Dir: true}); err == nil {
			conn, err := c.dirStream(ctx, g)
			att.Report(err == nil)
			att.Close()
			if err == nil {
				return conn, nil
			}
			c.log.Debug("directory guard failed; asking the directory manager's choice", "guard", g.Nickname, "err", err)
		}
	}
	return c.dirStream(ctx, dir)
}

// dirStream opens a BEGIN_DIR stream to dir (see dirDial).
func (c *Engine) dirStream(ctx context.Context, dir *netdir.Relay) (net.Conn, error) {
	target, haveNtor := c.ntorTarget(dir)
	if !haveNtor {
		if dir.ORPort == 0 || !dir.Addr.IsValid() {
			if dir.DirPort == 0 {
				return nil, fmt.Errorf("directory %s: no ORPort and no DirPort", dir.Nickname)
			}
			return c.dialDirPort(ctx, netip.AddrPortFrom(dir.Addr, dir.DirPort))
		}
		target = circuit.Target{RSAID: dir.RSAID, Addr: dir.ORAddrPort()}
	}
	circ, err := c.dirCircuit(ctx, target, haveNtor)
	if err != nil {
		return nil, err
	}
	s, err := stream.BeginDir(ctx, circ)
	if err != nil {
		circ.Close()
		return nil, fmt.Errorf("BEGIN_DIR to %s: %w", dir.Nickname, err)
	}
	return s, nil
}

func (c *Engine) ntorTarget(dir *netdir.Relay) (circuit.Target, bool) {
	if dir.HasMicrodesc {
		return circuit.HopFor(dir, false, congestion.Params{}), true
	}
	nd := c.dir.NetDir()
	if nd == nil {
		return circuit.Target{}, false
	}
	r := nd.ByRSAID[dir.RSAID]
	if r == nil || !r.HasMicrodesc {
		return circuit.Target{}, false
	}
	return circuit.HopFor(r, false, congestion.Params{}), true
}

func (c *Engine) dirCircuit(ctx context.Context, t circuit.Target, ntor bool) (*circuit.Circuit, error) {
	c.dirCircs.mu.Lock()
	if c.dirCircs.circs == nil {
		c.dirCircs.circs = map[[20]byte]*circuit.Circuit{}
	}
	if circ := c.dirCircs.circs[t.RSAID]; circ != nil {
		select {
		case <-circ.Done():
		default:
			c.dirCircs.mu.Unlock()
			return circ, nil
		}
	}
	c.dirCircs.mu.Unlock()
	ch, err := c.chans.Get(ctx, t.Addr, t.Identity())
	if err != nil {
		return nil, fmt.Errorf("channel to directory: %w", err)
	}
	var circ *circuit.Circuit
	if ntor {
		circ, err = circuit.Create(ctx, ch, t)
	} else {
		circ, err = circuit.CreateFast(ctx, ch)
	}
	if err != nil {
		return nil, fmt.Errorf("one-hop directory circuit: %w", err)
	}
	c.sendmeRules(circ)
	c.dirCircs.mu.Lock()
	if old := c.dirCircs.circs[t.RSAID]; old != nil {
		old.Close()
	}
	c.dirCircs.circs[t.RSAID] = circ
	c.dirCircs.mu.Unlock()
	return circ, nil
}

// sendmeRules applies the consensus's sendme_accept_min_version
// (param-spec; prop 289): a circuit SENDME of a lower version closes the
// circuit.
func (c *Engine) sendmeRules(circ *circuit.Circuit) {
	if nd := c.dir.NetDir(); nd != nil {
		circ.SetSendmeAcceptMinVersion(int(nd.Param("sendme_accept_min_version", 0, 0, 255)))
	}
}

// logCircuitEnd logs why a circuit closed when a relay caused it: a
// protocol violation at info level (C tor's LOG_PROTOCOL_WARN default),
// DESTROY or TRUNCATED at debug. Local closes are not logged.
func (c *Engine) logCircuitEnd(g *netdir.Relay, err error) {
	var pe *circuit.ProtocolError
	var de *circuit.DestroyedError
	switch {
	case errors.As(err, &pe):
		c.log.Info("circuit closed: a relay violated the protocol", "guard", g.Nickname, "err", err)
	case errors.As(err, &de):
		c.log.Debug("circuit closed by the network", "guard", g.Nickname, "err", err)
	}
}
