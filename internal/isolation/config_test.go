package isolation

import "testing"

func TestParseLevel(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Level
		bad  bool
	}{
		{"", LevelNone, false},
		{"none", LevelNone, false},
		{"destination", LevelDestination, false},
		{"Credential", LevelCredential, false},
		{"credentials", LevelCredential, false},
		{"port", LevelPort, false},
		{"session", LevelSession, false},
		{"destination,credential", LevelDestination | LevelCredential, false},
		{"port + session", LevelPort | LevelSession, false},
		{"none,port", 0, true},
		{"circuit", 0, true},
	} {
		got, err := ParseLevel(c.in)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("ParseLevel(%q) = %v, %v", c.in, got, err)
		}
	}
	if s := (LevelDestination | LevelPort).String(); s != "destination,port" {
		t.Errorf("String = %q", s)
	}
}

func TestFlagsFromConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want Flags
		bad  bool
	}{
		{"off", Config{IsolationLevel: "none"}, Always, false},
		{"empty is none", Config{}, Always, false},
		{"C tor default", Config{IsolationLevel: "none", IsolateSOCKSAuth: true}, Default, false},
		{"example 1 destination", Config{IsolationLevel: "destination", IsolateDestinations: true},
			Always | IsolateClientAddr | IsolateDestAddr | IsolateDestPort, false},
		{"example 2 credential", Config{IsolationLevel: "credential", IsolateSOCKSAuth: true}, Default, false},
		{"example 3 port", Config{IsolationLevel: "port", IsolateClientPort: true},
			Always | IsolateClientAddr | IsolateClientPort, false},
		{"session only is off plus tokens", Config{IsolationLevel: "session"}, Always, false},
		{"NoIsolateClientAddr", Config{IsolateSOCKSAuth: true, NoIsolateClientAddr: true},
			Always | IsolateSOCKSAuth, false},
		{"port forces addr", Config{IsolateClientPort: true, NoIsolateClientAddr: true},
			Always | IsolateClientAddr | IsolateClientPort, false},
		{"protocol", Config{IsolateClientProtocol: true}, Always | IsolateClientAddr | IsolateClientProtocol, false},
		{"keepalive", Config{IsolateSOCKSAuth: true, KeepAliveIsolateSOCKSAuth: true}, Default | KeepAliveIsolateSOCKSAuth, false},
		{"keepalive without auth", Config{KeepAliveIsolateSOCKSAuth: true}, 0, true},
		{"bad level", Config{IsolationLevel: "bogus"}, 0, true},
		{"combined", Config{IsolationLevel: "destination,credential,port"},
			Default | IsolateDestAddr | IsolateDestPort | IsolateClientPort, false},
	} {
		got, err := FlagsFromConfig(c.cfg)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("%s: FlagsFromConfig = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

func TestSocksPortOptions(t *testing.T) {
	o := DefaultListenerOptions()
	for _, w := range []string{"IsolateDestAddrs", "isolatedestport", "NoIsolateClientAddr", "SessionGroup=4", "KeepAliveIsolateSOCKSAuth", "IsolateClientPort"} {
		ok, err := o.ApplySocksPortOption(w)
		if !ok || err != nil {
			t.Fatalf("%s: %v %v", w, ok, err)
		}
	}
	if ok, _ := o.ApplySocksPortOption("IPv6Traffic"); ok {
		t.Fatal("IPv6Traffic is not an isolation option")
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	want := IsolateSOCKSAuth | IsolateDestAddr | IsolateDestPort | IsolateClientPort | KeepAliveIsolateSOCKSAuth | Always
	if o.Flags != want || o.SessionGroup != 4 {
		t.Fatalf("got %v group %d", o.Flags, o.SessionGroup)
	}
	if _, err := o.ApplySocksPortOption("SessionGroup=5"); err == nil {
		t.Fatal("second SessionGroup must fail")
	}
	p := DefaultListenerOptions()
	p.ApplySocksPortOption("NoIsolateSOCKSAuth")
	p.ApplySocksPortOption("KeepAliveIsolateSOCKSAuth")
	if p.Validate() == nil {
		t.Fatal("NoIsolateSOCKSAuth + KeepAlive must fail as in C tor")
	}
	if _, err := p.ApplySocksPortOption("SessionGroup=x"); err == nil {
		t.Fatal("bad group")
	}
}
