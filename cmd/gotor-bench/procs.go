package main

// Client processes (gotor and C tor), started the same way from the same
// torrc, and what /proc says about them.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

type clientKind int

const (
	kindGotor clientKind = iota
	kindCTor
)

func (k clientKind) String() string {
	if k == kindGotor {
		return "gotor"
	}
	return "C tor"
}

// clientProc is one running client process.
type clientProc struct {
	kind    clientKind
	dataDir string
	socks   string
	control string
	metrics string
	cmd     *exec.Cmd
	boot    time.Duration // start to "Bootstrapped 100%"
	done    chan struct{}
	logMu   sync.Mutex
	logTail []string
	ctl     *ctlConn
}

// launcher starts clients of both kinds on one network.
type launcher struct {
	net      *testnet.Network
	gotorBin string
	torBin   string
	workDir  string
	empty    string // empty defaults torrc for C tor
	profile  string // GOTOR_CPUPROFILE for gotor processes
	trace    string // GOTOR_TRACE, or ""
	// extraTorrc are lines both kinds of client get (-bridge).
	extraTorrc string
	seq        int
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// newDataDir returns a fresh, empty data directory for a client.
func (l *launcher) newDataDir(k clientKind) string {
	l.seq++
	name := "gotor"
	if k == kindCTor {
		name = "ctor"
	}
	return filepath.Join(l.workDir, fmt.Sprintf("%s-%d", name, l.seq))
}

// start runs a client of kind k on dataDir (empty or left by an earlier
// run) with the network's client torrc plus a ControlPort (and, for
// gotor, a MetricsPort), logging "notice stdout", and waits for
// "Bootstrapped 100%".
func (l *launcher) start(ctx context.Context, k clientKind, dataDir string) (*clientProc, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	c := &clientProc{
		kind:    k,
		dataDir: dataDir,
		socks:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		control: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		done:    make(chan struct{}),
	}
	torrc := l.net.ClientTorrc(dataDir, ports[0]) + fmt.Sprintf("ControlPort %s\n", c.control) + l.extraTorrc
	if k == kindGotor {
		c.metrics = fmt.Sprintf("127.0.0.1:%d", ports[2])
		torrc += fmt.Sprintf("MetricsPort %s\nMetricsPortPolicy accept 127.0.0.1\n", c.metrics)
	}
	torrcPath := filepath.Join(dataDir, "..", filepath.Base(dataDir)+".torrc")
	if err := os.WriteFile(torrcPath, []byte(torrc), 0o600); err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if k == kindGotor {
		cmd = exec.Command(l.gotorBin, "-f", torrcPath, "--Log", "notice stdout")
		cmd.Env = append(os.Environ(), "GOTOR_CPUPROFILE="+l.profile)
		if l.trace != "" {
			cmd.Env = append(cmd.Env, "GOTOR_TRACE="+l.trace)
		}
	} else {
		cmd = exec.Command(l.torBin, "--defaults-torrc", l.empty, "-f", torrcPath, "--Log", "notice stdout")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	c.cmd = cmd
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			c.logMu.Lock()
			c.logTail = append(c.logTail, line)
			if len(c.logTail) > 30 {
				c.logTail = c.logTail[1:]
			}
			c.logMu.Unlock()
			if !sent && strings.Contains(line, "Bootstrapped 100%") {
				ready <- time.Now()
				sent = true
			}
		}
	}()
	go func() { cmd.Wait(); close(c.done) }()
	timeout := time.NewTimer(120 * time.Second)
	defer timeout.Stop()
	select {
	case t := <-ready:
		c.boot = t.Sub(start)
	case <-c.done:
		return nil, fmt.Errorf("%v exited during bootstrap: %v\n%s", k, cmd.ProcessState, c.tail())
	case <-timeout.C:
		c.stop()
		return nil, fmt.Errorf("%v not bootstrapped after 120 s\n%s", k, c.tail())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
	ctl, err := dialControl(c.control)
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("%v control port: %v", k, err)
	}
	c.ctl = ctl
	return c, nil
}

func (c *clientProc) tail() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return strings.Join(c.logTail, "\n")
}

func (c *clientProc) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (c *clientProc) stop() {
	if c.ctl != nil {
		c.ctl.close()
	}
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	}
}

// cpuTimes is utime and stime of the process from /proc/PID/stat.
func cpuTimes(pid int) (user, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("bad /proc/PID/stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("bad /proc/PID/stat times")
	}
	return float64(ut) / clockTicks, float64(st) / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// rssKiB is VmRSS from /proc/PID/status.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// ctlConn is a control-port connection subscribed to CIRC events; it
// records, from the bench's clock, how long each circuit took from
// LAUNCHED to BUILT.
type ctlConn struct {
	conn     net.Conn
	mu       sync.Mutex
	launched map[string]time.Time
	builds   []time.Duration
	failed   int
	replies  chan string
}

func dialControl(addr string) (*ctlConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &ctlConn{conn: conn, launched: map[string]time.Time{}, replies: make(chan string, 16)}
	go c.read()
	for _, cmd := range []string{"AUTHENTICATE", "SETEVENTS CIRC"} {
		if _, err := fmt.Fprintf(conn, "%s\r\n", cmd); err != nil {
			conn.Close()
			return nil, err
		}
		select {
		case r := <-c.replies:
			if !strings.HasPrefix(r, "250") {
				conn.Close()
				return nil, fmt.Errorf("%s: %s", cmd, r)
			}
		case <-time.After(5 * time.Second):
			conn.Close()
			return nil, fmt.Errorf("%s: no reply", cmd)
		}
	}
	return c, nil
}

func (c *ctlConn) read() {
	sc := bufio.NewScanner(c.conn)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		if !strings.HasPrefix(line, "650") {
			if len(line) > 3 && line[3] == ' ' {
				select {
				case c.replies <- line:
				default:
				}
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "CIRC" {
			continue
		}
		id, status := f[2], f[3]
		c.mu.Lock()
		switch status {
		case "LAUNCHED":
			c.launched[id] = now
		case "BUILT":
			if t, ok := c.launched[id]; ok {
				c.builds = append(c.builds, now.Sub(t))
				delete(c.launched, id)
			}
		case "FAILED", "CLOSED":
			if _, ok := c.launched[id]; ok && status == "FAILED" {
				c.failed++
			}
			delete(c.launched, id)
		}
		c.mu.Unlock()
	}
}

// takeBuilds returns the build times seen since the last call.
func (c *ctlConn) takeBuilds() ([]time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, f := c.builds, c.failed
	c.builds, c.failed = nil, 0
	return b, f
}

func (c *ctlConn) close() { c.conn.Close() }
