// One managed client transport process: the environment it is started
// with (pt-spec §3.2.1, §3.2.2), the configuration protocol on its
// standard output (§3, steps 2-5; C tor's handle_proxy_line state
// machine: launched, accepting methods, configured), its LOG and STATUS
// lines afterwards (§3.3.4, §3.3.5) and its shutdown (§3.4: close stdin,
// wait, SIGTERM, wait, SIGKILL).

package pt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Config configures managed transports.
type Config struct {
	// StateDir is TOR_PT_STATE_LOCATION, where transports keep state
	// (C tor: DataDirectory/pt_state). It is created if missing. Required.
	StateDir string
	// Proxy is TOR_PT_PROXY, the outbound proxy transports must use, as
	// a URI (proxy.URI builds it from Socks4Proxy, Socks5Proxy or
	// HTTPSProxy); empty means none. A transport that does not accept it
	// (no PROXY DONE) is not used: pt-spec §4, fail closed.
	Proxy string
	// StartTimeout bounds the configuration protocol when the context
	// has no deadline (0: 60 s).
	StartTimeout time.Duration
	// StopGrace is how long Close waits after closing the transport's
	// stdin, and again after SIGTERM, before it kills the process
	// (0: 2 s).
	StopGrace time.Duration
	// Log receives lifecycle messages, the transport's LOG lines (at
	// their severity) and its standard error (at debug). nil: discard.
	Log *slog.Logger
	// OnStatus, if set, receives every STATUS line's values (for the
	// control port's PT_STATUS event). It must not block.
	OnStatus func(p Plugin, values Args)
	// OnExit, if set, is called once when a started transport process
	// ends without Close having asked it to (err says how). It must
	// not block.
	OnExit func(p Plugin, err error)
}

func (c *Config) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Error is a failure of a managed transport: it could not be started,
// failed or refused the configuration protocol, or exited.
type Error struct {
	Transports []string
	Path       string
	Msg        string
	Err        error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("pt: transport %s (%s): %s", strings.Join(e.Transports, ","), e.Path, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// maxLine bounds one line of a transport's output; longer lines are
// dropped (and fail the configuration protocol while it runs).
const maxLine = 16 << 10

// stderrTail is how many lines of standard error an exit error quotes.
const stderrTail = 5

// Process is a running managed transport. Its methods are safe for
// concurrent use.
type Process struct {
	plugin Plugin
	cfg    Config
	log    *slog.Logger
	cmd    *exec.Cmd
	stdin  *os.File
	outR   *os.File
	errR   *os.File

	// configuration result, sent once by readStdout
	configured chan error

	mu         sync.Mutex
	methods    map[string]Method
	methodErrs map[string]string
	tail       []string // last lines of stderr
	running    bool     // configured and handed to the caller
	closing    bool
	exitErr    error

	done      chan struct{} // closed once the process has exited and the readers stopped
	closeOnce sync.Once
}

// Start launches a managed transport (p.Managed() must hold) with every
// transport of its line in TOR_PT_CLIENT_TRANSPORTS, and returns once it
// has finished the configuration protocol (CMETHODS DONE). On error the
// process is stopped. ctx bounds the start only.
func Start(ctx context.Context, p Plugin, cfg Config) (*Process, error) {
	if !p.Managed() {
		return nil, &Error{Transports: p.Transports, Path: p.Protocol + " " + p.Addr, Msg: "not a managed (exec) transport"}
	}
	fail := func(msg string, err error) error {
		return &Error{Transports: p.Transports, Path: p.Path, Msg: msg, Err: err}
	}
	if cfg.StateDir == "" {
		return nil, fail("no state directory configured", nil)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fail("creating state directory", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		t := cfg.StartTimeout
		if t <= 0 {
			t = 60 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}

	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = environment(p, cfg)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fail("pipe", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fail("pipe", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fail("pipe", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fail("cannot start the program", err)
	}
	pr := &Process{
		plugin: p, cfg: cfg, cmd: cmd, stdin: inW, outR: outR, errR: errR,
		log:        cfg.logger().With("transport", strings.Join(p.Transports, ","), "path", p.Path),
		configured: make(chan error, 1),
		methods:    map[string]Method{},
		methodErrs: map[string]string{},
		done:       make(chan struct{}),
	}
	pr.log.Info("managed transport started", "pid", cmd.Process.Pid)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); pr.readStdout() }()
	go func() { defer readers.Done(); pr.readStderr() }()
	go pr.wait(&readers)

	select {
	case err = <-pr.configured:
	case <-ctx.Done():
		err = fail("no CMETHODS DONE in time", context.Cause(ctx))
	}
	if err != nil {
		pr.Close()
		return nil, err
	}
	pr.mu.Lock()
	pr.running = true
	pr.mu.Unlock()
	pr.log.Info("managed transport configured", "methods", len(pr.Methods()))
	return pr, nil
}

// environment is the process environment, C tor's
// create_managed_proxy_environment for a client: ours, without TOR_PT_*
// variables, plus the pt-spec ones.
func environment(p Plugin, cfg Config) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOR_PT_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION="+cfg.StateDir,
		"TOR_PT_CLIENT_TRANSPORTS="+strings.Join(p.Transports, ","),
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	)
	if cfg.Proxy != "" {
		env = append(env, "TOR_PT_PROXY="+cfg.Proxy)
	}
	return env
}

// Plugin returns the line the process was started from.
func (pr *Process) Plugin() Plugin { return pr.plugin }

// Pid returns the process id.
func (pr *Process) Pid() int { return pr.cmd.Process.Pid }

// Methods returns the transports' listeners (CMETHOD lines) by name.
func (pr *Process) Methods() map[string]Method {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	out := make(map[string]Method, len(pr.methods))
	for k, v := range pr.methods {
		out[k] = v
	}
	return out
}

// Method returns the listener of one transport, or an error saying why
// there is none (its CMETHOD-ERROR message, if it sent one).
func (pr *Process) Method(transport string) (Method, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if m, ok := pr.methods[transport]; ok {
		return m, nil
	}
	msg := "the program offers no transport " + transport
	if e, ok := pr.methodErrs[transport]; ok {
		msg = "the program could not launch transport " + transport + " (CMETHOD-ERROR " + e + ")"
	}
	return Method{}, &Error{Transports: pr.plugin.Transports, Path: pr.plugin.Path, Msg: msg}
}

// Done is closed when the process has exited.
func (pr *Process) Done() <-chan struct{} { return pr.done }

// Err returns how the process ended (nil while it runs).
func (pr *Process) Err() error {
	select {
	case <-pr.done:
	default:
		return nil
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.exitErr
}

// Close stops the transport (pt-spec §3.4): it closes its standard input,
// waits StopGrace, sends SIGTERM (where there is one), waits StopGrace
// again and then kills it. It returns once the process has exited. It is
// idempotent.
func (pr *Process) Close() error {
	pr.closeOnce.Do(func() {
		pr.mu.Lock()
		pr.closing = true
		pr.mu.Unlock()
		grace := pr.cfg.StopGrace
		if grace <= 0 {
			grace = 2 * time.Second
		}
		pr.stdin.Close()
		select {
		case <-pr.done:
			return
		case <-time.After(grace):
		}
		pr.log.Debug("managed transport ignored its closed stdin; terminating")
		if terminate(pr.cmd.Process) == nil {
			select {
			case <-pr.done:
				return
			case <-time.After(grace):
			}
		}
		pr.log.Warn("managed transport did not exit; killing it")
		pr.cmd.Process.Kill()
		<-pr.done
	})
	return nil
}

// wait reaps the process, lets the readers drain what it wrote and then
// closes done.
func (pr *Process) wait(readers *sync.WaitGroup) {
	werr := pr.cmd.Wait()
	// A child of the transport may hold the pipes open: give the
	// readers a moment to read what the transport wrote, then cut them.
	drained := make(chan struct{})
	go func() { readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(time.Second):
		pr.outR.Close()
		pr.errR.Close()
		<-drained
	}
	pr.outR.Close()
	pr.errR.Close()
	pr.stdin.Close()

	pr.mu.Lock()
	closing, running := pr.closing, pr.running
	msg := "exited"
	if werr != nil {
		msg = "exited (" + werr.Error() + ")"
	}
	if len(pr.tail) > 0 {
		msg += "; its last standard error lines: " + strings.Join(pr.tail, " | ")
	}
	pr.exitErr = &Error{Transports: pr.plugin.Transports, Path: pr.plugin.Path, Msg: msg}
	exitErr := pr.exitErr
	pr.mu.Unlock()
	// A configuration still waiting learns that the process is gone.
	select {
	case pr.configured <- exitErr:
	default:
	}
	close(pr.done)
	if closing {
		pr.log.Info("managed transport stopped")
		return
	}
	pr.log.Warn("managed transport exited", "err", exitErr)
	if running && pr.cfg.OnExit != nil {
		pr.cfg.OnExit(pr.plugin, exitErr)
	}
}

// Configuration protocol states (C tor's PT_PROTO_*).
type protoState int

const (
	stateLaunched protoState = iota
	stateAccepting
	stateConfigured
	stateBroken
)

func (pr *Process) readStdout() {
	lr := newLineReader(pr.outR)
	state := stateLaunched
	proxyDone := false
	fail := func(format string, args ...any) {
		state = stateBroken
		err := &Error{Transports: pr.plugin.Transports, Path: pr.plugin.Path, Msg: fmt.Sprintf(format, args...)}
		select {
		case pr.configured <- err:
		default:
		}
	}
	for {
		line, tooLong, err := lr.next()
		if err != nil {
			if state == stateLaunched || state == stateAccepting {
				// wait reports the exit.
				pr.log.Debug("managed transport closed its stdout during configuration")
			}
			return
		}
		if tooLong {
			if state == stateLaunched || state == stateAccepting {
				fail("wrote a line longer than %d bytes during configuration", maxLine)
			} else {
				pr.log.Warn("managed transport wrote an over-long line; dropped", "max", maxLine)
			}
			continue
		}
		msg, perr := ParseLine(line)
		if perr != nil {
			switch {
			case state == stateLaunched || state == stateAccepting:
				if isLogStatus(line) {
					pr.log.Warn("managed transport wrote a bad line", "err", perr)
					continue
				}
				fail("failed the configuration protocol: %v", perr)
			case state == stateConfigured:
				pr.log.Warn("managed transport wrote a bad line", "err", perr)
			}
			continue
		}
		switch msg.Kind {
		case KindLog:
			pr.logLine(msg.Values)
			continue
		case KindStatus:
			if pr.cfg.OnStatus != nil {
				pr.cfg.OnStatus(pr.plugin, msg.Values)
			}
			continue
		case KindUnknown:
			pr.log.Debug("managed transport wrote an unknown line; ignored", "keyword", msg.Text)
			continue
		}
		switch state {
		case stateLaunched:
			switch msg.Kind {
			case KindVersion:
				if msg.Text != "1" {
					fail("chose configuration protocol version %q; only version 1 exists", msg.Text)
					continue
				}
				state = stateAccepting
			case KindVersionError:
				fail("could not pick a configuration protocol version (VERSION-ERROR %s)", msg.Text)
			case KindEnvError:
				fail("did not understand its environment (ENV-ERROR %s)", msg.Text)
			default:
				fail("wrote %s before VERSION", msg.Kind)
			}
		case stateAccepting:
			switch msg.Kind {
			case KindCMethod:
				pr.mu.Lock()
				if pr.plugin.Provides(msg.Method.Transport) {
					pr.methods[msg.Method.Transport] = msg.Method
				}
				pr.mu.Unlock()
				pr.log.Debug("managed transport listener", "name", msg.Method.Transport, "protocol", msg.Method.Protocol, "addr", msg.Method.Addr)
			case KindCMethodError:
				pr.mu.Lock()
				pr.methodErrs[msg.Method.Transport] = msg.Text
				pr.mu.Unlock()
				pr.log.Warn("managed transport could not launch a transport", "name", msg.Method.Transport, "msg", msg.Text)
			case KindProxyDone:
				if pr.cfg.Proxy == "" {
					pr.log.Debug("managed transport sent PROXY DONE though no proxy was configured")
				}
				proxyDone = true
			case KindProxyError:
				fail("refused the outbound proxy (PROXY-ERROR %s)", msg.Text)
			case KindEnvError: // "at any point" (pt-spec §3.3.1)
				fail("did not understand its environment (ENV-ERROR %s)", msg.Text)
			case KindCMethodsDone:
				if pr.cfg.Proxy != "" && !proxyDone {
					fail("finished without accepting the outbound proxy (no PROXY DONE); not using it, so that no connection bypasses the proxy")
					continue
				}
				if len(pr.Methods()) == 0 {
					pr.log.Warn("managed transport launched no transport listener")
				}
				state = stateConfigured
				select {
				case pr.configured <- nil:
				default:
				}
			default:
				fail("wrote %s after VERSION", msg.Kind)
			}
		case stateConfigured, stateBroken:
			pr.log.Debug("managed transport line after configuration; ignored", "kind", msg.Kind.String())
		}
	}
}

func isLogStatus(line string) bool {
	return strings.HasPrefix(line, "LOG ") || strings.HasPrefix(line, "STATUS ")
}

// logLine logs a LOG line at its severity (C tor's
// managed_proxy_severity_parse: error, warning, notice, info, debug).
func (pr *Process) logLine(vals Args) {
	sev, _ := vals.Get("SEVERITY")
	text, _ := vals.Get("MESSAGE")
	level := slog.LevelDebug
	switch sev {
	case "error":
		level = slog.LevelError
	case "warning":
		level = slog.LevelWarn
	case "notice":
		level = slog.LevelInfo
	}
	pr.log.Log(context.Background(), level, "managed transport: "+text)
}

func (pr *Process) readStderr() {
	lr := newLineReader(pr.errR)
	for {
		line, _, err := lr.next()
		if err != nil {
			return
		}
		pr.log.Debug("managed transport stderr", "line", line)
		pr.mu.Lock()
		if len(line) > 200 {
			line = line[:200] + "..."
		}
		pr.tail = append(pr.tail, line)
		if len(pr.tail) > stderrTail {
			pr.tail = pr.tail[1:]
		}
		pr.mu.Unlock()
	}
}

// lineReader reads newline-terminated lines of at most maxLine bytes;
// longer ones are skipped and reported as tooLong.
type lineReader struct{ br *bufio.Reader }

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxLine)}
}

func (l *lineReader) next() (line string, tooLong bool, err error) {
	b, err := l.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = l.br.ReadSlice('\n')
		}
		if err != nil {
			return "", false, err
		}
		return "", true, nil
	}
	if err != nil {
		if len(b) > 0 && err == io.EOF {
			return string(b), false, nil // last line without newline
		}
		return "", false, err
	}
	return string(b[:len(b)-1]), false, nil
}
