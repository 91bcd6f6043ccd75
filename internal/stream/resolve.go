// tor-spec §6.4 "Remote hostname lookup": RELAY_RESOLVE / RELAY_RESOLVED,
// forward and reverse (in-addr.arpa / ip6.arpa) lookups.
package stream

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gotor/gotor/internal/cell"
	"github.com/gotor/gotor/internal/circuit"
)

// ResolveError is returned when the exit answers RESOLVED with only
// error entries.
type ResolveError struct {
	Transient bool
}

func (e *ResolveError) Error() string {
	if e.Transient {
		return "stream: resolve failed (transient)"
	}
	return "stream: resolve failed"
}

// Answer is one RESOLVED answer.
type Answer = cell.ResolvedAnswer

func resolve(ctx context.Context, circ *circuit.Circuit, query string) ([]Answer, error) {
	s := newConn(circ, Addr{Host: query}, stResolving)
	id, err := circ.AttachStream(s)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.id = id
	s.mu.Unlock()
	body := append([]byte(query), 0)
	if err := circ.SendRelay(ctx, cell.RelayMsg{Command: cell.RELAY_RESOLVE, StreamID: id, Data: body}); err != nil {
		circ.DetachStream(id)
		return nil, err
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		s.abort(cell.EndMisc, false) // a resolve stream needs no END
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers == nil {
		return nil, s.err
	}
	var out []Answer
	rerr := &ResolveError{}
	for _, a := range s.answers {
		switch a.Type {
		case cell.AddrTypeErrorTransient:
			rerr.Transient = true
		case cell.AddrTypeErrorPermanent:
		default:
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, rerr
	}
	return out, nil
}

// Resolve asks the circuit's exit to resolve hostname (RELAY_RESOLVE).
func Resolve(ctx context.Context, circ *circuit.Circuit, hostname string) ([]netip.Addr, error) {
	ans, err := resolve(ctx, circ, hostname)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range ans {
		if a.Addr.IsValid() {
			out = append(out, a.Addr)
		}
	}
	if len(out) == 0 {
		return nil, &ResolveError{}
	}
	return out, nil
}

// ResolvePTR asks the exit for the hostname of addr (a reverse lookup).
func ResolvePTR(ctx context.Context, circ *circuit.Circuit, addr netip.Addr) ([]string, error) {
	ans, err := resolve(ctx, circ, reverseName(addr))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range ans {
		if a.Type == cell.AddrTypeHostname {
			out = append(out, a.Hostname)
		}
	}
	if len(out) == 0 {
		return nil, &ResolveError{}
	}
	return out, nil
}

func reverseName(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0])
	}
	b := a.As16()
	var sb strings.Builder
	for i := 15; i >= 0; i-- {
		fmt.Fprintf(&sb, "%x.%x.", b[i]&0xf, b[i]>>4)
	}
	sb.WriteString("ip6.arpa")
	return sb.String()
}
