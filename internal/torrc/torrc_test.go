package torrc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type kv struct {
	Key, Value string
	Op         Op
	LineNo     int
}

func simplify(lines []Line) []kv {
	var out []kv
	for _, l := range lines {
		out = append(out, kv{l.Key, l.Value, l.Op, l.LineNo})
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     []kv
		err      string
	}{
		{"simple", "Foo Bar\n", []kv{{"Foo", "Bar", OpSet, 1}}, ""},
		{"spaces in value", "Foo    Bar    Baz    \n", []kv{{"Foo", "Bar    Baz", OpSet, 1}}, ""},
		{"no final newline", "# c\n\n  Foo Bar", []kv{{"Foo", "Bar", OpSet, 3}}, ""},
		{"escaped newline after key", "Hello\\\nWorld\n", []kv{{"Hello", "World", OpSet, 1}}, ""},
		{"comment after value", "Hello World   #today\nHello World#tomorrow\n",
			[]kv{{"Hello", "World", OpSet, 1}, {"Hello", "World", OpSet, 2}}, ""},
		{"quoted", "Hello \"World!\"\n", []kv{{"Hello", "World!", OpSet, 1}}, ""},
		{"quoted escapes", `Hello "\"World\"\nand\nuniverse"` + "\n", []kv{{"Hello", "\"World\"\nand\nuniverse", OpSet, 1}}, ""},
		{"quoted hex octal", `K "\x41\101\7\t\\\'"  # c` + "\n", []kv{{"K", "AA\a\t\\'", OpSet, 1}}, ""},
		{"question escape", `K "\?"`, nil, "invalid escape"},
		{"empty quoted", "GeoIPFile \"\"\n", []kv{{"GeoIPFile", "", OpSet, 1}}, ""},
		{"continued", "Hello\\\nWorld\\\nand\\\nfriends\n", []kv{{"Hello", "Worldandfriends", OpSet, 1}}, ""},
		{"backslashes kept", "Too \\\nMany\\\\\\\nBacksl\\ashes \\\\\nhere\n", []kv{{"Too", "Many\\\\Backsl\\ashes \\here", OpSet, 1}}, ""},
		{"comments in continuation", "This entry      \\\n # has comments \\\n and some       \\\n are # generally \\\n silly\nNext 1\n",
			[]kv{{"This", "entry        and some        are  silly", OpSet, 1}, {"Next", "1", OpSet, 6}}, ""},
		{"key only", "ClientOnly\nAssumeReachable   \n", []kv{{"ClientOnly", "", OpSet, 1}, {"AssumeReachable", "", OpSet, 2}}, ""},
		{"magic", "+ExitNodes a\n/EntryNodes\n", []kv{{"ExitNodes", "a", OpAppend, 1}, {"EntryNodes", "", OpClear, 2}}, ""},
		{"crlf", "SocksPort 9050\r\nLog notice stdout\r\n", []kv{{"SocksPort", "9050", OpSet, 1}, {"Log", "notice stdout", OpSet, 2}}, ""},
		{"line numbers", "\n\n# x\nA 1\n\n  B 2\n", []kv{{"A", "1", OpSet, 4}, {"B", "2", OpSet, 6}}, ""},
		{"excess after quote", "K \"a\" b\n", nil, "t:1: excess data after quoted string"},
		{"unterminated quote", "A 1\nK \"abc\nL 2\n", nil, "t:2: unterminated quoted string"},
		{"bad escape", `K "\q"`, nil, "invalid escape"},
		{"bad hex", `K "\x4"`, nil, "invalid \\x escape"},
		{"octal range", `K "\777"`, nil, "out of range"},
		{"nul", "A 1\nB \x00\n", nil, "t:2: NUL byte"},
		{"bare magic", "+ x\n", nil, "missing keyword"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), "t")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(simplify(got), tt.want) {
				t.Errorf("got  %+v\nwant %+v", simplify(got), tt.want)
			}
		})
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInclude(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "conf.d", "20-b"), "B 2\n")
	write(t, filepath.Join(dir, "conf.d", "10-a"), "A 1\n%include "+filepath.Join(dir, "inner")+"\n")
	write(t, filepath.Join(dir, "conf.d", ".hidden"), "Hidden 1\n")
	write(t, filepath.Join(dir, "conf.d", "sub", "x"), "Sub 1\n")
	write(t, filepath.Join(dir, "inner"), "Inner 1\n")
	write(t, filepath.Join(dir, "g1.conf"), "G 1\n")
	write(t, filepath.Join(dir, "g2.conf"), "G 2\n")
	main := filepath.Join(dir, "torrc")
	write(t, main, "First 0\n%include "+filepath.Join(dir, "conf.d")+"\n%include "+filepath.Join(dir, "g*.conf")+"\nLast 9\n")
	lines, err := ParseFile(main)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range lines {
		keys = append(keys, l.Key+"="+l.Value+"@"+filepath.Base(l.File))
	}
	want := []string{"First=0@torrc", "A=1@10-a", "Inner=1@inner", "B=2@20-b", "G=1@g1.conf", "G=2@g2.conf", "Last=9@torrc"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("got %v\nwant %v", keys, want)
	}

	// Missing file, and a loop.
	write(t, main, "A 1\n%include "+filepath.Join(dir, "nope")+"\n")
	if _, err := ParseFile(main); err == nil || !strings.Contains(err.Error(), "torrc:2:") {
		t.Errorf("missing include: %v", err)
	}
	loop := filepath.Join(dir, "loop")
	write(t, loop, "%include "+loop+"\n")
	if _, err := ParseFile(loop); err == nil || !strings.Contains(err.Error(), "too deeply") {
		t.Errorf("loop: %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args  []string
		flags map[string]string
		opts  []kv
		err   string
	}{
		{args: []string{"-f", "/etc/tor/torrc", "--SocksPort", "9150", "DataDirectory", "/tmp/x"},
			flags: map[string]string{"--torrc-file": "/etc/tor/torrc"},
			opts:  []kv{{"SocksPort", "9150", OpSet, 3}, {"DataDirectory", "/tmp/x", OpSet, 5}}},
		{args: []string{"--verify-config", "--defaults-torrc", "d", "--version", "-h"},
			flags: map[string]string{"--verify-config": "", "--defaults-torrc": "d", "--version": "", "--help": ""}},
		{args: []string{"--dump-config", "--hush", "--dump-config", "short"},
			flags: map[string]string{"--dump-config": "short", "--hush": ""}},
		{args: []string{"+ExitNodes", "a", "--/EntryNodes", "-Log", "info stderr"},
			flags: map[string]string{},
			opts:  []kv{{"ExitNodes", "a", OpAppend, 1}, {"EntryNodes", "", OpClear, 3}, {"Log", "info stderr", OpSet, 4}}},
		{args: []string{"--SocksPort"}, err: "no value"},
		{args: []string{"-f"}, err: "no value"},
		{args: []string{"--", "x"}, err: "missing option name"},
	}
	for _, tt := range tests {
		c, err := ParseCommandLine(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(c.Flags, tt.flags) || !reflect.DeepEqual(simplify(c.Options), tt.opts) {
			t.Errorf("%q: flags %v opts %v", tt.args, c.Flags, simplify(c.Options))
		}
	}
}

// TestCommandLineOrder: Given keeps the flags' order (C tor runs the last
// command flag) and a flag without a value never takes the next argument.
func TestCommandLineOrder(t *testing.T) {
	c, err := ParseCommandLine([]string{"--verify-config", "--quiet", "--SocksPort", "9150",
		"--dump-config", "--hush", "-f", "t", "--dbg-dump-subsystem-list", "--hash-password", "--list-modules"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--verify-config", "--quiet", "--dump-config", "--hush", "--torrc-file", "--dbg-dump-subsystem-list", "--hash-password"}
	if !reflect.DeepEqual(c.Given, want) {
		t.Errorf("Given %q, want %q", c.Given, want)
	}
	if c.Flags["--hash-password"] != "--list-modules" || c.Flags["--dump-config"] != "" {
		t.Errorf("flag values %q", c.Flags)
	}
	if len(c.Options) != 1 || c.Options[0].Key != "SocksPort" || c.Options[0].Value != "9150" {
		t.Errorf("options %v", simplify(c.Options))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Foo Bar\n", "K \"\\x41\\101\"\n", "This entry \\\n # c \\\n x\n", "+A 1\n/B\n",
		"Hello\\\nWorld", "K \"unterminated", "%include /nonexistent\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lines, err := Parse(in, "f")
		if err != nil {
			return
		}
		for _, l := range lines {
			if l.Key == "" || strings.ContainsAny(l.Key, " \t\n#") || l.LineNo < 1 {
				t.Fatalf("bad line %+v", l)
			}
		}
	})
}
