package reliability

// Hostile peers: a fake relay speaking the link protocol sends malformed,
// oversize, unsolicited and flow-control-violating cells. Only the
// circuit (or, for link-level violations, the channel) it attacks may
// close, with an error naming the reason; other circuits keep working and
// nothing panics or hangs. internal/channel and internal/circuit unit
// tests cover each check on a lone circuit; these tests add a bystander
// circuit on the same channel and attacks they do not cover.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/torcrypto"
)

// hostileRelay is the relay end of a channel over loopback TCP. It answers
// CREATE2 with ntor on any number of circuits, BEGIN with CONNECTED, and
// echoes DATA; the test sends anything else it likes.
type hostileRelay struct {
	target  circuit.Target
	ch      *channel.Channel
	conn    net.Conn
	bsk     [32]byte
	wmu     sync.Mutex
	mu      sync.Mutex
	hops    map[uint32]*torcrypto.RelayHop
	streams map[uint32][]uint16 // opened streams per circuit
	created chan uint32
	done    chan struct{}
}

func newHostileRelay(t *testing.T) *hostileRelay {
	t.Helper()
	h := &hostileRelay{hops: map[uint32]*torcrypto.RelayHop{}, streams: map[uint32][]uint16{},
		created: make(chan uint32, 16), done: make(chan struct{})}
	rand.Read(h.bsk[:])
	pub, _ := curve25519.X25519(h.bsk[:], curve25519.Basepoint)
	copy(h.target.NtorKey[:], pub)
	rand.Read(h.target.RSAID[:])
	rand.Read(h.target.Ed25519ID[:])
	h.target.HasEd25519 = true
	// TCP on loopback rather than net.Pipe: both ends have socket
	// buffers, as with a real relay, so neither side's reader blocks on
	// the other's synchronous writes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	relay, err := ln.Accept()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	h.conn = relay
	h.ch = channel.NewFromConn(client, h.target.Identity())
	go h.run()
	t.Cleanup(func() {
		h.ch.Close()
		h.conn.Close()
		<-h.done
	})
	return h
}

func (h *hostileRelay) run() {
	defer close(h.done)
	for {
		c, err := cell.Read(h.conn, 4)
		if err != nil {
			return
		}
		switch c.Command {
		case cell.CREATE2:
			cr, err := cell.DecodeCreate2(c.Payload)
			if err != nil {
				continue
			}
			reply, ks, err := torcrypto.NtorServerHandshake(nil, h.bsk, h.target.RSAID, cr.HData)
			if err != nil {
				continue
			}
			hop, _ := torcrypto.NewRelayHop(ks)
			h.mu.Lock()
			h.hops[c.CircID] = hop
			h.mu.Unlock()
			body, _ := cell.EncodeCreated2(reply)
			h.send(c.CircID, cell.CREATED2, body)
			h.created <- c.CircID
		case cell.RELAY, cell.RELAY_EARLY:
			h.mu.Lock()
			hop := h.hops[c.CircID]
			var msg cell.RelayMsg
			ok := false
			if hop != nil && len(c.Payload) == cell.PayloadLen {
				p := (*[cell.PayloadLen]byte)(c.Payload)
				if rec, _ := hop.Receive(p); rec {
					msg, err = cell.DecodeRelay(p[:])
					ok = err == nil
				}
			}
			if ok && msg.Command == cell.RELAY_BEGIN {
				h.streams[c.CircID] = append(h.streams[c.CircID], msg.StreamID)
			}
			h.mu.Unlock()
			if !ok {
				continue
			}
			switch msg.Command {
			case cell.RELAY_BEGIN:
				h.sendRelay(c.CircID, cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: msg.StreamID})
			case cell.RELAY_DATA:
				h.sendRelay(c.CircID, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: msg.StreamID, Data: msg.Data})
			}
		case cell.DESTROY:
			h.mu.Lock()
			delete(h.hops, c.CircID)
			h.mu.Unlock()
		}
	}
}

func (h *hostileRelay) send(id uint32, cmd cell.Command, payload []byte) error {
	b, err := (&cell.Cell{CircID: id, Command: cmd, Payload: payload}).Encode(4)
	if err != nil {
		return err
	}
	return h.sendRaw(b)
}

func (h *hostileRelay) sendRaw(b []byte) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := h.conn.Write(b)
	return err
}

// sendRelay originates a correctly encrypted and digested relay message.
func (h *hostileRelay) sendRelay(id uint32, msg cell.RelayMsg) error {
	var p [cell.PayloadLen]byte
	if err := cell.EncodeRelay(&p, msg); err != nil {
		return err
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.mu.Lock()
	hop := h.hops[id]
	if hop == nil {
		h.mu.Unlock()
		return fmt.Errorf("no circuit %#x", id)
	}
	hop.Originate(&p)
	h.mu.Unlock()
	b, _ := (&cell.Cell{CircID: id, Command: cell.RELAY, Payload: p[:]}).Encode(4)
	h.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := h.conn.Write(b)
	return err
}

func (h *hostileRelay) streamOf(id uint32) uint16 {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[id]
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// openCircuitStream creates a circuit with a stream on it.
func (h *hostileRelay) openCircuitStream(t *testing.T) (*circuit.Circuit, *stream.Conn, uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	circ, err := circuit.Create(ctx, h.ch, h.target)
	if err != nil {
		t.Fatalf("CREATE2: %v", err)
	}
	var id uint32
	select {
	case id = <-h.created:
	case <-ctx.Done():
		t.Fatal("relay saw no CREATE2")
	}
	s, err := stream.Begin(ctx, circ, "example.com", 80, 0)
	if err != nil {
		t.Fatalf("BEGIN: %v", err)
	}
	return circ, s, id
}

// echoWorks checks that the stream echoes a message.
func echoWorks(s *stream.Conn, msg string) error {
	s.SetDeadline(time.Now().Add(10 * time.Second))
	defer s.SetDeadline(time.Time{})
	if _, err := io.WriteString(s, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(s, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

func waitCircDone(t *testing.T, c *circuit.Circuit, limit time.Duration) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(limit):
		t.Fatalf("victim circuit still open %v after the attack", limit)
	}
	return nil
}

// TestHostileCellsCloseOnlyTheirCircuit attacks one circuit of a channel
// and checks that it closes with an error naming the violation while a
// bystander circuit on the same channel keeps carrying data.
func TestHostileCellsCloseOnlyTheirCircuit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attack func(h *hostileRelay, id uint32, s *stream.Conn) error
		want   string // substring of the victim circuit's error
	}{
		{"wrong relay digest", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			var p [cell.PayloadLen]byte
			rand.Read(p[:]) // encrypts to nothing recognisable
			return h.send(id, cell.RELAY, p[:])
		}, "protocol violation"},
		{"stream window violation", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			// 501 DATA cells while the application reads nothing: the
			// stream's deliver window is 500.
			for i := 0; i < 501; i++ {
				if err := h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: h.streamOf(id), Data: []byte("x")}); err != nil {
					return err
				}
			}
			return nil
		}, "deliver window"},
		{"SENDME beyond window", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			return h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_SENDME, Data: []byte{0, 0, 0}})
		}, "SENDME"},
		{"stream SENDME beyond window", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			return h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_SENDME, StreamID: h.streamOf(id)})
		}, "SENDME"},
		{"BEGIN sent to the client", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			return h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_BEGIN, StreamID: 77, Data: []byte("example.com:80\x00")})
		}, "BEGIN"},
		{"unsolicited EXTENDED2", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			body, _ := cell.EncodeCreated2(make([]byte, 64))
			return h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_EXTENDED2, Data: body})
		}, "EXTENDED2"},
		{"DATA with stream ID 0", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			return h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_DATA, Data: []byte("x")})
		}, "stream ID 0"},
		{"second CONNECTED", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			return h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: h.streamOf(id)})
		}, "CONNECTED"},
		{"relay length field beyond the cell", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			var p [cell.PayloadLen]byte
			cell.EncodeRelay(&p, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: h.streamOf(id), Data: []byte("x")})
			binary.BigEndian.PutUint16(p[9:11], 0xffff)
			h.wmu.Lock()
			h.mu.Lock()
			h.hops[id].Originate(&p)
			h.mu.Unlock()
			b, _ := (&cell.Cell{CircID: id, Command: cell.RELAY, Payload: p[:]}).Encode(4)
			_, err := h.conn.Write(b)
			h.wmu.Unlock()
			return err
		}, "protocol violation"},
		{"DESTROY flood for the circuit", func(h *hostileRelay, id uint32, s *stream.Conn) error {
			for i := 0; i < 1000; i++ {
				if err := h.send(id, cell.DESTROY, []byte{byte(cell.DestroyProtocol)}); err != nil {
					return err
				}
			}
			return nil
		}, "destroyed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileRelay(t)
			bys, bysStream, _ := h.openCircuitStream(t)
			victim, vs, vid := h.openCircuitStream(t)
			if err := echoWorks(bysStream, "before"); err != nil {
				t.Fatalf("bystander before the attack: %v", err)
			}
			if err := tc.attack(h, vid, vs); err != nil {
				t.Fatalf("attack: %v", err)
			}
			err := waitCircDone(t, victim, 10*time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("victim circuit closed with %v, want an error naming %q", err, tc.want)
			}
			// The victim's stream fails too, with the reason: an error,
			// never a clean end of stream (io.ReadAll returns nil at EOF).
			vs.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, rerr := io.ReadAll(vs)
			if rerr == nil || errors.Is(rerr, io.EOF) || errors.Is(rerr, os.ErrDeadlineExceeded) || !strings.Contains(rerr.Error(), tc.want) {
				t.Fatalf("victim stream ended with %v, want an error naming %q", rerr, tc.want)
			}
			t.Logf("victim circuit: %v; its stream: %v", err, rerr)
			select {
			case <-bys.Done():
				t.Fatalf("bystander circuit closed too: %v", bys.Err())
			case <-h.ch.Done():
				t.Fatalf("channel closed: %v", h.ch.Err())
			default:
			}
			if err := echoWorks(bysStream, "after"); err != nil {
				t.Fatalf("bystander after the attack: %v", err)
			}
		})
	}
}

// TestHostileChannelNoise floods a channel with cells a client must
// survive: DESTROY for circuits it does not have, maximum-size variable
// cells, unknown commands, cells for unknown circuits and relay-initiated
// CREATE2. The channel and its circuit keep working, and the memory and
// goroutines the flood leaves behind are bounded.
func TestHostileChannelNoise(t *testing.T) {
	h := newHostileRelay(t)
	circ, s, id := h.openCircuitStream(t)
	baseG := runtime.NumGoroutine()
	baseHeap := heapInUse()
	var maxGrowth uint64
	big := make([]byte, 65535)
	rand.Read(big)
	floods := []struct {
		name string
		n    int
		f    func(i int) error
	}{
		{"DESTROY for unknown circuits", 20000, func(i int) error {
			return h.send(0x80000000|uint32(i+1)*7919, cell.DESTROY, []byte{byte(cell.DestroyProtocol)})
		}},
		{"DESTROY on circuit 0", 1000, func(i int) error { return h.send(0, cell.DESTROY, []byte{1}) }},
		{"64 KiB VPADDING", 300, func(i int) error { return h.send(0, cell.VPADDING, big) }},
		{"64 KiB unknown variable cells", 300, func(i int) error { return h.send(uint32(i), cell.Command(200+i%50), big) }},
		{"unknown fixed-size commands", 2000, func(i int) error { return h.send(id, cell.Command(13+i%100), big[:cell.PayloadLen]) }},
		{"RELAY cells for unknown circuits", 5000, func(i int) error {
			return h.send(0x80000000|uint32(i)*104729, cell.RELAY, big[:cell.PayloadLen])
		}},
		{"RELAY on circuit 0", 1000, func(i int) error { return h.send(0, cell.RELAY, big[:cell.PayloadLen]) }},
		{"CREATE2 from the relay", 1000, func(i int) error {
			return h.send(uint32(i+1), cell.CREATE2, big[:cell.PayloadLen])
		}},
		{"CREATED2 for a circuit that is not pending", 100, func(i int) error {
			body, _ := cell.EncodeCreated2(make([]byte, 64))
			return h.send(0x80000000|uint32(i)*31, cell.CREATED2, body)
		}},
	}
	for _, fl := range floods {
		start := time.Now()
		for i := 0; i < fl.n; i++ {
			if err := fl.f(i); err != nil {
				t.Fatalf("%s: cell %d: %v (channel: %v)", fl.name, i, err, h.ch.Err())
			}
		}
		if err := echoWorks(s, fl.name); err != nil {
			t.Fatalf("after %d x %s: circuit no longer works: %v (circuit err %v, channel err %v)", fl.n, fl.name, err, circ.Err(), h.ch.Err())
		}
		took := time.Since(start)
		heap := heapInUse()
		growth := heap - min(heap, baseHeap)
		maxGrowth = max(maxGrowth, growth)
		// What a flood leaves behind once collected: the cells are
		// pooled or garbage, never kept (the 64 KiB floods alone are
		// 19 MiB of input).
		if growth > noiseHeapBound {
			t.Fatalf("after %d x %s the heap in use grew by %.1f MiB (bound %d MiB)", fl.n, fl.name, float64(growth)/(1<<20), noiseHeapBound>>20)
		}
		t.Logf("%6d x %-45s absorbed in %v, heap in use %+.2f MiB", fl.n, fl.name, took.Round(time.Millisecond), float64(growth)/(1<<20))
	}
	t.Logf("heap in use %.1f MiB before the floods, at most %.2f MiB more after any", float64(baseHeap)/(1<<20), float64(maxGrowth)/(1<<20))
	select {
	case <-circ.Done():
		t.Fatalf("circuit closed: %v", circ.Err())
	default:
	}
	if n := h.ch.NumCircuits(); n != 1 {
		t.Fatalf("channel has %d circuits after the flood, want 1", n)
	}
	if g := runtime.NumGoroutine(); g > baseG+10 {
		t.Fatalf("goroutines grew from %d to %d during the flood", baseG, g)
	}
}

// noiseHeapBound bounds the heap that TestHostileChannelNoise's floods
// may leave in use after a collection.
const noiseHeapBound = 4 << 20

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestHostileLinkViolationsCloseChannel sends link-level violations that
// must close the whole channel: every circuit on it fails with the
// channel's error instead of hanging.
func TestHostileLinkViolationsCloseChannel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attack func(h *hostileRelay) error
		want   string
	}{
		{"VERSIONS after the handshake", func(h *hostileRelay) error {
			return h.send(0, cell.VERSIONS, cell.EncodeVersions([]uint16{4, 5}))
		}, "VERSIONS after handshake"},
		{"CERTS after the handshake", func(h *hostileRelay) error { return h.send(0, cell.CERTS, []byte{0}) }, "CERTS after handshake"},
		// padding-spec §2.2: only clients send PADDING_NEGOTIATE; one from
		// a relay closes the channel (as arti; C tor only logs it).
		{"PADDING_NEGOTIATE from the relay", func(h *hostileRelay) error {
			return h.send(0, cell.PADDING_NEGOTIATE, make([]byte, cell.PayloadLen))
		}, "PADDING_NEGOTIATE from a relay"},
		{"truncated cell then EOF", func(h *hostileRelay) error {
			b, _ := (&cell.Cell{CircID: 5, Command: cell.RELAY, Payload: make([]byte, cell.PayloadLen)}).Encode(4)
			h.sendRaw(b[:100])
			return h.conn.Close()
		}, "unexpected EOF"},
		{"variable cell cut short", func(h *hostileRelay) error {
			h.sendRaw([]byte{0, 0, 0, 0, byte(cell.VPADDING), 0xff, 0xff, 1, 2, 3})
			return h.conn.Close()
		}, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileRelay(t)
			c1, s1, _ := h.openCircuitStream(t)
			c2, _, _ := h.openCircuitStream(t)
			if err := tc.attack(h); err != nil {
				t.Fatalf("attack: %v", err)
			}
			select {
			case <-h.ch.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("channel still open")
			}
			if err := h.ch.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("channel closed with %v, want %q", err, tc.want)
			}
			for i, c := range []*circuit.Circuit{c1, c2} {
				if err := waitCircDone(t, c, 10*time.Second); err == nil {
					t.Fatalf("circuit %d closed without an error", i)
				}
			}
			s1.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := s1.Read(make([]byte, 10)); err == nil || errors.Is(err, io.EOF) && err == io.EOF {
				t.Fatalf("stream on the dead channel: %v, want an error that is not a clean EOF", err)
			} else {
				t.Logf("channel: %v; stream: %v", h.ch.Err(), err)
			}
		})
	}
}

// fakeORPort is a TLS listener that plays a relay's side of the link
// handshake according to script.
func fakeORPort(t *testing.T, script func(c net.Conn)) netip.AddrPort {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				// The client's VERSIONS: 2-byte circuit ID, command, length.
				hdr := make([]byte, 5)
				if _, err := io.ReadFull(c, hdr); err != nil {
					return
				}
				io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[3:5])))
				script(c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func versionsCell(vs ...uint16) []byte {
	b, _ := (&cell.Cell{Command: cell.VERSIONS, Payload: cell.EncodeVersions(vs)}).Encode(2)
	return b
}

func cell4(cmd cell.Command, payload []byte) []byte {
	b, _ := (&cell.Cell{Command: cmd, Payload: payload}).Encode(4)
	return b
}

// TestHostileHandshake runs the real channel.Dial (TLS and link
// handshake) against relays that misbehave during the handshake: each
// must fail with an error naming the problem, within the handshake
// deadline, without panicking.
func TestHostileHandshake(t *testing.T) {
	var want channel.Identity
	rand.Read(want.RSAID[:])
	random := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	big := random(65535)
	// A CERTS cell that parses but holds junk certificates.
	junkCerts := []byte{3, 1, 0, 4, 1, 2, 3, 4, 2, 0, 2, 5, 6, 4, 0, 3, 7, 8, 9}
	for _, tc := range []struct {
		name   string
		script func(c net.Conn)
		want   string
	}{
		{"silent relay", func(c net.Conn) { io.Copy(io.Discard, c) }, "deadline"},
		{"garbage instead of VERSIONS", func(c net.Conn) { c.Write(random(4096)) }, ""},
		{"no common link version", func(c net.Conn) { c.Write(versionsCell(1, 2, 3)); io.Copy(io.Discard, c) }, "no common link protocol"},
		{"odd-length VERSIONS", func(c net.Conn) {
			c.Write([]byte{0, 0, byte(cell.VERSIONS), 0, 3, 0, 4, 0})
			io.Copy(io.Discard, c)
		}, "protocol error"},
		{"fixed cell instead of VERSIONS", func(c net.Conn) { c.Write(make([]byte, 512)); io.Copy(io.Discard, c) }, "expected VERSIONS"},
		{"64 KiB VPADDING flood then silence", func(c net.Conn) {
			c.Write(versionsCell(4, 5))
			for i := 0; i < 200; i++ {
				if _, err := c.Write(cell4(cell.VPADDING, big)); err != nil {
					return
				}
			}
			io.Copy(io.Discard, c)
		}, "deadline"},
		{"random CERTS", func(c net.Conn) {
			c.Write(versionsCell(4))
			c.Write(cell4(cell.CERTS, random(600)))
			io.Copy(io.Discard, c)
		}, "protocol error"},
		{"junk certificates", func(c net.Conn) {
			c.Write(versionsCell(4))
			c.Write(cell4(cell.CERTS, junkCerts))
			c.Write(cell4(cell.NETINFO, make([]byte, cell.PayloadLen)))
			io.Copy(io.Discard, c)
		}, "CERTS"},
		{"empty CERTS", func(c net.Conn) {
			c.Write(versionsCell(4))
			c.Write(cell4(cell.CERTS, []byte{0}))
			c.Write(cell4(cell.NETINFO, make([]byte, cell.PayloadLen)))
			io.Copy(io.Discard, c)
		}, "CERTS"},
		{"two CERTS cells", func(c net.Conn) {
			c.Write(versionsCell(4))
			c.Write(cell4(cell.CERTS, []byte{0}))
			c.Write(cell4(cell.CERTS, []byte{0}))
			io.Copy(io.Discard, c)
		}, "second CERTS"},
		{"NETINFO before CERTS", func(c net.Conn) {
			c.Write(versionsCell(4))
			c.Write(cell4(cell.NETINFO, make([]byte, cell.PayloadLen)))
			io.Copy(io.Discard, c)
		}, "NETINFO before CERTS"},
		{"RELAY during the handshake", func(c net.Conn) {
			c.Write(versionsCell(4))
			c.Write(cell4(cell.RELAY, make([]byte, cell.PayloadLen)))
			io.Copy(io.Discard, c)
		}, "unexpected RELAY"},
		{"close after VERSIONS", func(c net.Conn) { c.Write(versionsCell(4)) }, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := fakeORPort(t, tc.script)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			ch, err := channel.Dial(ctx, addr, want)
			took := time.Since(start)
			if err == nil {
				ch.Close()
				t.Fatal("handshake with a hostile relay succeeded")
			}
			if took > 5*time.Second {
				t.Fatalf("Dial took %v, beyond its 3 s context", took)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
			t.Logf("%v after %v", err, took.Round(time.Millisecond))
		})
	}
}

// TestLateCellsAfterCloseKeepCircuit closes streams while the exit is
// still sending DATA on them, as a browser cancelling a download does.
// Cells the exit sent before it saw the client's END are legitimate
// (tor-spec §6.3: the stream is half-closed until END comes back); they
// must be dropped, not treated as a protocol violation that tears down
// the circuit and every other stream on it.
func TestLateCellsAfterCloseKeepCircuit(t *testing.T) {
	h := newHostileRelay(t)
	circ, bystander, id := h.openCircuitStream(t)
	for round := 0; round < 40; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := stream.Begin(ctx, circ, "example.com", 80, 0)
		cancel()
		if err != nil {
			t.Fatalf("round %d: BEGIN: %v (circuit: %v)", round, err, circ.Err())
		}
		sid := s.StreamID()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for i := 0; i < 300; i++ {
				if h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: sid, Data: make([]byte, 498)}) != nil {
					return
				}
			}
		}()
		s.Read(make([]byte, 10))
		s.Close()
		<-sent
		if err := echoWorks(bystander, fmt.Sprint("round ", round)); err != nil {
			t.Fatalf("round %d: other stream broken after closing a stream with DATA in flight: %v (circuit: %v)", round, err, circ.Err())
		}
	}
}

// TestHostileDropmark has the relay send cells a client drops without
// effect, the raw material of a "dropmark" (a cell the client silently
// discards, used by a relay as a covert signal): DATA for streams the
// circuit never had, unknown relay commands, RELAY_DROP, and the cells of
// a stream the client closed. Each kind must be counted exactly
// (circuit.Dropped) and none may close the circuit or disturb its other
// stream (C tor drops them too, issue 17 item 2).
func TestHostileDropmark(t *testing.T) {
	h := newHostileRelay(t)
	circ, s, id := h.openCircuitStream(t)
	closed, err := stream.Begin(t.Context(), circ, "example.com", 80, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	const n = 2000
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	heap0 := m.HeapInuse
	start := time.Now()
	for i := range n {
		for _, msg := range []cell.RelayMsg{
			{Command: cell.RELAY_DATA, StreamID: uint16(1000 + i), Data: []byte("x")}, // no such stream
			{Command: cell.RelayCommand(100 + i%100), Data: []byte("?")},              // unknown, stream 0
			{Command: cell.RelayCommand(100 + i%100), StreamID: s.StreamID()},         // unknown, on a stream
			{Command: cell.RELAY_DROP},
		} {
			if err := h.sendRelay(id, msg); err != nil {
				t.Fatal(err)
			}
		}
		if i < 400 { // the closed stream's deliver window is 500
			h.sendRelay(id, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: closed.StreamID(), Data: []byte("late")})
		}
		if i%100 == 99 {
			// Keep the circuit window open: read the echo of a round trip.
			if err := echoWorks(s, "ping"); err != nil {
				t.Fatalf("after %d rounds: %v (circuit: %v)", i+1, err, circ.Err())
			}
		}
	}
	took := time.Since(start)
	if err := echoWorks(s, "after"); err != nil {
		t.Fatalf("stream after the flood: %v (circuit: %v)", err, circ.Err())
	}
	runtime.GC()
	runtime.ReadMemStats(&m)
	want := circuit.Dropped{UnknownStream: n, UnknownCommand: 2 * n, Padding: n, HalfClosed: 400}
	d := circ.Dropped()
	if d != want {
		t.Fatalf("dropped %+v, want %+v", d, want)
	}
	t.Logf("%d cells dropped and counted in %v (%+v); heap in use %.1f -> %.1f MiB",
		4*n+400, took.Round(time.Millisecond), d, float64(heap0)/(1<<20), float64(m.HeapInuse)/(1<<20))
}
