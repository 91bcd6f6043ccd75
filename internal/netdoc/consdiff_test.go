package netdoc

import (
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func diffFor(base, result [32]byte, cmds string) string {
	return "network-status-diff-version 1\nhash " + strings.ToUpper(hex.EncodeToString(base[:])) + " " +
		strings.ToUpper(hex.EncodeToString(result[:])) + "\n" + cmds
}

func TestApplyDiff(t *testing.T) {
	base := "a\nb\nc\nd\ne\n"
	from := [32]byte{1}
	want := "Z\na\nY\nb\nX\nW\nd\n"
	to := sha3.Sum256([]byte(want))
	// Back to front, as C tor writes them (appendix E).
	got, err := ApplyDiff(base, from, diffFor(from, to, "5,$d\n3c\nX\nW\n.\n1a\nY\n.\n0a\nZ\n.\n"))
	if err != nil || got != want {
		t.Fatalf("ApplyDiff = %q, %v; want %q", got, err, want)
	}
	for name, cmds := range map[string]string{
		"front to back":  "0a\nZ\n.\n1a\nY\n.\n3c\nX\nW\n.\n5,$d\n",
		"overlap":        "5,$d\n3,4d\n4c\nX\n.\n",
		"past the end":   "9d\n",
		"unknown":        "3x\n",
		"unended block":  "3c\nX\n",
		"line zero":      "0d\n",
		"$ with c":       "3,$c\nX\n.\n",
		"leading zero":   "03d\n",
		"wrong result":   "5d\n",
		"empty command":  "\n",
		"reversed range": "4,3d\n",
	} {
		if _, err := ApplyDiff(base, from, diffFor(from, to, cmds)); !errors.Is(err, ErrDiff) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := ApplyDiff(base, [32]byte{2}, diffFor(from, to, "5,$d\n")); !errors.Is(err, ErrDiff) {
		t.Errorf("diff from another consensus: %v", err)
	}
	if _, err := ApplyDiff(base, from, "network-status-diff-version 2\nhash x y\n"); !errors.Is(err, ErrDiff) {
		t.Errorf("version 2: %v", err)
	}
}
