//go:build !unix

package pt

import "os"

// terminate ends the process where there is no SIGTERM (pt-spec §3.4
// step 4: the OS's forceful termination).
func terminate(p *os.Process) error { return p.Kill() }
