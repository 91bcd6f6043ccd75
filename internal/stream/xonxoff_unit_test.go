package stream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
)

// ccCirc is fakeCirc with congestion control negotiated (sendme_inc 31).
func ccCirc(t testing.TB) (*circtest.FakeRelay, *circuit.Circuit) {
	t.Helper()
	f := circtest.NewFakeRelay()
	f.ServerExtensions = func([]cell.Extension) []cell.Extension {
		return []cell.Extension{{Type: cell.ExtCCResponse, Data: []byte{31}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := circuit.CreateWith(ctx, f.Channel, f.Target, circuit.NtorV3CC)
	if err != nil {
		t.Fatal(err)
	}
	<-f.Received // CREATE2
	if on, _ := c.CongestionControl(); !on {
		t.Fatal("congestion control not negotiated")
	}
	t.Cleanup(func() {
		c.Close()
		f.Channel.Close()
		f.Close()
	})
	return f, c
}

// circuitClosedByViolation waits for c to close with a protocol
// violation.
func circuitClosedByViolation(t *testing.T, c *circuit.Circuit, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: circuit still open", what)
	}
	var pe *circuit.ProtocolError
	if !errors.As(c.Err(), &pe) {
		t.Fatalf("%s: circuit closed with %v, want a protocol violation", what, c.Err())
	}
}

// pump reads the client's cells until it has sent n more RELAY_DATA
// cells (*sent counts them on the circuit), answering every 31st with the
// circuit SENDME (v1, its digest) that lets the client send on.
func pump(t *testing.T, f *circtest.FakeRelay, n int, sent *int) {
	t.Helper()
	for got := 0; got < n; {
		select {
		case r, ok := <-f.Received:
			if !ok {
				t.Fatal("closed")
			}
			if !r.Recognized {
				t.Fatalf("unrecognized %v after %d DATA cells", r.Cell.Command, got)
			}
			if r.Msg.Command == cell.RELAY_DATA {
				got++
				if *sent++; *sent%31 == 0 {
					f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, Data: (&cell.Sendme{Version: 1, Digest: r.Digest[:]}).Encode()})
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timeout after %d of %d DATA cells", got, n)
		}
	}
}

func xoff() []byte { return cell.EncodeXoff() }
func xon() []byte  { return (&cell.Xon{}).Encode() }

// TestXoffBeforeDataClosesCircuit: an XOFF on a stream we have not
// written to (a DropMark signal) closes the circuit, and the stream
// fails with it.
func TestXoffBeforeDataClosesCircuit(t *testing.T) {
	f, c := ccCirc(t)
	s := open(t, f, c)
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_XOFF, StreamID: s.StreamID(), Data: xoff()})
	circuitClosedByViolation(t, c, "early XOFF")
	if _, err := s.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("stream read after the violation: %v, want an error", err)
	}
}

// TestXonFloodClosesCircuit: an XON beyond one per min(cc_xoff_exit,
// cc_xon_rate) cells of data sent closes the circuit.
func TestXonFloodClosesCircuit(t *testing.T) {
	f, c := ccCirc(t)
	s := open(t, f, c)
	go s.Write(bytes.Repeat([]byte{'u'}, 500*cell.RelayDataMax))
	sent := 0
	pump(t, f, 500, &sent)
	for range 2 { // the second exceeds the budget of 500 cells
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_XON, StreamID: s.StreamID(), Data: xon()})
	}
	circuitClosedByViolation(t, c, "two XONs after 500 cells")
}

// TestXoffXonWithinBudget: after 500 cells of data the exit's XOFF stops
// our writes and its XON resumes them; a second XOFF without an XON in
// between is a violation.
func TestXoffXonWithinBudget(t *testing.T) {
	f, c := ccCirc(t)
	s := open(t, f, c)
	if _, err := s.Write(bytes.Repeat([]byte{'u'}, 124*cell.RelayDataMax)); err != nil { // the initial window
		t.Fatal(err)
	}
	go s.Write(bytes.Repeat([]byte{'u'}, (500-124)*cell.RelayDataMax))
	sent := 0
	pump(t, f, 500, &sent)
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_XOFF, StreamID: s.StreamID(), Data: xoff()})
	time.Sleep(50 * time.Millisecond) // let the XOFF arrive
	s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := s.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after XOFF: %v, want blocked until the deadline", err)
	}
	s.SetWriteDeadline(time.Time{})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_XON, StreamID: s.StreamID(), Data: xon()})
	if _, err := s.Write([]byte("y")); err != nil {
		t.Fatalf("write after XON: %v", err)
	}
	if m := nextMsg(t, f); m.Command != cell.RELAY_DATA || string(m.Data) != "y" {
		t.Fatalf("after XON the client sent %v %q", m.Command, m.Data)
	}
	sent++
	if c.Err() != nil {
		t.Fatalf("circuit closed: %v", c.Err())
	}
	// Two XOFFs in a row (the budget would allow one more).
	go s.Write(bytes.Repeat([]byte{'u'}, 1000*cell.RelayDataMax))
	pump(t, f, 1000, &sent)
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_XOFF, StreamID: s.StreamID(), Data: xoff()})
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_XOFF, StreamID: s.StreamID(), Data: xoff()})
	circuitClosedByViolation(t, c, "second XOFF without XON")
}

// TestStreamSendmeOnCCCircuit: streams have no windows with congestion
// control; a stream SENDME is a violation.
func TestStreamSendmeOnCCCircuit(t *testing.T) {
	f, c := ccCirc(t)
	s := open(t, f, c)
	f.SendRelay(cell.RelayMsg{Command: cell.RELAY_SENDME, StreamID: s.StreamID()})
	circuitClosedByViolation(t, c, "stream SENDME")
}

// TestXoffSentAndXon: a reader that stops gets the exit an XOFF once
// XoffCells are buffered, one only, and an XON once it has read the
// buffer down to XonCells.
func TestXoffSentAndXon(t *testing.T) {
	f, c := ccCirc(t)
	s := open(t, f, c)
	payload := bytes.Repeat([]byte{'d'}, cell.RelayDataMax)
	for range stream.XoffCells + 100 {
		f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: payload})
	}
	var xoffs, xons int
	count := func(wait time.Duration) {
		for {
			select {
			case r := <-f.Received:
				if r.Recognized && r.Msg.StreamID == s.StreamID() {
					switch r.Msg.Command {
					case cell.RELAY_XOFF:
						xoffs++
					case cell.RELAY_XON:
						xons++
					}
				}
			case <-time.After(wait):
				return
			}
		}
	}
	count(300 * time.Millisecond)
	if xoffs != 1 || xons != 0 {
		t.Fatalf("with %d cells unread the client sent %d XOFF, %d XON; want 1, 0", stream.XoffCells+100, xoffs, xons)
	}
	buf := make([]byte, (stream.XoffCells+100-stream.XonCells)*cell.RelayDataMax)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	count(300 * time.Millisecond)
	if xoffs != 1 || xons != 1 {
		t.Fatalf("after reading down to %d cells: %d XOFF, %d XON; want 1, 1", stream.XonCells, xoffs, xons)
	}
}

// TestExitIgnoringXoffClosesCircuit: an exit that keeps sending past
// XoffCells + MaxCellsAfterXoff unread cells is cut off; the buffer
// stays bounded.
func TestExitIgnoringXoffClosesCircuit(t *testing.T) {
	f, c := ccCirc(t)
	s := open(t, f, c)
	go func() { // the client's cells (SENDMEs, the XOFF) must not block the pipe
		for range f.Received {
		}
	}()
	payload := bytes.Repeat([]byte{'d'}, cell.RelayDataMax)
	for i := 0; i < stream.XoffCells+stream.MaxCellsAfterXoff+10 && c.Err() == nil; i++ {
		if _, err := f.SendRelay(cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: payload}); err != nil {
			break
		}
	}
	circuitClosedByViolation(t, c, "exit ignoring XOFF")
}
