package stream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
)

func fakeCirc(t testing.TB) (*circtest.FakeRelay, *circuit.Circuit) {
	t.Helper()
	f := circtest.NewFakeRelay()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := circuit.Create(ctx, f.Channel, f.Target)
	if err != nil {
		t.Fatal(err)
	}
	<-f.Received // CREATE2
	t.Cleanup(func() {
		c.Close()
		f.Channel.Close()
		f.Close()
	})
	return f, c
}

// nextMsg returns the next relay message from the client, skipping
// circuit-level SENDMEs.
func nextMsg(t testing.TB, f *circtest.FakeRelay) cell.RelayMsg {
	t.Helper()
	for {
		select {
		case r, ok := <-f.Received:
			if !ok {
				t.Fatal("closed")
			}
			if !r.Recognized {
				if r.Cell.Command == cell.DESTROY {
					return cell.RelayMsg{Command: 0}
				}
				t.Fatalf("unrecognized %v", r.Cell.Command)
			}
			if r.Msg.Command == cell.RELAY_SENDME && r.Msg.StreamID == 0 {
				continue
			}
			return r.Msg
		case <-time.After(5 * time.Second):
			t.Fatal("timeout")
		}
	}
}

// open begins a stream and has the fake relay accept it.
func open(t testing.TB, f *circtest.FakeRelay, c *circuit.Circuit) *stream.Conn {
	t.Helper()
	type res struct {
		s   *stream.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := stream.Begin(context.Background(), c, "example.com", 443, stream.FlagIPv6OK)
		ch <- res{s, err}
	}()
	m := nextMsg(t, f)
	b, err := cell.DecodeBegin(m.Data)
	if m.Command != cell.RELAY_BEGIN || err != nil || b.Host != "example.com" || b.Port != 443 || b.Flags != cell.BeginIPv6OK {
		t.Fatalf("BEGIN %+v %+v %v", m, b, err)
	}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: m.StreamID,
		Data: (&cell.Connected{Addr: netip.MustParseAddr("192.0.2.7"), TTL: 60}).Encode()})
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.s.Connected(); got.Addr.String() != "192.0.2.7" || got.TTL != 60 {
		t.Fatalf("connected %+v", got)
	}
	return r.s
}

func TestWriteSplitsAt498(t *testing.T) {
	f, c := fakeCirc(t)
	s := open(t, f, c)
	data := bytes.Repeat([]byte("z"), 1000)
	if n, err := s.Write(data); n != 1000 || err != nil {
		t.Fatal(n, err)
	}
	for _, want := range []int{498, 498, 4} {
		m := nextMsg(t, f)
		if m.Command != cell.RELAY_DATA || len(m.Data) != want || m.StreamID != s.StreamID() {
			t.Fatalf("DATA %v len %d want %d", m.Command, len(m.Data), want)
		}
	}
	s.Close()
	m := nextMsg(t, f)
	if m.Command != cell.RELAY_END || cell.EndReason(m.Data[0]) != cell.EndDone {
		t.Fatalf("close sent %+v", m)
	}
}

func TestStreamSendmeAfterConsuming50(t *testing.T) {
	f, c := fakeCirc(t)
	s := open(t, f, c)
	for i := range 60 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: []byte{byte(i)}})
	}
	buf := make([]byte, 60)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if buf[i] != byte(i) {
			t.Fatal("data order")
		}
	}
	m := nextMsg(t, f)
	if m.Command != cell.RELAY_SENDME || m.StreamID != s.StreamID() {
		t.Fatalf("got %+v, want stream SENDME", m)
	}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_END, StreamID: s.StreamID(), Data: []byte{byte(cell.EndDone)}})
	if _, err := s.Read(buf); err != io.EOF {
		t.Fatalf("after END DONE: %v", err)
	}
}

func TestStreamWindowViolationClosesCircuit(t *testing.T) {
	f, c := fakeCirc(t)
	s := open(t, f, c)
	// The client reads nothing, so it owes no SENDME: cell 501 violates.
	for range 501 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: []byte{1}})
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("circuit not closed")
	}
	var pe *stream.ProtocolError
	if !errors.As(c.Err(), &pe) {
		t.Fatalf("circuit error %v", c.Err())
	}
	// Buffered data is still readable, then the error.
	n, _ := io.Copy(io.Discard, s)
	if n != 500 {
		t.Fatalf("read %d bytes", n)
	}
}

func TestPackageWindowBlocksWrites(t *testing.T) {
	f, c := fakeCirc(t)
	s := open(t, f, c)
	chunk := make([]byte, cell.RelayDataMax)
	for range 500 {
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := s.Write(chunk); err == nil {
		t.Fatal("501st cell written without SENDME")
	}
	s.SetWriteDeadline(time.Time{})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, StreamID: s.StreamID()})
	if _, err := s.Write(chunk); err != nil {
		t.Fatal(err)
	}
}

func TestBeginRefusedIsEndError(t *testing.T) {
	f, c := fakeCirc(t)
	done := make(chan error, 1)
	go func() {
		_, err := stream.Begin(context.Background(), c, "198.51.100.1", 25, 0)
		done <- err
	}()
	m := nextMsg(t, f)
	end := []byte{byte(cell.EndExitPolicy), 198, 51, 100, 1, 0, 0, 1, 0}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_END, StreamID: m.StreamID, Data: end})
	err := <-done
	var ee *stream.EndError
	if !errors.As(err, &ee) || ee.Reason != stream.ReasonExitPolicy || ee.Addr.String() != "198.51.100.1" || ee.TTL != 256 {
		t.Fatalf("got %v", err)
	}
	// The circuit survives a refused stream.
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
}

func TestDestroyFailsStreams(t *testing.T) {
	f, c := fakeCirc(t)
	s := open(t, f, c)
	f.SendCell(f.CircID(), cell.DESTROY, []byte{byte(cell.DestroyHibernating)})
	_, err := s.Read(make([]byte, 10))
	var de *circuit.DestroyedError
	if !errors.As(err, &de) || de.Reason != cell.DestroyHibernating {
		t.Fatalf("got %v", err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("write succeeded on a dead circuit")
	}
}

func TestResolveUnit(t *testing.T) {
	f, c := fakeCirc(t)
	done := make(chan []netip.Addr, 1)
	go func() {
		a, err := stream.Resolve(context.Background(), c, "example.org")
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	m := nextMsg(t, f)
	if m.Command != cell.RELAY_RESOLVE || string(m.Data) != "example.org\x00" {
		t.Fatalf("%+v", m)
	}
	body, _ := cell.EncodeResolved([]cell.ResolvedAnswer{
		{Type: cell.AddrTypeIPv4, Addr: netip.MustParseAddr("192.0.2.1"), TTL: 30},
		{Type: cell.AddrTypeIPv6, Addr: netip.MustParseAddr("2001:db8::1"), TTL: 30}})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_RESOLVED, StreamID: m.StreamID, Data: body})
	if a := <-done; len(a) != 2 || a[1].String() != "2001:db8::1" {
		t.Fatal(a)
	}
	go func() {
		_, err := stream.ResolvePTR(context.Background(), c, netip.MustParseAddr("192.0.2.1"))
		var re *stream.ResolveError
		if !errors.As(err, &re) || !re.Transient {
			t.Errorf("PTR: %v", err)
		}
		close(done)
	}()
	m = nextMsg(t, f)
	if string(m.Data) != "1.2.0.192.in-addr.arpa\x00" {
		t.Fatalf("%q", m.Data)
	}
	body, _ = cell.EncodeResolved([]cell.ResolvedAnswer{{Type: cell.AddrTypeErrorTransient}})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_RESOLVED, StreamID: m.StreamID, Data: body})
	<-done
}

// Cells the exit sent before it saw our END must not kill the circuit.
func TestDataAfterCloseIsDropped(t *testing.T) {
	f, c := fakeCirc(t)
	s := open(t, f, c)
	s.Close()
	if m := nextMsg(t, f); m.Command != cell.RELAY_END {
		t.Fatalf("%+v", m)
	}
	for range 10 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: []byte("late")})
	}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_END, StreamID: s.StreamID(), Data: []byte{byte(cell.EndDone)}})
	roundTrip(t, f, c)
	// The circuit kept the stream half-closed: all 11 cells were expected.
	if d := c.Dropped(); d != (circuit.Dropped{HalfClosed: 11}) || c.NumHalfClosed() != 0 {
		t.Fatalf("dropped %+v, %d half-closed", d, c.NumHalfClosed())
	}
}

// roundTrip resolves a name through the circuit: it is still alive.
func roundTrip(t *testing.T, f *circtest.FakeRelay, c *circuit.Circuit) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := stream.Resolve(context.Background(), c, "example.net")
		done <- err
	}()
	m := nextMsg(t, f)
	body, _ := cell.EncodeResolved([]cell.ResolvedAnswer{{Type: cell.AddrTypeIPv4, Addr: netip.MustParseAddr("192.0.2.9")}})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_RESOLVED, StreamID: m.StreamID, Data: body})
	if err := <-done; err != nil || c.Err() != nil {
		t.Fatal(err, c.Err())
	}
}

// What a stream may still get after we end it follows its state and
// windows, as C tor's connection_half_edge_add counts it.
func TestEndedStreamsAreHalfClosed(t *testing.T) {
	f, c := fakeCirc(t)
	// A BEGIN given up before CONNECTED: one CONNECTED may still come.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := stream.Begin(ctx, c, "example.com", 80, 0)
		done <- err
	}()
	begin := nextMsg(t, f)
	cancel()
	<-done
	if m := nextMsg(t, f); m.Command != cell.RELAY_END || m.StreamID != begin.StreamID {
		t.Fatalf("%+v", m)
	}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: begin.StreamID})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_CONNECTED, StreamID: begin.StreamID})
	// A RESOLVE given up: RESOLVED may still come, DATA may not.
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		_, err := stream.Resolve(ctx, c, "example.org")
		done <- err
	}()
	resolve := nextMsg(t, f)
	cancel()
	<-done
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: resolve.StreamID, Data: []byte("x")})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_RESOLVED, StreamID: resolve.StreamID, Data: []byte{0xF0, 0, 0, 0, 0, 0}})
	// An open stream that sent 120 cells (two SENDMEs owed) and read none.
	s := open(t, f, c)
	for range 120 {
		s.Write([]byte("y"))
	}
	for range 120 {
		nextMsg(t, f)
	}
	for range 2 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: []byte("z")})
	}
	s.Close()
	nextMsg(t, f) // END
	for range 499 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: []byte("z")})
	}
	for range 3 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, StreamID: s.StreamID()})
	}
	roundTrip(t, f, c)
	// Expected: 1 CONNECTED, 1 RESOLVED, 498 DATA (window 500 less the 2
	// received), 2 SENDMEs. Not: the second CONNECTED, the DATA after
	// RESOLVE, the 499th DATA, the third SENDME.
	// One of the two DATA cells sent before Close may reach the stream
	// after it ended (the close races its delivery): 502 or 503.
	want := circuit.Dropped{HalfClosed: 1 + 1 + 498 + 2, UnknownStream: 4}
	d := c.Dropped()
	if d.HalfClosed == want.HalfClosed+1 {
		want.HalfClosed++
	}
	if d != want || c.Err() != nil {
		t.Fatalf("dropped %+v, want %+v (circuit %v)", d, want, c.Err())
	}
}

func TestWriteToCopiesUntilEnd(t *testing.T) {
	f, c := fakeCirc(t)
	s := open(t, f, c)
	type res struct {
		n   int64
		err error
	}
	var got bytes.Buffer
	done := make(chan res, 1)
	go func() {
		n, err := s.WriteTo(&got)
		done <- res{n, err}
	}()
	var want []byte
	for i := range 120 {
		d := bytes.Repeat([]byte{byte(i)}, 1+i*4%498)
		want = append(want, d...)
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: d})
	}
	// Stream SENDMEs are sent for the cells WriteTo consumed.
	for range 2 {
		if m := nextMsg(t, f); m.Command != cell.RELAY_SENDME || m.StreamID != s.StreamID() {
			t.Fatalf("got %+v, want stream SENDME", m)
		}
	}
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_END, StreamID: s.StreamID(), Data: []byte{byte(cell.EndDone)}})
	r := <-done
	if r.err != nil || r.n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("WriteTo: %d bytes, %v; equal %v", r.n, r.err, bytes.Equal(got.Bytes(), want))
	}
}
