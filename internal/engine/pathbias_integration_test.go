package engine

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/guard"
	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/testnet"
)

// Path bias (path-spec §7) counts real circuits through the private
// network's C tor guard: every exit circuit extended past its guard is a
// build attempt, completed ones successes; streams answered (by the
// destination, or by the exit with END) are use successes; the counts
// reach the state file as C tor writes them.
func TestPathBiasCountsRealCircuits(t *testing.T) {
	n := testnet.Shared(t)
	srv, err := testnet.StartHTTPServer(1 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := startEngine(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const streams = 3
	for i := range streams {
		// Each token isolates: a circuit of its own.
		conn, err := c.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port), isolation.Token(100+i))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		conn.Close()
	}
	var pb guard.PathBiasCounts
	for _, g := range c.guards.Sampled() {
		if g.Primary && g.Confirmed && g.PathBias.CircAttempts > pb.CircAttempts {
			pb = g.PathBias
		}
	}
	t.Logf("primary guard's path bias counts: %+v", pb)
	if pb.CircAttempts < streams || pb.CircSuccesses < streams || pb.CircSuccesses > pb.CircAttempts {
		t.Errorf("build counts %+v after %d circuits", pb, streams)
	}
	if pb.UseAttempts < streams || pb.UseSuccesses < streams || pb.Unusable != 0 || pb.Collapsed != 0 || pb.Disabled {
		t.Errorf("use counts %+v after %d answered streams", pb, streams)
	}

	c.Stop()
	b, err := os.ReadFile(filepath.Join(c.Config().DataDirectory, guard.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`pb_use_attempts=([0-9.]+) pb_use_successes=([0-9.]+) pb_circ_attempts=([0-9.]+) pb_circ_successes=([0-9.]+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no path bias counts in the state file:\n%s", b)
	}
	for i, min := range []float64{streams, streams, streams, streams} {
		if v, _ := strconv.ParseFloat(string(m[i+1]), 64); v < min {
			t.Errorf("state file: %s", m[0])
		}
	}
	t.Logf("state file: %s", m[0])
}
