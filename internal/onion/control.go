// What a controller asks of the onion client (control-spec §3.26
// HSFETCH, §3.30-3.32 ONION_CLIENT_AUTH_*; C tor's
// hs_client_launch_v3_desc_fetch and hs_client_remove_auth_credentials):
// a descriptor fetch that ignores the cache and reports each HSDir
// request, and client authorization keys removed and listed at run time.

package onion

import (
	"context"
	"errors"
	mrand "math/rand/v2"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
)

// FetchStage says how far one HSDir request of Refetch got.
type FetchStage int

const (
	FetchRequested FetchStage = iota + 1 // the request is being sent
	FetchReceived                        // a descriptor came back (it may need client authorization)
	FetchFailed                          // no usable descriptor from this HSDir
)

// FetchReport is one step of Refetch for one HSDir.
type FetchReport struct {
	Stage   FetchStage
	HSDir   *netdir.Relay // nil: no HSDir could be chosen
	Blinded [32]byte
	// Doc is the descriptor's text (FetchReceived).
	Doc []byte
	// Err is why the request failed (FetchFailed); NotFound and Invalid
	// classify it: the HSDir had no such descriptor, or it did not
	// decode.
	Err               error
	NotFound, Invalid bool
}

// Refetch fetches host's descriptor for the current time period whatever
// the cache holds: from each of servers, or when there are none from its
// responsible HSDirs in random order until one returns a descriptor that
// decodes. report is called when each request starts and ends. A
// descriptor that decodes replaces the cached one.
func (c *Client) Refetch(ctx context.Context, host string, servers []*netdir.Relay, report func(FetchReport)) error {
	addr, err := ParseAddress(host)
	if err != nil {
		return err
	}
	dir := c.cfg.NetDir()
	if dir == nil {
		report(FetchReport{Stage: FetchFailed, Err: errors.New("no consensus")})
		return &Error{Kind: KindDescNotFound, Addr: host, Err: errors.New("no consensus")}
	}
	blinded, subcred, params, err := c.keysFor(dir, addr)
	if err != nil {
		return &Error{Kind: KindBadAddress, Addr: host, Err: err}
	}
	hsdirs, all := servers, len(servers) > 0
	if !all {
		hsdirs = c.ringFor(dir, params).Responsible(blinded)
		mrand.Shuffle(len(hsdirs), func(i, j int) { hsdirs[i], hsdirs[j] = hsdirs[j], hsdirs[i] })
		if len(hsdirs) > c.cfg.MaxHSDirAttempts {
			hsdirs = hsdirs[:c.cfg.MaxHSDirAttempts]
		}
	}
	if len(hsdirs) == 0 {
		err := errors.New("no HSDirs in consensus")
		report(FetchReport{Stage: FetchFailed, Blinded: blinded, Err: err})
		return &Error{Kind: KindDescNotFound, Addr: host, Err: err}
	}
	clientSK, _ := c.cfg.ClientAuth.Key(addr)
	var lastErr error
	for _, hd := range hsdirs {
		report(FetchReport{Stage: FetchRequested, HSDir: hd, Blinded: blinded})
		doc, err := c.fetchFrom(ctx, hd, blinded)
		if err != nil {
			lastErr = err
			report(FetchReport{Stage: FetchFailed, HSDir: hd, Blinded: blinded, Err: err, NotFound: errors.Is(err, errNotFound)})
			if ctx.Err() != nil {
				break
			}
			continue
		}
		d, err := hsdesc.Decode(doc, blinded, subcred, clientSK, c.cfg.Now())
		if err != nil && !errors.Is(err, hsdesc.ErrClientAuthRequired) && !errors.Is(err, hsdesc.ErrClientAuthBad) {
			lastErr = err
			report(FetchReport{Stage: FetchFailed, HSDir: hd, Blinded: blinded, Err: err, Invalid: true})
			continue
		}
		// C tor reports a descriptor it cannot decrypt for want of client
		// authorization as received too.
		report(FetchReport{Stage: FetchReceived, HSDir: hd, Blinded: blinded, Doc: doc})
		switch {
		case errors.Is(err, hsdesc.ErrClientAuthRequired):
			lastErr = &Error{Kind: KindClientAuthMissing, Addr: host, Err: err}
		case errors.Is(err, hsdesc.ErrClientAuthBad):
			lastErr = &Error{Kind: KindClientAuthBad, Addr: host, Err: err}
		default:
			c.mu.Lock()
			c.cache[blinded] = &cacheEntry{desc: d, subcred: subcred, expires: d.Outer.Expires(c.cfg.Now())}
			c.mu.Unlock()
			lastErr = nil
		}
		if !all {
			return lastErr // every HSDir serves the same descriptor
		}
	}
	var oe *Error
	if errors.As(lastErr, &oe) {
		return lastErr
	}
	if lastErr == nil {
		return nil
	}
	return &Error{Kind: KindDescNotFound, Addr: host, Err: lastErr}
}

// Forget drops host's cached descriptor (C tor drops it when its client
// authorization is removed).
func (c *Client) Forget(host string) {
	addr, err := ParseAddress(host)
	if err != nil {
		return
	}
	dir := c.cfg.NetDir()
	if dir == nil {
		return
	}
	if blinded, _, _, err := c.keysFor(dir, addr); err == nil {
		c.mu.Lock()
		delete(c.cache, blinded)
		c.mu.Unlock()
	}
}

// Remove forgets addr's key; it reports whether there was one.
func (a *ClientAuth) Remove(addr hscrypto.Address) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.keys[addr.PubKey]
	delete(a.keys, addr.PubKey)
	return ok
}

// Keys returns every service's public key with the client's key for it.
func (a *ClientAuth) Keys() map[[32]byte][32]byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make(map[[32]byte][32]byte, len(a.keys))
	for k, v := range a.keys {
		out[k] = v
	}
	return out
}
