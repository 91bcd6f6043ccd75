// Bootstrap progress reporting with C tor's phases: control-spec §5
// ("Bootstrap phases"); percentages and tags as in C tor's
// control_bootstrap.c.

package dirmgr

import "fmt"

// Progress is one bootstrap status report.
type Progress struct {
	Percent int
	Tag     string
	Summary string
}

func (p Progress) String() string {
	return fmt.Sprintf("Bootstrapped %d%% (%s): %s", p.Percent, p.Tag, p.Summary)
}

// Bootstrap phases reported by the directory manager.
var (
	PhaseStarting              = Progress{0, "starting", "Starting"}
	PhaseConn                  = Progress{5, "conn", "Connecting to a relay"}
	PhaseConnDone              = Progress{10, "conn_done", "Connected to a relay"}
	PhaseRequestingStatus      = Progress{25, "requesting_status", "Asking for networkstatus consensus"}
	PhaseLoadingStatus         = Progress{30, "loading_status", "Loading networkstatus consensus"}
	PhaseLoadingKeys           = Progress{40, "loading_keys", "Loading authority key certs"}
	PhaseRequestingDescriptors = Progress{45, "requesting_descriptors", "Asking for relay descriptors"}
	PhaseLoadingDescriptors    = Progress{50, "loading_descriptors", "Loading relay descriptors"}
	PhaseEnoughDirInfo         = Progress{75, "enough_dirinfo", "Loaded enough directory info to build circuits"}
	// The last phases are the engine's: a channel to a guard, then a
	// first circuit.
	PhaseHandshakeDone = Progress{90, "ap_handshake_done", "Handshake finished with a relay to build circuits"}
	PhaseCircuitCreate = Progress{95, "circuit_create", "Establishing a Tor circuit"}
	PhaseDone          = Progress{100, "done", "Done"}
)
