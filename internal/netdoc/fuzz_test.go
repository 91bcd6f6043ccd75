package netdoc

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotor/gotor/internal/realdocs"
)

// Fuzz seeds: the private network's documents in testdata (consensuses,
// certificates, microdescriptors and server descriptors written by C
// tor 0.4.9) and the small real public-network documents of
// ../shared/realdocs (arti's and stem's test documents, 2013-2026).

func addSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

// encodeItems writes items back in the meta-format (dir-spec §1.2):
// keyword and arguments separated by one space, objects in 64-column
// base64.
func encodeItems(items []Item) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString(strings.Join(append([]string{it.Keyword}, it.Args...), " "))
		b.WriteByte('\n')
		if it.Object != nil {
			b.WriteString("-----BEGIN " + it.Object.Label + "-----\n")
			enc := base64.StdEncoding.EncodeToString(it.Object.Data)
			for len(enc) > 64 {
				b.WriteString(enc[:64] + "\n")
				enc = enc[64:]
			}
			if enc != "" {
				b.WriteString(enc + "\n")
			}
			b.WriteString("-----END " + it.Object.Label + "-----\n")
		}
	}
	return b.String()
}

func tokenizeAll(s string) ([]Item, error) {
	tk := NewTokenizer("fuzz", s)
	var items []Item
	for {
		it, ok := tk.Next()
		if !ok {
			return items, tk.Err()
		}
		items = append(items, it)
	}
}

// FuzzTokenizer checks offsets and a decode, encode, decode round trip:
// what the tokenizer accepts it accepts again re-encoded, with the same
// keywords, arguments and object bytes.
func FuzzTokenizer(f *testing.F) {
	addSeeds(f, "consensus-microdesc.txt", "certs.txt", "microdescs.txt")
	realdocs.AddSeeds(f, 64<<10, "certs/*.txt", "microdescs/*.txt", "serverdescs/*.txt", "hsdesc/*.txt")
	f.Fuzz(func(t *testing.T, s string) {
		items, err := tokenizeAll(s)
		for _, it := range items {
			if it.Start > it.ArgsEnd || it.ArgsEnd > it.End || it.End > len(s) {
				t.Fatalf("bad offsets %+v", it)
			}
		}
		if err != nil {
			return
		}
		again, err := tokenizeAll(encodeItems(items))
		if err != nil {
			t.Fatalf("re-encoded document refused: %v", err)
		}
		if len(again) != len(items) {
			t.Fatalf("%d items re-encoded, %d read back", len(items), len(again))
		}
		for i := range items {
			a, b := items[i], again[i]
			if a.Keyword != b.Keyword || strings.Join(a.Args, " ") != strings.Join(b.Args, " ") ||
				(a.Object == nil) != (b.Object == nil) ||
				(a.Object != nil && (a.Object.Label != b.Object.Label || string(a.Object.Data) != string(b.Object.Data))) {
				t.Fatalf("item %d changed in the round trip: %+v / %+v", i, a, b)
			}
		}
	})
}

// FuzzConsensus parses and verifies with the private network's real
// authority certificates, so mutated seeds reach the RSA signature
// checks (the seeds' signatures name those certificates' keys).
func FuzzConsensus(f *testing.F) {
	addSeeds(f, "consensus-microdesc.txt", "consensus-ns.txt")
	realdocs.AddSeeds(f, 64<<10, "consensus/*.txt")
	b, err := os.ReadFile(filepath.Join("testdata", "certs.txt"))
	if err != nil {
		f.Fatal(err)
	}
	certs, err := ParseKeyCerts(string(b))
	if err != nil {
		f.Fatal(err)
	}
	var ids [][20]byte
	for _, kc := range certs {
		ids = append(ids, kc.Fingerprint)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConsensus(s)
		if err != nil {
			return
		}
		st, err := c.Verify(ids, certs)
		if st.Good > len(ids) || (err == nil) != (st.Good > len(ids)/2) || len(st.BadErrs) != st.Bad {
			t.Fatalf("Verify = %+v, %v", st, err)
		}
	})
}

func FuzzKeyCerts(f *testing.F) {
	addSeeds(f, "certs.txt")
	realdocs.AddSeeds(f, 64<<10, "certs/*.txt")
	f.Fuzz(func(t *testing.T, s string) {
		// Parsing only: RSA verification under fuzzing instrumentation
		// is too slow to be useful (it is covered by unit tests).
		certs, _ := ParseKeyCerts(s)
		for _, kc := range certs {
			if kc.IdentityKey == nil || kc.SigningKey == nil {
				t.Fatal("certificate without keys")
			}
		}
	})
}

func FuzzMicrodescs(f *testing.F) {
	addSeeds(f, "microdescs.txt")
	realdocs.AddSeeds(f, 64<<10, "microdescs/*.txt")
	f.Fuzz(func(t *testing.T, s string) {
		mds, _ := ParseMicrodescs(s)
		for _, md := range mds {
			if len(md.Text) > len(s) {
				t.Fatal("text longer than input")
			}
			// The text is a document of its own: it parses again to the
			// same digest and keys.
			again, err := ParseMicrodescs(md.Text)
			if err != nil || len(again) != 1 || again[0].Digest != md.Digest || again[0].NtorOnionKey != md.NtorOnionKey {
				t.Fatalf("microdescriptor text does not parse back: %v", err)
			}
		}
	})
}

func FuzzServerDesc(f *testing.F) {
	addSeeds(f, "server-descriptors.txt")
	realdocs.AddSeeds(f, 64<<10, "serverdescs/*.txt")
	f.Fuzz(func(t *testing.T, s string) {
		ParseServerDescs(FromCacheFile(s))
	})
}
