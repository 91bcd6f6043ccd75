package main

// Hosting v3 onion services (rend-spec-v3 §2.2 publication, §3-§4
// introduction and rendezvous), gotor against C tor in the same run: for
// each repetition a fresh service process of each kind, started from the
// same torrc (the network's client torrc with "SocksPort 0", a
// ControlPort, "DisableNetwork 1", HiddenServiceDir and HiddenServicePort
// 80 to the data server), alternately first. The bench subscribes to
// HS_DESC events (control-spec §4.1.25), sets DisableNetwork 0 and times
// from then to "Bootstrapped 100%", to the first HS_DESC UPLOADED (the
// first descriptor on an HSDir) and to the moment every upload of the
// first round was answered. Then both clients (whose processes the other
// phases use) fetch 50 KiB cold from the service (neither has its
// descriptor; time to first byte from the SOCKS request of the attempt
// that succeeded) and 10 MiB (throughput over the whole download).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// hostBulkSize is the download through each hosted service.
const hostBulkSize = 10 << 20

// hostingResult is one service's measurements; the arrays are indexed
// by the client kind that fetched.
type hostingResult struct {
	boot, published, allUploaded time.Duration
	uploads, failed              int
	cold                         [2]time.Duration
	mibps                        [2]float64
}

func (b *bench) onionHosting(ctx context.Context) error {
	reps := 5
	if b.o.quick {
		reps = 1
	}
	for i := 0; i < reps; i++ {
		for _, host := range order(i) {
			if err := b.hostOnce(ctx, host, order(i+1)); err != nil {
				return fmt.Errorf("service hosted by %v: %w", host, err)
			}
		}
		progress("  hosting: %d/%d reps", i+1, reps)
	}
	return nil
}

func (b *bench) hostOnce(ctx context.Context, host clientKind, clients [2]clientKind) error {
	s, err := b.l.startService(ctx, host, b.srv.port)
	if err != nil {
		return err
	}
	defer s.stop()
	var res hostingResult
	if res, err = s.publish(ctx); err != nil {
		return err
	}
	progress("  %v-hosted %s: bootstrapped %v, first descriptor on an HSDir %v, all %d uploads answered (%d failed) %v after DisableNetwork 0",
		host, s.hostname[:8], res.boot.Round(time.Millisecond), res.published.Round(time.Millisecond), res.uploads, res.failed,
		res.allUploaded.Round(time.Millisecond))
	for _, k := range clients {
		var t transfer
		for try := 0; ; try++ {
			tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			t, err = downloadPort(tctx, b.cl[k].socks, s.hostname, 80, 50<<10)
			cancel()
			if err == nil || try == 10 || ctx.Err() != nil {
				break
			}
			progress("  %v client, cold fetch from the %v-hosted service failed (%v); again", k, host, err)
			time.Sleep(2 * time.Second)
		}
		if err != nil {
			return fmt.Errorf("%v client: cold fetch: %w", k, err)
		}
		res.cold[k] = t.ttfb
		tctx, cancel := context.WithTimeout(ctx, 300*time.Second)
		t, err = downloadPort(tctx, b.cl[k].socks, s.hostname, 80, hostBulkSize)
		cancel()
		if err != nil {
			return fmt.Errorf("%v client: 10 MiB: %w", k, err)
		}
		res.mibps[k] = float64(hostBulkSize) / (1 << 20) / t.ttlb.Seconds()
		progress("  %v client from the %v-hosted service: cold first byte %v, 10 MiB at %.2f MiB/s",
			k, host, res.cold[k].Round(time.Millisecond), res.mibps[k])
	}
	b.r.hosting[host] = append(b.r.hosting[host], res)
	return nil
}

// serviceProc is a gotor or C tor process hosting one onion service.
type serviceProc struct {
	kind     clientKind
	cmd      *exec.Cmd
	done     chan struct{}
	hsDir    string
	hostname string // read once published (gotor writes it after bootstrapping)
	booted   chan time.Time
	ctl      net.Conn
	lines    chan string // control-port lines
}

// startService starts a process of kind k hosting a service whose port
// 80 goes to 127.0.0.1:target, with DisableNetwork 1; publish starts it.
func (l *launcher) startService(ctx context.Context, k clientKind, target int) (*serviceProc, error) {
	l.seq++
	dir := filepath.Join(l.workDir, fmt.Sprintf("service-%s-%d", strings.ReplaceAll(k.String(), " ", ""), l.seq))
	data, hs := filepath.Join(dir, "data"), filepath.Join(dir, "hs")
	for _, d := range []string{data, hs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	ctlPort, err := freePort()
	if err != nil {
		return nil, err
	}
	torrc := strings.Replace(l.net.ClientTorrc(data, 0), "SocksPort 127.0.0.1:0\n", "SocksPort 0\n", 1) +
		fmt.Sprintf("ControlPort 127.0.0.1:%d\nDisableNetwork 1\nHiddenServiceDir %s\nHiddenServicePort 80 127.0.0.1:%d\n", ctlPort, hs, target) +
		l.extraTorrc
	torrcPath := filepath.Join(dir, "torrc")
	if err := os.WriteFile(torrcPath, []byte(torrc), 0o600); err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if k == kindGotor {
		cmd = exec.Command(l.gotorBin, "-f", torrcPath, "--Log", "notice stdout")
	} else {
		cmd = exec.Command(l.torBin, "--defaults-torrc", l.empty, "-f", torrcPath, "--Log", "notice stdout")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	s := &serviceProc{kind: k, hsDir: hs, cmd: cmd, done: make(chan struct{}), booted: make(chan time.Time, 1), lines: make(chan string, 1024)}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			if !sent && strings.Contains(sc.Text(), "Bootstrapped 100%") {
				s.booted <- time.Now()
				sent = true
			}
		}
	}()
	go func() { cmd.Wait(); close(s.done) }()
	addr := fmt.Sprintf("127.0.0.1:%d", ctlPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s.ctl, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%v service process exited: %v", k, cmd.ProcessState)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%v service: no control port: %v", k, err)
		}
	}
	go func() {
		sc := bufio.NewScanner(s.ctl)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			default: // nobody reads after publish: later events are dropped
			}
		}
		close(s.lines)
	}()
	for _, c := range []string{"AUTHENTICATE", "SETEVENTS HS_DESC"} {
		if err := s.command(c); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// command sends one command and waits for its final reply line.
func (s *serviceProc) command(c string) error {
	if _, err := fmt.Fprintf(s.ctl, "%s\r\n", c); err != nil {
		return err
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return fmt.Errorf("%s: control connection closed", c)
			}
			if strings.HasPrefix(l, "650") || len(l) < 4 || l[3] != ' ' {
				continue
			}
			if !strings.HasPrefix(l, "250") {
				return fmt.Errorf("%s: %s", c, l)
			}
			return nil
		case <-timeout:
			return fmt.Errorf("%s: no reply", c)
		}
	}
}

// publish sets DisableNetwork 0 and waits until every upload of the
// first round is answered (HS_DESC UPLOADED or FAILED for each UPLOAD).
func (s *serviceProc) publish(ctx context.Context) (hostingResult, error) {
	var r hostingResult
	start := time.Now()
	if _, err := fmt.Fprintf(s.ctl, "SETCONF DisableNetwork=0\r\n"); err != nil {
		return r, err
	}
	timeout := time.After(120 * time.Second)
	answered := 0
	for {
		select {
		case t := <-s.booted:
			r.boot = t.Sub(start)
		case l, ok := <-s.lines:
			if !ok {
				return r, fmt.Errorf("%v service: control connection closed", s.kind)
			}
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != "650" || f[1] != "HS_DESC" {
				if len(l) > 3 && l[3] == ' ' && !strings.HasPrefix(l, "250") {
					return r, fmt.Errorf("SETCONF DisableNetwork=0: %s", l)
				}
				continue
			}
			now := time.Since(start)
			switch f[2] {
			case "UPLOAD":
				r.uploads++
			case "UPLOADED":
				answered++
				if r.published == 0 {
					r.published = now
				}
			case "FAILED":
				answered++
				r.failed++
			}
			if r.uploads > 0 && answered >= r.uploads && r.published > 0 {
				r.allUploaded = now
				b, err := os.ReadFile(filepath.Join(s.hsDir, "hostname"))
				if err != nil {
					return r, fmt.Errorf("%v service: %v", s.kind, err)
				}
				s.hostname = strings.TrimSpace(string(b))
				if r.boot == 0 {
					select {
					case t := <-s.booted:
						r.boot = t.Sub(start)
					default:
					}
				}
				return r, nil
			}
		case <-s.done:
			return r, fmt.Errorf("%v service process exited: %v", s.kind, s.cmd.ProcessState)
		case <-timeout:
			return r, fmt.Errorf("%v service: %d uploads, %d answered, first UPLOADED after %v, within 120 s", s.kind, r.uploads, answered, r.published)
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (s *serviceProc) stop() {
	if s.ctl != nil {
		s.ctl.Close()
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}
