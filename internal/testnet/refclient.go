package testnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ClientTorrc returns a client torrc for this network that C tor accepts
// as is (and gotor must accept unchanged):
//
//	DataDirectory DIR
//	SocksPort 127.0.0.1:PORT
//	TestingTorNetwork 1
//	Log notice file DIR/notice.log
//	DirAuthority ... (one line per authority)
//
// followed by Options.ExtraClientTorrc.
func (n *Network) ClientTorrc(dataDir string, socksPort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# gotor testnet client torrc (network in %s)\n", n.dir)
	fmt.Fprintf(&b, "DataDirectory %s\n", dataDir)
	fmt.Fprintf(&b, "SocksPort 127.0.0.1:%d\n", socksPort)
	fmt.Fprintf(&b, "TestingTorNetwork 1\n")
	fmt.Fprintf(&b, "Log notice file %s\n", filepath.Join(dataDir, "notice.log"))
	for _, l := range n.DirAuthorityLines() {
		fmt.Fprintf(&b, "%s\n", l)
	}
	for _, l := range n.opts.ExtraClientTorrc {
		fmt.Fprintf(&b, "%s\n", l)
	}
	return b.String()
}

// RefClient is a C tor client connected to the network: the reference
// against which gotor's behaviour is compared.
type RefClient struct {
	n         *Network
	p         *proc
	dataDir   string
	socksAddr string
	torrc     string
	ownsDir   bool
	stopOnce  sync.Once
	// BootstrapTime is how long the client took to reach 100%.
	BootstrapTime time.Duration
}

var clientSeq struct {
	sync.Mutex
	n int
}

// StartReferenceClient starts a C tor client (SocksPort only) with the
// torrc from ClientTorrc and waits until it has bootstrapped to 100%
// (bounded by ctx and 90 s).
func (n *Network) StartReferenceClient(ctx context.Context) (*RefClient, error) {
	return n.StartReferenceClientWith(ctx)
}

// StartReferenceClientWith is StartReferenceClient with extra torrc
// lines for this client only (for instance "ClientOnionAuthDir DIR").
func (n *Network) StartReferenceClientWith(ctx context.Context, extraTorrc ...string) (*RefClient, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := n.startClientOnce(ctx, extraTorrc)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if _, ok := err.(bindError); !ok || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (n *Network) startClientOnce(ctx context.Context, extraTorrc []string) (*RefClient, error) {
	clientSeq.Lock()
	clientSeq.n++
	seq := clientSeq.n
	clientSeq.Unlock()
	dataDir := filepath.Join(n.dir, fmt.Sprintf("client%d", seq))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort("127.0.0.1", false)
	if err != nil {
		return nil, err
	}
	c := &RefClient{
		n:         n,
		dataDir:   dataDir,
		socksAddr: fmt.Sprintf("127.0.0.1:%d", port),
		torrc:     n.ClientTorrc(dataDir, port) + strings.Join(append(extraTorrc, ""), "\n"),
		ownsDir:   n.ownsDir && !n.opts.KeepDir,
	}
	torrcPath := filepath.Join(dataDir, "torrc")
	if err := os.WriteFile(torrcPath, []byte(c.torrc), 0o600); err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil, fmt.Errorf("testnet: network is stopped")
	}
	logPath := filepath.Join(dataDir, "notice.log")
	start := time.Now()
	p, err := startTor(n.tor, torrcPath, n.empty, logPath, filepath.Join(dataDir, "stdout.log"))
	if err != nil {
		n.mu.Unlock()
		return nil, err
	}
	c.p = p
	n.clients = append(n.clients, c)
	n.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if logContains(logPath, "Bootstrapped 100%") {
			c.BootstrapTime = time.Since(start)
			n.logf("testnet: reference client bootstrapped after %v, SOCKS on %s", c.BootstrapTime.Round(time.Millisecond), c.socksAddr)
			return c, nil
		}
		if p.exited() {
			err := fmt.Errorf("testnet: reference client exited: %v\n--- tail of %s ---\n%s\n--- stdout ---\n%s",
				p.err, logPath, tailFile(logPath, 15), tailFile(filepath.Join(dataDir, "stdout.log"), 10))
			c.Stop()
			if logContains(logPath, "Address already in use") {
				return nil, bindError{err}
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			c.Stop()
			return nil, fmt.Errorf("testnet: reference client not bootstrapped after %v\n--- tail of %s ---\n%s",
				time.Since(start).Round(time.Millisecond), logPath, tailFile(logPath, 20))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SocksAddr is the client's SOCKS listener, e.g. "127.0.0.1:40123".
func (c *RefClient) SocksAddr() string { return c.socksAddr }

// Stop stops the client. Network.Stop stops it too.
func (c *RefClient) Stop() error {
	c.stopOnce.Do(func() {
		c.p.stop(3 * time.Second)
		if c.ownsDir {
			os.RemoveAll(c.dataDir)
		}
	})
	return nil
}
