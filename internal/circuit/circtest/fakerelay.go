// A simulated relay for unit tests: the responder side of tor-spec §5.1
// (CREATE2 with ntor, §5.1.4, or ntor v3, prop 332, with its extensions)
// and §6.1 relay crypto, over a channel whose link handshake is skipped
// (channel.NewFromConn).
package circtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/torcrypto"
	"golang.org/x/crypto/curve25519"
)

// Received is one cell the client sent to a FakeRelay. For RELAY and
// RELAY_EARLY cells recognized by the relay, Msg is the decrypted
// message and Digest the relay's running forward digest after it.
type Received struct {
	Cell       *cell.Cell
	Recognized bool
	Msg        cell.RelayMsg
	Digest     [20]byte
}

// FakeRelay is an in-process relay for unit tests: the far end of a
// channel over net.Pipe (or loopback TCP, NewFakeRelayTCP) that answers
// CREATE2 with ntor and then lets the test read the client's cells and
// send arbitrary (also invalid) ones. It serves a single circuit. A test
// that drains Received may Release each cell once done with it.
type FakeRelay struct {
	Target   circuit.Target
	Channel  *channel.Channel // the client's side
	Received chan Received

	// ServerExtensions, when set before the client's CREATE2, computes
	// the extensions of the ntor v3 server message from the client's
	// (prop 332 §A.2); nil answers with none, as a relay that does not
	// do congestion control. Called on the relay's goroutine.
	ServerExtensions func(client []cell.Extension) []cell.Extension

	conn   net.Conn
	br     *bufio.Reader // conn's, read by run only
	bsk    [32]byte
	wmu    sync.Mutex
	mu     sync.Mutex
	hop    *torcrypto.RelayHop
	kh     [20]byte
	circID uint32
	done   chan struct{}

	scratch [cell.PayloadLen]byte // AppendRelayCell, guarded by mu
}

// NewFakeRelay starts a fake relay and returns it with a client channel
// connected to it.
func NewFakeRelay() *FakeRelay {
	client, relay := net.Pipe()
	return newFakeRelay().start(client, relay)
}

// newFakeRelay returns a fake relay with fresh keys and no connection.
func newFakeRelay() *FakeRelay {
	f := &FakeRelay{Received: make(chan Received, 8192), done: make(chan struct{})}
	rand.Read(f.bsk[:])
	pub, _ := curve25519.X25519(f.bsk[:], curve25519.Basepoint)
	copy(f.Target.NtorKey[:], pub)
	rand.Read(f.Target.RSAID[:])
	rand.Read(f.Target.Ed25519ID[:])
	f.Target.HasEd25519 = true
	return f
}

// NewFakeRelayTCP is NewFakeRelay over a loopback TCP connection: both
// ends have socket buffers, and writes with deadlines allocate nothing
// (net.Pipe's deadlines do), as with a real relay.
func NewFakeRelayTCP() (*FakeRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	relay, err := ln.Accept()
	if err != nil {
		client.Close()
		return nil, err
	}
	return newFakeRelay().start(client, relay), nil
}

func (f *FakeRelay) start(client, relay net.Conn) *FakeRelay {
	f.conn = relay
	f.br = bufio.NewReaderSize(relay, 16<<10)
	f.Channel = channel.NewFromConn(client, f.Target.Identity())
	go f.run()
	return f
}

func (f *FakeRelay) run() {
	defer close(f.done)
	for {
		c, err := cell.Read(f.br, 4)
		if err != nil {
			close(f.Received)
			return
		}
		r := Received{Cell: c}
		switch c.Command {
		case cell.CREATE2:
			cr, err := cell.DecodeCreate2(c.Payload)
			if err != nil {
				continue
			}
			var reply []byte
			var ks io.Reader
			if cr.HType == 3 {
				reply, ks, err = torcrypto.NtorV3ServerHandshake(nil, f.bsk, f.Target.Ed25519ID, cr.HData,
					[]byte(torcrypto.NtorV3CircuitVerification), f.serverMessage)
			} else {
				reply, ks, err = torcrypto.NtorServerHandshake(nil, f.bsk, f.Target.RSAID, cr.HData)
			}
			if err != nil {
				f.SendCell(c.CircID, cell.DESTROY, []byte{byte(cell.DestroyProtocol)})
				continue
			}
			hop, _ := torcrypto.NewRelayHop(ks)
			var kh [20]byte
			io.ReadFull(ks, kh[:]) // tor-spec §5.2.2: the nonce after the relay keys
			f.mu.Lock()
			f.hop, f.circID, f.kh = hop, c.CircID, kh
			f.mu.Unlock()
			body, _ := cell.EncodeCreated2(reply)
			f.SendCell(c.CircID, cell.CREATED2, body)
		case cell.RELAY, cell.RELAY_EARLY:
			f.mu.Lock()
			hop := f.hop
			f.mu.Unlock()
			if hop != nil && len(c.Payload) == cell.PayloadLen {
				p := (*[cell.PayloadLen]byte)(c.Payload)
				ok, d := hop.Receive(p)
				r.Recognized, r.Digest = ok, d
				if ok {
					r.Msg, _ = cell.DecodeRelay(p[:])
				}
			}
		}
		f.Received <- r
	}
}

// serverMessage answers an ntor v3 client message with ServerExtensions.
func (f *FakeRelay) serverMessage(cm []byte) []byte {
	client, err := cell.DecodeExtensions(cm)
	var exts []cell.Extension
	if err == nil && f.ServerExtensions != nil {
		exts = f.ServerExtensions(client)
	}
	b, _ := cell.EncodeExtensions(exts)
	return b
}

// KH returns the handshake nonce the relay derived (what an
// introduction point checks ESTABLISH_INTRO's HANDSHAKE_AUTH with).
func (f *FakeRelay) KH() [20]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kh
}

// CircID returns the ID of the circuit the client created.
func (f *FakeRelay) CircID() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.circID
}

// SendCell writes a raw cell to the client.
func (f *FakeRelay) SendCell(circID uint32, cmd cell.Command, payload []byte) error {
	b, err := (&cell.Cell{CircID: circID, Command: cmd, Payload: payload}).Encode(4)
	if err != nil {
		return err
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, err = f.conn.Write(b)
	return err
}

// SendRelay originates a relay message on the circuit and returns the
// relay's running backward digest after it.
func (f *FakeRelay) SendRelay(msg cell.RelayMsg) ([20]byte, error) {
	var p [cell.PayloadLen]byte
	if err := cell.EncodeRelay(&p, msg); err != nil {
		return [20]byte{}, err
	}
	// Crypto and write under one lock so cells leave in digest order.
	f.wmu.Lock()
	f.mu.Lock()
	d := f.hop.Originate(&p)
	id := f.circID
	f.mu.Unlock()
	b, _ := (&cell.Cell{CircID: id, Command: cell.RELAY, Payload: p[:]}).Encode(4)
	_, err := f.conn.Write(b)
	f.wmu.Unlock()
	return d, err
}

// Close closes the relay's end of the connection and waits for its
// goroutine.
func (f *FakeRelay) Close() {
	f.conn.Close()
	<-f.done
}

// SendFromLaterHop adds the relay's backward layer to a payload that a
// hop beyond it (or a virtual hop) originated, and sends it.
func (f *FakeRelay) SendFromLaterHop(p *[cell.PayloadLen]byte) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.mu.Lock()
	f.hop.Relay(p)
	id := f.circID
	f.mu.Unlock()
	b, _ := (&cell.Cell{CircID: id, Command: cell.RELAY, Payload: p[:]}).Encode(4)
	_, err := f.conn.Write(b)
	return err
}

// AppendRelayCell encrypts a relay message originated by the relay and
// appends the encoded cell to dst, for tests and benchmarks that write
// many cells at once with WriteRaw. Messages must be written in the
// order they were encrypted.
func (f *FakeRelay) AppendRelayCell(dst []byte, msg cell.RelayMsg) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &f.scratch
	if err := cell.EncodeRelay(p, msg); err != nil {
		return dst, err
	}
	f.hop.Originate(p)
	c := cell.Cell{CircID: f.circID, Command: cell.RELAY, Payload: p[:]}
	return c.Append(dst, 4)
}

// WriteRaw writes encoded cells to the client.
func (f *FakeRelay) WriteRaw(b []byte) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, err := f.conn.Write(b)
	return err
}

// LaterHop is a hop beyond a FakeRelay, held by the test: the client
// reaches it through the fake relay as its next hop, with keys shared
// through Circuit.ExtendVirtual. Tests use it as an exit (or onion
// service) while the FakeRelay plays a hostile guard that can forge
// cells of its own.
type LaterHop struct {
	f   *FakeRelay
	mu  sync.Mutex
	hop *torcrypto.RelayHop
}

// ExtendLaterHop adds a hop with fresh random keys to c, whose first hop
// is f, and returns its far end.
func (f *FakeRelay) ExtendLaterHop(c *circuit.Circuit) (*LaterHop, error) {
	keys := make([]byte, torcrypto.RelayKeyMaterialLen)
	rand.Read(keys)
	client, err := torcrypto.NewHop(bytes.NewReader(keys))
	if err != nil {
		return nil, err
	}
	relay, err := torcrypto.NewRelayHop(bytes.NewReader(keys))
	if err != nil {
		return nil, err
	}
	if err := c.ExtendVirtual(client); err != nil {
		return nil, err
	}
	return &LaterHop{f: f, hop: relay}, nil
}

// SendRelay originates msg at the later hop and sends it to the client
// through the fake relay.
func (h *LaterHop) SendRelay(msg cell.RelayMsg) error {
	var p [cell.PayloadLen]byte
	if err := cell.EncodeRelay(&p, msg); err != nil {
		return err
	}
	// Both layers and the write in order: the fake relay's SendFromLaterHop
	// keeps its own order; the later hop's lock keeps this hop's.
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hop.Originate(&p)
	return h.f.SendFromLaterHop(&p)
}

// Receive decrypts a cell the client sent that the fake relay did not
// recognize (r.Recognized false: the relay's layer is already removed)
// and reports whether the later hop recognizes it.
func (h *LaterHop) Receive(r Received) (cell.RelayMsg, bool) {
	if r.Recognized || (r.Cell.Command != cell.RELAY && r.Cell.Command != cell.RELAY_EARLY) || len(r.Cell.Payload) != cell.PayloadLen {
		return cell.RelayMsg{}, false
	}
	p := (*[cell.PayloadLen]byte)(r.Cell.Payload)
	h.mu.Lock()
	ok, _ := h.hop.Receive(p)
	h.mu.Unlock()
	if !ok {
		return cell.RelayMsg{}, false
	}
	m, err := cell.DecodeRelay(p[:])
	return m, err == nil
}
