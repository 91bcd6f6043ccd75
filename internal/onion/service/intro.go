package service

// Introduction points: rend-spec-v3 §3.1.1 [EST_INTRO] (ESTABLISH_INTRO
// with a fresh ed25519 auth key per intro point, HANDSHAKE_AUTH from the
// circuit's KH, the DoS extension of §3.1.1.1), §3.1.3
// [INTRO_ESTABLISHED], §3.3 [PROCESS_INTRO2] and §3.3.2 (INTRODUCE2:
// auth key check, replay cache, hs-ntor decryption and MAC check). The
// selection, lifetime and retry rules are C tor's (hs_service.c
// pick_intro_point, intro_point_should_expire, should_remove_intro_point,
// INTRO_CIRC_RETRY_PERIOD, MAX_INTRO_POINT_CIRCUIT_RETRIES).
//
// One set of intro points serves both descriptors (arti does the same;
// C tor keeps one set per descriptor): INTRODUCE2 is decrypted with each
// descriptor's subcredential until the MAC matches, as C tor does for
// onionbalance instances.
//
// Client authorization in v3 is at the descriptor (§2.5.1.2): a client
// without a key cannot decrypt the inner layer, so never learns the
// intro points' auth and encryption keys and cannot build an INTRODUCE1
// whose MAC checks; INTRODUCE2 carries no further credential.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"golang.org/x/crypto/curve25519"
)

const (
	// maxIntroCircuits is how many circuits one intro point may use
	// before it is replaced (C tor: MAX_INTRO_POINT_CIRCUIT_RETRIES 3
	// retries after the first).
	maxIntroCircuits = 4
	// failingIntroPeriod keeps a failed intro relay out of the picks
	// (C tor INTRO_CIRC_RETRY_PERIOD).
	failingIntroPeriod = 5 * time.Minute
)

// introPoint is one introduction point. The fields after mu-guarded are
// read and written under Service.mu; the keys never change.
type introPoint struct {
	rsaID     [20]byte
	relay     *netdir.Relay // consensus entry when picked
	linkSpecs []hscell.LinkSpec
	onionKey  [32]byte
	authKey   ed25519.PrivateKey // KS_hs_ipt_sid
	authPub   [32]byte           // KP_hs_ipt_sid
	encSK     [32]byte           // KS_hss_ntor
	encPK     [32]byte           // KP_hss_ntor
	expires   time.Time
	maxIntro2 int
	cancel    context.CancelFunc
	// replay is used by the intro point's goroutine only.
	replay *replayCache

	// Under Service.mu.
	established bool // INTRO_ESTABLISHED received on the current circuit
	published   bool // has been established at least once (and so in descriptors)
	dead        bool // gave up: circuits failed maxIntroCircuits times
	introduce2  int  // valid INTRODUCE2 received
	circ        circ
}

func (ip *introPoint) stop() {
	ip.cancel()
	if ip.circ != nil {
		ip.circ.close()
	}
}

func relayByID(dir *netdir.NetDir, id [20]byte) *netdir.Relay {
	if dir.ByRSAID != nil {
		return dir.ByRSAID[id]
	}
	for _, r := range dir.Relays {
		if r.RSAID == id {
			return r
		}
	}
	return nil
}

// canIntro reports whether r can be an introduction point: usable, with
// an ntor key and an ed25519 identity, and (when its protocols are known)
// HSIntro=4, the ed25519 ESTABLISH_INTRO (C tor
// node_supports_ed25519_hs_intro).
func canIntro(r *netdir.Relay) bool {
	if !r.IsUsable() || !r.HasEd25519 || r.NtorOnionKey == ([32]byte{}) {
		return false
	}
	return r.Protocols == "" || hscrypto.ProtoSupports(r.Protocols, "HSIntro", 4)
}

// maintainIntroPoints drops intro points that died, expired or left the
// consensus and picks new ones up to NumIntroPoints. Under s.mu.
func (s *Service) maintainIntroPoints(ctx context.Context, dir *netdir.NetDir, now time.Time) {
	for id, t := range s.failing {
		if now.Sub(t) >= failingIntroPeriod {
			delete(s.failing, id)
		}
	}
	kept := s.intros[:0]
	for _, ip := range s.intros {
		reason := ""
		switch {
		case ip.dead:
			reason = "circuits failed"
			s.failing[ip.rsaID] = now
		case relayByID(dir, ip.rsaID) == nil:
			reason = "relay left the consensus"
		case !now.Before(ip.expires):
			reason = "lifetime over"
		case ip.introduce2 >= ip.maxIntro2:
			reason = "INTRODUCE2 limit reached"
		}
		if reason == "" {
			kept = append(kept, ip)
			continue
		}
		ip.stop()
		if ip.published {
			s.introVersion++
		}
		s.log.Info("onion service: replacing introduction point", "relay", ip.relay.Nickname, "reason", reason)
		s.emit(Event{Kind: EventIntroLost, Relay: ip.rsaID, Reason: reason})
	}
	clear(s.intros[len(kept):])
	s.intros = kept
	need := s.cfg.NumIntroPoints - len(s.intros)
	if need <= 0 {
		return
	}
	inUse := map[[20]byte]bool{}
	for _, ip := range s.intros {
		inUse[ip.rsaID] = true
	}
	var cands, stable []*netdir.Relay
	for _, r := range dir.Relays {
		if canIntro(r) && !inUse[r.RSAID] && s.failing[r.RSAID].IsZero() {
			cands = append(cands, r)
			if r.Flags.Has(netdir.FlagStable) {
				stable = append(stable, r)
			}
		}
	}
	// C tor asks for Stable relays (CRN_NEED_UPTIME); a small network
	// may have too few.
	if len(stable) >= need {
		cands = stable
	}
	mrand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	for _, r := range cands[:min(need, len(cands))] {
		ip, err := s.newIntroPoint(r, now)
		if err != nil {
			s.log.Warn("onion service: cannot make introduction point keys", "err", err)
			return
		}
		ipCtx, cancel := context.WithCancel(ctx)
		ip.cancel = cancel
		s.intros = append(s.intros, ip)
		if !s.goFn(func() { s.runIntro(ipCtx, ip) }) {
			return
		}
	}
}

func (s *Service) newIntroPoint(r *netdir.Relay, now time.Time) (*introPoint, error) {
	_, auth, err := ed25519.GenerateKey(s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	ip := &introPoint{rsaID: r.RSAID, relay: r, onionKey: r.NtorOnionKey, authKey: auth}
	copy(ip.authPub[:], auth.Public().(ed25519.PublicKey))
	if _, err := io.ReadFull(s.cfg.Rand, ip.encSK[:]); err != nil {
		return nil, err
	}
	pk, err := curve25519.X25519(ip.encSK[:], curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	copy(ip.encPK[:], pk)
	var ed *[32]byte
	if r.HasEd25519 {
		ed = &r.Ed25519ID
	}
	ip.linkSpecs = hscell.LinkSpecsFor(r.ORAddrPort(), r.RSAID, ed, r.IPv6)
	lt := s.cfg.IntroLifetime
	ip.expires = now.Add(lt[0] + randDuration(lt[1]-lt[0]))
	mi := s.cfg.IntroMaxIntroduce2
	ip.maxIntro2 = mi[0] + mrand.IntN(max(mi[1]-mi[0], 0)+1)
	ip.replay = newReplayCache(0, 2*ip.maxIntro2)
	return ip, nil
}

func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(d)))
}

// runIntro keeps an intro point's circuit up: it builds one, registers
// the intro point and serves its INTRODUCE2 cells until it dies, then
// tries again, up to maxIntroCircuits circuits in all.
func (s *Service) runIntro(ctx context.Context, ip *introPoint) {
	var lastErr error
	for n := 0; n < maxIntroCircuits && ctx.Err() == nil; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(n) * time.Second):
			}
		}
		lastErr = s.serveIntro(ctx, ip)
		if ctx.Err() != nil {
			return
		}
		s.stats.introFailed.Add(1)
		s.log.Debug("onion service: introduction circuit ended", "relay", ip.relay.Nickname, "err", lastErr)
	}
	s.mu.Lock()
	ip.dead = true
	s.mu.Unlock()
	s.log.Info("onion service: introduction point failed", "relay", ip.relay.Nickname, "err", lastErr)
	s.wakeup()
}

// serveIntro runs one intro circuit from build to death.
func (s *Service) serveIntro(ctx context.Context, ip *introPoint) error {
	bctx, cancel := context.WithTimeout(ctx, s.cfg.IntroTimeout)
	defer cancel()
	c, err := s.build(bctx, CircuitRequest{Purpose: PurposeIntro, Hops: ServiceCircuitHops,
		Last: circuit.TargetFromRelay(ip.relay), Relay: ip.relay})
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer c.close()
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		return ctx.Err()
	}
	ip.circ = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		ip.circ, ip.established = nil, false
		s.mu.Unlock()
	}()
	kh, ok := c.nonce()
	if !ok {
		return errors.New("no handshake nonce for the intro point hop")
	}
	var exts []hscell.Extension
	if d := s.cfg.IntroDoS; d != nil && (ip.relay.Protocols == "" || hscrypto.ProtoSupports(ip.relay.Protocols, "HSIntro", 5)) {
		e, err := d.Extension()
		if err != nil {
			return err
		}
		exts = append(exts, e)
	}
	body, err := hscell.EstablishIntro(ip.authKey, kh, exts)
	if err != nil {
		return err
	}
	if err := c.sendRelay(bctx, hscell.CmdEstablishIntro, body); err != nil {
		return fmt.Errorf("ESTABLISH_INTRO: %w", err)
	}
	for {
		cmd, b, err := c.receive(bctx)
		if err != nil {
			return fmt.Errorf("waiting for INTRO_ESTABLISHED: %w", err)
		}
		if cmd != hscell.CmdIntroEstablished {
			continue // nothing else is expected yet; ignore
		}
		if err := hscell.ParseIntroEstablished(b); err != nil {
			return err
		}
		break
	}
	s.mu.Lock()
	ip.established = true
	if !ip.published {
		ip.published = true
		s.introVersion++
	}
	s.mu.Unlock()
	s.stats.introEstablished.Add(1)
	s.log.Debug("onion service: introduction point established", "relay", ip.relay.Nickname)
	s.emit(Event{Kind: EventIntroEstablished, Relay: ip.rsaID})
	s.wakeup()
	for {
		cmd, b, err := c.receive(ctx)
		if err != nil {
			return fmt.Errorf("introduction circuit: %w", err)
		}
		if cmd == hscell.CmdIntroduce2 {
			s.handleIntroduce2(ip, b)
		}
	}
}

// introRequest is a verified INTRODUCE2: where to meet the client.
type introRequest struct {
	plain   *hscell.IntroducePlaintext
	summary hscell.Summary
	hsinfo  []byte // SERVER_PK | AUTH for RENDEZVOUS1
	seed    [32]byte
}

// handleIntroduce2 checks an INTRODUCE2 and, if it is good, starts the
// rendezvous. Bad cells are dropped and counted; the intro circuit stays.
func (s *Service) handleIntroduce2(ip *introPoint, body []byte) {
	s.stats.introduce2.Add(1)
	req, err := s.checkIntroduce2(ip, body)
	if err != nil {
		s.stats.introduce2Rejected.Add(1)
		if errors.Is(err, errReplay) {
			s.stats.introduce2Replayed.Add(1)
		}
		s.log.Debug("onion service: dropping INTRODUCE2", "relay", ip.relay.Nickname, "err", err)
		return
	}
	select {
	case s.rendSem <- struct{}{}:
	default:
		s.stats.introduce2Rejected.Add(1)
		s.log.Warn("onion service: too many rendezvous circuits being built; dropping INTRODUCE2", "limit", s.cfg.MaxPendingRend)
		return
	}
	// The rendezvous circuit lives as long as the service, not the
	// intro point.
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	var once sync.Once
	release := func() { once.Do(func() { <-s.rendSem }) }
	if !s.goFn(func() { s.rendezvous(ctx, req, release) }) {
		<-s.rendSem
	}
}

var errReplay = errors.New("replayed INTRODUCE2")

func (s *Service) checkIntroduce2(ip *introPoint, body []byte) (*introRequest, error) {
	m, err := hscell.ParseIntroduce1(body)
	if err != nil {
		return nil, err
	}
	if m.AuthKey != ip.authPub {
		return nil, errors.New("auth key is not this intro point's")
	}
	now := s.cfg.Now()
	if ip.replay.check(m.Encrypted, now) {
		return nil, errReplay
	}
	var y [32]byte
	if _, err := io.ReadFull(s.cfg.Rand, y[:]); err != nil {
		return nil, err
	}
	var pt []byte
	req := &introRequest{}
	err = hscrypto.ErrBadHandshake
	for _, sc := range s.subcredentials() {
		pt, req.hsinfo, req.seed, err = hscrypto.ServiceIntro(ip.encSK, ip.encPK, ip.authPub, sc, m.Header, m.Encrypted, y)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	if req.plain, err = hscell.ParseIntroducePlaintext(pt); err != nil {
		return nil, err
	}
	for _, e := range req.plain.Extensions {
		if e.Type == extCCRequest {
			// Our descriptor offers no flow-control line; C tor drops
			// such requests too (hs_cell_parse_introduce2).
			return nil, errors.New("client asked for congestion control, which the service does not offer")
		}
	}
	req.summary = hscell.Summarize(req.plain.LinkSpecs)
	if !req.summary.HasRSA || !req.summary.IPv4.IsValid() {
		return nil, errors.New("rendezvous point link specifiers lack an IPv4 address or RSA identity")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cookies.check(req.plain.RendezvousCookie[:], now) {
		return nil, fmt.Errorf("%w (rendezvous cookie)", errReplay)
	}
	ip.introduce2++
	return req, nil
}

// extCCRequest is the INTRODUCE congestion control request extension
// (prop 324 §6.3).
const extCCRequest = 1
