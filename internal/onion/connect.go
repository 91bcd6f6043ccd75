// Introduction and rendezvous (rend-spec-v3 §3.2 [SEND_INTRO1], §4):
// the rendezvous point, ESTABLISH_RENDEZVOUS, INTRODUCE1 through an
// introduction point, RENDEZVOUS2 and the virtual hop to the service.

package onion

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
	"github.com/gotor/gotor/internal/path"
)

// PickRendezvousPoint picks a rendezvous point weighted by bandwidth for
// the middle position among the relays RendezvousOK accepts, as C tor
// does; the engine supplies its own selector's PickRendezvous, which
// honours ExcludeNodes.
func PickRendezvousPoint(dir *netdir.NetDir) (*netdir.Relay, error) {
	return path.New().PickRendezvous(dir, RendezvousOK)
}

// RendezvousOK reports whether r can be a rendezvous point: usable, Fast,
// with an ntor onion key, and (when its protocols are known) HSRend=2.
func RendezvousOK(r *netdir.Relay) bool {
	if !r.IsUsable() || !r.Flags.Has(netdir.FlagFast) || r.NtorOnionKey == ([32]byte{}) {
		return false
	}
	return r.Protocols == "" || protoSupports(r.Protocols, "HSRend", 2)
}

// connect runs descriptor fetch, rendezvous and introduction, and returns
// the rendezvous circuit with the virtual hop added.
func (c *Client) connect(ctx context.Context, host string, addr hscrypto.Address) (Circ, error) {
	desc, subcred, err := c.descriptor(ctx, host, addr)
	if err != nil {
		return nil, err
	}
	if len(desc.IntroPoints) == 0 {
		return nil, &Error{Kind: KindDescInvalid, Addr: host, Err: errors.New("descriptor lists no introduction points")}
	}
	dir := c.cfg.NetDir()

	// Rendezvous point (rend-spec §4.1).
	rp, err := c.cfg.PickRendezvous(dir)
	if err != nil {
		return nil, &Error{Kind: KindRendFailed, Addr: host, Err: err}
	}
	var cookie [hscell.CookieLen]byte
	if _, err := io.ReadFull(c.cfg.Rand, cookie[:]); err != nil {
		return nil, &Error{Kind: KindRendFailed, Addr: host, Err: err}
	}
	rendCirc, err := c.establishRendezvous(ctx, rp, cookie)
	if err != nil {
		return nil, &Error{Kind: KindRendFailed, Addr: host, Err: err}
	}
	ok := false
	defer func() {
		if !ok {
			rendCirc.Close()
		}
	}()
	var rpEd *[32]byte
	if rp.HasEd25519 {
		rpEd = &rp.Ed25519ID
	}
	plain := hscell.IntroducePlaintext{
		RendezvousCookie: cookie,
		OnionKey:         rp.NtorOnionKey,
		LinkSpecs:        hscell.LinkSpecsFor(rp.ORAddrPort(), rp.RSAID, rpEd, rp.IPv6),
	}

	// Introduction (rend-spec §3.2), trying intro points in random order.
	order := mrand.Perm(len(desc.IntroPoints))
	var lastErr error
	lastKind := KindIntroFailed
	for attempt := 0; attempt < c.cfg.MaxIntroAttempts && attempt < len(order)*2; attempt++ {
		ip := &desc.IntroPoints[order[attempt%len(order)]]
		hs, err := hscrypto.NewClientHandshake(c.cfg.Rand, ip.AuthKey, ip.EncKey, subcred)
		if err != nil {
			lastErr = err
			continue
		}
		err = c.introduce(ctx, dir, ip, hs, &plain)
		if err != nil {
			lastErr = err
			if errors.Is(err, context.DeadlineExceeded) {
				lastKind = KindIntroTimeout
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		// INTRODUCE_ACK success: wait for RENDEZVOUS2 (rend-spec §4.2).
		info, err := c.waitRendezvous2(ctx, rendCirc)
		if err != nil {
			return nil, &Error{Kind: KindRendFailed, Addr: host, Err: err}
		}
		seed, err := hs.Complete(info)
		if err != nil {
			return nil, &Error{Kind: KindRendFailed, Addr: host, Err: err}
		}
		if err := rendCirc.ExtendVirtualHop(hscrypto.ExpandRendKeys(seed[:])); err != nil {
			return nil, &Error{Kind: KindRendFailed, Addr: host, Err: err}
		}
		ok = true
		return rendCirc, nil
	}
	// Every intro point failed: the descriptor may be stale.
	c.mu.Lock()
	for k, e := range c.cache {
		if e.desc == desc {
			delete(c.cache, k)
		}
	}
	c.mu.Unlock()
	if lastErr == nil {
		lastErr = errors.New("no introduction attempt made")
	}
	return nil, &Error{Kind: lastKind, Addr: host, Err: lastErr}
}

func (c *Client) establishRendezvous(ctx context.Context, rp *netdir.Relay, cookie [hscell.CookieLen]byte) (Circ, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.IntroTimeout)
	defer cancel()
	circ, err := c.cfg.Builder.BuildCircuit(ctx, Target{Relay: rp, NtorKey: rp.NtorOnionKey}, PurposeRend)
	if err != nil {
		return nil, err
	}
	if err := circ.SendRelay(ctx, hscell.CmdEstablishRendezvous, hscell.EstablishRendezvous(cookie)); err != nil {
		circ.Close()
		return nil, err
	}
	for {
		cmd, _, err := circ.ReceiveRelay(ctx)
		if err != nil {
			circ.Close()
			return nil, err
		}
		if cmd == hscell.CmdRendezvousEstablished {
			return circ, nil
		}
		// Anything else on a fresh rendezvous circuit is unexpected but
		// harmless (e.g. padding negotiation); ignore it.
	}
}

// introTarget builds the circuit target for an intro point: the
// descriptor's link specifiers verbatim, plus the consensus entry when
// the relay is listed.
func introTarget(dir *netdir.NetDir, ip *hsdesc.IntroPoint) Target {
	t := Target{LinkSpecs: ip.LinkSpecs, NtorKey: ip.OnionKey}
	if s := hscell.Summarize(ip.LinkSpecs); s.HasRSA && dir != nil {
		if dir.ByRSAID != nil {
			t.Relay = dir.ByRSAID[s.RSAID]
		} else {
			for _, r := range dir.Relays {
				if r.RSAID == s.RSAID {
					t.Relay = r
					break
				}
			}
		}
	}
	return t
}

func (c *Client) introduce(ctx context.Context, dir *netdir.NetDir, ip *hsdesc.IntroPoint, hs *hscrypto.ClientHandshake, plain *hscell.IntroducePlaintext) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.IntroTimeout)
	defer cancel()
	header, err := hscell.Introduce1Header(ip.AuthKey, nil)
	if err != nil {
		return err
	}
	pt, err := plain.Encode(len(header))
	if err != nil {
		return err
	}
	body := append(header, hs.EncryptIntro(header, pt)...)
	circ, err := c.cfg.Builder.BuildCircuit(ctx, introTarget(dir, ip), PurposeIntro)
	if err != nil {
		return err
	}
	defer circ.Close()
	if err := circ.SendRelay(ctx, hscell.CmdIntroduce1, body); err != nil {
		return err
	}
	for {
		cmd, b, err := circ.ReceiveRelay(ctx)
		if err != nil {
			return err
		}
		if cmd != hscell.CmdIntroduceAck {
			continue
		}
		ack, err := hscell.ParseIntroduceAck(b)
		if err != nil {
			return err
		}
		if ack.Status != hscell.IntroAckSuccess {
			return fmt.Errorf("onion: INTRODUCE_ACK: %s", ack.StatusString())
		}
		return nil
	}
}

func (c *Client) waitRendezvous2(ctx context.Context, circ Circ) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RendezvousTimeout)
	defer cancel()
	for {
		cmd, b, err := circ.ReceiveRelay(ctx)
		if err != nil {
			return nil, err
		}
		if cmd == hscell.CmdRendezvous2 {
			return hscell.ParseRendezvous2(b)
		}
	}
}
