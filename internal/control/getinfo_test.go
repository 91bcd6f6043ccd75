package control

import (
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The GETINFO keys nyx, stem and Tor Browser read, in C tor's formats.
func TestGetInfoKeys(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.BWInterval = 10 * time.Millisecond })
	c := ts.authed(t)
	A, E, F := strings.Repeat("A", 40), strings.Repeat("E", 40), strings.Repeat("F", 40)
	md := []string{"onion-key", "-----BEGIN RSA PUBLIC KEY-----", "MIGJ", "-----END RSA PUBLIC KEY-----", "ntor-onion-key x"}
	u, _ := user.Current()
	for _, tt := range []struct {
		key  string
		want []string
	}{
		{"entry-guards", []string{"250+entry-guards=", "$" + A + "~guard1 up", "$" + E + "~guard2 down 2026-11-27 02:00:00", "$" + F + " never-connected", ".", "250 OK"}},
		{"orconn-status", []string{"250-orconn-status=$" + A + "~guard1 CONNECTED", "250 OK"}},
		{"md/id/" + A, append(append([]string{"250+md/id/" + A + "="}, md...), ".", "250 OK")},
		{"md/id/$" + strings.ToLower(A) + "~guard1", append(append([]string{"250+md/id/$" + strings.ToLower(A) + "~guard1="}, md...), ".", "250 OK")},
		{"md/name/guard1", append(append([]string{"250+md/name/guard1="}, md...), ".", "250 OK")},
		{"md/id/" + E, []string{`552 Unrecognized key "md/id/` + E + `"`}},
		{"md/id/nothex", []string{`552 Unrecognized key "md/id/nothex"`}},
		{"md/all", append(append(append([]string{"250+md/all="}, md...), md...), ".", "250 OK")},
		{"status/version/current", []string{"250-status/version/current=recommended", "250 OK"}},
		{"status/version/recommended", []string{"250-status/version/recommended=0.4.8.10,0.4.9.0-gotor", "250 OK"}},
		{"network-liveness", []string{"250-network-liveness=up", "250 OK"}},
		{"ns/purpose/bridge", []string{"250-ns/purpose/bridge=", "250 OK"}},
		{"exit-policy/full", []string{"551 Not running in server mode"}},
		{"exit-policy/default", []string{"250-exit-policy/default=reject *:25,reject *:119,reject *:135-139,reject *:445,reject *:563,reject *:1214,reject *:4661-4666,reject *:6346-6429,reject *:6699,reject *:6881-6999,accept *:*", "250 OK"}},
		{"process/pid", []string{"250-process/pid=" + strconv.Itoa(os.Getpid()), "250 OK"}},
		{"process/uid", []string{"250-process/uid=" + strconv.Itoa(os.Geteuid()), "250 OK"}},
		{"process/user", []string{"250-process/user=" + u.Username, "250 OK"}},
		{"status/enough-dir-info", []string{"250-status/enough-dir-info=1", "250 OK"}},
	} {
		expect(t, c.do("GETINFO "+tt.key), tt.want...)
	}
	for key, re := range map[string]string{
		"process/descriptor-limit": `^250-process/descriptor-limit=[1-9][0-9]*$`,
		"uptime":                   `^250-uptime=[0-9]+$`,
		"current-time/utc":         `^250-current-time/utc=20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]$`,
		"current-time/local":       `^250-current-time/local=20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]$`,
	} {
		r := c.do("GETINFO " + key)
		if len(r) != 2 || !regexp.MustCompile(re).MatchString(r[0]) || r[1] != "250 OK" {
			t.Errorf("GETINFO %s: %q", key, r)
		}
	}
	// bw-event-cache: the BW samples so far, oldest first.
	ts.b.read.Store(1000)
	ts.b.written.Store(50)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.do("GETINFO bw-event-cache")
		if regexp.MustCompile(`^250-bw-event-cache=(0,0 )*1000,50( 0,0)*$`).MatchString(r[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bw-event-cache %q", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var b bwCache
	for i := 0; i < bwCacheLen+5; i++ {
		b.add(uint64(i), 1)
	}
	if s := strings.Fields(b.String()); len(s) != bwCacheLen || s[0] != "5,1" || s[len(s)-1] != "304,1" {
		t.Errorf("bw cache keeps %d samples, first %q last %q", len(s), s[0], s[len(s)-1])
	}
	r := c.do("GETINFO info/names")
	for _, k := range []string{"entry-guards", "md/id/*", "bw-event-cache", "uptime", "status/version/current"} {
		if !strings.Contains(strings.Join(r, "\n"), "\n"+k+"\n") {
			t.Errorf("info/names lacks %s", k)
		}
	}
}
