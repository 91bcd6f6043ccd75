package pt

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a hostile or broken transport program
// (GOTOR_FAKE_PT set): it writes the lines of GOTOR_FAKE_PT_OUT, with
// "@SOCKS" replaced by the address of a small SOCKS5 listener it runs
// (which records the username and password it receives in
// GOTOR_FAKE_PT_AUTHFILE and then closes), and then behaves as
// GOTOR_FAKE_PT says:
//
//	exit     exit with status 3 at once
//	stay     exit when stdin closes (pt-spec §3.4)
//	stubborn ignore stdin closing and SIGTERM (killed in the end)
//	term     ignore stdin closing, exit on SIGTERM
//
// GOTOR_FAKE_PT_ENVFILE, if set, receives its TOR_PT_* environment.
func TestMain(m *testing.M) {
	if mode := os.Getenv("GOTOR_FAKE_PT"); mode != "" {
		fakeTransport(mode)
		return
	}
	os.Exit(m.Run())
}

func fakeTransport(mode string) {
	if f := os.Getenv("GOTOR_FAKE_PT_ENVFILE"); f != "" {
		var env []string
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "TOR_PT_") {
				env = append(env, kv)
			}
		}
		os.WriteFile(f, []byte(strings.Join(env, "\n")), 0o600)
	}
	out := os.Getenv("GOTOR_FAKE_PT_OUT")
	if strings.Contains(out, "@SOCKS") {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(4)
		}
		go fakeSOCKS(l, os.Getenv("GOTOR_FAKE_PT_AUTHFILE"))
		out = strings.ReplaceAll(out, "@SOCKS", l.Addr().String())
	}
	fmt.Print(out)
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "fake transport: giving up")
		os.Exit(3)
	case "stay":
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		select {}
	case "term":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		<-c
		os.Exit(0)
	}
	os.Exit(5)
}

// fakeSOCKS accepts SOCKS5 connections with username/password auth,
// records the credentials and the CONNECT destination, and answers
// "succeeded" and then echoes.
func fakeSOCKS(l net.Listener, authFile string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			var b [2]byte
			io.ReadFull(br, b[:])
			methods := make([]byte, b[1])
			io.ReadFull(br, methods)
			c.Write([]byte{5, 2})
			io.ReadFull(br, b[:])
			user := make([]byte, b[1])
			io.ReadFull(br, user)
			var pl [1]byte
			io.ReadFull(br, pl[:])
			pass := make([]byte, pl[0])
			io.ReadFull(br, pass)
			c.Write([]byte{1, 0})
			var h [4]byte
			io.ReadFull(br, h[:])
			var dst [6]byte
			io.ReadFull(br, dst[:])
			os.WriteFile(authFile, []byte(fmt.Sprintf("%q %q %d.%d.%d.%d:%d", user, pass, dst[0], dst[1], dst[2], dst[3], int(dst[4])<<8|int(dst[5]))), 0o600)
			c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 1})
			io.Copy(c, br)
		}()
	}
}

// fakePlugin returns a managed Plugin running the fake transport.
func fakePlugin(t *testing.T, mode, out string, transports ...string) Plugin {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOTOR_FAKE_PT", mode)
	t.Setenv("GOTOR_FAKE_PT_OUT", out)
	if len(transports) == 0 {
		transports = []string{"fake"}
	}
	return Plugin{Transports: transports, Path: exe}
}

func testConfig(t *testing.T) Config {
	return Config{StateDir: t.TempDir() + "/pt_state", StopGrace: 300 * time.Millisecond, StartTimeout: 10 * time.Second}
}
