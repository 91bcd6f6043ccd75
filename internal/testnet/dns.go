package testnet

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
)

// DNSServer is a tiny UDP DNS responder for test-only names. The exits of a
// test network use it as their only nameserver (ServerDNSResolvConfFile), so
// a test can make an exit resolve a name it controls and then check that the
// exit really asked.
//
// It answers A queries for configured names, gives an empty NOERROR answer
// for other query types of configured names, and NXDOMAIN for everything
// else. Names are compared case-insensitively (C tor randomizes the case of
// its queries) and without a trailing dot.
type DNSServer struct {
	conn *net.UDPConn

	mu      sync.Mutex
	names   map[string]netip.Addr
	queries map[string]int
	done    chan struct{}
}

// DefaultTestName is the name every network's DNS responder resolves to
// 127.0.0.1 from the start.
const DefaultTestName = "gotor-test.example"

// StartDNSServer listens on addr ("127.0.0.1:0" picks a free port) and serves
// until Close.
func StartDNSServer(addr string) (*DNSServer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	if !ua.IP.IsLoopback() {
		return nil, errors.New("testnet: DNS responder must listen on a loopback address")
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	s := &DNSServer{
		conn:    c,
		names:   map[string]netip.Addr{},
		queries: map[string]int{},
		done:    make(chan struct{}),
	}
	go s.serve()
	return s, nil
}

// Addr is the address the responder listens on, e.g. 127.0.0.1:40053.
func (s *DNSServer) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// AddName makes name resolve to ip (an IPv4 address such as "127.0.0.1").
func (s *DNSServer) AddName(name, ip string) error {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return err
	}
	if !a.Is4() {
		return errors.New("testnet: DNS responder serves IPv4 (A) answers only")
	}
	s.mu.Lock()
	s.names[canonName(name)] = a
	s.mu.Unlock()
	return nil
}

// Queries reports how many queries (of any type) the responder has seen for
// name.
func (s *DNSServer) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonName(name)]
}

// Close stops the responder.
func (s *DNSServer) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

func canonName(n string) string {
	return strings.TrimSuffix(strings.ToLower(n), ".")
}

func (s *DNSServer) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp := s.answer(buf[:n]); resp != nil {
			_, _ = s.conn.WriteToUDPAddrPort(resp, from)
		}
	}
}

const (
	dnsTypeA     = 1
	dnsClassIN   = 1
	rcodeOK      = 0
	rcodeFormErr = 1
	rcodeNX      = 3
)

// answer builds the response to one query message, or nil to drop it.
func (s *DNSServer) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	if q[2]&0x80 != 0 { // a response, not a query
		return nil
	}
	qd := binary.BigEndian.Uint16(q[4:6])
	hdr := func(rcode byte, qdcount, ancount uint16) []byte {
		h := make([]byte, 12)
		copy(h[0:2], q[0:2])        // ID
		h[2] = 0x80 | (q[2] & 0x79) // QR, keep opcode and RD
		h[2] |= 0x04                // AA
		h[3] = 0x80 | rcode         // RA
		binary.BigEndian.PutUint16(h[4:6], qdcount)
		binary.BigEndian.PutUint16(h[6:8], ancount)
		return h
	}
	if qd != 1 || q[2]&0x78 != 0 { // only standard queries with one question
		return hdr(rcodeFormErr, 0, 0)
	}
	name, end, ok := parseQName(q, 12)
	if !ok || end+4 > len(q) {
		return hdr(rcodeFormErr, 0, 0)
	}
	qtype := binary.BigEndian.Uint16(q[end : end+2])
	qclass := binary.BigEndian.Uint16(q[end+2 : end+4])
	question := q[12 : end+4]

	key := canonName(name)
	s.mu.Lock()
	s.queries[key]++
	addr, known := s.names[key]
	s.mu.Unlock()

	if !known {
		return append(hdr(rcodeNX, 1, 0), question...)
	}
	if qtype != dnsTypeA || qclass != dnsClassIN {
		return append(hdr(rcodeOK, 1, 0), question...)
	}
	resp := append(hdr(rcodeOK, 1, 1), question...)
	resp = append(resp, 0xc0, 12) // pointer to the question name
	resp = binary.BigEndian.AppendUint16(resp, dnsTypeA)
	resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
	resp = binary.BigEndian.AppendUint32(resp, 60) // TTL
	resp = binary.BigEndian.AppendUint16(resp, 4)
	a4 := addr.As4()
	return append(resp, a4[:]...)
}

// parseQName reads an uncompressed name starting at off and returns it
// dotted, and the offset just after it.
func parseQName(m []byte, off int) (string, int, bool) {
	var labels []string
	for {
		if off >= len(m) {
			return "", 0, false
		}
		l := int(m[off])
		off++
		if l == 0 {
			break
		}
		if l&0xc0 != 0 || off+l > len(m) {
			return "", 0, false
		}
		labels = append(labels, string(m[off:off+l]))
		off += l
		if len(labels) > 127 {
			return "", 0, false
		}
	}
	return strings.Join(labels, "."), off, true
}
