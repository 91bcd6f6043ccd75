package testnet

import (
	"context"
	"encoding/base32"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// OnionService is a v3 onion service run by a C tor process on the
// network (HiddenServiceDir), forwarding its virtual port 80 to a local
// TCP port.
type OnionService struct {
	// Hostname is "<56 base32>.onion".
	Hostname string
	// Dir is the HiddenServiceDir.
	Dir string
	p   *proc
}

// Stop kills the service's tor process.
func (s *OnionService) Stop() { s.p.stop(3 * time.Second) }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// StartOnionService starts a C tor process that serves an onion service
// whose port 80 goes to 127.0.0.1:targetPort. authorizedClients are x25519
// public keys of clients allowed to read its descriptor (client
// authorization); none means a public service. It returns once tor has
// written the service's hostname; the descriptor is published some
// seconds later, so clients retry fetches.
func (n *Network) StartOnionService(ctx context.Context, targetPort int, authorizedClients ...[32]byte) (*OnionService, error) {
	dir, err := os.MkdirTemp(n.dir, "onion-")
	if err != nil {
		return nil, err
	}
	return n.startOnionService(ctx, dir, filepath.Join(dir, "hs"), targetPort, authorizedClients)
}

// StartOnionServiceDir is StartOnionService with an existing
// HiddenServiceDir hsDir (its keys are used, or created if missing).
func (n *Network) StartOnionServiceDir(ctx context.Context, hsDir string, targetPort int) (*OnionService, error) {
	dir, err := os.MkdirTemp(n.dir, "onion-")
	if err != nil {
		return nil, err
	}
	return n.startOnionService(ctx, dir, hsDir, targetPort, nil)
}

func (n *Network) startOnionService(ctx context.Context, dir, hs string, targetPort int, authorizedClients [][32]byte) (*OnionService, error) {
	data := filepath.Join(dir, "data")
	for _, d := range []string{data, filepath.Join(hs, "authorized_clients")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	os.Chmod(hs, 0o700)
	for i, pk := range authorizedClients {
		line := "descriptor:x25519:" + b32.EncodeToString(pk[:]) + "\n"
		if err := os.WriteFile(filepath.Join(hs, "authorized_clients", fmt.Sprintf("c%d.auth", i)), []byte(line), 0o600); err != nil {
			return nil, err
		}
	}
	// The service needs no SOCKS listener ("SocksPort 0").
	torrc := strings.Replace(n.ClientTorrc(data, 0), "SocksPort 127.0.0.1:0\n", "SocksPort 0\n", 1) +
		fmt.Sprintf("HiddenServiceDir %s\nHiddenServicePort 80 127.0.0.1:%d\n", hs, targetPort)
	torrcPath := filepath.Join(dir, "torrc")
	if err := os.WriteFile(torrcPath, []byte(torrc), 0o600); err != nil {
		return nil, err
	}
	p, err := startTor(n.tor, torrcPath, n.empty, filepath.Join(data, "notice.log"), filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	s := &OnionService{Dir: hs, p: p}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(hs, "hostname")); err == nil && len(b) > 0 {
			s.Hostname = strings.TrimSpace(string(b))
			return s, nil
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-p.done:
			out, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			return nil, fmt.Errorf("testnet: onion service tor exited: %v:\n%s", p.err, tail(string(out), 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Stop()
	return nil, fmt.Errorf("testnet: onion service wrote no hostname within 60 s (see %s)", dir)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
