// Command handlers: control-spec §3.1 SETCONF, §3.2 RESETCONF, §3.3
// GETCONF, §3.4 SETEVENTS, §3.5 AUTHENTICATE, §3.7 SIGNAL, §3.8 MAPADDRESS,
// §3.9 GETINFO, §3.21 PROTOCOLINFO, §3.23 TAKEOWNERSHIP, §3.24
// AUTHCHALLENGE, §3.33 DROPOWNERSHIP, §3.12 USEFEATURE.
package control

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
)

type handler func(c *conn, cmd command) bool

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"PROTOCOLINFO":  (*conn).cmdProtocolInfo,
		"AUTHCHALLENGE": (*conn).cmdAuthChallenge,
		"AUTHENTICATE":  (*conn).cmdAuthenticate,
		"GETINFO":       (*conn).cmdGetInfo,
		"GETCONF":       (*conn).cmdGetConf,
		"SETCONF":       func(c *conn, cmd command) bool { return c.cmdSetConf(cmd, false) },
		"RESETCONF":     func(c *conn, cmd command) bool { return c.cmdSetConf(cmd, true) },
		"+LOADCONF":     (*conn).cmdLoadConf,
		"SAVECONF":      (*conn).cmdSaveConf,
		"SETEVENTS":     (*conn).cmdSetEvents,
		"SIGNAL":        (*conn).cmdSignal,
		"TAKEOWNERSHIP": (*conn).cmdTakeOwnership,
		"DROPOWNERSHIP": (*conn).cmdDropOwnership,
		"MAPADDRESS":    (*conn).cmdMapAddress,
		"USEFEATURE":    (*conn).cmdUseFeature,
		"RESOLVE":       (*conn).cmdResolve,
		"CLOSESTREAM":   (*conn).cmdCloseStream,
		"CLOSECIRCUIT":  (*conn).cmdCloseCircuit,
		"DROPGUARDS":    (*conn).cmdDropGuards,
		"DROPTIMEOUTS":  (*conn).cmdDropTimeouts,
		"HSFETCH":       (*conn).cmdHSFetch,

		"SETCIRCUITPURPOSE":        (*conn).cmdSetCircuitPurpose,
		"ONION_CLIENT_AUTH_ADD":    (*conn).cmdOnionClientAuthAdd,
		"ONION_CLIENT_AUTH_REMOVE": (*conn).cmdOnionClientAuthRemove,
		"ONION_CLIENT_AUTH_VIEW":   (*conn).cmdOnionClientAuthView,
		"ADD_ONION":                (*conn).cmdAddOnion,
		"DEL_ONION":                (*conn).cmdDelOnion,
	}
}

// unsupported are commands of control-spec §3 that this implementation
// recognises but does not implement; they get 551 rather than 510.
var unsupported = map[string]bool{
	"EXTENDCIRCUIT": true, "ATTACHSTREAM": true, "+POSTDESCRIPTOR": true,
	"REDIRECTSTREAM": true, "+HSPOST": true,
}

// errKV is C tor's wording for a malformed Key=Value argument list.
var errKV = errors.New("Cannot parse keyword argument(s)")

// bad replies as C tor does to arguments that do not parse; the
// keyword is as the controller sent it, "+" included.
func (c *conn) bad(err error, cmd command) bool {
	kw := cmd.Keyword
	if cmd.Multiline {
		kw = "+" + kw
	}
	c.writeLine(512, "Bad arguments to "+kw+": "+err.Error())
	return true
}

// ---- authentication ----

func (c *conn) cmdProtocolInfo(cmd command) bool {
	c.sentProtocolInfo = true
	for _, a := range strings.Fields(cmd.Args) {
		if _, err := strconv.ParseUint(a, 10, 31); err != nil {
			c.writeLine(513, "No such version "+quote(a))
			return c.authed
		}
	}
	s := c.s
	a := s.auth.Load()
	var methods []string
	if a.cookieAuth {
		methods = append(methods, "COOKIE", "SAFECOOKIE")
	}
	if len(a.passwords) > 0 {
		methods = append(methods, "HASHEDPASSWORD")
	}
	if len(methods) == 0 {
		methods = append(methods, "NULL")
	}
	auth := "AUTH METHODS=" + strings.Join(methods, ",")
	if a.cookieAuth {
		auth += " COOKIEFILE=" + quote(a.cookieFile)
	}
	r := newReply(250).Line("PROTOCOLINFO 1").Line(auth).
		Line("VERSION Tor=" + quote(s.b.Version())).Line("OK")
	c.write(r.Bytes())
	return true
}

// decodeSecret decodes an AUTHENTICATE/AUTHCHALLENGE argument: a
// QuotedString or hex.
func decodeSecret(a arg) ([]byte, error) {
	if a.Quoted {
		return []byte(a.Value), nil
	}
	b, err := hex.DecodeString(a.Value)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (c *conn) cmdAuthChallenge(cmd command) bool {
	args, err := splitArgs(cmd.Args)
	if err != nil {
		c.writeLine(512, "Bad arguments to AUTHCHALLENGE: "+err.Error())
		return false
	}
	if len(args) == 0 || args[0].HasEq || args[0].Quoted || !strings.EqualFold(args[0].Value, "SAFECOOKIE") {
		c.writeLine(513, "AUTHCHALLENGE only supports SAFECOOKIE authentication")
		return false
	}
	a := c.s.auth.Load()
	if !a.cookieAuth {
		c.writeLine(515, "Cookie authentication is disabled")
		return false
	}
	if len(args) != 2 {
		c.writeLine(512, "Wrong number of arguments for AUTHCHALLENGE")
		return false
	}
	if args[1].HasEq {
		c.writeLine(512, "AUTHCHALLENGE does not accept keyword arguments.")
		return false
	}
	clientNonce, err := decodeSecret(args[1])
	if err != nil {
		c.writeLine(513, "Invalid base16 client nonce")
		return false
	}
	serverNonce := make([]byte, safeCookieNonce)
	rand.Read(serverNonce)
	serverHash, clientHash := safeCookieHashes(a.cookie, clientNonce, serverNonce)
	c.safeCookieHash = clientHash
	c.writeLine(250, "AUTHCHALLENGE SERVERHASH="+strings.ToUpper(hex.EncodeToString(serverHash))+
		" SERVERNONCE="+strings.ToUpper(hex.EncodeToString(serverNonce)))
	return true
}

func (c *conn) cmdAuthenticate(cmd command) bool {
	args, err := splitArgs(cmd.Args)
	if err != nil {
		c.writeLine(512, "Bad arguments to AUTHENTICATE: "+err.Error())
		return false
	}
	var secret []byte
	quoted := false
	switch {
	case len(args) == 0:
	case len(args) > 1:
		c.writeLine(512, "Too many arguments to AUTHENTICATE.")
		return false
	case args[0].HasEq:
		c.writeLine(512, "AUTHENTICATE does not accept keyword arguments.")
		return false
	default:
		quoted = args[0].Quoted
		if secret, err = decodeSecret(args[0]); err != nil {
			c.writeLine(551, "Invalid hexadecimal encoding.  Maybe you tried a plain text "+
				"password?  If so, the standard requires that you put it in double quotes.")
			return false
		}
	}
	if msg := c.checkAuth(secret, quoted); msg != "" {
		c.s.log.Warn("control: authentication failed", "remote", c.nc.RemoteAddr().String(), "why", msg)
		c.writeLine(515, "Authentication failed: "+msg)
		return false
	}
	c.authed = true
	c.writeLine(250, "OK")
	return true
}

// checkAuth returns "" if secret authenticates the connection, else the
// reason (worded like C tor's).
func (c *conn) checkAuth(secret []byte, quoted bool) string {
	a := c.s.auth.Load()
	if c.safeCookieHash != nil {
		want := c.safeCookieHash
		c.safeCookieHash = nil
		if len(secret) != len(want) {
			return "Wrong length for safe cookie response."
		}
		if subtle.ConstantTimeCompare(secret, want) != 1 {
			return "Safe cookie response did not match expected value."
		}
		return ""
	}
	cookie := a.cookieAuth
	passwd := len(a.passwords) > 0
	if !cookie && !passwd {
		return "" // NULL authentication, only reachable with AllowNullAuth
	}
	if cookie {
		if len(secret) == cookieLen && subtle.ConstantTimeCompare(secret, a.cookie) == 1 {
			return ""
		}
		if !passwd {
			if len(secret) != cookieLen {
				return "Wrong length on authentication cookie."
			}
			return "Authentication cookie did not match expected value."
		}
	}
	for _, hp := range a.passwords {
		if hp.matches(secret) {
			return ""
		}
	}
	if cookie {
		return "Password did not match HashedControlPassword *or* authentication cookie."
	}
	if quoted {
		return "Password did not match HashedControlPassword value from configuration"
	}
	return "Password did not match HashedControlPassword value from configuration. " +
		"Maybe you tried a plain text password? If so, the standard requires that you put it in double quotes."
}

// ---- configuration ----

func (c *conn) cmdGetConf(cmd command) bool {
	keys := strings.Fields(cmd.Args)
	r := newReply(250)
	var unknown []string
	for _, k := range keys {
		name, vals, err := c.s.b.GetConf(k)
		if err != nil {
			if errors.Is(err, ErrUnknownKey) {
				unknown = append(unknown, "Unrecognized configuration key "+quote(k))
				continue
			}
			c.writeLine(551, oneLine(err.Error()))
			return true
		}
		if len(vals) == 0 {
			r.Line(name)
		}
		for _, v := range vals {
			r.Line(name + "=" + oneLine(v))
		}
	}
	if len(unknown) > 0 {
		u := newReply(552)
		for _, l := range unknown {
			u.Line(l)
		}
		c.write(u.Bytes())
		return true
	}
	c.write(r.Bytes()) // empty → "250 OK"
	return true
}

func (c *conn) cmdSetConf(cmd command, reset bool) bool {
	args, err := splitArgs(cmd.Args)
	if err != nil {
		return c.bad(errKV, cmd)
	}
	var changes []ConfChange
	idx := map[string]int{}
	for _, a := range args {
		key := a.Key
		if !a.HasEq {
			if a.Quoted {
				return c.bad(errKV, cmd)
			}
			key = a.Value
		}
		lk := strings.ToLower(key)
		i, seen := idx[lk]
		if !seen {
			i = len(changes)
			idx[lk] = i
			changes = append(changes, ConfChange{Key: key})
		}
		if a.HasEq {
			changes[i].Values = append(changes[i].Values, a.Value)
			changes[i].Reset = false
		} else if reset && len(changes[i].Values) == 0 {
			changes[i].Reset = true
		}
	}
	if len(changes) == 0 {
		c.writeLine(250, "OK")
		return true
	}
	if err := c.s.b.SetConf(changes); err != nil {
		// C tor's control_setconf_helper replies.
		switch {
		case errors.Is(err, ErrUnknownKey):
			c.writeLine(552, "Unrecognized option: "+oneLine(err.Error()))
		case errors.Is(err, ErrInvalidValue):
			c.writeLine(513, "Unacceptable option value: "+oneLine(err.Error()))
		case errors.Is(err, ErrTransition):
			c.writeLine(553, "Transition not allowed: "+oneLine(err.Error()))
		default:
			c.writeLine(553, "Unable to set option: "+oneLine(err.Error()))
		}
		return true
	}
	c.writeLine(250, "OK")
	return true
}

// cmdLoadConf is +LOADCONF (control-spec §3.22), with the replies of C
// tor's handle_control_loadconf.
func (c *conn) cmdLoadConf(cmd command) bool {
	if cmd.Args != "" {
		return c.bad(errors.New("Cannot accept more than 0 argument(s)"), cmd)
	}
	if err := c.s.b.LoadConf(cmd.Data); err != nil {
		msg := oneLine(err.Error())
		switch {
		case errors.Is(err, ErrUnknownKey), errors.Is(err, ErrInvalidValue):
			c.writeLine(552, "Invalid config file: "+msg)
		case errors.Is(err, ErrTransition):
			c.writeLine(553, "Transition not allowed: "+msg)
		default:
			c.writeLine(553, "Unable to set option: "+msg)
		}
		return true
	}
	c.writeLine(250, "OK")
	return true
}

// cmdSaveConf is SAVECONF [FORCE] (control-spec §3.6).
func (c *conn) cmdSaveConf(cmd command) bool {
	force := false
	for _, w := range strings.Fields(cmd.Args) {
		if !strings.EqualFold(w, "FORCE") {
			return c.bad(errors.New("Unrecognized argument "+quote(w)), cmd)
		}
		force = true
	}
	if err := c.s.b.SaveConf(force); err != nil {
		c.s.log.Warn("control: SAVECONF failed", "err", err)
		c.writeLine(551, "Unable to write configuration to disk.")
		return true
	}
	c.writeLine(250, "OK")
	return true
}

// ---- events ----

// allEventNames are the event names of control-spec §4.1; SETEVENTS
// accepts all of them, the server produces those listed in backend.go.
var allEventNames = []string{
	"CIRC", "CIRC_MINOR", "STREAM", "ORCONN", "BW", "DEBUG", "INFO", "NOTICE",
	"WARN", "ERR", "NEWDESC", "ADDRMAP", "DESCCHANGED", "NS", "STATUS_GENERAL",
	"STATUS_CLIENT", "STATUS_SERVER", "GUARD", "STREAM_BW", "CLIENTS_SEEN",
	"NEWCONSENSUS", "BUILDTIMEOUT_SET", "SIGNAL", "CONF_CHANGED",
	"TRANSPORT_LAUNCHED", "CONN_BW", "CIRC_BW", "CELL_STATS", "TB_EMPTY",
	"HS_DESC", "HS_DESC_CONTENT", "NETWORK_LIVENESS", "PT_LOG", "PT_STATUS",
}

func (c *conn) cmdSetEvents(cmd command) bool {
	set := map[EventType]bool{}
	for _, w := range strings.Fields(cmd.Args) {
		u := strings.ToUpper(w)
		if u == "EXTENDED" {
			continue // always on (control-spec §3.4)
		}
		if !slices.Contains(allEventNames, u) {
			c.writeLine(552, "Unrecognized event "+quote(w))
			return true
		}
		set[EventType(u)] = true
	}
	c.s.mu.Lock()
	c.events = set
	c.s.mu.Unlock()
	c.writeLine(250, "OK")
	return true
}

// ---- signals ----

// signalNames are the signals of control-spec §3.7, canonical first.
var signalNames = []string{"RELOAD", "SHUTDOWN", "DUMP", "DEBUG", "HALT",
	"CLEARDNSCACHE", "NEWNYM", "HEARTBEAT", "DORMANT", "ACTIVE"}

var signalAliases = map[string]string{
	"HUP": "RELOAD", "INT": "SHUTDOWN", "USR1": "DUMP", "USR2": "DEBUG", "TERM": "HALT",
}

func (c *conn) cmdSignal(cmd command) bool {
	words := strings.Fields(cmd.Args)
	if len(words) == 0 {
		return c.bad(errors.New("Need at least 1 argument(s)"), cmd)
	}
	if len(words) > 1 {
		return c.bad(errors.New("Cannot accept more than 1 argument(s)"), cmd)
	}
	name := strings.ToUpper(words[0])
	if a, ok := signalAliases[name]; ok {
		name = a
	}
	if !slices.Contains(signalNames, name) {
		c.writeLine(552, "Unrecognized signal code "+quote(words[0]))
		return true
	}
	if name == "SHUTDOWN" || name == "HALT" {
		// Reply first: the process may be gone afterwards. The backend
		// runs outside this connection's goroutine so that it may call
		// Server.Close.
		c.writeLine(250, "OK")
		c.s.signalAsync(name)
		return true
	}
	if err := c.s.b.Signal(name); err != nil {
		if errors.Is(err, ErrNotSupported) {
			c.writeLine(552, "Unrecognized signal code "+quote(words[0]))
		} else {
			c.writeLine(551, oneLine(err.Error()))
		}
		return true
	}
	c.writeLine(250, "OK")
	c.s.Publish(Event{Type: EventSignal, Message: name})
	return true
}

// ---- ownership, features ----

func (c *conn) cmdTakeOwnership(cmd command) bool {
	c.s.mu.Lock()
	c.s.owner = c
	c.s.mu.Unlock()
	c.writeLine(250, "OK")
	return true
}

func (c *conn) cmdDropOwnership(cmd command) bool {
	c.s.mu.Lock()
	owner := c.s.owner == c
	if owner {
		c.s.owner = nil
	}
	c.s.mu.Unlock()
	_ = owner // C tor answers 250 OK even if this connection did not own us
	c.writeLine(250, "OK")
	return true
}

func (c *conn) cmdUseFeature(cmd command) bool {
	for _, f := range strings.Fields(cmd.Args) {
		switch strings.ToUpper(f) {
		case "VERBOSE_NAMES", "EXTENDED_EVENTS":
		default:
			c.writeLine(552, "Unrecognized feature "+quote(f))
			return true
		}
	}
	c.writeLine(250, "OK")
	return true
}

// NSAller is optionally implemented by backends to answer GETINFO ns/all
// (every network-status entry, as NSByID formats one; nyx uses it to show
// relay addresses).
type NSAller interface {
	NSAll() (string, error)
}
