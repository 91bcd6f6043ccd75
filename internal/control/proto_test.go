package control

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSplitArgs(t *testing.T) {
	args, err := splitArgs(`  a b=c d="e f\"g" "h\\i" j=`)
	if err != nil {
		t.Fatal(err)
	}
	want := []arg{
		{Value: "a"},
		{Key: "b", Value: "c", HasEq: true},
		{Key: "d", Value: `e f"g`, HasEq: true, Quoted: true},
		{Value: `h\i`, Quoted: true},
		{Key: "j", Value: "", HasEq: true},
	}
	if len(args) != len(want) {
		t.Fatalf("got %+v", args)
	}
	for i := range want {
		if args[i] != want[i] {
			t.Fatalf("arg %d: got %+v want %+v", i, args[i], want[i])
		}
	}
	for _, bad := range []string{`"abc`, `a="x`, `a"b`, `"x"y`, `=v`, `k="v"w`, `"\`} {
		if _, err := splitArgs(bad); err == nil {
			t.Errorf("%q: expected error", bad)
		}
	}
}

func TestQuoteUnquote(t *testing.T) {
	for _, s := range []string{"", "plain", `a"b\c`, "tab\tnl\ncr\r", "\x00\x01\xff ü"} {
		q := quote(s)
		got, n, err := unquote(q)
		if err != nil || got != s || n != len(q) {
			t.Fatalf("%q -> %q -> %q (%v)", s, q, got, err)
		}
	}
	if got, _, _ := unquote(`"\101\x42\q"`); got != "ABq" {
		t.Fatalf("escapes: %q", got)
	}
	if _, _, err := unquote(`"\777"`); err == nil {
		t.Fatal("octal > 255 accepted")
	}
}

func TestReplyFormat(t *testing.T) {
	got := string(newReply(250).Line("a=b").Data("k=", ".dot\nline\n").Bytes())
	want := "250-a=b\r\n250+k=\r\n..dot\r\nline\r\n.\r\n250 OK\r\n"
	if got != want {
		t.Fatalf("got %q", got)
	}
	if got := string(newReply(250).Bytes()); got != "250 OK\r\n" {
		t.Fatalf("empty: %q", got)
	}
	if got := string(newReply(552).Line("x").Line("y").Bytes()); got != "552-x\r\n552 y\r\n" {
		t.Fatalf("multi: %q", got)
	}
}

func TestReadCommand(t *testing.T) {
	in := "GETINFO  version\r\n+LOADCONF x\r\nline1\r\n..line2\n.\r\nquit\n"
	r := bufio.NewReader(strings.NewReader(in))
	c, err := readCommand(r, 1000)
	if err != nil || c.Keyword != "GETINFO" || c.Args != "version" || c.Multiline {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = readCommand(r, 1000)
	if err != nil || c.Keyword != "LOADCONF" || !c.Multiline || c.Args != "x" || c.Data != "line1\n.line2" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = readCommand(r, 1000)
	if err != nil || c.Keyword != "quit" {
		t.Fatalf("%+v %v", c, err)
	}
	r = bufio.NewReader(strings.NewReader(strings.Repeat("x", 10000) + "\r\n"))
	if _, err := readCommand(r, 5000); err != errLineTooLong {
		t.Fatalf("long line: %v", err)
	}
	r = bufio.NewReader(strings.NewReader("+X\r\n" + strings.Repeat("y\r\n", 5000)))
	if _, err := readCommand(r, 5000); err != errLineTooLong {
		t.Fatalf("long data: %v", err)
	}
}

func TestFormatEventUnknown(t *testing.T) {
	if FormatEvent(Event{Type: "ORCONN"}) != nil || FormatEvent(Event{Type: EventCirc}) != nil {
		t.Fatal("expected nil")
	}
	if got := string(FormatEvent(Event{Type: EventBW, Read: 1, Written: 2})); got != "650 BW 1 2\r\n" {
		t.Fatal(got)
	}
}

// FuzzCommandParser feeds arbitrary bytes through the command reader and
// the argument tokenizer; neither may panic, and quoted values must
// round-trip through quote.
func FuzzCommandParser(f *testing.F) {
	for _, s := range []string{
		"GETINFO version\r\n", `AUTHENTICATE "pass\"word"` + "\r\n",
		"+LOADCONF\r\n..x\r\n.\r\n", `SETCONF a=b c="d e" f` + "\n",
		`AUTHCHALLENGE SAFECOOKIE "\001\xff"` + "\r\n", "\r\n", "\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 64; i++ {
			cmd, err := readCommand(r, 4096)
			if err != nil {
				break
			}
			if strings.ContainsAny(cmd.Keyword, " \t\n") {
				t.Fatalf("keyword %q has space", cmd.Keyword)
			}
			args, err := splitArgs(cmd.Args)
			if err != nil {
				continue
			}
			for _, a := range args {
				if a.HasEq && a.Key == "" {
					t.Fatal("empty key")
				}
				q := quote(a.Value)
				v, n, err := unquote(q)
				if err != nil || v != a.Value || n != len(q) {
					t.Fatalf("quote round trip of %q: %q %v", a.Value, v, err)
				}
			}
		}
	})
}

// FuzzSession runs arbitrary input through an authenticated control
// connection backed by the fake backend: no handler may panic or hang.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"GETINFO version circuit-status ns/id/" + strings.Repeat("A", 40) + "\r\n",
		"SETCONF SocksPort=1 SocksPort=\"2\" ExitNodes\r\nGETCONF socksport\r\n",
		"SETEVENTS CIRC STREAM BW\r\nSIGNAL NEWNYM\r\n", "MAPADDRESS a=b c\r\n",
		"+LOADCONF\r\n.\r\n", "AUTHCHALLENGE SAFECOOKIE 00\r\n", "RESETCONF SocksPort\r\n",
		"USEFEATURE X\r\nTAKEOWNERSHIP\r\nDROPOWNERSHIP\r\nPROTOCOLINFO 1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newFakeBackend()
		s, err := New(Config{AllowNullAuth: true, MaxCommandLength: 1 << 16, BWInterval: time.Hour}, b)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.init(); err != nil {
			t.Fatal(err)
		}
		cli, srv := net.Pipe()
		c := s.newConn(srv)
		done := make(chan struct{})
		go func() {
			c.serve()
			close(done)
		}()
		go io.Copy(io.Discard, cli)
		cli.Write([]byte("AUTHENTICATE\r\n"))
		cli.Write(data)
		cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session hung")
		}
	})
}
