// Directory requests: dir-spec §4 / §5 URLs and appendix B ("General-use
// HTTP URLs": a ".z" suffix asks for deflate compression; with
// Accept-Encoding, §6.1, the server picks zstd or LZMA when it has them),
// sent by
// internal/dirclient over a connection from the DialFunc (a BEGIN_DIR
// stream, or a DirPort TCP connection), with hedged retries across
// directories.

package dirmgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gotor/gotor/internal/dirclient"
	"github.com/gotor/gotor/internal/netdir"
)

// Limits on response bodies, decompressed, per document type. A
// consensus of the real network is about 3.5 MB (2026); C tor refuses
// any directory answer over 16 MB (MAX_DIR_DL_SIZE).
const (
	maxConsensusSize = 16 << 20
	maxCertsSize     = 1 << 20 // all nine authorities' certificates: 40 kB
	maxMicrodescSize = 4 << 20 // a batch of 92: about 100 kB
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

// fetchOne sends GET path to dir and returns the decompressed body, at
// most limit bytes.
func (m *Manager) fetchOne(ctx context.Context, dir *netdir.Relay, path string, hdr map[string]string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, m.requestTimeout)
	defer cancel()
	conn, err := m.dial(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := dirclient.Get(ctx, conn, dirName(dir), dirclient.Request{
		Path:           path,
		Host:           netip.AddrPortFrom(dir.Addr, dir.DirPort).String(),
		AcceptEncoding: dirclient.Encodings,
		Header:         hdr,
		MaxBody:        limit,
	})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// fetchAny fetches path (with the extra request headers hdr) from the
// directories in dirs, in order, until
// accept returns nil for a body. After hedgeDelay without an answer, a
// second attempt starts in parallel (up to m.parallel attempts), so one
// slow directory does not stall bootstrap. It makes at most len(dirs)
// attempts (each directory once) per round, and up to m.retries rounds,
// at most maxAttempts requests in all unless dirs is longer.
func (m *Manager) fetchAny(ctx context.Context, dirs []*netdir.Relay, path string, hdr map[string]string, limit int64, accept func(dir *netdir.Relay, body []byte) error) error {
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
			body, err := m.fetchOne(ctx, dir, path, hdr, limit)
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
