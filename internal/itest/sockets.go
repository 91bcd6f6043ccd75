package itest

// Whom a process talks to: its TCP sockets from the kernel's socket
// table (Linux proc(5): /proc/PID/fd links "socket:[INODE]", and
// /proc/PID/net/tcp and tcp6 list each socket's local and remote address,
// state and inode), for tests that check a client connects to nothing but
// what it should (with UseBridges: its transport and its bridges).

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TCPSocket is one TCP socket of a process.
type TCPSocket struct {
	Local, Remote netip.AddrPort
	State         int // proc(5) st: 1 ESTABLISHED, 2 SYN_SENT, 10 LISTEN, ...
}

const tcpListen = 0x0A

// TCPSockets returns the TCP sockets process pid holds open.
func TCPSockets(pid int) ([]TCPSocket, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var out []TCPSocket
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || !inodes[fl[9]] {
				continue
			}
			local, err1 := procAddr(fl[1])
			remote, err2 := procAddr(fl[2])
			st, err3 := strconv.ParseUint(fl[3], 16, 8)
			if err1 != nil || err2 != nil || err3 != nil {
				f.Close()
				return nil, fmt.Errorf("/proc/%d/net/%s: bad line %q", pid, table, sc.Text())
			}
			out = append(out, TCPSocket{Local: local, Remote: remote, State: int(st)})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// procAddr parses proc(5)'s "0100007F:1F90": the address as 32-bit words
// in host (little-endian) byte order, the port in hex.
func procAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port")
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", a)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// Outbound returns the remote endpoints of the connections pid opened:
// every socket that is neither listening nor accepted by one of its
// listeners (an accepted connection has the listener's local address).
func Outbound(pid int) ([]netip.AddrPort, error) {
	socks, err := TCPSockets(pid)
	if err != nil {
		return nil, err
	}
	listening := map[uint16]bool{}
	for _, s := range socks {
		if s.State == tcpListen {
			listening[s.Local.Port()] = true
		}
	}
	var out []netip.AddrPort
	for _, s := range socks {
		if s.State == tcpListen || listening[s.Local.Port()] || !s.Remote.Addr().IsValid() || s.Remote.Addr().IsUnspecified() {
			continue
		}
		out = append(out, s.Remote)
	}
	return out, nil
}

// Listening returns the addresses pid listens on.
func Listening(pid int) ([]netip.AddrPort, error) {
	socks, err := TCPSockets(pid)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, s := range socks {
		if s.State == tcpListen {
			out = append(out, s.Local)
		}
	}
	return out, nil
}

// Children returns the processes whose parent is pid and whose command
// name (proc(5) comm) is name, or any name when name is "".
func Children(pid int, name string) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) || (name != "" && s[open+1:end] != name) {
			continue
		}
		if child, err := strconv.Atoi(strings.TrimSpace(s[:open])); err == nil {
			out = append(out, child)
		}
	}
	slices.Sort(out)
	return out
}

// Endpoints watches the connections processes open, sampling their
// socket tables every 50 ms from WatchEndpoints until Stop.
type Endpoints struct {
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	seen   map[string]map[netip.AddrPort]int // process label -> remote -> samples
	listen map[string]map[netip.AddrPort]bool
	n      int
}

// WatchEndpoints starts sampling the outbound connections of the
// processes procs returns (labels to pids, asked again at each sample,
// so that a restarted child is followed).
func WatchEndpoints(t testing.TB, procs func() map[string][]int) *Endpoints {
	e := &Endpoints{stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]map[netip.AddrPort]int{},
		listen: map[string]map[netip.AddrPort]bool{}}
	go func() {
		defer close(e.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			e.sample(procs())
			select {
			case <-e.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(e.Stop)
	return e
}

func (e *Endpoints) sample(procs map[string][]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	for label, pids := range procs {
		for _, pid := range pids {
			remotes, err := Outbound(pid)
			if err != nil {
				continue // exited meanwhile
			}
			listening, _ := Listening(pid)
			if e.seen[label] == nil {
				e.seen[label] = map[netip.AddrPort]int{}
				e.listen[label] = map[netip.AddrPort]bool{}
			}
			for _, l := range listening {
				e.listen[label][l] = true
			}
			for _, r := range remotes {
				e.seen[label][r]++
			}
		}
	}
}

// Stop ends the sampling (safe to call more than once).
func (e *Endpoints) Stop() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	<-e.done
}

// Listeners returns, per process label, every address it was seen
// listening on.
func (e *Endpoints) Listeners() map[string]map[netip.AddrPort]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]map[netip.AddrPort]bool{}
	for l, m := range e.listen {
		out[l] = map[netip.AddrPort]bool{}
		for a := range m {
			out[l][a] = true
		}
	}
	return out
}

// Seen returns, per process label, every remote endpoint seen and in how
// many samples, and the number of samples.
func (e *Endpoints) Seen() (map[string]map[netip.AddrPort]int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]map[netip.AddrPort]int{}
	for l, m := range e.seen {
		out[l] = map[netip.AddrPort]int{}
		for r, n := range m {
			out[l][r] = n
		}
	}
	return out, e.n
}
