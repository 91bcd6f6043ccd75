package circuit

// Streams attached to a circuit: stream ID allocation (tor-spec §6.2:
// IDs are chosen by the client, 0 is the circuit itself) and the
// handlers that receive each stream's relay messages. Each stream
// belongs to the hop it was opened to (the last hop when it attached):
// only that hop may send its messages (C tor relay_lookup_conn with
// edge_uses_cpath; arti keeps a stream map per hop).

import (
	"errors"

	"github.com/gotor/gotor/internal/cell"
)

// ErrStreamIDsFull is returned when all 65535 stream IDs are in use.
var ErrStreamIDsFull = errors.New("circuit: no free stream IDs")

// StreamHandler receives the relay messages of one stream. Its methods
// run on the channel reader goroutine and must not block. Message data is
// valid only during the call: the cell is recycled afterwards, so a
// handler copies what it keeps.
type StreamHandler interface {
	// HandleRelay handles one message. A non-nil error is a protocol
	// violation (for instance a stream window overrun) and closes the
	// whole circuit, as C tor does.
	HandleRelay(msg cell.RelayMsg) error
	// CircuitClosed is called once if the circuit dies while the
	// stream is attached.
	CircuitClosed(err error)
}

// attached is a stream attached to the circuit.
type attached struct {
	h   StreamHandler
	hop int // the hop the stream is opened to, 0-based
}

// AttachStream allocates a stream ID and registers h for its messages,
// which only the circuit's current last hop may send.
func (c *Circuit) AttachStream(h StreamHandler) (uint16, error) {
	hop := len(c.layers()) - 1
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	for range 65535 {
		c.nextSID++
		id := c.nextSID
		if id == 0 {
			continue
		}
		if _, used := c.streams[id]; used {
			continue
		}
		if _, half := c.half[id]; !half {
			c.streams[id] = attached{h: h, hop: hop}
			return id, nil
		}
	}
	return 0, ErrStreamIDsFull
}

// NumStreams returns the number of attached streams.
func (c *Circuit) NumStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

// DetachStream unregisters stream id.
func (c *Circuit) DetachStream(id uint16) {
	c.mu.Lock()
	delete(c.streams, id)
	c.mu.Unlock()
}
