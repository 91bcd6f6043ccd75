// Package circmgr is gotor's circuit manager: a pool of exit circuits
// that streams are attached to according to stream isolation.
//
// Spec and reference behaviour:
//   - path-spec §2.1 "When we build": building circuits preemptively for
//     predicted ports (§2.1.1, with C tor's MIN_CIRCUITS_HANDLING_STREAM
//     = 2 per port and MAX_UNUSED_OPEN_CIRCUITS = 14), building on demand
//     (§2.1.2), handling failure (§2.1.3: retry on a new path, bounded).
//   - path-spec §2.2 "Attaching streams to circuits": reuse a circuit that
//     is not too dirty (MaxCircuitDirtiness, default 10 minutes), whose exit
//     allows the port and whose isolation is compatible (internal/isolation).
//   - C tor circuituse.c: circuit_expire_old_circuits_clientside (close
//     circuits dirty too long with no streams, and clean circuits unused
//     too long), circuit_predict_and_launch_new, NEWNYM marking circuits
//     unusable for new streams; circuitbuild.c for build timeouts.
//
// The manager is generic over the circuit type: it needs only the small
// Circuit interface below, and a Builder that makes one circuit on a
// fresh path per call. Unit tests use fake circuits; nothing here has
// been run against real relays yet.
package circmgr

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// Circuit is what the manager needs of a built circuit.
type Circuit interface {
	// AfterClose arranges for f to run in its own goroutine once the
	// circuit has closed (DESTROY, channel loss, or Close), as
	// context.AfterFunc does; stop unregisters f and reports whether it
	// stopped f before f started.
	AfterClose(f func()) (stop func() bool)
	// Close tears the circuit down. It may be called more than once.
	Close() error
	// AllowsPort reports whether the circuit's exit policy (summary)
	// permits exiting to port.
	AllowsPort(port uint16) bool
}

// StreamCounter may be implemented by a Circuit that knows how many
// streams are open on it; the manager then never closes it as idle while
// streams remain, even for streams obtained with Get.
type StreamCounter interface {
	NumStreams() int
}

// Usage is what a circuit is wanted for.
type Usage struct {
	// Port is the exit port the stream will connect to. 0 means no
	// particular port (e.g. a RESOLVE): any exit circuit will do and
	// AllowsPort is not consulted.
	Port uint16
}

// Builder builds one circuit. Each call must choose a fresh path, so a
// retry after a failure goes through other relays (path-spec §2.1.3). The
// context carries the build timeout.
type Builder[C Circuit] interface {
	Build(ctx context.Context, u Usage) (C, error)
}

// BuilderFunc adapts a function to Builder.
type BuilderFunc[C Circuit] func(ctx context.Context, u Usage) (C, error)

// Build calls f.
func (f BuilderFunc[C]) Build(ctx context.Context, u Usage) (C, error) { return f(ctx, u) }

// Errors.
var (
	ErrClosed           = errors.New("circmgr: manager closed")
	ErrTooManyCircuits  = errors.New("circmgr: too many circuits")
	ErrExitRejectsPort  = errors.New("circmgr: built circuit's exit does not allow the port")
	ErrNoUsableCircuit  = errors.New("circmgr: no usable circuit after retries")
	errBuildAttemptsOut = errors.New("circmgr: circuit build failed")
)

// Config configures a Manager. Zero fields take the defaults noted.
type Config struct {
	// MaxCircuitDirtiness: a circuit first used this long ago takes no
	// new streams (tor(1) MaxCircuitDirtiness). Default 10 minutes.
	MaxCircuitDirtiness time.Duration
	// CircuitBuildTimeout bounds one build attempt when BuildTimeout is
	// nil. Default 60 seconds (C tor's static fallback).
	CircuitBuildTimeout time.Duration
	// BuildTimeout, if set, is asked for each attempt's timeout (a
	// learned timeout, path-spec §2.4); it is called without the
	// manager's lock held. A result <= 0 means CircuitBuildTimeout.
	BuildTimeout func() time.Duration
	// OnBuild, if set, is told the outcome of every build attempt: how
	// long it took and its error (nil when built; the context's
	// DeadlineExceeded when it ran out of time). It is called without
	// the manager's lock held.
	OnBuild func(took time.Duration, err error)
	// NewCircuitPeriod: how often the build-failure budget is reset and
	// old circuits are considered for expiry (tor(1) NewCircuitPeriod).
	// Default 30 seconds.
	NewCircuitPeriod time.Duration
	// MaintenanceInterval: how often the background loop expires
	// circuits and tops up prebuilt ones. Default 1 second, like C tor's
	// once-a-second housekeeping.
	MaintenanceInterval time.Duration

	// EnableCircuitPrebuilding keeps clean circuits ready for predicted
	// ports.
	EnableCircuitPrebuilding bool
	// PredictedPorts are predicted from the start, until PredictedPortTTL
	// passes without a stream to them. Default 80 and 443.
	PredictedPorts []uint16
	// PredictedPortTTL: a port used by a stream stays predicted this
	// long (C tor PredictedPortsRelevanceTime). Default 1 hour.
	PredictedPortTTL time.Duration
	// MaxPredictedPorts bounds the set of predicted ports. Default 32.
	MaxPredictedPorts int
	// MinCleanPerPort clean circuits are kept for each predicted port
	// (C tor MIN_CIRCUITS_HANDLING_STREAM). Default 2.
	MinCleanPerPort int
	// MaxCleanCircuits bounds prebuilt (clean) circuits, built or
	// pending (C tor MAX_UNUSED_OPEN_CIRCUITS). Default 14.
	MaxCleanCircuits int
	// CleanIdleTimeout closes clean circuits never used for this long.
	// Default 30 minutes.
	CleanIdleTimeout time.Duration
	// UntrackedIdleTimeout: a dirty, expired circuit that carried
	// streams obtained with Get (which the manager cannot see close) is
	// closed once unused this long. Default 10 minutes.
	UntrackedIdleTimeout time.Duration

	// MaxBuildAttempts per request, each on a new path. Default 3.
	MaxBuildAttempts int
	// RetryBackoff is the pause after the first failed attempt; it
	// doubles per attempt up to MaxRetryBackoff. Defaults 250 ms / 5 s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// MaxFailuresPerPeriod: once this many builds failed within one
	// NewCircuitPeriod, prebuilding pauses until the next period (C tor
	// MAX_CIRCUIT_FAILURES). Default 5.
	MaxFailuresPerPeriod int
	// MaxCircuits bounds live plus pending circuits. Default 1024.
	MaxCircuits int

	// OnEvent, if set, receives circuit and stream events in order. It
	// is called without the manager's lock held but must not call Get,
	// Attach, NewIdentity or Close; Circuits and Metrics are fine.
	OnEvent func(Event)
	// Logger for debug logs (isolation keys appear as 8-hex tags only).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defi := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxCircuitDirtiness, 10*time.Minute)
	def(&c.CircuitBuildTimeout, 60*time.Second)
	def(&c.NewCircuitPeriod, 30*time.Second)
	def(&c.MaintenanceInterval, time.Second)
	def(&c.PredictedPortTTL, time.Hour)
	def(&c.CleanIdleTimeout, 30*time.Minute)
	def(&c.UntrackedIdleTimeout, 10*time.Minute)
	def(&c.RetryBackoff, 250*time.Millisecond)
	def(&c.MaxRetryBackoff, 5*time.Second)
	defi(&c.MaxPredictedPorts, 32)
	defi(&c.MinCleanPerPort, 2)
	defi(&c.MaxCleanCircuits, 14)
	defi(&c.MaxBuildAttempts, 3)
	defi(&c.MaxFailuresPerPeriod, 5)
	defi(&c.MaxCircuits, 1024)
	if c.PredictedPorts == nil {
		c.PredictedPorts = []uint16{80, 443}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// EventType says what happened.
type EventType uint8

// Event types. Circuit states follow the control-spec CIRC event names
// where one exists.
const (
	EventCircLaunched   EventType = iota + 1 // LAUNCHED: a build attempt started
	EventCircBuilt                           // BUILT
	EventCircFailed                          // FAILED: a build attempt failed
	EventCircClosed                          // CLOSED
	EventCircUnusable                        // dirty too long or NEWNYM: no new streams
	EventStreamAttached                      // a stream was attached to CircID
	EventStreamDetached                      // an attached stream was released
)

func (t EventType) String() string {
	switch t {
	case EventCircLaunched:
		return "LAUNCHED"
	case EventCircBuilt:
		return "BUILT"
	case EventCircFailed:
		return "FAILED"
	case EventCircClosed:
		return "CLOSED"
	case EventCircUnusable:
		return "UNUSABLE"
	case EventStreamAttached:
		return "STREAM_ATTACHED"
	case EventStreamDetached:
		return "STREAM_DETACHED"
	}
	return "UNKNOWN"
}

// Event is a circuit or stream event, for the control port.
type Event struct {
	Type     EventType
	CircID   uint64
	Purpose  string // "GENERAL" (on demand) or "PREBUILT" (predicted port)
	Port     uint16 // the usage port of the build / stream
	StreamID uint64 // stream events; 0 for untracked streams (Get)
	KeyTag   string // 8-hex isolation key tag (stream events, first binding)
	Reason   string // failures, closes, unusable
}

// Info describes one circuit for Circuits (and GETINFO circuit-status).
type Info struct {
	ID         uint64
	State      string // "LAUNCHED", "CLEAN", "IN_USE", "UNUSABLE"
	Purpose    string
	Port       uint16 // port it was built for
	Created    time.Time
	DirtySince time.Time // zero while clean
	// Class is the isolation flags of the first stream; KeyTag its key
	// tag; Mixed the fields later streams differed on.
	Class  isolation.Flags
	KeyTag string
	Mixed  isolation.Flags
	// Keys are the tags of the distinct keys attached (at most
	// maxKeysPerCircuit are remembered).
	Keys []string
	// Streams are the attached stream IDs (Attach); Untracked counts
	// streams obtained with Get.
	Streams   []uint64
	Untracked int
}

// Metrics are the manager's counters.
type Metrics struct {
	// IsolationHits: streams attached to an already open compatible
	// circuit. PendingJoins: streams that shared a build launched for a
	// compatible stream. IsolationMisses: streams that needed a new
	// circuit (a prebuilt one or a new build).
	IsolationHits, PendingJoins, IsolationMisses uint64
	PrebuiltUsed                                 uint64 // misses served by a clean prebuilt circuit
	Builds, BuildFailures, Retries               uint64 // build attempts, failed attempts, attempts after a failure
	Closed                                       uint64
	Live, Clean, Pending                         int
	// CircuitsByClass counts open circuits bound to a stream, by the
	// isolation flags of their first stream (Flags.String()).
	CircuitsByClass map[string]int
}
