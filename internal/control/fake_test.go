package control

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeBackend is a Backend for protocol tests.
type fakeBackend struct {
	mu       sync.Mutex
	circs    []CircuitInfo
	streams  []StreamInfo
	conf     map[string][]string
	signals  []string
	subs     map[int]func(Event)
	nextSub  int
	read     atomic.Uint64
	written  atomic.Uint64
	mappings map[string]string
	onSignal func(string)
	loaded   []string // LOADCONF texts
	calls    []string // commands the backend carried out
	auths    map[string]ClientAuth
	saved    int  // successful SAVECONFs
	include  bool // the torrc "uses %include"
}

func newFakeBackend() *fakeBackend {
	created := time.Date(2026, 11, 27, 3, 0, 0, 123456000, time.UTC)
	return &fakeBackend{
		circs: []CircuitInfo{
			{ID: 1, State: CircBuilt, Path: []Hop{
				{Fingerprint: strings.Repeat("A", 40), Nickname: "guard1"},
				{Fingerprint: strings.Repeat("B", 40), Nickname: "middle2"},
				{Fingerprint: strings.Repeat("C", 40), Nickname: "exit3"},
			}, BuildFlags: []string{"NEED_CAPACITY"}, Purpose: "GENERAL", TimeCreated: created,
				SocksUsername: "alice", SocksPassword: "pw"},
			{ID: 2, State: CircExtended, Path: []Hop{{Fingerprint: strings.Repeat("D", 40)}},
				BuildFlags: []string{"IS_INTERNAL", "NEED_CAPACITY"}, TimeCreated: created},
		},
		streams: []StreamInfo{
			{ID: 7, Status: StreamSucceeded, CircuitID: 1, Target: "example.com:443",
				SourceAddr: "127.0.0.1:50000", Purpose: "USER", SocksUsername: "alice",
				ClientProtocol: "SOCKS5"},
		},
		conf: map[string][]string{
			"SocksPort":                 {"127.0.0.1:9050"},
			"DataDirectory":             {"/tmp/gotor"},
			"ExitNodes":                 nil,
			"__OwningControllerProcess": nil,
		},
		subs:     map[int]func(Event){},
		mappings: map[string]string{},
		auths:    map[string]ClientAuth{},
	}
}

func (f *fakeBackend) Version() string { return "0.4.9.0-gotor" }
func (f *fakeBackend) BootstrapStatus() Bootstrap {
	return Bootstrap{Percent: 100, Tag: "done", Summary: "Done"}
}
func (f *fakeBackend) Circuits() []CircuitInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]CircuitInfo(nil), f.circs...)
}
func (f *fakeBackend) Streams() []StreamInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]StreamInfo(nil), f.streams...)
}
func (f *fakeBackend) Listeners(kind string) []string {
	if kind == "socks" {
		return []string{"127.0.0.1:9050", "unix:/tmp/sock"}
	}
	return nil
}
func (f *fakeBackend) canon(key string) (string, bool) {
	for k := range f.conf {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}
func (f *fakeBackend) GetConf(key string) (string, []string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.canon(key)
	if !ok {
		return "", nil, ErrUnknownKey
	}
	return k, f.conf[k], nil
}

// SetConf checks like a real backend: unknown keys, the value "bad"
// (513), the value "invalid" (553), DataDirectory (a transition), then
// applies all changes and publishes CONF_CHANGED.
func (f *fakeBackend) SetConf(changes []ConfChange) error {
	f.mu.Lock()
	for _, ch := range changes {
		k, ok := f.canon(ch.Key)
		if !ok {
			f.mu.Unlock()
			return fmt.Errorf("Unknown option %q: %w", ch.Key, ErrUnknownKey)
		}
		if k == "DataDirectory" {
			f.mu.Unlock()
			return Error(ErrTransition, "While Tor is running, changing DataDirectory is not allowed")
		}
		for _, v := range ch.Values {
			switch v {
			case "bad":
				f.mu.Unlock()
				return fmt.Errorf("value %q: %w", v, ErrInvalidValue)
			case "invalid":
				f.mu.Unlock()
				return fmt.Errorf("%s %q does not validate", k, v)
			}
		}
	}
	var lines []string
	for _, ch := range changes {
		k, _ := f.canon(ch.Key)
		f.conf[k] = ch.Values
		if len(ch.Values) == 0 {
			lines = append(lines, k)
		}
		for _, v := range ch.Values {
			lines = append(lines, k+"="+v)
		}
	}
	f.mu.Unlock()
	f.emit(Event{Type: EventConfChanged, Conf: lines})
	return nil
}

// LoadConf takes "Key Value" lines; errors as SetConf.
func (f *fakeBackend) LoadConf(text string) error {
	var changes []ConfChange
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		k, v, _ := strings.Cut(l, " ")
		changes = append(changes, ConfChange{Key: k, Values: []string{v}})
	}
	f.mu.Lock()
	f.loaded = append(f.loaded, text)
	f.mu.Unlock()
	return f.SetConf(changes)
}

func (f *fakeBackend) SaveConf(force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.include && !force {
		return errors.New("torrc uses %include")
	}
	f.saved++
	return nil
}

func (f *fakeBackend) ConfigText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, k := range []string{"SocksPort", "DataDirectory", "ExitNodes"} {
		for _, v := range f.conf[k] {
			b.WriteString(k + " " + v + "\n")
		}
	}
	return b.String()
}

func (f *fakeBackend) CanSaveConf() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.include
}

func (f *fakeBackend) ConfigDefaults() []string {
	return []string{"SocksPort 127.0.0.1:9050", "MaxCircuitDirtiness 600"}
}
func (f *fakeBackend) Signal(name string) error {
	f.mu.Lock()
	f.signals = append(f.signals, name)
	hook := f.onSignal
	f.mu.Unlock()
	if hook != nil {
		hook(name)
	}
	return nil
}
func (f *fakeBackend) gotSignals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.signals...)
}
func (f *fakeBackend) TrafficRead() uint64    { return f.read.Load() }
func (f *fakeBackend) TrafficWritten() uint64 { return f.written.Load() }
func (f *fakeBackend) NSByID(fp string) (string, error) {
	if fp == strings.Repeat("A", 40) {
		return "r guard1 qqqqqqqqqqqqqqqqqqqqqqqqqqo 2026-11-27 00:00:00 10.0.0.1 9001 0\ns Fast Guard Running Stable Valid\nw Bandwidth=1000", nil
	}
	return "", ErrUnknownKey
}
func (f *fakeBackend) ConfigNames() []ConfigOption {
	return []ConfigOption{{Name: "SocksPort", Type: "LineList"}, {Name: "DataDirectory", Type: "Filename"},
		{Name: "ExitNodes", Type: "RouterList"}}
}
func (f *fakeBackend) ConfigFile() string { return "/etc/gotor/torrc" }
func (f *fakeBackend) Subscribe(fn func(Event)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextSub
	f.nextSub++
	f.subs[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

// MapAddress: "." and "0.0.0.0" get fixed virtual addresses, "full." is
// out of addresses, a from with "!" is refused; each mapping is
// announced with an ADDRMAP event.
func (f *fakeBackend) MapAddress(from, to string) (string, error) {
	switch {
	case from == "full.":
		return "", errors.New("no virtual address left")
	case strings.Contains(from, "!"):
		return "", Error(ErrInvalidValue, "bad original address")
	case from == ".":
		from = "abcdefghijklmnop.virtual"
	case from == "0.0.0.0":
		from = "127.192.0.1"
	}
	f.mu.Lock()
	if to == from {
		delete(f.mappings, from)
	} else {
		f.mappings[from] = to
	}
	f.mu.Unlock()
	f.emit(Event{Type: EventAddrMap, AddrMap: &AddrMapEvent{From: from, To: to, Cached: true}})
	return from, nil
}

func (f *fakeBackend) AddressMappings(kind string) []AddressMapping {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kind != "all" && kind != "control" {
		return nil
	}
	var out []AddressMapping
	for _, k := range slices.Sorted(maps.Keys(f.mappings)) {
		out = append(out, AddressMapping{From: k, To: f.mappings[k]})
	}
	return out
}

// fakeExpiry is when the fake's RESOLVE answers expire.
var fakeExpiry = time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)

// Resolve answers every name with 10.0.0.7 (a reverse lookup with
// host.example), and "fail" with an error, as ADDRMAP events.
func (f *fakeBackend) Resolve(names []string, reverse bool) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("RESOLVE %v %v", names, reverse))
	f.mu.Unlock()
	for i, n := range names {
		ev := &AddrMapEvent{From: n, To: "10.0.0.7", Expires: fakeExpiry, StreamID: uint64(100 + i)}
		if reverse {
			ev.To = "host.example"
		}
		if n == "fail" {
			ev.To, ev.Error = "<error>", "error=yes"
		}
		f.emit(Event{Type: EventAddrMap, AddrMap: ev})
	}
	return nil
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fakeBackend) gotCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeBackend) CloseStream(id uint64, reason byte) error {
	f.record("CLOSESTREAM %d %d", id, reason)
	return nil
}

func (f *fakeBackend) CloseCircuit(id uint64, ifUnused bool) error {
	if id != 1 && id != 2 {
		return ErrUnknownKey
	}
	f.record("CLOSECIRCUIT %d %v", id, ifUnused)
	return nil
}

func (f *fakeBackend) SetCircuitPurpose(id uint64, purpose string) error {
	f.record("SETCIRCUITPURPOSE %d %s", id, purpose)
	return nil
}

func (f *fakeBackend) DropGuards() error {
	f.record("DROPGUARDS")
	return nil
}

func (f *fakeBackend) DropTimeouts() error {
	f.record("DROPTIMEOUTS")
	f.emit(Event{Type: EventBuildTimeout, Message: "RESET TOTAL_TIMES=0 TIMEOUT_MS=60000 XM=0 ALPHA=0.000000 CUTOFF_QUANTILE=0.800000 TIMEOUT_RATE=0.000000 CLOSE_MS=60000 CLOSE_RATE=0.000000"})
	return nil
}

// HSFetch reports a request to each server (or to the guard of the fake
// circuit), a RECEIVED from the first and its content.
func (f *fakeBackend) HSFetch(addr string, servers []string) error {
	f.record("HSFETCH %s %v", addr, servers)
	if len(servers) == 0 {
		servers = []string{strings.Repeat("A", 40)}
	}
	for _, s := range servers {
		f.emit(Event{Type: EventHSDesc, HSDesc: &HSDescEvent{Action: "REQUESTED", Address: addr, HSDir: Hop{Fingerprint: s}, DescID: "blinded"}})
	}
	f.emit(Event{Type: EventHSDesc, HSDesc: &HSDescEvent{Action: "RECEIVED", Address: addr, HSDir: Hop{Fingerprint: servers[0]}, DescID: "blinded"}})
	f.emit(Event{Type: EventHSDescContent, HSDescContent: &HSDescContentEvent{Address: addr, DescID: "blinded", HSDir: Hop{Fingerprint: servers[0]},
		Descriptor: "hs-descriptor 3\n.dot line"}})
	return nil
}

func (f *fakeBackend) OnionClientAuthAdd(a ClientAuth) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.Name == "readonly" {
		return false, errors.New("cannot write the file")
	}
	_, had := f.auths[a.Address]
	f.auths[a.Address] = a
	return had, nil
}

func (f *fakeBackend) OnionClientAuthRemove(addr string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, had := f.auths[addr]
	delete(f.auths, addr)
	return had, nil
}

func (f *fakeBackend) OnionClientAuthView(addr string) ([]ClientAuth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ClientAuth
	for _, a := range f.auths {
		out = append(out, a)
	}
	return out, nil
}

// emit sends an event to subscribers.
func (f *fakeBackend) emit(ev Event) {
	f.mu.Lock()
	subs := make([]func(Event), 0, len(f.subs))
	for _, s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		s(ev)
	}
}

// testClient speaks the control protocol line by line.
type testClient struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
	// async holds 650 lines received while waiting for a reply.
	async []string
}

func dialClient(t *testing.T, network, addr string) *testClient {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &testClient{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *testClient) send(line string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
}

// readReply returns the raw lines (without CRLF) of the next synchronous
// reply, data sections included.
func (c *testClient) readReply() []string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		if !strings.HasSuffix(l, "\r\n") {
			c.t.Fatalf("line without CRLF: %q", l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		if strings.HasPrefix(l, "650") && len(lines) == 0 {
			c.async = append(c.async, l)
			if l[3] == ' ' {
				continue
			}
			// multi-line async: read until "650 "
			for {
				m, err := c.r.ReadString('\n')
				if err != nil {
					c.t.Fatal(err)
				}
				m = strings.TrimSuffix(m, "\r\n")
				c.async = append(c.async, m)
				if strings.HasPrefix(m, "650 ") {
					break
				}
			}
			continue
		}
		lines = append(lines, l)
		if len(l) >= 4 && l[3] == '+' {
			for {
				d, err := c.r.ReadString('\n')
				if err != nil {
					c.t.Fatal(err)
				}
				d = strings.TrimSuffix(d, "\r\n")
				lines = append(lines, d)
				if d == "." {
					break
				}
			}
			continue
		}
		if len(l) >= 4 && l[3] == ' ' {
			return lines
		}
	}
}

func (c *testClient) do(line string) []string {
	c.t.Helper()
	c.send(line)
	return c.readReply()
}

// expectClosed checks that the server closed the connection.
func (c *testClient) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadString('\n')
	if err == nil {
		c.t.Fatalf("connection still open, got %q", b)
	}
}

// waitAsync reads until at least n asynchronous lines have been seen.
func (c *testClient) waitAsync(n int) {
	c.t.Helper()
	inData := false // inside a "650+" event's data
	for len(c.async) < n {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("waiting for events (have %q): %v", c.async, err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		switch {
		case inData:
			inData = l != "."
		case strings.HasPrefix(l, "650+"):
			inData = true
		case !strings.HasPrefix(l, "650"):
			c.t.Fatalf("unexpected non-event line %q", l)
		}
		c.async = append(c.async, l)
	}
}

func (f *fakeBackend) EntryGuards() []GuardInfo {
	return []GuardInfo{
		{Relay: Hop{Fingerprint: strings.Repeat("A", 40), Nickname: "guard1"}, Status: "up"},
		{Relay: Hop{Fingerprint: strings.Repeat("E", 40), Nickname: "guard2"}, Status: "down", Since: time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)},
		{Relay: Hop{Fingerprint: strings.Repeat("F", 40)}, Status: "never-connected"},
	}
}

func (f *fakeBackend) ORConns() []ORConnInfo {
	return []ORConnInfo{{Relay: Hop{Fingerprint: strings.Repeat("A", 40), Nickname: "guard1"}, Status: "CONNECTED"}}
}

func (f *fakeBackend) Microdesc(fp, nick string) (string, error) {
	md := "onion-key\n-----BEGIN RSA PUBLIC KEY-----\nMIGJ\n-----END RSA PUBLIC KEY-----\nntor-onion-key x"
	switch {
	case fp == "" && nick == "":
		return md + "\n" + md, nil
	case fp == strings.Repeat("A", 40), nick == "guard1":
		return md, nil
	}
	return "", ErrUnknownKey
}

func (f *fakeBackend) VersionStatus() (string, string) {
	return "recommended", "0.4.8.10,0.4.9.0-gotor"
}
func (f *fakeBackend) NetworkLive() bool { return true }
func (f *fakeBackend) BridgeNS() string  { return "" }
