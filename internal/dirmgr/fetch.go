// Directory HTTP requests: dir-spec §4 / §5 URLs and §6 ("General-use
// HTTP URLs", compression: a ".z" suffix asks for deflate (zlib)
// compression). Requests go over a caller-supplied connection (a DirPort
// TCP connection, or later a BEGIN_DIR stream) as HTTP/1.0.

package dirmgr

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

// Limits on response sizes.
const (
	maxConsensusSize = 64 << 20
	maxDocSize       = 16 << 20
)

// maxAttempts bounds the requests of one fetchAny (unless there are
// more directories than that, each of which is tried once).
const maxAttempts = 30

// DialFunc opens a connection on which an HTTP directory request can be
// sent to dir.
type DialFunc func(ctx context.Context, dir *netdir.Relay) (net.Conn, error)

func plainDial(ctx context.Context, dir *netdir.Relay) (net.Conn, error) {
	if dir.DirPort == 0 {
		return nil, fmt.Errorf("dirmgr: %s has no DirPort", dirName(dir))
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", netip.AddrPortFrom(dir.Addr, dir.DirPort).String())
}

func dirName(r *netdir.Relay) string {
	if r.Nickname != "" {
		return fmt.Sprintf("%s(%s)", r.Nickname, netip.AddrPortFrom(r.Addr, r.DirPort))
	}
	return fmt.Sprintf("$%X", r.RSAID)
}

// HTTPError is a non-200 answer from a directory.
type HTTPError struct {
	Dir    string
	Path   string
	Status int
	Reason string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("dirmgr: %s %s: HTTP %d %s", e.Dir, e.Path, e.Status, e.Reason)
}

// fetchOne sends GET path to dir and returns the decompressed body.
func (m *Manager) fetchOne(ctx context.Context, dir *netdir.Relay, path string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.requestTimeout)
	defer cancel()
	conn, err := m.dial(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	host := netip.AddrPortFrom(dir.Addr, dir.DirPort).String()
	req := "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\nAccept-Encoding: deflate, identity\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, m.ctxErr(ctx, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, m.ctxErr(ctx, fmt.Errorf("dirmgr: %s %s: %w", dirName(dir), path, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, &HTTPError{Dir: dirName(dir), Path: path, Status: resp.StatusCode, Reason: resp.Status}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, m.ctxErr(ctx, fmt.Errorf("dirmgr: %s %s: reading body: %w", dirName(dir), path, err))
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("dirmgr: %s %s: response larger than %d bytes", dirName(dir), path, limit)
	}
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	compressed := enc == "deflate" || enc == "x-deflate" ||
		(enc == "" && strings.HasSuffix(path, ".z") && len(raw) > 1 && raw[0] == 0x78)
	switch {
	case compressed:
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("dirmgr: %s %s: deflate: %w", dirName(dir), path, err)
		}
		body, err := io.ReadAll(io.LimitReader(zr, limit+1))
		// Tor may omit the zlib trailer on truncated responses; accept
		// a clean body only.
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("dirmgr: %s %s: deflate: %w", dirName(dir), path, err)
		}
		if err != nil {
			return nil, fmt.Errorf("dirmgr: %s %s: truncated deflate stream", dirName(dir), path)
		}
		if int64(len(body)) > limit {
			return nil, fmt.Errorf("dirmgr: %s %s: response larger than %d bytes", dirName(dir), path, limit)
		}
		return body, nil
	case enc == "" || enc == "identity":
		return raw, nil
	default:
		return nil, fmt.Errorf("dirmgr: %s %s: unsupported Content-Encoding %q", dirName(dir), path, enc)
	}
}

func (m *Manager) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// fetchAny fetches path from the directories in dirs, in order, until
// accept returns nil for a body. After hedgeDelay without an answer, a
// second attempt starts in parallel (up to m.parallel attempts), so one
// slow directory does not stall bootstrap. It makes at most len(dirs)
// attempts (each directory once) per round, and up to m.retries rounds,
// at most maxAttempts requests in all unless dirs is longer.
func (m *Manager) fetchAny(ctx context.Context, dirs []*netdir.Relay, path string, limit int64, accept func(dir *netdir.Relay, body []byte) error) error {
	if len(dirs) == 0 {
		return fmt.Errorf("dirmgr: no directories to fetch %s from", path)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		dir  *netdir.Relay
		body []byte
		err  error
	}
	results := make(chan result, len(dirs)*m.retries)
	var errs []error
	next, running := 0, 0
	total := min(len(dirs)*m.retries, max(len(dirs), maxAttempts))
	start := func() {
		dir := dirs[next%len(dirs)]
		next++
		running++
		go func() {
			body, err := m.fetchOne(ctx, dir, path, limit)
			results <- result{dir, body, err}
		}()
	}
	start()
	hedge := time.NewTimer(m.hedgeDelay)
	defer hedge.Stop()
	for running > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hedge.C:
			if next < total && running < m.parallel {
				start()
			}
			hedge.Reset(m.hedgeDelay)
		case r := <-results:
			running--
			if r.err == nil {
				r.err = accept(r.dir, r.body)
				if r.err == nil {
					return nil
				}
			}
			m.log.Debug("directory request failed", "dir", dirName(r.dir), "path", path, "err", r.err)
			errs = append(errs, r.err)
			if next < total && running < m.parallel {
				if next >= len(dirs) && next%len(dirs) == 0 {
					// A full round failed: back off briefly.
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(m.retryDelay):
					}
				}
				start()
			}
		}
	}
	return fmt.Errorf("dirmgr: fetching %s failed: %w", path, errors.Join(errs...))
}
