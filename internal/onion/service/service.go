package service

// The Service: configuration, life cycle and the net.Listener face.
// The protocol is in the other files: intro.go (rend-spec-v3 §3.1
// introduction points, §3.3 INTRODUCE2), descriptor.go and publish.go
// (§2.2 descriptors for the current and next time period, uploads),
// rend.go (§4.2 RENDEZVOUS1, the virtual hop) and streams.go (incoming
// streams to virtual ports).

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// MaxIntroPoints is the most introduction points a descriptor may list
// (rend-spec §2.5.4 [NUM_INTRO_POINT]).
const MaxIntroPoints = 20

// DefaultIntroPoints is C tor's HiddenServiceNumIntroductionPoints default.
const DefaultIntroPoints = 3

// Port maps a virtual port of the service to a local target
// (HiddenServicePort VIRTPORT [TARGET]).
type Port struct {
	Virtual uint16
	// Target is "host:port" (TCP), "unix:/path" (a Unix socket), or ""
	// for streams handed to Service.Accept. Several Ports with the same
	// Virtual spread streams over their targets at random, as C tor.
	Target string
}

// Config configures a Service.
type Config struct {
	// Identity is the service's identity key (LoadDir, GenerateIdentity
	// or IdentityFromExpanded). Required.
	Identity *Identity
	// Ports are the virtual ports; at least one.
	Ports []Port
	// NumIntroPoints is the number of introduction points, 1..20
	// (default 3).
	NumIntroPoints int
	// AuthorizedClients are the x25519 public keys of the clients
	// allowed to read the descriptor's inner layer (restricted
	// discovery, rend-spec §2.5.1.2); none makes the service public.
	AuthorizedClients [][32]byte
	// MaxStreams limits the concurrent streams of one rendezvous circuit
	// (HiddenServiceMaxStreams, 0 = unlimited); beyond it a stream is
	// refused, or with MaxStreamsCloseCircuit the circuit is closed.
	MaxStreams             int
	MaxStreamsCloseCircuit bool
	// IntroDoS, if set, asks introduction points that support it
	// (HSIntro=5) to rate-limit INTRODUCE2 cells
	// (HiddenServiceEnableIntroDoSDefense and its rate and burst).
	IntroDoS *hscell.DoSParams
	// TestingNetwork selects C tor's TestingTorNetwork time periods.
	TestingNetwork bool
	// Logger receives the service's log; nil discards it.
	Logger *slog.Logger
	// OnEvent, if set, is called (from the service's goroutines, one
	// call at a time) for descriptor uploads and introduction point
	// changes: the control port's HS_DESC events.
	OnEvent func(Event)

	// Optional, mostly for tests; defaults in parentheses.
	Rand               io.Reader        // crypto/rand
	Now                func() time.Time // time.Now
	IntroLifetime      [2]time.Duration // [18 h, 24 h]: an intro point is replaced after a random time in this range
	IntroMaxIntroduce2 [2]int           // [16384, 32768]: ... or after this many INTRODUCE2 cells
	DialTimeout        time.Duration    // 10 s to connect to a local target
	RendTimeout        time.Duration    // 30 s to build a rendezvous circuit (C tor MAX_REND_TIMEOUT)
	IntroTimeout       time.Duration    // 30 s to build an intro circuit and get INTRO_ESTABLISHED
	UploadTimeout      time.Duration    // 60 s per HSDir upload
	MaxPendingRend     int              // 64 rendezvous circuits being built at once; more INTRODUCE2 are dropped
}

// ErrClosed is returned by Accept after Close.
var ErrClosed = net.ErrClosed

// Service hosts one onion service. Start publishes it; Accept returns the
// streams of ports without a Target; Close takes it down. It implements
// net.Listener.
type Service struct {
	cfg  Config
	net  Network
	addr hscrypto.Address
	log  *slog.Logger

	// build builds circuits: Network.BuildCircuit wrapped, or a fake in
	// unit tests.
	build func(ctx context.Context, req CircuitRequest) (circ, error)

	accept    chan pendingStream
	published chan struct{}
	closed    chan struct{}
	wake      chan struct{}
	rendSem   chan struct{}
	cookies   *replayCache
	eventMu   sync.Mutex
	stats     counters
	wg        sync.WaitGroup
	goMu      sync.Mutex
	stopping  bool // under goMu: no new goroutines
	startOnce sync.Once
	closeOnce sync.Once
	cancel    context.CancelFunc

	mu           sync.Mutex
	ctx          context.Context // the service's life, set by Start
	intros       []*introPoint
	introVersion int // bumped when the set of established intro points changes
	failing      map[[20]byte]time.Time
	descs        map[uint64]*periodDesc
	rends        map[*rendCirc]struct{}
	publishedSet bool
}

// New checks cfg and returns a service that Start will publish through
// net.
func New(n Network, cfg Config) (*Service, error) {
	if cfg.Identity == nil {
		return nil, errors.New("onion service: no identity key")
	}
	if len(cfg.Ports) == 0 {
		return nil, errors.New("onion service: no ports")
	}
	for _, p := range cfg.Ports {
		if p.Virtual == 0 {
			return nil, errors.New("onion service: virtual port 0")
		}
		if err := checkTarget(p.Target); err != nil {
			return nil, fmt.Errorf("onion service: port %d: %w", p.Virtual, err)
		}
	}
	switch {
	case cfg.NumIntroPoints == 0:
		cfg.NumIntroPoints = DefaultIntroPoints
	case cfg.NumIntroPoints < 1 || cfg.NumIntroPoints > MaxIntroPoints:
		return nil, fmt.Errorf("onion service: %d introduction points (want 1..%d)", cfg.NumIntroPoints, MaxIntroPoints)
	}
	if cfg.MaxStreams < 0 {
		return nil, errors.New("onion service: negative MaxStreams")
	}
	if d := cfg.IntroDoS; d != nil {
		if _, err := d.Extension(); err != nil {
			return nil, err
		}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IntroLifetime == [2]time.Duration{} {
		cfg.IntroLifetime = [2]time.Duration{18 * time.Hour, 24 * time.Hour}
	}
	if cfg.IntroMaxIntroduce2 == [2]int{} {
		cfg.IntroMaxIntroduce2 = [2]int{16384, 32768}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, 10*time.Second)
	def(&cfg.RendTimeout, 30*time.Second)
	def(&cfg.IntroTimeout, 30*time.Second)
	def(&cfg.UploadTimeout, 60*time.Second)
	if cfg.MaxPendingRend == 0 {
		cfg.MaxPendingRend = 64
	}
	s := &Service{
		cfg: cfg, net: n, addr: cfg.Identity.Address(),
		accept:    make(chan pendingStream, acceptBacklog),
		published: make(chan struct{}),
		closed:    make(chan struct{}),
		wake:      make(chan struct{}, 1),
		rendSem:   make(chan struct{}, cfg.MaxPendingRend),
		cookies:   newReplayCache(cookieReplayWindow, maxCookieEntries),
		failing:   map[[20]byte]time.Time{},
		descs:     map[uint64]*periodDesc{},
		rends:     map[*rendCirc]struct{}{},
	}
	// Log a prefix of the address only: enough to tell services apart.
	s.log = cfg.Logger.With("service", s.addr.Label()[:8])
	s.build = func(ctx context.Context, req CircuitRequest) (circ, error) {
		c, err := n.BuildCircuit(ctx, req)
		if err != nil {
			return nil, err
		}
		return realCirc{c}, nil
	}
	return s, nil
}

func checkTarget(t string) error {
	if t == "" {
		return nil
	}
	if path, ok := strings.CutPrefix(t, "unix:"); ok {
		if path == "" {
			return errors.New("empty unix socket path")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return fmt.Errorf("bad target %q", t)
	}
	return nil
}

// Start launches the service in the background: introduction points,
// descriptors and uploads. It returns at once; Published tells when
// the descriptors are on the HSDirs. The service runs until Close or
// until ctx ends.
func (s *Service) Start(ctx context.Context) error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	started := false
	s.startOnce.Do(func() {
		started = true
		ctx, s.cancel = context.WithCancel(ctx)
		s.mu.Lock()
		s.ctx = ctx
		s.mu.Unlock()
		s.goFn(func() { s.run(ctx) })
	})
	if !started {
		return errors.New("onion service: already started")
	}
	s.log.Info("onion service starting", "intro_points", s.cfg.NumIntroPoints, "ports", len(s.cfg.Ports),
		"client_auth", len(s.cfg.AuthorizedClients) > 0)
	return nil
}

// Published is closed once both descriptors (current and next time
// period) have been accepted by at least one HSDir each.
func (s *Service) Published() <-chan struct{} { return s.published }

// WaitPublished waits for Published or the end of ctx.
func (s *Service) WaitPublished(ctx context.Context) error {
	select {
	case <-s.published:
		return nil
	case <-s.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hostname returns "<56 base32>.onion".
func (s *Service) Hostname() string { return s.addr.String() }

// OnionAddress returns the parsed address.
func (s *Service) OnionAddress() hscrypto.Address { return s.addr }

// Addr implements net.Listener: the .onion address (port 0).
func (s *Service) Addr() net.Addr { return Addr{Host: s.addr.String()} }

// Close stops the service: introduction and rendezvous circuits close
// (so clients can no longer reach it), streams end, and Accept returns
// ErrClosed. Descriptors already on HSDirs expire by themselves.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.cancel != nil {
			s.cancel()
		}
		s.mu.Lock()
		for _, ip := range s.intros {
			ip.stop()
		}
		for r := range s.rends {
			r.c.close()
		}
		s.mu.Unlock()
		s.goMu.Lock()
		s.stopping = true
		s.goMu.Unlock()
		s.wg.Wait()
		s.drainAccept()
		s.log.Info("onion service closed")
	})
	return nil
}

// Addr is the net.Addr of an onion service endpoint.
type Addr struct {
	Host string // "<56 base32>.onion"
	Port uint16
}

// Network returns "onion".
func (Addr) Network() string { return "onion" }

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// wakeup asks the main loop for a step now.
func (s *Service) wakeup() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// tick is how often the main loop looks at the state without being
// woken (C tor runs its onion service events every second).
const tick = time.Second

// run is the main loop: each step looks at the consensus, keeps the
// introduction points and descriptors in shape and starts uploads.
func (s *Service) run(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if dir := s.net.NetDir(); dir != nil {
			s.step(ctx, dir)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *Service) step(ctx context.Context, dir *netdir.NetDir) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maintainIntroPoints(ctx, dir, now)
	s.maintainDescriptors(dir, now)
	s.startUploads(ctx, dir, now)
}

// goFn runs f on a goroutine Close waits for; once Close has begun it
// runs nothing and returns false.
func (s *Service) goFn(f func()) bool {
	s.goMu.Lock()
	defer s.goMu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}
