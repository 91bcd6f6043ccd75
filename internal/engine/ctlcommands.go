package engine

// The control port's commands on streams, circuits, guards and onion
// descriptors (control-spec §3.11 SETCIRCUITPURPOSE, §3.16 CLOSESTREAM,
// §3.17 CLOSECIRCUIT, §3.20 RESOLVE, §3.25 DROPGUARDS, §3.26 HSFETCH,
// §3.34 DROPTIMEOUTS), carried out on the engine, with the events they
// produce (§4.1.7 ADDRMAP, §4.1.16 BUILDTIMEOUT_SET, §4.1.25 HS_DESC,
// §4.1.26 HS_DESC_CONTENT).

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/circmgr"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion"
)

// background runs the control port's asynchronous work (RESOLVE,
// HSFETCH) until Stop.
type background struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   bool
}

// goBackground runs f in a goroutine that Stop cancels and waits for; it
// reports false after Stop.
func (c *Engine) goBackground(f func(ctx context.Context)) bool {
	bg := &c.bg
	bg.mu.Lock()
	defer bg.mu.Unlock()
	if bg.done {
		return false
	}
	if bg.ctx == nil {
		bg.ctx, bg.cancel = context.WithCancel(context.Background())
	}
	bg.wg.Add(1)
	go func() {
		defer bg.wg.Done()
		f(bg.ctx)
	}()
	return true
}

// stopBackground cancels the background work and waits for it.
func (c *Engine) stopBackground() {
	bg := &c.bg
	bg.mu.Lock()
	bg.done = true
	if bg.cancel != nil {
		bg.cancel()
	}
	bg.mu.Unlock()
	bg.wg.Wait()
}

// controlListener is the isolation listener of the control port's own
// streams (RESOLVE), apart from every SOCKS port and the Go API.
const controlListener = math.MaxUint32

// resolveTTL is the expiry reported for RESOLVE answers: the exit's TTL
// is not kept, and C tor clips TTLs to at least 5 minutes.
const resolveTTL = 5 * time.Minute

// Resolve is RESOLVE: each name (or, reverse, address) is looked up at an
// exit in the background and answered with an ADDRMAP event, C tor's
// "<error>" with error=yes when the lookup fails and "internal" when it
// cannot start.
func (b controlBackend) Resolve(names []string, reverse bool) error {
	c := b.c
	for _, name := range names {
		name := name
		started := c.circMgr() != nil && c.goBackground(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, c.conf().SocksTimeout)
			defer cancel()
			r := streamRequest{host: name, info: isolation.StreamInfo{DestAddr: name, Listener: controlListener,
				SessionGroup: isolation.SessionGroupUnset}, flags: isolation.Default}
			ans, err := c.resolve(ctx, r, reverse)
			ev := &control.AddrMapEvent{From: name, Expires: time.Now().Add(resolveTTL)}
			switch {
			case err != nil:
				ev.To, ev.Error, ev.Expires = "<error>", "error=yes", time.Now()
			case reverse && ans.Name != "":
				ev.To = ans.Name
			case !reverse && len(ans.Addrs) > 0:
				ev.To = ans.Addrs[0].String()
			default:
				ev.To, ev.Error, ev.Expires = "<error>", "error=yes", time.Now()
			}
			c.obs.publish(control.Event{Type: control.EventAddrMap, AddrMap: ev})
		})
		if !started {
			c.obs.publish(control.Event{Type: control.EventAddrMap, AddrMap: &control.AddrMapEvent{
				From: name, To: name, Expires: time.Now(), Error: "internal"}})
		}
	}
	return nil
}

// CloseStream is CLOSESTREAM: the stream ends (its application sees the
// connection close).
func (b controlBackend) CloseStream(id uint64, reason byte) error {
	tc, ok := b.c.streams.conn(id)
	if !ok {
		return control.ErrUnknownKey
	}
	b.c.log.Info("control: closing a stream", "stream", id, "reason", reason)
	return tc.Close()
}

// CloseCircuit is CLOSECIRCUIT; with ifUnused a circuit carrying streams
// stays open.
func (b controlBackend) CloseCircuit(id uint64, ifUnused bool) error {
	circs := b.c.circMgr()
	if circs == nil {
		return control.ErrUnknownKey
	}
	ec, ok := circs.Lookup(id)
	if !ok {
		return control.ErrUnknownKey
	}
	if ifUnused {
		for _, in := range circs.Circuits() {
			if in.ID == id && (len(in.Streams) > 0 || in.Untracked > 0) {
				return nil
			}
		}
	}
	b.c.obs.requestedClose(id)
	return ec.Close()
}

// SetCircuitPurpose is SETCIRCUITPURPOSE (GENERAL or CONTROLLER).
func (b controlBackend) SetCircuitPurpose(id uint64, purpose string) error {
	circs := b.c.circMgr()
	if circs == nil {
		return control.ErrUnknownKey
	}
	err := circs.SetPurpose(id, purpose)
	if errors.Is(err, circmgr.ErrUnknownCircuit) {
		return control.ErrUnknownKey
	}
	return err
}

// DropGuards is DROPGUARDS.
func (b controlBackend) DropGuards() error {
	b.c.guards.DropGuards()
	return nil
}

// DropTimeouts is DROPTIMEOUTS: the learned build times are forgotten
// (buildtimes.go); the BUILDTIMEOUT_SET RESET event reports the
// timeouts then in force, as C tor's after a reset.
func (b controlBackend) DropTimeouts() error {
	t, cl := b.c.cbt.reset()
	b.c.obs.publish(control.Event{Type: control.EventBuildTimeout, Message: fmt.Sprintf(
		"RESET TOTAL_TIMES=0 TIMEOUT_MS=%d XM=0 ALPHA=0.000000 CUTOFF_QUANTILE=0.800000 TIMEOUT_RATE=0.000000 CLOSE_MS=%d CLOSE_RATE=0.000000",
		t.Milliseconds(), cl.Milliseconds())})
	return nil
}

// HSFetch is HSFETCH: the descriptor is fetched in the background, each
// HSDir request reported as HS_DESC events, the outcome as
// HS_DESC_CONTENT.
func (b controlBackend) HSFetch(addr string, servers []string) error {
	c := b.c
	var hsdirs []*netdir.Relay
	if dir := c.dir.NetDir(); dir != nil {
		for _, fp := range servers {
			raw, _ := hex.DecodeString(fp)
			var id [20]byte
			copy(id[:], raw)
			if r := dir.ByRSAID[id]; r != nil {
				hsdirs = append(hsdirs, r)
			} else {
				return control.ErrUnknownKey
			}
		}
	}
	oc := c.onionClient()
	failed := func(reason string) {
		c.obs.publish(control.Event{Type: control.EventHSDesc, HSDesc: &control.HSDescEvent{Action: "FAILED", Address: addr, Reason: reason}})
		c.obs.publish(control.Event{Type: control.EventHSDescContent, HSDescContent: &control.HSDescContentEvent{}})
	}
	if oc == nil {
		failed("QUERY_NO_HSDIR")
		return nil
	}
	if !c.goBackground(func(ctx context.Context) {
		err := oc.Refetch(ctx, addr+".onion", hsdirs, func(r onion.FetchReport) { c.hsDescEvents(addr, r) })
		if err != nil {
			c.log.Info("control: HSFETCH found no descriptor", "err", err)
		}
	}) {
		failed("UNEXPECTED")
	}
	return nil
}

// hsDescEvents turns one step of a descriptor fetch into HS_DESC (and
// HS_DESC_CONTENT) events.
func (c *Engine) hsDescEvents(addr string, r onion.FetchReport) {
	ev := &control.HSDescEvent{Address: addr, DescID: base64.RawStdEncoding.EncodeToString(r.Blinded[:])}
	if r.HSDir != nil {
		ev.HSDir = hops([]*netdir.Relay{r.HSDir})[0]
	}
	if r.Blinded == ([32]byte{}) {
		ev.DescID = ""
	}
	content := &control.HSDescContentEvent{DescID: ev.DescID, HSDir: ev.HSDir}
	switch r.Stage {
	case onion.FetchRequested:
		ev.Action = "REQUESTED"
		content = nil
	case onion.FetchReceived:
		ev.Action = "RECEIVED"
		content.Address, content.Descriptor = addr, strings.TrimRight(string(r.Doc), "\n")
	case onion.FetchFailed:
		ev.Action = "FAILED"
		switch {
		case r.HSDir == nil:
			ev.Reason = "QUERY_NO_HSDIR"
		case r.NotFound:
			ev.Reason = "NOT_FOUND"
		case r.Invalid:
			ev.Reason = "BAD_DESC"
		default:
			ev.Reason = "UNEXPECTED"
		}
	}
	c.obs.publish(control.Event{Type: control.EventHSDesc, HSDesc: ev})
	if content != nil {
		c.obs.publish(control.Event{Type: control.EventHSDescContent, HSDescContent: content})
	}
}

// onionClient returns the onion client, nil before Start made it.
func (c *Engine) onionClient() *onion.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.onion
}
