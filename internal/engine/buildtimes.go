package engine

// The learned circuit build timeout (path-spec §2.4): one cbt.Estimator
// per engine, fed by the exit-circuit builds of the circuit pool, its
// parameters taken from each new consensus (§2.4.6) and from the
// CircuitBuildTimeout and LearnCircuitBuildTimeout options, its history
// kept in DataDirectory/cbt_state in C tor's state file format (a file
// of its own: the guard manager rewrites "state" whole).
//
// Unlike C tor, a build is given up at Timeout rather than kept going
// as a measurement circuit until CloseTimeout; it is recorded as
// abandoned (a build time censored at the largest one seen, which the
// Pareto fit of §2.4.3 allows for). The network counts as live (§2.4.5)
// when a build succeeded since the given-up one started: gotor has no
// per-cell hook to call NetworkLive from.

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/cbt"
	"github.com/gotor/gotor/internal/netdir"
)

// cbtStateFile is the history's file name inside DataDirectory.
const cbtStateFile = "cbt_state"

// buildTimes guards the Estimator, which is not safe for concurrent use.
type buildTimes struct {
	mu   sync.Mutex
	est  *cbt.Estimator
	p    cbt.Params
	path string // "" when there is no DataDirectory
	log  *slog.Logger
}

// noParams is a ParamFunc for before the first consensus: every
// parameter at its default.
func noParams(_ string, def, _, _ int32) int32 { return def }

// cbtParams combines the consensus parameters with the options: with
// learning, CircuitBuildTimeout replaces cbtinitialtimeout only when
// set to other than its default (C tor's default is unset).
func cbtParams(get cbt.ParamFunc, cfg *config.Config) cbt.Params {
	fixed := cfg.CircuitBuildTimeout
	if cfg.LearnCircuitBuildTimeout && fixed == config.DefaultCircuitBuildTimeout {
		fixed = 0
	}
	return cbt.ParamsFrom(get, cfg.LearnCircuitBuildTimeout, fixed)
}

// newBuildTimes loads the history from dataDir, if there is one; a
// missing or corrupt file starts afresh, as C tor does.
func newBuildTimes(cfg *config.Config, log *slog.Logger) *buildTimes {
	b := &buildTimes{p: cbtParams(noParams, cfg), log: log}
	if cfg.DataDirectory != "" {
		b.path = filepath.Join(cfg.DataDirectory, cbtStateFile)
	}
	b.est = cbt.New(b.p)
	if b.path == "" {
		return b
	}
	raw, err := os.ReadFile(b.path)
	if errors.Is(err, os.ErrNotExist) {
		return b
	}
	if err == nil && len(raw) > 1<<20 {
		err = errors.New("larger than 1 MiB")
	}
	var st cbt.State
	if err == nil {
		st, err = cbt.ParseState(strings.Split(string(raw), "\n"))
	}
	var e *cbt.Estimator
	if err == nil {
		e, err = cbt.Load(b.p, st, nil)
	}
	if err != nil {
		log.Warn("circuit build times: ignoring the state file", "file", cbtStateFile, "err", err)
		return b
	}
	b.est = e
	return b
}

// setParams applies new parameters (a new consensus or a SETCONF),
// keeping the history.
func (b *buildTimes) setParams(get cbt.ParamFunc, cfg *config.Config) {
	p := cbtParams(get, cfg)
	b.mu.Lock()
	defer b.mu.Unlock()
	if p == b.p {
		return
	}
	e, err := cbt.Load(p, b.est.State(), nil)
	if err != nil {
		e = cbt.New(p)
	}
	b.p, b.est = p, e
}

// timeout is the build timeout for the next attempt.
func (b *buildTimes) timeout() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.est.Timeout()
}

// record notes one exit-circuit build attempt that started took ago
// (circmgr.Config.OnBuild). Failures other than the timeout say nothing
// about build times.
func (b *buildTimes) record(took time.Duration, err error) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil:
		b.est.NetworkLive(now)
		b.est.Built(took)
	case errors.Is(err, context.DeadlineExceeded):
		b.est.TimedOut(true) // the builder does not say how far it got
		b.est.Abandoned(true, now.Add(-took))
	}
}

// reset forgets the history (DROPTIMEOUTS) and returns the timeouts.
func (b *buildTimes) reset() (timeout, closeTimeout time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.est = cbt.New(b.p)
	return b.est.Timeout(), b.est.CloseTimeout()
}

// save writes the history to the state file.
func (b *buildTimes) save() {
	if b.path == "" {
		return
	}
	b.mu.Lock()
	lines := b.est.State().Lines()
	b.mu.Unlock()
	data := "# gotor circuit build times (path-spec §2.4.2)\n" + strings.Join(lines, "\n") + "\n"
	tmp := b.path + ".tmp"
	err := os.WriteFile(tmp, []byte(data), 0o600)
	if err == nil {
		err = os.Rename(tmp, b.path)
	}
	if err != nil {
		b.log.Warn("circuit build times: writing the state file", "file", cbtStateFile, "err", err)
	}
}

// noteBuildTimeParams gives the estimator the parameters of nd (nil:
// the defaults) and cfg.
func (c *Engine) noteBuildTimeParams(nd *netdir.NetDir, cfg *config.Config) {
	get := noParams
	if nd != nil {
		get = nd.Param
	}
	c.cbt.setParams(get, cfg)
}
