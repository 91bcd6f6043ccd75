package netdoc

import (
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

func FuzzTokenizer(f *testing.F) {
	addSeeds(f, "consensus-microdesc.txt", "certs.txt", "microdescs.txt")
	f.Fuzz(func(t *testing.T, s string) {
		tk := NewTokenizer("fuzz", s)
		for {
			it, ok := tk.Next()
			if !ok {
				break
			}
			if it.Start > it.ArgsEnd || it.ArgsEnd > it.End || it.End > len(s) {
				t.Fatalf("bad offsets %+v", it)
			}
		}
	})
}

func FuzzConsensus(f *testing.F) {
	addSeeds(f, "consensus-microdesc.txt", "consensus-ns.txt")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConsensus(s)
		if err == nil {
			c.Verify([][20]byte{{1}}, nil)
		}
	})
}

func FuzzKeyCerts(f *testing.F) {
	addSeeds(f, "certs.txt")
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
	f.Fuzz(func(t *testing.T, s string) {
		mds, _ := ParseMicrodescs(s)
		for _, md := range mds {
			if len(md.Text) > len(s) {
				t.Fatal("text longer than input")
			}
		}
	})
}

func FuzzServerDesc(f *testing.F) {
	addSeeds(f, "server-descriptors.txt")
	f.Fuzz(func(t *testing.T, s string) {
		ParseServerDescs(s)
	})
}
