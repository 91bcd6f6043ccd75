// Package realdocs gives tests the real Tor network documents kept
// outside the repository in ../shared/realdocs/data (relative to the
// repository root; origins in its SOURCES.txt): consensuses with their
// authority certificates, microdescriptors, server descriptors and onion
// service descriptors from 2013-2026. Files ending in .gz are gunzipped.
package realdocs

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the data directory. When it is missing the test is
// skipped, unless CI is set, where it fails.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := dirPath(tb)
	if _, err := os.Stat(dir); err != nil {
		if ci := os.Getenv("CI"); ci == "true" || ci == "1" {
			tb.Fatalf("realdocs: %v (CI is set)", err)
		}
		tb.Skipf("realdocs: %v", err)
	}
	return dir
}

// dirPath is ../shared/realdocs/data from the repository root.
func dirPath(tb testing.TB) string {
	tb.Helper()
	// go test runs in the package's directory: find the repository
	// root (the directory with go.mod) above it.
	root, err := os.Getwd()
	for err == nil {
		if _, serr := os.Stat(filepath.Join(root, "go.mod")); serr == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			err = os.ErrNotExist
		}
		root = parent
	}
	if err != nil {
		tb.Fatalf("realdocs: repository root not found: %v", err)
	}
	return filepath.Join(root, "..", "shared", "realdocs", "data")
}

// Read returns the document at rel (e.g. "consensus/x.txt.gz").
func Read(tb testing.TB, rel string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(tb), rel))
	if err != nil {
		tb.Fatal(err)
	}
	if filepath.Ext(rel) == ".gz" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			tb.Fatalf("realdocs: %s: %v", rel, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			tb.Fatalf("realdocs: %s: %v", rel, err)
		}
	}
	return string(b)
}

// Glob returns the paths, relative to Dir, matching pattern (e.g.
// "serverdescs/*.txt").
func Glob(tb testing.TB, pattern string) []string {
	tb.Helper()
	dir := Dir(tb)
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]string, len(m))
	for i, p := range m {
		out[i], _ = filepath.Rel(dir, p)
	}
	return out
}

// AddSeeds adds the documents matching patterns (relative to Dir, e.g.
// "serverdescs/*.txt") of at most maxSize bytes as fuzz seeds. Without
// the data directory it adds none (and fails under CI, as Dir does).
func AddSeeds(f *testing.F, maxSize int, patterns ...string) {
	f.Helper()
	if _, err := os.Stat(dirPath(f)); err != nil {
		if ci := os.Getenv("CI"); ci == "true" || ci == "1" {
			f.Fatalf("realdocs: %v (CI is set)", err)
		}
		return
	}
	for _, p := range patterns {
		for _, rel := range Glob(f, p) {
			if s := Read(f, rel); len(s) <= maxSize {
				f.Add(s)
			}
		}
	}
}
