// Commands on circuits, streams and guards: control-spec §3.11
// SETCIRCUITPURPOSE, §3.16 CLOSESTREAM, §3.17 CLOSECIRCUIT, §3.25
// DROPGUARDS, §3.34 DROPTIMEOUTS, with C tor's replies
// (handle_control_closestream and friends in control_cmd.c).
package control

import (
	"errors"
	"strconv"
	"strings"
)

// parseID reads a circuit or stream ID (C tor: a decimal up to 2^32-1 for
// circuits, 2^64-1 for streams); ok false for anything else.
func parseID(s string, bits int) (uint64, bool) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, bits)
	return v, err == nil
}

func (c *conn) cmdCloseStream(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{min: 2, max: -1})
	if err != nil {
		return c.bad(err, cmd)
	}
	id, ok := parseID(p.pos[0], 64)
	known := false
	if ok {
		for _, st := range c.s.b.Streams() {
			known = known || st.ID == id
		}
	}
	if !known {
		c.writeLine(552, "Unknown stream "+quote(p.pos[0]))
		return true
	}
	reason, err := strconv.ParseUint(p.pos[1], 10, 8)
	if err != nil || strings.HasPrefix(p.pos[1], "+") {
		c.writeLine(552, "Unrecognized reason "+quote(p.pos[1]))
		return true
	}
	// Further words are flags, ignored as control-spec asks.
	if err := c.s.b.CloseStream(id, byte(reason)); err != nil {
		if errors.Is(err, ErrUnknownKey) {
			c.writeLine(552, "Unknown stream "+quote(p.pos[0]))
		} else {
			c.writeLine(551, oneLine(err.Error()))
		}
		return true
	}
	c.writeLine(250, "OK")
	return true
}

func (c *conn) cmdCloseCircuit(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{min: 1, max: 1, keywords: true, flags: true})
	if err != nil {
		return c.bad(err, cmd)
	}
	id, ok := parseID(p.pos[0], 32)
	if !ok {
		c.writeLine(552, "Unknown circuit "+quote(p.pos[0]))
		return true
	}
	// Unrecognised flags are ignored (control-spec §3.17).
	if err := c.s.b.CloseCircuit(id, p.hasFlag("IfUnused")); err != nil {
		if errors.Is(err, ErrUnknownKey) {
			c.writeLine(552, "Unknown circuit "+quote(p.pos[0]))
		} else {
			c.writeLine(551, oneLine(err.Error()))
		}
		return true
	}
	c.writeLine(250, "OK")
	return true
}

// circuitPurpose reads a "general" or "controller" purpose (C tor's
// circuit_purpose_from_string, "purpose=" prefix allowed).
func circuitPurpose(s string) (string, bool) {
	if len(s) >= 8 && strings.EqualFold(s[:8], "purpose=") {
		s = s[8:]
	}
	switch strings.ToLower(s) {
	case "general":
		return "GENERAL", true
	case "controller":
		return "CONTROLLER", true
	}
	return "", false
}

func (c *conn) cmdSetCircuitPurpose(cmd command) bool {
	p, err := parseArgs(cmd.Args, syntax{min: 1, max: 1, keywords: true})
	if err != nil {
		return c.bad(err, cmd)
	}
	id, ok := parseID(p.pos[0], 32)
	known := false
	if ok {
		for _, ci := range c.s.b.Circuits() {
			known = known || ci.ID == id
		}
	}
	if !known {
		c.writeLine(552, "Unknown circuit "+quote(p.pos[0]))
		return true
	}
	v, given := p.get("purpose")
	if !given {
		c.writeLine(552, "No purpose given")
		return true
	}
	purpose, ok := circuitPurpose(v)
	if !ok {
		c.writeLine(552, "Unknown purpose "+quote(v))
		return true
	}
	if err := c.s.b.SetCircuitPurpose(id, purpose); err != nil {
		if errors.Is(err, ErrUnknownKey) {
			c.writeLine(552, "Unknown circuit "+quote(p.pos[0]))
		} else {
			c.writeLine(551, oneLine(err.Error()))
		}
		return true
	}
	c.writeLine(250, "OK")
	return true
}

func (c *conn) cmdDropGuards(cmd command) bool {
	if _, err := parseArgs(cmd.Args, syntax{}); err != nil {
		return c.bad(err, cmd)
	}
	c.s.log.Warn("DROPGUARDS is dangerous; make sure you understand the risks before using it. It may be removed in a future version of Tor.")
	if err := c.s.b.DropGuards(); err != nil {
		c.writeLine(551, oneLine(err.Error()))
		return true
	}
	c.writeLine(250, "OK")
	return true
}

func (c *conn) cmdDropTimeouts(cmd command) bool {
	if _, err := parseArgs(cmd.Args, syntax{}); err != nil {
		return c.bad(err, cmd)
	}
	c.s.log.Warn("DROPTIMEOUTS is dangerous; make sure you understand the risks before using it. It may be removed in a future version of Tor.")
	// C tor replies before the BUILDTIMEOUT_SET RESET event.
	c.writeLine(250, "OK")
	if err := c.s.b.DropTimeouts(); err != nil {
		c.s.log.Warn("control: DROPTIMEOUTS", "err", err)
	}
	return true
}
