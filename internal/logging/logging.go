// Package logging turns torrc "Log" lines into a log/slog handler that
// writes C tor's log format:
//
//	Nov 27 03:21:42.068 [notice] Bootstrapped 100% (done): Done
//
// C tor's severities are debug, info, notice, warn and err; slog has no
// notice level, so LevelNotice sits between Info and Warn.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotor/gotor/config"
)

// LevelNotice is C tor's "notice" severity.
const LevelNotice = slog.Level(2)

// ParseSeverity maps a C tor severity name to a slog level.
func ParseSeverity(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "notice", "":
		return LevelNotice, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "err", "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log severity %q", s)
}

func severityName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < LevelNotice:
		return "info"
	case l < slog.LevelWarn:
		return "notice"
	case l < slog.LevelError:
		return "warn"
	}
	return "err"
}

// sink is one destination with its severity range.
type sink struct {
	mu       *sync.Mutex
	w        io.Writer
	min, max slog.Level
}

// Handler writes records to every sink whose range includes the level.
type Handler struct {
	sinks []sink
	attrs []slog.Attr
	group string
}

// New builds a handler from Log lines; no lines means "notice stdout".
// It returns a closer for the files it opened.
func New(logs []config.LogConfig) (*Handler, func() error, error) {
	if len(logs) == 0 {
		logs = []config.LogConfig{{MinSeverity: "notice", MaxSeverity: "err", Dest: "stdout"}}
	}
	var files []*os.File
	closeAll := func() error {
		for _, f := range files {
			f.Close()
		}
		return nil
	}
	h := &Handler{}
	for _, l := range logs {
		min, err := ParseSeverity(l.MinSeverity)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		max := slog.LevelError
		if l.MaxSeverity != "" {
			if max, err = ParseSeverity(l.MaxSeverity); err != nil {
				closeAll()
				return nil, nil, err
			}
		}
		var w io.Writer
		switch l.Dest {
		case "stdout":
			w = os.Stdout
		case "stderr", "syslog":
			w = os.Stderr
		case "file":
			f, err := os.OpenFile(l.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("log file: %w", err)
			}
			files = append(files, f)
			w = f
		default:
			closeAll()
			return nil, nil, fmt.Errorf("unknown log destination %q", l.Dest)
		}
		h.sinks = append(h.sinks, sink{mu: &sync.Mutex{}, w: w, min: min, max: max})
	}
	return h, closeAll, nil
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	for _, s := range h.sinks {
		if l >= s.min && l <= s.max+3 {
			return true
		}
	}
	return false
}

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("Jan 02 15:04:05.000"))
	b.WriteString(" [")
	b.WriteString(severityName(r.Level))
	b.WriteString("] ")
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		fmt.Fprintf(&b, " %s=%v", key, a.Value.Resolve())
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	line := b.String()
	for _, s := range h.sinks {
		if r.Level >= s.min && r.Level <= s.max+3 {
			s.mu.Lock()
			io.WriteString(s.w, line)
			s.mu.Unlock()
		}
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}

// Swappable is a slog.Handler whose destinations can be replaced while
// loggers built on it are in use (SIGHUP re-reads the Log lines and
// reopens log files, which also serves log rotation).
type Swappable struct {
	cur atomic.Pointer[swapState]
}

type swapState struct {
	h     slog.Handler
	close func() error
}

// NewSwappable returns a Swappable writing to h; closeFn closes h's files.
func NewSwappable(h slog.Handler, closeFn func() error) *Swappable {
	s := &Swappable{}
	s.cur.Store(&swapState{h, closeFn})
	return s
}

// Swap installs h and closes the previous destinations.
func (s *Swappable) Swap(h slog.Handler, closeFn func() error) {
	old := s.cur.Swap(&swapState{h, closeFn})
	if old != nil && old.close != nil {
		old.close()
	}
}

// Close closes the current destinations.
func (s *Swappable) Close() error {
	if st := s.cur.Load(); st != nil && st.close != nil {
		return st.close()
	}
	return nil
}

// Enabled implements slog.Handler.
func (s *Swappable) Enabled(ctx context.Context, l slog.Level) bool {
	return s.cur.Load().h.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (s *Swappable) Handle(ctx context.Context, r slog.Record) error {
	return s.cur.Load().h.Handle(ctx, r)
}

// WithAttrs implements slog.Handler; the attributes follow later swaps.
func (s *Swappable) WithAttrs(as []slog.Attr) slog.Handler {
	return &derived{s: s, attrs: as}
}

// WithGroup implements slog.Handler; the group follows later swaps.
func (s *Swappable) WithGroup(name string) slog.Handler {
	return &derived{s: s, group: name}
}

type derived struct {
	s      *Swappable
	parent *derived
	attrs  []slog.Attr
	group  string
}

func (d *derived) handler() slog.Handler {
	var h slog.Handler
	if d.parent != nil {
		h = d.parent.handler()
	} else {
		h = d.s.cur.Load().h
	}
	if d.group != "" {
		return h.WithGroup(d.group)
	}
	return h.WithAttrs(d.attrs)
}

func (d *derived) Enabled(ctx context.Context, l slog.Level) bool  { return d.handler().Enabled(ctx, l) }
func (d *derived) Handle(ctx context.Context, r slog.Record) error { return d.handler().Handle(ctx, r) }
func (d *derived) WithAttrs(as []slog.Attr) slog.Handler {
	return &derived{s: d.s, parent: d, attrs: as}
}
func (d *derived) WithGroup(name string) slog.Handler {
	return &derived{s: d.s, parent: d, group: name}
}
