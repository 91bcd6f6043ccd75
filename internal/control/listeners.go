// Control listeners: TCP ControlPorts and Unix sockets (tor(1)
// ControlPort, ControlSocket), opened and closed while the server runs
// (SETCONF ControlPort, control-spec §3.1), and the
// ControlPortWriteToFile file that names them.
package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// ListenerConfig is one control listener: a TCP address or a Unix socket.
type ListenerConfig struct {
	// Addr is "host:port" for TCP; port 0 picks a free port.
	Addr string
	// Unix is the socket path; the socket is created with mode 0600
	// (0660 with GroupWritable).
	Unix          string
	GroupWritable bool
}

func (lc ListenerConfig) String() string {
	if lc.Unix != "" {
		return "unix:" + lc.Unix
	}
	return lc.Addr
}

// listener is an open control listener.
type listener struct {
	cfg ListenerConfig
	l   net.Listener
	// retired is set before a listener that Reconfigure dropped is
	// closed, so its accept loop ends quietly.
	retired atomic.Bool
}

func (ln *listener) close() {
	ln.retired.Store(true)
	ln.l.Close() // a Unix listener removes its socket file
}

// checkListeners refuses listener sets that cannot be right.
func checkListeners(cfg Config) error {
	for _, lc := range cfg.Listeners {
		switch {
		case lc.Addr != "" && lc.Unix != "":
			return fmt.Errorf("control: listener with both a TCP address and a socket path (%q, %q)", lc.Addr, lc.Unix)
		case lc.Addr == "" && lc.Unix == "":
			return errors.New("control: listener without an address")
		case lc.Addr != "" && !cfg.AllowNonLoopback && !isLoopbackAddr(lc.Addr):
			return fmt.Errorf("control: refusing non-loopback ControlPort %q", lc.Addr)
		}
	}
	return nil
}

func openListener(lc ListenerConfig) (*listener, error) {
	if lc.Unix == "" {
		l, err := net.Listen("tcp", lc.Addr)
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		return &listener{cfg: lc, l: l}, nil
	}
	if fi, err := os.Lstat(lc.Unix); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(lc.Unix) // stale socket from a previous run
	}
	l, err := net.Listen("unix", lc.Unix)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	mode := os.FileMode(0o600)
	if lc.GroupWritable {
		mode = 0o660
	}
	if err := os.Chmod(lc.Unix, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return &listener{cfg: lc, l: l}, nil
}

// setListeners makes the open listeners those of want, keeping the ones
// already open, and rewrites the port file of cfg. On error nothing
// changes. Callers hold s.reconf.
func (s *Server) setListeners(want []ListenerConfig, cfg Config) error {
	s.mu.Lock()
	cur := slices.Clone(s.listeners)
	s.mu.Unlock()
	var next, opened []*listener
	used := make([]bool, len(cur))
	fail := func(err error) error {
		for _, ln := range opened {
			ln.close()
		}
		return err
	}
	for _, lc := range want {
		i := -1
		for j, ln := range cur {
			if !used[j] && ln.cfg == lc {
				i = j
				break
			}
		}
		if i >= 0 {
			used[i] = true
			next = append(next, cur[i])
			continue
		}
		ln, err := openListener(lc)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, ln)
		next = append(next, ln)
	}
	for i, ln := range cur {
		if ln.cfg == (ListenerConfig{}) { // given to Serve: not ours to close
			used[i] = true
			next = append(next, ln)
		}
	}
	if err := writePortFile(cfg, next); err != nil {
		return fail(err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(net.ErrClosed)
	}
	s.listeners = next
	for _, ln := range opened {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.acceptLoop(ln)
		}()
	}
	s.mu.Unlock()
	for i, ln := range cur {
		if !used[i] {
			ln.close()
		}
	}
	for _, ln := range opened {
		s.log.Info("control: opened listener", "addr", ln.l.Addr().String())
	}
	return nil
}

// writePortFile writes ControlPortWriteToFile (C tor's format: one
// "PORT=ADDR:PORT" or "UNIX_PORT=PATH" line per listener).
func writePortFile(cfg Config, ls []*listener) error {
	if cfg.PortWriteToFile == "" {
		return nil
	}
	var b strings.Builder
	for _, ln := range ls {
		if ln.l.Addr().Network() == "unix" {
			b.WriteString("UNIX_PORT=" + ln.l.Addr().String() + "\n")
		} else {
			b.WriteString("PORT=" + ln.l.Addr().String() + "\n")
		}
	}
	mode := os.FileMode(0o600)
	if cfg.PortFileGroupReadable {
		mode = 0o640
	}
	if err := writeFileAtomic(cfg.PortWriteToFile, []byte(b.String()), mode); err != nil {
		return fmt.Errorf("control: ControlPortWriteToFile: %w", err)
	}
	return nil
}
