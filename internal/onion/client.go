// The client side of the v3 onion service protocol (rend-spec-v3): what
// it needs from the circuit layer, its configuration, addresses. The
// protocol's steps are in fetch.go (descriptors), connect.go
// (introduction and rendezvous) and rend.go (rendezvous circuits);
// prop304 for the SOCKS error kinds (errors.go).

package onion

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
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
