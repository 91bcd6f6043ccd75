package testnet

// Link delay in userspace. These machines have no kernel netem, so a
// network with Options.Latency puts a small TCP proxy in front of every
// ORPort: the node advertises port P (ORPort ADDR:P NoListen) and listens
// at Q (ORPort ADDR:Q NoAdvertise); the proxy accepts on P and forwards to
// Q. Each direction of each connection holds every chunk it reads for the
// one-way delay before writing it on, in order; an optional rate
// serialises chunks at that many bytes per second first (as a link of
// that bandwidth would). Reading stops while a direction holds its queue
// limit of bytes, so a slow receiver pushes back to the sender through
// TCP, as on a real link. Every relay-to-relay and client-to-guard link
// then carries the delay; DirPorts stay direct.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// delayQueueLimit bounds the bytes one direction of a proxied connection
// holds when no rate is set: 8 MiB per 40 ms is 200 MiB/s, far above what
// a circuit on these machines carries, so the limit never binds before
// the endpoints' own flow control does.
const delayQueueLimit = 8 << 20

// delayProxy accepts connections on one address and forwards each to a
// target, delaying both directions.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	rate   int64        // bytes per second per direction, 0 = unlimited
	limit  int          // queue limit per direction, bytes
	hw     atomic.Int64 // most bytes any one direction has held

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*delayConn]struct{}
	closed bool
}

// startDelayProxy listens on listen (host:port, port 0 for any) and
// forwards every connection to target with delay each way and, when rate
// > 0, at most rate bytes per second each way.
func startDelayProxy(listen, target string, delay time.Duration, rate int64) (*delayProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, delay: delay, rate: rate, limit: delayQueueLimit,
		conns: map[*delayConn]struct{}{}}
	if rate > 0 {
		// A link of this rate holds rate*delay bytes in flight; allow that
		// plus 256 KiB of buffer.
		p.limit = min(int(rate*int64(delay)/int64(time.Second))+256<<10, delayQueueLimit)
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address the proxy accepts on.
func (p *delayProxy) Addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

// highWater is the most bytes one direction of one connection has held.
func (p *delayProxy) highWater() int { return int(p.hw.Load()) }

// Close stops accepting, closes every proxied connection and waits for
// the proxy's goroutines.
func (p *delayProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := make([]*delayConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range conns {
		c.abort()
	}
	p.wg.Wait()
	return err
}

func (p *delayProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		p.wg.Add(1)
		go p.serve(in)
	}
}

// serve dials the target for one accepted connection and runs both
// directions until both have ended.
func (p *delayProxy) serve(in net.Conn) {
	defer p.wg.Done()
	// Dial from the client's own address, so the node sees the peer
	// address it would without the proxy (distinct 127.N.0.1 addresses).
	d := net.Dialer{Timeout: 5 * time.Second}
	if ra, ok := in.RemoteAddr().(*net.TCPAddr); ok {
		d.LocalAddr = &net.TCPAddr{IP: ra.IP}
	}
	out, err := d.Dial("tcp", p.target)
	if err != nil {
		d.LocalAddr = nil
		if out, err = d.Dial("tcp", p.target); err != nil {
			in.Close()
			return
		}
	}
	c := &delayConn{in: in.(*net.TCPConn), out: out.(*net.TCPConn), done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(c, c.in, c.out) }()
	go func() { defer wg.Done(); p.pipe(c, c.out, c.in) }()
	wg.Wait()
	c.abort()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// delayConn is one proxied connection: in was accepted, out dialed.
type delayConn struct {
	in, out  *net.TCPConn
	done     chan struct{} // closed by abort
	doneOnce sync.Once
}

// abort closes both sides at once (an error, or the proxy closing).
func (c *delayConn) abort() {
	c.doneOnce.Do(func() {
		close(c.done)
		c.in.Close()
		c.out.Close()
	})
}

// delayChunk is what one read returned, due for writing at due.
type delayChunk struct {
	b   []byte
	due time.Time
}

// delayQueue is one direction's chunks in order. The reader appends,
// waiting on space while the queue holds limit bytes; the writer takes
// the oldest, waiting on data while the queue is empty.
type delayQueue struct {
	mu     sync.Mutex
	chunks []delayChunk
	bytes  int
	eof    bool // the source ended (cleanly or not): no more chunks
	clean  bool // ... with EOF, so the writer half-closes
	space  chan struct{}
	data   chan struct{}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// pipe copies src to dst through a delay queue: this goroutine writes,
// a second one reads.
func (p *delayProxy) pipe(c *delayConn, src, dst *net.TCPConn) {
	q := &delayQueue{space: make(chan struct{}, 1), data: make(chan struct{}, 1)}
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); p.readInto(c, src, q) }()
	// Every return below either saw the reader end or aborted the
	// connection, which ends it.
	defer func() { <-readerDone }()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		for len(q.chunks) == 0 && !q.eof {
			q.mu.Unlock()
			select {
			case <-q.data:
			case <-c.done:
				return
			}
			q.mu.Lock()
		}
		if len(q.chunks) == 0 { // eof and drained
			clean := q.clean
			q.mu.Unlock()
			if clean {
				dst.CloseWrite()
			} else {
				c.abort()
			}
			return
		}
		ch := q.chunks[0]
		q.mu.Unlock()

		if wait := time.Until(ch.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-c.done:
				return
			}
		}
		if _, err := dst.Write(ch.b); err != nil {
			c.abort()
			return
		}
		q.mu.Lock()
		q.chunks[0] = delayChunk{}
		q.chunks = q.chunks[1:]
		q.bytes -= len(ch.b)
		q.mu.Unlock()
		notify(q.space)
	}
}

// readInto reads src into q, stamping each chunk with its due time.
func (p *delayProxy) readInto(c *delayConn, src *net.TCPConn, q *delayQueue) {
	buf := make([]byte, 64<<10)
	var txEnd time.Time // when the rate-limited link finishes the last chunk
	for {
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			due := now
			if p.rate > 0 {
				if txEnd.After(now) {
					due = txEnd
				}
				due = due.Add(time.Duration(int64(n) * int64(time.Second) / p.rate))
				txEnd = due
			}
			ch := delayChunk{b: append([]byte(nil), buf[:n]...), due: due.Add(p.delay)}
			q.mu.Lock()
			for q.bytes > 0 && q.bytes+n > p.limit {
				q.mu.Unlock()
				select {
				case <-q.space:
				case <-c.done:
					return
				}
				q.mu.Lock()
			}
			q.chunks = append(q.chunks, ch)
			q.bytes += n
			held := int64(q.bytes)
			q.mu.Unlock()
			for hw := p.hw.Load(); held > hw && !p.hw.CompareAndSwap(hw, held); hw = p.hw.Load() {
			}
			notify(q.data)
		}
		if err != nil {
			q.mu.Lock()
			q.eof = true
			q.clean = errors.Is(err, io.EOF)
			q.mu.Unlock()
			notify(q.data)
			return
		}
	}
}

// addDelayProxy puts nd's ORPort behind a delay proxy: the proxy takes
// the advertised port nd.ORPort (freshly chosen, so it listens at once),
// tor listens at a new nd.ListenORPort.
func (n *Network) addDelayProxy(nd *node) error {
	q, err := freePort(nd.Address, false)
	if err != nil {
		return err
	}
	p, err := startDelayProxy(net.JoinHostPort(nd.Address, strconv.Itoa(nd.ORPort)),
		net.JoinHostPort(nd.Address, strconv.Itoa(q)), n.opts.Latency, n.opts.LinkRate)
	if err != nil {
		return bindError{fmt.Errorf("testnet: delay proxy for %s: %w", nd.Nickname, err)}
	}
	nd.ListenORPort = q
	n.mu.Lock()
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	return nil
}
