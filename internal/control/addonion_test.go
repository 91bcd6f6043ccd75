package control

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// onionFake is a backend that hosts (pretend) onion services: it records
// what AddOnion and DelOnion were asked.
type onionFake struct {
	*fakeBackend
	omu     sync.Mutex
	running map[string]AddOnionRequest
	added   []AddOnionRequest
	deleted []string
	failAdd error
}

func (f *onionFake) AddOnion(req AddOnionRequest) (AddedOnion, error) {
	f.omu.Lock()
	defer f.omu.Unlock()
	if f.failAdd != nil {
		return AddedOnion{}, f.failAdd
	}
	var out AddedOnion
	if req.Key != nil {
		out.Key = *req.Key
	} else {
		rand.Read(out.Key[:])
	}
	// A valid address derived from the key (not the real derivation).
	pub := ed25519.NewKeyFromSeed(out.Key[:32]).Public().(ed25519.PublicKey)
	out.ServiceID = hscrypto.Address{PubKey: [32]byte(pub)}.Label()
	if _, dup := f.running[out.ServiceID]; dup {
		return AddedOnion{}, Error(ErrOnionExists, "running already")
	}
	f.running[out.ServiceID] = req
	f.added = append(f.added, req)
	return out, nil
}

func (f *onionFake) DelOnion(id string) error {
	f.omu.Lock()
	defer f.omu.Unlock()
	if _, ok := f.running[id]; !ok {
		return ErrUnknownKey
	}
	delete(f.running, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *onionFake) gotDeleted() []string {
	f.omu.Lock()
	defer f.omu.Unlock()
	return slices.Clone(f.deleted)
}

func startOnionServer(t *testing.T) (*testServer, *onionFake) {
	t.Helper()
	f := &onionFake{fakeBackend: newFakeBackend(), running: map[string]AddOnionRequest{}}
	s, err := New(Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}},
		HashedControlPassword: []string{torHashFoo}}, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testServer{s: s, b: f.fakeBackend, addr: s.Addrs()[0].String()}, f
}

func b32key(b byte) string {
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(bytes.Repeat([]byte{b}, 32)))
}

func TestParseAddOnion(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 64)
	keyB64 := base64.StdEncoding.EncodeToString(key)
	auth := b32key(1)
	ok := []struct {
		args  string
		ports []OnionPort
		check func(parsedAddOnion) bool
	}{
		{"NEW:BEST Port=80", []OnionPort{{80, "127.0.0.1:80"}}, func(p parsedAddOnion) bool { return p.req.Key == nil && !p.discardPK }},
		{"new:ed25519-v3 Port=22 Port=80,8080", []OnionPort{{22, "127.0.0.1:22"}, {80, "127.0.0.1:8080"}}, nil},
		{"NEW:BEST Port=80,192.168.1.1:8080", []OnionPort{{80, "192.168.1.1:8080"}}, nil},
		{"NEW:BEST Port=80,10.0.0.1", []OnionPort{{80, "10.0.0.1:80"}}, nil},
		{"NEW:BEST Port=80,localhost:81", []OnionPort{{80, "127.0.0.1:81"}}, nil},
		{"NEW:BEST Port=443,[::1]:8443", []OnionPort{{443, "[::1]:8443"}}, nil},
		{"NEW:BEST Port=80,unix:/run/web.sock", []OnionPort{{80, "unix:/run/web.sock"}}, nil},
		{`NEW:BEST Port="80,unix:\"/run/a b.sock\""`, []OnionPort{{80, "unix:/run/a b.sock"}}, nil},
		{"ED25519-V3:" + keyB64 + " Port=80", []OnionPort{{80, "127.0.0.1:80"}},
			func(p parsedAddOnion) bool { return p.req.Key != nil && bytes.Equal(p.req.Key[:], key) }},
		{"ED25519-V3:" + strings.TrimRight(keyB64, "=") + " Port=80", []OnionPort{{80, "127.0.0.1:80"}},
			func(p parsedAddOnion) bool { return p.req.Key != nil && bytes.Equal(p.req.Key[:], key) }},
		{"NEW:BEST Flags=DiscardPK,Detach Port=80", []OnionPort{{80, "127.0.0.1:80"}},
			func(p parsedAddOnion) bool { return p.discardPK && p.detach }},
		{"NEW:BEST Flags=MaxStreamsCloseCircuit MaxStreams=10 Port=80", []OnionPort{{80, "127.0.0.1:80"}},
			func(p parsedAddOnion) bool { return p.req.MaxStreams == 10 && p.req.MaxStreamsCloseCircuit }},
		{"NEW:BEST Flags=V3Auth ClientAuthV3=" + auth + " ClientAuthV3=" + strings.ToUpper(b32key(2)) + " Port=80",
			[]OnionPort{{80, "127.0.0.1:80"}}, func(p parsedAddOnion) bool {
				return len(p.req.ClientAuthV3) == 2 && p.req.ClientAuthV3[0] == [32]byte(bytes.Repeat([]byte{1}, 32)) &&
					p.req.ClientAuthV3[1] == [32]byte(bytes.Repeat([]byte{2}, 32)) && p.authEcho[0] == auth
			}},
	}
	for _, tc := range ok {
		p, code, msg := parseAddOnion(tc.args)
		if code != 0 {
			t.Errorf("%q: %d %s", tc.args, code, msg)
			continue
		}
		if !slices.Equal(p.req.Ports, tc.ports) {
			t.Errorf("%q: ports %v, want %v", tc.args, p.req.Ports, tc.ports)
		}
		if tc.check != nil && !tc.check(p) {
			t.Errorf("%q: parsed %+v", tc.args, p)
		}
	}

	bad := []struct{ args, want string }{
		{"", "512 Bad arguments to ADD_ONION: Need at least 1 argument(s)"},
		{"NEW:BEST", "512 Missing 'Port' argument"},
		{"NEW:BEST Detach", "512 Bad arguments to ADD_ONION: Cannot parse keyword argument(s)"},
		{"NEW:BEST Port=80 Target=1", `512 Bad arguments to ADD_ONION: Unrecognized keyword argument "Target"`},
		{`NEW:BEST Port="80`, "512 Bad arguments to ADD_ONION: Cannot parse keyword argument(s)"},
		{"NEW:BEST Port=0", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=65536", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=http", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=80,0", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=80,99999", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=80,www.example.com:80", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=80,1.2.3.4:x", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=80,unix:", "512 Invalid VIRTPORT/TARGET"},
		{"NEW:BEST Port=80 MaxStreams=65536", "512 Invalid MaxStreams"},
		{"NEW:BEST Port=80 MaxStreams=-1", "512 Invalid MaxStreams"},
		{"NEW:BEST Port=80 Flags=", "512 Invalid 'Flags' argument"},
		{"NEW:BEST Port=80 Flags=,", "512 Invalid 'Flags' argument"},
		{"NEW:BEST Port=80 Flags=Detach,Bogus", `512 Invalid 'Flags' argument: "Bogus"`},
		{"NEW:BEST Port=80 ClientAuthV3=abc", "512 Cannot decode v3 client auth key"},
		{"NEW:BEST Port=80 ClientAuthV3=" + strings.Repeat("1", 52), "512 Cannot decode v3 client auth key"},
		{"NEW:BEST Port=80 ClientAuthV3=" + auth, "512 No auth type specified"},
		{"NEW:BEST Port=80 Flags=V3Auth", "512 No auth clients specified"},
		{"NEW:BEST Port=80 ClientAuth=bob", "512 Invalid client authorization"},
		{"NEW:BEST Port=80 Flags=NonAnonymous", "512 Tor is in anonymous hidden service mode"},
		{"NEW Port=80", "512 Invalid key type/blob"},
		{"NEW:BEST:X Port=80", "512 Invalid key type/blob"},
		{"NEW:RSA1024 Port=80", "513 Invalid key type"},
		{"RSA1024:AAAA Port=80", "513 Invalid key type"},
		{"ED25519-V3:AAAA Port=80", "512 Failed to decode ED25519-V3 key"},
		{"ED25519-V3:" + keyB64 + "AAAA Port=80", "512 Failed to decode ED25519-V3 key"},
		{"ED25519-V3:!!notbase64!! Port=80", "512 Failed to decode ED25519-V3 key"},
	}
	for _, tc := range bad {
		_, code, msg := parseAddOnion(tc.args)
		if got := itoa(code) + " " + msg; got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}
}

// ADD_ONION's replies and the ownership rules: a connection's services
// go when it closes, detached ones stay, DEL_ONION removes one's own or
// detached services only; malformed commands leave the connection
// usable.
func TestAddOnionOwnership(t *testing.T) {
	ts, f := startOnionServer(t)
	a, b := ts.authed(t), ts.authed(t)

	r := a.do("ADD_ONION NEW:BEST Port=80")
	if len(r) != 3 || !strings.HasPrefix(r[0], "250-ServiceID=") || !strings.HasPrefix(r[1], "250-PrivateKey=ED25519-V3:") || r[2] != "250 OK" {
		t.Fatalf("ADD_ONION NEW:BEST: %q", r)
	}
	idA := strings.TrimPrefix(r[0], "250-ServiceID=")
	blob, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r[1], "250-PrivateKey=ED25519-V3:"))
	if err != nil || len(blob) != 64 {
		t.Fatalf("PrivateKey blob: %d bytes, %v", len(blob), err)
	}
	// The same key again: a collision, the connection goes on.
	expect(t, a.do("ADD_ONION ED25519-V3:"+base64.StdEncoding.EncodeToString(blob)+" Port=80"), "550 Onion address collision")

	r = b.do("ADD_ONION NEW:ED25519-V3 Flags=Detach,DiscardPK Port=22,2222")
	if len(r) != 2 || !strings.HasPrefix(r[0], "250-ServiceID=") || r[1] != "250 OK" {
		t.Fatalf("ADD_ONION with DiscardPK: %q", r)
	}
	idDetached := strings.TrimPrefix(r[0], "250-ServiceID=")
	// A key given: no PrivateKey line.
	r = b.do("ADD_ONION ED25519-V3:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 64)) + " Port=80")
	if len(r) != 2 || !strings.HasPrefix(r[0], "250-ServiceID=") {
		t.Fatalf("ADD_ONION with a key: %q", r)
	}
	idB := strings.TrimPrefix(r[0], "250-ServiceID=")
	// ClientAuthV3 values are echoed.
	auth := b32key(3)
	r = b.do("ADD_ONION NEW:BEST Flags=V3Auth,DiscardPK ClientAuthV3=" + auth + " Port=80")
	if len(r) != 3 || r[1] != "250-ClientAuthV3="+auth {
		t.Fatalf("ADD_ONION with ClientAuthV3: %q", r)
	}
	idAuth := strings.TrimPrefix(r[0], "250-ServiceID=")

	expect(t, a.do("GETINFO onions/current"), "250-onions/current="+idA, "250 OK")
	expect(t, b.do("GETINFO onions/current"), "250+onions/current=", idB, idAuth, ".", "250 OK")
	expect(t, a.do("GETINFO onions/detached"), "250-onions/detached="+idDetached, "250 OK")

	// DEL_ONION: malformed, someone else's, one's own, detached.
	expect(t, a.do("DEL_ONION"), "512 Bad arguments to DEL_ONION: Need at least 1 argument(s)")
	expect(t, a.do("DEL_ONION "+idB+" x"), "512 Bad arguments to DEL_ONION: Cannot accept more than 1 argument(s)")
	expect(t, a.do("DEL_ONION "+idB[:55]), "512 Malformed Onion Service id")
	bad := []byte(idB)
	bad[0] ^= 1 // a checksum that does not match
	expect(t, a.do("DEL_ONION "+string(bad)), "512 Malformed Onion Service id")
	expect(t, a.do("DEL_ONION "+idB), "552 Unknown Onion Service id")
	expect(t, b.do("DEL_ONION "+idB), "250 OK")
	expect(t, b.do("DEL_ONION "+idB), "552 Unknown Onion Service id")
	expect(t, a.do("DEL_ONION "+idDetached), "250 OK")
	expect(t, a.do("GETINFO onions/detached"), "250-onions/detached=", "250 OK")
	if got := f.gotDeleted(); !slices.Equal(got, []string{idB, idDetached}) {
		t.Fatalf("backend deleted %v, want %v", got, []string{idB, idDetached})
	}

	// A detached service outlives its connection, the others do not.
	removed := []string{idB, idDetached, idA, idAuth}
	r = a.do("ADD_ONION NEW:BEST Flags=Detach Port=80")
	idDetached = strings.TrimPrefix(r[0], "250-ServiceID=")
	expect(t, a.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	a.send("QUIT")
	a.readReply()
	b.nc.Close()
	slices.Sort(removed)
	for deadline := time.Now().Add(5 * time.Second); ; {
		got := f.gotDeleted()
		slices.Sort(got)
		if slices.Equal(got, removed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the connections closed the backend deleted %v; want %v (not the detached %s)", got, removed, idDetached)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := ts.authed(t)
	expect(t, c.do("GETINFO onions/detached"), "250-onions/detached="+idDetached, "250 OK")
	expect(t, c.do("GETINFO onions/current"), "250-onions/current=", "250 OK")
	expect(t, c.do("DEL_ONION "+idDetached), "250 OK")
}

// Backend failures map onto C tor's codes; without an OnionHoster both
// commands get 551; none of this closes the connection.
func TestAddOnionErrors(t *testing.T) {
	ts, f := startOnionServer(t)
	c := ts.authed(t)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{Error(ErrBadOnionKey, "not a point"), "551 Failed to generate onion address"},
		{Error(ErrInvalidValue, "bad target"), "512 Invalid VIRTPORT/TARGET"},
		{errors.New("engine stopped"), "551 Failed to add Onion Service"},
	} {
		f.omu.Lock()
		f.failAdd = tc.err
		f.omu.Unlock()
		expect(t, c.do("ADD_ONION NEW:BEST Port=80"), tc.want)
	}
	expect(t, c.do("GETINFO onions/current"), "250-onions/current=", "250 OK")

	plain := startServer(t, nil)
	p := plain.authed(t)
	expect(t, p.do("ADD_ONION NEW:BEST Port=80"), "551 ADD_ONION is not supported by this implementation")
	expect(t, p.do("DEL_ONION x"), "551 DEL_ONION is not supported by this implementation")
	expect(t, p.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
}
