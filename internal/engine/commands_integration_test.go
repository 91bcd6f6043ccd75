package engine_test

// The control port's commands against the private network of C tor
// relays: MAPADDRESS and RESOLVE (answered by the exits' resolver),
// CLOSESTREAM, CLOSECIRCUIT, SETCIRCUITPURPOSE, DROPGUARDS, DROPTIMEOUTS,
// HSFETCH of a C tor onion service's descriptor and ONION_CLIENT_AUTH_*
// for a service that requires client authorization.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/engine"
	"github.com/gotor/gotor/internal/itest"
	"github.com/gotor/gotor/internal/testnet"
)

// streamOf finds the engine's stream for a SOCKS connection.
func streamOf(t *testing.T, e *engine.Engine, conn net.Conn) engine.StreamInfo {
	t.Helper()
	for _, s := range e.Streams() {
		if s.Source == conn.LocalAddr().String() {
			return s
		}
	}
	t.Fatalf("no stream from %s", conn.LocalAddr())
	return engine.StreamInfo{}
}

// ended reports whether conn's next read ends the connection.
func ended(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.ReadAll(conn)
	return err == nil || !strings.Contains(err.Error(), "timeout")
}

func TestControlCommands(t *testing.T) {
	n := testnet.Shared(t)
	cfg := itest.Config(t, n)
	cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}}
	e := startEngine(t, cfg, true)
	c := dialCtl(t, e.ControlAddr().String())
	c.do("SETEVENTS ADDRMAP CIRC HS_DESC HS_DESC_CONTENT BUILDTIMEOUT_SET", "250 OK")
	socks := e.SocksAddrs()[0]
	echoAddr := echoServer(t)
	_, port, _ := net.SplitHostPort(echoAddr)

	// MAPADDRESS: a name and a virtual address stand for the echo server.
	c.do("MAPADDRESS mapped.example=127.0.0.1", "250 mapped.example=127.0.0.1")
	c.waitEvent(10*time.Second, `650 ADDRMAP mapped.example 127.0.0.1 NEVER CACHED="YES"`)
	echo1 := socksDial(t, socks, "mapped.example:"+port, "map")
	echo(t, echo1, "through a mapped name")
	r := c.do("MAPADDRESS 0.0.0.0=127.0.0.1", "250 127.")
	virt := strings.TrimSuffix(strings.TrimPrefix(r[0], "250 "), "=127.0.0.1")
	if ip := net.ParseIP(virt); ip == nil || !strings.HasPrefix(virt, "127.") || ip.To4()[1]&0xc0 != 0xc0 {
		t.Fatalf("virtual address %q not in 127.192.0.0/10", virt)
	}
	echo(t, socksDial(t, socks, net.JoinHostPort(virt, port), "virt"), "through a virtual address")
	r = c.do("GETINFO address-mappings/control", "250 OK")
	if got := strings.Join(r, "\n"); !strings.Contains(got, "mapped.example 127.0.0.1 NEVER") || !strings.Contains(got, virt+" 127.0.0.1 NEVER") {
		t.Errorf("address-mappings/control: %q", r)
	}
	c.do("MAPADDRESS mapped.example=mapped.example", "250 mapped.example=mapped.example")
	if r := c.do("GETINFO address-mappings/control", "250 OK"); strings.Contains(strings.Join(r, "\n"), "mapped.example 127") {
		t.Errorf("mapping not removed: %q", r)
	}

	// RESOLVE: answered at an exit, by the exits' resolver, as ADDRMAP.
	if err := n.DNS().AddName("resolve-me.test", "10.20.30.40"); err != nil {
		t.Fatal(err)
	}
	before := n.DNS().Queries("resolve-me.test")
	c.do("RESOLVE resolve-me.test no-such-name.test", "250 OK")
	// The two answers come in either order.
	var gotOK, gotErr bool
	for deadline := time.After(time.Minute); !gotOK || !gotErr; {
		select {
		case ev := <-c.events:
			gotOK = gotOK || strings.HasPrefix(ev, "650 ADDRMAP resolve-me.test 10.20.30.40 ") && strings.Contains(ev, `CACHED="NO"`)
			gotErr = gotErr || strings.HasPrefix(ev, "650 ADDRMAP no-such-name.test <error> ") && strings.Contains(ev, "error=yes")
		case <-deadline:
			t.Fatalf("RESOLVE answers: resolve-me.test %v, no-such-name.test %v", gotOK, gotErr)
		}
	}
	if n.DNS().Queries("resolve-me.test") <= before {
		t.Error("the exits' resolver was not asked")
	}

	// CLOSESTREAM ends the stream; the application sees the close.
	s1 := socksDial(t, socks, echoAddr, "closestream")
	echo(t, s1, "before CLOSESTREAM")
	c.do(fmt.Sprintf("CLOSESTREAM %d 6", streamOf(t, e, s1).ID), "250 OK")
	if !ended(s1) {
		t.Error("CLOSESTREAM left the stream open")
	}
	c.do("CLOSESTREAM 999999 6", `552 Unknown stream "999999"`)

	// CLOSECIRCUIT: IfUnused keeps a circuit with streams; without it the
	// circuit closes (REASON=REQUESTED) and its stream with it.
	s2 := socksDial(t, socks, echoAddr, "closecircuit")
	echo(t, s2, "before CLOSECIRCUIT")
	circ := streamOf(t, e, s2).CircuitID
	c.do(fmt.Sprintf("CLOSECIRCUIT %d IfUnused", circ), "250 OK")
	echo(t, s2, "IfUnused left it open")
	c.do(fmt.Sprintf("CLOSECIRCUIT %d", circ), "250 OK")
	c.waitEvent(30*time.Second, fmt.Sprintf("650 CIRC %d CLOSED ", circ), "REASON=REQUESTED")
	if !ended(s2) {
		t.Error("the stream outlived its closed circuit")
	}

	// SETCIRCUITPURPOSE CONTROLLER: the pool gives the circuit no more
	// streams, even of the credentials it carries; GENERAL gives it back.
	s3 := socksDial(t, socks, echoAddr, "purpose")
	echo(t, s3, "first stream")
	circ3 := streamOf(t, e, s3).CircuitID
	c.do(fmt.Sprintf("SETCIRCUITPURPOSE %d purpose=controller", circ3), "250 OK")
	r = c.do("GETINFO circuit-status", "250 OK")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d BUILT .*PURPOSE=CONTROLLER`, circ3)).MatchString(strings.Join(r, "\n")) {
		t.Errorf("circuit-status after SETCIRCUITPURPOSE: %q", r)
	}
	s4 := socksDial(t, socks, echoAddr, "purpose")
	echo(t, s4, "second stream")
	if got := streamOf(t, e, s4).CircuitID; got == circ3 {
		t.Error("a stream went to a CONTROLLER circuit")
	}
	echo(t, s3, "the CONTROLLER circuit's own stream goes on")
	c.do(fmt.Sprintf("SETCIRCUITPURPOSE %d purpose=general", circ3), "250 OK")
	r = c.do("GETINFO circuit-status", "250 OK")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d BUILT .*PURPOSE=GENERAL`, circ3)).MatchString(strings.Join(r, "\n")) {
		t.Errorf("circuit-status after purpose=general: %q", r)
	}

	// DROPGUARDS, DROPTIMEOUTS: streams work afterwards.
	c.do("DROPGUARDS", "250 OK")
	c.do("DROPTIMEOUTS", "250 OK")
	c.waitEvent(10*time.Second, "650 BUILDTIMEOUT_SET RESET TOTAL_TIMES=0 TIMEOUT_MS=60000 ")
	echo(t, socksDial(t, socks, echoAddr, "after-dropguards"), "after DROPGUARDS")

	// A C tor onion service that requires client authorization: HSFETCH
	// reports its descriptor; ONION_CLIENT_AUTH_ADD lets streams reach it.
	var sk [32]byte
	rand.Read(sk[:])
	pk, err := curve25519.X25519(sk[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var echoPort int
	fmt.Sscan(port, &echoPort)
	svc, err := n.StartOnionService(ctx, echoPort, [32]byte(pk))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	label := strings.TrimSuffix(svc.Hostname, ".onion")
	for deadline := time.Now().Add(2 * time.Minute); ; {
		c.do("HSFETCH "+label, "250 OK")
		ev := c.waitEvent(time.Minute, "650 HS_DESC ", label)
		for !strings.Contains(ev, " RECEIVED ") && !strings.Contains(ev, " FAILED ") {
			if !strings.Contains(ev, "HS_DESC REQUESTED "+label+" NO_AUTH $") {
				t.Fatalf("HS_DESC %q", ev)
			}
			ev = c.waitEvent(time.Minute, "650 HS_DESC ", label)
		}
		if strings.Contains(ev, " RECEIVED ") {
			content := c.waitEvent(10*time.Second, "650+HS_DESC_CONTENT "+label+" ")
			if !strings.Contains(content, "\nhs-descriptor 3\n") || !strings.HasSuffix(content, "\n.\n650 OK") {
				t.Errorf("HS_DESC_CONTENT %.300q", content)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no descriptor for %s: %s", label, ev)
		}
		time.Sleep(2 * time.Second) // the service publishes within seconds of starting
	}
	c.do("HSFETCH "+strings.Repeat("a", 52)+"aaad", `513 Invalid argument`)

	onionTarget := svc.Hostname + ":80"
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	if conn, err := itest.SOCKSDial(sctx, socks, onionTarget, "noauth"); err == nil {
		conn.Close()
		t.Error("reached the client-auth service without a key")
	}
	scancel()
	b64 := base64.StdEncoding.EncodeToString(sk[:])
	c.do("ONION_CLIENT_AUTH_ADD "+label+" x25519:"+b64+" ClientName=tester", "250 OK")
	c.do("ONION_CLIENT_AUTH_VIEW "+label, "250 OK")
	r = c.do("ONION_CLIENT_AUTH_VIEW", "250 OK")
	if want := "250-CLIENT " + label + " x25519:" + b64 + " ClientName=tester"; len(r) != 3 || r[1] != want {
		t.Errorf("ONION_CLIENT_AUTH_VIEW %q, want %q", r, want)
	}
	var conn net.Conn
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		conn, err = itest.SOCKSDial(sctx, socks, onionTarget, "withauth")
		scancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("client-auth service with the key: %v", err)
	}
	defer conn.Close()
	echo(t, conn, "through the onion service")
	c.do("ONION_CLIENT_AUTH_REMOVE "+label, "250 OK")
	c.do("ONION_CLIENT_AUTH_REMOVE "+label, `251 No credentials for "`+label+`"`)
	if r := c.do("ONION_CLIENT_AUTH_VIEW", "250 OK"); len(r) != 2 {
		t.Errorf("ONION_CLIENT_AUTH_VIEW after REMOVE: %q", r)
	}
}

// The GETINFO keys controllers read, on a bootstrapped client of the
// private network.
func TestGetInfoKeysOnNetwork(t *testing.T) {
	n := testnet.Shared(t)
	cfg := itest.Config(t, n)
	cfg.ControlPorts = []config.ControlPortConfig{{Addr: "127.0.0.1:0"}}
	e := startEngine(t, cfg, true)
	c := dialCtl(t, e.ControlAddr().String())
	conn := socksDial(t, e.SocksAddrs()[0], echoServer(t), "getinfo")
	echo(t, conn, "a stream")
	circ := streamOf(t, e, conn).CircuitID
	var guard engine.Hop
	for _, ci := range e.Circuits() {
		if ci.ID == circ {
			guard = ci.Path[0]
		}
	}

	r := c.do("GETINFO entry-guards", "250 OK")
	lines := strings.Join(r, "\n")
	if !regexp.MustCompile(`\$` + guard.Fingerprint + `~` + guard.Nickname + ` up`).MatchString(lines) {
		t.Errorf("entry-guards lacks the circuit's guard %s up:\n%s", guard.Nickname, lines)
	}
	for _, l := range r[1 : len(r)-2] {
		if !regexp.MustCompile(`^\$[0-9A-F]{40}(~[A-Za-z0-9]+)? (up|down|never-connected|unusable)$`).MatchString(l) {
			t.Errorf("entry-guards line %q", l)
		}
	}
	r = c.do("GETINFO orconn-status", "250 OK")
	if !strings.Contains(strings.Join(r, "\n"), "$"+guard.Fingerprint+"~"+guard.Nickname+" CONNECTED") {
		t.Errorf("orconn-status lacks the guard's channel: %q", r)
	}
	r = c.do("GETINFO md/id/"+guard.Fingerprint, "250 OK")
	if r[0] != "250+md/id/"+guard.Fingerprint+"=" || r[1] != "onion-key" && !strings.HasPrefix(r[1], "ntor-onion-key") ||
		!strings.Contains(strings.Join(r, "\n"), "\nntor-onion-key ") {
		t.Errorf("md/id of the guard: %q", r)
	}
	c.do("GETINFO md/id/"+strings.Repeat("0", 40), `552 Unrecognized key`)
	r = c.do("GETINFO md/all", "250 OK")
	if got := strings.Count(strings.Join(r, "\n"), "\nntor-onion-key "); got < len(n.Relays()) {
		t.Errorf("md/all has %d microdescriptors for %d relays", got, len(n.Relays()))
	}
	for key, re := range map[string]string{
		"status/version/current":     `^250-status/version/current=(recommended|obsolete|new|new in series|unrecommended|none recommended)$`,
		"network-liveness":           `^250-network-liveness=up$`,
		"status/bootstrap-phase":     `^250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"$`,
		"status/circuit-established": `^250-status/circuit-established=1$`,
		"ns/purpose/bridge":          `^250-ns/purpose/bridge=$`,
		"uptime":                     `^250-uptime=[0-9]+$`,
		"process/descriptor-limit":   `^250-process/descriptor-limit=[1-9][0-9]*$`,
	} {
		r := c.do("GETINFO "+key, "250 OK")
		if !regexp.MustCompile(re).MatchString(r[0]) {
			t.Errorf("GETINFO %s: %q", key, r)
		}
	}
	// A second of traffic shows in bw-event-cache.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		echo(t, conn, "traffic")
		r := c.do("GETINFO bw-event-cache", "250 OK")
		if regexp.MustCompile(`[1-9][0-9]*,[1-9][0-9]*`).MatchString(r[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bw-event-cache shows no traffic: %q", r)
		}
	}
}
