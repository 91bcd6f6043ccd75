package control

import (
	"bytes"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// SETCONF/RESETCONF replies (control-spec §3.1, C tor's
// control_setconf_helper): each class of error has its code, and the
// connection stays usable after every one.
func TestSetConfReplies(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	for _, tt := range []struct{ cmd, want string }{
		{"SETCONF DataDirectory=/elsewhere", "553 Transition not allowed: While Tor is running, changing DataDirectory is not allowed"},
		{"SETCONF SocksPort=invalid", `553 Unable to set option: SocksPort "invalid" does not validate`},
		{"SETCONF SocksPort=bad", `513 Unacceptable option value: value "bad": invalid configuration value`},
		{"SETCONF NoSuch=1", `552 Unrecognized option: Unknown option "NoSuch": unrecognized key`},
		{"RESETCONF NoSuch", `552 Unrecognized option: Unknown option "NoSuch": unrecognized key`},
		{`SETCONF SocksPort="9050`, "512 Bad arguments to SETCONF: Cannot parse keyword argument(s)"},
		{`SETCONF SocksPort=9"050`, "512 Bad arguments to SETCONF: Cannot parse keyword argument(s)"},
		{`SETCONF "SocksPort"=1`, "512 Bad arguments to SETCONF: Cannot parse keyword argument(s)"},
		{`SETCONF =1`, "512 Bad arguments to SETCONF: Cannot parse keyword argument(s)"},
		{`SETCONF SocksPort="a"b`, "512 Bad arguments to SETCONF: Cannot parse keyword argument(s)"},
		{"SETCONF", "250 OK"},
		{`SETCONF SocksPort="127.0.0.1:9 IsolateDestAddr" ExitNodes`, "250 OK"},
	} {
		expect(t, c.do(tt.cmd), tt.want)
		expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	}
	expect(t, c.do("GETCONF SocksPort ExitNodes DataDirectory"), "250-SocksPort=127.0.0.1:9 IsolateDestAddr", "250-ExitNodes",
		"250 DataDirectory=/tmp/gotor")
}

func TestLoadConf(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	loadconf := func(lines ...string) []string {
		c.send("+LOADCONF")
		for _, l := range lines {
			c.send(l)
		}
		c.send(".")
		return c.readReply()
	}
	// CmdData is dot-decoded (control-spec §2.4) before the backend sees it.
	expect(t, loadconf("SocksPort 1", "..dotted 2"), `552 Invalid config file: Unknown option ".dotted": unrecognized key`)
	expect(t, loadconf("SocksPort 9150", "ExitNodes $AA"), "250 OK")
	expect(t, c.do("GETCONF SocksPort ExitNodes"), "250-SocksPort=9150", "250 ExitNodes=$AA")
	expect(t, loadconf("DataDirectory /x"), "553 Transition not allowed: While Tor is running, changing DataDirectory is not allowed")
	expect(t, loadconf("SocksPort bad"), `552 Invalid config file: value "bad": invalid configuration value`)
	expect(t, loadconf("SocksPort invalid"), `553 Unable to set option: SocksPort "invalid" does not validate`)
	c.send("+LOADCONF extra")
	c.send(".")
	expect(t, c.readReply(), "512 Bad arguments to +LOADCONF: Cannot accept more than 0 argument(s)")
	// LOADCONF without "+" is not a command; its data lines are then
	// commands of their own.
	expect(t, c.do("LOADCONF"), `510 Unrecognized command "LOADCONF"`)
	ts.b.mu.Lock()
	loaded := slices.Clone(ts.b.loaded)
	ts.b.mu.Unlock()
	if len(loaded) != 5 || loaded[0] != "SocksPort 1\n.dotted 2" {
		t.Errorf("backend got %q", loaded)
	}
}

func TestSaveConf(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	expect(t, c.do("GETINFO config-can-saveconf"), "250-config-can-saveconf=1", "250 OK")
	expect(t, c.do("SAVECONF"), "250 OK")
	ts.b.mu.Lock()
	ts.b.include = true
	ts.b.mu.Unlock()
	expect(t, c.do("GETINFO config-can-saveconf"), "250-config-can-saveconf=0", "250 OK")
	expect(t, c.do("SAVECONF"), "551 Unable to write configuration to disk.")
	expect(t, c.do("SAVECONF force"), "250 OK")
	expect(t, c.do("SAVECONF NOW"), `512 Bad arguments to SAVECONF: Unrecognized argument "NOW"`)
	if ts.b.saved != 2 {
		t.Errorf("backend saved %d times, want 2", ts.b.saved)
	}
	expect(t, c.do("GETINFO config-text"), "250+config-text=", "SocksPort 127.0.0.1:9050", "DataDirectory /tmp/gotor", ".", "250 OK")
	expect(t, c.do("GETINFO config/defaults"), "250+config/defaults=", "SocksPort 127.0.0.1:9050", "MaxCircuitDirtiness 600", ".", "250 OK")
}

// Reconfigure opens and closes listeners while connections stay up, and
// changes authentication for later connections.
func TestReconfigure(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "port")
	ts := startServer(t, func(c *Config) { c.PortWriteToFile = pf })
	first := ts.authed(t)
	cfg := ts.s.cfg
	sock := filepath.Join(dir, "ctl.sock")
	cfg.Listeners = append(slices.Clone(cfg.Listeners), ListenerConfig{Unix: sock})
	if err := ts.s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if addrs := ts.s.Addrs(); len(addrs) != 2 || addrs[0].String() != ts.addr {
		t.Fatalf("listeners %v", addrs)
	}
	b, _ := os.ReadFile(pf)
	if want := "PORT=" + ts.addr + "\nUNIX_PORT=" + sock + "\n"; string(b) != want {
		t.Errorf("port file %q, want %q", b, want)
	}
	u := dialClient(t, "unix", sock)
	expect(t, u.do(`AUTHENTICATE "foo"`), "250 OK")
	expect(t, first.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")

	// Drop the TCP listener and the password, turn cookies off: the
	// connections made before stay usable; new ones need the new settings.
	cfg.Listeners = []ListenerConfig{{Unix: sock}}
	cfg.HashedControlPassword = []string{torHashFoo, HashPassword("bar")}
	cfg.CookieAuthentication = false
	if err := ts.s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("dropped TCP listener still accepts")
	}
	expect(t, first.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	expect(t, u.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	u2 := dialClient(t, "unix", sock)
	r := u2.do("PROTOCOLINFO")
	if r[1] != "250-AUTH METHODS=HASHEDPASSWORD" {
		t.Errorf("PROTOCOLINFO after reconfiguring: %q", r)
	}
	expect(t, u2.do(`AUTHENTICATE "bar"`), "250 OK")
	b, _ = os.ReadFile(pf)
	if want := "UNIX_PORT=" + sock + "\n"; string(b) != want {
		t.Errorf("port file %q, want %q", b, want)
	}

	// Cookies back on: a new cookie is written and works.
	old, _ := os.ReadFile(filepath.Join(ts.dir, "control_auth_cookie"))
	cfg.CookieAuthentication = true
	if err := ts.s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	cookie, err := os.ReadFile(filepath.Join(ts.dir, "control_auth_cookie"))
	if err != nil || len(cookie) != 32 || bytes.Equal(cookie, old) {
		t.Fatalf("cookie not rewritten: %x (old %x) %v", cookie, old, err)
	}
	u3 := dialClient(t, "unix", sock)
	expect(t, u3.do("AUTHENTICATE "+strings.ToUpper(hex.EncodeToString(cookie))), "250 OK")

	// Errors change nothing: a listener that cannot open, no auth method.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bad := cfg
	bad.Listeners = []ListenerConfig{{Addr: "127.0.0.1:0"}, {Addr: l.Addr().String()}}
	if err := ts.s.Reconfigure(bad); err == nil {
		t.Error("listening on a busy port succeeded")
	}
	bad = cfg
	bad.CookieAuthentication, bad.HashedControlPassword = false, nil
	if err := ts.s.Reconfigure(bad); err == nil {
		t.Error("no authentication method accepted")
	}
	bad = cfg
	bad.Listeners = []ListenerConfig{{Addr: "0.0.0.0:0"}}
	if err := ts.s.Reconfigure(bad); err == nil {
		t.Error("non-loopback listener accepted")
	}
	if addrs := ts.s.Addrs(); len(addrs) != 1 || addrs[0].String() != sock {
		t.Errorf("failed Reconfigure changed the listeners: %v", addrs)
	}
	expect(t, u3.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
}
