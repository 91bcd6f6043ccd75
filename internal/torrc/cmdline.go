package torrc

import (
	"fmt"
	"strings"
)

// Command-line syntax, as C tor's config_parse_commandline: each
// argument is a keyword, optionally prefixed by one or two dashes and by
// "+" or "/", followed by its value as the next argument ("--SocksPort
// 9150", "SocksPort 9150", "+ExitNodes ...", "/ExitNodes"). A few
// keywords are the command's own flags, not torrc options.

// argKind says whether a command-line-only flag takes an argument.
type argKind uint8

const (
	argNone argKind = iota
	argNeeded
	argOptional
)

// cmdlineOnly lists C tor's command-line-only flags.
var cmdlineOnly = map[string]argKind{
	"-f": argNeeded, "--torrc-file": argNeeded, "--defaults-torrc": argNeeded,
	"--allow-missing-torrc": argNone, "--ignore-missing-torrc": argNone,
	"--hash-password": argNeeded, "--dump-config": argOptional,
	"--list-fingerprint": argOptional, "--keygen": argNone,
	"--key-expiration": argOptional, "--format": argNeeded, "--newpass": argNone,
	"--no-passphrase": argNone, "--passphrase-fd": argNeeded,
	"--verify-config": argNone, "--quiet": argNone, "--hush": argNone,
	"--version": argNone, "--list-modules": argNone, "--library-versions": argNone,
	"--help": argNone, "-h": argNone, "--list-torrc-options": argNone,
	"--list-deprecated-options": argNone, "--nt-service": argNone, "-nt-service": argNone,
	"--dbg-dump-subsystem-list": argNone,
}

// CommandLine is a parsed command line.
type CommandLine struct {
	// Flags holds the command-line-only flags by canonical name ("-h" is
	// "--help", "-f" is "--torrc-file"), with their argument or "".
	Flags map[string]string
	// Given lists the command-line-only flags by canonical name in the
	// order given (C tor's command is the last command flag).
	Given []string
	// Options are the torrc options given on the command line, in order;
	// they take precedence over the torrc file.
	Options []Line
}

// Has reports whether flag (e.g. "--verify-config") was given.
func (c *CommandLine) Has(flag string) bool {
	_, ok := c.Flags[flag]
	return ok
}

// ConfigFile is the -f/--torrc-file argument, or "".
func (c *CommandLine) ConfigFile() string { return c.Flags["--torrc-file"] }

// DefaultsFile is the --defaults-torrc argument, or "".
func (c *CommandLine) DefaultsFile() string { return c.Flags["--defaults-torrc"] }

// ParseCommandLine parses args (without the program name).
func ParseCommandLine(args []string) (*CommandLine, error) {
	c := &CommandLine{Flags: map[string]string{}}
	for i := 0; i < len(args); {
		a := args[i]
		kind, isFlag := cmdlineOnly[a]
		if !isFlag {
			kind = argNeeded
		}
		key := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		op := OpSet
		switch {
		case strings.HasPrefix(key, "+"):
			op, key = OpAppend, key[1:]
		case strings.HasPrefix(key, "/"):
			op, key, kind = OpClear, key[1:], argNone
		}
		last := i == len(args)-1
		val := ""
		switch {
		case kind == argNeeded && last:
			return nil, fmt.Errorf("command-line option %q has no value", a)
		case kind == argOptional && (last || strings.HasPrefix(args[i+1], "-")):
			kind = argNone
		case kind != argNone:
			val = args[i+1]
		}
		if isFlag {
			name := a
			switch a {
			case "-h":
				name = "--help"
			case "-f":
				name = "--torrc-file"
			case "-nt-service":
				name = "--nt-service"
			}
			c.Flags[name] = val
			c.Given = append(c.Given, name)
		} else {
			if key == "" {
				return nil, fmt.Errorf("command-line argument %d: missing option name", i+1)
			}
			c.Options = append(c.Options, Line{Key: key, Value: val, Op: op, File: CommandLineFile, LineNo: i + 1})
		}
		if kind == argNone {
			i++
		} else {
			i += 2
		}
	}
	return c, nil
}
