package main

// The one-shot commands' output, in the form C tor prints it
// (print_usage, list_deprecated_options, list_enabled_modules,
// print_library_versions and --version in C tor's
// src/app/config/config.c).

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/gotor/gotor/internal/engine"
)

// version is gotor's own version.
var version = "0.1.0-dev"

// torVersion is the Tor version gotor follows (engine.TorVersion, what
// GETINFO version reports); torMajor is its release series.
const (
	torVersion = engine.TorVersion
	torMajor   = "0.4.9"
)

const usage = `gotor -f <torrc> [args]

gotor is a Tor client written in Go. It reads C tor's command line and
torrc (option names and syntax; see docs/TORRC.md):

  -f FILE, --torrc-file FILE  read the configuration from FILE ("-" is standard input)
  --defaults-torrc FILE       read defaults from FILE (a missing file is fine)
  --ignore-missing-torrc, --allow-missing-torrc
                              a missing -f FILE is not an error
  --Option value              set a torrc option (overrides the file); +Option appends, /Option clears
  --verify-config             check the configuration and exit
  --dump-config short|full    print the configuration (short: what differs from the defaults)
  --hash-password PASSWORD    print a HashedControlPassword value for PASSWORD
  --list-torrc-options        list the torrc options gotor implements
  --list-deprecated-options   list the options the Tor version gotor follows deprecates
  --list-modules              list C tor's optional modules and whether gotor has them
  --library-versions          print the Go and library versions gotor was built with
  --version                   print the version
  --hush                      log only warnings and errors on standard output
  --quiet                     log nothing on standard output
  -h, --help                  print this help

Without -f, gotor runs with built-in defaults: SocksPort 127.0.0.1:9050,
the DataDirectory in the user's cache directory, the Tor network's
directory authorities. gotor is a client: the relay commands (--keygen,
--list-fingerprint, --key-expiration) are refused.
`

// deprecatedOptions are the options C tor 0.4.9 deprecates
// (option_deprecation_notes_ in C tor's src/app/config/config.c), in its
// order. gotor follows their deprecation: none of them sets anything.
var deprecatedOptions = []string{
	"HTTPProxy",
	"HTTPProxyAuthenticator",
	"ReachableDirAddresses",
	"ClientPreferIPv6DirPort",
	"ClientAutoIPv6ORPort",
}

// printVersion: the first line is C tor's ("Tor version X."), with X a
// version-spec version that names gotor.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "Tor version %s (gotor-%s).\n", torVersion, version)
	fmt.Fprintf(w, "gotor %s is a Tor client written in Go; it follows Tor %s's command line, torrc and control protocol.\n", version, torMajor)
	fmt.Fprintf(w, "gotor is running on %s/%s, built with %s.\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// printModules lists C tor's optional modules: gotor, a client, has none
// of them (pow: gotor does not solve onion-service proof-of-work puzzles).
func printModules(w io.Writer) {
	for _, m := range []string{"relay", "dirauth", "dircache", "pow"} {
		fmt.Fprintf(w, "%s: no\n", m)
	}
}

// printLibraryVersions prints the Go toolchain and the modules gotor was
// built with; in a Go binary the compiled and the run-time versions are
// the same.
func printLibraryVersions(w io.Writer) {
	fmt.Fprintf(w, "Tor version %s (gotor-%s). \n", torVersion, version)
	fmt.Fprintf(w, "Library versions\tCompiled\t\tRuntime\n")
	fmt.Fprintf(w, "%-8s\t\t%-15s\t\t%s\n", "Go", runtime.Version(), runtime.Version())
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			fmt.Fprintf(w, "%-8s\t\t%-15s\t\t%s\n", m.Path, m.Version, m.Version)
		}
	}
}
