package main

// The start-up log, as C tor's: until the configured Log lines are open,
// messages go to standard output in C tor's format at the quiet level of
// the command line (notice, warn with --hush and the one-shot commands,
// nothing with --quiet: add_default_log_for_quiet_level in C tor's
// src/app/config/quiet_level.c), and are kept so that they are written
// to the configured log files too once those are open (C tor's
// pending_startup_messages and flush_log_messages_from_startup in
// src/lib/log/log.c). Launchers such as stem read this output: they wait
// for "Bootstrapped 100%" and report "[warn]"/"[err]" lines.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/logging"
)

// quietLevel is C tor's quiet_level_t.
type quietLevel int

const (
	quietNone   quietLevel = iota // notice and up on stdout
	quietHush                     // warn and up (--hush)
	quietSilent                   // nothing (--quiet)
)

// maxStartupBytes bounds the messages kept for the log files (C tor's
// MAX_STARTUP_MSG_LEN).
const maxStartupBytes = 256 << 10

// defaultLogs are the Log lines used when the configuration has none:
// stdout at the quiet level (nil for --quiet).
func defaultLogs(q quietLevel) []config.LogConfig {
	switch q {
	case quietNone:
		return []config.LogConfig{{MinSeverity: "notice", MaxSeverity: "err", Dest: "stdout"}}
	case quietHush:
		return []config.LogConfig{{MinSeverity: "warn", MaxSeverity: "err", Dest: "stdout"}}
	}
	return nil
}

// newHandler is logging.New, with no Log lines meaning no output.
func newHandler(logs []config.LogConfig) (slog.Handler, func() error, error) {
	if len(logs) == 0 {
		return slog.DiscardHandler, func() error { return nil }, nil
	}
	return logging.New(logs)
}

// startupLog writes to stdout at the quiet level and keeps what it
// wrote, for the log files.
type startupLog struct {
	out slog.Handler

	mu    sync.Mutex
	kept  []slog.Record
	bytes int
}

func newStartupLog(q quietLevel) *startupLog {
	h, _, _ := newHandler(defaultLogs(q)) // stdout only: no file to fail or close
	return &startupLog{out: h}
}

// log writes one message.
func (s *startupLog) log(level slog.Level, msg string) {
	r := slog.NewRecord(time.Now(), level, msg, 0)
	s.mu.Lock()
	if s.bytes+len(msg) <= maxStartupBytes {
		s.kept = append(s.kept, r)
		s.bytes += len(msg)
	}
	s.mu.Unlock()
	if s.out.Enabled(context.Background(), level) {
		s.out.Handle(context.Background(), r)
	}
}

func (s *startupLog) notice(msg string) { s.log(logging.LevelNotice, msg) }
func (s *startupLog) warn(msg string)   { s.log(slog.LevelWarn, msg) }
func (s *startupLog) err(msg string)    { s.log(slog.LevelError, msg) }

// replay writes the kept messages to the configured log files (not to
// stdout or stderr, which saw them already).
func (s *startupLog) replay(logs []config.LogConfig) error {
	var files []config.LogConfig
	for _, l := range logs {
		if l.Dest == "file" {
			files = append(files, l)
		}
	}
	if len(files) == 0 {
		return nil
	}
	h, closeFn, err := logging.New(files)
	if err != nil {
		return err
	}
	defer closeFn()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.kept {
		if h.Enabled(context.Background(), r.Level) {
			h.Handle(context.Background(), r)
		}
	}
	s.kept, s.bytes = nil, 0
	return nil
}
