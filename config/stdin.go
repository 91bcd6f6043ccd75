package config

// The torrc on standard input: C tor's "-f -" (load_torrc_from_stdin in
// C tor's src/app/config/config.c), which stem's launch_tor_with_config
// uses.

import (
	"errors"

	"github.com/gotor/gotor/internal/torrc"
)

// StdinTorrc is the -f argument that names standard input, and the file
// name its lines carry in errors.
const (
	StdinTorrc     = "-"
	stdinTorrcName = "<stdin>"
)

// LoadWithStdin is Load(“”, args) for a command line whose torrc may be
// standard input ("-f -"): stdin is that torrc's text, which the caller
// reads once (C tor reads standard input to its end), so that loading
// again (SIGHUP) sees the same text. Its lines are named "<stdin>" in
// errors; %include lines in it are relative to the working directory.
func LoadWithStdin(args []string, stdin []byte) (*Config, []Warning, error) {
	if stdin == nil {
		stdin = []byte{}
	}
	return loadSources("", args, stdin, nil)
}

// parseTorrc reads one configuration source: the torrc (main) or the
// defaults file.
func parseTorrc(path string, main bool, stdin []byte) ([]torrc.Line, error) {
	if main && path == StdinTorrc {
		if stdin == nil {
			return nil, errors.New(`the torrc "-" is standard input: read it and use config.LoadWithStdin`)
		}
		return torrc.ParseIncludes(stdin, stdinTorrcName)
	}
	return torrc.ParseFile(path)
}
