package testnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Pdeathsig is delivered when the thread that started the child exits, not
// the process. Go may retire OS threads (e.g. a goroutine that exits while
// locked to its thread), so every child is started from one goroutine that
// stays locked to its thread for the life of the process.
var spawnReqs = make(chan spawnReq)

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

func init() {
	go func() {
		runtime.LockOSThread()
		for r := range spawnReqs {
			r.res <- r.cmd.Start()
		}
	}()
}

func spawn(cmd *exec.Cmd) error {
	res := make(chan error, 1)
	spawnReqs <- spawnReq{cmd, res}
	return <-res
}

// proc is one tor process started by the harness.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // exit status, valid after done
}

// startTor runs tor with torrcPath as its only configuration. The process
// gets its own process group and dies with the test process (Pdeathsig).
func startTor(torPath, torrcPath, defaultsPath, logPath, stdio string) (*proc, error) {
	cmd := exec.Command(torPath, "--defaults-torrc", defaultsPath, "-f", torrcPath)
	out, err := os.OpenFile(stdio, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		out.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, and SIGKILL to the whole process group when tor has
// not exited after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill sends SIGKILL to the process group and waits for the exit.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
	<-p.done
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logContains reports whether the file contains s.
func logContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(s))
}

// runOut runs a short command and returns its standard output.
func runOut(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err := spawn(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, errb.String(), out.String())
	}
	return out.String(), nil
}

// Ports handed out by this process, so that two networks started at the
// same time in one process never get the same port. Other processes are
// covered by the kernel handing out a port nobody listens on, and by
// Start retrying when tor fails to bind.
var (
	portMu    sync.Mutex
	portsUsed = map[string]bool{}
)

// freePort returns a TCP port on ip that is free right now. When udpToo is
// set the UDP port of the same number must be free as well.
func freePort(ip string, udpToo bool) (int, error) {
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		var u net.PacketConn
		if udpToo {
			u, err = net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		}
		l.Close()
		if u != nil {
			u.Close()
		}
		if err != nil {
			continue
		}
		key := net.JoinHostPort(ip, strconv.Itoa(port))
		portMu.Lock()
		used := portsUsed[key]
		portsUsed[key] = true
		portMu.Unlock()
		if !used {
			return port, nil
		}
	}
	return 0, errors.New("testnet: no free port found")
}

// readKeyValueFile reads "nickname value" files such as fingerprint and
// fingerprint-ed25519 in a tor data directory.
func readNickValueFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 {
			return strings.Join(fs[1:], ""), nil
		}
	}
	return "", fmt.Errorf("testnet: %s: unexpected content", path)
}
