package engine

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/control"
)

// SETCONF, SAVECONF and LOADCONF on an engine that is not started (no
// network needed): the torrc written reads back to the configuration in
// force, a hand-written torrc is kept as torrc.orig.1, %include needs
// FORCE, and CONF_CHANGED names what changed.
func TestSaveConfAndLoadConf(t *testing.T) {
	dir := t.TempDir()
	torrc := filepath.Join(dir, "torrc")
	orig := "# my torrc\nDataDirectory " + filepath.Join(dir, "data") + "\nSocksPort 9150\n"
	os.WriteFile(torrc, []byte(orig), 0o600)
	args := []string{"-f", torrc, "--SafeSocks", "1"}
	cfg, _, err := config.Load("", args)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.SetConfigSource(ConfigSource{
		File: torrc,
		Load: func() (*config.Config, []config.Warning, error) { return config.Load("", args) },
		LoadText: func(text string) (*config.Config, []config.Warning, error) {
			return config.LoadString(text, "LOADCONF", args)
		},
	})
	var events []control.Event
	unsub := controlBackend{e}.Subscribe(func(ev control.Event) { events = append(events, ev) })
	defer unsub()

	if err := e.SetConf([]config.Change{{Key: "MaxCircuitDirtiness", Values: []string{"5 minutes"}},
		{Key: "ExitNodes", Values: []string{"exitA,exitB"}}, {Key: "__OwningControllerProcess", Values: []string{"1"}}}); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || !slices.Equal(events[0].Conf, []string{"ExitNodes=exitA,exitB", "MaxCircuitDirtiness=300", "__OwningControllerProcess=1"}) {
		t.Errorf("CONF_CHANGED: %+v", events)
	}
	if !e.canSaveConf() {
		t.Error("config-can-saveconf is 0 for a plain torrc")
	}
	if err := e.SaveConf(false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(torrc + ".orig.1"); string(b) != orig {
		t.Errorf("backup %q", b)
	}
	saved, _ := os.ReadFile(torrc)
	if !strings.HasPrefix(string(saved), generatedPrefix+"\n") || strings.Contains(string(saved), "__") {
		t.Errorf("saved torrc:\n%s", saved)
	}
	back, _, err := config.Load(torrc, nil)
	if err != nil {
		t.Fatalf("saved torrc does not load: %v\n%s", err, saved)
	}
	want := e.Config().Clone()
	want.OwningControllerProcess = 0 // "__" options are not saved
	if back.MaxCircuitDirtiness != 5*time.Minute || !back.SafeSocks || back.SocksPorts[0].Addr != "127.0.0.1:9150" ||
		!slices.Equal(back.ExitNodes, []string{"exitA", "exitB"}) || back.OwningControllerProcess != 0 {
		t.Errorf("saved torrc loads as %+v", back)
	}
	if back.Text() != want.Text() {
		t.Errorf("saved and running configurations differ:\n%s\n--\n%s", back.Text(), want.Text())
	}
	// A second SAVECONF replaces gotor's own file without a new backup.
	os.Remove(torrc + ".orig.1")
	if err := e.SaveConf(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(torrc + ".orig.1"); !errors.Is(err, os.ErrNotExist) {
		t.Error("gotor's own torrc was backed up")
	}

	// LOADCONF: the text replaces the torrc, the command line still applies.
	events = nil
	if err := e.LoadConf("DataDirectory " + filepath.Join(dir, "data") + "\nSocksPort 9250\n"); err != nil {
		t.Fatal(err)
	}
	c := e.Config()
	if c.SocksPorts[0].Addr != "127.0.0.1:9250" || !c.SafeSocks || c.MaxCircuitDirtiness != config.DefaultMaxCircuitDirtiness || c.ExitNodes != nil {
		t.Errorf("after LOADCONF: %+v", c)
	}
	if len(events) != 1 || !slices.Contains(events[0].Conf, "SocksPort=127.0.0.1:9250") || !slices.Contains(events[0].Conf, "ExitNodes") {
		t.Errorf("CONF_CHANGED after LOADCONF: %+v", events)
	}
	for _, bad := range []struct {
		text string
		kind error
	}{
		{"SocksPort 9250\nNoSuch 1\n", control.ErrInvalidValue}, // 552 Invalid config file, as a bad value
		{"DataDirectory " + filepath.Join(dir, "data") + "\nSocksPort nine\n", control.ErrInvalidValue},
		{"DataDirectory /elsewhere\n", control.ErrTransition},
		{"\"unterminated\n", control.ErrInvalidValue},
	} {
		if err := e.LoadConf(bad.text); !errors.Is(err, bad.kind) {
			t.Errorf("LOADCONF %q: %v, want %v", bad.text, err, bad.kind)
		}
	}
	if !reflect.DeepEqual(e.Config(), c) {
		t.Error("a refused LOADCONF changed the configuration")
	}

	// %include: SAVECONF needs FORCE.
	os.WriteFile(torrc, []byte("%include "+filepath.Join(dir, "other")+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "other"), nil, 0o600)
	if e.canSaveConf() {
		t.Error("config-can-saveconf is 1 for a torrc with %include")
	}
	if err := e.SaveConf(false); err == nil {
		t.Error("SAVECONF overwrote a torrc with %include")
	}
	if err := e.SaveConf(true); err != nil {
		t.Errorf("SAVECONF FORCE: %v", err)
	}

	// Without -f there is nothing to write.
	e2, err := New(cfg.Clone(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.SaveConf(true); err == nil {
		t.Error("SAVECONF without a torrc succeeded")
	}
}

// Options gotor cannot change while running are refused, and a SETCONF
// of another option keeps the hosted onion services' configuration.
func TestImmutableOptions(t *testing.T) {
	dir := t.TempDir()
	auth := "auth0 orport=5000 no-v2 v3ident=0123456789ABCDEF0123456789ABCDEF01234567 127.0.0.1:7000 0123456789ABCDEF0123456789ABCDEF01234567"
	text := "DataDirectory " + filepath.Join(dir, "data") + "\nHiddenServiceDir " + filepath.Join(dir, "hs") +
		"\nHiddenServicePort 80 127.0.0.1:8080\nSocksPort 0\nTestingTorNetwork 1\nDirAuthority " + auth + "\n"
	cfg, _, err := config.LoadString(text, "torrc", nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []config.Change{
		{Key: "DataDirectory", Values: []string{filepath.Join(dir, "other")}},
		{Key: "TestingTorNetwork", Values: []string{"0"}},
		{Key: "DirAuthority", Values: []string{auth, strings.Replace(auth, "auth0", "auth1", 1)}},
		{Key: "ClientOnionAuthDir", Values: []string{dir}},
		{Key: "HiddenServiceDir", Reset: true},
	} {
		if err := e.SetConf([]config.Change{ch}); !errors.Is(err, control.ErrTransition) {
			t.Errorf("SETCONF %s: %v, want a transition error", ch.Key, err)
		}
	}
	// The HiddenService* lines are one group (C tor's HiddenServiceOptions):
	// a new block replaces the old, which is a transition too.
	block := []config.Change{{Key: "HiddenServiceDir", Values: []string{filepath.Join(dir, "hs")}},
		{Key: "HiddenServicePort", Values: []string{"81 127.0.0.1:8081"}}}
	if err := e.SetConf(block); !errors.Is(err, control.ErrTransition) {
		t.Errorf("SETCONF of a new service block: %v, want a transition error", err)
	}
	if err := e.SetConf([]config.Change{{Key: "MaxCircuitDirtiness", Values: []string{"60"}}}); err != nil {
		t.Fatal(err)
	}
	if s := e.Config().OnionServices; len(s) != 1 || s[0].Ports[0].Target != "127.0.0.1:8080" {
		t.Errorf("onion services after SETCONF: %+v", s)
	}
}

// C tor's tor_version_is_obsolete verdicts.
func TestVersionStatus(t *testing.T) {
	for _, tt := range []struct {
		rec  []string
		want string
	}{
		{nil, "none recommended"},
		{[]string{"0.4.8.10", "0.4.9.0-gotor"}, "recommended"},
		{[]string{"0.4.9.1", "0.4.9.2"}, "obsolete"},
		{[]string{"0.4.7.1", "0.4.8.10"}, "new"},
		{[]string{"0.4.8.10", "0.4.9.0-alpha", "0.5.0.1"}, "new in series"}, // newer than the series' only entry
		{[]string{"0.4.9.1", "0.4.8.10"}, "unrecommended"},
		{[]string{"0.4.8.1", "0.5.0.1"}, "unrecommended"},
		{[]string{"Tor 0.4.9.0-gotor"}, "recommended"},
		{[]string{"garbage"}, "unrecommended"},
	} {
		if got := versionStatus(TorVersion, tt.rec); got != tt.want {
			t.Errorf("versionStatus(%q) = %q, want %q", tt.rec, got, tt.want)
		}
	}
	if got := versionStatus("0.4.9.5", []string{"0.4.9.3", "0.5.0.1"}); got != "new in series" {
		t.Errorf("new in series: %q", got)
	}
}

// A directory bootstrap that fails shows in status/bootstrap-phase as a
// WARN with C tor's fields until the bootstrap moves on.
func TestBootstrapProblemReported(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there: connections are refused
	cfg := config.DefaultConfig()
	cfg.DataDirectory = t.TempDir()
	cfg.UseTestingTorNetwork()
	cfg.DirAuthorities = []string{"auth0 orport=" + strings.Split(addr, ":")[1] + " no-v2 v3ident=0123456789ABCDEF0123456789ABCDEF01234567 " + addr + " 0123456789ABCDEF0123456789ABCDEF01234567"}
	cfg.SocksPorts = nil
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var events []control.Event
	var mu sync.Mutex
	defer controlBackend{e}.Subscribe(func(ev control.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() })()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Start(ctx) }()
	defer func() { cancel(); <-done; e.Stop() }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		bs := controlBackend{e}.BootstrapStatus()
		if bs.Warning != "" {
			if bs.Reason != "CONNECTREFUSED" || bs.Count < 1 || bs.Recommendation != "ignore" {
				t.Errorf("bootstrap problem %+v", bs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bootstrap problem reported: %+v", bs)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, ev := range events {
		if ev.Type == control.EventStatusClient && ev.Status.Severity == "WARN" && strings.Contains(ev.Status.Args, "REASON=CONNECTREFUSED") {
			found = true
		}
	}
	if !found {
		t.Error("no STATUS_CLIENT WARN BOOTSTRAP event")
	}
}
