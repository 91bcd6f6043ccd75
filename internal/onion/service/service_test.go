package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
	"golang.org/x/crypto/curve25519"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func started(t *testing.T, s *Service) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.WaitPublished(ctx); err != nil {
		t.Fatalf("not published: %v %+v", err, s.Stats())
	}
	uploadsIdle(t, s)
}

// uploadsIdle waits until no upload is in flight.
func uploadsIdle(t *testing.T, s *Service) {
	t.Helper()
	waitFor(t, "uploads to finish", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range s.descs {
			if d.inFlight > 0 {
				return false
			}
		}
		return true
	})
}

// introduce1 builds an INTRODUCE1 body for ip as a client does
// (rend-spec §3.2, §3.3), naming rp as the rendezvous point.
func introduce1(t *testing.T, ip hsdesc.IntroPoint, subcred [32]byte, cookie [20]byte, rp *netdir.Relay) ([]byte, *hscrypto.ClientHandshake) {
	t.Helper()
	header, err := hscell.Introduce1Header(ip.AuthKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := hscell.IntroducePlaintext{RendezvousCookie: cookie, OnionKey: rp.NtorOnionKey,
		LinkSpecs: hscell.LinkSpecsFor(rp.ORAddrPort(), rp.RSAID, &rp.Ed25519ID, rp.IPv6)}
	pt, err := plain.Encode(len(header))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := hscrypto.NewClientHandshake(rand.Reader, ip.AuthKey, ip.EncKey, subcred)
	if err != nil {
		t.Fatal(err)
	}
	return append(header, hs.EncryptIntro(header, pt)...), hs
}

func (w *fakeWorld) nextRend(t *testing.T, wait time.Duration) *fakeCirc {
	t.Helper()
	select {
	case c := <-w.rends:
		return c
	case <-time.After(wait):
		return nil
	}
}

// The whole service side against fakes: descriptors a client can decode
// listing every established intro point; INTRODUCE2 leading to
// RENDEZVOUS1 whose HANDSHAKE_INFO the client accepts, on a circuit to the
// rendezvous point named in it; and every kind of bad INTRODUCE2 dropped
// and counted without disturbing the intro circuit.
func TestPublishAndIntroduce(t *testing.T) {
	w := newFakeWorld(t, 12)
	s := w.newService(Config{})
	started(t, s)
	d, subcred, err := w.descriptor(s.OnionAddress(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.IntroPoints) != DefaultIntroPoints {
		t.Fatalf("descriptor lists %d intro points", len(d.IntroPoints))
	}
	for _, ip := range d.IntroPoints {
		if w.introCirc(ip.AuthKey) == nil {
			t.Fatalf("descriptor lists an intro point that was never established")
		}
		// enc-key-cert certifies the ed25519 form of the enc key.
		if ed, _ := hscrypto.EdwardsFromMontgomery(ip.EncKey); ip.EncKeyCert.CertifiedKey != ed {
			t.Fatalf("enc-key-cert certifies %x", ip.EncKeyCert.CertifiedKey)
		}
	}
	ip := d.IntroPoints[0]
	ic := w.introCirc(ip.AuthKey)
	rp := w.dir.Relays[11]
	var cookie [20]byte
	rand.Read(cookie[:])
	body, hs := introduce1(t, ip, subcred, cookie, rp)
	ic.in <- relayMsg{hscell.CmdIntroduce2, body}
	rc := w.nextRend(t, 10*time.Second)
	if rc == nil {
		t.Fatalf("no rendezvous circuit: %+v", s.Stats())
	}
	if rc.req.Last.RSAID != rp.RSAID || rc.req.Last.NtorKey != rp.NtorOnionKey || rc.req.Relay != rp {
		t.Fatalf("rendezvous circuit to %+v", rc.req.Last)
	}
	gotCookie, hsinfo, err := hscell.ParseRendezvous1(rc.rend1)
	if err != nil || gotCookie != cookie {
		t.Fatalf("RENDEZVOUS1 cookie %x: %v", gotCookie, err)
	}
	seed, err := hs.Complete(hsinfo)
	if err != nil {
		t.Fatalf("client rejects the service's HANDSHAKE_INFO: %v", err)
	}
	if hscrypto.ExpandRendKeys(seed[:]) != rc.keys {
		t.Fatal("service and client derived different virtual hop keys")
	}
	waitFor(t, "rendezvous counted", func() bool { return s.Stats().RendSucceeded == 1 })

	// Hostile or broken INTRODUCE2 cells: each is dropped and counted.
	bad := func(name string, b []byte, replay bool) {
		t.Helper()
		before := s.Stats()
		ic.in <- relayMsg{hscell.CmdIntroduce2, b}
		waitFor(t, name+" rejected", func() bool { return s.Stats().Introduce2Rejected == before.Introduce2Rejected+1 })
		if replay && s.Stats().Introduce2Replayed != before.Introduce2Replayed+1 {
			t.Errorf("%s: not counted as a replay", name)
		}
		if c := w.nextRend(t, 100*time.Millisecond); c != nil {
			t.Fatalf("%s led to a rendezvous", name)
		}
	}
	bad("replay", body, true)
	var c2 [20]byte
	rand.Read(c2[:])
	fresh, _ := introduce1(t, ip, subcred, cookie, rp) // new keys, same cookie
	bad("cookie replay", fresh, true)
	flipped, _ := introduce1(t, ip, subcred, c2, rp)
	flipped[len(flipped)-40] ^= 1
	bad("bad MAC", flipped, false)
	bad("truncated", body[:30], false)
	other := d.IntroPoints[1]
	wrongKey, _ := introduce1(t, other, subcred, c2, rp) // sent to the wrong intro circuit
	bad("wrong auth key", wrongKey, false)
	var badSubcred [32]byte
	wrongSub, _ := introduce1(t, ip, badSubcred, c2, rp)
	bad("wrong subcredential", wrongSub, false)
	legacy := append([]byte(nil), body...)
	legacy[0] = 1 // LEGACY_KEY_ID must be zero
	bad("legacy key id", legacy, false)

	// The intro circuit still works after all that.
	good, _ := introduce1(t, ip, subcred, c2, rp)
	ic.in <- relayMsg{hscell.CmdIntroduce2, good}
	if w.nextRend(t, 10*time.Second) == nil {
		t.Fatal("intro circuit unusable after bad INTRODUCE2 cells")
	}
	if st := s.Stats(); st.Introduce2 != 9 || st.Introduce2Rejected != 7 || st.IntroFailed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The DoS extension goes in ESTABLISH_INTRO when configured, with the
// rate and burst as 8-byte values (rend-spec §3.1.1.1).
func TestEstablishIntroDoSExtension(t *testing.T) {
	w := newFakeWorld(t, 8)
	s := w.newService(Config{IntroDoS: &hscell.DoSParams{RatePerSec: 25, BurstPerSec: 200}, NumIntroPoints: 1})
	started(t, s)
	w.mu.Lock()
	got := fmt.Sprint(w.estErr)
	w.mu.Unlock()
	want := "dos:" + "02" + "01" + "0000000000000019" + "02" + "00000000000000c8"
	if got != want {
		t.Fatalf("ESTABLISH_INTRO extension %s, want %s", got, want)
	}
	if _, err := New(w, Config{Identity: s.cfg.Identity, Ports: s.cfg.Ports, IntroDoS: &hscell.DoSParams{RatePerSec: 1 << 31}}); err == nil {
		t.Fatal("DoS rate above 2^31-1 accepted")
	}
}

// With authorized clients, only a client with a key reads the intro
// points; the others get "client authorization required".
func TestClientAuthDescriptor(t *testing.T) {
	w := newFakeWorld(t, 8)
	var sk [32]byte
	rand.Read(sk[:])
	pk, _ := curve25519.X25519(sk[:], curve25519.Basepoint)
	var other [32]byte
	rand.Read(other[:])
	opk, _ := curve25519.X25519(other[:], curve25519.Basepoint)
	s := w.newService(Config{AuthorizedClients: [][32]byte{[32]byte(pk), [32]byte(opk)}})
	started(t, s)
	if _, _, err := w.descriptor(s.OnionAddress(), nil); !errors.Is(err, hsdesc.ErrClientAuthRequired) {
		t.Fatalf("without a key: %v", err)
	}
	var wrong [32]byte
	rand.Read(wrong[:])
	if _, _, err := w.descriptor(s.OnionAddress(), &wrong); !errors.Is(err, hsdesc.ErrClientAuthBad) {
		t.Fatalf("wrong key: %v", err)
	}
	for _, k := range [][32]byte{sk, other} {
		d, _, err := w.descriptor(s.OnionAddress(), &k)
		if err != nil || len(d.IntroPoints) != DefaultIntroPoints {
			t.Fatalf("authorized client: %v", err)
		}
	}
}

// Streams: unmapped ports and circuits over MaxStreams get END DONE (or
// the circuit closes with MaxStreamsCloseCircuit), a closed local port
// END CONNECTREFUSED, a listening one is spliced, a listener port goes to
// Accept.
func TestStreams(t *testing.T) {
	w := newFakeWorld(t, 8)
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	s := w.newService(Config{MaxStreams: 2, Ports: []Port{
		{Virtual: 7, Target: echo.Addr().String()}, {Virtual: 8, Target: closedAddr}, {Virtual: 80},
	}})
	started(t, s)
	rc := &rendCirc{c: &fakeCirc{closed: make(chan struct{})}}

	st := newFakeStream(9)
	s.onStream(rc, st)
	if c, r := st.wait(t); c != nil || r != cell.EndDone {
		t.Fatalf("unmapped port: %v %v", c, r)
	}
	st = newFakeStream(8)
	s.onStream(rc, st)
	if c, r := st.wait(t); c != nil || r != cell.EndConnectRefused {
		t.Fatalf("closed target: %v %v", c, r)
	}
	waitFor(t, "stream slot freed", func() bool { return rc.active.Load() == 0 })

	st = newFakeStream(7)
	s.onStream(rc, st)
	client, _ := st.wait(t)
	if client == nil {
		t.Fatal("echo stream rejected")
	}
	msg := bytes.Repeat([]byte("through the service "), 1000)
	go client.Write(msg)
	got := make([]byte, len(msg))
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v", err)
	}

	st = newFakeStream(80)
	s.onStream(rc, st)
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := s.Accept()
		acc <- c
	}()
	lc := <-acc
	cc, _ := st.wait(t)
	if lc == nil || cc == nil || lc.LocalAddr().String() != s.Hostname()+":80" || lc.LocalAddr().Network() != "onion" {
		t.Fatalf("listener stream %v / %v", lc, cc)
	}
	go cc.Write([]byte("hi"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(lc, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("listener read %q %v", buf, err)
	}
	// Two streams are open: a third is refused, the circuit stays.
	st = newFakeStream(7)
	s.onStream(rc, st)
	if c, r := st.wait(t); c != nil || r != cell.EndDone {
		t.Fatalf("over MaxStreams: %v %v", c, r)
	}
	lc.Close()
	waitFor(t, "listener stream slot freed", func() bool { return rc.active.Load() == 1 })
	client.Close()
	waitFor(t, "echo stream slot freed", func() bool { return rc.active.Load() == 0 })

	s.cfg.MaxStreamsCloseCircuit, s.cfg.MaxStreams = true, 0+1
	fc := rc.c.(*fakeCirc)
	st1 := newFakeStream(80)
	s.onStream(rc, st1)
	st2 := newFakeStream(80)
	s.onStream(rc, st2)
	select {
	case <-fc.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("circuit over MaxStreams not closed with MaxStreamsCloseCircuit")
	}
	if st := s.Stats(); st.StreamsRefused != 4 || st.StreamsOpened != 2 {
		t.Errorf("stats %+v", st)
	}
}

// An intro point whose relay stops answering is replaced by another one
// and the descriptors are uploaded again with the new set.
func TestIntroPointReplaced(t *testing.T) {
	w := newFakeWorld(t, 10)
	s := w.newService(Config{NumIntroPoints: 2})
	started(t, s)
	d, _, err := w.descriptor(s.OnionAddress(), nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := d.IntroPoints[0]
	victimID := hscell.Summarize(victim.LinkSpecs).RSAID
	w.mu.Lock()
	w.failIntro[victimID] = true
	w.mu.Unlock()
	w.introCirc(victim.AuthKey).close() // the relay goes away
	waitFor(t, "a new descriptor without the dead intro point", func() bool {
		d, _, err := w.descriptor(s.OnionAddress(), nil)
		if err != nil || len(d.IntroPoints) != 2 {
			return false
		}
		for _, ip := range d.IntroPoints {
			if hscell.Summarize(ip.LinkSpecs).RSAID == victimID {
				return false
			}
		}
		return true
	})
	if st := s.Stats(); st.IntroFailed != maxIntroCircuits || st.IntroEstablished != 3 {
		t.Errorf("stats %+v", st)
	}
	s.mu.Lock()
	_, excluded := s.failing[victimID]
	s.mu.Unlock()
	if !excluded {
		t.Error("failed intro relay not kept out of the picks")
	}
}

// An intro circuit that dies is rebuilt to the same relay with the same
// keys: the published descriptor stays valid and is not uploaded again.
func TestIntroCircuitRebuilt(t *testing.T) {
	w := newFakeWorld(t, 8)
	s := w.newService(Config{NumIntroPoints: 1})
	started(t, s)
	d, _, err := w.descriptor(s.OnionAddress(), nil)
	if err != nil {
		w.mu.Lock()
		t.Fatalf("%v: stats %+v, %d HSDirs hold descriptors", err, s.Stats(), len(w.uploads))
	}
	uploads := s.Stats().UploadsSucceeded
	old := w.introCirc(d.IntroPoints[0].AuthKey)
	old.close()
	waitFor(t, "intro circuit rebuilt", func() bool {
		c := w.introCirc(d.IntroPoints[0].AuthKey)
		return c != nil && c != old && s.Stats().IntroEstablished == 2
	})
	time.Sleep(1500 * time.Millisecond) // a main loop step or more
	if got := s.Stats().UploadsSucceeded; got != uploads {
		t.Errorf("descriptor re-uploaded (%d -> %d uploads) though the intro point kept its keys", uploads, got)
	}
}

// An HSDir that refuses the descriptor is counted and reported; the
// others hold it.
func TestHSDirRefusesUpload(t *testing.T) {
	w := newFakeWorld(t, 12)
	var events []Event
	s := w.newService(Config{OnEvent: func(e Event) { events = append(events, e) }})
	for _, r := range w.dir.Relays[:4] {
		w.refuse[r.RSAID] = true
	}
	started(t, s)
	s.eventMu.Lock()
	var failed int
	for _, e := range events {
		if e.Kind == EventUploadFailed {
			failed++
			if !strings.Contains(e.Reason, "400") {
				t.Errorf("failure reason %q", e.Reason)
			}
		}
	}
	s.eventMu.Unlock()
	if st := s.Stats(); failed == 0 || st.UploadsFailed != uint64(failed) || st.UploadsSucceeded == 0 {
		t.Fatalf("%d failure events, stats %+v", failed, st)
	}
	if _, _, err := w.descriptor(s.OnionAddress(), nil); err != nil {
		t.Fatalf("descriptor not available on the other HSDirs: %v", err)
	}
}

// Close stops every goroutine the service started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	w := newFakeWorld(t, 8)
	s := w.newService(Config{})
	started(t, s)
	rc := &rendCirc{c: &fakeCirc{closed: make(chan struct{})}}
	st := newFakeStream(80)
	s.onStream(rc, st) // left in the Accept queue
	s.Close()
	if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if c, r := st.wait(t); c != nil || r != cell.EndDone {
		t.Fatalf("queued stream at Close: %v %v", c, r)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Close")
	}
}

func TestConfigErrors(t *testing.T) {
	w := newFakeWorld(t, 1)
	id, _ := GenerateIdentity(nil)
	for _, c := range []Config{
		{Ports: []Port{{Virtual: 80}}},
		{Identity: id},
		{Identity: id, Ports: []Port{{Virtual: 0}}},
		{Identity: id, Ports: []Port{{Virtual: 80, Target: "nohost"}}},
		{Identity: id, Ports: []Port{{Virtual: 80, Target: "127.0.0.1:70000"}}},
		{Identity: id, Ports: []Port{{Virtual: 80, Target: "unix:"}}},
		{Identity: id, Ports: []Port{{Virtual: 80}}, NumIntroPoints: 21},
		{Identity: id, Ports: []Port{{Virtual: 80}}, MaxStreams: -1},
	} {
		if _, err := New(w, c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

func TestReplayCache(t *testing.T) {
	now := time.Now()
	r := newReplayCache(time.Minute, 3)
	if r.check([]byte("a"), now) || !r.check([]byte("a"), now.Add(time.Second)) {
		t.Fatal("replay not detected")
	}
	if r.check([]byte("a"), now.Add(2*time.Minute)) {
		t.Fatal("entry outlived the window")
	}
	for _, k := range []string{"b", "c", "d", "e"} {
		r.check([]byte(k), now.Add(2*time.Minute))
	}
	if len(r.seen) > 3 {
		t.Fatalf("cache holds %d entries, bound 3", len(r.seen))
	}
}
