package socks

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

// startCTor runs a C tor that cannot reach any relay, with a SocksPort, so that
// its replies to handshakes that fail before any circuit is needed can
// be compared with ours.
// It returns the SocksPort and HTTPTunnelPort addresses.
func startCTor(t *testing.T, safeSocks bool) (string, string) {
	t.Helper()
	tor := testnet.NeedTool(t, "tor")
	freeAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	addr, httpAddr := freeAddr(), freeAddr()
	dir := t.TempDir()
	safe := "0"
	if safeSocks {
		safe = "1"
	}
	// An authority nobody listens for: tor opens its SocksPort but never
	// bootstraps, so only handshake errors get an answer.
	torrc := fmt.Sprintf("DataDirectory %s\nSocksPort %s\nHTTPTunnelPort %s\nSafeSocks %s\nLog notice file %s\n"+
		"TestingTorNetwork 1\nDirAuthority a orport=1 no-v2 v3ident=%s 127.0.0.1:1 %s\n",
		dir, addr, httpAddr, safe, filepath.Join(dir, "log"), strings.Repeat("A", 40), strings.Repeat("B", 40))
	path := filepath.Join(dir, "torrc")
	os.WriteFile(path, []byte(torrc), 0o600)
	cmd := exec.Command(tor, "--defaults-torrc", os.DevNull, "-f", path, "--hush")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// Ready once it answers a method selection.
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Write([]byte{5, 1, 0})
			c.SetReadDeadline(time.Now().Add(time.Second))
			r := make([]byte, 2)
			n, _ := c.Read(r)
			c.Close()
			if bytes.Equal(r[:n], []byte{5, 0}) {
				return addr, httpAddr
			}
		}
	}
	t.Fatal("C tor did not open its SocksPort")
	return "", ""
}

// TestRepliesAgainstCTor sends the same failing handshakes to C tor and
// to our server and compares the replies byte for byte.
func TestRepliesAgainstCTor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts C tor")
	}
	port := []byte{0, 80}
	// Each case is a list of writes; replies are read after each write.
	// (C tor answers only the last message of a pipelined handshake, so
	// the steps are sent one by one.)
	type step = []byte
	cases := []struct {
		name string
		safe bool
		in   []step
		// differs explains a deliberate difference; the case then only
		// checks that both refuse.
		differs string
	}{
		{name: "socks5 bind", in: []step{hexBytes(5, 1, 0), hexBytes(5, 2, 0, 3, 5, "a.com", port)}},
		{name: "socks5 udp", in: []step{hexBytes(5, 1, 0), hexBytes(5, 3, 0, 3, 5, "a.com", port)}},
		{name: "socks5 bad atyp", in: []step{hexBytes(5, 1, 0), hexBytes(5, 1, 0, 9, 1, 2, 3, 4, port)},
			differs: "RFC 1928 says X'08' (address type not supported); C tor sends general failure"},
		{name: "socks5 resolve_ptr of name", in: []step{hexBytes(5, 1, 0), hexBytes(5, 0xF1, 0, 3, 5, "a.com", port)}},
		{name: "socks5 no acceptable method", in: []step{hexBytes(5, 1, 0x80)}},
		{name: "socks5 userpass method", in: []step{hexBytes(5, 1, 2), hexBytes(1, 1, "u", 1, "p"), hexBytes(5, 2, 0, 3, 5, "a.com", port)}},
		{name: "socks5 prefers userpass", in: []step{hexBytes(5, 2, 0, 2), hexBytes(1, 1, "u", 1, "p"), hexBytes(5, 2, 0, 3, 5, "a.com", port)}},
		{name: "socks5 auth after noauth", in: []step{hexBytes(5, 1, 0), hexBytes(1, 1, "u", 1, "p"), hexBytes(5, 2, 0, 3, 5, "a.com", port)}},
		{name: "socks5 empty credentials", in: []step{hexBytes(5, 1, 2), hexBytes(1, 0, 0), hexBytes(5, 2, 0, 3, 5, "a.com", port)}},
		{name: "socks5 safesocks ipv4", safe: true, in: []step{hexBytes(5, 1, 0), hexBytes(5, 1, 0, 1, 10, 0, 0, 1, port)}},
		{name: "socks5 safesocks ipv6", safe: true, in: []step{hexBytes(5, 1, 0), hexBytes(5, 1, 0, 4, make([]byte, 15), 1, port)}},
		{name: "socks4 bind", in: []step{hexBytes(4, 2, port, 1, 2, 3, 4, 0)}},
		{name: "socks4 port zero", in: []step{hexBytes(4, 1, 0, 0, 1, 2, 3, 4, 0)}},
		{name: "socks4 safesocks", safe: true, in: []step{hexBytes(4, 1, port, 1, 2, 3, 4, 0)}},
		{name: "unknown version", in: []step{hexBytes(6, 1, 0)}},
		{name: "http on socks port", in: []step{[]byte("GET / HTTP/1.0\r\n\r\n")}},
	}
	addrs := map[bool]string{}
	var httpAddr string
	for _, safe := range []bool{false, true} {
		addrs[safe], httpAddr = startCTor(t, safe)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ours := startServer(t, &Server{SafeSocks: c.safe})
			want := converse(t, addrs[c.safe], c.in)
			got := converse(t, ours, c.in)
			if strings.HasPrefix(string(want), "HTTP/") {
				// Same status line; the page text is ours.
				want, got = firstLine(want), firstLine(got)
			}
			if c.differs != "" {
				if len(got) != len(want) || bytes.Equal(got, want) {
					t.Errorf("expected a different code of the same shape (%s): ours %x, C tor %x", c.differs, got, want)
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ours %x, C tor %x", got, want)
			}
		})
	}

	// HTTP CONNECT requests that fail before a stream is needed. C tor
	// 0.4.9 closes without sending the error text it queued for GET and
	// for unparsable requests, and answers a CONNECT without a port with
	// "502 Bad Gateway (tor protocol violation)"; we answer 405 and 400.
	// Both must refuse; ours must be the status given.
	// theirs is C tor's first line; "" means it closed without a byte.
	httpCases := []struct{ name, in, ours, theirs string }{
		{"get", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.0 405 ", ""},
		{"no port", "CONNECT example.com HTTP/1.1\r\n\r\n", "HTTP/1.0 400 ", "HTTP/1.0 502 Bad Gateway"},
		{"garbage", "\x00\x01\x02 nonsense\r\n\r\n", "HTTP/1.0 400 ", ""},
	}
	h := &testHandler{echo: echoServer(t)}
	s := &Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeHTTPTunnel(ln)
	defer s.Close()
	for _, c := range httpCases {
		t.Run("http "+c.name, func(t *testing.T) {
			theirs := string(firstLine(converse(t, httpAddr, [][]byte{[]byte(c.in)})))
			got := string(firstLine(converse(t, ln.Addr().String(), [][]byte{[]byte(c.in)})))
			if c.theirs == "" && theirs != "" || !strings.HasPrefix(theirs, c.theirs) {
				t.Errorf("C tor answered %q, want %q", theirs, c.theirs)
			}
			if !strings.HasPrefix(got, c.ours) {
				t.Errorf("ours %q, want %q (C tor: %q)", got, c.ours, theirs)
			}
		})
	}
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// replyTimeout bounds the wait for an answer. Both servers answer at
// once; the bound only turns a server that never answers into a failure
// instead of a hang.
const replyTimeout = 15 * time.Second

// converse sends each step and reads the server's answer to it. Every
// step but the last is a SOCKS5 method selection or an RFC 1929
// subnegotiation, whose reply is 2 bytes; the last one is refused, so its
// answer is everything up to the close that follows. A server that
// closes early ends the conversation (the remaining steps are not sent).
// The test waits for the reply and the close, never for a quiet period:
// a server that neither answers nor closes within replyTimeout fails it.
func converse(t *testing.T, addr string, steps [][]byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []byte
	for i, s := range steps {
		if _, err := c.Write(s); err != nil {
			return out // closed after the previous answer
		}
		c.SetReadDeadline(time.Now().Add(replyTimeout))
		var b []byte
		if i < len(steps)-1 {
			b = make([]byte, 2)
			var n int
			n, err = io.ReadFull(c, b)
			b = b[:n]
		} else {
			b, err = io.ReadAll(c)
		}
		out = append(out, b...)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: step %d (%x): no answer within %v (got %x)", addr, i, s, replyTimeout, out)
		}
		if err != nil {
			return out // EOF or reset: closed
		}
	}
	return out
}
