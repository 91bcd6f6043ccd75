package client

import (
	"fmt"
	"net"
	"time"
)

// Progress is a bootstrap progress report, as C tor logs it:
// "Bootstrapped 45% (requesting_descriptors): Asking for relay descriptors".
type Progress struct {
	Percent int
	Tag     string
	Summary string
}

func (p Progress) String() string {
	return fmt.Sprintf("Bootstrapped %d%% (%s): %s", p.Percent, p.Tag, p.Summary)
}

// CircuitState is a circuit's state as control-spec's CIRC events name it.
type CircuitState string

// Circuit states.
const (
	CircuitLaunched CircuitState = "LAUNCHED" // being built
	CircuitClean    CircuitState = "CLEAN"    // built, no stream yet
	CircuitInUse    CircuitState = "IN_USE"   // carries or carried streams
	CircuitUnusable CircuitState = "UNUSABLE" // takes no new streams
)

// CircuitInfo describes one circuit of the exit pool.
type CircuitInfo struct {
	ID      uint64
	State   CircuitState
	Purpose string
	Streams []uint64 // ids of the streams attached to it
	Path    []Hop    // guard first
}

// Hop is one relay of a circuit: its RSA identity fingerprint (upper-case
// hex), nickname and ORPort address.
type Hop struct{ Fingerprint, Nickname, Addr string }

// StreamInfo describes one open stream.
type StreamInfo struct {
	ID        uint64
	CircuitID uint64
	// Target is "host:port" as the application asked for it.
	Target string
	// Source is the application's address for SOCKS and HTTP streams.
	Source string
	// IsolationTag is 8 hex characters naming the stream's isolation key.
	IsolationTag string
	Opened       time.Time
}

// DirectoryStats counts the client's directory traffic since New: how
// many consensus documents it downloaded and how many bootstraps used the
// cached consensus instead (dir-spec §5).
type DirectoryStats struct {
	ConsensusDownloads   int64 // consensus documents downloaded
	ConsensusFromCache   int64 // bootstraps that used the cached consensus
	CertDownloads        int64 // key-certificate requests that succeeded
	MicrodescRequests    int64 // microdescriptor batch requests that succeeded
	MicrodescsDownloaded int64 // microdescriptors received
}

// Circuits lists the circuits of the exit pool.
func (c *Client) Circuits() []CircuitInfo {
	var out []CircuitInfo
	for _, in := range c.e.Circuits() {
		ci := CircuitInfo{ID: in.ID, State: CircuitState(in.State), Purpose: in.Purpose, Streams: in.Streams}
		for _, h := range in.Path {
			ci.Path = append(ci.Path, Hop(h))
		}
		out = append(out, ci)
	}
	return out
}

// Streams lists the open streams and the circuit each is on.
func (c *Client) Streams() []StreamInfo {
	in := c.e.Streams()
	out := make([]StreamInfo, 0, len(in))
	for _, s := range in {
		out = append(out, StreamInfo(s))
	}
	return out
}

// StreamOf describes a stream that DialContext returned (which circuit
// carries it, its isolation tag).
func (c *Client) StreamOf(conn net.Conn) (StreamInfo, bool) {
	s, ok := c.e.StreamOf(conn)
	return StreamInfo(s), ok
}

// DirectoryStats returns the directory traffic counters.
func (c *Client) DirectoryStats() DirectoryStats {
	return DirectoryStats(c.e.DirectoryStats())
}
