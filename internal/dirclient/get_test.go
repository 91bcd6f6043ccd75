package dirclient

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz/lzma"
)

// fakeDir answers one request on a net.Pipe with respond (a hostile or
// well-behaved directory) and returns the client end and the request
// text it received.
func fakeDir(t *testing.T, respond func(w io.Writer)) (net.Conn, <-chan string) {
	t.Helper()
	client, server := net.Pipe()
	reqc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		br := bufio.NewReader(server)
		var req strings.Builder
		for {
			l, err := br.ReadString('\n')
			req.WriteString(l)
			if err != nil || l == "\r\n" {
				break
			}
		}
		reqc <- req.String()
		respond(server)
	}()
	t.Cleanup(func() { client.Close(); <-done })
	return client, reqc
}

func deflate(parts ...string) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		zw := zlib.NewWriter(&b)
		zw.Write([]byte(p))
		zw.Close()
	}
	return b.Bytes()
}

func TestGet(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	for _, tc := range []struct {
		name, path, header string
		body               []byte
		want, wantEnc      string
	}{
		{"identity", "/tor/keys/all", "", []byte("doc\n"), "doc\n", "identity"},
		{"deflate", "/tor/keys/all.z", "Content-Encoding: deflate\r\n", deflate("doc\n"), "doc\n", "deflate"},
		{"deflate unnamed", "/tor/keys/all.z", "", deflate("doc\n"), "doc\n", "deflate"},
		{"concatenated deflate", "/tor/micro/d/x.z", "Content-Encoding: deflate\r\n", deflate("a\n", "b\n"), "a\nb\n", "deflate"},
		{"gzip", "/tor/keys/all", "Content-Encoding: gzip\r\n", gz("doc\n"), "doc\n", "gzip"},
		{"content-length", "/x", "Content-Length: 4\r\n", []byte("doc\nIGNORED"), "doc\n", "identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, reqc := fakeDir(t, func(w io.Writer) {
				io.WriteString(w, "HTTP/1.0 200 OK\r\n"+tc.header+"\r\n")
				w.Write(tc.body)
			})
			resp, err := Get(context.Background(), conn, "dir1", Request{
				Path: tc.path, Host: "127.0.0.1:80", AcceptEncoding: []string{"deflate", "identity"},
				Header: map[string]string{"X-Or-Diff-From-Consensus": "AB"}, MaxBody: 100,
			})
			if err != nil {
				t.Fatal(err)
			}
			if string(resp.Body) != tc.want || resp.Encoding != tc.wantEnc {
				t.Errorf("body %q encoding %q, want %q %q", resp.Body, resp.Encoding, tc.want, tc.wantEnc)
			}
			req := <-reqc
			for _, want := range []string{"GET " + tc.path + " HTTP/1.0\r\n", "Host: 127.0.0.1:80\r\n",
				"Accept-Encoding: deflate, identity\r\n", "X-Or-Diff-From-Consensus: AB\r\n"} {
				if !strings.Contains(req, want) {
					t.Errorf("request %q lacks %q", req, want)
				}
			}
		})
	}
}

func TestGetErrors(t *testing.T) {
	bomb := deflate(strings.Repeat("\x00", 1<<20))
	for _, tc := range []struct {
		name    string
		respond string
		is      error
		status  int
	}{
		{"not found", "HTTP/1.0 404 Not found\r\n\r\n", nil, 404},
		{"body too large", "HTTP/1.0 200 OK\r\n\r\n" + strings.Repeat("x", 1001), ErrBodyTooLarge, 0},
		{"deflate bomb", "HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n" + string(bomb), ErrBodyTooLarge, 0},
		{"truncated deflate", "HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n" + string(deflate("abcdefgh")[:8]), ErrEncoding, 0},
		{"unknown encoding", "HTTP/1.0 200 OK\r\nContent-Encoding: x-frob\r\n\r\nabc", ErrEncoding, 0},
		{"garbage status", "SSH-2.0-OpenSSH\r\n\r\n", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, _ := fakeDir(t, func(w io.Writer) { io.WriteString(w, tc.respond) })
			_, err := Get(context.Background(), conn, "dir1", Request{Path: "/tor/x.z", MaxBody: 1000})
			var e *Error
			if !errors.As(err, &e) || e.Dir != "dir1" || e.Path != "/tor/x.z" || !strings.Contains(err.Error(), "dir1") {
				t.Fatalf("err = %v, want *Error naming dir1", err)
			}
			if e.Status != tc.status {
				t.Errorf("status %d, want %d (%v)", e.Status, tc.status, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if tc.is == nil && tc.status == 0 && e.Err == nil {
				t.Errorf("no cause in %v", err)
			}
		})
	}
}

// endless writes prefix, then chunk forever (until the reader hangs up).
func endless(prefix string, chunk []byte) func(io.Writer) {
	return func(w io.Writer) {
		if _, err := io.WriteString(w, prefix); err != nil {
			return
		}
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
}

// An endless header line (or endless headers) must fail after
// MaxHeaderSize bytes without the heap growing: http.ReadResponse
// alone grew it to 700 MiB in 3 s (issue 17 item 9).
func TestHeaderBomb(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
		chunk        []byte
	}{
		{"endless line", "HTTP/1.0 200 OK\r\nX-Bomb: ", bytes.Repeat([]byte("a"), 32<<10)},
		{"endless headers", "HTTP/1.0 200 OK\r\n", bytes.Repeat([]byte("X-A: b\r\n"), 4<<10)},
		{"endless status line", "HTTP/1.0 200 ", bytes.Repeat([]byte("O"), 32<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, _ := fakeDir(t, endless(tc.prefix, tc.chunk))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Get(ctx, conn, "hostile", Request{Path: "/tor/x", MaxBody: 1 << 20})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrHeaderTooLarge) {
				t.Fatalf("err = %v, want ErrHeaderTooLarge", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v; allocated %d bytes", err, alloc)
			if alloc > 1<<20 {
				t.Errorf("header bomb allocated %d bytes, want < 1 MiB", alloc)
			}
		})
	}
}

// An endless body stops at MaxBody.
func TestBodyBomb(t *testing.T) {
	conn, _ := fakeDir(t, endless("HTTP/1.0 200 OK\r\n\r\n", bytes.Repeat([]byte("a"), 32<<10)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Get(context.Background(), conn, "hostile", Request{Path: "/tor/x", MaxBody: 256 << 10})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v, want ErrBodyTooLarge", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("body bomb with a 256 KiB limit allocated %d bytes", alloc)
	}
}

// A silent directory is abandoned when the context ends.
func TestGetContext(t *testing.T) {
	conn, _ := fakeDir(t, func(w io.Writer) {
		io.WriteString(w, "HTTP/1.0 200 OK\r\n")
		<-t.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Get(ctx, conn, "silent", Request{Path: "/tor/x", MaxBody: 100})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if _, err := Get(context.Background(), conn, "d", Request{Path: "bad path", MaxBody: 1}); err == nil {
		t.Error("bad path accepted")
	}
}

func zstdBytes(t testing.TB, s string) []byte {
	zw, err := zstd.NewWriter(nil, zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll([]byte(s), nil)
}

func lzmaBytes(t testing.TB, s string) []byte {
	var b bytes.Buffer
	lw, err := lzma.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	lw.Write([]byte(s))
	lw.Close()
	return b.Bytes()
}

// zstd and LZMA (dir-spec §6.1 x-zstd, x-tor-lzma) decode, within the
// body limit and the decoders' 16 MiB memory bound.
func TestDecodeZstdLZMA(t *testing.T) {
	doc := strings.Repeat("r relay 1.2.3.4 9001\n", 1000)
	for _, enc := range []string{"x-zstd", "x-tor-lzma"} {
		var raw []byte
		if enc == "x-zstd" {
			raw = zstdBytes(t, doc)
		} else {
			raw = lzmaBytes(t, doc)
		}
		got, err := decode(enc, raw, int64(len(doc)))
		if err != nil || string(got) != doc {
			t.Errorf("%s: %d bytes, %v", enc, len(got), err)
		}
		if _, err := decode(enc, raw, int64(len(doc)-1)); !errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("%s over the limit: %v", enc, err)
		}
		if _, err := decode(enc, raw[:len(raw)/2], int64(len(doc))); !errors.Is(err, ErrEncoding) {
			t.Errorf("%s truncated: %v", enc, err)
		}
		if _, err := decode(enc, []byte("not compressed at all"), 1000); !errors.Is(err, ErrEncoding) {
			t.Errorf("%s garbage: %v", enc, err)
		}
	}
	// An LZMA header asking for a 2 GiB dictionary is refused before
	// anything is allocated.
	raw := lzmaBytes(t, doc)
	raw[1], raw[2], raw[3], raw[4] = 0xff, 0xff, 0xff, 0x7f
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := decode("x-tor-lzma", raw, 1<<20); !errors.Is(err, ErrEncoding) {
		t.Errorf("huge dictionary: %v", err)
	}
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("huge LZMA dictionary header allocated %d bytes", a)
	}
	// A zstd bomb: 64 MiB of zeros in a few kB.
	bomb := zstdBytes(t, strings.Repeat("\x00", 64<<20))
	if _, err := decode("x-zstd", bomb, 1<<20); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("zstd bomb: %v", err)
	}
}

// FuzzResponse feeds arbitrary answers (seeded with well-formed ones in
// every encoding) to Get: never a panic, never a body over the limit.
func FuzzResponse(f *testing.F) {
	doc := "network-status-version 3 microdesc\nvote-status consensus\n"
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\n" + doc))
	f.Add(append([]byte("HTTP/1.0 200 OK\r\nContent-Encoding: deflate\r\n\r\n"), deflate(doc, doc)...))
	f.Add(append([]byte("HTTP/1.0 200 OK\r\nContent-Encoding: x-zstd\r\n\r\n"), zstdBytes(f, doc)...))
	f.Add(append([]byte("HTTP/1.0 200 OK\r\nContent-Encoding: x-tor-lzma\r\n\r\n"), lzmaBytes(f, doc)...))
	f.Add([]byte("HTTP/1.0 404 Not found\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			io.Copy(io.Discard, io.LimitReader(server, 1)) // the request's first byte
			server.SetDeadline(time.Now().Add(time.Second))
			go io.Copy(io.Discard, server)
			server.Write(b)
		}()
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := Get(ctx, client, "fuzz", Request{Path: "/tor/x.z", MaxBody: 1 << 16})
		if err == nil && len(resp.Body) > 1<<16 {
			t.Fatalf("body of %d bytes over the limit", len(resp.Body))
		}
	})
}
