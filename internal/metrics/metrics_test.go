package metrics

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams
}

func counter(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	for _, m := range f.Metric {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func TestScrape(t *testing.T) {
	m := New()
	m.RegisterRuntime()
	m.SetBootstrap(85)
	m.CircuitLaunched()
	m.CircuitLaunched()
	m.CircuitLaunched()
	m.CircuitBuilt(1200 * time.Millisecond)
	m.CircuitBuilt(300 * time.Millisecond)
	m.CircuitFailed("TIMEOUT")
	m.CircuitClosed()
	m.StreamOpened()
	m.StreamOpened()
	m.StreamClosed()
	m.StreamFailed("EXITPOLICY")
	m.StreamFailed("")
	m.AddTraffic(5000, 700)
	m.IsolationHit()
	m.IsolationHit()
	m.IsolationMiss()

	pol, _ := ParsePolicy("accept 127.0.0.1")
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Policy: pol}, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fams := scrape(t, "http://"+s.Addr().String()+"/metrics")

	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gotor_bootstrap_percent", nil, 85},
		{"gotor_circuits_launched_total", nil, 3},
		{"gotor_circuits_built_total", nil, 2},
		{"gotor_circuits_failed_total", []string{"reason", "TIMEOUT"}, 1},
		{"gotor_circuits_open", nil, 1},
		{"gotor_streams_opened_total", nil, 2},
		{"gotor_streams_open", nil, 1},
		{"gotor_streams_failed_total", []string{"reason", "EXITPOLICY"}, 1},
		{"gotor_streams_failed_total", []string{"reason", "UNKNOWN"}, 1},
		{"gotor_traffic_read_bytes_total", nil, 5000},
		{"gotor_traffic_written_bytes_total", nil, 700},
		{"gotor_isolation_hits_total", nil, 2},
		{"gotor_isolation_misses_total", nil, 1},
	}
	for _, c := range checks {
		if got := counter(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := fams["gotor_circuit_build_seconds"]
	if h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatal("histogram missing")
	}
	hist := h.Metric[0].Histogram
	if hist.GetSampleCount() != 2 || hist.GetSampleSum() < 1.49 || hist.GetSampleSum() > 1.51 {
		t.Fatalf("histogram count %d sum %v", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.Bucket {
		if b.GetUpperBound() == 0.5 && b.GetCumulativeCount() != 1 {
			t.Fatalf("bucket 0.5 = %d", b.GetCumulativeCount())
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Fatal("runtime collectors missing")
	}

	// Only /metrics, only GET/HEAD.
	resp, err := http.Get("http://" + s.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/ gave %s", resp.Status)
	}
	resp, err = http.Post("http://"+s.Addr().String()+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("POST gave %s", resp.Status)
	}
}

func TestNilMetricsNoop(t *testing.T) {
	var m *Metrics
	m.SetBootstrap(1)
	m.CircuitLaunched()
	m.CircuitBuilt(time.Second)
	m.CircuitFailed("x")
	m.CircuitClosed()
	m.StreamOpened()
	m.StreamFailed("x")
	m.StreamClosed()
	m.AddTraffic(1, 2)
	m.IsolationHit()
	m.IsolationMiss()
	m.RegisterRuntime()
}

func TestPolicy(t *testing.T) {
	p, err := ParsePolicy("accept 127.0.0.1, reject 10.0.0.0/8", "accept 10.1.2.3:*,accept [::1]:9035, accept6 2001:db8::/32", "reject *")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": false, "10.1.2.3": false, "10.9.9.9": false,
		"::1": true, "2001:db8::5": true, "2001:db9::5": false, "192.0.2.1": false,
		"::ffff:127.0.0.1": true,
	} {
		if got := p.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: got %v want %v", addr, got, want)
		}
	}
	p, _ = ParsePolicy("accept private")
	if !p.Allows(netip.MustParseAddr("192.168.1.1")) || p.Allows(netip.MustParseAddr("8.8.8.8")) {
		t.Fatal("private")
	}
	p, _ = ParsePolicy("accept *4")
	if !p.Allows(netip.MustParseAddr("8.8.8.8")) || p.Allows(netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("*4")
	}
	if (Policy{}).Allows(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("empty policy must reject")
	}
	for _, bad := range []string{"allow 1.2.3.4", "accept", "accept 1.2.3.4/99", "accept6 1.2.3.4", "accept [::1"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Without a policy every client is refused, loopback too (C tor; issue
// 17 item 20), as with "reject *".
func TestPolicyRejectsConnection(t *testing.T) {
	for _, pol := range []string{"", "reject *"} {
		t.Run(pol, func(t *testing.T) { testRejected(t, pol) })
	}
}

func testRejected(t *testing.T, pol string) {
	m := New()
	var p Policy
	if pol != "" {
		p, _ = ParsePolicy(pol)
	}
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Policy: p}, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /metrics HTTP/1.0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) != 0 {
		t.Fatalf("rejected client got %q (%v)", b, err)
	}
	if _, err := NewServer(ServerConfig{Addr: "0.0.0.0:9035"}, m); err == nil {
		t.Fatal("non-loopback accepted")
	}
}
