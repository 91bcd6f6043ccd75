//go:build unix

package pt

import (
	"os"
	"syscall"
)

// terminate asks the process to exit (pt-spec §3.4 step 3: SIGTERM).
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
