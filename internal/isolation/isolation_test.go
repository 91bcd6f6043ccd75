package isolation

import (
	"net/netip"
	"strings"
	"testing"
)

func info() StreamInfo {
	return StreamInfo{
		DestAddr:     "example.com",
		DestPort:     443,
		ClientAddr:   netip.MustParseAddrPort("127.0.0.1:40000"),
		Listener:     0,
		SessionGroup: SessionGroupUnset,
		Protocol:     ProtoSOCKS5,
	}
}

func TestDefaultFlagsAreCTorISODefault(t *testing.T) {
	want := IsolateClientAddr | IsolateSOCKSAuth | IsolateSessionGroup | IsolateNymEpoch | IsolateSessionToken
	if Default != want {
		t.Fatalf("Default = %v", Default)
	}
	if k := NewKey(info(), 0); k.Flags() != Always {
		t.Fatalf("NewKey(…, 0).Flags() = %v, want Always", k.Flags())
	}
}

func TestCredentials(t *testing.T) {
	mk := func(p Protocol, u, pw string, ext byte) Key {
		i := info()
		i.Protocol = p
		if u != "" {
			i.Username = []byte(u)
		}
		if pw != "" {
			i.Password = []byte(pw)
		}
		i.ExtFormat = ext
		return NewKey(i, Default)
	}
	alice := mk(ProtoSOCKS5, "alice", "pw", 0)
	if !alice.Compatible(mk(ProtoSOCKS5, "alice", "pw", 0)) {
		t.Error("same credentials must be compatible")
	}
	if alice.Compatible(mk(ProtoSOCKS5, "bob", "pw", 0)) {
		t.Error("different usernames must be isolated")
	}
	if alice.Compatible(mk(ProtoSOCKS5, "alice", "pw2", 0)) {
		t.Error("different passwords must be isolated")
	}
	// Username and password are compared separately, not concatenated.
	if mk(ProtoSOCKS5, "ab", "c", 0).Compatible(mk(ProtoSOCKS5, "a", "bc", 0)) {
		t.Error("(ab,c) and (a,bc) must be isolated")
	}
	if mk(ProtoSOCKS5, "ab", "", 0).Compatible(mk(ProtoSOCKS5, "", "ab", 0)) {
		t.Error("user-only and password-only must be isolated")
	}
	if alice.Compatible(mk(ProtoSOCKS5, "", "", 0)) {
		t.Error("credentials vs none must be isolated")
	}
	// C tor: empty fields are absent, and a SOCKS4 user ID is a
	// username without password: only IsolateClientProtocol tells a
	// SOCKS4 "alice" from a SOCKS5 ("alice", "").
	s4 := mk(ProtoSOCKS4, "alice", "", 0)
	s5 := mk(ProtoSOCKS5, "alice", "", 0)
	if !s4.Compatible(s5) {
		t.Error("SOCKS4 user ID vs SOCKS5 username: C tor compares values only")
	}
	i4, i5 := info(), info()
	i4.Protocol, i4.Username = ProtoSOCKS4, []byte("alice")
	i5.Protocol, i5.Username = ProtoSOCKS5, []byte("alice")
	if NewKey(i4, Default|IsolateClientProtocol).Compatible(NewKey(i5, Default|IsolateClientProtocol)) {
		t.Error("IsolateClientProtocol must separate SOCKS4 and SOCKS5")
	}
	i4a := i4
	i4a.Protocol = ProtoSOCKS4a
	if !NewKey(i4, Default|IsolateClientProtocol).Compatible(NewKey(i4a, Default|IsolateClientProtocol)) {
		t.Error("SOCKS4 and SOCKS4a are one protocol for C tor")
	}
	// Without IsolateSOCKSAuth credentials do not matter.
	i1, i2 := info(), info()
	i1.Username, i2.Username = []byte("alice"), []byte("bob")
	if !NewKey(i1, IsolateClientAddr).Compatible(NewKey(i2, IsolateClientAddr)) {
		t.Error("without IsolateSOCKSAuth, credentials must not isolate")
	}
}

func TestProp351(t *testing.T) {
	mk := func(u, pw string, ext byte) Key {
		i := info()
		i.Username, i.Password, i.ExtFormat = []byte(u), []byte(pw), ext
		return NewKey(i, Default)
	}
	a := mk("<torS0X>0", "tab-1", 0)
	if !a.Compatible(mk("<torS0X>0", "tab-1", '0')) {
		t.Error("parsed and pre-parsed extension must agree")
	}
	if a.Compatible(mk("<torS0X>0", "tab-2", 0)) {
		t.Error("different isolation strings must be isolated")
	}
	if a.Compatible(mk("legacy", "tab-1", 0)) {
		t.Error("extended and legacy credentials must be isolated")
	}
	if a.Compatible(mk("<torS0X>1", "tab-1", 0)) {
		t.Error("format codes must not mix")
	}
	empty := mk("<torS0X>0", "", 0)
	if !empty.HasAuth() || empty.Compatible(mk("", "", 0)) {
		t.Error("an empty isolation string is not 'no credentials'")
	}
	// Malformed: whole credentials isolate.
	if mk("<torS0X>0junk", "x", 0).Compatible(mk("<torS0X>0other", "x", 0)) {
		t.Error("malformed extensions must isolate on the whole username")
	}
}

func TestDestinationAndGroups(t *testing.T) {
	f := Default | IsolateDestAddr | IsolateDestPort
	a, b := info(), info()
	b.DestAddr = "EXAMPLE.com"
	if !NewKey(a, f).Compatible(NewKey(b, f)) {
		t.Error("destination compare is case-insensitive")
	}
	b.DestPort = 80
	if NewKey(a, f).Compatible(NewKey(b, f)) {
		t.Error("ports must isolate")
	}
	b = info()
	b.DestAddr = "example.org"
	if NewKey(a, f).Compatible(NewKey(b, f)) {
		t.Error("addresses must isolate")
	}
	if !NewKey(a, Default).Compatible(NewKey(b, Default)) {
		t.Error("without IsolateDestAddr destinations must not isolate")
	}

	// Listeners without SessionGroup never mix; an explicit shared
	// group does.
	l1, l2 := info(), info()
	l2.Listener = 1
	if NewKey(l1, 0).Compatible(NewKey(l2, 0)) {
		t.Error("different listeners must never mix")
	}
	l1.SessionGroup, l2.SessionGroup = 7, 7
	if !NewKey(l1, 0).Compatible(NewKey(l2, 0)) {
		t.Error("same explicit session group must mix")
	}
	l2.SessionGroup = 8
	if NewKey(l1, 0).Compatible(NewKey(l2, 0)) {
		t.Error("different session groups must never mix")
	}
	// An automatic group never equals an explicit one.
	for l := uint32(0); l < 4; l++ {
		x, y := info(), info()
		x.Listener = l
		for g := 0; g < 4; g++ {
			y.SessionGroup = g
			if NewKey(x, 0).Compatible(NewKey(y, 0)) {
				t.Fatalf("auto group of listener %d equals group %d", l, g)
			}
		}
	}

	e1, e2 := info(), info()
	e2.Epoch = 1
	if NewKey(e1, 0).Compatible(NewKey(e2, 0)) {
		t.Error("NEWNYM epochs must never mix")
	}
	t1, t2 := info(), info()
	t1.Token, t2.Token = NewToken(), NewToken()
	if t1.Token == 0 || t1.Token == t2.Token {
		t.Fatal("NewToken")
	}
	if NewKey(t1, 0).Compatible(NewKey(t2, 0)) || NewKey(t1, 0).Compatible(NewKey(info(), 0)) {
		t.Error("session tokens must always isolate")
	}

	c1, c2 := info(), info()
	c2.ClientAddr = netip.MustParseAddrPort("127.0.0.1:40001")
	if !NewKey(c1, Default).Compatible(NewKey(c2, Default)) {
		t.Error("source port only isolates with IsolateClientPort")
	}
	if NewKey(c1, Default|IsolateClientPort).Compatible(NewKey(c2, Default|IsolateClientPort)) {
		t.Error("IsolateClientPort must isolate source ports")
	}
	c2.ClientAddr = netip.MustParseAddrPort("10.0.0.1:40000")
	if NewKey(c1, Default).Compatible(NewKey(c2, Default)) {
		t.Error("IsolateClientAddr must isolate client addresses")
	}
	c2.ClientAddr = netip.MustParseAddrPort("[::ffff:127.0.0.1]:40000")
	if NewKey(c1, Default) != NewKey(c2, Default) {
		t.Error("IPv4-mapped client address must equal IPv4")
	}
}

// TestBindingCTorSemantics follows connection_edge_compatible_with_circuit:
// the new stream's flags decide, and mixed fields exclude later streams
// that isolate on them.
func TestBindingCTorSemantics(t *testing.T) {
	strict := Default | IsolateDestAddr
	a, b := info(), info()
	a.SessionGroup, b.SessionGroup = 1, 1
	b.DestAddr = "other.example"
	ka, kbLoose, kbStrict := NewKey(a, strict), NewKey(b, Default), NewKey(b, strict)

	var bind Binding
	if !bind.Compatible(ka) {
		t.Fatal("unbound circuit must accept anything")
	}
	bind.Attach(ka)
	if bind.Compatible(kbStrict) {
		t.Fatal("strict stream to another destination must not attach")
	}
	if !bind.Compatible(kbLoose) {
		t.Fatal("stream whose listener does not isolate destinations may attach (C tor)")
	}
	bind.Attach(kbLoose)
	if bind.Mixed() != IsolateDestAddr {
		t.Fatalf("mixed = %v", bind.Mixed())
	}
	if bind.Compatible(NewKey(a, strict)) {
		t.Fatal("after mixing destinations, a destination-isolated stream must not attach even with the first value")
	}
	if !bind.Compatible(NewKey(a, Default)) {
		t.Fatal("loose stream may still attach")
	}
	bind.Clear()
	if bind.IsSet() {
		t.Fatal("Clear")
	}
}

func TestProjectMatchesBinding(t *testing.T) {
	a, b := info(), info()
	b.DestAddr = "x.example"
	f := Default | IsolateDestPort
	ka, kb := NewKey(a, f), NewKey(b, f)
	if ka.Project(f) != kb.Project(f) {
		t.Fatal("keys differing only outside f must project equal")
	}
	g := f | IsolateDestAddr
	if NewKey(a, g).Project(g) == NewKey(b, g).Project(g) {
		t.Fatal("keys differing inside f must project differently")
	}
}

func TestTagHidesSecrets(t *testing.T) {
	i := info()
	i.Username, i.Password = []byte("alice"), []byte("hunter2")
	k := NewKey(i, Default)
	if len(k.Tag()) != 8 {
		t.Fatalf("Tag %q", k.Tag())
	}
	s := k.String()
	for _, secret := range []string{"alice", "hunter2", "example", "127.0.0.1", "443", "40000"} {
		if strings.Contains(s, secret) {
			t.Fatalf("String %q leaks %q", s, secret)
		}
	}
	i.Username = []byte("bob")
	if NewKey(i, Default).Tag() == k.Tag() {
		t.Fatal("tags should differ")
	}
}

func TestNewKeyDoesNotAllocate(t *testing.T) {
	i := info()
	i.Username, i.Password = []byte("alice"), []byte("hunter2")
	n := testing.AllocsPerRun(100, func() { _ = NewKey(i, Default|IsolateDestAddr) })
	if n != 0 {
		t.Fatalf("NewKey allocates %v times", n)
	}
	i.Username, i.Password, i.ExtFormat = []byte("<torS0X>0"), []byte("x"), 0
	if n := testing.AllocsPerRun(100, func() { _ = NewKey(i, Default) }); n != 0 {
		t.Fatalf("NewKey (prop 351) allocates %v times", n)
	}
}

func TestLongInputs(t *testing.T) {
	i := info()
	i.DestAddr = strings.Repeat("a", 1000)
	i.Username = []byte(strings.Repeat("u", 1000))
	j := i
	j.DestAddr = strings.Repeat("a", 999) + "b"
	f := Default | IsolateDestAddr
	if NewKey(i, f).Compatible(NewKey(j, f)) {
		t.Fatal("long destinations must still be compared")
	}
	if NewKey(i, f) != NewKey(i, f) {
		t.Fatal("determinism")
	}
}

func BenchmarkNewKey(b *testing.B) {
	i := info()
	i.Username, i.Password = []byte("alice"), []byte("hunter2")
	b.ReportAllocs()
	for b.Loop() {
		_ = NewKey(i, Default|IsolateDestAddr)
	}
}

func BenchmarkNewKeyNoAuth(b *testing.B) {
	i := info()
	b.ReportAllocs()
	for b.Loop() {
		_ = NewKey(i, Default)
	}
}
