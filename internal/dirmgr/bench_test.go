package dirmgr

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdoc"
)

// synthNetwork generates a realistic full-size microdesc consensus and
// its microdescriptors (n relays), shaped like the live network's: ~25%
// with families, exit summaries on ~20%, IPv6 on ~30%, a variety of
// versions. Signatures are random bytes (parse-only benchmarks).
func synthNetwork(n int) (consensus, microdescs string) {
	rng := rand.New(rand.NewPCG(1, 2))
	rb := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	b64 := base64.RawStdEncoding.EncodeToString
	var md, c strings.Builder
	va := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	f := func(format string, a ...any) { fmt.Fprintf(&c, format, a...) }
	f("network-status-version 3 microdesc\nvote-status consensus\nconsensus-method 35\n")
	f("valid-after %s\nfresh-until %s\nvalid-until %s\nvoting-delay 300 300\n",
		va.Format(time.DateTime), va.Add(time.Hour).Format(time.DateTime), va.Add(3*time.Hour).Format(time.DateTime))
	f("client-versions 0.4.8.1-alpha,0.4.8.2-alpha,0.4.8.13,0.4.9.1-alpha\nserver-versions 0.4.8.13,0.4.9.1-alpha\n")
	f("known-flags Authority BadExit Exit Fast Guard HSDir MiddleOnly NoEdConsensus Running Stable StaleDesc Sybil V2Dir Valid\n")
	f("recommended-client-protocols Cons=2 Desc=2 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4 HSRend=2 Link=4-5 Microdesc=2 Relay=2-4\n")
	f("params CircuitPriorityHalflifeMsec=30000 DoSCircuitCreationEnabled=1 bwweightscale=10000 cbttestfreq=10 guard-n-primary-guards-to-use=1\n")
	f("shared-rand-previous-value 9 %s=\nshared-rand-current-value 9 %s=\n", b64(rb(32)), b64(rb(32)))
	for i := 0; i < 9; i++ {
		f("dir-source auth%d %X auth%d.example.org 192.0.2.%d 80 443\ncontact someone <x@example.org>\nvote-digest %X\n", i, rb(20), i, i+1, rb(20))
	}
	versions := []string{"Tor 0.4.8.13", "Tor 0.4.8.14", "Tor 0.4.8.12", "Tor 0.4.9.1-alpha", "Tor 0.4.7.16"}
	flagSets := []string{"Fast Running Stable V2Dir Valid", "Fast Guard HSDir Running Stable V2Dir Valid",
		"Exit Fast Guard HSDir Running Stable V2Dir Valid", "Exit Fast Running V2Dir Valid", "Running V2Dir Valid"}
	policies := []string{"accept 20-23,43,53,79-81,88,110,143,194,220,389,443,464-465,531,543-544,554,563,587,636,706,749,853,873,902-904,981,989-995,1194,1220,1293,1500,1533,1677,1723,1755,1863,2082-2083,2086-2087,2095-2096,2102-2104,3128,3389,3690,4321,4643,5050,5190,5222-5223,5228,5900,6660-6669,6679,6697,8000,8008,8074,8080,8082,8087-8088,8232-8233,8332-8333,8443,8888,9418,9999-10000,11371,19294,19638,50002,64738",
		"accept 80,443", "reject 25,119,135-139,445,563,1214,4661-4666,6346-6429,6699,6881-6999"}
	for i := 0; i < n; i++ {
		var text strings.Builder
		fmt.Fprintf(&text, "ntor-onion-key %s\n", b64(rb(32)))
		if rng.IntN(10) < 3 {
			fmt.Fprintf(&text, "a [2001:db8:%x::%x]:9001\n", rng.IntN(65535), rng.IntN(65535))
		}
		if rng.IntN(4) == 0 {
			fam := []string{}
			for k := 0; k < 2+rng.IntN(12); k++ {
				fam = append(fam, fmt.Sprintf("$%X", rb(20)))
			}
			fmt.Fprintf(&text, "family %s\n", strings.Join(fam, " "))
		}
		exit := rng.IntN(5) == 0
		if exit {
			fmt.Fprintf(&text, "p %s\n", policies[rng.IntN(len(policies))])
		}
		fmt.Fprintf(&text, "id ed25519 %s\n", b64(rb(32)))
		md.WriteString(text.String())
		d := sha256.Sum256([]byte(text.String()))
		flags := flagSets[rng.IntN(3)]
		if exit {
			flags = flagSets[2+rng.IntN(2)]
		}
		f("r relay%d%s %s 2026-11-26 %02d:%02d:%02d 198.51.%d.%d 9001 0\n", i, strings.Repeat("x", rng.IntN(8)),
			b64(rb(20)), rng.IntN(24), rng.IntN(60), rng.IntN(60), i/250, i%250)
		f("m %s\ns %s\nv %s\n", b64(d[:]), flags, versions[rng.IntN(len(versions))])
		f("pr Conflux=1 Cons=1-2 Desc=1-2 DirCache=2 FlowCtrl=1-2 HSDir=2 HSIntro=4-5 HSRend=1-2 Link=1-5 LinkAuth=1,3 Microdesc=1-2 Padding=2 Relay=1-4\n")
		if rng.IntN(20) == 0 {
			f("w Bandwidth=%d Unmeasured=1\n", 20)
		} else {
			f("w Bandwidth=%d\n", 1+rng.IntN(100000))
		}
	}
	f("directory-footer\nbandwidth-weights Wbd=0 Wbe=0 Wbg=4167 Wbm=10000 Wdb=10000 Web=10000 Wed=10000 Wee=10000 Weg=10000 Wem=10000 Wgb=10000 Wgd=0 Wgg=5833 Wgm=5833 Wmb=10000 Wmd=0 Wme=0 Wmg=4167 Wmm=10000\n")
	for i := 0; i < 9; i++ {
		sig := base64.StdEncoding.EncodeToString(rb(256))
		f("directory-signature sha256 %X %X\n-----BEGIN SIGNATURE-----\n", rb(20), rb(20))
		for len(sig) > 64 {
			f("%s\n", sig[:64])
			sig = sig[64:]
		}
		f("%s\n-----END SIGNATURE-----\n", sig)
	}
	return c.String(), md.String()
}

const fullSize = 7000

func BenchmarkParseConsensus(b *testing.B) {
	cons, _ := synthNetwork(fullSize)
	b.SetBytes(int64(len(cons)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := netdoc.ParseConsensus(cons); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMicrodescs(b *testing.B) {
	_, mds := synthNetwork(fullSize)
	b.SetBytes(int64(len(mds)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := netdoc.ParseMicrodescs(mds); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildNetDir(b *testing.B) {
	cons, mdText := synthNetwork(fullSize)
	c, err := netdoc.ParseConsensus(cons)
	if err != nil {
		b.Fatal(err)
	}
	mds := mdMap(b, mdText)
	b.ReportAllocs()
	for b.Loop() {
		BuildNetDir(c, mds)
	}
}

func mdMap(tb testing.TB, text string) map[[32]byte]*netdoc.Microdesc {
	list, err := netdoc.ParseMicrodescs(text)
	if err != nil {
		tb.Fatal(err)
	}
	m := make(map[[32]byte]*netdoc.Microdesc, len(list))
	for _, md := range list {
		md.Text = strings.Clone(md.Text)
		m[md.Digest] = md
	}
	return m
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestFullSizeHeap measures the live heap a Manager holds with a full
// synthetic network loaded: the consensus, every microdescriptor (with
// its text, kept for the cache) and the NetDir. Target: ≤ 20 MiB.
func TestFullSizeHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size heap measurement")
	}
	cons, mdText := synthNetwork(fullSize)
	base := liveHeap()
	start := time.Now()
	// As the Manager does: parse, keep the parsed consensus and
	// microdescriptors, build the NetDir; the document texts are dropped.
	c, err := netdoc.ParseConsensus(cons)
	if err != nil {
		t.Fatal(err)
	}
	mds := mdMap(t, mdText)
	nd := BuildNetDir(c, mds)
	elapsed := time.Since(start)
	cons, mdText = "", ""
	after := liveHeap()
	live := int64(after) - int64(base)
	usable := 0
	for _, r := range nd.Relays {
		if r.IsUsable() {
			usable++
		}
	}
	t.Logf("full-size (%d relays): parse+build %v, live heap %.1f MiB (usable %d)", len(nd.Relays), elapsed, float64(live)/(1<<20), usable)
	if usable != fullSize {
		t.Errorf("usable relays = %d, want %d", usable, fullSize)
	}
	if live > 20<<20 {
		t.Errorf("live heap %.1f MiB exceeds 20 MiB", float64(live)/(1<<20))
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(mds)
	runtime.KeepAlive(nd)
}
