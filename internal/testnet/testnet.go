// Package testnet starts a private Tor network of real C tor processes on
// the loopback interface, for gotor's integration tests and benchmarks.
//
// A network has directory authorities, guard/middle relays and exits, all
// with TestingTorNetwork 1 and short voting intervals, plus a small DNS
// responder the exits use as their only nameserver. Every port is chosen at
// run time, so several networks can run at once on one machine. Nothing
// listens on or connects to anything outside 127.0.0.0/8.
//
// Typical use from a test package:
//
//	func TestMain(m *testing.M) { testnet.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		net := testnet.Shared(t) // starts the network once per go test run
//		...
//	}
package testnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures a network. The zero value gives 3 authorities, 3
// relays, 2 exits, all on 127.0.0.1, in a temporary directory removed by
// Stop.
type Options struct {
	// Authorities is the number of directory authorities (default 3).
	Authorities int
	// Relays is the number of non-exit relays (0 means the default, 3; a
	// negative number means none). Every node gets the Guard flag
	// (TestingDirAuthVoteGuard *).
	Relays int
	// Exits is the number of exit relays (default 2).
	Exits int

	// Dir is the directory for all node data. Empty means a new temporary
	// directory. A directory given here is never removed by Stop; node
	// directories in it (auth0, relay0, ...) are recreated by Start.
	Dir string
	// KeepDir keeps the temporary directory after Stop (for debugging).
	KeepDir bool

	// DistinctAddresses puts node i on its own loopback address 127.(i+1).0.1,
	// so that every node is in its own /16 (as on the real network) and path
	// selection's /16 rule can be exercised. The DNS responder and the
	// reference client stay on 127.0.0.1.
	DistinctAddresses bool
	// SharedSubnetPair (with DistinctAddresses) puts the first exit in
	// the /16 of the node before it, a non-exit relay (127.N.0.1 and
	// 127.N.1.1), so that path selection's /16 rule has a pair to keep
	// apart.
	SharedSubnetPair bool

	// Latency is the one-way delay of every ORPort link, in each
	// direction: every node's ORPort is reached through a userspace delay
	// proxy (delay.go), so relay-to-relay and client-to-guard connections
	// carry it; DirPorts stay direct. A circuit's round trip then takes
	// 2*Latency per hop.
	Latency time.Duration
	// LinkRate, when positive, limits each direction of every ORPort
	// connection to this many bytes per second (through the same proxy).
	LinkRate int64

	// SharedRandom makes the authorities run the shared-random protocol
	// (proposal 250, dir-spec §3.4.1; C tor's default). A protocol run
	// is 24 voting rounds, 12 of commits and 12 of reveals, and ends at
	// a multiple of 24 voting intervals since the epoch: 4 minutes at
	// the 10-second interval (the shortest C tor accepts with
	// TestingTorNetwork, MIN_VOTE_INTERVAL_TESTING). The first
	// consensus with a shared-rand-current-value follows the first run
	// end the authorities vote at (0-4 minutes after the first
	// consensus), the first with a shared-rand-previous-value a run
	// later; WaitSharedRandom waits for them.
	//
	// Without it (the default) the authorities do not take part
	// (AuthDirSharedRandomness 0): no consensus carries a shared random
	// value, so onion services and clients use the disaster SRV
	// (rend-spec §2.3.1) however old the network is, and an onion test
	// knows which case it runs.
	SharedRandom bool

	// Extra torrc lines per node kind, appended to the generated torrc.
	ExtraAuthorityTorrc []string
	ExtraRelayTorrc     []string // non-exit relays
	ExtraExitTorrc      []string
	ExtraClientTorrc    []string // reference client and ClientTorrc

	// ReadyTimeout bounds the wait for a usable consensus once the tor
	// processes run (default 120s; 10-20s is usual, more on a loaded machine).
	ReadyTimeout time.Duration

	// FreshKeys generates new keys for every node instead of reusing keys
	// from the key cache (see KeyCacheDir).
	FreshKeys bool

	// TorPath is the tor binary (default: "tor" from PATH).
	TorPath string

	// Logf, when set, receives progress messages (t.Logf fits).
	Logf func(format string, args ...any)
}

// NodeInfo describes one node of the network.
type NodeInfo struct {
	Nickname    string
	Fingerprint string // RSA identity fingerprint, 40 upper-case hex digits
	Ed25519     string // Ed25519 master identity, base64 without padding (fingerprint-ed25519)
	V3Ident     string // authorities only: v3 authority identity (certificate fingerprint), hex
	Address     string // e.g. "127.0.0.1"
	ORPort      int    // advertised ORPort (the delay proxy's, with Options.Latency)
	DirPort     int
	// ListenORPort is the port tor itself listens on: ORPort, or behind
	// the delay proxy another one.
	ListenORPort int
	DataDir      string
	Pid          int
	IsExit       bool
	IsAuthority  bool
}

// ORAddr is Address:ORPort.
func (n NodeInfo) ORAddr() string { return fmt.Sprintf("%s:%d", n.Address, n.ORPort) }

// DirAddr is Address:DirPort.
func (n NodeInfo) DirAddr() string { return fmt.Sprintf("%s:%d", n.Address, n.DirPort) }

type node struct {
	NodeInfo
	kind   string // "authority", "relay", "exit"
	torrc  string
	p      *proc
	killed bool
}

// Network is a running private Tor network.
type Network struct {
	opts    Options
	dir     string
	ownsDir bool
	tor     string
	empty   string // empty file: --defaults-torrc, GeoIP files
	dns     *DNSServer
	started time.Time

	// ReadyAfter is the time Start took until the network was usable.
	ReadyAfter time.Duration

	mu      sync.Mutex
	proxies []*delayProxy // one per node with Options.Latency/LinkRate
	nodes   []*node
	clients []*RefClient
	bridges []*Bridge // StartBridge's
	stopped bool
}

// ErrTorMissing is returned (wrapped) by Start when tor or tor-gencert is not
// installed.
var ErrTorMissing = errors.New("testnet: tor is not installed (on Debian/Ubuntu: apt-get install -y tor)")

// Voting schedule. tor 0.4.9 requires V3AuthVotingInterval >= 10s (with
// TestingTorNetwork), an initial interval that divides 1800, and vote+dist
// delays smaller than the interval.
var authorityTiming = []string{
	"V3AuthVotingInterval 10",
	"V3AuthVoteDelay 2",
	"V3AuthDistDelay 2",
	"TestingV3AuthInitialVotingInterval 5",
	"TestingV3AuthInitialVoteDelay 2",
	"TestingV3AuthInitialDistDelay 2",
	"TestingV3AuthVotingStartOffset 0",
}

// LookTor returns the paths of tor and tor-gencert, or an error wrapping
// ErrTorMissing.
func LookTor(torPath string) (tor, gencert string, err error) {
	if torPath == "" {
		torPath = "tor"
	}
	tor, err = exec.LookPath(torPath)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrTorMissing, err)
	}
	gencert, err = exec.LookPath("tor-gencert")
	if err != nil {
		// Debian ships tor-gencert next to tor.
		alt := filepath.Join(filepath.Dir(tor), "tor-gencert")
		if _, e := os.Stat(alt); e != nil {
			return "", "", fmt.Errorf("%w: tor-gencert: %v", ErrTorMissing, err)
		}
		gencert = alt
	}
	return tor, gencert, nil
}

// Start creates the network and returns once it is usable: every node is
// listed Running and Valid in the microdesc consensus served by every
// authority and every relay, with at least one Guard and one Exit, and every
// node serves all microdescriptors. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Network, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var n *Network
		n, err = startOnce(ctx, opts)
		if err == nil {
			return n, nil
		}
		var be bindError
		if !errors.As(err, &be) || ctx.Err() != nil {
			return nil, err
		}
		if opts.Logf != nil {
			opts.Logf("testnet: port clash (%v), retrying", err)
		}
	}
	return nil, err
}

type bindError struct{ error }

func startOnce(ctx context.Context, opts Options) (_ *Network, err error) {
	if opts.Authorities <= 0 {
		opts.Authorities = 3
	}
	if opts.Relays < 0 {
		opts.Relays = 0
	} else if opts.Relays == 0 {
		opts.Relays = 3
	}
	if opts.Exits <= 0 {
		opts.Exits = 2
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 120 * time.Second
	}
	tor, gencert, err := LookTor(opts.TorPath)
	if err != nil {
		return nil, err
	}
	n := &Network{opts: opts, tor: tor, started: time.Now()}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if opts.Dir != "" {
		n.dir, err = filepath.Abs(opts.Dir)
		if err == nil {
			err = os.MkdirAll(n.dir, 0o700)
		}
	} else {
		sweepStaleDirs()
		n.dir, err = os.MkdirTemp("", tempPrefix)
		n.ownsDir = true
		if err == nil {
			owner := fmt.Sprintf("%d\n", os.Getpid())
			if opts.KeepDir {
				owner = "keep\n"
			}
			err = os.WriteFile(filepath.Join(n.dir, "owner"), []byte(owner), 0o644)
		}
	}
	if err != nil {
		return nil, err
	}
	n.empty = filepath.Join(n.dir, "empty")
	if err := os.WriteFile(n.empty, nil, 0o644); err != nil {
		return nil, err
	}

	n.dns, err = StartDNSServer("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testnet: DNS responder: %w", err)
	}
	if err := n.dns.AddName(DefaultTestName, "127.0.0.1"); err != nil {
		return nil, err
	}
	// The exits' only nameserver. C tor hands this file to libevent's
	// evdns, whose "nameserver" lines accept IP:PORT, so the responder runs
	// on a free high port and never needs port 53.
	resolv := filepath.Join(n.dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+n.dns.Addr().String()+"\n"), 0o644); err != nil {
		return nil, err
	}

	// Lay out the nodes.
	add := func(kind, nick string, count int) error {
		for i := 0; i < count; i++ {
			nd := &node{kind: kind}
			nd.Nickname = fmt.Sprintf("%s%d", nick, i)
			nd.IsAuthority = kind == "authority"
			nd.IsExit = kind == "exit"
			nd.Address = "127.0.0.1"
			if opts.DistinctAddresses {
				nd.Address = fmt.Sprintf("127.%d.0.1", len(n.nodes)+1)
				if opts.SharedSubnetPair && kind == "exit" && i == 0 && len(n.nodes) > 0 && n.nodes[len(n.nodes)-1].kind == "relay" {
					nd.Address = fmt.Sprintf("127.%d.1.1", len(n.nodes))
				}
			}
			nd.DataDir = filepath.Join(n.dir, nd.Nickname)
			os.RemoveAll(nd.DataDir) // stale keys and state from an earlier run in opts.Dir
			if err := os.MkdirAll(filepath.Join(nd.DataDir, "keys"), 0o700); err != nil {
				return err
			}
			var err error
			if nd.ORPort, err = freePort(nd.Address, false); err != nil {
				return err
			}
			nd.ListenORPort = nd.ORPort
			if opts.Latency > 0 || opts.LinkRate > 0 {
				if err := n.addDelayProxy(nd); err != nil {
					return err
				}
			}
			if nd.DirPort, err = freePort(nd.Address, false); err != nil {
				return err
			}
			n.nodes = append(n.nodes, nd)
		}
		return nil
	}
	if err := add("authority", "auth", opts.Authorities); err != nil {
		return nil, err
	}
	if err := add("relay", "relay", opts.Relays); err != nil {
		return nil, err
	}
	if err := add("exit", "exit", opts.Exits); err != nil {
		return nil, err
	}

	// Keys and fingerprints, in parallel.
	var wg sync.WaitGroup
	errs := make([]error, len(n.nodes))
	for i, nd := range n.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.makeKeys(ctx, nd, gencert)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("testnet: start interrupted: %w", ctx.Err())
		}
		return nil, err
	}
	n.logf("testnet: keys ready after %v", time.Since(n.started).Round(time.Millisecond))

	// Configuration and processes.
	var exitFPs []string
	for _, nd := range n.nodes {
		if nd.IsExit {
			exitFPs = append(exitFPs, "$"+nd.Fingerprint)
		}
	}
	for _, nd := range n.nodes {
		nd.torrc = filepath.Join(nd.DataDir, "torrc")
		if err := os.WriteFile(nd.torrc, []byte(n.nodeTorrc(nd, exitFPs, resolv)), 0o600); err != nil {
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("testnet: start interrupted: %w", ctx.Err())
	}
	for _, nd := range n.nodes {
		p, err := startTor(tor, nd.torrc, n.empty, filepath.Join(nd.DataDir, "notice.log"), filepath.Join(nd.DataDir, "stdout.log"))
		if err != nil {
			return nil, fmt.Errorf("testnet: starting %s: %w", nd.Nickname, err)
		}
		nd.p = p
		nd.Pid = p.pid()
	}
	n.logf("testnet: %d tor processes started in %s", len(n.nodes), n.dir)

	if err := n.waitReady(ctx); err != nil {
		return nil, err
	}
	n.ReadyAfter = time.Since(n.started)
	n.logf("testnet: network ready after %v", n.ReadyAfter.Round(time.Millisecond))
	return n, nil
}

func (n *Network) logf(format string, args ...any) {
	if n.opts.Logf != nil {
		n.opts.Logf(format, args...)
	}
}

func (n *Network) nodeTorrc(nd *node, exitFPs []string, resolv string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# generated by gotor internal/testnet: %s (%s)", nd.Nickname, nd.kind)
	w("TestingTorNetwork 1")
	w("DataDirectory %s", nd.DataDir)
	w("PidFile %s", filepath.Join(nd.DataDir, "pid"))
	w("Log notice file %s", filepath.Join(nd.DataDir, "notice.log"))
	w("SafeLogging 0")
	w("RunAsDaemon 0")
	w("Nickname %s", nd.Nickname)
	w("ContactInfo gotor-testnet")
	w("Address %s", nd.Address)
	w("AddressDisableIPv6 1")
	if nd.ListenORPort != nd.ORPort {
		w("ORPort %s NoListen IPv4Only", nd.ORAddr())
		w("ORPort %s:%d NoAdvertise IPv4Only", nd.Address, nd.ListenORPort)
	} else {
		w("ORPort %s IPv4Only", nd.ORAddr())
	}
	w("DirPort %s", nd.DirAddr())
	w("SocksPort 0")
	w("AssumeReachable 1")
	w("ShutdownWaitLength 0")
	w("GeoIPFile %s", n.empty)
	w("GeoIPv6File %s", n.empty)
	w("DisableDebuggerAttachment 0")
	w("MaxMemInQueues 256 MB")
	for _, line := range n.DirAuthorityLines() {
		w("%s", line)
	}
	switch nd.kind {
	case "authority":
		w("AuthoritativeDirectory 1")
		w("V3AuthoritativeDirectory 1")
		w("AuthDirMaxServersPerAddr 0")
		w("TestingDirAuthVoteGuard *")
		w("TestingDirAuthVoteHSDir *")
		w("TestingDirAuthVoteExit %s", strings.Join(exitFPs, ","))
		w("TestingMinExitFlagThreshold 0")
		for _, l := range authorityTiming {
			w("%s", l)
		}
		if !n.opts.SharedRandom {
			w("AuthDirSharedRandomness 0")
		}
		w("ExitRelay 0")
		w("ExitPolicy reject *:*")
		for _, l := range n.opts.ExtraAuthorityTorrc {
			w("%s", l)
		}
	case "relay":
		w("ExitRelay 0")
		w("ExitPolicy reject *:*")
		for _, l := range n.opts.ExtraRelayTorrc {
			w("%s", l)
		}
	case "exit":
		w("ExitRelay 1")
		w("ExitPolicy accept *:*")
		w("ExitPolicyRejectPrivate 0")
		w("ExitPolicyRejectLocalInterfaces 0")
		w("OutboundBindAddress %s", nd.Address)
		w("ServerDNSResolvConfFile %s", resolv)
		w("ServerDNSDetectHijacking 0")
		w("ServerDNSAllowNonRFC953Hostnames 1")
		for _, l := range n.opts.ExtraExitTorrc {
			w("%s", l)
		}
	}
	return b.String()
}

// waitReady waits until the network is usable (see Start).
func (n *Network) waitReady(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, n.opts.ReadyTimeout)
	defer cancel()
	all := n.Relays()
	auths := n.Authorities()
	hupped := false
	var lastErr error
	lastLogged := ""
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := n.checkAlive(); err != nil {
			return err
		}
		if !hupped {
			for _, a := range auths {
				if _, err := dirGet(ctx, a.Address, a.DirPort, consensusPath); err == nil {
					// Relays back off after the 404s they got before the
					// first consensus existed; SIGHUP resets their
					// download schedules.
					n.logf("testnet: first consensus at %s after %v; sending SIGHUP to relays", a.Nickname, time.Since(n.started).Round(time.Millisecond))
					n.mu.Lock()
					for _, nd := range n.nodes {
						if !nd.IsAuthority && nd.p != nil && !nd.p.exited() {
							_ = syscall.Kill(nd.Pid, syscall.SIGHUP)
						}
					}
					n.mu.Unlock()
					hupped = true
					break
				} else {
					lastErr = fmt.Errorf("no consensus yet at %s: %v", a.Nickname, err)
				}
			}
		}
		if hupped {
			lastErr = nil
			for _, nd := range all {
				if err := checkNodeServes(ctx, nd, all); err != nil {
					lastErr = err
					break
				}
			}
			if lastErr == nil {
				return nil
			}
			if msg := lastErr.Error(); msg != lastLogged {
				n.logf("testnet: waiting (%v): %s", time.Since(n.started).Round(100*time.Millisecond), msg)
				lastLogged = msg
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("testnet: start interrupted: %w", parent.Err())
			}
			var b strings.Builder
			fmt.Fprintf(&b, "testnet: network not ready after %v: %v\n", time.Since(n.started).Round(time.Millisecond), lastErr)
			for _, a := range auths {
				fmt.Fprintf(&b, "--- tail of %s ---\n%s\n", filepath.Join(a.DataDir, "notice.log"), tailFile(filepath.Join(a.DataDir, "notice.log"), 15))
			}
			return errors.New(b.String())
		case <-tick.C:
		}
	}
}

// checkAlive reports an error when a node exited on its own.
func (n *Network) checkAlive() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, nd := range n.nodes {
		if nd.p != nil && nd.p.exited() && !nd.killed {
			log := filepath.Join(nd.DataDir, "notice.log")
			msg := fmt.Errorf("testnet: %s (pid %d) exited: %v\n--- tail of %s ---\n%s\n--- stdout ---\n%s",
				nd.Nickname, nd.Pid, nd.p.err, log, tailFile(log, 15), tailFile(filepath.Join(nd.DataDir, "stdout.log"), 10))
			if logContains(log, "Address already in use") || logContains(filepath.Join(nd.DataDir, "stdout.log"), "Address already in use") {
				return bindError{msg}
			}
			return msg
		}
	}
	return nil
}

// Dir is the directory holding every node's data directory.
func (n *Network) Dir() string { return n.dir }

// DNS is the responder the exits resolve names with.
// DefaultTestName ("gotor-test.example") resolves to 127.0.0.1 from the start.
func (n *Network) DNS() *DNSServer { return n.dns }

// DirAuthorityLines returns one torrc line per authority, e.g.
//
//	DirAuthority auth0 orport=40001 no-v2 v3ident=HEX 127.0.0.1:40002 HEX
func (n *Network) DirAuthorityLines() []string {
	var out []string
	for _, a := range n.Authorities() {
		out = append(out, fmt.Sprintf("DirAuthority %s orport=%d no-v2 v3ident=%s %s %s",
			a.Nickname, a.ORPort, a.V3Ident, a.DirAddr(), a.Fingerprint))
	}
	return out
}

// Relays returns every node of the network (authorities are relays too:
// authorities first, then non-exit relays, then exits). Filter with
// IsAuthority/IsExit.
func (n *Network) Relays() []NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []NodeInfo
	for _, nd := range n.nodes {
		out = append(out, nd.NodeInfo)
	}
	return out
}

// Authorities returns the directory authorities.
func (n *Network) Authorities() []NodeInfo {
	var out []NodeInfo
	for _, nd := range n.Relays() {
		if nd.IsAuthority {
			out = append(out, nd)
		}
	}
	return out
}

// Exits returns the exit relays.
func (n *Network) Exits() []NodeInfo {
	var out []NodeInfo
	for _, nd := range n.Relays() {
		if nd.IsExit {
			out = append(out, nd)
		}
	}
	return out
}

// Node returns the node with the given nickname.
func (n *Network) Node(nick string) (NodeInfo, bool) {
	for _, nd := range n.Relays() {
		if nd.Nickname == nick {
			return nd, true
		}
	}
	return NodeInfo{}, false
}

// KillNode kills the node with the given nickname (SIGKILL, no clean
// shutdown), e.g. to test how a client reacts to a relay disappearing. The
// consensus keeps listing it until the authorities notice.
func (n *Network) KillNode(nick string) error {
	n.mu.Lock()
	var target *node
	for _, nd := range n.nodes {
		if nd.Nickname == nick {
			target = nd
		}
	}
	if target != nil {
		target.killed = true
	}
	n.mu.Unlock()
	if target == nil {
		return fmt.Errorf("testnet: no node %q", nick)
	}
	if target.p != nil {
		target.p.kill()
	}
	return nil
}

// Stop kills every process the network started (reference clients
// included), stops the DNS responder and removes the temporary directory
// unless KeepDir was set. It is safe to call more than once.
func (n *Network) Stop() error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	nodes := append([]*node(nil), n.nodes...)
	clients := append([]*RefClient(nil), n.clients...)
	bridges := append([]*Bridge(nil), n.bridges...)
	for _, nd := range nodes {
		nd.killed = true
	}
	n.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop() }()
	}
	for _, b := range bridges {
		wg.Add(1)
		go func() { defer wg.Done(); b.Stop() }()
	}
	for _, nd := range nodes {
		if nd.p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); nd.p.stop(3 * time.Second) }()
		}
	}
	wg.Wait()
	n.mu.Lock()
	proxies := n.proxies
	n.mu.Unlock()
	for _, p := range proxies {
		p.Close()
	}
	if n.dns != nil {
		n.dns.Close()
	}
	if n.ownsDir && !n.opts.KeepDir && n.dir != "" {
		return os.RemoveAll(n.dir)
	}
	return nil
}

const tempPrefix = "gotor-testnet-"

// sweepStaleDirs removes temporary network directories left behind by test
// processes that died without calling Stop (e.g. killed by go test
// -timeout; their tor processes died with them through Pdeathsig). A
// directory is removed only when the pid in its owner file no longer
// exists; directories kept on purpose (KeepDir) say "keep" there.
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}
