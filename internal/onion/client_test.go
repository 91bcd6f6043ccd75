package onion

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
	"golang.org/x/crypto/curve25519"
)

type detRand struct{ r *mrand.ChaCha8 }

func (d detRand) Read(b []byte) (int, error) { return d.r.Read(b) }

// fakeService is a service plus the intro points/HSDirs/rend points of
// a fake network, driven by the messages a Client sends.
type fakeService struct {
	t        *testing.T
	id       *hscrypto.ExpandedKey
	addr     hscrypto.Address
	dir      *netdir.NetDir
	desc     []byte
	blinded  [32]byte
	subcred  [32]byte
	intro    []fakeIntro
	ackCode  uint16 // INTRODUCE_ACK status to send
	badAuth  bool   // corrupt RENDEZVOUS2 AUTH
	noDesc   bool   // HSDirs answer 404
	rnd      detRand
	mu       sync.Mutex
	rendez   map[[20]byte]*fakeCirc
	builds   map[Purpose]int
	fetchedF []*netdir.Relay
	keys     hscrypto.RendKeys
}

type fakeIntro struct {
	relay   *netdir.Relay
	authKey [32]byte
	b, B    [32]byte
}

type fakeCirc struct {
	s       *fakeService
	target  Target
	purpose Purpose
	inbox   chan [2][]byte
	keys    *hscrypto.RendKeys
	once    sync.Once
	dead    chan struct{}
}

func newFakeService(t *testing.T, clients [][32]byte) *fakeService {
	s := &fakeService{t: t, rnd: detRand{mrand.NewChaCha8([32]byte{42})}, rendez: map[[20]byte]*fakeCirc{}, builds: map[Purpose]int{}}
	seed := make([]byte, 32)
	s.rnd.Read(seed)
	s.id, _ = hscrypto.ExpandSeed(seed)
	s.addr = hscrypto.Address{PubKey: s.id.Public}
	va := time.Now().UTC().Truncate(time.Hour)
	s.dir = &netdir.NetDir{ValidAfter: va, FreshUntil: va.Add(time.Hour), ValidUntil: va.Add(3 * time.Hour)}
	for i := 0; i < 12; i++ {
		r := &netdir.Relay{Nickname: fmt.Sprint("relay", i), HasEd25519: true, HasMicrodesc: true,
			Flags: netdir.FlagHSDir | netdir.FlagRunning | netdir.FlagValid | netdir.FlagFast,
			Addr:  netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), ORPort: 9001, Protocols: "HSDir=1-2 HSRend=1-2"}
		s.rnd.Read(r.RSAID[:])
		s.rnd.Read(r.Ed25519ID[:])
		s.rnd.Read(r.NtorOnionKey[:])
		s.dir.Relays = append(s.dir.Relays, r)
	}
	s.dir.Index()
	sched := hscrypto.ScheduleFor(s.dir, false)
	p := hscrypto.ClientFetchParams(s.dir, sched)
	var bips []hsdesc.BuildIntroPoint
	for i := 0; i < 3; i++ {
		r := s.dir.Relays[i+5]
		fi := fakeIntro{relay: r}
		pub, _, _ := ed25519.GenerateKey(s.rnd)
		copy(fi.authKey[:], pub)
		s.rnd.Read(fi.b[:])
		B, _ := curve25519.X25519(fi.b[:], curve25519.Basepoint)
		copy(fi.B[:], B)
		s.intro = append(s.intro, fi)
		ed := r.Ed25519ID
		bips = append(bips, hsdesc.BuildIntroPoint{LinkSpecs: hscell.LinkSpecsFor(r.ORAddrPort(), r.RSAID, &ed, netip.AddrPort{}),
			OnionKey: r.NtorOnionKey, AuthKey: fi.authKey, EncKey: fi.B})
	}
	_, signKey, _ := ed25519.GenerateKey(s.rnd)
	var err error
	s.desc, err = hsdesc.Build(hsdesc.BuildParams{Identity: s.id, PeriodNum: p.PeriodNum, PeriodLength: sched.PeriodLength,
		SigningKey: signKey, RevisionCounter: 1, CertExpires: va.Add(54 * time.Hour), IntroPoints: bips,
		AuthorizedClients: clients, Rand: s.rnd})
	if err != nil {
		t.Fatal(err)
	}
	s.blinded, _ = hscrypto.BlindPublicKey(s.addr.PubKey, p.PeriodNum, sched.PeriodLength)
	s.subcred = hscrypto.Subcredential(s.addr.PubKey, s.blinded)
	return s
}

func (s *fakeService) BuildCircuit(ctx context.Context, last Target, purpose Purpose) (Circ, error) {
	s.mu.Lock()
	s.builds[purpose]++
	s.mu.Unlock()
	return &fakeCirc{s: s, target: last, purpose: purpose, inbox: make(chan [2][]byte, 8), dead: make(chan struct{})}, nil
}

func (c *fakeCirc) push(cmd byte, body []byte) { c.inbox <- [2][]byte{{cmd}, body} }

func (c *fakeCirc) SendRelay(ctx context.Context, cmd byte, body []byte) error {
	s := c.s
	switch {
	case cmd == hscell.CmdEstablishRendezvous && c.purpose == PurposeRend:
		cookie, err := hscell.ParseEstablishRendezvous(body)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.rendez[cookie] = c
		s.mu.Unlock()
		c.push(hscell.CmdRendezvousEstablished, nil)
	case cmd == hscell.CmdIntroduce1 && c.purpose == PurposeIntro:
		if len(body) > 498 {
			s.t.Errorf("INTRODUCE1 too long: %d", len(body))
		}
		m, err := hscell.ParseIntroduce1(body)
		if err != nil {
			return err
		}
		var ip *fakeIntro
		for i := range s.intro {
			if s.intro[i].authKey == m.AuthKey {
				ip = &s.intro[i]
			}
		}
		if ip == nil || c.target.Relay != ip.relay || len(c.target.LinkSpecs) == 0 || c.target.NtorKey != ip.relay.NtorOnionKey {
			c.push(hscell.CmdIntroduceAck, hscell.EncodeIntroduceAck(hscell.IntroAckUnknownID))
			return nil
		}
		if s.ackCode != 0 {
			c.push(hscell.CmdIntroduceAck, hscell.EncodeIntroduceAck(s.ackCode))
			return nil
		}
		var y [32]byte
		s.rnd.Read(y[:])
		pt, info, seed, err := hscrypto.ServiceIntro(ip.b, ip.B, ip.authKey, s.subcred, m.Header, m.Encrypted, y)
		if err != nil {
			c.push(hscell.CmdIntroduceAck, hscell.EncodeIntroduceAck(hscell.IntroAckBadFormat))
			return nil
		}
		if len(m.Header)+len(pt) < hscell.Introduce1MinSize {
			s.t.Errorf("INTRODUCE1 not padded")
		}
		plain, err := hscell.ParseIntroducePlaintext(pt)
		if err != nil {
			return err
		}
		s.mu.Lock()
		rc := s.rendez[plain.RendezvousCookie]
		s.keys = hscrypto.ExpandRendKeys(seed[:])
		s.mu.Unlock()
		c.push(hscell.CmdIntroduceAck, hscell.EncodeIntroduceAck(0))
		if rc == nil {
			s.t.Errorf("unknown rendezvous cookie")
			return nil
		}
		sum := hscell.Summarize(plain.LinkSpecs)
		if plain.OnionKey != rc.target.Relay.NtorOnionKey || sum.RSAID != rc.target.Relay.RSAID || sum.IPv4 != rc.target.Relay.ORAddrPort() {
			s.t.Errorf("rendezvous point description mismatch")
		}
		if s.badAuth {
			info[40] ^= 1
		}
		rc.push(hscell.CmdRendezvous2, hscell.Rendezvous2(info))
	default:
		return fmt.Errorf("unexpected relay cmd %d on %v circuit", cmd, c.purpose)
	}
	return nil
}

func (c *fakeCirc) ReceiveRelay(ctx context.Context) (byte, []byte, error) {
	select {
	case m := <-c.inbox:
		return m[0][0], m[1], nil
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

func (c *fakeCirc) BeginDir(ctx context.Context) (net.Conn, error) {
	if c.purpose != PurposeHSDir {
		return nil, errors.New("BEGIN_DIR on wrong circuit")
	}
	cl, sv := net.Pipe()
	go func() {
		defer sv.Close()
		req, err := http.ReadRequest(bufio.NewReader(sv))
		if err != nil {
			return
		}
		c.s.mu.Lock()
		c.s.fetchedF = append(c.s.fetchedF, c.target.Relay)
		c.s.mu.Unlock()
		if req.URL.Path != DescriptorPath(c.s.blinded) || c.s.noDesc {
			io.WriteString(sv, "HTTP/1.0 404 Not found\r\n\r\n")
			return
		}
		fmt.Fprintf(sv, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n", len(c.s.desc))
		sv.Write(c.s.desc)
	}()
	return cl, nil
}

func (c *fakeCirc) ExtendVirtualHop(keys hscrypto.RendKeys) error {
	if c.purpose != PurposeRend {
		return errors.New("virtual hop on wrong circuit")
	}
	c.keys = &keys
	return nil
}

func (c *fakeCirc) OpenStream(ctx context.Context, port uint16) (net.Conn, error) {
	if c.keys == nil || !alive(c) {
		return nil, errors.New("no virtual hop")
	}
	if port == 81 {
		return nil, errors.New("stream refused (END)")
	}
	if *c.keys != c.s.keys {
		c.s.t.Errorf("client and service rendezvous keys differ")
	}
	cl, sv := net.Pipe()
	go func() { // echo server, prefixed with the port
		defer sv.Close()
		fmt.Fprintf(sv, "port %d\n", port)
		io.Copy(sv, sv)
	}()
	return cl, nil
}

func (c *fakeCirc) Close() error {
	c.once.Do(func() { close(c.dead) })
	return nil
}

func (c *fakeCirc) Done() <-chan struct{} { return c.dead }

func (s *fakeService) client(auth *ClientAuth) *Client {
	return New(Config{Builder: s, NetDir: func() *netdir.NetDir { return s.dir }, ClientAuth: auth,
		IntroTimeout: 2 * time.Second, RendezvousTimeout: 2 * time.Second})
}

func TestDialFakeNetwork(t *testing.T) {
	s := newFakeService(t, nil)
	c := s.client(nil)
	ctx := context.Background()
	conn, err := c.Dial(ctx, "www."+s.addr.String(), 80)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	line, _ := br.ReadString('\n')
	if line != "port 80\n" {
		t.Fatalf("got %q", line)
	}
	conn.Write([]byte("ping\n"))
	if line, _ = br.ReadString('\n'); line != "ping\n" {
		t.Fatalf("echo %q", line)
	}
	conn.Close()
	// The HSDir asked must be among the responsible ones.
	sched := hscrypto.ScheduleFor(s.dir, false)
	resp := hscrypto.ResponsibleHSDirs(s.dir, s.blinded, hscrypto.ClientFetchParams(s.dir, sched))
	if len(s.fetchedF) != 1 || !containsRelay(resp, s.fetchedF[0]) {
		t.Fatalf("fetched from %v", s.fetchedF)
	}
	// Second dial: descriptor cached, rendezvous circuit reused.
	conn2, err := c.Dial(ctx, s.addr.String(), 443)
	if err != nil {
		t.Fatal(err)
	}
	conn2.Close()
	if s.builds[PurposeHSDir] != 1 || s.builds[PurposeRend] != 1 || s.builds[PurposeIntro] != 1 {
		t.Fatalf("builds %v", s.builds)
	}
}

func containsRelay(rs []*netdir.Relay, r *netdir.Relay) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func TestDialErrors(t *testing.T) {
	ctx := context.Background()
	check := func(name string, err error, want ErrorKind, code byte) {
		t.Helper()
		if KindOf(err) != want {
			t.Errorf("%s: got %v, want kind %v", name, err, want)
		}
		if c, ok := SOCKSReply(err); !ok || c != code {
			t.Errorf("%s: SOCKS code %x want %x", name, c, code)
		}
	}
	s := newFakeService(t, nil)
	_, err := s.client(nil).Dial(ctx, "abc.onion", 80)
	check("bad address", err, KindBadAddress, 0xF6)

	s.noDesc = true
	_, err = s.client(nil).Dial(ctx, s.addr.String(), 80)
	check("no descriptor", err, KindDescNotFound, 0xF0)
	if len(s.fetchedF) != 6 {
		t.Errorf("tried %d HSDirs, want 6", len(s.fetchedF))
	}
	s.noDesc = false

	s.desc = append([]byte(nil), s.desc...)
	s.desc[len(s.desc)-5] ^= 4 // breaks the signature
	_, err = s.client(nil).Dial(ctx, s.addr.String(), 80)
	check("bad descriptor", err, KindDescInvalid, 0xF1)

	s = newFakeService(t, nil)
	s.ackCode = hscell.IntroAckCantRelay
	_, err = s.client(nil).Dial(ctx, s.addr.String(), 80)
	check("intro nack", err, KindIntroFailed, 0xF2)

	s = newFakeService(t, nil)
	s.badAuth = true
	_, err = s.client(nil).Dial(ctx, s.addr.String(), 80)
	check("bad rendezvous auth", err, KindRendFailed, 0xF3)
	if !errors.Is(err, hscrypto.ErrBadHandshake) {
		t.Errorf("want ErrBadHandshake in chain: %v", err)
	}
}

func TestDialClientAuth(t *testing.T) {
	ctx := context.Background()
	var sk [32]byte
	sk[7] = 77
	pk, _ := curve25519.X25519(sk[:], curve25519.Basepoint)
	s := newFakeService(t, [][32]byte{[32]byte(pk)})
	_, err := s.client(nil).Dial(ctx, s.addr.String(), 80)
	if KindOf(err) != KindClientAuthMissing {
		t.Fatalf("no key: %v", err)
	}
	bad := NewClientAuth()
	bad.Add(s.addr, [32]byte{1, 2, 3, 4, 5, 6, 7, 8})
	if _, err := s.client(bad).Dial(ctx, s.addr.String(), 80); KindOf(err) != KindClientAuthBad {
		t.Fatalf("bad key: %v", err)
	}
	// Load the right key from a ClientOnionAuthDir.
	dir := t.TempDir()
	line := s.addr.Label() + ":descriptor:x25519:" + b32NoPad.EncodeToString(sk[:]) + "\n"
	os.WriteFile(filepath.Join(dir, "svc.auth_private"), []byte("# comment\n"+line), 0o600)
	os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("garbage"), 0o600)
	auth, err := LoadClientAuthDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.client(auth).Dial(ctx, s.addr.String(), 80)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestAuthPrivateLine(t *testing.T) {
	// Example from rend-spec-v3 G.1.2 style keys.
	a, sk, err := ParseAuthPrivateLine("25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid:descriptor:x25519:OM7TGIVRYMY6PFX6GAC6ATRTA5U6WW6U7A4ZNHQDI6OVL52XVV2Q")
	if err != nil || a.Label() != "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid" || sk == ([32]byte{}) {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid:descriptor:x25519",
		"25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid:descriptor:ed25519:OM7TGIVRYMY6PFX6GAC6ATRTA5U6WW6U7A4ZNHQDI6OVL52XVV2Q",
		"25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sia:descriptor:x25519:OM7TGIVRYMY6PFX6GAC6ATRTA5U6WW6U7A4ZNHQDI6OVL52XVV2Q",
		"25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid:descriptor:x25519:OM7TGIVRYMY6",
	} {
		if _, _, err := ParseAuthPrivateLine(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if !strings.Contains((&Error{Kind: KindIntroTimeout}).Error(), "timed out") {
		t.Error("error text")
	}
	_ = bytes.Equal
}

func TestRendezvousCircuitReuse(t *testing.T) {
	s := newFakeService(t, nil)
	c := s.client(nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := c.Dial(ctx, s.addr.String(), 80)
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		}()
	}
	wg.Wait()
	if s.builds[PurposeRend] != 1 || s.builds[PurposeIntro] != 1 {
		t.Fatalf("concurrent dials built %v", s.builds)
	}
	// A refused stream leaves the circuit in use.
	if _, err := c.Dial(ctx, s.addr.String(), 81); err == nil || KindOf(err) != 0 {
		t.Fatalf("refused stream: %v", err)
	}
	if conn, err := c.Dial(ctx, s.addr.String(), 80); err != nil {
		t.Fatal(err)
	} else {
		conn.Close()
	}
	if s.builds[PurposeRend] != 1 {
		t.Fatalf("refused stream dropped the circuit: %v", s.builds)
	}
	// Another isolation key gets its own circuit.
	conn, err := c.DialIsolated(ctx, s.addr.String(), 80, "other")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if s.builds[PurposeRend] != 2 {
		t.Fatalf("isolation: %v", s.builds)
	}
	// A dead circuit is rebuilt; the descriptor stays cached.
	c.mu.Lock()
	for _, e := range c.rend {
		e.circ.Close()
	}
	c.mu.Unlock()
	conn, err = c.Dial(ctx, s.addr.String(), 80)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if s.builds[PurposeRend] != 3 || s.builds[PurposeHSDir] != 1 {
		t.Fatalf("after circuit death: %v", s.builds)
	}
}
