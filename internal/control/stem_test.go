package control

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

// TestStemInterop drives the server with stem (Debian python3-stem) through
// testdata/stem_check.py: cookie, SAFECOOKIE and password authentication, a
// refused wrong password, GETINFO, get_circuits/get_streams, SIGNAL NEWNYM
// and CIRC/STREAM events emitted by the fake backend.
func TestStemInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	py := testnet.NeedStem(t)
	ts := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Emit CIRC and STREAM events until the script is done.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			c := ts.b.Circuits()[0]
			ts.b.emit(Event{Type: EventCirc, Circuit: &c})
			s := ts.b.Streams()[0]
			ts.b.emit(Event{Type: EventStream, Stream: &s})
			ts.b.read.Add(1000)
		}
	}()

	_, port, _ := strings.Cut(ts.addr, ":")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, py, "testdata/stem_check.py",
		"--port", port, "--password", "foo", "--expect-cookie", "--expect-fake", "--wait-events", "15")
	out, err := cmd.CombinedOutput()
	t.Logf("stem_check.py:\n%s", out)
	if err != nil {
		t.Fatalf("stem_check.py failed: %v", err)
	}
	if got := ts.b.gotSignals(); len(got) == 0 || got[0] != "NEWNYM" {
		t.Fatalf("backend signals %v", got)
	}
}

// TestDemoServer runs the server with the fake backend for manual testing
// with nyx or telnet when GOTOR_CONTROL_DEMO=host:port is set, for
// GOTOR_CONTROL_DEMO_SECONDS (default 120), password "foo":
//
//	GOTOR_CONTROL_DEMO=127.0.0.1:9051 go test -run TestDemoServer ./internal/control
func TestDemoServer(t *testing.T) {
	addr := os.Getenv("GOTOR_CONTROL_DEMO")
	if addr == "" {
		t.Skip("GOTOR_CONTROL_DEMO not set")
	}
	secs, _ := strconv.Atoi(os.Getenv("GOTOR_CONTROL_DEMO_SECONDS"))
	if secs <= 0 {
		secs = 120
	}
	ts := startServer(t, func(c *Config) { c.Listeners = []ListenerConfig{{Addr: addr}}; c.BWInterval = time.Second })
	t.Logf("control port on %s, cookie %s, password foo", ts.addr, ts.s.CookieFile())
	end := time.After(time.Duration(secs) * time.Second)
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for i := 0; ; i++ {
		select {
		case <-end:
			return
		case <-tk.C:
		}
		ts.b.read.Add(uint64(20000 + 1000*(i%7)))
		ts.b.written.Add(uint64(3000 + 500*(i%5)))
		c := ts.b.Circuits()[i%2]
		ts.b.emit(Event{Type: EventCirc, Circuit: &c})
		s := ts.b.Streams()[0]
		ts.b.emit(Event{Type: EventStream, Stream: &s})
		ts.b.emit(Event{Type: EventNotice, Message: "demo notice " + strconv.Itoa(i)})
	}
}
