// Package metrics holds gotor's Prometheus metrics and serves them on the
// MetricsPort (tor manual: MetricsPort, MetricsPortPolicy), in the
// Prometheus text exposition format at GET /metrics.
//
// This file: the metric handles the client updates. All methods are safe
// for concurrent use and are no-ops on a nil *Metrics, so callers need no
// "metrics enabled?" checks.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric name.
const Namespace = "gotor"

// CircuitBuildBuckets are the histogram buckets for circuit build times,
// in seconds; they cover tor's circuit-build-timeout range (path-spec §2.4).
var CircuitBuildBuckets = []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60}

// Metrics is the set of client metrics. The fields are exported for callers
// that need the raw handles; the methods cover the usual updates.
type Metrics struct {
	Registry *prometheus.Registry

	// BootstrapPercent is the bootstrap progress, 0..100.
	BootstrapPercent prometheus.Gauge

	// CircuitsLaunched counts circuits whose first CREATE was sent.
	CircuitsLaunched prometheus.Counter
	// CircuitsBuilt counts circuits that completed all hops.
	CircuitsBuilt prometheus.Counter
	// CircuitsFailed counts circuits that failed before being built, by
	// reason (a control-spec §4.1.1 Reason such as "TIMEOUT").
	CircuitsFailed *prometheus.CounterVec
	// CircuitsOpen is the number of built, not yet closed circuits.
	CircuitsOpen prometheus.Gauge
	// CircuitBuildSeconds is the time from launch to built.
	CircuitBuildSeconds prometheus.Histogram

	// StreamsOpened counts streams that got RELAY_CONNECTED (or resolved).
	StreamsOpened prometheus.Counter
	// StreamsFailed counts streams that failed, by reason (control-spec
	// §4.1.2 Reason such as "EXITPOLICY", "TIMEOUT").
	StreamsFailed *prometheus.CounterVec
	// StreamsOpen is the number of open streams.
	StreamsOpen prometheus.Gauge

	// BytesRead and BytesWritten count bytes on all channels (what GETINFO
	// traffic/read and traffic/written report).
	BytesRead    prometheus.Counter
	BytesWritten prometheus.Counter

	// IsolationHits counts streams attached to an existing circuit whose
	// isolation key was compatible; IsolationMisses counts streams for
	// which an existing clean circuit could not be used because of
	// isolation, so a new circuit was needed.
	IsolationHits   prometheus.Counter
	IsolationMisses prometheus.Counter
}

// New creates the metrics in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		BootstrapPercent: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "bootstrap_percent",
			Help: "Bootstrap progress in percent (control-spec 5.5).",
		}),
		CircuitsLaunched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "circuits_launched_total",
			Help: "Circuits launched.",
		}),
		CircuitsBuilt: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "circuits_built_total",
			Help: "Circuits that completed all their hops.",
		}),
		CircuitsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "circuits_failed_total",
			Help: "Circuits that failed before being built, by reason.",
		}, []string{"reason"}),
		CircuitsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "circuits_open",
			Help: "Built circuits not yet closed.",
		}),
		CircuitBuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "circuit_build_seconds",
			Help:    "Time from circuit launch to built.",
			Buckets: CircuitBuildBuckets,
		}),
		StreamsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "streams_opened_total",
			Help: "Streams successfully opened.",
		}),
		StreamsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "streams_failed_total",
			Help: "Streams that failed, by reason.",
		}, []string{"reason"}),
		StreamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "streams_open",
			Help: "Open streams.",
		}),
		BytesRead: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "traffic_read_bytes_total",
			Help: "Bytes read from the Tor network.",
		}),
		BytesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "traffic_written_bytes_total",
			Help: "Bytes written to the Tor network.",
		}),
		IsolationHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "isolation_hits_total",
			Help: "Streams attached to an existing circuit with a compatible isolation key.",
		}),
		IsolationMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "isolation_misses_total",
			Help: "Streams that needed a new circuit because no open circuit had a compatible isolation key.",
		}),
	}
	m.Registry.MustRegister(m.BootstrapPercent, m.CircuitsLaunched, m.CircuitsBuilt,
		m.CircuitsFailed, m.CircuitsOpen, m.CircuitBuildSeconds, m.StreamsOpened,
		m.StreamsFailed, m.StreamsOpen, m.BytesRead, m.BytesWritten,
		m.IsolationHits, m.IsolationMisses)
	return m
}

// RegisterRuntime adds the Go runtime and process collectors
// (go_*, process_*).
func (m *Metrics) RegisterRuntime() {
	if m == nil {
		return
	}
	m.Registry.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// SetBootstrap records the bootstrap percentage.
func (m *Metrics) SetBootstrap(percent int) {
	if m != nil {
		m.BootstrapPercent.Set(float64(percent))
	}
}

// CircuitLaunched records a launched circuit.
func (m *Metrics) CircuitLaunched() {
	if m != nil {
		m.CircuitsLaunched.Inc()
	}
}

// CircuitBuilt records a circuit built after d; it is now open.
func (m *Metrics) CircuitBuilt(d time.Duration) {
	if m != nil {
		m.CircuitsBuilt.Inc()
		m.CircuitsOpen.Inc()
		m.CircuitBuildSeconds.Observe(d.Seconds())
	}
}

// CircuitFailed records a circuit that failed before being built.
func (m *Metrics) CircuitFailed(reason string) {
	if m != nil {
		m.CircuitsFailed.WithLabelValues(label(reason)).Inc()
	}
}

// CircuitClosed records that a built circuit closed.
func (m *Metrics) CircuitClosed() {
	if m != nil {
		m.CircuitsOpen.Dec()
	}
}

// StreamOpened records a newly opened stream.
func (m *Metrics) StreamOpened() {
	if m != nil {
		m.StreamsOpened.Inc()
		m.StreamsOpen.Inc()
	}
}

// StreamFailed records a stream that failed to open.
func (m *Metrics) StreamFailed(reason string) {
	if m != nil {
		m.StreamsFailed.WithLabelValues(label(reason)).Inc()
	}
}

// StreamClosed records that an opened stream closed.
func (m *Metrics) StreamClosed() {
	if m != nil {
		m.StreamsOpen.Dec()
	}
}

// AddTraffic adds bytes read from and written to the network.
func (m *Metrics) AddTraffic(read, written uint64) {
	if m != nil {
		m.BytesRead.Add(float64(read))
		m.BytesWritten.Add(float64(written))
	}
}

// IsolationHit records a stream that reused a compatible circuit.
func (m *Metrics) IsolationHit() {
	if m != nil {
		m.IsolationHits.Inc()
	}
}

// IsolationMiss records a stream that needed a new circuit because of
// isolation.
func (m *Metrics) IsolationMiss() {
	if m != nil {
		m.IsolationMisses.Inc()
	}
}

func label(reason string) string {
	if reason == "" {
		return "UNKNOWN"
	}
	return reason
}
