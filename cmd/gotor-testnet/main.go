// Command gotor-testnet runs a private Tor network of C tor processes on
// 127.0.0.1 (see internal/testnet).
//
//	gotor-testnet demo              start a network, fetch a page through a client, tear down
//	gotor-testnet up DIR            start a network in DIR, stay in the foreground until Ctrl-C
//	gotor-testnet wait DIR          wait until the network started by "up DIR" is ready
//	gotor-testnet down DIR          stop the network started by "up DIR" (by recorded pids)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

const usage = `usage:
  gotor-testnet demo [flags]        start a network, fetch a page through a client, tear down
  gotor-testnet up [flags] DIR      start a network in DIR/net, write DIR/torrc.client and
                                    DIR/dirauthorities.txt, run until Ctrl-C or "down DIR"
  gotor-testnet wait [-timeout D] DIR   wait until "up DIR" reports the network ready
  gotor-testnet down DIR            stop the network started by "up DIR"

flags for demo and up:
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		netFlags(flag.NewFlagSet("", flag.ContinueOnError)).PrintDefaults()
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "demo":
		err = cmdDemo(args)
	case "up":
		err = cmdUp(args)
	case "wait":
		err = cmdWait(args)
	case "down":
		err = cmdDown(args)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		netFlags(flag.NewFlagSet("", flag.ContinueOnError)).PrintDefaults()
		return
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotor-testnet:", err)
		os.Exit(1)
	}
}

type netOpts struct {
	relays, exits int
	distinct      bool
	sharedRandom  bool
	latency       time.Duration
	rate          int64
	keep          bool
	timeout       time.Duration
	verbose       bool
}

var nopts netOpts

func netFlags(fs *flag.FlagSet) *flag.FlagSet {
	fs.IntVar(&nopts.relays, "relays", 3, "number of non-exit relays")
	fs.IntVar(&nopts.exits, "exits", 2, "number of exit relays")
	fs.BoolVar(&nopts.distinct, "distinct-addrs", false, "put each node on its own 127.N.0.1 address")
	fs.BoolVar(&nopts.sharedRandom, "shared-random", false, "authorities run the shared-random protocol (an SRV after 0-4 minutes, a previous one 4 minutes later; without it onion services use the disaster SRV)")
	fs.DurationVar(&nopts.latency, "latency", 0, "one-way delay of every ORPort link, each direction (e.g. 40ms; a userspace proxy per ORPort)")
	fs.Int64Var(&nopts.rate, "rate", 0, "bytes per second per direction of every ORPort link (0: unlimited)")
	fs.BoolVar(&nopts.keep, "keep", false, "demo: keep the temporary directory")
	fs.DurationVar(&nopts.timeout, "timeout", 120*time.Second, "how long to wait for the network to become ready")
	fs.BoolVar(&nopts.verbose, "v", true, "print progress")
	return fs
}

func (o netOpts) options() testnet.Options {
	opts := testnet.Options{
		Relays:            o.relays,
		Exits:             o.exits,
		DistinctAddresses: o.distinct,
		SharedRandom:      o.sharedRandom,
		Latency:           o.latency,
		LinkRate:          o.rate,
		KeepDir:           o.keep,
		ReadyTimeout:      o.timeout,
	}
	if opts.Relays == 0 {
		opts.Relays = -1 // zero means "none" on the command line
	}
	if o.verbose {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
		}
	}
	return opts
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func cmdUp(args []string) error {
	fs := netFlags(flag.NewFlagSet("up", flag.ExitOnError))
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: gotor-testnet up [flags] DIR")
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if pids, _ := readPids(dir); len(pids) > 0 {
		if pid := pids[0].pid; pids[0].name == "up" && processAlive(pid, "gotor-testnet") {
			return fmt.Errorf("a network is already up in %s (pid %d); run: gotor-testnet down %s", dir, pid, dir)
		}
	}
	for _, f := range []string{"ready", "failed", "torrc.client", "dirauthorities.txt", "pids", "nodes.json"} {
		os.Remove(filepath.Join(dir, f))
	}
	netDir := filepath.Join(dir, "net")
	if err := os.RemoveAll(netDir); err != nil {
		return err
	}
	// Record our own pid first, so that "down" works even while starting.
	if err := writePids(dir, nil); err != nil {
		return err
	}

	ctx, stop := signalContext()
	defer stop()
	opts := nopts.options()
	opts.Dir = netDir
	n, err := testnet.Start(ctx, opts)
	if err != nil {
		os.WriteFile(filepath.Join(dir, "failed"), []byte(err.Error()+"\n"), 0o644)
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "gotor-testnet: stopping the network")
		n.Stop()
		os.Remove(filepath.Join(dir, "ready"))
		os.Remove(filepath.Join(dir, "pids"))
		fmt.Fprintf(os.Stderr, "gotor-testnet: stopped; logs remain in %s\n", netDir)
	}()
	if err := writePids(dir, n.Relays()); err != nil {
		return err
	}

	socksPort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	clientTorrc := n.ClientTorrc(filepath.Join(dir, "client"), socksPort)
	dirAuths := strings.Join(n.DirAuthorityLines(), "\n") + "\n"
	nodes, _ := json.MarshalIndent(n.Relays(), "", "  ")
	for name, content := range map[string]string{
		"torrc.client":       clientTorrc,
		"dirauthorities.txt": dirAuths,
		"nodes.json":         string(nodes) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("# %s/dirauthorities.txt\n%s\n", dir, dirAuths)
	fmt.Printf("# %s/torrc.client\n%s\n", dir, clientTorrc)
	fmt.Printf("# DNS responder for the exits: %s (%s -> 127.0.0.1)\n", n.DNS().Addr(), testnet.DefaultTestName)
	if nopts.latency > 0 || nopts.rate > 0 {
		fmt.Printf("# every ORPort link: %v one-way delay each direction, rate %d B/s (0: unlimited); DirPorts direct\n", nopts.latency, nopts.rate)
	}
	fmt.Printf("# network ready after %v. Try:\n#   tor -f %s/torrc.client\n# Ctrl-C or `gotor-testnet down %s` stops it.\n",
		n.ReadyAfter.Round(time.Millisecond), dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(time.Now().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func cmdWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	timeout := fs.Duration("timeout", 120*time.Second, "give up after this long")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: gotor-testnet wait [-timeout D] DIR")
	}
	dir := fs.Arg(0)
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			fmt.Printf("ready: %s/torrc.client\n", dir)
			return nil
		}
		if b, err := os.ReadFile(filepath.Join(dir, "failed")); err == nil {
			return fmt.Errorf("network failed to start:\n%s", b)
		}
		if pids, _ := readPids(dir); len(pids) > 0 && pids[0].name == "up" && !processAlive(pids[0].pid, "gotor-testnet") {
			return fmt.Errorf("the up process (pid %d) is gone", pids[0].pid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("network in %s not ready after %v", dir, *timeout)
}

func cmdDown(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: gotor-testnet down DIR")
	}
	dir := args[0]
	pids, err := readPids(dir)
	if err != nil {
		return fmt.Errorf("no network recorded in %s: %v", dir, err)
	}
	// Ask the up process to tear down; it stops its tor processes itself.
	for _, p := range pids {
		if p.name == "up" && processAlive(p.pid, "gotor-testnet") {
			fmt.Printf("stopping gotor-testnet up (pid %d)\n", p.pid)
			terminate(p.pid, 15*time.Second)
		}
	}
	// Whatever is left (e.g. the up process was SIGKILLed).
	for _, p := range pids {
		if p.name != "up" && processAlive(p.pid, "tor") {
			fmt.Printf("stopping %s (pid %d)\n", p.name, p.pid)
			terminate(p.pid, 5*time.Second)
		}
	}
	for _, f := range []string{"ready", "pids"} {
		os.Remove(filepath.Join(dir, f))
	}
	fmt.Println("down")
	return nil
}

type pidEntry struct {
	name string
	pid  int
}

// writePids writes DIR/pids: "up PID" for this process, then "NICK PID" per node.
func writePids(dir string, nodes []testnet.NodeInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "up %d\n", os.Getpid())
	for _, n := range nodes {
		fmt.Fprintf(&b, "%s %d\n", n.Nickname, n.Pid)
	}
	return os.WriteFile(filepath.Join(dir, "pids"), []byte(b.String()), 0o644)
}

func readPids(dir string) ([]pidEntry, error) {
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		return nil, err
	}
	var out []pidEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[1]); err == nil && pid > 1 {
			out = append(out, pidEntry{f[0], pid})
		}
	}
	return out, nil
}

// processAlive reports whether pid exists and its command line mentions
// want (guards against killing a recycled pid).
func processAlive(pid int, want string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(b), want)
}

// terminate sends SIGTERM, then SIGKILL after grace.
func terminate(pid int, grace time.Duration) {
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}
