package stream_test

// Allocation guards for the data path (issue 21 item 13): "0 allocations
// per cell" (docs/BENCHMARKS.md) is a claim the benchmarks measure but CI
// does not assert; these tests fail when a cell costs an allocation.
// testing.AllocsPerRun counts every goroutine's allocations (the
// channel reader's included) and divides with truncation, so occasional
// allocations (a SENDME every 50 or 100 cells, a slice growing) average
// to 0 while one per cell gives 1. The fake relay is on loopback TCP:
// net.Pipe allocates a timer per write deadline, TCP does not.

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
	"github.com/gotor/gotor/internal/circuit/circtest"
	"github.com/gotor/gotor/internal/stream"
)

// allocStream opens a stream on a one-hop circuit to a TCP fake relay
// whose received cells are released as they come.
func allocStream(t *testing.T) (*circtest.FakeRelay, *stream.Conn) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	f, err := circtest.NewFakeRelayTCP()
	if err != nil {
		t.Fatal(err)
	}
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
	s := open(t, f, c)
	go func() {
		for r := range f.Received {
			r.Cell.Release()
		}
	}()
	return f, s
}

// TestReceivePathAllocs: a full DATA cell from the relay's socket to the
// application's Read (channel reader, relay crypto, circuit and stream
// windows and their SENDMEs, the stream's ring) allocates nothing.
func TestReceivePathAllocs(t *testing.T) {
	f, s := allocStream(t)
	const runs = 2000
	payload := make([]byte, cell.RelayDataMax)
	var cells []byte
	for range runs + 1 { // AllocsPerRun calls once more to warm up
		var err error
		if cells, err = f.AppendRelayCell(cells, cell.RelayMsg{Command: cell.RELAY_DATA, StreamID: s.StreamID(), Data: payload}); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, cell.RelayDataMax)
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if err := f.WriteRaw(cells[i*cell.CellLen : (i+1)*cell.CellLen]); err != nil {
			t.Fatal(err)
		}
		i++
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per DATA cell received, want 0", allocs)
	}
}

// TestSendPathAllocs: a Write costs a few allocations (its deadline
// watcher), none per cell: writing 32 cells at once costs no more than
// writing one (within 2).
func TestSendPathAllocs(t *testing.T) {
	_, s := allocStream(t)
	one := make([]byte, cell.RelayDataMax)
	many := make([]byte, 32*cell.RelayDataMax)
	// 201 + 9*32 = 489 cells: within the stream window, so no SENDME
	// from the relay is needed.
	perOne := testing.AllocsPerRun(200, func() {
		if _, err := s.Write(one); err != nil {
			t.Fatal(err)
		}
	})
	perMany := testing.AllocsPerRun(8, func() {
		if _, err := s.Write(many); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per Write: %v for 1 cell, %v for 32 cells", perOne, perMany)
	// Two of slack for occasional allocations (a slice growing, 8 runs
	// averaged); one allocation per cell would add 32.
	if perMany > perOne+2 {
		t.Fatalf("a 32-cell Write allocates %v times, a 1-cell Write %v: allocations per cell sent", perMany, perOne)
	}
	if perOne > maxWriteAllocs {
		t.Fatalf("%v allocations per Write, want at most %d", perOne, maxWriteAllocs)
	}
}

// maxWriteAllocs bounds the allocations of one Write call.
const maxWriteAllocs = 8
