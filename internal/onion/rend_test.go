package onion

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

// fakeClock is a settable Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func rendClient(s *fakeService, clk *fakeClock, max int) *Client {
	return New(Config{Builder: s, NetDir: func() *netdir.NetDir { return s.dir },
		IntroTimeout: 2 * time.Second, RendezvousTimeout: 2 * time.Second,
		Now: clk.Now, MaxDirtiness: time.Hour, MaxRendCircuits: max})
}

func dialClose(t *testing.T, c *Client, host, iso string) {
	t.Helper()
	conn, err := c.DialIsolated(context.Background(), host, 80, iso)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

// A rendezvous circuit takes new streams until MaxDirtiness after its
// first stream, then a new one is built; the old one closes once its
// streams have (issue 17 item 5).
func TestRendezvousDirtiness(t *testing.T) {
	s := newFakeService(t, nil)
	clk := &fakeClock{now: time.Now()}
	c := rendClient(s, clk, 8)
	host := s.addr.String()
	held, err := c.DialIsolated(context.Background(), host, 80, "k")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(59 * time.Minute)
	dialClose(t, c, host, "k")
	if s.builds[PurposeRend] != 1 {
		t.Fatalf("fresh circuit not reused: %v", s.builds)
	}
	var first Circ
	c.mu.Lock()
	for _, e := range c.rend {
		first = e.circ
	}
	c.mu.Unlock()
	clk.add(2 * time.Minute)
	dialClose(t, c, host, "k")
	if s.builds[PurposeRend] != 2 {
		t.Fatalf("dirty circuit reused: %v", s.builds)
	}
	if !alive(first) {
		t.Fatal("the dirty circuit closed while a stream was still open on it")
	}
	held.Close()
	if alive(first) {
		t.Fatal("the dirty circuit stayed open after its last stream closed")
	}
}

// No more than MaxRendCircuits take streams: the oldest is retired.
func TestRendezvousBound(t *testing.T) {
	s := newFakeService(t, nil)
	clk := &fakeClock{now: time.Now()}
	c := rendClient(s, clk, 3)
	for i := 0; i < 10; i++ {
		dialClose(t, c, s.addr.String(), fmt.Sprint(i))
		clk.add(time.Second)
	}
	if n := c.RendCircuits(); n != 3 {
		t.Fatalf("%d rendezvous circuits kept, want 3", n)
	}
	if s.builds[PurposeRend] != 10 {
		t.Fatalf("builds %v", s.builds)
	}
}

// Purge (NEWNYM) empties the descriptor cache and retires every
// rendezvous circuit (issue 17 item 7).
func TestRendezvousPurge(t *testing.T) {
	s := newFakeService(t, nil)
	clk := &fakeClock{now: time.Now()}
	c := rendClient(s, clk, 8)
	dialClose(t, c, s.addr.String(), "k")
	c.Purge()
	if n := c.RendCircuits(); n != 0 {
		t.Fatalf("%d rendezvous circuits after Purge", n)
	}
	dialClose(t, c, s.addr.String(), "k")
	if s.builds[PurposeRend] != 2 || s.builds[PurposeHSDir] != 2 {
		t.Fatalf("after Purge the circuit or the descriptor was reused: %v", s.builds)
	}
}
