// Descriptor fetch (rend-spec-v3 §2.2.4.1 [CLIENTFETCH], §2.2.6): the
// blinded key and subcredential of the current time period, the
// responsible HSDirs of the hash ring, BEGIN_DIR GETs of
// /tor/hs/3/<blinded key>, and the cache of decrypted descriptors.

package onion

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"

	"github.com/gotor/gotor/internal/dirclient"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
)

// keysFor computes the blinded key and subcredential for the current
// time period of dir.
func (c *Client) keysFor(dir *netdir.NetDir, addr hscrypto.Address) (blinded, subcred [32]byte, p hscrypto.FetchParams, err error) {
	sched := hscrypto.ScheduleFor(dir, c.cfg.TestingNetwork)
	p = hscrypto.ClientFetchParams(dir, sched)
	blinded, err = hscrypto.BlindPublicKey(addr.PubKey, p.PeriodNum, sched.PeriodLength)
	if err != nil {
		return
	}
	return blinded, hscrypto.Subcredential(addr.PubKey, blinded), p, nil
}

// FetchDescriptor returns the service's decrypted descriptor for the
// current time period, from cache or from the responsible HSDirs.
func (c *Client) FetchDescriptor(ctx context.Context, host string) (*hsdesc.Descriptor, [32]byte, error) {
	addr, err := ParseAddress(host)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return c.descriptor(ctx, host, addr)
}

func (c *Client) descriptor(ctx context.Context, host string, addr hscrypto.Address) (*hsdesc.Descriptor, [32]byte, error) {
	dir := c.cfg.NetDir()
	if dir == nil {
		return nil, [32]byte{}, &Error{Kind: KindDescNotFound, Addr: host, Err: errors.New("no consensus")}
	}
	blinded, subcred, params, err := c.keysFor(dir, addr)
	if err != nil {
		return nil, subcred, &Error{Kind: KindBadAddress, Addr: host, Err: err}
	}
	now := c.cfg.Now()
	c.mu.Lock()
	if e := c.cache[blinded]; e != nil && now.Before(e.expires) {
		c.mu.Unlock()
		return e.desc, e.subcred, nil
	}
	c.mu.Unlock()

	hsdirs := c.ringFor(dir, params).Responsible(blinded)
	if len(hsdirs) == 0 {
		return nil, subcred, &Error{Kind: KindDescNotFound, Addr: host, Err: errors.New("no HSDirs in consensus")}
	}
	mrand.Shuffle(len(hsdirs), func(i, j int) { hsdirs[i], hsdirs[j] = hsdirs[j], hsdirs[i] })
	if len(hsdirs) > c.cfg.MaxHSDirAttempts {
		hsdirs = hsdirs[:c.cfg.MaxHSDirAttempts]
	}
	clientSK, _ := c.cfg.ClientAuth.Key(addr)
	var lastErr error
	invalidSeen := false
	for _, hd := range hsdirs {
		doc, err := c.fetchFrom(ctx, hd, blinded)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		d, err := hsdesc.Decode(doc, blinded, subcred, clientSK, c.cfg.Now())
		switch {
		case errors.Is(err, hsdesc.ErrClientAuthRequired):
			return nil, subcred, &Error{Kind: KindClientAuthMissing, Addr: host, Err: err}
		case errors.Is(err, hsdesc.ErrClientAuthBad):
			return nil, subcred, &Error{Kind: KindClientAuthBad, Addr: host, Err: err}
		case err != nil:
			invalidSeen, lastErr = true, err
			continue
		}
		c.mu.Lock()
		c.cache[blinded] = &cacheEntry{desc: d, subcred: subcred, expires: d.Outer.Expires(c.cfg.Now())}
		c.mu.Unlock()
		return d, subcred, nil
	}
	if invalidSeen {
		return nil, subcred, &Error{Kind: KindDescInvalid, Addr: host, Err: lastErr}
	}
	return nil, subcred, &Error{Kind: KindDescNotFound, Addr: host, Err: lastErr}
}

// ringFor returns the HSDir ring of dir, reusing the last one built.
func (c *Client) ringFor(dir *netdir.NetDir, p hscrypto.FetchParams) *hscrypto.Ring {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring == nil || c.ringDir != dir || c.ring.Params() != p {
		c.ring, c.ringDir = hscrypto.NewRing(dir, p), dir
	}
	return c.ring
}

// errNotFound is an HSDir's 404.
var errNotFound = errors.New("onion: HSDir has no such descriptor")

func (c *Client) fetchFrom(ctx context.Context, hd *netdir.Relay, blinded [32]byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HSDirTimeout)
	defer cancel()
	circ, err := c.cfg.Builder.BuildCircuit(ctx, Target{Relay: hd, NtorKey: hd.NtorOnionKey}, PurposeHSDir)
	if err != nil {
		return nil, err
	}
	defer circ.Close()
	conn, err := circ.BeginDir(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return getDescriptor(ctx, conn, "HSDir "+hd.Nickname, blinded)
}

// DescriptorPath returns the HSDir URL path for a blinded key (rend-spec
// §2.2.6): "/tor/hs/3/" + base64 of the key (no padding, as C tor).
func DescriptorPath(blinded [32]byte) string {
	return "/tor/hs/3/" + base64.RawStdEncoding.EncodeToString(blinded[:])
}

// getDescriptor performs the descriptor GET over a BEGIN_DIR stream. It
// offers no Accept-Encoding: dir-spec §6.1 asks anonymous requests not
// to advertise more than deflate, and descriptors are small
// (hsdesc.MaxDescriptorSize bounds the body).
func getDescriptor(ctx context.Context, conn io.ReadWriter, dir string, blinded [32]byte) ([]byte, error) {
	resp, err := dirclient.Get(ctx, conn, dir, dirclient.Request{
		Path:    DescriptorPath(blinded),
		MaxBody: hsdesc.MaxDescriptorSize,
	})
	var de *dirclient.Error
	if errors.As(err, &de) && de.Status == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %v", errNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
