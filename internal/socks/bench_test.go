package socks

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
)

// BenchmarkParseSOCKS5 measures parsing one SOCKS5 handshake with
// username/password and a hostname, from memory.
func BenchmarkParseSOCKS5(b *testing.B) {
	in := hexBytes(5, 1, 2, 1, 5, "alice", 6, "secret", 5, 1, 0, 3, 11, "example.com", 1, 187)
	o := &handshakeOpts{warnUnsafe: func(Protocol, string, uint16, bool) {}}
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 1024)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(in)
		br.Reset(r)
		if _, err := readHandshake(br, io.Discard, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnectRoundTrip measures a full SOCKS5 CONNECT over loopback
// TCP to a local echo server, one byte echoed, connection closed.
func BenchmarkConnectRoundTrip(b *testing.B) {
	h := &testHandler{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	h.echo = echo.Addr().(*net.TCPAddr)
	s := &Server{Handler: h}
	go s.Serve(ln)
	defer s.Close()
	req := hexBytes(5, 1, 0, 5, 1, 0, 3, 9, "echo.test", 0, 80, "x")
	buf := make([]byte, 13)
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Write(req)
		if _, err := io.ReadFull(c, buf); err != nil || buf[3] != 0 || buf[12] != 'x' {
			b.Fatalf("%x %v", buf, err)
		}
		c.Close()
		h.mu.Lock()
		h.reqs = nil
		h.mu.Unlock()
	}
}
