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
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/isolation"
	"github.com/gotor/gotor/internal/socks"
)

// The property tests drive thousands of random streams through the pool
// (fake circuits) and check two directions against the test's own
// model, never against what the manager reports about itself:
//
//   - isolation: a stream attached to a circuit agrees, on every field its
//     own flags isolate, with every stream attached before it (C tor's
//     rule: the new stream's listener flags decide). For streams of one
//     listener — the same flags — that is exactly "no two streams with
//     incompatible keys share a circuit".
//   - sharing: a stream whose fields all equal those of an earlier stream
//     goes to an existing circuit while that stream's circuit is fresh by
//     the model: not destroyed, dirty for less than MaxCircuitDirtiness
//     by the test's own clock since its first stream (or since a
//     KeepAliveIsolateSOCKSAuth stream with credentials refreshed it), no
//     NEWNYM since, and not mixed on a field the stream isolates.
//
// Keys are made by the code SOCKS and the Go API use: a socks.Request's
// StreamInfo or isolation.APIStreamInfo, then Manager.KeyFor (the
// engine's path); listener flags come from SocksPort option words through
// isolation.ListenerOptions (as config parses a torrc) or from
// isolation.FlagsFromConfig (the Go API), while the model reads the same
// words itself.

// listener is one SocksPort (or, api, the Go API) of a property run.
type listener struct {
	id    uint32
	api   bool
	group int
	proto isolation.Protocol
	// flags are what the engine uses (from ApplySocksPortOption or
	// FlagsFromConfig); model is the test's own reading of the options.
	flags, model isolation.Flags
}

// socksWords are SocksPort isolation options and the field each sets in
// the model (C tor ISO_DEFAULT is IsolateClientAddr and IsolateSOCKSAuth).
var socksWords = []struct {
	word string
	on   bool
	f    isolation.Flags
}{
	{"IsolateDestPort", true, isolation.IsolateDestPort},
	{"IsolateDestAddr", true, isolation.IsolateDestAddr},
	{"NoIsolateSOCKSAuth", false, isolation.IsolateSOCKSAuth},
	{"IsolateClientProtocol", true, isolation.IsolateClientProtocol},
	{"NoIsolateClientAddr", false, isolation.IsolateClientAddr},
	{"IsolateClientPort", true, isolation.IsolateClientPort},
}

// apiLevels are Go API isolation settings and the fields the model says
// each isolates (the rules documented at isolation.FlagsFromConfig).
var apiLevels = []struct {
	level string
	model isolation.Flags
}{
	{"none", 0},
	{"session", 0},
	{"destination", isolation.IsolateDestAddr | isolation.IsolateDestPort | isolation.IsolateClientAddr},
	{"destination,credential", isolation.IsolateDestAddr | isolation.IsolateDestPort | isolation.IsolateClientAddr | isolation.IsolateSOCKSAuth},
}

// randomListeners returns the Go API (listener 0) and five SocksPorts
// (1-5) with random options; 1 and 2 share SessionGroup=7, so streams
// with different flags meet on one circuit (C tor allows it).
func randomListeners(t testing.TB, r *rand.Rand) []listener {
	al := apiLevels[r.IntN(len(apiLevels))]
	af, err := isolation.FlagsFromConfig(isolation.Config{IsolationLevel: al.level})
	if err != nil {
		t.Fatal(err)
	}
	ls := []listener{{id: isolation.APIListener, api: true, group: isolation.SessionGroupUnset, proto: isolation.ProtoAPI, flags: af, model: al.model}}
	protos := []isolation.Protocol{isolation.ProtoSOCKS4, isolation.ProtoSOCKS4a, isolation.ProtoSOCKS5, isolation.ProtoHTTPConnect}
	for i := 1; i <= 5; i++ {
		o := isolation.DefaultListenerOptions()
		model := isolation.IsolateClientAddr | isolation.IsolateSOCKSAuth
		var words []string
		for _, w := range socksWords {
			if r.IntN(2) == 0 {
				words = append(words, w.word)
				if w.on {
					model |= w.f
				} else {
					model &^= w.f
				}
			}
		}
		if model&isolation.IsolateSOCKSAuth != 0 && r.IntN(3) == 0 {
			words = append(words, "KeepAliveIsolateSOCKSAuth")
			model |= isolation.KeepAliveIsolateSOCKSAuth
		}
		group := isolation.SessionGroupUnset
		if i <= 2 {
			words, group = append(words, "SessionGroup=7"), 7
		}
		for _, w := range words {
			if ok, err := o.ApplySocksPortOption(w); !ok || err != nil {
				t.Fatalf("SocksPort option %q: %v, %v", w, ok, err)
			}
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("SocksPort options %q: %v", words, err)
		}
		if o.SessionGroup != group {
			t.Fatalf("SocksPort options %q: session group %d", words, o.SessionGroup)
		}
		ls = append(ls, listener{id: uint32(i), group: group, proto: protos[r.IntN(len(protos))], flags: o.Flags, model: model})
	}
	return ls
}

var (
	users   = [][2]string{{"", ""}, {"alice", "pw"}, {"alice", "pw2"}, {"bob", "pw"}, {"ab", "c"}, {"a", "bc"}, {"<torS0X>0", "tab1"}, {"<torS0X>0", "tab2"}, {"carol", ""}}
	dests   = []string{"example.com", "EXAMPLE.com", "example.org", "10.0.0.1", "[::1]", "onion.example"}
	dports  = []uint16{80, 443, 22, 6667}
	clients = []string{"127.0.0.1", "127.0.0.2", "::1"}
	cports  = []uint16{40000, 40001, 40002, 50000}
)

// request is one stream as an application asks for it: a socks.Request
// as the socks package's parser fills it in, or a Go API dial.
type request struct {
	l     int // index into the run's listeners
	socks *socks.Request
	host  string // Go API
	port  uint16
	token isolation.Token
}

func randomRequest(r *rand.Rand, ls []listener, tokens []isolation.Token) request {
	q := request{l: r.IntN(len(ls))}
	l := ls[q.l]
	host, port := dests[r.IntN(len(dests))], dports[r.IntN(len(dports))]
	if l.api {
		q.host, q.port, q.token = host, port, tokens[r.IntN(len(tokens))]
		return q
	}
	u := users[r.IntN(len(users))]
	req := &socks.Request{
		Host:       host,
		Port:       port,
		Protocol:   l.proto,
		ClientAddr: netip.AddrPortFrom(netip.MustParseAddr(clients[r.IntN(len(clients))]), cports[r.IntN(len(cports))]),
	}
	if l.proto == isolation.ProtoSOCKS5 && r.IntN(2) == 0 {
		req.Protocol = isolation.ProtoHTTPConnect // mix protocols within a group
	}
	if u[0] != "" {
		req.Username = []byte(u[0])
	}
	if u[1] != "" {
		req.Password = []byte(u[1])
	}
	if u[0] == isolation.ExtendedAuthPrefix+"0" {
		req.ExtFormat = '0' // as the parser marks proposal 351 credentials
	}
	q.socks = req
	return q
}

// key is the stream's key as the engine makes it.
func (q request) key(m *Manager[*fakeCirc], ls []listener) (isolation.Key, Usage) {
	l := ls[q.l]
	if l.api {
		return m.KeyFor(isolation.APIStreamInfo(q.host, q.port, q.token), l.flags), Usage{Port: q.port}
	}
	return m.KeyFor(q.socks.StreamInfo(l.id, l.group), l.flags), Usage{Port: q.socks.Port}
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

// oracleOf reads a request's fields itself; epoch is the number of
// NEWNYMs the test has made.
func oracleOf(q request, ls []listener, epoch uint64) oracle {
	l := ls[q.l]
	o := oracle{flags: l.model, epoch: epoch, group: fmt.Sprint("listener ", l.id)}
	if l.group >= 0 {
		o.group = fmt.Sprint("group ", l.group)
	}
	if l.api {
		o.dest, o.destPort, o.proto, o.token, o.auth = strings.ToLower(q.host), q.port, isolation.ProtoAPI, q.token, "none"
		return o
	}
	req := q.socks
	o.dest, o.destPort, o.proto = strings.ToLower(req.Host), req.Port, req.Protocol
	o.clientAddr, o.clientPort = req.ClientAddr.Addr().Unmap(), req.ClientAddr.Port()
	if o.proto == isolation.ProtoSOCKS4a {
		o.proto = isolation.ProtoSOCKS4 // C tor: both are SOCKS version 4
	}
	u, p := string(req.Username), string(req.Password)
	switch {
	case strings.HasPrefix(u, "<torS0X>") && len(u) == 9:
		o.auth = "ext" + u[8:] + "\x00" + p
	case u == "" && p == "":
		o.auth = "none"
	default:
		o.auth = fmt.Sprintf("legacy %q %q", u, p)
	}
	return o
}

// keepsAlive reports whether a stream of o refreshes the dirtiness of
// the circuit it joins (C tor link_apconn_to_circ: KeepAliveIsolateSOCKSAuth
// on a port that isolates on SOCKS auth, and credentials given).
func keepsAlive(o oracle) bool {
	return o.flags&isolation.KeepAliveIsolateSOCKSAuth != 0 && o.flags&isolation.IsolateSOCKSAuth != 0 && o.auth != "none"
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

// modelCirc is the test's own record of one circuit.
type modelCirc struct {
	streams   []oracle
	dirty     time.Time // first stream, or the last keep-alive stream
	destroyed bool
}

// fresh reports whether, by the model, c may take a stream of o at now.
func (c *modelCirc) fresh(o oracle, now time.Time, dirtiness time.Duration) bool {
	if c.destroyed || now.Sub(c.dirty) >= dirtiness {
		return false
	}
	var mixed isolation.Flags
	for _, e := range c.streams {
		mixed |= oracleDiff(c.streams[0], e)
	}
	return mixed&isolates(o) == 0
}

const propertyDirtiness = 10 * time.Minute

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
		MaxCircuitDirtiness:      propertyDirtiness,
	})
	ls := randomListeners(t, r)
	tokens := []isolation.Token{0, 0, 0, isolation.NewToken(), isolation.NewToken()}

	circs := make(map[uint64]*modelCirc)
	lastCirc := make(map[oracle]uint64)
	var epoch uint64 // NEWNYMs so far, by the test's count
	var open []*Attachment[*fakeCirc]
	hits, expectedHits := 0, 0
	var seen []request

	for i := 0; i < n; i++ {
		op := r.IntN(100)
		switch {
		case op < 2:
			m.NewIdentity()
			epoch++
			continue
		case op < 5:
			clk.Advance(time.Duration(r.IntN(120)) * time.Second)
			m.maintain()
			continue
		case op < 7 && len(open) > 0:
			// A relay destroys a circuit.
			a := open[r.IntN(len(open))]
			a.Circuit.Close()
			circs[a.CircID].destroyed = true
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
		var q request
		if len(seen) > 0 && r.IntN(3) == 0 {
			q = seen[r.IntN(len(seen))] // an earlier stream's parameters again
		} else {
			q = randomRequest(r, ls, tokens)
			seen = append(seen, q)
		}
		k, u := q.key(m, ls)
		o := oracleOf(q, ls, epoch)
		now := clk.Now()

		// By the model, the circuit of the last stream with these
		// fields is still fresh for this one.
		expect := false
		if id, ok := lastCirc[o]; ok {
			expect = circs[id].fresh(o, now, propertyDirtiness)
		}
		a, err := m.Attach(ctx, u, k)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Circuit.AllowsPort(u.Port) {
			t.Fatal("circuit does not allow the stream's port")
		}
		mc := circs[a.CircID]
		// A stream joins an existing circuit iff the model knew it.
		hit := mc != nil && len(mc.streams) > 0
		if a.Reused != hit {
			t.Fatalf("stream %d: manager says reused=%v, the model says the circuit %d had streams: %v", i, a.Reused, a.CircID, hit)
		}
		if expect {
			expectedHits++
			if !hit {
				t.Fatalf("stream %d (%+v): circuit %d of an equal stream is fresh by the model (dirty since %v, now %v) but the stream got a new circuit %d",
					i, o, lastCirc[o], circs[lastCirc[o]].dirty, now, a.CircID)
			}
		}
		if hit {
			hits++
		}
		if mc == nil {
			mc = &modelCirc{}
			circs[a.CircID] = mc
		}
		if len(mc.streams) == 0 || keepsAlive(o) {
			mc.dirty = now
		}
		mc.streams = append(mc.streams, o)
		lastCirc[o] = a.CircID
		open = append(open, a)
	}
	perCirc := make(map[uint64][]oracle)
	for id, c := range circs {
		perCirc[id] = c.streams
	}
	checkInvariant(t, perCirc)
	checkIndex(t, m)
	if expectedHits == 0 || hits == 0 {
		t.Fatalf("test too weak: %d expected hits, %d hits", expectedHits, hits)
	}
	t.Logf("streams→%d circuits, %d hits (%d required by the model), metrics %+v", len(perCirc), hits, expectedHits, m.Metrics())
}

// TestPropertyIsolationConcurrent runs streams from many goroutines
// (with -race) with slow builds, so streams share pending builds, and
// checks the same two directions. Attaches run concurrently with each
// other, with releases and with builds; the clock and NEWNYM only move
// between attaches (a lock), so the model knows each stream's time and
// epoch exactly. Order between attaches comes from a sequence number
// taken before and after each: a stream must share when an equal stream
// had finished attaching before it began and, by the model, that
// stream's circuit was still fresh.
func TestPropertyIsolationConcurrent(t *testing.T) {
	b := &fakeBuilder{}
	slow := &slowBuilder{inner: b, d: 200 * time.Microsecond}
	clk := newClock()
	m := New[*fakeCirc](slow, Config{Now: clk.Now, MaxCircuits: 100000, EnableCircuitPrebuilding: true,
		MaintenanceInterval: time.Millisecond, MaxCircuitDirtiness: propertyDirtiness})
	defer m.Close()
	r := rand.New(rand.NewPCG(42, 43))
	ls := randomListeners(t, r)
	tokens := []isolation.Token{0, isolation.NewToken(), isolation.NewToken()}

	type rec struct {
		o          oracle
		circ, sid  uint64
		begin, end uint64 // sequence numbers before and after Attach
		at         time.Time
		reused     bool
	}
	var (
		world sync.RWMutex // write: clock and NEWNYM; read: an attach
		epoch uint64       // guarded by world
		seq   atomic.Uint64
		mu    sync.Mutex // guards recs and seen
		recs  []rec
		seen  []request
	)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 99))
			for i := 0; i < 300; i++ {
				if r.IntN(200) == 0 {
					world.Lock()
					m.NewIdentity()
					epoch++
					world.Unlock()
				}
				if r.IntN(50) == 0 {
					world.Lock()
					clk.Advance(time.Minute)
					world.Unlock()
				}
				mu.Lock()
				var q request
				if len(seen) > 0 && r.IntN(3) == 0 {
					q = seen[r.IntN(len(seen))]
				} else {
					q = randomRequest(r, ls, tokens)
					seen = append(seen, q)
				}
				mu.Unlock()
				world.RLock()
				k, u := q.key(m, ls)
				x := rec{o: oracleOf(q, ls, epoch), at: clk.Now(), begin: seq.Add(1)}
				a, err := m.Attach(ctx, u, k)
				x.end = seq.Add(1)
				world.RUnlock()
				if err != nil {
					t.Error(err)
					return
				}
				x.circ, x.sid, x.reused = a.CircID, a.StreamID, a.Reused
				mu.Lock()
				recs = append(recs, x)
				mu.Unlock()
				if r.IntN(2) == 0 {
					a.Release()
				}
			}
		}()
	}
	wg.Wait()

	// Stream IDs are handed out in attach order.
	slices.SortFunc(recs, func(a, b rec) int { return cmp.Compare(a.sid, b.sid) })
	ordered := make(map[uint64][]oracle)
	byCirc := make(map[uint64][]rec)
	for _, x := range recs {
		ordered[x.circ] = append(ordered[x.circ], x.o)
		byCirc[x.circ] = append(byCirc[x.circ], x)
	}
	checkInvariant(t, ordered)
	checkIndex(t, m)

	// Sharing: for each stream, an equal stream that had finished
	// attaching before it began, on a circuit fresh for it by the model.
	expected := 0
	for _, j := range recs {
		for _, i := range recs {
			if i.o != j.o || i.end >= j.begin {
				continue
			}
			on := byCirc[i.circ]
			mc := modelCirc{dirty: on[0].at}
			for _, e := range on {
				if e.sid >= j.sid {
					break // attached after j: cannot have mixed it before j chose
				}
				mc.streams = append(mc.streams, e.o)
				if e.end < j.begin && keepsAlive(e.o) && e.at.After(mc.dirty) {
					mc.dirty = e.at // a refresh that surely came before j
				}
			}
			if mc.fresh(j.o, j.at, propertyDirtiness) {
				expected++
				if !j.reused {
					t.Fatalf("stream %d (%+v): equal stream %d's circuit %d is fresh by the model (dirty since %v, now %v) but it got a new circuit %d",
						j.sid, j.o, i.sid, i.circ, mc.dirty, j.at, j.circ)
				}
				break
			}
		}
	}
	if expected == 0 {
		t.Fatal("test too weak: no stream had to share")
	}
	t.Logf("%d circuits, %d streams had to share by the model, metrics %+v", len(ordered), expected, m.Metrics())
}

type slowBuilder struct {
	inner *fakeBuilder
	d     time.Duration
}

func (s *slowBuilder) Build(c context.Context, u Usage) (*fakeCirc, error) {
	time.Sleep(s.d)
	return s.inner.Build(c, u)
}
