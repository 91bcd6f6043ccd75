package circmgr

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/isolation"
)

// The property tests drive thousands of random streams through the pool
// (fake circuits) and check the isolation invariant on every circuit:
// a stream attached to a circuit agrees, on every field its own flags
// isolate, with every stream attached before it (C tor's rule: the new
// stream's listener flags decide). For streams of one listener — the
// same flags — that is exactly "no two streams with incompatible keys
// share a circuit". And a stream whose key equals that of an earlier
// stream on a still usable circuit is a hit (no new circuit).

type listenerCfg struct {
	flags isolation.Flags
	group int
	proto isolation.Protocol
}

var fieldChoices = []isolation.Flags{
	isolation.IsolateDestPort, isolation.IsolateDestAddr, isolation.IsolateSOCKSAuth,
	isolation.IsolateClientProtocol, isolation.IsolateClientAddr, isolation.IsolateClientPort,
}

func randomListeners(r *rand.Rand) []listenerCfg {
	ls := make([]listenerCfg, 5)
	protos := []isolation.Protocol{isolation.ProtoSOCKS4, isolation.ProtoSOCKS4a, isolation.ProtoSOCKS5, isolation.ProtoHTTPConnect, isolation.ProtoAPI}
	for i := range ls {
		var f isolation.Flags
		for _, c := range fieldChoices {
			if r.IntN(2) == 0 {
				f |= c
			}
		}
		if f&isolation.IsolateSOCKSAuth != 0 && r.IntN(3) == 0 {
			f |= isolation.KeepAliveIsolateSOCKSAuth
		}
		ls[i] = listenerCfg{flags: f, group: isolation.SessionGroupUnset, proto: protos[r.IntN(len(protos))]}
	}
	// Listeners 0 and 1 share an explicit session group, so streams
	// with different flags meet on one circuit (C tor allows it).
	ls[0].group, ls[1].group = 7, 7
	return ls
}

var (
	users   = [][2]string{{"", ""}, {"alice", "pw"}, {"alice", "pw2"}, {"bob", "pw"}, {"ab", "c"}, {"a", "bc"}, {"<torS0X>0", "tab1"}, {"<torS0X>0", "tab2"}, {"carol", ""}}
	dests   = []string{"example.com", "EXAMPLE.com", "example.org", "10.0.0.1", "[::1]", "onion.example"}
	dports  = []uint16{80, 443, 22, 6667}
	clients = []string{"127.0.0.1", "127.0.0.2", "::1"}
	cports  = []uint16{40000, 40001, 40002, 50000}
)

type streamRec struct {
	key  isolation.Key
	circ uint64
}

type seenStream struct {
	info  isolation.StreamInfo
	flags isolation.Flags
}

func randomStream(r *rand.Rand, ls []listenerCfg, tokens []isolation.Token, epoch uint64) (isolation.Key, Usage, seenStream) {
	li := r.IntN(len(ls))
	l := ls[li]
	u := users[r.IntN(len(users))]
	info := isolation.StreamInfo{
		DestAddr:     dests[r.IntN(len(dests))],
		DestPort:     dports[r.IntN(len(dports))],
		ClientAddr:   netip.AddrPortFrom(netip.MustParseAddr(clients[r.IntN(len(clients))]), cports[r.IntN(len(cports))]),
		Listener:     uint32(li),
		SessionGroup: l.group,
		Protocol:     l.proto,
		Token:        tokens[r.IntN(len(tokens))],
		Epoch:        epoch,
	}
	if l.proto == isolation.ProtoSOCKS5 && r.IntN(2) == 0 {
		info.Protocol = isolation.ProtoHTTPConnect // mix protocols within a group
	}
	if u[0] != "" {
		info.Username = []byte(u[0])
	}
	if u[1] != "" {
		info.Password = []byte(u[1])
	}
	return isolation.NewKey(info, l.flags), Usage{Port: info.DestPort}, seenStream{info, l.flags}
}

// oracle is the test's own model of a stream's isolation fields,
// computed from the raw StreamInfo without the isolation package, so a
// bug in Key/Diff/Binding cannot hide itself.
type oracle struct {
	flags      isolation.Flags
	destPort   uint16
	dest       string // lower-cased
	auth       string
	proto      isolation.Protocol
	clientAddr netip.Addr
	clientPort uint16
	group      string
	epoch      uint64
	token      isolation.Token
}

func oracleOf(x seenStream) oracle {
	i := x.info
	o := oracle{
		flags:      x.flags,
		destPort:   i.DestPort,
		dest:       strings.ToLower(i.DestAddr),
		proto:      i.Protocol,
		clientAddr: i.ClientAddr.Addr().Unmap(),
		clientPort: i.ClientAddr.Port(),
		epoch:      i.Epoch,
		token:      i.Token,
	}
	if o.proto == isolation.ProtoSOCKS4a {
		o.proto = isolation.ProtoSOCKS4 // C tor: both are SOCKS version 4
	}
	u, p := string(i.Username), string(i.Password)
	switch {
	case strings.HasPrefix(u, "<torS0X>") && len(u) == 9:
		o.auth = "ext" + u[8:] + "\x00" + p
	case u == "" && p == "":
		o.auth = "none"
	default:
		o.auth = fmt.Sprintf("legacy %q %q", u, p)
	}
	if i.SessionGroup >= 0 {
		o.group = fmt.Sprint("group ", i.SessionGroup)
	} else {
		o.group = fmt.Sprint("listener ", i.Listener)
	}
	return o
}

func oracleDiff(a, b oracle) isolation.Flags {
	var d isolation.Flags
	set := func(c bool, f isolation.Flags) {
		if c {
			d |= f
		}
	}
	set(a.destPort != b.destPort, isolation.IsolateDestPort)
	set(a.dest != b.dest, isolation.IsolateDestAddr)
	set(a.auth != b.auth, isolation.IsolateSOCKSAuth)
	set(a.proto != b.proto, isolation.IsolateClientProtocol)
	set(a.clientAddr != b.clientAddr, isolation.IsolateClientAddr)
	set(a.clientPort != b.clientPort, isolation.IsolateClientPort)
	set(a.group != b.group, isolation.IsolateSessionGroup)
	set(a.epoch != b.epoch, isolation.IsolateNymEpoch)
	set(a.token != b.token, isolation.IsolateSessionToken)
	return d
}

// isolates is what a stream's listener flags isolate on: its flags plus
// the fields that are always isolated.
func isolates(o oracle) isolation.Flags { return o.flags | isolation.Always }

// checkInvariant verifies, per circuit (streams in attach order), that
// each stream agrees with every earlier one on each field its own
// flags isolate (C tor's rule), which for streams with equal flags means
// pairwise compatibility.
func checkInvariant(t *testing.T, perCirc map[uint64][]oracle) {
	t.Helper()
	pairs := 0
	for id, ss := range perCirc {
		for j := 1; j < len(ss); j++ {
			for i := 0; i < j; i++ {
				pairs++
				if d := oracleDiff(ss[i], ss[j]) & isolates(ss[j]); d != 0 {
					t.Fatalf("circuit %d: stream %d %+v joined stream %d %+v though they differ on %v", id, j, ss[j], i, ss[i], d)
				}
			}
		}
	}
	if pairs == 0 {
		t.Fatal("no circuit carried two streams: test too weak")
	}
}

func TestPropertyIsolationSequential(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { propertySequential(t, seed, 2500) })
	}
}

func propertySequential(t *testing.T, seed uint64, n int) {
	r := rand.New(rand.NewPCG(seed, seed*7919))
	br := rand.New(rand.NewPCG(seed, 1)) // the builder's, used in build goroutines
	b := &fakeBuilder{ports: func(u Usage) []uint16 {
		// Random exit policies that always allow the requested port.
		ps := []uint16{u.Port}
		for _, p := range dports {
			if br.IntN(2) == 0 {
				ps = append(ps, p)
			}
		}
		return ps
	}}
	// The builder runs in build goroutines; guard r.
	var rmu sync.Mutex
	inner := b.ports
	b.ports = func(u Usage) []uint16 { rmu.Lock(); defer rmu.Unlock(); return inner(u) }

	m, clk := testManager(t, b, Config{
		EnableCircuitPrebuilding: seed%2 == 0,
		MaxCircuits:              100000,
		MaxCircuitDirtiness:      10 * time.Minute,
	})
	ls := randomListeners(r)
	tokens := []isolation.Token{0, 0, 0, isolation.NewToken(), isolation.NewToken()}

	perCirc := make(map[uint64][]oracle)
	lastCirc := make(map[oracle]uint64)
	var open []*Attachment[*fakeCirc]
	hits, expectedHits := 0, 0
	var seen []seenStream

	for i := 0; i < n; i++ {
		op := r.IntN(100)
		switch {
		case op < 2:
			m.NewIdentity()
			continue
		case op < 5:
			clk.Advance(time.Duration(r.IntN(120)) * time.Second)
			m.maintain()
			continue
		case op < 7 && len(open) > 0:
			// A relay destroys a circuit.
			a := open[r.IntN(len(open))]
			a.Circuit.Close()
			waitFor(t, "destroyed circuit forgotten", func() bool {
				m.mu.Lock()
				defer m.mu.Unlock()
				_, ok := m.circs[a.CircID]
				return !ok
			})
			continue
		case op < 20 && len(open) > 0:
			j := r.IntN(len(open))
			open[j].Release()
			open = append(open[:j], open[j+1:]...)
			continue
		}
		var k isolation.Key
		var u Usage
		var x seenStream
		if len(seen) > 0 && r.IntN(3) == 0 {
			// Repeat an earlier stream's parameters (same key unless
			// a NEWNYM happened since).
			x = seen[r.IntN(len(seen))]
			x.info.Epoch = m.Epoch()
			k, u = isolation.NewKey(x.info, x.flags), Usage{Port: x.info.DestPort}
		} else {
			k, u, x = randomStream(r, ls, tokens, m.Epoch())
			seen = append(seen, x)
		}
		o := oracleOf(x)

		// Would the circuit of an earlier stream with equal fields and
		// flags serve? (Alive, not too dirty, and, by the oracle, not
		// mixed on a field this stream isolates.)
		expect := false
		if id, ok := lastCirc[o]; ok {
			var mixed isolation.Flags
			for _, e := range perCirc[id] {
				mixed |= oracleDiff(perCirc[id][0], e)
			}
			for _, in := range m.Circuits() {
				if in.ID == id && in.State == "IN_USE" && clk.Now().Sub(in.DirtySince) < 10*time.Minute && mixed&isolates(o) == 0 {
					expect = true
				}
			}
		}
		a, err := m.Attach(ctx, u, k)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Circuit.AllowsPort(u.Port) {
			t.Fatal("circuit does not allow the stream's port")
		}
		if expect {
			expectedHits++
			if !a.Reused {
				t.Fatalf("stream %d: key %v had a usable circuit %d but got a new one (%d)", i, k, lastCirc[o], a.CircID)
			}
		}
		if a.Reused {
			hits++
		}
		perCirc[a.CircID] = append(perCirc[a.CircID], o)
		lastCirc[o] = a.CircID
		open = append(open, a)
	}
	checkInvariant(t, perCirc)
	checkIndex(t, m)
	if expectedHits == 0 || hits == 0 {
		t.Fatalf("test too weak: %d expected hits, %d hits", expectedHits, hits)
	}
	t.Logf("streams→%d circuits, %d hits (%d required), metrics %+v", len(perCirc), hits, expectedHits, m.Metrics())
}

// TestPropertyIsolationConcurrent runs streams from many goroutines
// (with -race) with slow builds, so streams share pending builds, and
// checks the same invariant.
func TestPropertyIsolationConcurrent(t *testing.T) {
	b := &fakeBuilder{}
	slow := &slowBuilder{inner: b, d: 200 * time.Microsecond}
	clk := newClock()
	m := New[*fakeCirc](slow, Config{Now: clk.Now, MaxCircuits: 100000, EnableCircuitPrebuilding: true, MaintenanceInterval: time.Millisecond})
	defer m.Close()
	r := rand.New(rand.NewPCG(42, 43))
	ls := randomListeners(r)
	tokens := []isolation.Token{0, isolation.NewToken(), isolation.NewToken()}

	type sk struct {
		id uint64
		o  oracle
	}
	var mu sync.Mutex
	perCirc := make(map[uint64][]sk)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 99))
			for i := 0; i < 300; i++ {
				if r.IntN(200) == 0 {
					m.NewIdentity()
				}
				if r.IntN(50) == 0 {
					clk.Advance(time.Minute)
				}
				k, u, x := randomStream(r, ls, tokens, m.Epoch())
				a, err := m.Attach(ctx, u, k)
				if err != nil {
					t.Error(err)
					return
				}
				// Stream IDs are handed out in attach order.
				mu.Lock()
				perCirc[a.CircID] = append(perCirc[a.CircID], sk{a.StreamID, oracleOf(x)})
				mu.Unlock()
				if r.IntN(2) == 0 {
					a.Release()
				}
			}
		}()
	}
	wg.Wait()
	ordered := make(map[uint64][]oracle)
	for id, l := range perCirc {
		slices.SortFunc(l, func(a, b sk) int { return cmp.Compare(a.id, b.id) })
		for _, x := range l {
			ordered[id] = append(ordered[id], x.o)
		}
	}
	checkInvariant(t, ordered)
	checkIndex(t, m)
	t.Logf("%d circuits, metrics %+v", len(perCirc), m.Metrics())
}

type slowBuilder struct {
	inner *fakeBuilder
	d     time.Duration
}

func (s *slowBuilder) Build(c context.Context, u Usage) (*fakeCirc, error) {
	time.Sleep(s.d)
	return s.inner.Build(c, u)
}
