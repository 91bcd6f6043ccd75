package control

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotor/gotor/internal/testnet"
)

// A value produced by `tor --hash-password foo` (tor 0.4.9.11).
const torHashFoo = "16:86602A22BE91229360C074A0C4F7B47A4871F94EF24021C3BEFBA33CB8"

func TestS2KKnownValue(t *testing.T) {
	if !CheckPassword(torHashFoo, "foo") {
		t.Fatal("tor's hash of foo not accepted")
	}
	if CheckPassword(torHashFoo, "fop") || CheckPassword(torHashFoo, "") {
		t.Fatal("wrong password accepted")
	}
	if CheckPassword("16:00", "foo") || CheckPassword("x", "foo") {
		t.Fatal("malformed hash accepted")
	}
}

func TestS2KCount(t *testing.T) {
	if got := s2kCount(0x60); got != 65536 {
		t.Fatalf("count(0x60) = %d", got)
	}
	if got := s2kCount(0); got != 1024 {
		t.Fatalf("count(0) = %d", got)
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	h := HashPassword("correct horse")
	if !strings.HasPrefix(h, "16:") || len(h) != 3+2*hashedPasswdLen {
		t.Fatalf("bad format %q", h)
	}
	if h[3+16:3+18] != "60" {
		t.Fatalf("indicator not 0x60: %q", h)
	}
	if !CheckPassword(h, "correct horse") || CheckPassword(h, "correct horsE") {
		t.Fatal("round trip failed")
	}
	if HashPassword("x") == HashPassword("x") {
		t.Fatal("salt not random")
	}
}

// TestS2KAgainstTor runs the installed tor binary, if any, on fresh
// passwords (including non-ASCII and quotes) and checks we accept its
// output.
func TestS2KAgainstTor(t *testing.T) {
	tor := testnet.NeedTool(t, "tor")
	for _, pw := range []string{"foo", "pass word \"quoted\" \\ ü", strings.Repeat("long", 40)} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, tor, "--quiet", "--hash-password", pw).Output()
		cancel()
		if err != nil {
			t.Fatalf("tor --hash-password: %v", err)
		}
		lines := strings.Fields(strings.TrimSpace(string(out)))
		h := lines[len(lines)-1]
		if !CheckPassword(h, pw) {
			t.Fatalf("tor hash %q of %q not accepted", h, pw)
		}
		if CheckPassword(h, pw+"x") {
			t.Fatal("wrong password accepted")
		}
	}
}

func TestWriteCookie(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "control_auth_cookie")
	c, err := WriteCookie(p, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("mode %v size %d", fi.Mode(), fi.Size())
	}
	b, _ := os.ReadFile(p)
	if !bytes.Equal(b, c) {
		t.Fatal("content mismatch")
	}
	c2, err := WriteCookie(p, false)
	if err != nil || bytes.Equal(c, c2) {
		t.Fatal("cookie not regenerated")
	}
}
