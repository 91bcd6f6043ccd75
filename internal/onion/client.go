// The client side of the v3 onion service protocol: rend-spec-v3 §2.2.4.1
// [CLIENTFETCH] and §2.2.6 (descriptor fetch from HSDirs over BEGIN_DIR),
// §3.2 [SEND_INTRO1] (introduction), §4 (rendezvous), §4.2.1 (virtual
// hop keys); prop304 for the SOCKS error kinds.

package onion

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/dirclient"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
	"github.com/gotor/gotor/internal/path"
)

// Purpose tells the circuit builder what a circuit is for, so it can
// apply the right path rules and never share these circuits with other
// traffic (rend-spec §2.2.6: descriptor fetches must be anonymous, on
// circuits not used for anything else).
type Purpose int

// Circuit purposes.
const (
	PurposeHSDir Purpose = iota + 1 // BEGIN_DIR to a responsible HSDir
	PurposeIntro                    // INTRODUCE1 to an introduction point
	PurposeRend                     // ESTABLISH_RENDEZVOUS at a rendezvous point
)

// Target is the last hop of a requested circuit. Relay is set when the
// relay is in the consensus. For introduction points, LinkSpecs holds the
// descriptor's link specifiers, which must be sent verbatim in EXTEND2,
// and NtorKey the descriptor's onion key (rend-spec §2.5.2.2).
type Target struct {
	Relay     *netdir.Relay
	LinkSpecs []hscell.LinkSpec
	NtorKey   [32]byte
}

// CircuitBuilder is what the onion client needs from the circuit layer.
type CircuitBuilder interface {
	// BuildCircuit builds an anonymous multi-hop circuit whose last hop
	// is last.
	BuildCircuit(ctx context.Context, last Target, purpose Purpose) (Circ, error)
}

// Circ is an open circuit as the onion client uses it.
type Circ interface {
	// SendRelay sends a circuit-level (stream 0) relay message to the
	// last hop (the virtual hop once one is added).
	SendRelay(ctx context.Context, cmd byte, body []byte) error
	// ReceiveRelay returns the next circuit-level relay message the
	// circuit layer does not handle itself (INTRODUCE_ACK,
	// RENDEZVOUS_ESTABLISHED, RENDEZVOUS2, ...).
	ReceiveRelay(ctx context.Context) (cmd byte, body []byte, err error)
	// BeginDir opens a RELAY_BEGIN_DIR stream to the last hop.
	BeginDir(ctx context.Context) (net.Conn, error)
	// ExtendVirtualHop appends the end-to-end hop to the service with
	// the hs-ntor keys (hscrypto.NewRendHop gives its relay crypto:
	// SHA3-256 digests and AES-256-CTR).
	ExtendVirtualHop(keys hscrypto.RendKeys) error
	// OpenStream sends RELAY_BEGIN with address ":port" (onion services
	// ignore the host part) to the last hop and waits for CONNECTED.
	OpenStream(ctx context.Context, port uint16) (net.Conn, error)
	// Done is closed when the circuit has died (a stream refused by the
	// service leaves it open).
	Done() <-chan struct{}
	Close() error
}

// Config configures a Client.
type Config struct {
	Builder CircuitBuilder
	// NetDir returns the current consensus view (required).
	NetDir func() *netdir.NetDir
	// TestingNetwork selects C tor's TestingTorNetwork time periods.
	TestingNetwork bool
	ClientAuth     *ClientAuth
	// Optional; defaults in parentheses.
	Rand              io.Reader                                   // crypto/rand
	Now               func() time.Time                            // time.Now
	PickRendezvous    func(*netdir.NetDir) (*netdir.Relay, error) // PickRendezvousPoint
	MaxDirtiness      time.Duration                               // 10 min (MaxCircuitDirtiness)
	MaxRendCircuits   int                                         // 64
	MaxHSDirAttempts  int                                         // 6
	MaxIntroAttempts  int                                         // 3 rounds over all intro points, capped
	HSDirTimeout      time.Duration                               // 30 s per HSDir
	IntroTimeout      time.Duration                               // 30 s for INTRODUCE_ACK
	RendezvousTimeout time.Duration                               // 60 s for RENDEZVOUS2
}

// Client connects to v3 onion services.
type Client struct {
	cfg Config

	mu    sync.Mutex
	cache map[[32]byte]*cacheEntry // by blinded key
	rend  map[rendKey]*rendEntry   // rendezvous circuits by service and isolation

	ringDir *netdir.NetDir // consensus the cached ring was built from
	ring    *hscrypto.Ring
}

type cacheEntry struct {
	desc    *hsdesc.Descriptor
	subcred [32]byte
	expires time.Time
}

// New returns a client.
func New(cfg Config) *Client {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxHSDirAttempts == 0 {
		cfg.MaxHSDirAttempts = 6
	}
	if cfg.MaxIntroAttempts == 0 {
		cfg.MaxIntroAttempts = 6
	}
	if cfg.HSDirTimeout == 0 {
		cfg.HSDirTimeout = 30 * time.Second
	}
	if cfg.IntroTimeout == 0 {
		cfg.IntroTimeout = 30 * time.Second
	}
	if cfg.RendezvousTimeout == 0 {
		cfg.RendezvousTimeout = 60 * time.Second
	}
	if cfg.PickRendezvous == nil {
		cfg.PickRendezvous = PickRendezvousPoint
	}
	if cfg.MaxDirtiness == 0 {
		cfg.MaxDirtiness = 10 * time.Minute
	}
	if cfg.MaxRendCircuits == 0 {
		cfg.MaxRendCircuits = 64
	}
	return &Client{cfg: cfg, cache: map[[32]byte]*cacheEntry{}, rend: map[rendKey]*rendEntry{}}
}

// ParseAddress validates a .onion hostname (subdomains allowed). Errors
// are *Error with KindBadAddress (SOCKS F6) wrapping a hscrypto.Err*.
func ParseAddress(host string) (hscrypto.Address, error) {
	a, err := hscrypto.ParseAddress(host)
	if err != nil {
		return a, &Error{Kind: KindBadAddress, Addr: host, Err: err}
	}
	return a, nil
}

// IsOnion reports whether host ends in ".onion".
func IsOnion(host string) bool { return hscrypto.IsOnionHost(host) }

// Dial connects to port on the onion service host ("[sub.]<addr>.onion").
// Errors are *Error, mapped to prop304 SOCKS codes by SOCKSReply.
func (c *Client) Dial(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return c.DialIsolated(ctx, host, port, "")
}

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
