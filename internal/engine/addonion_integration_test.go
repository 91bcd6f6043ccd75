package engine_test

// ADD_ONION and DEL_ONION (control-spec §3.27, §3.28) driven by stem's
// create_ephemeral_hidden_service / remove_ephemeral_hidden_service
// (testdata/stem_add_onion.py) against gotor on the private network: the
// service stem adds is reachable by the C tor reference client; after
// DEL_ONION a fresh C tor client cannot reach it; a service goes with the
// controller that added it unless it is detached.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

// onionGet fetches path from host:80 through the SOCKS port, once.
func onionGet(ctx context.Context, socks, host, path string) ([]byte, error) {
	conn, err := itest.SOCKSDial(ctx, socks, host+":80", "")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func TestAddOnionWithStem(t *testing.T) {
	n := testnet.Shared(t)
	py := testnet.NeedStem(t)
	srv, err := testnet.StartHTTPServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := itest.Config(t, n)
	cfg.SocksPorts = nil
	cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}}
	e := startEngine(t, cfg, true)
	_, port, _ := strings.Cut(e.ControlAddr().String(), ":")

	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(py, filepath.Join(filepath.Dir(file), "testdata", "stem_add_onion.py"), port, fmt.Sprint(srv.Port))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stem script: %v", err)
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Error("stem script did not finish")
		}
	}()
	lines := make(chan []string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.Fields(sc.Text())
		}
		close(lines)
	}()
	next := func(tag string) []string {
		t.Helper()
		select {
		case f, ok := <-lines:
			if !ok || len(f) == 0 || f[0] != tag {
				t.Fatalf("stem script: got %q, want a %s line", f, tag)
			}
			return f
		case <-time.After(3 * time.Minute):
			t.Fatalf("stem script: no %s line", tag)
		}
		return nil
	}

	// ADD_ONION NEW:ED25519-V3 Port=80,<the HTTP server>, awaiting the
	// HS_DESC UPLOADED event.
	f := next("SERVICE")
	id, keyType := f[1], f[2]
	t.Logf("stem: service %s published %s s after ADD_ONION", id[:8], f[4])
	if keyType != "ED25519-V3" || !slices.Contains(e.HostedForTest(), id+"*") {
		t.Fatalf("key type %s; engine hosts %v, want %s*", keyType, e.HostedForTest(), id)
	}
	ref := testnet.SharedReferenceClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	start := time.Now()
	var body []byte
	for {
		actx, acancel := context.WithTimeout(ctx, 60*time.Second)
		body, err = onionGet(actx, ref.SocksAddr(), id+".onion", "/random")
		acancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	cancel()
	if err != nil {
		t.Fatalf("C tor client fetching from the ADD_ONION service: %v", err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != srv.SHA256 {
		t.Fatalf("C tor client got %d bytes, not the server's 1 MiB", len(body))
	}
	t.Logf("C tor client fetched 1 MiB from the ADD_ONION service in %v", time.Since(start).Round(time.Millisecond))

	// DEL_ONION: the service leaves the engine, its intro points close;
	// a fresh C tor client finds the descriptor (it stays on the HSDirs)
	// but cannot introduce itself: on a SocksPort with ExtendedErrors it
	// reports 0xF2, "onion service introduction failed" (not 0xF0,
	// descriptor not found).
	fmt.Fprintln(stdin, "DEL")
	f = next("REMOVED")
	if f[1] != "True" || f[2] != "False" || f[3] != "current=" {
		t.Fatalf("remove_ephemeral_hidden_service: %q, want True False current=", f)
	}
	if slices.Contains(e.HostedForTest(), id+"*") {
		t.Fatalf("engine still hosts %s after DEL_ONION", id)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	extSocks := fmt.Sprintf("127.0.0.1:%d", itest.FreePort(t))
	fresh, err := n.StartReferenceClientWith(ctx, "SocksPort "+extSocks+" ExtendedErrors")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Stop()
	start = time.Now()
	actx, acancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = onionGet(actx, extSocks, id+".onion", "/random")
	acancel()
	if err == nil || !strings.Contains(err.Error(), "unknown code: 242") {
		t.Fatalf("a fresh C tor client after DEL_ONION: %v, want SOCKS reply 0xF2 (introduction failed)", err)
	}
	t.Logf("a fresh C tor client after DEL_ONION: %v (after %v)", err, time.Since(start).Round(time.Millisecond))

	// Ownership: the service of a closed controller is gone, the
	// detached one (with the deleted service's key: the same address)
	// stays until DEL_ONION from a third controller.
	fmt.Fprintln(stdin, "OWN")
	f = next("OWNED")
	owned, detached := f[1], f[3]
	if detached != id || f[5] != "refused" {
		t.Fatalf("the detached service with the first key is %s, want %s; the same key again: %s, want refused", detached, id, f[5])
	}
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(e.HostedForTest(), owned+"*") {
		if time.Now().After(deadline) {
			t.Fatalf("the service of a closed controller is still hosted: %v", e.HostedForTest())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Contains(e.HostedForTest(), detached+"*") {
		t.Fatalf("the detached service went with its controller: %v", e.HostedForTest())
	}
	fmt.Fprintln(stdin, "CHECK")
	f = next("DETACHEDLIST")
	if f[1] != detached || f[3] != "True" {
		t.Fatalf("third controller: %q, want onions/detached=%s and REMOVED True", f, detached)
	}
	if h := e.HostedForTest(); len(h) != 0 {
		t.Fatalf("engine still hosts %v", h)
	}
}
