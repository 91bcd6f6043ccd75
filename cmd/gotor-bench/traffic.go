package main

// The data server on 127.0.0.1 and the SOCKS5 client that reaches it
// through a Tor client. The protocol is OnionPerf/TGen-like and has no
// HTTP overhead: the client sends "N\n" and the server answers with N
// bytes and closes; "hold\n" makes the server answer one byte and keep
// the connection open until the client closes it.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type dataServer struct {
	ln   net.Listener
	port int
	buf  []byte
	held atomic.Int64

	mu      sync.Mutex
	holding map[net.Conn]bool
}

// closeHeld closes the server side of every held connection, as a
// target that ends the conversation would.
func (s *dataServer) closeHeld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.holding {
		c.Close()
	}
}

func startDataServer() (*dataServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &dataServer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, buf: make([]byte, 256<<10), holding: map[net.Conn]bool{}}
	rand.Read(s.buf)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s, nil
}

func (s *dataServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	line = strings.TrimSpace(line)
	if line == "hold" {
		s.held.Add(1)
		s.mu.Lock()
		s.holding[c] = true
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.holding, c)
			s.mu.Unlock()
			s.held.Add(-1)
		}()
		if _, err := c.Write([]byte{'k'}); err != nil {
			return
		}
		io.Copy(io.Discard, br)
		return
	}
	n, err := strconv.ParseInt(line, 10, 64)
	if err != nil || n < 0 {
		return
	}
	for n > 0 {
		chunk := s.buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		w, err := c.Write(chunk)
		if err != nil {
			return
		}
		n -= int64(w)
	}
}

func (s *dataServer) close() { s.ln.Close() }

// socksDial opens a SOCKS5 connection to host:port through socksAddr
// (username/password auth when user is set, which C tor and gotor use for
// stream isolation) and returns it with the time from the start of the
// TCP connection to the SOCKS reply.
func socksDial(ctx context.Context, socksAddr, host string, port int, user string) (net.Conn, time.Duration, error) {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", socksAddr)
	if err != nil {
		return nil, 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	fail := func(err error) (net.Conn, time.Duration, error) {
		conn.Close()
		return nil, 0, err
	}
	if user == "" {
		_, err = conn.Write([]byte{5, 1, 0})
	} else {
		_, err = conn.Write([]byte{5, 1, 2})
	}
	if err != nil {
		return fail(err)
	}
	var rep [2]byte
	if _, err := io.ReadFull(conn, rep[:]); err != nil {
		return fail(err)
	}
	if rep[0] != 5 || (user == "" && rep[1] != 0) || (user != "" && rep[1] != 2) {
		return fail(fmt.Errorf("socks: method %d refused", rep[1]))
	}
	if user != "" {
		req := []byte{1, byte(len(user))}
		req = append(req, user...)
		req = append(req, 1, 'x')
		if _, err := conn.Write(req); err != nil {
			return fail(err)
		}
		if _, err := io.ReadFull(conn, rep[:]); err != nil {
			return fail(err)
		}
		if rep[1] != 0 {
			return fail(errors.New("socks: auth refused"))
		}
	}
	req := []byte{5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := conn.Write(req); err != nil {
		return fail(err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fail(err)
	}
	if hdr[1] != 0 {
		return fail(fmt.Errorf("socks: reply %d", hdr[1]))
	}
	var skip int
	switch hdr[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return fail(err)
		}
		skip = int(l[0]) + 2
	default:
		return fail(fmt.Errorf("socks: address type %d", hdr[3]))
	}
	if _, err := io.ReadFull(conn, make([]byte, skip)); err != nil {
		return fail(err)
	}
	return conn, time.Since(start), nil
}

// transfer is one OnionPerf-style download on a fresh SOCKS connection.
type transfer struct {
	connect time.Duration // start to SOCKS reply (CONNECTED)
	ttfb    time.Duration // start to first byte of data
	ttlb    time.Duration // start to last byte
}

func download(ctx context.Context, socksAddr, host string, port int, size int64, user string) (transfer, error) {
	var t transfer
	start := time.Now()
	conn, conDur, err := socksDial(ctx, socksAddr, host, port, user)
	if err != nil {
		return t, err
	}
	defer conn.Close()
	t.connect = conDur
	if _, err := fmt.Fprintf(conn, "%d\n", size); err != nil {
		return t, err
	}
	buf := make([]byte, 64<<10)
	var got int64
	for got < size {
		n, err := conn.Read(buf)
		if n > 0 && got == 0 {
			t.ttfb = time.Since(start)
		}
		got += int64(n)
		if err != nil {
			if err == io.EOF && got == size {
				break
			}
			return t, fmt.Errorf("after %d of %d bytes: %w", got, size, err)
		}
	}
	t.ttlb = time.Since(start)
	return t, nil
}
