package service

// A fake network for unit tests: relays in a synthetic consensus, intro
// points that check ESTABLISH_INTRO as a relay would (HANDSHAKE_AUTH and
// signature), HSDirs that verify and decrypt each uploaded descriptor,
// rendezvous points that record RENDEZVOUS1. Error paths and hostile
// input are driven from here; interoperability is shown by the
// integration tests against C tor.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/onion/hscell"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/onion/hsdesc"
)

type relayMsg struct {
	cmd  cell.RelayCommand
	body []byte
}

type fakeWorld struct {
	t   *testing.T
	dir *netdir.NetDir

	mu        sync.Mutex
	intros    map[[32]byte]*fakeCirc // by auth key, established intro circuits
	built     map[Purpose]int
	failIntro map[[20]byte]bool     // intro relays whose circuits fail to build
	refuse    map[[20]byte]bool     // HSDirs answering 400
	uploads   map[[20]byte][][]byte // every descriptor each HSDir took, in order
	estErr    error
	rends     chan *fakeCirc
	addr      hscrypto.Address // the service's
}

func newFakeWorld(t *testing.T, nrelays int) *fakeWorld {
	w := &fakeWorld{t: t, intros: map[[32]byte]*fakeCirc{}, built: map[Purpose]int{},
		failIntro: map[[20]byte]bool{}, refuse: map[[20]byte]bool{}, uploads: map[[20]byte][][]byte{},
		rends: make(chan *fakeCirc, 16)}
	va := time.Now().Truncate(time.Hour)
	d := &netdir.NetDir{ValidAfter: va, FreshUntil: va.Add(time.Hour), ValidUntil: va.Add(3 * time.Hour)}
	for i := range nrelays {
		r := &netdir.Relay{
			Nickname: fmt.Sprintf("relay%d", i), Addr: netip.AddrFrom4([4]byte{127, byte(i + 1), 0, 1}), ORPort: 9001,
			Flags:        netdir.FlagRunning | netdir.FlagValid | netdir.FlagStable | netdir.FlagHSDir | netdir.FlagFast,
			HasMicrodesc: true, HasEd25519: true,
		}
		rand.Read(r.RSAID[:])
		rand.Read(r.Ed25519ID[:])
		rand.Read(r.NtorOnionKey[:])
		d.Relays = append(d.Relays, r)
	}
	d.Index()
	w.dir = d
	return w
}

func (w *fakeWorld) NetDir() *netdir.NetDir { return w.dir }

// BuildCircuit is never called: tests replace Service.build.
func (w *fakeWorld) BuildCircuit(context.Context, CircuitRequest) (*circuit.Circuit, error) {
	return nil, errors.New("fake world builds fake circuits only")
}

func (w *fakeWorld) build(ctx context.Context, req CircuitRequest) (circ, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.built[req.Purpose]++
	if req.Hops != ServiceCircuitHops {
		w.t.Errorf("%v circuit of %d hops", req.Purpose, req.Hops)
	}
	if req.Purpose == PurposeIntro && w.failIntro[req.Last.RSAID] {
		return nil, errors.New("fake: intro relay unreachable")
	}
	c := &fakeCirc{w: w, req: req, in: make(chan relayMsg, 64), closed: make(chan struct{})}
	rand.Read(c.kh[:])
	return c, nil
}

// newService makes a service on the fake world.
func (w *fakeWorld) newService(cfg Config) *Service {
	w.t.Helper()
	if cfg.Identity == nil {
		cfg.Identity, _ = GenerateIdentity(nil)
	}
	if cfg.Ports == nil {
		cfg.Ports = []Port{{Virtual: 80}}
	}
	s, err := New(w, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	s.build = w.build
	w.mu.Lock()
	w.addr = s.OnionAddress()
	w.mu.Unlock()
	w.t.Cleanup(func() { s.Close() })
	return s
}

// introCirc returns the established intro circuit for authKey.
func (w *fakeWorld) introCirc(authKey [32]byte) *fakeCirc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.intros[authKey]
}

// descriptor returns the descriptor an HSDir got for the client's
// current time period, decoded as a client would.
func (w *fakeWorld) descriptor(addr hscrypto.Address, clientSK *[32]byte) (*hsdesc.Descriptor, [32]byte, error) {
	sched := hscrypto.ScheduleFor(w.dir, false)
	p := hscrypto.ClientFetchParams(w.dir, sched)
	blinded, _ := hscrypto.BlindPublicKey(addr.PubKey, p.PeriodNum, sched.PeriodLength)
	subcred := hscrypto.Subcredential(addr.PubKey, blinded)
	w.mu.Lock()
	var doc []byte
	for _, hd := range hscrypto.NewRing(w.dir, p).Responsible(blinded) {
		for _, d := range w.uploads[hd.RSAID] { // the latest one wins
			if _, err := hsdesc.ParseOuter(d, blinded, time.Time{}); err == nil {
				doc = d
			}
		}
		if doc != nil {
			break
		}
	}
	w.mu.Unlock()
	if doc == nil {
		return nil, subcred, errors.New("no descriptor on the fetch HSDirs")
	}
	d, err := hsdesc.Decode(doc, blinded, subcred, clientSK, time.Now())
	return d, subcred, err
}

type fakeCirc struct {
	w      *fakeWorld
	req    CircuitRequest
	kh     [20]byte
	in     chan relayMsg
	closed chan struct{}
	once   sync.Once

	// Rendezvous circuits.
	rend1    []byte
	keys     hscrypto.RendKeys
	onStream func(streamRequest)
}

func (c *fakeCirc) sendRelay(ctx context.Context, cmd cell.RelayCommand, body []byte) error {
	select {
	case <-c.closed:
		return circuit.ErrClosed
	default:
	}
	if c.req.Purpose != PurposeIntro || cmd != hscell.CmdEstablishIntro {
		return fmt.Errorf("fake: unexpected %v on a %v circuit", cmd, c.req.Purpose)
	}
	p, err := hscell.ParseEstablishIntro(body, c.kh)
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if err != nil {
		c.w.estErr = err
		c.close()
		return nil
	}
	for _, e := range p.Extensions {
		if e.Type == hscell.ExtDoSParams {
			c.w.estErr = fmt.Errorf("dos:%x", e.Data) // reported to the test
		}
	}
	c.w.intros[p.AuthKey] = c
	c.in <- relayMsg{hscell.CmdIntroEstablished, []byte{0}}
	return nil
}

func (c *fakeCirc) receive(ctx context.Context) (cell.RelayCommand, []byte, error) {
	select {
	case m := <-c.in:
		return m.cmd, m.body, nil
	case <-c.closed:
		return 0, nil, circuit.ErrClosed
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

func (c *fakeCirc) beginDir(ctx context.Context) (net.Conn, error) {
	if c.req.Purpose != PurposeHSDirPost {
		return nil, errors.New("fake: BEGIN_DIR on a non-HSDir circuit")
	}
	a, b := net.Pipe()
	go c.w.serveHSDir(c.req.Last.RSAID, b)
	return a, nil
}

// serveHSDir takes one POST as a C tor HSDir would: the descriptor must
// parse and verify (outer layer) for its blinded key.
func (w *fakeWorld) serveHSDir(id [20]byte, conn net.Conn) {
	defer conn.Close()
	req, err := http.ReadRequest(bufio.NewReader(conn))
	if err != nil {
		return
	}
	body, _ := io.ReadAll(req.Body)
	status := "200 OK"
	w.mu.Lock()
	if req.Method != "POST" || req.URL.Path != PublishPath || w.refuse[id] {
		status = "400 Invalid v3 service descriptor rejected"
	} else if !w.validUpload(body) {
		w.t.Errorf("HSDir got a descriptor that verifies for neither period")
		status = "400 Invalid v3 service descriptor rejected"
	} else {
		w.uploads[id] = append(w.uploads[id], body)
	}
	w.mu.Unlock()
	fmt.Fprintf(conn, "HTTP/1.0 %s\r\n\r\n", status)
}

// validUpload checks doc's outer layer against the blinded keys of the
// service's two descriptors (rend-spec §2.2.4.2). Under w.mu.
func (w *fakeWorld) validUpload(doc []byte) bool {
	sched := hscrypto.ScheduleFor(w.dir, false)
	first, second := hscrypto.ServiceUploadParams(w.dir, sched)
	for _, p := range []hscrypto.ServiceDescParams{first, second} {
		blinded, _ := hscrypto.BlindPublicKey(w.addr.PubKey, p.Ring.PeriodNum, sched.PeriodLength)
		if _, err := hsdesc.ParseOuter(doc, blinded, time.Now()); err == nil {
			return true
		}
	}
	return false
}

func (c *fakeCirc) nonce() ([20]byte, bool) { return c.kh, true }

func (c *fakeCirc) join(ctx context.Context, rendezvous1 []byte, keys hscrypto.RendKeys, onStream func(streamRequest)) error {
	if c.req.Purpose != PurposeRend {
		return errors.New("fake: join on a non-rendezvous circuit")
	}
	c.rend1, c.keys, c.onStream = rendezvous1, keys, onStream
	c.w.rends <- c
	return nil
}

func (c *fakeCirc) done() <-chan struct{} { return c.closed }

func (c *fakeCirc) close() { c.once.Do(func() { close(c.closed) }) }

// fakeStream is a BEGIN from a client.
type fakeStream struct {
	p        uint16
	mu       sync.Mutex
	rejected cell.EndReason
	result   chan net.Conn // the client's end once accepted; nil once rejected
}

func newFakeStream(port uint16) *fakeStream {
	return &fakeStream{p: port, result: make(chan net.Conn, 1)}
}

func (f *fakeStream) port() uint16 { return f.p }

func (f *fakeStream) accept() (net.Conn, error) {
	a, b := net.Pipe()
	f.result <- b
	return a, nil
}

func (f *fakeStream) reject(reason cell.EndReason) {
	f.mu.Lock()
	f.rejected = reason
	f.mu.Unlock()
	f.result <- nil
}

func (f *fakeStream) wait(t *testing.T) (net.Conn, cell.EndReason) {
	t.Helper()
	select {
	case c := <-f.result:
		f.mu.Lock()
		defer f.mu.Unlock()
		return c, f.rejected
	case <-time.After(10 * time.Second):
		t.Fatal("stream neither accepted nor rejected")
		return nil, 0
	}
}
