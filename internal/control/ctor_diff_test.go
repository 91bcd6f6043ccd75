package control

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

// diffSessions are command sequences, one connection each, whose replies
// must be byte-identical between C tor and this server (both configured
// with HashedControlPassword only and no cookie). Values that depend on
// the backend (version, listeners, traffic) are avoided.
var diffSessions = [][]string{
	{"GETINFO version"},
	{"PROTOCOLINFO x"},
	{`AUTHENTICATE "wrong"`},
	{"AUTHENTICATE nothex"},
	{"AUTHCHALLENGE SAFECOOKIE 00"},
	{"AUTHCHALLENGE FOO"},
	{"AUTHENTICATE a b"},
	{"AUTHENTICATE k=v"},
	{"PROTOCOLINFO 1 2", "PROTOCOLINFO"},
	{"QUIT"},
	{`AUTHENTICATE "foo"`, "FROB", "+GETINFO\r\n.", "SETEVENTS FOO", "SETEVENTS CIRC STREAM EXTENDED",
		"SETEVENTS", "SIGNAL FOO", "SIGNAL", "SIGNAL NEWNYM X", "GETINFO nonsense", "GETINFO",
		"GETCONF Nope Nada", "GETCONF", "USEFEATURE VERBOSE_NAMES", "USEFEATURE FOO",
		"DROPOWNERSHIP", "TAKEOWNERSHIP", "DROPOWNERSHIP", "SETCONF", "RESETCONF", `SETCONF a="b`,
		"MAPADDRESS", "MAPADDRESS foo", "GETINFO version nonsense", "getinfo traffic/read x/y",
		"QUIT"},
}

// replyTimeout bounds the wait for a reply. Both servers answer at once;
// the bound only turns a server that never answers into a failure
// instead of a hang.
const replyTimeout = 15 * time.Second

// runSession sends each command and reads its whole reply (control-spec
// §2.3: mid lines "NNN-", data lines "NNN+" up to a lone ".", and the
// final "NNN " line), or "<EOF>" when the connection is closed instead.
// A last entry probes the connection with QUIT, so a server that closes
// after a reply differs from one that keeps the connection open. The test
// waits for replies, never for a quiet period: no reply within
// replyTimeout fails it.
func runSession(t *testing.T, addr string, cmds []string) []string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	var out []string
	for _, cmd := range append(cmds, "(probe) QUIT") {
		nc.Write([]byte(strings.TrimPrefix(cmd, "(probe) ") + "\r\n"))
		nc.SetReadDeadline(time.Now().Add(replyTimeout))
		got, err := readReply(r)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: %q: no complete reply within %v (got %q)", addr, cmd, replyTimeout, got)
		}
		if err != nil {
			got += "<EOF>"
		}
		out = append(out, fmt.Sprintf("%-28s %q", cmd, got))
		if err != nil {
			break
		}
	}
	return out
}

// readReply reads one reply and returns its lines as sent; after a QUIT
// reply it also reads the close (error io.EOF).
func readReply(r *bufio.Reader) (string, error) {
	var got strings.Builder
	for {
		l, err := r.ReadString('\n')
		got.WriteString(l)
		if err != nil {
			return got.String(), err
		}
		if len(l) < 4 {
			continue
		}
		switch l[3] {
		case '+': // data up to a line with a lone "."
			for {
				d, err := r.ReadString('\n')
				got.WriteString(d)
				if err != nil {
					return got.String(), err
				}
				if d == ".\r\n" {
					break
				}
			}
		case ' ':
			if strings.HasPrefix(l, "250 closing connection") {
				_, err := r.ReadByte()
				return got.String(), err
			}
			return got.String(), nil
		}
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDifferentialCTor compares replies with the installed C tor
// (DisableNetwork 1), skipping if tor is not installed.
func TestDifferentialCTor(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	tor := testnet.NeedTool(t, "tor")
	dd := t.TempDir()
	os.Chmod(dd, 0o700)
	torAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, tor, "--DataDirectory", dd, "--ControlPort", torAddr,
		"--SocksPort", "0", "--CookieAuthentication", "0", "--HashedControlPassword", torHashFoo,
		"--DisableNetwork", "1", "--Log", "err file "+filepath.Join(dd, "log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", torAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tor control port did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	ts := startServer(t, func(c *Config) { c.CookieAuthentication = false })
	torVer := torVersion(t, tor)
	for _, sess := range diffSessions {
		want := runSession(t, torAddr, sess)
		got := runSession(t, ts.addr, sess)
		for i := range want {
			// Only the version string may differ.
			got[i] = strings.ReplaceAll(got[i], ts.b.Version(), "VERSION")
			want[i] = strings.ReplaceAll(want[i], torVer, "VERSION")
			if got[i] != want[i] {
				t.Errorf("differs from C tor:\n  C tor: %s\n  gotor: %s", want[i], got[i])
			}
		}
	}
}

// torVersion returns "0.4.9.11" from `tor --version`.
func torVersion(t *testing.T, tor string) string {
	out, err := exec.Command(tor, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		t.Fatalf("tor --version: %q", out)
	}
	return strings.TrimSuffix(f[2], ".")
}
