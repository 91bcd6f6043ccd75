package engine_test

// Run-time configuration against the private network of C tor relays:
// SETCONF opens and closes listeners while streams on the others go on,
// node restrictions and DisableNetwork take effect at once, options that
// cannot change are refused, and the owning controller's exit stops gotor.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/engine"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

// ctl is a minimal controller: commands and their replies in order,
// asynchronous events on a channel.
type ctl struct {
	t       *testing.T
	conn    net.Conn
	replies chan []string
	events  chan string
}

func dialCtl(t *testing.T, addr string) *ctl {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &ctl{t: t, conn: conn, replies: make(chan []string, 16), events: make(chan string, 1024)}
	go func() {
		r := bufio.NewReader(conn)
		var cur []string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				close(c.replies)
				return
			}
			l = strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, "650+") && len(cur) == 0 {
				// A multi-line event (HS_DESC_CONTENT): its data and
				// "650 OK" make one event, lines joined by "\n".
				ev := []string{l}
				for {
					d, err := r.ReadString('\n')
					if err != nil {
						close(c.replies)
						return
					}
					d = strings.TrimRight(d, "\r\n")
					ev = append(ev, d)
					if d == "650 OK" {
						break
					}
				}
				l = strings.Join(ev, "\n")
			}
			if strings.HasPrefix(l, "650") && len(cur) == 0 {
				select {
				case c.events <- l:
				default:
				}
				continue
			}
			cur = append(cur, l)
			if len(l) >= 4 && l[3] == '+' {
				for {
					d, err := r.ReadString('\n')
					if err != nil {
						close(c.replies)
						return
					}
					d = strings.TrimRight(d, "\r\n")
					cur = append(cur, d)
					if d == "." {
						break
					}
				}
			}
			if len(l) >= 4 && l[3] == ' ' {
				c.replies <- cur
				cur = nil
			}
		}
	}()
	c.do("AUTHENTICATE", "250 OK")
	return c
}

// do sends cmd and checks that the reply's last line starts with want.
func (c *ctl) do(cmd, want string) []string {
	c.t.Helper()
	fmt.Fprintf(c.conn, "%s\r\n", cmd)
	select {
	case r, ok := <-c.replies:
		if !ok {
			c.t.Fatalf("%s: connection closed", cmd)
		}
		if !strings.HasPrefix(r[len(r)-1], want) {
			c.t.Fatalf("%s: got %q, want %q", cmd, r, want)
		}
		return r
	case <-time.After(60 * time.Second):
		c.t.Fatalf("%s: no reply", cmd)
	}
	return nil
}

// waitEvent returns the first event line containing all of want.
func (c *ctl) waitEvent(within time.Duration, want ...string) string {
	c.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-c.events:
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(e, w)
			}
			if ok {
				return e
			}
		case <-deadline:
			c.t.Fatalf("no event with %q within %v", want, within)
		}
	}
}

func startEngine(t *testing.T, cfg *config.Config, wait bool) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg, itest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- e.Start(ctx)
	}()
	if wait {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	} else {
		t.Cleanup(func() { cancel(); <-done })
	}
	return e
}

// echo writes a line on conn and checks it comes back.
func echo(t *testing.T, conn net.Conn, line string) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo of %q: %q %v", line, got, err)
	}
}

func socksDial(t *testing.T, socks, target, user string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := itest.SOCKSDial(ctx, socks, target, user)
	if err != nil {
		t.Fatalf("SOCKS %s -> %s: %v", socks, target, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestSetConfListenersAndNodes(t *testing.T) {
	n := testnet.Shared(t)
	cfg := itest.Config(t, n)
	portA, portB := itest.FreePort(t), itest.FreePort(t)
	addrA, addrB := fmt.Sprintf("127.0.0.1:%d", portA), fmt.Sprintf("127.0.0.1:%d", portB)
	cfg.SocksPorts = []config.PortConfig{config.DefaultPort(addrA)}
	cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}}
	e := startEngine(t, cfg, true)
	c := dialCtl(t, e.ControlAddr().String())
	c.do("SETEVENTS CONF_CHANGED", "250 OK")
	target := echoServer(t)

	// A stream on port A lives through every change of the other ports.
	onA := socksDial(t, addrA, target, "a")
	echo(t, onA, "first")

	c.do(fmt.Sprintf(`SETCONF SocksPort=%s SocksPort="%s IsolateDestPort"`, addrA, addrB), "250 OK")
	c.waitEvent(10*time.Second, "CONF_CHANGED")
	if got := e.SocksAddrs(); len(got) != 2 || got[0] != addrA || got[1] != addrB {
		t.Fatalf("SocksAddrs %v", got)
	}
	echo(t, onA, "after adding B")
	onB := socksDial(t, addrB, target, "b")
	echo(t, onB, "on B")
	c.do("GETCONF SocksPort", "250 SocksPort="+addrB+" IsolateDestPort")

	// Drop A: it stops listening, its stream goes on.
	c.do(fmt.Sprintf(`SETCONF SocksPort="%s IsolateDestPort"`, addrB), "250 OK")
	if _, err := net.DialTimeout("tcp", addrA, 5*time.Second); err == nil {
		t.Error("port A still accepts after SETCONF dropped it")
	}
	echo(t, onA, "A is gone, its stream is not")
	echo(t, onB, "B untouched")
	// New flags on B: B keeps its socket and its stream.
	c.do(fmt.Sprintf(`SETCONF SocksPort="%s IsolateDestAddr"`, addrB), "250 OK")
	echo(t, onB, "B with new flags")
	echo(t, socksDial(t, addrB, target, "b2"), "new stream on B")

	// A second ControlPort; the first connection stays.
	c.do("SETCONF ControlPort=127.0.0.1:0 ControlPort=127.0.0.1:0", "250 OK")
	r := c.do("GETINFO net/listeners/control", "250 OK")
	if strings.Count(r[0], "127.0.0.1:") != 2 {
		t.Errorf("control listeners %q", r)
	}

	// MetricsPort opened and closed.
	mport := itest.FreePort(t)
	c.do(fmt.Sprintf(`SETCONF MetricsPort=127.0.0.1:%d MetricsPortPolicy="accept 127.0.0.1"`, mport), "250 OK")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "gotor_bootstrap_percent 100") {
		t.Errorf("metrics: %.200s", body)
	}
	c.do("RESETCONF MetricsPort", "250 OK")
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", mport), 5*time.Second); err == nil {
		t.Error("MetricsPort still open after RESETCONF")
	}

	// ExitNodes: every circuit from now on ends at that exit.
	exit := n.Exits()[0]
	c.do("SETCONF ExitNodes=$"+exit.Fingerprint, "250 OK")
	for i := 0; i < 3; i++ {
		conn := socksDial(t, addrB, target, fmt.Sprintf("exitnodes-%d", i))
		echo(t, conn, "via the chosen exit")
		var circ uint64
		for _, s := range e.Streams() {
			if s.Source == conn.LocalAddr().String() {
				circ = s.CircuitID
			}
		}
		for _, ci := range e.Circuits() {
			if ci.ID == circ && !strings.EqualFold(ci.Path[len(ci.Path)-1].Fingerprint, exit.Fingerprint) {
				t.Errorf("stream %d ended at %s, not the ExitNodes relay %s", i, ci.Path[len(ci.Path)-1].Nickname, exit.Nickname)
			}
		}
		if circ == 0 {
			t.Errorf("stream %d not found", i)
		}
	}
	c.do("GETCONF ExitNodes", "250 ExitNodes=$"+exit.Fingerprint)

	// Refused, and nothing changes: immutable options, bad values, a
	// listener that cannot open.
	c.do("SETCONF DataDirectory=/nowhere", "553 Transition not allowed: While Tor is running, changing DataDirectory is not allowed")
	c.do("SETCONF MaxCircuitDirtiness=soon", "513 Unacceptable option value")
	c.do(`SETCONF TCPProxy="haproxy 1.2.3.4:5"`, "513 Unacceptable option value")
	c.do("SETCONF UseBridges=1 Bridge=1.2.3.4:5", "553 Transition not allowed: While gotor is running, changing UseBridges is not supported (restart gotor)")
	c.do("SETCONF Socks5Proxy=127.0.0.1:1", "553 Transition not allowed: While gotor is running, changing Socks5Proxy is not supported (restart gotor)")
	c.do("SETCONF NoSuchOption=1", "552 Unrecognized option")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	c.do(fmt.Sprintf("SETCONF SocksPort=%s MaxCircuitDirtiness=42", busy.Addr()), "553 Unable to set option")
	c.do("GETCONF MaxCircuitDirtiness", "250 MaxCircuitDirtiness=600")
	echo(t, onB, "B survived the refused changes")

	// DisableNetwork: listeners and connections close; 0 brings them back.
	c.do("SETCONF DisableNetwork=1", "250 OK")
	if got := e.SocksAddrs(); len(got) != 0 {
		t.Errorf("SOCKS listeners with DisableNetwork 1: %v", got)
	}
	// Its connections to relays closed, B's stream ends.
	onB.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(onB); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("stream on B after DisableNetwork: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(e.Circuits()) != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("circuits with DisableNetwork 1: %v", e.Circuits())
		}
	}
	c.do("SETCONF DisableNetwork=0", "250 OK")
	echo(t, socksDial(t, addrB, target, "back"), "network back")
}

// With DisableNetwork 1 gotor touches no relay until a controller sets it
// to 0; then it bootstraps. __OwningControllerProcess: when that process
// exits, gotor asks to shut down.
func TestDisableNetworkAtStartAndOwner(t *testing.T) {
	n := testnet.Shared(t)
	owner := exec.Command("sleep", "600")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	defer owner.Process.Kill()
	cfg := itest.Config(t, n)
	cfg.DisableNetwork = true
	cfg.OwningControllerProcess = owner.Process.Pid
	cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}}
	e := startEngine(t, cfg, false)
	for e.ControlAddr() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	c := dialCtl(t, e.ControlAddr().String())
	c.do("SETEVENTS STATUS_CLIENT", "250 OK")
	c.do("TAKEOWNERSHIP", "250 OK")
	c.do("RESETCONF __OwningControllerProcess", "250 OK")
	c.do("GETCONF __OwningControllerProcess", "250 __OwningControllerProcess")
	// Nothing happens without the network: no bootstrap phase past 0, no
	// directory fetch, no listener.
	time.Sleep(2 * time.Second)
	if p := e.Bootstrap(); p.Percent != 0 {
		t.Errorf("bootstrap at %v with DisableNetwork 1", p)
	}
	if s := e.DirectoryStats(); s.ConsensusDownloads != 0 || s.MicrodescRequests != 0 {
		t.Errorf("directory traffic with DisableNetwork 1: %+v", s)
	}
	if a := e.SocksAddrs(); len(a) != 0 {
		t.Errorf("SOCKS listener with DisableNetwork 1: %v", a)
	}
	c.do("SETCONF DisableNetwork=0", "250 OK")
	c.waitEvent(2*time.Minute, "STATUS_CLIENT", "BOOTSTRAP", "PROGRESS=100")
	addrs := e.SocksAddrs()
	if len(addrs) != 1 {
		t.Fatalf("SocksAddrs %v", addrs)
	}
	echo(t, socksDial(t, addrs[0], echoServer(t), ""), "bootstrapped after DisableNetwork 0")

	// RESETCONF stopped the watch: the owner's exit changes nothing; its
	// control connection going away does (TAKEOWNERSHIP).
	owner.Process.Kill()
	owner.Wait()
	select {
	case <-e.Shutdown():
		t.Fatal("shut down although __OwningControllerProcess was reset")
	case <-time.After(3 * time.Second):
	}
	c.conn.Close()
	select {
	case <-e.Shutdown():
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown after the owning connection closed")
	}

	// A watched owner that exits shuts gotor down.
	owner2 := exec.Command("sleep", "600")
	if err := owner2.Start(); err != nil {
		t.Fatal(err)
	}
	cfg2 := itest.Config(t, n)
	cfg2.DisableNetwork = true
	cfg2.OwningControllerProcess = owner2.Process.Pid
	e2 := startEngine(t, cfg2, false)
	owner2.Process.Kill()
	owner2.Wait()
	select {
	case <-e2.Shutdown():
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown after the owning process exited")
	}
}

// echoServer listens on 127.0.0.1 and echoes every connection until the
// test ends; it returns the address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(conn, conn)
			}()
		}
	}()
	return ln.Addr().String()
}
