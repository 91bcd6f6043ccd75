package client_test

// A control-port session (control-spec §3) against the in-process engine
// on the private network: what a controller such as stem or nyx sees of
// a stream. CI also runs it under -race (the control server, the engine's
// event fan-out and the circuit pool at once).

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/itest"
)

// ctlConn is a control connection: replies in order, asynchronous
// events ("650" lines, control-spec §4.1) apart.
type ctlConn struct {
	t       *testing.T
	nc      net.Conn
	replies chan []string
	events  chan string
}

func dialControl(t *testing.T, addr string) *ctlConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &ctlConn{t: t, nc: nc, replies: make(chan []string, 16), events: make(chan string, 1024)}
	go func() {
		defer close(c.replies)
		r := bufio.NewReader(nc)
		var reply []string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, "650") {
				select {
				case c.events <- l:
				default: // a slow test drops events rather than block the reader
				}
				continue
			}
			reply = append(reply, l)
			if len(l) >= 4 && l[3] == '+' { // data up to "."
				for {
					d, err := r.ReadString('\n')
					if err != nil {
						return
					}
					d = strings.TrimRight(d, "\r\n")
					reply = append(reply, d)
					if d == "." {
						break
					}
				}
			}
			if len(l) >= 4 && l[3] == ' ' {
				c.replies <- reply
				reply = nil
			}
		}
	}()
	return c
}

// do sends cmd and returns its reply; the reply must start with "250".
func (c *ctlConn) do(cmd string) []string {
	c.t.Helper()
	fmt.Fprintf(c.nc, "%s\r\n", cmd)
	select {
	case r, ok := <-c.replies:
		if !ok {
			c.t.Fatalf("%s: connection closed", cmd)
		}
		if !strings.HasPrefix(r[0], "250") {
			c.t.Fatalf("%s: %q", cmd, r)
		}
		return r
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s: no reply within 30 s", cmd)
	}
	return nil
}

// waitEvent returns the first event for which match is true.
func (c *ctlConn) waitEvent(what string, match func(string) bool) string {
	c.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case e := <-c.events:
			if match(e) {
				return e
			}
		case <-timeout:
			c.t.Fatalf("no %s event within 60 s", what)
		}
	}
}

func TestControlSession(t *testing.T) {
	_, n, srv := shared(t)
	cfg := testConfig(t, n)
	cfg.SocksPorts = cfg.SocksPorts[:1]
	cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}}
	cfg.CookieAuthentication = true
	g := itest.Open(t, cfg, nil)

	cookie, err := os.ReadFile(filepath.Join(cfg.DataDirectory, "control_auth_cookie"))
	if err != nil {
		t.Fatal(err)
	}
	c := dialControl(t, g.ControlAddr().String())
	c.do("AUTHENTICATE " + hex.EncodeToString(cookie))
	c.do("SETEVENTS CIRC STREAM")

	// A stream through the SOCKS port, held open until the events are in.
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := itest.SOCKSDial(ctx, g.SocksAddrs()[0], target, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// 650 STREAM <id> SUCCEEDED <circ> <target> (control-spec §4.1.2).
	ev := c.waitEvent("STREAM SUCCEEDED", func(e string) bool {
		f := strings.Fields(e)
		return len(f) >= 6 && f[1] == "STREAM" && f[3] == "SUCCEEDED" && f[5] == target
	})
	f := strings.Fields(ev)
	streamID, circID := f[2], f[4]

	status := strings.Join(c.do("GETINFO circuit-status"), "\n")
	if !strings.Contains(status, "\n"+circID+" BUILT ") {
		t.Errorf("GETINFO circuit-status does not list circuit %s BUILT:\n%s", circID, status)
	}
	streams := strings.Join(c.do("GETINFO stream-status"), "\n")
	if !strings.Contains(streams, streamID+" SUCCEEDED "+circID+" "+target) {
		t.Errorf("GETINFO stream-status does not list stream %s on circuit %s:\n%s", streamID, circID, streams)
	}

	io.Copy(io.Discard, conn) // the server answers and closes
	conn.Close()
	c.waitEvent("STREAM CLOSED", func(e string) bool {
		f := strings.Fields(e)
		return len(f) >= 4 && f[1] == "STREAM" && f[2] == streamID && f[3] == "CLOSED"
	})
	c.do("QUIT")
	t.Logf("stream %s on circuit %s: SUCCEEDED, listed by GETINFO, CLOSED", streamID, circID)
}
