package torrc

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gotor/gotor/internal/testnet"
)

// TestAgainstCTor is a differential test: each value syntax is given to
// C tor (as ContactInfo, a plain string option) and to Parse. C tor's
// --dump-config prints the value it decoded (quoted and escaped when
// needed); it must equal the value Parse decodes, and both must reject
// the same inputs.
func TestAgainstCTor(t *testing.T) {
	tor := testnet.NeedTool(t, "tor")
	cases := []string{
		"hello world",
		"hello    world   ",
		"hello   # comment",
		"hello#comment",
		`"a\tb \"q\" \x41\101\n\r\\ \'"`,
		`"\?"`,
		`"x"   # trailing comment`,
		`"\0101\7\19"`,
		"a\\\nb",
		"Worldand\\\nfriends\\\nagain",
		"entry      \\\n # has comments \\\n and some       \\\n are # generally \\\n silly",
		"Many\\\\\\\nBacksl\\ashes \\\\\nhere",
		"mid\\dle back\\slash",
		`"x" y`,
		`"\q"`,
		`"\x4"`,
		`"unterminated`,
		`"\777"`,
	}
	dir := t.TempDir()
	for _, c := range cases {
		text := "DataDirectory " + dir + "\nSocksPort 0\nContactInfo " + c + "\nLog err stderr\n"
		path := filepath.Join(dir, "torrc")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, torErr := exec.Command(tor, "--dump-config", "short", "--hush", "--defaults-torrc", os.DevNull, "-f", path).Output()
		ours, ourErr := Parse([]byte(text), "torrc")
		if (torErr != nil) != (ourErr != nil) {
			t.Errorf("%q: C tor error %v, ours %v", c, torErr, ourErr)
			continue
		}
		if torErr != nil {
			continue
		}
		want := ""
		dumped, err := Parse(out, "dump")
		if err != nil {
			t.Fatalf("parsing C tor's dump %q: %v", out, err)
		}
		for _, l := range dumped {
			if l.Key == "ContactInfo" {
				want = l.Value
			}
		}
		got := ""
		for _, l := range ours {
			if l.Key == "ContactInfo" {
				got = l.Value
			}
		}
		if got != want {
			t.Errorf("%q: ours %q, C tor %q", c, got, want)
		}
		if len(ours) != 4 {
			t.Errorf("%q: %d lines", c, len(ours))
		}
	}
}
