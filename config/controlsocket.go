package config

// ControlSocket and ControlSocketsGroupWritable (tor(1); C tor's
// parse_port_config with CL_PORT_IS_UNIXSOCKET and
// CL_PORT_DFLT_GROUP_WRITABLE in src/app/config/config.c):
// "ControlSocket PATH [flags]" is a Unix control socket, the same
// listener as "ControlPort unix:PATH [flags]", and kept as that
// (Config.ControlPorts); "ControlSocket 0" adds none.
// "ControlSocketsGroupWritable 1" makes every control socket, of either
// option, mode 0660 (GroupWritable).
//
// ControlSocket keeps its own list while the lines are applied, so that
// ControlPort's first line, which replaces ControlPort's earlier values,
// leaves the sockets alone, as C tor keeps the two options apart; both
// are settled once every line is applied (finishControlSockets). Their
// values live in the load state, which a reset cannot reach: "/Option"
// clears them across sources (Load drops the lower sources' lines), not
// within one list of lines.
//
// Registered here rather than in the table of options.go while that file
// changes on several branches; the entries belong in the table.

import (
	"strings"

	"github.com/gotor/gotor/internal/torrc"
)

func init() {
	options["ControlSocket"] = option{
		list:  true,
		reset: func(*Config) {}, // the default is none; see above
		set: func(_ *Config, st *loadState, _ torrc.Line, v string) error {
			v = strings.TrimSpace(v)
			if v == "0" {
				return nil
			}
			if !strings.HasPrefix(v, "unix:") {
				v = "unix:" + v
			}
			p, ok, err := parseControlPort(v)
			if err == nil && ok {
				st.controlSockets = append(st.controlSockets, p)
			}
			return err
		},
	}
	options["ControlSocketsGroupWritable"] = option{
		reset: func(*Config) {},
		set: func(_ *Config, st *loadState, _ torrc.Line, v string) (err error) {
			st.socketsGroupWritable, err = parseBool(v)
			return err
		},
	}
}

// finishControlSockets adds the ControlSocket listeners to c's control
// listeners and applies ControlSocketsGroupWritable to every Unix one.
func (st *loadState) finishControlSockets(c *Config) {
	c.ControlPorts = append(c.ControlPorts, st.controlSockets...)
	if st.socketsGroupWritable {
		for i := range c.ControlPorts {
			if c.ControlPorts[i].Unix != "" {
				c.ControlPorts[i].GroupWritable = true
			}
		}
	}
}
