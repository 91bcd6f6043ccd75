// Package dirclient sends one directory request, an HTTP/1.0 GET, over
// an already open connection (a BEGIN_DIR stream or a DirPort TCP
// connection) and reads the answer with bounded memory: dir-spec §6
// ("Standards compliance": HTTP 1.0, §6.1 Content-Encoding, §6.2 status
// codes). The response headers are bounded as in C tor
// (MAX_HEADERS_SIZE, 50,000 bytes, in fetch_from_buf_http), the body by
// the caller per document type, before and after decompression.
//
// Every directory fetch of gotor goes through Get: consensuses,
// certificates and microdescriptors (internal/dirmgr) and onion service
// descriptors from HSDirs (internal/onion).
package dirclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// MaxHeaderSize bounds the status line and headers of a response
// (C tor's MAX_HEADERS_SIZE).
const MaxHeaderSize = 50000

// Errors wrapped by *Error; test with errors.Is.
var (
	// ErrHeaderTooLarge: the status line and headers exceed MaxHeaderSize.
	ErrHeaderTooLarge = errors.New("response headers larger than 50000 bytes")
	// ErrBodyTooLarge: the body (compressed or decompressed) exceeds
	// Request.MaxBody.
	ErrBodyTooLarge = errors.New("response body too large")
	// ErrEncoding: an unsupported Content-Encoding or a corrupt or
	// truncated compressed body.
	ErrEncoding = errors.New("bad content encoding")
)

// Error is a failed directory request. Status is the HTTP status of a
// non-200 answer (Err is nil then), 0 when the request failed otherwise.
type Error struct {
	Dir    string // the directory, as the caller named it
	Path   string
	Status int
	Reason string // the status line's reason phrase
	Err    error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("dirclient: %s %s: HTTP %d %s", e.Dir, e.Path, e.Status, e.Reason)
	}
	return fmt.Sprintf("dirclient: %s %s: %v", e.Dir, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Request is one directory GET.
type Request struct {
	Path string
	// Host, if set, is sent as the Host header.
	Host string
	// AcceptEncoding lists the encodings offered (dir-spec §6.1), e.g.
	// "deflate", "identity"; nil sends no Accept-Encoding, and the server
	// answers in identity encoding, or deflate for a ".z" path.
	AcceptEncoding []string
	// Header holds further request headers, e.g.
	// X-Or-Diff-From-Consensus (dir-spec §4.5.2).
	Header map[string]string
	// MaxBody bounds the body, compressed and decompressed. Required.
	MaxBody int64
}

// Response is a 200 answer.
type Response struct {
	Header http.Header
	// Encoding is the encoding the body arrived in ("identity" when none
	// was named).
	Encoding string
	// Body is the decompressed body.
	Body []byte
	// WireSize is the length of the body as received.
	WireSize int
}

// deadliner is implemented by net.Conn and stream.Conn.
type deadliner interface{ SetDeadline(time.Time) error }

// Get sends req on conn and returns the answer. dir names the directory
// in errors. When conn has SetDeadline, ctx's deadline and cancellation
// interrupt blocked reads and writes. Get does not close conn.
func Get(ctx context.Context, conn io.ReadWriter, dir string, req Request) (*Response, error) {
	fail := func(err error) (*Response, error) {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		} else if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
			// The connection's deadline (ctx's) fired just before ctx's timer.
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		return nil, &Error{Dir: dir, Path: req.Path, Err: err}
	}
	if req.MaxBody <= 0 {
		return fail(errors.New("no body limit"))
	}
	if req.Path == "" || req.Path[0] != '/' || strings.ContainsAny(req.Path, " \t\r\n") {
		return fail(fmt.Errorf("bad request path %q", req.Path))
	}
	if d, ok := conn.(deadliner); ok {
		if dl, ok := ctx.Deadline(); ok {
			d.SetDeadline(dl)
		}
		stop := context.AfterFunc(ctx, func() { d.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if _, err := io.WriteString(conn, requestText(req)); err != nil {
		return fail(err)
	}

	// The limit covers what bufio reads ahead too, so headers and body
	// together never take more than MaxHeaderSize + MaxBody from conn
	// (plus one buffer).
	lr := &limitReader{r: conn, n: MaxHeaderSize, err: ErrHeaderTooLarge}
	br := bufio.NewReaderSize(lr, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if lr.hit {
			return fail(ErrHeaderTooLarge)
		}
		return fail(fmt.Errorf("reading response: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
		return nil, &Error{Dir: dir, Path: req.Path, Status: resp.StatusCode, Reason: reason}
	}
	lr.n, lr.err, lr.hit = req.MaxBody+1, ErrBodyTooLarge, false
	raw, err := io.ReadAll(resp.Body)
	if lr.hit || int64(len(raw)) > req.MaxBody {
		return fail(fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, req.MaxBody))
	}
	if err != nil {
		return fail(fmt.Errorf("reading body: %w", err))
	}
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	if enc == "" {
		enc = "identity"
		// Old servers name no encoding; a ".z" URL asks for deflate
		// (dir-spec §6.1), which starts with a zlib header byte.
		if strings.HasSuffix(req.Path, ".z") && len(raw) > 1 && raw[0] == 0x78 {
			enc = "deflate"
		}
	}
	body, err := decode(enc, raw, req.MaxBody)
	if err != nil {
		return fail(err)
	}
	return &Response{Header: resp.Header, Encoding: enc, Body: body, WireSize: len(raw)}, nil
}

func requestText(req Request) string {
	var b strings.Builder
	b.WriteString("GET " + req.Path + " HTTP/1.0\r\n")
	if req.Host != "" {
		b.WriteString("Host: " + req.Host + "\r\n")
	}
	if len(req.AcceptEncoding) > 0 {
		b.WriteString("Accept-Encoding: " + strings.Join(req.AcceptEncoding, ", ") + "\r\n")
	}
	for k, v := range req.Header {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// limitReader reads at most n bytes from r, then fails with err.
type limitReader struct {
	r   io.Reader
	n   int64
	err error
	hit bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.hit = true
		return 0, l.err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
