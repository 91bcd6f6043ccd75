package control

import (
	"crypto/ed25519"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/onion/hscrypto"
)

// onionLabel is a valid v3 address without ".onion".
func onionLabel(seed byte) string {
	pub := ed25519.NewKeyFromSeed(slices.Repeat([]byte{seed}, 32)).Public().(ed25519.PublicKey)
	var a hscrypto.Address
	copy(a.PubKey[:], pub)
	return a.Label()
}

// Each command's replies for good and malformed input, as C tor gives
// them (control_cmd.c, control_hs.c); after every reply the connection
// still answers.
func TestCommandReplies(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	onion := onionLabel(1)
	key := base64.StdEncoding.EncodeToString(slices.Repeat([]byte{7}, 32))
	long := strings.Repeat("x", 5000)
	for _, tt := range []struct {
		cmd  string
		want []string
	}{
		// CLOSESTREAM (§3.16)
		{"CLOSESTREAM 7 3", []string{"250 OK"}},
		{"CLOSESTREAM 7 3 SomeFlag", []string{"250 OK"}},
		{"CLOSESTREAM 8 3", []string{`552 Unknown stream "8"`}},
		{"CLOSESTREAM x 3", []string{`552 Unknown stream "x"`}},
		{"CLOSESTREAM 7 256", []string{`552 Unrecognized reason "256"`}},
		{"CLOSESTREAM 7 done", []string{`552 Unrecognized reason "done"`}},
		{"CLOSESTREAM 7", []string{"512 Bad arguments to CLOSESTREAM: Need at least 2 argument(s)"}},
		// CLOSECIRCUIT (§3.17)
		{"CLOSECIRCUIT 1", []string{"250 OK"}},
		{"CLOSECIRCUIT 2 IfUnused", []string{"250 OK"}},
		{"CLOSECIRCUIT 2 IfUnused Other=1", []string{"250 OK"}},
		{"CLOSECIRCUIT 3", []string{`552 Unknown circuit "3"`}},
		{"CLOSECIRCUIT -1", []string{`552 Unknown circuit "-1"`}},
		{"CLOSECIRCUIT 4294967296", []string{`552 Unknown circuit "4294967296"`}},
		{"CLOSECIRCUIT", []string{"512 Bad arguments to CLOSECIRCUIT: Need at least 1 argument(s)"}},
		{`CLOSECIRCUIT 1 "IfUnused`, []string{"512 Bad arguments to CLOSECIRCUIT: Cannot parse keyword argument(s)"}},
		// SETCIRCUITPURPOSE (§3.11)
		{"SETCIRCUITPURPOSE 1 purpose=controller", []string{"250 OK"}},
		{"SETCIRCUITPURPOSE 2 PURPOSE=General", []string{"250 OK"}},
		{"SETCIRCUITPURPOSE 2 purpose=testing", []string{`552 Unknown purpose "testing"`}},
		{"SETCIRCUITPURPOSE 2", []string{"552 No purpose given"}},
		{"SETCIRCUITPURPOSE 9 purpose=general", []string{`552 Unknown circuit "9"`}},
		{"SETCIRCUITPURPOSE 1 controller", []string{"512 Bad arguments to SETCIRCUITPURPOSE: Cannot parse keyword argument(s)"}},
		{"SETCIRCUITPURPOSE", []string{"512 Bad arguments to SETCIRCUITPURPOSE: Need at least 1 argument(s)"}},
		// DROPGUARDS (§3.25), DROPTIMEOUTS (§3.34)
		{"DROPGUARDS", []string{"250 OK"}},
		{"DROPGUARDS now", []string{"512 Bad arguments to DROPGUARDS: Cannot accept more than 0 argument(s)"}},
		{"DROPTIMEOUTS", []string{"250 OK"}},
		{"DROPTIMEOUTS 1", []string{"512 Bad arguments to DROPTIMEOUTS: Cannot accept more than 0 argument(s)"}},
		// MAPADDRESS (§3.8)
		{"MAPADDRESS 1.2.3.4=torproject.org", []string{"250 1.2.3.4=torproject.org"}},
		{"MAPADDRESS 0.0.0.0=a.example .=b.example", []string{"250-127.192.0.1=a.example", "250 abcdefghijklmnop.virtual=b.example"}},
		{"MAPADDRESS xxx=@@@ 0.0.0.0=bogus1.google.com", []string{"512-syntax error: invalid address '@@@'", "250 127.192.0.1=bogus1.google.com"}},
		{"MAPADDRESS full.=c.example", []string{"451 resource exhausted: skipping 'full.=c.example'"}},
		{"MAPADDRESS a!b=c.example", []string{"512 syntax error: invalid address mapping  'a!b=c.example': bad original address"}},
		{"MAPADDRESS *.example.com=*.example.net", []string{"250 *.example.com=*.example.net"}},
		{"MAPADDRESS", []string{"512 syntax error: not enough arguments to mapaddress."}},
		{"MAPADDRESS 1.2.3.4", []string{"512 Bad arguments to MAPADDRESS: Cannot parse keyword argument(s)"}},
		{`MAPADDRESS 1.2.3.4="unterminated`, []string{"512 Bad arguments to MAPADDRESS: Cannot parse keyword argument(s)"}},
		{"GETINFO address-mappings/control", []string{"250+address-mappings/control=", "*.example.com *.example.net NEVER",
			"1.2.3.4 torproject.org NEVER", "127.192.0.1 bogus1.google.com NEVER", "abcdefghijklmnop.virtual b.example NEVER", ".", "250 OK"}},
		{"MAPADDRESS 1.2.3.4=1.2.3.4", []string{"250 1.2.3.4=1.2.3.4"}},
		{"GETINFO address-mappings/bogus", []string{`552 Unrecognized key "address-mappings/bogus"`}},
		// RESOLVE (§3.20)
		{"RESOLVE example.com fail", []string{"250 OK"}},
		{"RESOLVE mode=reverse 10.0.0.7", []string{"250 OK"}},
		{"RESOLVE", []string{"250 OK"}},
		{`RESOLVE "example.com"`, []string{"512 Bad arguments to RESOLVE: Cannot parse keyword argument(s)"}},
		// HSFETCH (§3.26)
		{"HSFETCH " + onion, []string{"250 OK"}},
		{"HSFETCH " + onion + " SERVER=" + strings.Repeat("A", 40), []string{"250 OK"}},
		{"HSFETCH " + onion + " SERVER=$" + strings.Repeat("a", 40) + "~guard1", []string{"250 OK"}},
		{"HSFETCH " + onion + " SERVER=" + strings.Repeat("B", 40), []string{`552 Server "` + strings.Repeat("B", 40) + `" not found`}},
		{"HSFETCH " + onion + " SERVER=nickname", []string{`552 Server "nickname" not found`}},
		{"HSFETCH " + onion + " OTHER=1", []string{`512 Bad arguments to HSFETCH: Unrecognized keyword argument "OTHER"`}},
		{"HSFETCH " + onion + ".onion", []string{`513 Invalid argument "` + onion + `.onion"`}},
		{"HSFETCH " + onion[:55] + "a", []string{`513 Invalid argument "` + onion[:55] + `a"`}},
		{"HSFETCH v2-gezdgnbvgy3tqolbmjrwizlgm5ugs2tl", []string{`513 Invalid argument "v2-gezdgnbvgy3tqolbmjrwizlgm5ugs2tl"`}},
		{"HSFETCH", []string{"512 Bad arguments to HSFETCH: Need at least 1 argument(s)"}},
		// ONION_CLIENT_AUTH_* (§3.30-3.32)
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + key, []string{"250 OK"}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + key + " ClientName=alice Flags=Permanent", []string{"251 Client for onion existed and replaced"}},
		{"ONION_CLIENT_AUTH_VIEW", []string{"250-ONION_CLIENT_AUTH_VIEW", "250-CLIENT " + onion + " x25519:" + key + " Flags=Permanent ClientName=alice", "250 OK"}},
		{"ONION_CLIENT_AUTH_VIEW " + onion, []string{"250-ONION_CLIENT_AUTH_VIEW " + onion, "250-CLIENT " + onion + " x25519:" + key + " Flags=Permanent ClientName=alice", "250 OK"}},
		{"ONION_CLIENT_AUTH_VIEW " + onionLabel(2), []string{"250-ONION_CLIENT_AUTH_VIEW " + onionLabel(2), "250 OK"}},
		{"ONION_CLIENT_AUTH_VIEW nonsense", []string{`512 Invalid v3 address "nonsense"`}},
		{"ONION_CLIENT_AUTH_ADD " + onion, []string{"512 Incomplete ONION_CLIENT_AUTH_ADD command"}},
		{"ONION_CLIENT_AUTH_ADD nonsense x25519:" + key, []string{`512 Invalid v3 address "nonsense"`}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519", []string{"512 Invalid key type/blob"}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " rsa1024:" + key, []string{`552 Unrecognized key type "rsa1024"`}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:AAAA", []string{"512 Failed to decode x25519 private key"}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
			[]string{`553 Invalid private key "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + key + " Flags=Permanent,Temporary", []string{`512 Invalid 'Flags' argument: "Temporary"`}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + key + " Flags=", []string{"512 Invalid 'Flags' argument"}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + key + " ClientName=" + strings.Repeat("n", 17), []string{"512 ClientName longer than 16 chars"}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + key + " ClientName=readonly", []string{`553 Unable to store creds for "` + onion + `"`}},
		{"ONION_CLIENT_AUTH_ADD " + onion + " x25519:" + key + ` ClientName="bob`, []string{"512 Bad arguments to ONION_CLIENT_AUTH_ADD: Cannot parse keyword argument(s)"}},
		{"ONION_CLIENT_AUTH_REMOVE " + onion, []string{"250 OK"}},
		{"ONION_CLIENT_AUTH_REMOVE " + onion, []string{`251 No credentials for "` + onion + `"`}},
		{"ONION_CLIENT_AUTH_REMOVE", []string{"512 Incomplete ONION_CLIENT_AUTH_REMOVE command"}},
		{"ONION_CLIENT_AUTH_REMOVE x.onion", []string{`512 Invalid v3 address "x.onion"`}},
		// Unknown keywords, commands not implemented, oversized lines.
		{"FROBNICATE", []string{`510 Unrecognized command "FROBNICATE"`}},
		{"ATTACHSTREAM 7 1", []string{"551 ATTACHSTREAM is not supported by this implementation"}},
		{"GETINFO " + long, []string{`552 Unrecognized key "` + long + `"`}},
	} {
		expect(t, c.do(tt.cmd), tt.want...)
		expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
	}
	want := []string{"CLOSESTREAM 7 3", "CLOSESTREAM 7 3", "CLOSECIRCUIT 1 false", "CLOSECIRCUIT 2 true", "CLOSECIRCUIT 2 true",
		"SETCIRCUITPURPOSE 1 CONTROLLER", "SETCIRCUITPURPOSE 2 GENERAL", "DROPGUARDS", "DROPTIMEOUTS",
		"RESOLVE [example.com fail] false", "RESOLVE [10.0.0.7] true",
		"HSFETCH " + onion + " []", "HSFETCH " + onion + " [" + strings.Repeat("A", 40) + "]", "HSFETCH " + onion + " [" + strings.Repeat("A", 40) + "]"}
	if got := ts.b.gotCalls(); !slices.Equal(got, want) {
		t.Errorf("backend calls:\n got %q\nwant %q", got, want)
	}

	// A line over the bound: 500, then the connection closes.
	c.send("GETINFO " + strings.Repeat("y", 2<<20))
	expect(t, c.readReply(), "500 Line too long.")
	c.expectClosed()
}

// The events of these commands in C tor's formats (§4.1.7 ADDRMAP,
// §4.1.16 BUILDTIMEOUT_SET, §4.1.25 HS_DESC, §4.1.26 HS_DESC_CONTENT).
func TestCommandEvents(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.authed(t)
	onion := onionLabel(3)
	expect(t, c.do("SETEVENTS ADDRMAP HS_DESC HS_DESC_CONTENT BUILDTIMEOUT_SET"), "250 OK")
	expect(t, c.do("MAPADDRESS 0.0.0.0=a.example"), "250 127.192.0.1=a.example")
	expect(t, c.do("RESOLVE example.com fail"), "250 OK")
	expect(t, c.do("RESOLVE mode=reverse 10.0.0.7"), "250 OK")
	expect(t, c.do("DROPTIMEOUTS"), "250 OK")
	expect(t, c.do("HSFETCH "+onion), "250 OK")
	local := quote(fakeExpiry.Local().Format(isoTime))
	A := "$" + strings.Repeat("A", 40)
	want := []string{
		`650 ADDRMAP 127.192.0.1 a.example NEVER CACHED="YES"`,
		`650 ADDRMAP example.com 10.0.0.7 ` + local + ` EXPIRES="2026-11-27 04:00:00" CACHED="NO" STREAMID=100`,
		`650 ADDRMAP fail <error> ` + local + ` error=yes EXPIRES="2026-11-27 04:00:00" CACHED="NO" STREAMID=101`,
		`650 ADDRMAP 10.0.0.7 host.example ` + local + ` EXPIRES="2026-11-27 04:00:00" CACHED="NO" STREAMID=100`,
		"650 BUILDTIMEOUT_SET RESET TOTAL_TIMES=0 TIMEOUT_MS=60000 XM=0 ALPHA=0.000000 CUTOFF_QUANTILE=0.800000 TIMEOUT_RATE=0.000000 CLOSE_MS=60000 CLOSE_RATE=0.000000",
		"650 HS_DESC REQUESTED " + onion + " NO_AUTH " + A + " blinded",
		"650 HS_DESC RECEIVED " + onion + " NO_AUTH " + A + " blinded",
		"650+HS_DESC_CONTENT " + onion + " blinded " + A,
		"hs-descriptor 3",
		"..dot line",
		".",
		"650 OK",
	}
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	c.waitAsync(len(want))
	if !slices.Equal(c.async, want) {
		t.Errorf("events:\n got %q\nwant %q", c.async, want)
	}
	// A failed fetch's content event: no address, empty descriptor.
	b := FormatEvent(Event{Type: EventHSDescContent, HSDescContent: &HSDescContentEvent{}})
	if string(b) != "650+HS_DESC_CONTENT UNKNOWN UNKNOWN UNKNOWN\r\n.\r\n650 OK\r\n" {
		t.Errorf("empty HS_DESC_CONTENT: %q", b)
	}
	b = FormatEvent(Event{Type: EventHSDesc, HSDesc: &HSDescEvent{Action: "FAILED", Address: onion, Reason: "QUERY_NO_HSDIR"}})
	if string(b) != "650 HS_DESC FAILED "+onion+" NO_AUTH UNKNOWN REASON=QUERY_NO_HSDIR\r\n" {
		t.Errorf("HS_DESC FAILED: %q", b)
	}
	b = FormatEvent(Event{Type: EventAddrMap, AddrMap: &AddrMapEvent{From: "x", To: "x", Expires: fakeExpiry, Error: "internal"}})
	if string(b) != "650 ADDRMAP x x "+local+` internal EXPIRES="2026-11-27 04:00:00" CACHED="NO"`+"\r\n" {
		t.Errorf("ADDRMAP internal: %q", b)
	}
}

// Every command answers malformed arguments — a bad quote, a long
// unparsable argument — with its C tor reply, and the connection stays
// usable (AUTHENTICATE and AUTHCHALLENGE close it, as C tor does; their
// tests are in auth_test.go and server_test.go). A command added without
// an entry here fails the test.
func TestMalformedArgumentsEveryCommand(t *testing.T) {
	ts := startServer(t, nil)
	badQuote := map[string]string{
		"PROTOCOLINFO":             `513 No such version "\"bad"`,
		"GETINFO":                  `552 Unrecognized key "\"bad"`,
		"GETCONF":                  `552 Unrecognized configuration key "\"bad"`,
		"SETCONF":                  "512 Bad arguments to SETCONF: Cannot parse keyword argument(s)",
		"RESETCONF":                "512 Bad arguments to RESETCONF: Cannot parse keyword argument(s)",
		"SAVECONF":                 `512 Bad arguments to SAVECONF: Unrecognized argument "\"bad"`,
		"SETEVENTS":                `552 Unrecognized event "\"bad"`,
		"SIGNAL":                   `552 Unrecognized signal code "\"bad"`,
		"TAKEOWNERSHIP":            "250 OK", // C tor takes any arguments
		"DROPOWNERSHIP":            "250 OK",
		"MAPADDRESS":               "512 Bad arguments to MAPADDRESS: Cannot parse keyword argument(s)",
		"USEFEATURE":               `552 Unrecognized feature "\"bad"`,
		"RESOLVE":                  "512 Bad arguments to RESOLVE: Cannot parse keyword argument(s)",
		"CLOSESTREAM":              "512 Bad arguments to CLOSESTREAM: Need at least 2 argument(s)",
		"CLOSECIRCUIT":             `552 Unknown circuit "\"bad"`,
		"SETCIRCUITPURPOSE":        `552 Unknown circuit "\"bad"`,
		"DROPGUARDS":               "512 Bad arguments to DROPGUARDS: Cannot accept more than 0 argument(s)",
		"DROPTIMEOUTS":             "512 Bad arguments to DROPTIMEOUTS: Cannot accept more than 0 argument(s)",
		"HSFETCH":                  `513 Invalid argument "\"bad"`,
		"ONION_CLIENT_AUTH_ADD":    "512 Incomplete ONION_CLIENT_AUTH_ADD command",
		"ONION_CLIENT_AUTH_REMOVE": `512 Invalid v3 address "\"bad"`,
		"ONION_CLIENT_AUTH_VIEW":   `512 Invalid v3 address "\"bad"`,
		// The fake backend hosts no onion services; addonion_test.go
		// tests these commands' parsing with a backend that does.
		"ADD_ONION": "551 ADD_ONION is not supported by this implementation",
		"DEL_ONION": "551 DEL_ONION is not supported by this implementation",
	}
	skip := map[string]bool{"AUTHENTICATE": true, "AUTHCHALLENGE": true, "+LOADCONF": true}
	var kws []string
	for kw := range handlers {
		kws = append(kws, kw)
	}
	slices.Sort(kws)
	long := strings.Repeat("\"", 3) + strings.Repeat("z", 10000)
	for _, kw := range kws {
		if skip[kw] {
			continue
		}
		want, ok := badQuote[kw]
		if !ok {
			t.Errorf("%s has no malformed-input case", kw)
			continue
		}
		c := ts.authed(t)
		expect(t, c.do(kw+` "bad`), want)
		expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
		r := c.do(kw + " " + long)
		if code := r[len(r)-1][:3]; code != "250" && code[0] != '5' {
			t.Errorf("%s with a long argument: %q", kw, r)
		}
		expect(t, c.do("GETINFO version"), "250-version=0.4.9.0-gotor", "250 OK")
		// Lower case works too: keywords are case-insensitive (replies
		// name the command as sent, as C tor's).
		r = c.do(strings.ToLower(kw) + ` "bad`)
		if !strings.EqualFold(r[len(r)-1], want) {
			t.Errorf("%s in lower case: %q, want %q", kw, r, want)
		}
		c.do("DROPOWNERSHIP")
	}
}
