package main_test

// The control port and MetricsPort of the gotor binary, driven by stem
// (Debian's python3-stem) and the Prometheus text parser, while streams
// run through real C tor relays.

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/itest"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gotor/gotor/internal/testnet"
)

func hashPassword(t *testing.T, pw string) string {
	out, err := exec.Command("tor", "--quiet", "--hash-password", pw).Output()
	if err != nil {
		t.Fatalf("tor --hash-password: %v", err)
	}
	lines := strings.Fields(string(out))
	return lines[len(lines)-1]
}

func TestControlPortWithStem(t *testing.T) {
	n := testnet.Shared(t)
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Fatal("python3 is needed: apt-get install -y python3-stem")
	}
	if err := exec.Command(py, "-c", "import stem").Run(); err != nil {
		t.Fatal("stem is needed: apt-get install -y python3-stem")
	}
	srv, err := testnet.StartHTTPServer(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctrlPort, metricsPort := itest.FreePort(t), itest.FreePort(t)
	g := startGotor(t, n, fmt.Sprintf("ControlPort %d\nCookieAuthentication 1\nHashedControlPassword %s\nMetricsPort 127.0.0.1:%d\nMetricsPortPolicy accept 127.0.0.1\n",
		ctrlPort, hashPassword(t, "gotor-secret"), metricsPort))

	// Keep streams running so stem sees STREAM events and circuits.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			exec.CommandContext(ctx, "curl", "-s", "-o", "/dev/null", "--socks5-hostname", g.socks, srv.URL+"/random").Run()
		}
	}()

	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "internal", "control", "testdata", "stem_check.py")
	_, socksPort, _ := strings.Cut(g.socks, ":")
	_, streamPort, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	out, err := exec.Command(py, script, "--port", fmt.Sprint(ctrlPort), "--password", "gotor-secret", "--expect-cookie",
		"--socks-port", socksPort, "--stream-port", streamPort, "--wait-events", "20").CombinedOutput()
	t.Logf("stem against gotor:\n%s", out)
	if err != nil {
		t.Fatalf("stem checks failed: %v", err)
	}

	// MetricsPort: valid Prometheus text with the client's metrics.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("MetricsPort output does not parse: %v", err)
	}
	for _, name := range []string{"gotor_bootstrap_percent", "gotor_circuits_built_total", "gotor_circuit_build_seconds",
		"gotor_streams_opened_total", "gotor_isolation_hits_total", "gotor_circuits_by_isolation_class", "gotor_isolation_misses_total", "gotor_traffic_read_bytes_total"} {
		if fams[name] == nil {
			var have []string
			for k := range fams {
				have = append(have, k)
			}
			t.Errorf("metric %s missing; have %v", name, have)
		}
	}
	if f := fams["gotor_bootstrap_percent"]; f != nil && f.Metric[0].GetGauge().GetValue() != 100 {
		t.Errorf("gotor_bootstrap_percent = %v, want 100", f.Metric[0].GetGauge().GetValue())
	}
	if f := fams["gotor_streams_opened_total"]; f != nil && f.Metric[0].GetCounter().GetValue() < 1 {
		t.Errorf("no stream counted")
	}
	_ = time.Second
}
