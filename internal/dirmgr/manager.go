// The directory manager: bootstrapping and keeping a live consensus and
// its microdescriptors, per dir-spec §5 ("Client operation"): §5.1
// (downloading network-status documents and when to refresh), §5.2
// (downloading microdescriptors, batched by digest as in §4.3), §5.4
// (using directory information), and §3.1 / §1.3 for key certificates
// and signatures.

package dirmgr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/netdoc"
)

// Config configures a Manager.
type Config struct {
	// Authorities are the directory authorities; those with a v3 identity
	// sign consensuses. Defaults to DefaultAuthorities().
	Authorities []Authority
	// Fallbacks are fallback directory mirrors, asked for the first
	// consensus before the authorities (dir-spec §5.1). Those without a
	// DirPort (the built-in ones, DefaultFallbacks) are used only with
	// DirDial, over BEGIN_DIR. C tor uses DefaultFallbacks with the
	// default authorities (UseDefaultFallbackDirs), and torrc
	// FallbackDir lines (ParseFallback) otherwise.
	Fallbacks []Fallback
	// DataDir holds the cache; empty disables caching.
	DataDir string
	// TestingTorNetwork relaxes timing for private test networks.
	TestingTorNetwork bool
	Logger            *slog.Logger
	// Progress, if set, is called with bootstrap progress.
	Progress func(Progress)
	// DirDial opens a connection for an HTTP directory request; nil
	// means plain TCP to the directory's DirPort.
	DirDial func(ctx context.Context, dir *netdir.Relay) (net.Conn, error)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Bridges, if set, returns the only directories to ask, instead of
	// fallbacks, authorities and caches: with UseBridges every request
	// goes to a bridge (tor(1) UseBridges: the bridges are directory
	// guards too). Requests still go through DirDial.
	Bridges func() []*netdir.Relay

	// RequestTimeout bounds one directory request (default 30 s, 10 s
	// under TestingTorNetwork).
	RequestTimeout time.Duration
}

// Stats counts directory traffic, for tests and monitoring.
type Stats struct {
	ConsensusDownloads   int64 // consensus documents downloaded
	CertDownloads        int64 // key-certificate requests that succeeded
	MicrodescRequests    int64 // microdescriptor batch requests that succeeded
	MicrodescsDownloaded int64 // microdescriptors received
	ConsensusFromCache   int64 // bootstraps that used the cached consensus
	ConsensusDiffs       int64 // consensus downloads that came as a diff
}

// Manager fetches, verifies, caches and publishes directory information.
type Manager struct {
	cfg            Config
	log            *slog.Logger
	dial           DialFunc
	now            func() time.Time
	requestTimeout time.Duration
	hedgeDelay     time.Duration
	retryDelay     time.Duration
	refreshRetry   time.Duration // Run's wait after a failed refresh
	retries        int
	parallel       int

	auths   []*netdir.Relay // authorities that serve directory info
	v3ids   [][20]byte      // v3 identities of the signing authorities
	cache   *cache
	netdir  atomic.Pointer[netdir.NetDir]
	percent atomic.Int32

	mu        sync.Mutex
	consensus *netdoc.Consensus
	certs     []*netdoc.KeyCert
	mds       map[[32]byte]*netdoc.Microdesc
	// consText is the text of the newest verified consensus (the base
	// for a diff), consDigest its SHA3-256 signed-part digest.
	consText   string
	consDigest [32]byte
	subs       map[chan *netdir.NetDir]struct{}

	stats struct {
		consensus, certs, mdReqs, mds, fromCache, diffs atomic.Int64
	}
}

// New returns a Manager; call Bootstrap, then Run.
func New(cfg Config) (*Manager, error) {
	if cfg.Authorities == nil {
		cfg.Authorities = DefaultAuthorities()
	}
	m := &Manager{
		cfg:            cfg,
		log:            cfg.Logger,
		now:            cfg.Now,
		requestTimeout: cfg.RequestTimeout,
		hedgeDelay:     2 * time.Second,
		retryDelay:     2 * time.Second,
		refreshRetry:   time.Minute,
		retries:        3,
		parallel:       3,
		mds:            map[[32]byte]*netdoc.Microdesc{},
		subs:           map[chan *netdir.NetDir]struct{}{},
	}
	m.percent.Store(-1)
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.requestTimeout == 0 {
		m.requestTimeout = 30 * time.Second
		if cfg.TestingTorNetwork {
			m.requestTimeout = 10 * time.Second
		}
	}
	if cfg.TestingTorNetwork {
		m.hedgeDelay = 500 * time.Millisecond
		m.retryDelay = 500 * time.Millisecond
		m.refreshRetry = 2 * time.Second
	}
	if cfg.DirDial != nil {
		m.dial = cfg.DirDial
	} else {
		m.dial = plainDial
	}
	for i := range cfg.Authorities {
		a := &cfg.Authorities[i]
		if a.HasV3Ident && !a.Bridge {
			m.v3ids = append(m.v3ids, a.V3Ident)
		}
		if !a.Bridge {
			m.auths = append(m.auths, a.Relay())
		}
	}
	if len(m.v3ids) == 0 {
		return nil, errors.New("dirmgr: no v3 directory authorities configured")
	}
	if cfg.DataDir != "" {
		c, err := openCache(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		m.cache = c
	}
	return m, nil
}

// NetDir returns the current network directory, or nil before the first
// successful bootstrap.
func (m *Manager) NetDir() *netdir.NetDir { return m.netdir.Load() }

// Stats returns the traffic counters.
func (m *Manager) Stats() Stats {
	return Stats{
		ConsensusDownloads:   m.stats.consensus.Load(),
		CertDownloads:        m.stats.certs.Load(),
		MicrodescRequests:    m.stats.mdReqs.Load(),
		MicrodescsDownloaded: m.stats.mds.Load(),
		ConsensusFromCache:   m.stats.fromCache.Load(),
		ConsensusDiffs:       m.stats.diffs.Load(),
	}
}

// Subscribe returns a channel that receives each new NetDir (only the
// latest is kept if the reader is slow) and a function to unsubscribe.
func (m *Manager) Subscribe() (<-chan *netdir.NetDir, func()) {
	ch := make(chan *netdir.NetDir, 1)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	if nd := m.NetDir(); nd != nil {
		ch <- nd
	}
	return ch, func() {
		m.mu.Lock()
		delete(m.subs, ch)
		m.mu.Unlock()
	}
}

func (m *Manager) progress(p Progress) {
	// Progress only moves forward (like C tor's bootstrap status).
	for {
		cur := m.percent.Load()
		if int32(p.Percent) < cur || (int32(p.Percent) == cur && p.Percent != PhaseLoadingDescriptors.Percent) {
			return
		}
		if m.percent.CompareAndSwap(cur, int32(p.Percent)) {
			break
		}
	}
	// The Progress callback's owner reports progress itself (the client
	// logs it at notice, with its own circuit phases); log only without one.
	if m.cfg.Progress != nil {
		m.cfg.Progress(p)
	} else {
		m.log.Info(p.String())
	}
}

func (m *Manager) shuffled(dirs []*netdir.Relay) []*netdir.Relay {
	out := append([]*netdir.Relay(nil), dirs...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Bootstrap brings the manager to a usable NetDir: from the cache when
// it holds a live consensus, otherwise from the network.
func (m *Manager) Bootstrap(ctx context.Context) error {
	m.progress(PhaseStarting)
	if m.cache != nil {
		if err := m.loadCache(); err != nil {
			m.log.Warn("ignoring directory cache", "err", err)
		}
	}
	m.mu.Lock()
	c := m.consensus
	m.mu.Unlock()
	now := m.now()
	if c == nil || now.After(c.ValidUntil) {
		m.progress(PhaseConn)
		nc, err := m.fetchConsensus(ctx, m.bootstrapDirs())
		if err != nil {
			if c == nil || c.CheckTime(now, m.skew(), netdoc.ReasonablyLive) != nil {
				return err
			}
			m.log.Warn("using cached consensus past valid-until", "err", err)
			m.stats.fromCache.Add(1)
		} else {
			c = nc
		}
	} else {
		m.stats.fromCache.Add(1)
		m.log.Info("using cached consensus", "valid-after", c.ValidAfter, "valid-until", c.ValidUntil)
	}
	if err := m.loadMicrodescs(ctx, c, true); err != nil {
		return err
	}
	m.publish(c)
	m.progress(PhaseEnoughDirInfo)
	m.progress(PhaseDone)
	return nil
}

// bootstrapDirs are the directories to fetch a first consensus from:
// fallbacks first (dir-spec §5.1: "clients prefer fallbacks to
// authorities, trying them earlier"; C tor's default fallbacks are
// reached on their ORPort, so they need DirDial, i.e. BEGIN_DIR, unless
// a FallbackDir line named a DirPort), at most 10 of them shuffled, then
// the authorities. fetchAny tries them in order.
func (m *Manager) bootstrapDirs() []*netdir.Relay {
	if m.cfg.Bridges != nil {
		return m.cfg.Bridges()
	}
	dirs := m.shuffled(m.reachableFallbacks())
	if len(dirs) > 10 {
		dirs = dirs[:10] // then fall back to the authorities
	}
	return append(dirs, m.shuffled(m.auths)...)
}

func (m *Manager) skew() time.Duration {
	if m.cfg.TestingTorNetwork {
		return 30 * time.Second
	}
	return 30 * time.Minute
}

// fetchConsensus downloads, verifies and caches a new microdesc
// consensus; it refuses one not newer than the current one.
func (m *Manager) fetchConsensus(ctx context.Context, dirs []*netdir.Relay) (*netdoc.Consensus, error) {
	m.progress(PhaseRequestingStatus)
	const path = "/tor/status-vote/current/consensus-microdesc.z"
	var got *netdoc.Consensus
	var gotText string
	// Offer the consensus we hold as the base of a diff (dir-spec §4.5.2).
	m.mu.Lock()
	baseText, baseDigest := m.consText, m.consDigest
	m.mu.Unlock()
	var hdr map[string]string
	if baseText != "" {
		hdr = map[string]string{"X-Or-Diff-From-Consensus": fmt.Sprintf("%X", baseDigest)}
	}
	err := m.fetchAny(ctx, dirs, path, hdr, maxConsensusSize, func(dir *netdir.Relay, body []byte) error {
		m.progress(PhaseLoadingStatus)
		text := string(body)
		if netdoc.IsDiff(text) {
			if baseText == "" {
				return fmt.Errorf("%s sent a consensus diff we did not ask for", dirName(dir))
			}
			full, err := netdoc.ApplyDiff(baseText, baseDigest, text)
			if err != nil {
				return fmt.Errorf("consensus diff from %s: %w", dirName(dir), err)
			}
			m.stats.diffs.Add(1)
			text = full
		}
		// Missing certificates come from the directory that served the
		// consensus first (it has them), then from the others.
		c, err := m.verifyConsensus(ctx, text, m.now(), 0, append([]*netdir.Relay{dir}, dirs...))
		if err != nil {
			return fmt.Errorf("consensus from %s: %w", dirName(dir), err)
		}
		m.mu.Lock()
		cur := m.consensus
		m.mu.Unlock()
		if cur != nil && !c.ValidAfter.After(cur.ValidAfter) {
			return fmt.Errorf("consensus from %s is not newer than ours (valid-after %s)", dirName(dir), c.ValidAfter)
		}
		got, gotText = c, text
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.stats.consensus.Add(1)
	m.setConsensusText(got, gotText)
	if m.cache != nil {
		if err := m.cache.write(fileConsensus, gotText); err != nil {
			m.log.Warn("caching consensus", "err", err)
		}
	}
	return got, nil
}

func (m *Manager) setConsensusText(c *netdoc.Consensus, text string) {
	m.mu.Lock()
	m.consText, m.consDigest = text, c.SHA3Digest
	m.mu.Unlock()
}

// VerifyConsensus parses a microdesc (or ns) consensus and checks its
// signatures against the configured authorities, fetching missing key
// certificates, and its timeliness at now for a newly fetched document.
// It returns errors wrapping netdoc.ErrBadSignature,
// netdoc.ErrTooFewSignatures, netdoc.ErrExpired or netdoc.ErrNotYetValid.
func (m *Manager) VerifyConsensus(ctx context.Context, text string, now time.Time) (*netdoc.Consensus, error) {
	return m.verifyConsensus(ctx, text, now, 0, m.authDirs())
}

// verifyConsensus parses and verifies text; missing key certificates
// are fetched from certDirs (none when nil).
func (m *Manager) verifyConsensus(ctx context.Context, text string, now time.Time, tolerance time.Duration, certDirs []*netdir.Relay) (*netdoc.Consensus, error) {
	fetch := certDirs != nil
	c, err := netdoc.ParseConsensus(text)
	if err != nil {
		return nil, err
	}
	if err := c.CheckTime(now, m.skew(), tolerance); err != nil {
		return nil, err
	}
	if fetch {
		m.progress(PhaseLoadingKeys)
	}
	st, err := c.Verify(m.v3ids, m.validCerts(now))
	if err != nil && errors.Is(err, netdoc.ErrTooFewSignatures) && len(st.MissingID) > 0 && fetch {
		if ferr := m.fetchCerts(ctx, certDirs, st.MissingID, st.MissingCert, now); ferr != nil {
			m.log.Debug("fetching key certificates", "err", ferr)
		}
		st, err = c.Verify(m.v3ids, m.validCerts(now))
	}
	if err != nil {
		return nil, err
	}
	for _, bad := range st.BadErrs {
		// Enough others signed validly (C tor logs these too).
		m.log.Warn("ignoring a bad consensus signature", "err", bad)
	}
	return c, nil
}

func (m *Manager) validCerts(now time.Time) []*netdoc.KeyCert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*netdoc.KeyCert, 0, len(m.certs))
	for _, kc := range m.certs {
		if !now.After(kc.Expires) {
			out = append(out, kc)
		}
	}
	return out
}

// addCerts verifies and stores certificates for configured authorities.
func (m *Manager) addCerts(certs []*netdoc.KeyCert, now time.Time) (added int, err error) {
	trusted := map[[20]byte]bool{}
	for _, id := range m.v3ids {
		trusted[id] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, kc := range certs {
		if !trusted[kc.Fingerprint] {
			continue
		}
		if verr := kc.Verify(now); verr != nil {
			err = verr
			continue
		}
		dup := false
		for _, have := range m.certs {
			if have.Fingerprint == kc.Fingerprint && have.SigningKeyDigest == kc.SigningKeyDigest {
				dup = true
			}
		}
		if !dup {
			m.certs = append(m.certs, kc)
			added++
		}
	}
	return added, err
}

// fetchCerts downloads key certificates for (identity, signing key)
// pairs (dir-spec §4.1 "/tor/keys/fp-sk/...") from dirs.
func (m *Manager) fetchCerts(ctx context.Context, dirs []*netdir.Relay, ids, sks [][20]byte, now time.Time) error {
	var parts []string
	seen := map[string]bool{}
	for i := range ids {
		p := fmt.Sprintf("%X-%X", ids[i], sks[i])
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	path := "/tor/keys/fp-sk/" + strings.Join(parts, "+") + ".z"
	var texts []string
	err := m.fetchAny(ctx, dirs, path, nil, maxCertsSize, func(dir *netdir.Relay, body []byte) error {
		certs, perr := netdoc.ParseKeyCerts(string(body))
		n, aerr := m.addCerts(certs, now)
		if n == 0 {
			return fmt.Errorf("no usable certificates from %s: %w", dirName(dir), errors.Join(perr, aerr))
		}
		for _, kc := range certs {
			texts = append(texts, kc.Raw)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.stats.certs.Add(1)
	m.saveCerts()
	return nil
}

func (m *Manager) saveCerts() {
	if m.cache == nil {
		return
	}
	m.mu.Lock()
	var b strings.Builder
	for _, kc := range m.certs {
		b.WriteString(kc.Raw)
		if !strings.HasSuffix(kc.Raw, "\n") {
			b.WriteByte('\n')
		}
	}
	m.mu.Unlock()
	if err := m.cache.write(fileCerts, b.String()); err != nil {
		m.log.Warn("caching certificates", "err", err)
	}
}

// Batch size for microdescriptor requests, as C tor
// (MAX_MICRODESC_DOWNLOADS_PER_REQUEST).
const microdescBatch = 92

// loadMicrodescs fetches the microdescriptors c lists that we lack.
func (m *Manager) loadMicrodescs(ctx context.Context, c *netdoc.Consensus, reportProgress bool) error {
	total := len(c.Routers)
	m.mu.Lock()
	var missing [][32]byte
	for i := range c.Routers {
		if _, ok := m.mds[c.Routers[i].MicrodescDigest]; !ok {
			missing = append(missing, c.Routers[i].MicrodescDigest)
		}
	}
	m.mu.Unlock()
	have := total - len(missing)
	report := func() {
		if !reportProgress || total == 0 {
			return
		}
		p := PhaseLoadingDescriptors
		p.Percent = 50 + 25*have/total
		if p.Percent >= 75 {
			p.Percent = 74
		}
		p.Summary = fmt.Sprintf("Loading relay descriptors (%d/%d)", have, total)
		m.progress(p)
	}
	if len(missing) == 0 {
		report()
		return nil
	}
	if reportProgress {
		m.progress(PhaseRequestingDescriptors)
	}
	report()
	dirs := m.mdDirs(c)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var errs []error
	for start := 0; start < len(missing); start += microdescBatch {
		batch := missing[start:min(start+microdescBatch, len(missing))]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, err := m.fetchMicrodescBatch(ctx, dirs, batch)
			mu.Lock()
			have += n
			if err != nil {
				errs = append(errs, err)
			}
			report()
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	m.saveMicrodescs(c)
	// Enough to build circuits? Require most descriptors, like C tor's
	// "enough dir info" threshold.
	if total > 0 && have*10 < total*6 {
		return fmt.Errorf("dirmgr: only %d of %d microdescriptors available: %w", have, total, errors.Join(errs...))
	}
	if len(errs) > 0 {
		m.log.Warn("some microdescriptors could not be fetched", "have", have, "total", total, "err", errors.Join(errs...))
	}
	return nil
}

// mdDirs picks directories to fetch microdescriptors (and later
// consensuses) from: directory caches in the consensus that we can
// reach, then the fallbacks we can reach (directory caches too), with
// authorities last.
func (m *Manager) mdDirs(c *netdoc.Consensus) []*netdir.Relay {
	if m.cfg.Bridges != nil {
		return m.cfg.Bridges()
	}
	var caches []*netdir.Relay
	for i := range c.Routers {
		r := &c.Routers[i]
		if !r.Flags.Has(netdir.FlagV2Dir | netdir.FlagRunning | netdir.FlagValid) {
			continue
		}
		if m.cfg.DirDial == nil && r.DirPort == 0 {
			continue
		}
		caches = append(caches, &netdir.Relay{Nickname: r.Nickname, RSAID: r.Identity, Addr: r.Addr,
			ORPort: r.ORPort, DirPort: r.DirPort, IPv6: r.IPv6, Flags: r.Flags})
	}
	return append(append(m.shuffled(caches), m.shuffled(m.reachableFallbacks())...), m.shuffled(m.auths)...)
}

// authDirs are the authorities, shuffled (the bridges with Bridges).
func (m *Manager) authDirs() []*netdir.Relay {
	if m.cfg.Bridges != nil {
		return m.cfg.Bridges()
	}
	return m.shuffled(m.auths)
}

// reachableFallbacks are the fallbacks we can send requests to: all with
// DirDial (BEGIN_DIR to the ORPort), else those with a DirPort.
func (m *Manager) reachableFallbacks() []*netdir.Relay {
	var out []*netdir.Relay
	for i := range m.cfg.Fallbacks {
		if fb := &m.cfg.Fallbacks[i]; m.cfg.DirDial != nil || fb.DirPort != 0 {
			out = append(out, fb.Relay())
		}
	}
	return out
}

func (m *Manager) fetchMicrodescBatch(ctx context.Context, dirs []*netdir.Relay, digests [][32]byte) (int, error) {
	want := make(map[[32]byte]bool, len(digests))
	names := make([]string, len(digests))
	for i, d := range digests {
		want[d] = true
		names[i] = base64.RawStdEncoding.EncodeToString(d[:])
	}
	path := "/tor/micro/d/" + strings.Join(names, "-") + ".z"
	got := 0
	err := m.fetchAny(ctx, dirs, path, nil, maxMicrodescSize, func(dir *netdir.Relay, body []byte) error {
		mds, perr := netdoc.ParseMicrodescs(string(body))
		n := 0
		m.mu.Lock()
		for _, md := range mds {
			if want[md.Digest] {
				if _, dup := m.mds[md.Digest]; !dup {
					md.Text = strings.Clone(md.Text) // don't pin the response
					m.mds[md.Digest] = md
					n++
				}
				delete(want, md.Digest)
			}
		}
		m.mu.Unlock()
		got += n
		m.stats.mds.Add(int64(n))
		if n > 0 {
			m.stats.mdReqs.Add(1)
		}
		if len(want) == 0 {
			return nil
		}
		if perr != nil {
			return fmt.Errorf("microdescriptors from %s: %w", dirName(dir), perr)
		}
		return fmt.Errorf("%s did not return %d microdescriptors", dirName(dir), len(want))
	})
	return got, err
}

// publish builds and publishes a NetDir for c.
func (m *Manager) publish(c *netdoc.Consensus) {
	m.mu.Lock()
	m.consensus = c
	nd := BuildNetDir(c, m.mds)
	m.netdir.Store(nd)
	subs := make([]chan *netdir.NetDir, 0, len(m.subs))
	for ch := range m.subs {
		subs = append(subs, ch)
	}
	m.mu.Unlock()
	for _, ch := range subs {
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- nd:
		default:
		}
	}
}

// nextFetch returns when to fetch the next consensus (dir-spec §5.1):
// uniformly in [fresh-until + 3/4·interval, that + 7/8·(valid-until -
// that)], where interval = fresh-until - valid-after. Under
// TestingTorNetwork, between fresh-until and the first quarter of the
// remaining validity.
func (m *Manager) nextFetch(c *netdoc.Consensus) time.Time {
	interval := c.FreshUntil.Sub(c.ValidAfter)
	var start, end time.Time
	if m.cfg.TestingTorNetwork {
		start = c.FreshUntil
		end = start.Add(c.ValidUntil.Sub(start) / 4)
	} else {
		start = c.FreshUntil.Add(interval * 3 / 4)
		end = start.Add(c.ValidUntil.Sub(start) * 7 / 8)
	}
	if !end.After(start) {
		return start
	}
	return start.Add(rand.N(end.Sub(start)))
}

// Run keeps the directory fresh until ctx is done: it fetches a new
// consensus at the time dir-spec §5.1 prescribes, then missing
// microdescriptors, and publishes a new NetDir. After a failure it
// tries again every minute (2 s under TestingTorNetwork), however old
// the consensus gets (see Usable). Bootstrap must have succeeded first.
func (m *Manager) Run(ctx context.Context) error {
	lastLiveness := Live
	for {
		m.mu.Lock()
		c := m.consensus
		m.mu.Unlock()
		if c == nil {
			return errors.New("dirmgr: Run before successful Bootstrap")
		}
		wait := m.nextFetch(c).Sub(m.now())
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := m.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.log.Warn("directory refresh failed", "err", err)
			if l := m.Liveness(); l != lastLiveness {
				lastLiveness = l
				if l == TooOld {
					// dir-spec §5.1: no circuits on a consensus that is
					// not reasonably live; keep trying for a new one.
					m.log.Warn("consensus expired more than 24 hours ago; no new circuits until a newer one arrives", "err", m.Usable())
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(m.refreshRetry):
			}
			continue
		}
		lastLiveness = Live
	}
}

func (m *Manager) refresh(ctx context.Context) error {
	m.mu.Lock()
	cur := m.consensus
	m.mu.Unlock()
	dirs := m.authDirs()
	if cur != nil {
		dirs = m.mdDirs(cur)
	}
	c, err := m.fetchConsensus(ctx, dirs)
	if err != nil {
		return err
	}
	if err := m.loadMicrodescs(ctx, c, false); err != nil {
		return err
	}
	m.publish(c)
	m.pruneMicrodescs(c)
	return nil
}

// pruneMicrodescs forgets microdescriptors no longer listed.
func (m *Manager) pruneMicrodescs(c *netdoc.Consensus) {
	keep := make(map[[32]byte]bool, len(c.Routers))
	for i := range c.Routers {
		keep[c.Routers[i].MicrodescDigest] = true
	}
	m.mu.Lock()
	for d := range m.mds {
		if !keep[d] {
			delete(m.mds, d)
		}
	}
	m.mu.Unlock()
}
