package main

// gotor's command line, as C tor's (tor(1) "COMMAND-LINE OPTIONS";
// config_parse_commandline, CMDLINE_ONLY_OPTIONS and
// options_init_from_torrc in C tor's src/app/config/config.c,
// tor_run_main in src/app/main/main.c): the one-shot commands do their
// job and exit without touching the network; relay-only commands are
// refused; anything gotor does not understand is an error before
// anything starts. Exit codes are C tor's: 0, or 1 for any failure.
//
// Order, as C tor's: the command line is parsed (a flag that takes no
// value never takes the next argument); the start-up log opens at the
// quiet level; the immediate commands (--help, --version, ...) run; the
// configuration is read (the torrc is ignored by --hash-password); then
// the last command flag runs (--verify-config, --dump-config,
// --hash-password) or, with none, the client starts.

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/gotor/gotor/config"
	"github.com/gotor/gotor/internal/control"
	"github.com/gotor/gotor/internal/logging"
	"github.com/gotor/gotor/internal/torrc"
)

// quietFlags are the flags that lower start-up output (C tor's
// CMDLINE_ONLY_OPTIONS .quiet); the highest level given wins.
var quietFlags = map[string]quietLevel{
	"--quiet": quietSilent, "--dump-config": quietSilent,
	"--hush": quietHush, "--hash-password": quietHush, "--version": quietHush,
	"--list-modules": quietHush, "--library-versions": quietHush, "--help": quietHush,
	"--list-torrc-options": quietHush, "--dbg-dump-subsystem-list": quietHush,
}

// refused are C tor's command-line flags that a client cannot honour.
var refused = map[string]string{
	"--list-fingerprint":        "prints a relay's identity fingerprint",
	"--keygen":                  "makes relay identity keys",
	"--key-expiration":          "reports when a relay's signing key expires",
	"--format":                  "formats --key-expiration's output",
	"--newpass":                 "sets a passphrase for --keygen",
	"--no-passphrase":           "is for --keygen",
	"--passphrase-fd":           "is for --keygen",
	"--nt-service":              "runs tor as a Windows service",
	"--dbg-dump-subsystem-list": "lists C tor's internal subsystems",
}

// maxStdinTorrc bounds a torrc read from standard input.
const maxStdinTorrc = 16 << 20

// invocation is a command line that runs the client.
type invocation struct {
	args  []string
	stdin []byte // the torrc of "-f -", nil otherwise
	quiet quietLevel
	start *startupLog
	// configFile is the torrc's absolute path, "" for none or stdin.
	configFile string
}

// load reads the configuration from the command line's sources; a
// reload (SIGHUP) sees the same standard-input torrc again.
func (inv *invocation) load() (*config.Config, []config.Warning, error) {
	if inv.stdin != nil {
		return config.LoadWithStdin(inv.args, inv.stdin)
	}
	return config.Load("", inv.args)
}

// openLogs opens cfg's Log lines, or, when it has none, stdout at the
// quiet level (C tor's options_init_logs).
func (inv *invocation) openLogs(cfg *config.Config) (slog.Handler, func() error, error) {
	if len(cfg.Logs) == 0 {
		return newHandler(defaultLogs(inv.quiet))
	}
	return logging.New(cfg.Logs)
}

// startup handles the command line up to starting the client. It returns
// the invocation, its configuration and logs to run the client with, or
// done with the exit code of a one-shot command or a failure.
func startup(args []string, stdin io.Reader, stdout, stderr io.Writer) (inv *invocation, cfg *config.Config, logs *logging.Swappable, code int, done bool) {
	fail := func(start *startupLog, msgs ...string) (*invocation, *config.Config, *logging.Swappable, int, bool) {
		for _, m := range msgs {
			start.warn(m)
		}
		start.err("Reading config failed--see warnings above.")
		return nil, nil, nil, 1, true
	}
	finish := func(code int) (*invocation, *config.Config, *logging.Swappable, int, bool) {
		return nil, nil, nil, code, true
	}

	cl, perr := torrc.ParseCommandLine(args)
	inv = &invocation{args: args, quiet: quietOf(cl, args)}
	inv.start = newStartupLog(inv.quiet)
	start := inv.start
	start.notice(fmt.Sprintf("gotor %s (a Tor client in Go, following Tor %s) running on %s/%s with %s.",
		version, torMajor, runtime.GOOS, runtime.GOARCH, runtime.Version()))
	start.notice("Tor can't help you if you use it wrong! Learn how to be safe at https://support.torproject.org/faq/staying-anonymous/")
	if perr != nil {
		return fail(start, perr.Error())
	}

	// Immediate commands: their output and nothing else.
	switch {
	case cl.Has("--help"):
		fmt.Fprint(stdout, usage)
		return finish(0)
	case cl.Has("--list-torrc-options"):
		for _, n := range config.OptionNames() {
			fmt.Fprintln(stdout, n)
		}
		return finish(0)
	case cl.Has("--list-deprecated-options"):
		for _, n := range deprecatedOptions {
			fmt.Fprintln(stdout, n)
		}
		return finish(0)
	case cl.Has("--version"):
		printVersion(stdout)
		return finish(0)
	case cl.Has("--list-modules"):
		printModules(stdout)
		return finish(0)
	case cl.Has("--library-versions"):
		printLibraryVersions(stdout)
		return finish(0)
	}
	for _, f := range cl.Given {
		if why, ok := refused[f]; ok {
			start.err(fmt.Sprintf("%s %s; gotor is a Tor client (no relay, no relay keys), so it does not support it.", f, why))
			return finish(1)
		}
	}

	command := ""
	for _, f := range cl.Given {
		if f == "--hash-password" || f == "--verify-config" || f == "--dump-config" {
			command = f // the last one wins, as in C tor
		}
	}
	if command == "--hash-password" {
		// C tor reads no torrc for --hash-password, but checks the
		// command line's options.
		if _, _, err := config.FromLines(cl.Options); err != nil {
			return fail(start, configErrors(err)...)
		}
		// The "16:" RFC 2440 S2K form HashedControlPassword takes
		// (do_hash_password in C tor's src/app/main/main.c).
		fmt.Fprintln(stdout, control.HashPassword(cl.Flags["--hash-password"]))
		return finish(0)
	}

	// The torrc.
	switch f := cl.ConfigFile(); {
	case f == config.StdinTorrc:
		data, err := io.ReadAll(io.LimitReader(stdin, maxStdinTorrc+1))
		if err != nil {
			return fail(start, "Unable to read the configuration from standard input: "+err.Error())
		}
		if len(data) > maxStdinTorrc {
			return fail(start, fmt.Sprintf("The configuration on standard input is larger than %d bytes.", maxStdinTorrc))
		}
		inv.stdin = data
	case f == "":
		start.notice("No configuration file given (-f FILE); using reasonable defaults.")
	default:
		abs, err := filepath.Abs(f)
		if err != nil {
			abs = f
		}
		st, err := os.Stat(f)
		switch {
		case err == nil && !st.IsDir():
			inv.configFile = abs
			start.notice(fmt.Sprintf("Read configuration file %q.", abs))
		case cl.Has("--ignore-missing-torrc"):
			start.notice(fmt.Sprintf("Configuration file %q not present, using reasonable defaults.", abs))
		case cl.Has("--allow-missing-torrc"):
			start.warn(fmt.Sprintf("Unable to open configuration file %q.", abs)) // and go on, as C tor does
		default:
			return fail(start, fmt.Sprintf("Unable to open configuration file %q.", abs))
		}
	}
	cfg, warnings, err := inv.load()
	if err != nil {
		return fail(start, configErrors(err)...)
	}
	for _, w := range warnings {
		start.warn(w.String())
	}

	switch command {
	case "--verify-config":
		if inv.quiet == quietNone {
			fmt.Fprintln(stdout, "Configuration was valid")
		}
		return finish(0)
	case "--dump-config":
		return finish(dumpConfig(stdout, stderr, cl, cfg))
	}

	// Run the client. As C tor does, the DataDirectory exists before logs
	// are opened, so "Log notice file DATADIR/notice.log" works on a
	// first start.
	if cfg.DataDirectory != "" {
		if err := os.MkdirAll(cfg.DataDirectory, 0o700); err != nil {
			return fail(start, "Couldn't create the DataDirectory: "+err.Error())
		}
	}
	h, closeLogs, err := inv.openLogs(cfg)
	if err != nil {
		return fail(start, "Failed to init Log options: "+err.Error())
	}
	if err := start.replay(cfg.Logs); err != nil {
		start.warn("Start-up messages not written to the log files: " + err.Error())
	}
	return inv, cfg, logging.NewSwappable(h, closeLogs), 0, false
}

// quietOf is the quiet level of a command line (C tor parses it once
// more, ignoring errors, before anything else). For a command line that
// does not parse, its last argument, the one missing a value, is left
// out.
func quietOf(cl *torrc.CommandLine, args []string) quietLevel {
	if cl == nil && len(args) > 0 {
		cl, _ = torrc.ParseCommandLine(args[:len(args)-1])
	}
	q := quietNone
	if cl != nil {
		for _, f := range cl.Given {
			q = max(q, quietFlags[f])
		}
	}
	return q
}

// configErrors splits a configuration error into its lines, each as C
// tor words a failed configuration.
func configErrors(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l != "" {
			out = append(out, "Failed to parse/validate config: "+l)
		}
	}
	return out
}

// dumpConfig is --dump-config short|full (do_dump_config in C tor's
// src/app/main/main.c; "non-builtin" is a deprecated "short").
func dumpConfig(stdout, stderr io.Writer, cl *torrc.CommandLine, cfg *config.Config) int {
	var defaults *config.Config
	switch how := cl.Flags["--dump-config"]; how {
	case "short", "non-builtin":
		if how == "non-builtin" {
			fmt.Fprintln(stderr, "'non-builtin' is deprecated; use 'short' instead.")
		}
		// "short" leaves out what equals the defaults, which a
		// --defaults-torrc file is part of.
		defaults = config.DefaultConfig()
		if f := cl.DefaultsFile(); f != "" {
			d, _, err := config.Load("", []string{"--defaults-torrc", f})
			if err != nil {
				fmt.Fprintf(stderr, "--defaults-torrc %s: %v\n", f, err)
				return 1
			}
			defaults = d
		}
	case "full":
	default:
		fmt.Fprintln(stderr, "No valid argument to --dump-config found!")
		fmt.Fprintln(stderr, "Please select 'short' or 'full'.")
		return 1
	}
	for _, l := range cfg.Dump(defaults) {
		fmt.Fprintln(stdout, l)
	}
	return 0
}
