package testnet

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"sort"
	"testing"
	"time"
)

// echoServer echoes every connection until EOF, then closes it.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func startTestProxy(t *testing.T, target string, delay time.Duration, rate int64) *delayProxy {
	t.Helper()
	p, err := startDelayProxy("127.0.0.1:0", target, delay, rate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// pingRTTs sends n one-byte pings over c and returns the round-trip times.
func pingRTTs(t *testing.T, c net.Conn, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	b := []byte{0}
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestDelayProxyRTT measures the round-trip time the proxy adds: every
// ping must take at least twice the one-way delay (a correctness bound;
// the measured numbers are logged, never asserted from above).
func TestDelayProxyRTT(t *testing.T) {
	const delay = 25 * time.Millisecond
	target := echoServer(t)
	direct, err := net.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	base := pingRTTs(t, direct, 20)

	p := startTestProxy(t, target, delay, 0)
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rtts := pingRTTs(t, c, 20)
	if rtts[0] < 2*delay {
		t.Fatalf("fastest RTT through the proxy %v, want >= %v (2 x one-way delay)", rtts[0], 2*delay)
	}
	t.Logf("RTT direct: median %v; through a %v proxy: min %v, median %v, added %v",
		base[len(base)/2], delay, rtts[0], rtts[len(rtts)/2], rtts[len(rtts)/2]-base[len(base)/2])
}

// TestDelayProxyIntegrity sends 8 MiB through the proxy and back while
// reading concurrently: every byte arrives, in order, and a half-close
// is passed on (the echo server sees EOF and closes, and so do we).
func TestDelayProxyIntegrity(t *testing.T) {
	p := startTestProxy(t, echoServer(t), 5*time.Millisecond, 0)
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 8<<20)
	rand.Read(data)
	go func() {
		for off := 0; off < len(data); off += 1000 { // many small writes
			if _, err := c.Write(data[off:min(off+1000, len(data))]); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c) // ends only if the half-close went through
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("got %d bytes back, want the %d sent, in order", len(got), len(data))
	}
}

// TestDelayProxyBackpressure writes into a target that never reads: the
// proxy's queue stops at its limit instead of growing with what the
// sender offers.
func TestDelayProxyBackpressure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // never read from
		}
	}()
	p := startTestProxy(t, ln.Addr().String(), time.Millisecond, 0)
	p.limit = 64 << 10
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sink := <-accepted
	defer sink.Close()

	const offered = 64 << 20 // far more than the kernel buffers on the way
	written := make(chan int, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		n := 0
		c.SetWriteDeadline(time.Now().Add(3 * time.Second))
		for n < offered {
			m, err := c.Write(chunk)
			n += m
			if err != nil {
				break
			}
		}
		written <- n
	}()
	n := <-written
	if n >= offered {
		t.Fatalf("wrote all %d bytes into a receiver that never reads", n)
	}
	hw := p.highWater()
	if hw > p.limit {
		t.Fatalf("proxy queued %d bytes, limit %d", hw, p.limit)
	}
	t.Logf("sender stopped after %d bytes; proxy queue high water %d (limit %d)", n, hw, p.limit)
}

// TestDelayProxyRate checks a rate-limited link: 1 MiB at 4 MiB/s cannot
// arrive in less than 250 ms (a lower bound, not a timing assertion).
func TestDelayProxyRate(t *testing.T) {
	const rate = 4 << 20
	p := startTestProxy(t, echoServer(t), time.Millisecond, rate)
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("rate"), (1<<20)/4)
	start := time.Now()
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	el := time.Since(start)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo through rate-limited proxy: %d bytes, %v", len(got), err)
	}
	// Each direction runs at the rate; the echo pipelines them, so the
	// bound is one direction's serialisation time.
	if min := time.Duration(len(data)) * time.Second / rate; el < min {
		t.Fatalf("1 MiB at %d B/s took %v, less than %v", rate, el, min)
	}
	t.Logf("1 MiB echoed at %d B/s per direction in %v", rate, el)
}

// TestDelayProxyClose closes the proxy under a live connection: the
// client sees the connection end and Close returns.
func TestDelayProxyClose(t *testing.T) {
	p, err := startDelayProxy("127.0.0.1:0", echoServer(t), time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pingRTTs(t, c, 1)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after the proxy closed succeeded")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection still open after the proxy closed")
	}
	// A connection to an unreachable target is closed at once.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p2 := startTestProxy(t, dead, time.Millisecond, 0)
	c2, err := net.Dial("tcp", p2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a proxied connection to a closed port succeeded")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("proxied connection to a closed port stayed open")
	}
}
