package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/proxy"

	"github.com/gotor/gotor/client"
	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/logging"
	"github.com/gotor/gotor/internal/testnet"
)

// demoClient is the Tor client the demo sends its requests through.
type demoClient struct {
	Name      string // shown to the user, e.g. "C tor 0.4.9 (reference client)"
	SocksAddr string // host:port of its SOCKS5 listener
	Stop      func()
}

// startDemoClient starts gotor, in this process, from the very torrc a
// C tor client uses on this network (n.ClientTorrc), unchanged.
func startDemoClient(ctx context.Context, n *testnet.Network) (*demoClient, error) {
	dir, err := os.MkdirTemp("", "gotor-demo-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	torrcPath := filepath.Join(dir, "torrc")
	torrcText := n.ClientTorrc(filepath.Join(dir, "data"), port)
	if err := os.WriteFile(torrcPath, []byte(torrcText), 0o600); err != nil {
		return nil, err
	}
	fmt.Printf("== gotor's torrc (%s), the same a C tor client uses:\n%s", torrcPath, indent(torrcText))
	cfg, _, err := config.Load(torrcPath, nil)
	if err != nil {
		return nil, err
	}
	h, closeLogs, err := logging.New([]config.LogConfig{{MinSeverity: "notice", MaxSeverity: "err", Dest: "stdout"}})
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, slog.New(h))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := c.Start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return &demoClient{
		Name:      fmt.Sprintf("gotor (bootstrapped in %v)", time.Since(start).Round(time.Millisecond)),
		SocksAddr: c.SocksAddrs()[0],
		Stop: func() {
			c.Stop()
			closeLogs()
			os.RemoveAll(dir)
		},
	}, nil
}

func cmdDemo(args []string) error {
	fs := netFlags(flag.NewFlagSet("demo", flag.ExitOnError))
	fs.Parse(args)
	ctx, stop := signalContext()
	defer stop()

	if err := ensureTor(); err != nil {
		return err
	}
	fmt.Println("== starting a private Tor network on 127.0.0.1 (C tor authorities, relays and exits)")
	start := time.Now()
	n, err := testnet.Start(ctx, nopts.options())
	if err != nil {
		return err
	}
	defer func() {
		n.Stop()
		fmt.Println("== network stopped, every process killed")
	}()
	fmt.Printf("== network ready after %v:\n", n.ReadyAfter.Round(time.Millisecond))
	for _, r := range n.Relays() {
		role := "relay"
		if r.IsAuthority {
			role = "authority"
		} else if r.IsExit {
			role = "exit"
		}
		fmt.Printf("   %-7s %-9s %s  OR %s  Dir %d  pid %d\n", r.Nickname, role, r.Fingerprint, r.ORAddr(), r.DirPort, r.Pid)
	}

	srv, err := testnet.StartHTTPServer(1 << 20)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("== web server on %s (1 MiB random file at /random)\n", srv.URL)

	client, err := startDemoClient(ctx, n)
	if err != nil {
		return err
	}
	defer client.Stop()
	fmt.Printf("== client: %s, SOCKS5 on %s\n", client.Name, client.SocksAddr)

	page := fmt.Sprintf("http://%s:%d/", testnet.DefaultTestName, srv.Port)
	before := n.DNS().Queries(testnet.DefaultTestName)
	body, how, err := fetch(ctx, client.SocksAddr, page)
	if err != nil {
		return fmt.Errorf("fetching %s through Tor: %w", page, err)
	}
	fmt.Printf("== %s %s through Tor:\n%s", how, page, indent(body))
	fmt.Printf("== the exit resolved %s with the harness DNS responder (%d queries)\n",
		testnet.DefaultTestName, n.DNS().Queries(testnet.DefaultTestName)-before)

	t0 := time.Now()
	data, _, err := fetch(ctx, client.SocksAddr, srv.URL+"/random")
	if err != nil {
		return fmt.Errorf("fetching /random through Tor: %w", err)
	}
	el := time.Since(t0)
	sum := sha256.Sum256([]byte(data))
	ok := hex.EncodeToString(sum[:]) == srv.SHA256
	fmt.Printf("== downloaded %d bytes of /random in %v (%.2f MiB/s), SHA-256 matches: %v\n",
		len(data), el.Round(time.Millisecond), float64(len(data))/(1<<20)/el.Seconds(), ok)
	if !ok {
		return errors.New("SHA-256 mismatch")
	}
	fmt.Printf("== demo done in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "   " + strings.ReplaceAll(s, "\n", "\n   ") + "\n"
}

// fetch gets url through the SOCKS5 proxy at socks, with curl when it is
// installed (host names resolved by the exit: --socks5-hostname), otherwise
// with Go's SOCKS5 dialer.
func fetch(ctx context.Context, socks, url string) (body, how string, err error) {
	if curl, err := exec.LookPath("curl"); err == nil {
		cmd := exec.CommandContext(ctx, curl, "--silent", "--show-error", "--fail", "--max-time", "120",
			"--noproxy", "", "--socks5-hostname", socks, url)
		cmd.Env = append(os.Environ(), "ALL_PROXY=", "HTTP_PROXY=", "http_proxy=")
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%v: %s", err, ee.Stderr)
			}
			return "", "", err
		}
		return string(out), "curl --socks5-hostname " + socks, nil
	}
	d, err := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	if err != nil {
		return "", "", err
	}
	hc := &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: d.(proxy.ContextDialer).DialContext},
		Timeout:   2 * time.Minute,
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != 200 {
		return "", "", fmt.Errorf("HTTP %s", resp.Status)
	}
	return string(b), "GET (Go SOCKS5 dialer; curl not installed)", nil
}

// freeLoopbackPort returns a TCP port free on 127.0.0.1 right now.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
