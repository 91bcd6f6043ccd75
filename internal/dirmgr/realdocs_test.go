package dirmgr

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/netdoc"
	"github.com/gotor/gotor/internal/realdocs"
)

// cTorDataDir writes a C tor DataDirectory as its users committed it:
// cached-certs (with CRLF line ends from Windows), the microdesc
// consensus and, if given, the microdescriptor journal with its
// "@last-listed" annotations.
func cTorDataDir(t *testing.T, consensus, certs, microdescs string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{fileConsensus: consensus, fileCerts: certs}
	if microdescs != "" {
		files[fileMicrodescsJournal] = microdescs
	}
	for name, rel := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(realdocs.Read(t, rel)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The built-in authorities verify real consensuses of 2022-2026 read
// from C tor DataDirectories; the 2025 and 2026 ones are signed by all
// nine (issue 17 items 13 and 14).
func TestBuiltinAuthoritiesRealConsensus(t *testing.T) {
	for _, tc := range []struct {
		consensus, certs, microdescs string
		signers                      int
	}{
		{"consensus/mediacoder-md-2026-06-27.txt.gz", "certs/mediacoder-2026-06.txt", "microdescs/mediacoder-2026-06.txt", 9},
		{"consensus/hrikdev-md-2025-06-15.txt.gz", "certs/hrikdev-2025-06.txt", "microdescs/hrikdev-2025-06.txt", 9},
		// Before 2025 eight authorities signed (faravahar was retired;
		// in 2022 tor26 with its old identity), and these caches lack
		// the certificates of some signers (a client would fetch them):
		// still a majority of the nine.
		{"consensus/aziz-md-2024-05-17.txt.gz", "certs/aziz-2024-05.txt", "", 6},
		{"consensus/safetor-md-2022-11-19.txt.gz", "certs/safetor-2022-11.txt", "microdescs/safetor-2022-11.txt.gz", 5},
	} {
		t.Run(filepath.Base(tc.consensus), func(t *testing.T) {
			c, err := netdoc.ParseConsensus(realdocs.Read(t, tc.consensus))
			if err != nil {
				t.Fatal(err)
			}
			now := c.ValidAfter.Add(time.Minute)
			m, err := New(Config{DataDir: cTorDataDir(t, tc.consensus, tc.certs, tc.microdescs), Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.loadCache(); err != nil {
				t.Fatalf("C tor DataDirectory: %v", err)
			}
			if m.consensus == nil || !m.consensus.ValidAfter.Equal(c.ValidAfter) {
				t.Fatal("cached consensus not loaded")
			}
			st, err := m.consensus.Verify(m.v3ids, m.validCerts(now))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d routers, %d signatures, %d by built-in authorities with valid certificates, %d microdescriptors cached",
				len(c.Routers), len(c.Signatures), st.Good, len(m.mds))
			if st.Good != tc.signers || st.Bad != 0 {
				t.Errorf("%d trusted signers (%d bad), want %d", st.Good, st.Bad, tc.signers)
			}
			if tc.microdescs != "" && len(m.mds) == 0 {
				t.Error("no microdescriptors read from cached-microdescs.new")
			}
			listed := 0
			for i := range c.Routers {
				if m.mds[c.Routers[i].MicrodescDigest] != nil {
					listed++
				}
			}
			if tc.microdescs != "" && listed == 0 {
				t.Error("no cached microdescriptor matches a consensus digest")
			}
		})
	}
}
