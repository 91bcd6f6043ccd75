package stream_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/stream"
)

// benchReceive measures the whole receive path of RELAY_DATA cells:
// cell bytes from the relay → channel reader → circuit (decrypt,
// circuit SENDME) → stream buffer → the application's read (stream
// SENDME). One op is one full 498-byte DATA cell. The fake relay
// respects the stream and circuit windows, crediting them from the
// SENDMEs the client sends.
func benchReceive(b *testing.B, consume func(s *stream.Conn, n int64) error) {
	f, c := fakeCirc(b)
	s := open(b, f, c)
	credit := make(chan int, 1024)
	go func() {
		for r := range f.Received {
			if r.Recognized && r.Msg.Command == cell.RELAY_SENDME && r.Msg.StreamID == s.StreamID() {
				credit <- stream.StreamWindowIncrement
			}
		}
	}()
	payload := bytes.Repeat([]byte("x"), cell.RelayDataMax)
	const batch = 25 // cells per write, about what one TLS record carries
	b.SetBytes(cell.RelayDataMax)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		window := stream.StreamWindowStart
		var buf []byte
		for sent := 0; sent < b.N; {
			for window < batch {
				window += <-credit
			}
			n := min(batch, b.N-sent)
			buf = buf[:0]
			for range n {
				buf, _ = f.AppendRelayCell(buf, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: payload})
			}
			if f.WriteRaw(buf) != nil {
				return
			}
			window -= n
			sent += n
		}
		// END (DONE) so that WriteTo returns.
		buf, _ = f.AppendRelayCell(buf[:0], cell.RelayMsg{Command: cell.RELAY_END, StreamID: s.StreamID(), Data: []byte{byte(cell.EndDone)}})
		f.WriteRaw(buf)
	}()
	if err := consume(s, int64(b.N)*cell.RelayDataMax); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

func BenchmarkReceivePathRead(b *testing.B) {
	benchReceive(b, func(s *stream.Conn, n int64) error {
		buf := make([]byte, 32<<10)
		_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{io.LimitReader(s, n)}, buf)
		return err
	})
}

// countingDiscard is io.Discard that counts, without ReadFrom (as a
// TCP connection's ReadFrom is not used when the source has WriteTo).
type countingDiscard struct{ n int64 }

func (d *countingDiscard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

func BenchmarkReceivePathWriteTo(b *testing.B) {
	benchReceive(b, func(s *stream.Conn, n int64) error {
		var d countingDiscard
		if _, err := io.Copy(&d, s); err != nil {
			return err
		}
		if d.n != n {
			b.Fatalf("got %d bytes, want %d", d.n, n)
		}
		return nil
	})
}
