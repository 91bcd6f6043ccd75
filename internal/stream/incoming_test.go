package stream_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
	"github.com/gotor/gotor/internal/torcrypto"
)

// serviceCirc is the service's side of a rendezvous circuit: a fake
// relay (the rendezvous point) and a virtual hop whose far end, the
// client, is client.
type serviceCirc struct {
	f      *circtest.FakeRelay
	c      *circuit.Circuit
	client *torcrypto.RelayHop
}

func newServiceCirc(t *testing.T) *serviceCirc {
	f, c := fakeCirc(t)
	keys := bytes.Repeat([]byte{3}, torcrypto.RelayKeyMaterialLen)
	vc, _ := torcrypto.NewHop(bytes.NewReader(keys))
	client, _ := torcrypto.NewRelayHop(bytes.NewReader(keys))
	if err := c.ExtendVirtual(vc); err != nil {
		t.Fatal(err)
	}
	return &serviceCirc{f: f, c: c, client: client}
}

func (s *serviceCirc) send(t *testing.T, m cell.RelayMsg) {
	t.Helper()
	var p [cell.PayloadLen]byte
	if err := cell.EncodeRelay(&p, m); err != nil {
		t.Fatal(err)
	}
	s.client.Originate(&p)
	if err := s.f.SendFromLaterHop(&p); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next message the service sent to the client.
func (s *serviceCirc) recv(t *testing.T) cell.RelayMsg {
	t.Helper()
	for {
		select {
		case r := <-s.f.Received:
			p := (*[cell.PayloadLen]byte)(r.Cell.Payload)
			if ok, _ := s.client.Receive(p); !ok {
				t.Fatalf("cell not for the client (relay recognized: %v)", r.Recognized)
			}
			m, _ := cell.DecodeRelay(p[:])
			if m.Command == cell.RELAY_SENDME && m.StreamID == 0 {
				continue
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("timeout")
		}
	}
}

func TestIncomingStreams(t *testing.T) {
	s := newServiceCirc(t)
	got := make(chan *stream.Incoming, 4)
	stream.AcceptStreams(s.c, func(in *stream.Incoming) { got <- in })
	begin := func(id uint16, port uint16) *stream.Incoming {
		body, _ := (&cell.Begin{Port: port}).Encode()
		s.send(t, cell.RelayMsg{Command: cell.RELAY_BEGIN, StreamID: id, Data: body})
		select {
		case in := <-got:
			return in
		case <-time.After(5 * time.Second):
			t.Fatal("no Incoming")
			return nil
		}
	}
	in := begin(10, 80)
	if in.Port != 80 || in.Host != "" {
		t.Fatalf("%+v", in)
	}
	// Optimistic data before Accept is kept.
	s.send(t, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 10, Data: []byte("GET / ")})
	conn, err := in.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if m := s.recv(t); m.Command != cell.RELAY_CONNECTED || m.StreamID != 10 || len(m.Data) != 0 {
		t.Fatalf("answer %v stream %d, %d bytes", m.Command, m.StreamID, len(m.Data))
	}
	s.send(t, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: 10, Data: []byte("HTTP/1.0")})
	buf := make([]byte, 14)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "GET / HTTP/1.0" {
		t.Fatalf("%q %v", buf, err)
	}
	conn.Write([]byte("reply"))
	if m := s.recv(t); m.Command != cell.RELAY_DATA || string(m.Data) != "reply" {
		t.Fatalf("%v %q", m.Command, m.Data)
	}
	s.send(t, cell.RelayMsg{Command: cell.RELAY_END, StreamID: 10, Data: (&cell.End{Reason: cell.EndDone}).Encode()})
	if _, err := conn.Read(buf); err != io.EOF {
		t.Fatalf("after END: %v", err)
	}

	// Reject sends END with the reason.
	in = begin(11, 22)
	in.Reject(cell.EndDone)
	if m := s.recv(t); m.Command != cell.RELAY_END || m.StreamID != 11 || m.Data[0] != byte(cell.EndDone) {
		t.Fatalf("%v %d %x", m.Command, m.StreamID, m.Data)
	}
	// A stream the client ended before Accept cannot be accepted.
	in = begin(12, 80)
	s.send(t, cell.RelayMsg{Command: cell.RELAY_END, StreamID: 12, Data: (&cell.End{Reason: cell.EndDone}).Encode()})
	time.Sleep(50 * time.Millisecond)
	if _, err := in.Accept(); !errors.Is(err, stream.ErrStreamGone) {
		t.Fatalf("Accept after END: %v", err)
	}
	// A BEGIN that does not parse gets END TORPROTOCOL; the circuit stays.
	s.send(t, cell.RelayMsg{Command: cell.RELAY_BEGIN, StreamID: 13, Data: []byte("no nul")})
	if m := s.recv(t); m.Command != cell.RELAY_END || m.StreamID != 13 || m.Data[0] != byte(cell.EndTorProtocol) {
		t.Fatalf("%v %d %x", m.Command, m.StreamID, m.Data)
	}
	if in := begin(14, 80); in == nil || s.c.Err() != nil {
		t.Fatalf("circuit closed after a bad BEGIN: %v", s.c.Err())
	}
}
