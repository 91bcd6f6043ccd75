package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dated = `{"schema_version":"1.3.1","id":"GO-2024-0001","modified":"2024-05-01T00:00:00Z","published":"2024-04-01T00:00:00Z",
"affected":[{"package":{"name":"example.com/a","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]},
{"package":{"name":"example.com/a","ecosystem":"Go"}},{"package":{"name":"stdlib","ecosystem":"Go"}}]}`

const undated = `{"schema_version":"1.3.1","id":"GO-2026-0002","modified":"0001-01-01T00:00:00Z","published":"0001-01-01T00:00:00Z",
"aliases":["CVE-2026-1"],"summary":"s","affected":[{"package":{"name":"example.com/a","ecosystem":"Go"}}]}`

func TestBuild(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "db")
	for name, s := range map[string]string{"GO-2024-0001.json": dated, "GO-2026-0002.json": undated, "README.md": "x"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	st, err := build(src, out, when)
	if err != nil {
		t.Fatal(err)
	}
	if st.entries != 2 || st.modules != 2 || !st.modified.Equal(when) {
		t.Errorf("stats %+v", st)
	}
	read := func(name string, v any) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var db dbMeta
	read("index/db.json", &db)
	if !db.Modified.Equal(when) {
		t.Errorf("db.json modified %v, want %v", db.Modified, when)
	}
	var mods []moduleMeta
	read("index/modules.json", &mods)
	if len(mods) != 2 || mods[0].Path != "example.com/a" || mods[1].Path != "stdlib" ||
		len(mods[0].Vulns) != 2 || mods[0].Vulns[0].ID != "GO-2024-0001" || mods[0].Vulns[1].ID != "GO-2026-0002" {
		t.Errorf("modules.json: %+v", mods)
	}
	var e map[string]any
	read("ID/GO-2026-0002.json", &e)
	if e["modified"] != "2026-11-05T23:49:57Z" || e["published"] != "2026-11-05T23:49:57Z" || e["summary"] != "s" {
		t.Errorf("undated entry: %v", e)
	}
	read("ID/GO-2024-0001.json", &e)
	if e["modified"] != "2024-05-01T00:00:00Z" {
		t.Errorf("dated entry changed: %v", e)
	}
	var vulns []vulnMeta
	read("index/vulns.json", &vulns)
	if len(vulns) != 2 || vulns[1].Aliases[0] != "CVE-2026-1" {
		t.Errorf("vulns.json: %+v", vulns)
	}

	if _, err := build(t.TempDir(), filepath.Join(t.TempDir(), "db"), when); err == nil {
		t.Error("build of an empty directory succeeded")
	}
	os.WriteFile(filepath.Join(src, "GO-2026-0003.json"), []byte(undated), 0o644)
	if _, err := build(src, filepath.Join(t.TempDir(), "db"), when); err == nil {
		t.Error("build accepted an entry whose id is not its file name")
	}
}

const config = `{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scanner_version":"v1.9.0","db":"file:///db","db_last_modified":"2026-11-05T23:49:57Z","go_version":"go1.26.8","scan_level":"symbol"}}
{"osv":{"id":"GO-2026-6809","summary":"std called"}}
{"finding":{"osv":"GO-2026-6809","fixed_version":"v1.26.10","trace":[{"module":"stdlib","version":"v1.26.8"}]}}
{"finding":{"osv":"GO-2026-6809","fixed_version":"v1.26.10","trace":[{"module":"stdlib","version":"v1.26.8","package":"crypto/x509"}]}}
{"finding":{"osv":"GO-2026-6809","fixed_version":"v1.26.10","trace":[{"module":"stdlib","version":"v1.26.8","package":"crypto/x509","function":"Verify","receiver":"*Certificate"},
 {"module":"github.com/gotor/gotor","package":"github.com/gotor/gotor/internal/channel","function":"Dial","position":{"filename":"internal/channel/channel.go","line":209}}]}}
{"finding":{"osv":"GO-2099-0001","fixed_version":"v0.99.0","trace":[{"module":"golang.org/x/net","version":"v0.62.0","package":"golang.org/x/net/html"}]}}
`

func TestReport(t *testing.T) {
	var out strings.Builder
	fail, err := report(strings.NewReader(config), &out)
	if err != nil || fail {
		t.Fatalf("stdlib call and imported-only module package: fail %v, err %v\n%s", fail, err, out.String())
	}
	for _, want := range []string{
		"last modified 2026-11-05T23:49:57Z",
		"2 findings: 1 in the Go standard library",
		"GO-2026-6809 crypto/x509 in stdlib@v1.26.8 (fixed in v1.26.10): CALLED by gotor's code: std called",
		"example: channel.Dial (internal/channel/channel.go:209) -> x509.Certificate.Verify",
		"GO-2099-0001 golang.org/x/net/html in golang.org/x/net@v0.62.0 (fixed in v0.99.0): package imported, not called",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	called := config + `{"finding":{"osv":"GO-2099-0001","fixed_version":"v0.99.0","trace":[{"module":"golang.org/x/net","version":"v0.62.0","package":"golang.org/x/net/html","function":"Parse"},{"module":"github.com/gotor/gotor","function":"main"}]}}`
	out.Reset()
	fail, err = report(strings.NewReader(called), &out)
	if err != nil || !fail {
		t.Fatalf("called module vulnerability: fail %v, err %v\n%s", fail, err, out.String())
	}

	if _, err := report(strings.NewReader(`{"progress":{}}`), &out); err == nil {
		t.Error("report accepted output without a config message")
	}
	if _, err := report(strings.NewReader(`{"config":`), &out); err == nil {
		t.Error("report accepted truncated output")
	}
}
