// Package cell implements Tor's link-level cells: fixed-length and
// variable-length cells, their commands and framing.
//
// tor-spec §3 "Cell Packet format", §4 "Negotiating and initializing
// connections" (VERSIONS framing).
package cell

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Command is a cell command (tor-spec §3).
type Command uint8

// Cell commands, as named by tor-spec §3.
const (
	PADDING           Command = 0
	CREATE            Command = 1
	CREATED           Command = 2
	RELAY             Command = 3
	DESTROY           Command = 4
	CREATE_FAST       Command = 5
	CREATED_FAST      Command = 6
	VERSIONS          Command = 7
	NETINFO           Command = 8
	RELAY_EARLY       Command = 9
	CREATE2           Command = 10
	CREATED2          Command = 11
	PADDING_NEGOTIATE Command = 12
	VPADDING          Command = 128
	CERTS             Command = 129
	AUTH_CHALLENGE    Command = 130
	AUTHENTICATE      Command = 131
	AUTHORIZE         Command = 132
)

var commandNames = map[Command]string{
	PADDING: "PADDING", CREATE: "CREATE", CREATED: "CREATED", RELAY: "RELAY",
	DESTROY: "DESTROY", CREATE_FAST: "CREATE_FAST", CREATED_FAST: "CREATED_FAST",
	VERSIONS: "VERSIONS", NETINFO: "NETINFO", RELAY_EARLY: "RELAY_EARLY",
	CREATE2: "CREATE2", CREATED2: "CREATED2", PADDING_NEGOTIATE: "PADDING_NEGOTIATE",
	VPADDING: "VPADDING", CERTS: "CERTS", AUTH_CHALLENGE: "AUTH_CHALLENGE",
	AUTHENTICATE: "AUTHENTICATE", AUTHORIZE: "AUTHORIZE",
}

func (c Command) String() string {
	if s, ok := commandNames[c]; ok {
		return s
	}
	return fmt.Sprintf("Command(%d)", uint8(c))
}

// IsVariable reports whether cells with this command are variable-length
// (tor-spec §3: VERSIONS and all commands >= 128).
func (c Command) IsVariable() bool { return c == VERSIONS || c >= 128 }

// Sizes (tor-spec §0.2, §3).
const (
	PayloadLen = 509 // CELL_PAYLOAD_LEN
	// CellLen is the length of a fixed-length cell with 4-byte circuit
	// IDs (link protocol >= 4).
	CellLen = 4 + 1 + PayloadLen
	// MaxVarPayload bounds what we accept in a variable-length cell.
	MaxVarPayload = 65535
)

// Cell is one link cell. For fixed-length commands Payload is exactly
// PayloadLen bytes when decoded; when encoding, a shorter payload is
// zero-padded.
type Cell struct {
	CircID  uint32
	Command Command
	Payload []byte

	// buf is the payload storage of a pooled fixed-length cell (see
	// Read and Release); nil for other cells.
	buf *[PayloadLen]byte
}

// fixedPool recycles fixed-length cells read by Read: on the data path
// nearly every cell is one, and allocating each (a Cell and its 509-byte
// payload) used to make most of the garbage of a download.
var fixedPool = sync.Pool{New: func() any {
	c := &Cell{buf: new([PayloadLen]byte)}
	c.Payload = c.buf[:]
	return c
}}

// Release returns a cell obtained from Read to the pool once its owner
// no longer uses it or any slice of its payload. It does nothing for
// cells that are not pooled (variable-length cells, cells built by
// callers). A cell must not be released twice.
func (c *Cell) Release() {
	if c == nil || c.buf == nil {
		return
	}
	c.Payload = c.buf[:]
	fixedPool.Put(c)
}

// Errors.
var (
	ErrTruncated   = errors.New("cell: truncated")
	ErrPayloadSize = errors.New("cell: payload too large")
)

// Append appends the encoding of c to dst, with circuit IDs of idLen
// bytes (2 or 4).
func (c *Cell) Append(dst []byte, idLen int) ([]byte, error) {
	if idLen == 2 {
		if c.CircID > 0xffff {
			return dst, fmt.Errorf("cell: circuit id %#x does not fit 2 bytes", c.CircID)
		}
		dst = append(dst, byte(c.CircID>>8), byte(c.CircID))
	} else {
		dst = append(dst, byte(c.CircID>>24), byte(c.CircID>>16), byte(c.CircID>>8), byte(c.CircID))
	}
	dst = append(dst, byte(c.Command))
	if c.Command.IsVariable() {
		if len(c.Payload) > MaxVarPayload {
			return dst, ErrPayloadSize
		}
		dst = append(dst, byte(len(c.Payload)>>8), byte(len(c.Payload)))
		return append(dst, c.Payload...), nil
	}
	if len(c.Payload) > PayloadLen {
		return dst, ErrPayloadSize
	}
	dst = append(dst, c.Payload...)
	for i := len(c.Payload); i < PayloadLen; i++ {
		dst = append(dst, 0)
	}
	return dst, nil
}

// Encode returns the encoding of c.
func (c *Cell) Encode(idLen int) ([]byte, error) {
	return c.Append(make([]byte, 0, idLen+1+PayloadLen), idLen)
}

// Decode parses one cell at the start of b, returning the cell and the
// number of bytes consumed. It returns ErrTruncated if b does not yet
// hold a whole cell. The payload aliases b.
func Decode(b []byte, idLen int) (*Cell, int, error) {
	if idLen != 2 && idLen != 4 {
		return nil, 0, fmt.Errorf("cell: bad circuit id length %d", idLen)
	}
	if len(b) < idLen+1 {
		return nil, 0, ErrTruncated
	}
	c := &Cell{}
	if idLen == 2 {
		c.CircID = uint32(b[0])<<8 | uint32(b[1])
	} else {
		c.CircID = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	c.Command = Command(b[idLen])
	n := idLen + 1
	if c.Command.IsVariable() {
		if len(b) < n+2 {
			return nil, 0, ErrTruncated
		}
		l := int(b[n])<<8 | int(b[n+1])
		n += 2
		if len(b) < n+l {
			return nil, 0, ErrTruncated
		}
		c.Payload = b[n : n+l : n+l]
		return c, n + l, nil
	}
	if len(b) < n+PayloadLen {
		return nil, 0, ErrTruncated
	}
	c.Payload = b[n : n+PayloadLen : n+PayloadLen]
	return c, n + PayloadLen, nil
}

// Read reads one cell from r. The payload is the cell's own: it is not
// shared with r's buffers. Fixed-length cells come from a pool; their
// owner may hand them back with Release when done (not doing so is safe,
// the cell is then garbage collected).
func Read(r io.Reader, idLen int) (*Cell, error) {
	var hdr [7]byte
	if err := readFull(r, hdr[:idLen+1]); err != nil {
		return nil, err
	}
	h := hdr[:]
	var circID uint32
	if idLen == 2 {
		circID = uint32(h[0])<<8 | uint32(h[1])
	} else {
		circID = uint32(h[0])<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
	}
	cmd := Command(h[idLen])
	var c *Cell
	if cmd.IsVariable() {
		var lb [2]byte
		if err := readFull(r, lb[:]); err != nil {
			return nil, unexpected(err)
		}
		c = &Cell{Payload: make([]byte, int(lb[0])<<8|int(lb[1]))}
	} else {
		c = fixedPool.Get().(*Cell)
	}
	c.CircID, c.Command = circID, cmd
	if _, err := io.ReadFull(r, c.Payload); err != nil {
		c.Release()
		return nil, unexpected(err)
	}
	return c, nil
}

// readFull is io.ReadFull into a small buffer without making it escape
// when r is a *bufio.Reader (the channel's), so reading a cell header
// allocates nothing.
func readFull(r io.Reader, dst []byte) error {
	if br, ok := r.(*bufio.Reader); ok {
		b, err := br.Peek(len(dst))
		copy(dst, b)
		br.Discard(len(b))
		if err != nil && len(b) > 0 {
			return unexpected(err)
		}
		return err
	}
	tmp := make([]byte, len(dst))
	_, err := io.ReadFull(r, tmp)
	copy(dst, tmp)
	return err
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
