package testnet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func dnsQuery(id uint16, name string, qtype uint16) []byte {
	m := make([]byte, 12)
	binary.BigEndian.PutUint16(m[0:2], id)
	m[2] = 0x01 // RD
	binary.BigEndian.PutUint16(m[4:6], 1)
	for _, l := range strings.Split(name, ".") {
		m = append(m, byte(len(l)))
		m = append(m, l...)
	}
	m = append(m, 0)
	m = binary.BigEndian.AppendUint16(m, qtype)
	return binary.BigEndian.AppendUint16(m, 1)
}

func TestDNSResponder(t *testing.T) {
	s, err := StartDNSServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddName("Gotor-Test.example.", "127.0.0.9"); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(id uint16, name string, qtype uint16) []byte {
		t.Helper()
		if _, err := c.Write(dnsQuery(id, name, qtype)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		r := buf[:n]
		if binary.BigEndian.Uint16(r[0:2]) != id || r[2]&0x80 == 0 {
			t.Fatalf("bad response header % x", r[:12])
		}
		return r
	}
	r := ask(7, "gOtOr-tEsT.ExAmPlE", 1)
	if rc := r[3] & 0x0f; rc != 0 {
		t.Fatalf("rcode %d", rc)
	}
	if an := binary.BigEndian.Uint16(r[6:8]); an != 1 {
		t.Fatalf("ancount %d", an)
	}
	if got := net.IP(r[len(r)-4:]).String(); got != "127.0.0.9" {
		t.Fatalf("answer %s", got)
	}
	// The question is echoed with its original case.
	if !strings.Contains(string(r), "gOtOr-tEsT") {
		t.Error("question not echoed verbatim")
	}
	r = ask(8, "gotor-test.example", 28) // AAAA
	if rc, an := r[3]&0x0f, binary.BigEndian.Uint16(r[6:8]); rc != 0 || an != 0 {
		t.Fatalf("AAAA: rcode %d ancount %d", rc, an)
	}
	r = ask(9, "other.example", 1)
	if rc := r[3] & 0x0f; rc != 3 {
		t.Fatalf("unknown name: rcode %d, want NXDOMAIN", rc)
	}
	if q := s.Queries("GOTOR-TEST.EXAMPLE"); q != 2 {
		t.Errorf("Queries = %d, want 2", q)
	}
	if q := s.Queries("other.example."); q != 1 {
		t.Errorf("Queries(other) = %d, want 1", q)
	}
}

const sampleConsensus = `network-status-version 3 microdesc
vote-status consensus
r relay0 AAECAwQFBgcICQoLDA0ODxAREhM 2026-11-27 03:00:00 127.0.0.1 5000 5001
m sha256digestone
s Fast Guard Running Stable Valid
r exit0 FBUWFxgZGhscHR4fICEiIyQlJic 2026-11-27 03:00:00 127.0.0.1 5002 5003
m sha256digesttwo
s Exit Fast Running Valid
directory-footer
`

func TestCheckConsensus(t *testing.T) {
	want := []NodeInfo{
		{Nickname: "relay0", Fingerprint: "000102030405060708090A0B0C0D0E0F10111213"},
		{Nickname: "exit0", Fingerprint: "1415161718191A1B1C1D1E1F2021222324252627"},
	}
	es, err := checkConsensus(sampleConsensus, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[1].MicroDigest != "sha256digesttwo" {
		t.Fatalf("entries %+v", es)
	}
	if _, err := checkConsensus(sampleConsensus, append(want, NodeInfo{Nickname: "x", Fingerprint: strings.Repeat("AB", 20)})); err == nil {
		t.Error("missing relay not reported")
	}
	noExit := strings.Replace(sampleConsensus, "s Exit Fast", "s Fast", 1)
	if _, err := checkConsensus(noExit, want); err == nil {
		t.Error("missing exit not reported")
	}
}

func TestHTTPServer(t *testing.T) {
	s, err := StartHTTPServer(1000)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Size != 1000 || len(s.SHA256) != 64 || !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("%+v", s)
	}
	resp, err := http.Get(s.URL + "/random")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != s.SHA256 {
		t.Error("/random does not match SHA256")
	}
	resp, err = http.Post(s.URL+"/echo", "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ping" {
		t.Errorf("/echo answered %q", b)
	}
}

func TestKeyCacheRoundTrip(t *testing.T) {
	cache := t.TempDir()
	src := &node{NodeInfo: NodeInfo{Nickname: "relay0", DataDir: t.TempDir()}}
	os.MkdirAll(filepath.Join(src.DataDir, "keys"), 0o700)
	os.WriteFile(filepath.Join(src.DataDir, "keys", "secret_id_key"), []byte("k"), 0o600)
	os.WriteFile(filepath.Join(src.DataDir, "fingerprint"), []byte("relay0 "+strings.Repeat("ab", 20)+"\n"), 0o600)
	os.WriteFile(filepath.Join(src.DataDir, "fingerprint-ed25519"), []byte("relay0 edkey\n"), 0o600)
	storeCachedKeys(cache, src)
	dst := &node{NodeInfo: NodeInfo{Nickname: "relay0", DataDir: t.TempDir()}}
	os.MkdirAll(filepath.Join(dst.DataDir, "keys"), 0o700)
	if err := loadCachedKeys(filepath.Join(cache, "relay0"), dst); err != nil {
		t.Fatal(err)
	}
	if dst.Fingerprint != strings.Repeat("AB", 20) || dst.Ed25519 != "edkey" {
		t.Fatalf("got %q %q", dst.Fingerprint, dst.Ed25519)
	}
	if b, _ := os.ReadFile(filepath.Join(dst.DataDir, "keys", "secret_id_key")); string(b) != "k" {
		t.Fatal("key not copied")
	}
	// A second writer keeps the first writer's slot.
	gen, _ := os.ReadFile(filepath.Join(cache, "relay0", "complete"))
	storeCachedKeys(cache, src)
	if gen2, _ := os.ReadFile(filepath.Join(cache, "relay0", "complete")); string(gen2) != string(gen) {
		t.Error("usable slot was replaced")
	}
}

func TestParseSharedRandom(t *testing.T) {
	doc := "network-status-version 3 microdesc\nvalid-after 2026-12-06 21:40:00\n" +
		"shared-rand-previous-value 3 6tp+naQgEqe5AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
		"shared-rand-current-value 0 +Xmpe0Rbjgv7AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
		"directory-footer\nshared-rand-current-value 9 ignored\n"
	sr, err := parseSharedRandom(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := SharedRandom{ValidAfter: time.Date(2026, 12, 6, 21, 40, 0, 0, time.UTC),
		Current: "+Xmpe0Rbjgv7AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", CurrentReveals: 0,
		Previous: "6tp+naQgEqe5AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", PreviousReveals: 3}
	if sr != want {
		t.Fatalf("got %+v, want %+v", sr, want)
	}
	none, err := parseSharedRandom("valid-after 2026-12-06 21:40:00\n")
	if err != nil || none.Current != "" || none.Previous != "" {
		t.Fatalf("no SRV lines: %+v, %v", none, err)
	}
	for _, bad := range []string{"", "valid-after yesterday\n", "valid-after 2026-12-06 21:40:00\nshared-rand-current-value x y\n"} {
		if _, err := parseSharedRandom(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
