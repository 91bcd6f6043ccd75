package circuit_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/congestion"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/netdoc"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/testnet"
)

// ccAlg0 is the package network's ConsensusParams: congestion control
// off (prop 324 §6.5.1 cc_alg=0), as a network would turn it off.
const ccAlg0 = "ConsensusParams cc_alg=0"

// TestCCFallbackWithCCAlg0: the authorities vote cc_alg=0, so the
// client's choice (HopFor over the consensus's parameters and the
// exit's protocols) is ntor v3 without the congestion control request;
// an explicit request is refused by both C tor exits (their consensus
// says 0), leaving fixed windows; and a 10 MiB download over such a
// circuit, with stream and circuit SENDME windows, arrives intact.
func TestCCFallbackWithCCAlg0(t *testing.T) {
	p := targets(t)
	n := testnet.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cons := fetchConsensus(t, ctx, n)
	if v, ok := cons.Params["cc_alg"]; !ok || v != 0 {
		t.Fatalf("consensus params %v: want cc_alg=0 (%q)", cons.Params, ccAlg0)
	}
	dir := &netdir.NetDir{Params: cons.Params}
	cc := congestion.ParamsFrom(dir.Param, congestion.PathExit)
	byID := map[[20]byte]netdoc.RouterStatus{}
	for _, rs := range cons.Routers {
		byID[rs.Identity] = rs
	}

	srv, err := testnet.StartHTTPServer(10 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mgr := channel.NewManager()
	defer mgr.Close()
	for _, ex := range p.Exits {
		rs := byID[ex.RSAID]
		r := &netdir.Relay{RSAID: ex.RSAID, Ed25519ID: ex.Ed25519ID, HasEd25519: true, NtorOnionKey: ex.NtorKey,
			Addr: ex.Addr.Addr(), ORPort: ex.Addr.Port(), Protocols: rs.Protocols}
		if !r.SupportsCongestionControl() {
			t.Fatalf("exit %s lists %q: no FlowCtrl=2 and Relay=4", p.Nicks[ex.RSAID], rs.Protocols)
		}
		if got := circuit.HopFor(r, true, cc).Handshake; got != circuit.NtorV3 {
			t.Fatalf("HopFor(%s) with cc_alg=0: handshake %d, want NtorV3 (%d)", p.Nicks[ex.RSAID], got, circuit.NtorV3)
		}

		// Ask anyway: the exit refuses.
		c, err := circuit.Build(ctx, mgr, []circuit.Target{p.Relays[0], p.Relays[1]})
		if err != nil {
			t.Fatal(err)
		}
		req := ex
		req.Handshake = circuit.NtorV3CC
		if err := c.Extend(ctx, req); err != nil {
			t.Fatalf("extend to %s with the CC request: %v", p.Nicks[ex.RSAID], err)
		}
		if on, inc := c.CongestionControl(); on || inc != circuit.CircWindowIncrement {
			t.Fatalf("exit %s with cc_alg=0 accepted congestion control (sendme_inc %d)", p.Nicks[ex.RSAID], inc)
		}
		if ex != p.Exits[0] { // one download is enough (CI time)
			t.Logf("exit %s refused congestion control under cc_alg=0", p.Nicks[ex.RSAID])
			c.Close()
			continue
		}
		start := time.Now()
		s, err := stream.Begin(ctx, c, "127.0.0.1", uint16(srv.Port), 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(s, "GET /random HTTP/1.0\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		nb, err := io.Copy(h, resp.Body)
		if err != nil || nb != int64(srv.Size) || hex.EncodeToString(h.Sum(nil)) != srv.SHA256 {
			t.Fatalf("download through %s: %d bytes, err %v", p.Nicks[ex.RSAID], nb, err)
		}
		t.Logf("exit %s refused congestion control under cc_alg=0; fixed windows: 10 MiB in %v",
			p.Nicks[ex.RSAID], time.Since(start).Round(time.Millisecond))
		s.Close()
		c.Close()
	}
}

func fetchConsensus(t *testing.T, ctx context.Context, n *testnet.Network) *netdoc.Consensus {
	t.Helper()
	a := n.Authorities()[0]
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+a.DirAddr()+"/tor/status-vote/current/consensus-microdesc", nil)
	req.Header.Set("Accept-Encoding", "identity") // tor would deflate for Go's default "gzip"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	c, err := netdoc.ParseConsensus(string(b))
	if err != nil {
		t.Fatalf("consensus: %v (%q...)", err, strings.SplitN(string(b), "\n", 2)[0])
	}
	return c
}
