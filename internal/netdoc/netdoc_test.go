package netdoc

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/realdocs"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTokenizer(t *testing.T) {
	src := "a 1  2\tthree\n\nb\n-----BEGIN FOO BAR-----\nAAEC\n-----END FOO BAR-----\nc\n"
	tk := NewTokenizer("test", src)
	var items []Item
	for {
		it, ok := tk.Next()
		if !ok {
			break
		}
		items = append(items, it)
	}
	if err := tk.Err(); err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("got %d items", len(items))
	}
	if got := strings.Join(items[0].Args, ","); got != "1,2,three" {
		t.Errorf("args = %q", got)
	}
	if items[1].Line != 3 || items[1].Object == nil || items[1].Object.Label != "FOO BAR" || string(items[1].Object.Data) != "\x00\x01\x02" {
		t.Errorf("item b = %+v %+v", items[1], items[1].Object)
	}
	if items[2].Line != 7 || items[2].Keyword != "c" {
		t.Errorf("item c = %+v", items[2])
	}
	if src[items[1].Start:items[1].End] != "b\n-----BEGIN FOO BAR-----\nAAEC\n-----END FOO BAR-----\n" {
		t.Errorf("item b span wrong")
	}
}

func TestTokenizerErrors(t *testing.T) {
	for _, tc := range []struct {
		src  string
		line int
	}{
		{"a\n-bad\n", 2},
		{"a\nb\n-----BEGIN X-----\nAAAA\n", 3},
		{"a\nb\n-----BEGIN X-----\nAAAA\n-----END Y-----\n", 5},
		{"a\nb\n-----BEGIN X-----\n!!!!\n-----END X-----\n", 3},
		{"a\nb", 2},
		{"a\nb\x01c\n", 2},
		{"a\nb \x7f\n", 2},         // DEL
		{"a\nb \xc3\n", 2},         // truncated UTF-8
		{"a\nb \xff\xfe\n", 2},     // invalid UTF-8
		{"a\nb \xc2\x85\n", 2},     // U+0085, a C1 control
		{"a\nb \xed\xa0\x80\n", 2}, // a UTF-16 surrogate
		{"a\nb c\rd\n", 2},         // CR
	} {
		tk := NewTokenizer("test", tc.src)
		for {
			if _, ok := tk.Next(); !ok {
				break
			}
		}
		var e *Error
		if !errors.As(tk.Err(), &e) {
			t.Errorf("%q: err = %v, want *Error", tc.src, tk.Err())
			continue
		}
		if e.Line != tc.line {
			t.Errorf("%q: error %v at line %d, want %d", tc.src, e, e.Line, tc.line)
		}
	}
}

func TestParseConsensusMicrodesc(t *testing.T) {
	src := readTestdata(t, "consensus-microdesc.txt")
	c, err := ParseConsensus(src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flavor != FlavorMicrodesc || c.ConsensusMethod < 30 || len(c.Routers) == 0 || len(c.Sources) != 3 || len(c.Signatures) != 3 {
		t.Fatalf("consensus = flavor %s method %d routers %d sources %d sigs %d",
			c.Flavor, c.ConsensusMethod, len(c.Routers), len(c.Sources), len(c.Signatures))
	}
	for _, r := range c.Routers {
		if !r.HasMicrodesc || !r.Flags.Has(netdir.FlagRunning) || !r.Addr.IsValid() || r.ORPort == 0 {
			t.Errorf("router %+v", r)
		}
	}
	for _, s := range c.Signatures {
		if s.Algorithm != "sha256" {
			t.Errorf("signature algorithm %q", s.Algorithm)
		}
	}
	certs, err := ParseKeyCerts(readTestdata(t, "certs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var ids [][20]byte
	for _, kc := range certs {
		if err := kc.Verify(c.ValidAfter); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, kc.Fingerprint)
	}
	if st, err := c.Verify(ids, certs); err != nil || st.Good != 3 {
		t.Fatalf("Verify = %+v, %v", st, err)
	}
	if err := c.CheckTime(c.ValidAfter, 0, 0); err != nil {
		t.Error(err)
	}
	if err := c.CheckTime(c.ValidUntil.Add(time.Second), 0, 0); !errors.Is(err, ErrExpired) {
		t.Errorf("CheckTime past valid-until = %v", err)
	}
	if err := c.CheckTime(c.ValidUntil.Add(time.Hour), 0, ReasonablyLive); err != nil {
		t.Errorf("reasonably live consensus refused: %v", err)
	}
	if err := c.CheckTime(c.ValidAfter.Add(-time.Hour), time.Minute, 0); !errors.Is(err, ErrNotYetValid) {
		t.Errorf("CheckTime before valid-after = %v", err)
	}
	// A changed byte in the signed text breaks every signature.
	bad := strings.Replace(src, "vote-status consensus", "vote-status consensuS", 1)
	if c2, err := ParseConsensus(bad); err == nil {
		t.Errorf("bad vote-status accepted: %v", c2.Flavor)
	}
	bad = strings.Replace(src, "\nr ", "\nr  ", 1)
	c2, err := ParseConsensus(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Verify(ids, certs); !errors.Is(err, ErrBadSignature) {
		t.Errorf("modified consensus: %v", err)
	}
	// Missing a certificate: too few signatures.
	if _, err := c.Verify(ids, certs[:1]); !errors.Is(err, ErrTooFewSignatures) {
		t.Errorf("one cert: %v", err)
	}
}

func TestParseConsensusNS(t *testing.T) {
	c, err := ParseConsensus(readTestdata(t, "consensus-ns.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Flavor != FlavorNS || len(c.Routers) == 0 {
		t.Fatalf("flavor %s routers %d", c.Flavor, len(c.Routers))
	}
	certs, err := ParseKeyCerts(readTestdata(t, "certs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var ids [][20]byte
	for _, kc := range certs {
		ids = append(ids, kc.Fingerprint)
	}
	if _, err := c.Verify(ids, certs); err != nil {
		t.Fatal(err)
	}
	exits := 0
	for _, r := range c.Routers {
		if r.ExitSummary.Accept {
			exits++
		}
	}
	if exits == 0 {
		t.Error("no exit summaries in ns consensus")
	}
}

func TestConsensusErrorsHaveLines(t *testing.T) {
	src := readTestdata(t, "consensus-microdesc.txt")
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "r ") {
			lines[i] = "r onlythree args"
			_, err := ParseConsensus(strings.Join(lines, "\n"))
			var e *Error
			if !errors.As(err, &e) || e.Line != i+1 {
				t.Fatalf("err = %v, want line %d", err, i+1)
			}
			return
		}
	}
}

func TestKeyCertTampered(t *testing.T) {
	src := readTestdata(t, "certs.txt")
	certs, err := ParseKeyCerts(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 3 {
		t.Fatalf("%d certs", len(certs))
	}
	if err := certs[0].Verify(certs[0].Expires.Add(time.Second)); !errors.Is(err, ErrCertExpired) {
		t.Errorf("expired cert: %v", err)
	}
	one := certs[0].Raw
	bad := strings.Replace(one, "dir-key-published 20", "dir-key-published 19", 1)
	kc, err := ParseKeyCert(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Verify(time.Time{}); !errors.Is(err, ErrBadCertSignature) {
		t.Errorf("tampered cert: %v", err)
	}
}

func TestParseMicrodescs(t *testing.T) {
	src := readTestdata(t, "microdescs.txt")
	mds, err := ParseMicrodescs(src)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConsensus(readTestdata(t, "consensus-microdesc.txt"))
	if err != nil {
		t.Fatal(err)
	}
	byDigest := map[[32]byte]*Microdesc{}
	for _, md := range mds {
		byDigest[md.Digest] = md
		if !md.HasEd25519 || md.NtorOnionKey == ([32]byte{}) {
			t.Errorf("microdesc %+v", md)
		}
	}
	for _, r := range c.Routers {
		if byDigest[r.MicrodescDigest] == nil {
			t.Errorf("router %s: microdescriptor digest not found", r.Nickname)
		}
	}
	// Newer microdescriptors omit onion-key and may pad ntor keys.
	var b strings.Builder
	for _, md := range mds {
		text := md.Text
		if i := strings.Index(text, "ntor-onion-key "); i >= 0 {
			text = text[i:]
		}
		b.WriteString(strings.Replace(text, "\nfamily", "\nfamily-ids ed25519:AAAA\nfamily", 1))
	}
	mds2, err := ParseMicrodescs(b.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(mds2) != len(mds) {
		t.Fatalf("without onion-key: %d microdescs, want %d", len(mds2), len(mds))
	}
	for i := range mds2 {
		if mds2[i].NtorOnionKey != mds[i].NtorOnionKey {
			t.Errorf("md %d: ntor key differs", i)
		}
	}
	if _, err := ParseMicrodescs("ntor-onion-key AAAA\n"); err == nil {
		t.Error("short ntor key accepted")
	}
	pmd, err := ParseMicrodescs("ntor-onion-key 7sUzxdNSqWH46G1ZkUxD97jSC4olbRamRPJ75xYtzQE=\np reject 25,119\np6 accept 80,443\nfamily $0123456789ABCDEF0123456789ABCDEF01234567 foo\n")
	if err != nil {
		t.Fatal(err)
	}
	m := pmd[0]
	if m.ExitPolicy.Allows(25) || !m.ExitPolicy.Allows(80) || !m.ExitPolicy6.Allows(443) || m.ExitPolicy6.Allows(25) || len(m.Family) != 2 {
		t.Errorf("md = %+v", m)
	}
}

func TestParseServerDescs(t *testing.T) {
	src := readTestdata(t, "server-descriptors.txt")
	parts := strings.SplitAfter(src, "-----END SIGNATURE-----\n")
	n := 0
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			continue
		}
		d, err := ParseServerDesc(p)
		if err != nil {
			t.Fatal(err)
		}
		if d.Nickname == "" || len(d.IdentityEd25519Cert) == 0 || d.NtorOnionKey == ([32]byte{}) || d.Platform == "" || len(d.ExitPolicy) == 0 || d.BandwidthAvg == 0 {
			t.Errorf("descriptor %+v", d)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no descriptors")
	}
	all, err := ParseServerDescs(src)
	if err != nil || len(all) != n {
		t.Fatalf("ParseServerDescs: %d, %v; want %d", len(all), err, n)
	}
	bad := strings.Replace(src, "\nbandwidth ", "\nbandwidth x", 3)
	_, err = ParseServerDescs(bad)
	var e *Error
	if !errors.As(err, &e) || e.Line <= strings.Count(src[:strings.Index(src, "\nbandwidth ")], "\n") {
		t.Errorf("error line: %v", err)
	}
}

func TestPortPolicy(t *testing.T) {
	for _, bad := range []string{"", "0", "80-", "90-80", "a", "1,,2", "65536"} {
		if _, ok := ParsePortPolicy("accept", bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
	p, ok := ParsePortPolicy("reject", "1-65535")
	if !ok || p.AllowsAny() {
		t.Errorf("reject all: %+v", p)
	}
	var zero netdir.PortPolicy
	if zero.Allows(80) || zero.AllowsAny() {
		t.Error("zero policy allows")
	}
}

// Real server descriptors (stem's, arti's, a C tor bridge's cache file)
// parse, UTF-8 contact lines included (issue 17 item 12).
func TestRealServerDescriptors(t *testing.T) {
	files := realdocs.Glob(t, "serverdescs/*.txt")
	if len(files) < 10 {
		t.Fatalf("%d server descriptor files", len(files))
	}
	utf8Contacts := 0
	for _, name := range files {
		ds, err := ParseServerDescs(FromCacheFile(realdocs.Read(t, name)))
		if err != nil || len(ds) == 0 {
			t.Errorf("%s: %d descriptors, %v", name, len(ds), err)
			continue
		}
		for _, d := range ds {
			if !utf8.ValidString(d.Contact) {
				t.Errorf("%s: contact %q", name, d.Contact)
			}
			if strings.IndexFunc(d.Contact, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
				utf8Contacts++
				t.Logf("%s: %s: contact %s", name, d.Nickname, d.Contact)
			}
		}
	}
	d, err := ParseServerDesc(FromCacheFile(realdocs.Read(t, "serverdescs/stem-non-ascii_descriptor.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if want := "1024D/04D2E818 Lénaïc Huard <lenaic dot huard AT laposte dot net>"; d.Contact != want {
		t.Errorf("contact %q, want %q", d.Contact, want)
	}
	if utf8Contacts == 0 {
		t.Error("no UTF-8 contact line seen")
	}
}

// A consensus whose dir-source contact line is UTF-8 parses (one such
// line made every consensus unusable).
func TestConsensusUTF8Contact(t *testing.T) {
	src := readTestdata(t, "consensus-microdesc.txt")
	i := strings.Index(src, "\ncontact ")
	if i < 0 {
		t.Fatal("no contact line")
	}
	j := strings.IndexByte(src[i+1:], '\n')
	src = src[:i] + "\ncontact Jörg Müller <jörg@example.org> 日本" + src[i+1+j:]
	c, err := ParseConsensus(src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sources[0].Contact != "Jörg Müller <jörg@example.org> 日本" {
		t.Errorf("contact %q", c.Sources[0].Contact)
	}
}
