package onion

// A minimal client circuit for the integration test, built directly on
// internal/channel and internal/torcrypto, with what internal/circuit
// does not offer yet: stream-0 onion service relay messages and a
// virtual hop with hscrypto.RendHop crypto. It exists to prove the
// onion client flow against a real C tor onion service; the production
// Circ belongs on internal/circuit (see the package doc).
//
// No flow control beyond the initial windows: enough for short exchanges.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/channel"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/onion/hscrypto"
	"github.com/gotor/gotor/internal/torcrypto"
)

type hopCrypto interface {
	SetForwardDigest(p *[509]byte) [20]byte
	EncryptForward(p *[509]byte)
	DecryptBackward(p *[509]byte)
	CheckBackward(p *[509]byte) (bool, [20]byte)
}

type miniCirc struct {
	ep      *channel.Endpoint
	in      chan *cell.Cell // the endpoint's cells, for read
	mu      sync.Mutex
	hops    []hopCrypto
	ctrl    chan cell.RelayMsg
	smu     sync.Mutex
	streams map[uint16]*miniStream
	nextSID uint16
	done    chan struct{}
	err     error
}

type miniStream struct {
	connected chan error
	in        chan []byte
	app, mine net.Conn
}

func buildMini(ctx context.Context, mgr *channel.Manager, path []circuit.Target, lastSpecs []cell.LinkSpec) (*miniCirc, error) {
	first := path[0]
	ch, err := mgr.Get(ctx, first.Addr, first.Identity())
	if err != nil {
		return nil, err
	}
	m := &miniCirc{in: make(chan *cell.Cell, 2048), ctrl: make(chan cell.RelayMsg, 32), streams: map[uint16]*miniStream{}, nextSID: 1, done: make(chan struct{})}
	ep, err := ch.NewEndpoint(m.queue, func(err error) { m.fail(fmt.Errorf("minicirc: endpoint ended: %w", err)) })
	if err != nil {
		return nil, err
	}
	m.ep = ep
	hs, err := torcrypto.NewNtorClient(rand.Reader, first.RSAID, first.NtorKey)
	if err != nil {
		return nil, err
	}
	body, _ := (&cell.Create2{HType: hs.Type(), HData: hs.ClientMessage()}).Encode()
	if err := ep.Send(cell.CREATE2, body); err != nil {
		return nil, err
	}
	select {
	case <-m.done:
		return nil, m.err
	case cl := <-m.in:
		if cl.Command != cell.CREATED2 {
			ep.Release(true, 0)
			return nil, fmt.Errorf("minicirc: %v instead of CREATED2", cl.Command)
		}
		reply, err := cell.DecodeCreated2(cl.Payload)
		if err != nil {
			return nil, err
		}
		ks, err := hs.Complete(reply)
		if err != nil {
			return nil, err
		}
		hop, err := torcrypto.NewHop(ks)
		if err != nil {
			return nil, err
		}
		m.hops = append(m.hops, hop)
	case <-ctx.Done():
		ep.Release(true, 0)
		return nil, ctx.Err()
	}
	go m.read()
	for i, t := range path[1:] {
		specs := []cell.LinkSpec{cell.LinkSpecAddr(t.Addr), cell.LinkSpecRSAID(t.RSAID)}
		if t.HasEd25519 {
			specs = append(specs, cell.LinkSpecEd25519ID(t.Ed25519ID))
		}
		if i == len(path)-2 && lastSpecs != nil {
			specs = lastSpecs
		}
		hs, err := torcrypto.NewNtorClient(rand.Reader, t.RSAID, t.NtorKey)
		if err != nil {
			return nil, err
		}
		body, err := (&cell.Extend2{Specs: specs, Create: cell.Create2{HType: hs.Type(), HData: hs.ClientMessage()}}).Encode()
		if err != nil {
			return nil, err
		}
		if err := m.send(cell.RELAY_EARLY, cell.RelayMsg{Command: cell.RELAY_EXTEND2, Data: body}); err != nil {
			return nil, err
		}
		msg, err := m.recvCtrl(ctx, byte(cell.RELAY_EXTENDED2))
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("minicirc: extend to hop %d: %w", i+2, err)
		}
		reply, err := cell.DecodeCreated2(msg.Data)
		if err != nil {
			return nil, err
		}
		ks, err := hs.Complete(reply)
		if err != nil {
			return nil, err
		}
		hop, err := torcrypto.NewHop(ks)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.hops = append(m.hops, hop)
		m.mu.Unlock()
	}
	return m, nil
}

func (m *miniCirc) send(cmd cell.Command, r cell.RelayMsg) error {
	var p [cell.PayloadLen]byte
	if err := cell.EncodeRelay(&p, r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	last := len(m.hops) - 1
	m.hops[last].SetForwardDigest(&p)
	for i := last; i >= 0; i-- {
		m.hops[i].EncryptForward(&p)
	}
	return m.ep.Send(cmd, p[:])
}

func (m *miniCirc) fail(err error) {
	m.mu.Lock()
	if m.err == nil {
		m.err = err
		close(m.done)
	}
	m.mu.Unlock()
}

// queue is the endpoint's handler: it runs on the channel's reader
// goroutine and must not block.
func (m *miniCirc) queue(cl *cell.Cell) {
	select {
	case m.in <- cl:
	default:
		m.fail(errors.New("minicirc: inbound queue overflow"))
	}
}

func (m *miniCirc) read() {
	for {
		var cl *cell.Cell
		select {
		case cl = <-m.in:
		case <-m.done:
			return
		}
		switch cl.Command {
		case cell.RELAY:
		case cell.DESTROY:
			m.fail(fmt.Errorf("minicirc: DESTROY %v", cl.Payload[:1]))
			return
		default:
			continue
		}
		p := (*[cell.PayloadLen]byte)(cl.Payload)
		m.mu.Lock()
		hops := m.hops
		m.mu.Unlock()
		ok := false
		for _, h := range hops {
			h.DecryptBackward(p)
			if ok, _ = h.CheckBackward(p); ok {
				break
			}
		}
		if !ok {
			m.fail(errors.New("minicirc: unrecognized relay cell"))
			return
		}
		msg, err := cell.DecodeRelay(p[:])
		if err != nil {
			m.fail(err)
			return
		}
		msg.Data = append([]byte(nil), msg.Data...)
		if msg.StreamID == 0 {
			switch msg.Command {
			case cell.RELAY_SENDME, cell.RELAY_DROP:
				continue
			case cell.RELAY_TRUNCATED:
				m.fail(errors.New("minicirc: TRUNCATED"))
				return
			}
			select {
			case m.ctrl <- msg:
			default:
			}
			continue
		}
		m.smu.Lock()
		s := m.streams[msg.StreamID]
		m.smu.Unlock()
		if s == nil {
			continue
		}
		switch msg.Command {
		case cell.RELAY_CONNECTED:
			s.connected <- nil
		case cell.RELAY_DATA:
			s.in <- msg.Data
		case cell.RELAY_END:
			select {
			case s.connected <- fmt.Errorf("minicirc: stream END %v", msg.Data):
			default:
			}
			close(s.in)
			m.smu.Lock()
			delete(m.streams, msg.StreamID)
			m.smu.Unlock()
		}
	}
}

func (m *miniCirc) recvCtrl(ctx context.Context, want ...byte) (cell.RelayMsg, error) {
	for {
		select {
		case msg := <-m.ctrl:
			if len(want) == 0 {
				return msg, nil
			}
			for _, w := range want {
				if byte(msg.Command) == w {
					return msg, nil
				}
			}
		case <-m.done:
			return cell.RelayMsg{}, m.err
		case <-ctx.Done():
			return cell.RelayMsg{}, ctx.Err()
		}
	}
}

// Circ implementation.

func (m *miniCirc) SendRelay(ctx context.Context, cmd byte, body []byte) error {
	return m.send(cell.RELAY, cell.RelayMsg{Command: cell.RelayCommand(cmd), Data: body})
}

func (m *miniCirc) ReceiveRelay(ctx context.Context) (byte, []byte, error) {
	msg, err := m.recvCtrl(ctx)
	return byte(msg.Command), msg.Data, err
}

func (m *miniCirc) BeginDir(ctx context.Context) (net.Conn, error) {
	return m.open(ctx, cell.RELAY_BEGIN_DIR, nil)
}

func (m *miniCirc) ExtendVirtualHop(keys hscrypto.RendKeys) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hops = append(m.hops, hscrypto.NewRendHop(keys))
	return nil
}

func (m *miniCirc) OpenStream(ctx context.Context, port uint16) (net.Conn, error) {
	// Onion services ignore the host: C tor sends ":port".
	body := append([]byte(fmt.Sprintf(":%d", port)), 0)
	return m.open(ctx, cell.RELAY_BEGIN, body)
}

func (m *miniCirc) open(ctx context.Context, cmd cell.RelayCommand, body []byte) (net.Conn, error) {
	app, mine := net.Pipe()
	s := &miniStream{connected: make(chan error, 1), in: make(chan []byte, 600), app: app, mine: mine}
	m.smu.Lock()
	id := m.nextSID
	m.nextSID++
	m.streams[id] = s
	m.smu.Unlock()
	if err := m.send(cell.RELAY, cell.RelayMsg{Command: cmd, StreamID: id, Data: body}); err != nil {
		return nil, err
	}
	select {
	case err := <-s.connected:
		if err != nil {
			return nil, err
		}
	case <-m.done:
		return nil, m.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	go func() { // inbound DATA -> app
		for d := range s.in {
			if _, err := mine.Write(d); err != nil {
				break
			}
		}
		mine.Close()
	}()
	go func() { // app -> outbound DATA
		buf := make([]byte, cell.RelayDataMax)
		for {
			n, err := mine.Read(buf)
			if n > 0 {
				if m.send(cell.RELAY, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: id, Data: append([]byte(nil), buf[:n]...)}) != nil {
					return
				}
			}
			if err != nil {
				if err == io.EOF || errors.Is(err, io.ErrClosedPipe) {
					m.send(cell.RELAY, cell.RelayMsg{Command: cell.RELAY_END, StreamID: id, Data: []byte{6}})
				}
				return
			}
		}
	}()
	return app, nil
}

func (m *miniCirc) Done() <-chan struct{} { return m.done }

func (m *miniCirc) Close() error {
	m.ep.Release(true, 0)
	m.fail(errors.New("minicirc: closed"))
	return nil
}
