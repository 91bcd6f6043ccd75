// Hosting onion services for controllers: control-spec §3.27 ADD_ONION,
// §3.28 DEL_ONION and GETINFO onions/current, onions/detached (§3.9),
// with the argument checks, replies and ownership rules of C tor's
// handle_control_add_onion, add_onion_helper_keyarg,
// handle_control_del_onion, hs_parse_port_config and
// connection_control_closed: a service belongs to the connection that
// added it and goes when that connection closes, unless it was added
// with Flags=Detach; DEL_ONION removes the connection's own services and
// detached ones.
package control

import (
	"encoding/base32"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// OnionHoster is implemented by backends that host onion services for
// controllers (ADD_ONION, DEL_ONION); without it both commands get 551.
type OnionHoster interface {
	// AddOnion starts an ephemeral v3 onion service and returns its
	// address (56 base32 characters, no ".onion") and the 64-byte
	// expanded ed25519 key it uses (made now when req.Key is nil).
	// Errors: ErrOnionExists (a service with that key runs already),
	// ErrBadOnionKey (the key is unusable), ErrInvalidValue (a port or
	// target the backend refuses), others for any other failure.
	AddOnion(req AddOnionRequest) (AddedOnion, error)
	// DelOnion stops a service AddOnion started; ErrUnknownKey if no
	// such service runs.
	DelOnion(serviceID string) error
}

// Errors of OnionHoster.AddOnion.
var (
	// ErrOnionExists: "550 Onion address collision".
	ErrOnionExists = errors.New("onion address collision")
	// ErrBadOnionKey: "551 Failed to generate onion address".
	ErrBadOnionKey = errors.New("bad onion service key")
)

// AddOnionRequest is a parsed ADD_ONION.
type AddOnionRequest struct {
	// Key is the expanded ed25519 secret key (scalar | PRF secret) of
	// "ED25519-V3:<base64>"; nil for NEW:BEST and NEW:ED25519-V3.
	Key *[64]byte
	// Ports are the Port= arguments.
	Ports []OnionPort
	// MaxStreams (0: unlimited) and Flags=MaxStreamsCloseCircuit.
	MaxStreams             int
	MaxStreamsCloseCircuit bool
	// ClientAuthV3 are the x25519 public keys of the authorized clients
	// (ClientAuthV3=, with Flags=V3Auth); none: the service is public.
	ClientAuthV3 [][32]byte
}

// OnionPort is one Port=VIRTPORT[,TARGET]: Target is "IP:PORT" or
// "unix:PATH" (127.0.0.1:VIRTPORT without a TARGET, as C tor).
type OnionPort struct {
	Virtual uint16
	Target  string
}

// AddedOnion is what AddOnion started.
type AddedOnion struct {
	ServiceID string
	Key       [64]byte
}

// onionOwners records who owns the services added through this server:
// detached ones here, the others in their connection (conn.onions).
type onionOwners struct {
	mu       sync.Mutex
	detached []string
}

var addOnionKeywords = []string{"Port", "Flags", "MaxStreams", "ClientAuth", "ClientAuthV3"}

// parsedAddOnion is ADD_ONION's arguments checked, before the key.
type parsedAddOnion struct {
	req       AddOnionRequest
	keyArg    string
	discardPK bool
	detach    bool
	authEcho  []string // the ClientAuthV3 values, echoed in the reply
}

// parseAddOnion checks the arguments in C tor's order; on failure it
// returns the reply code and text.
func parseAddOnion(args string) (p parsedAddOnion, code int, msg string) {
	pa, err := parseArgs(args, syntax{min: 1, max: 1, keywords: true, allowed: addOnionKeywords})
	if err != nil {
		return p, 512, "Bad arguments to ADD_ONION: " + err.Error()
	}
	p.keyArg = pa.pos[0]
	v3auth, nonAnonymous := false, false
	for _, a := range pa.kw {
		switch strings.ToLower(a.Key) {
		case "port":
			port, ok := parseOnionPort(a.Value)
			if !ok {
				return p, 512, "Invalid VIRTPORT/TARGET"
			}
			p.req.Ports = append(p.req.Ports, port)
		case "maxstreams":
			n, err := strconv.ParseUint(a.Value, 10, 16)
			if err != nil {
				return p, 512, "Invalid MaxStreams"
			}
			p.req.MaxStreams = int(n)
		case "flags":
			flags := slices.DeleteFunc(strings.Split(a.Value, ","), func(f string) bool { return f == "" })
			if len(flags) == 0 {
				return p, 512, "Invalid 'Flags' argument"
			}
			for _, f := range flags {
				switch strings.ToLower(f) {
				case "discardpk":
					p.discardPK = true
				case "detach":
					p.detach = true
				case "maxstreamsclosecircuit":
					p.req.MaxStreamsCloseCircuit = true
				case "v3auth":
					v3auth = true
				case "nonanonymous":
					nonAnonymous = true
				default:
					return p, 512, "Invalid 'Flags' argument: " + quote(f)
				}
			}
		case "clientauthv3":
			k, ok := parseClientAuthV3(a.Value)
			if !ok {
				return p, 512, "Cannot decode v3 client auth key"
			}
			p.req.ClientAuthV3 = append(p.req.ClientAuthV3, k)
			p.authEcho = append(p.authEcho, a.Value)
		case "clientauth":
			// v2 client authorization, gone with v2 services (C tor
			// 0.4.8 accepts the keyword and then sends no reply).
			return p, 512, "Invalid client authorization"
		}
	}
	switch {
	case len(p.req.Ports) == 0:
		return p, 512, "Missing 'Port' argument"
	case !v3auth && len(p.req.ClientAuthV3) > 0:
		return p, 512, "No auth type specified"
	case v3auth && len(p.req.ClientAuthV3) == 0:
		return p, 512, "No auth clients specified"
	case nonAnonymous:
		// gotor hosts anonymous services only (no single onion mode).
		return p, 512, "Tor is in anonymous hidden service mode"
	}
	// "KeyType:KeyBlob" (add_onion_helper_keyarg); the texts do not echo
	// key material.
	parts := slices.DeleteFunc(strings.Split(p.keyArg, ":"), func(s string) bool { return s == "" })
	if len(parts) != 2 {
		return p, 512, "Invalid key type/blob"
	}
	typ, blob := parts[0], parts[1]
	switch {
	case strings.EqualFold(typ, "ED25519-V3"):
		b, err := base64.StdEncoding.DecodeString(blob)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(blob)
		}
		if err != nil || len(b) != 64 {
			return p, 512, "Failed to decode ED25519-V3 key"
		}
		p.req.Key = (*[64]byte)(b)
	case strings.EqualFold(typ, "NEW") && (strings.EqualFold(blob, "ED25519-V3") || strings.EqualFold(blob, "BEST")):
	default:
		return p, 513, "Invalid key type"
	}
	return p, 0, ""
}

// parseOnionPort parses VIRTPORT[,TARGET] as C tor's hs_parse_port_config
// with "," as separator: TARGET is PORT, ADDR[:PORT] (IP addresses or
// localhost; ADDR alone keeps VIRTPORT) or unix:PATH.
func parseOnionPort(s string) (OnionPort, bool) {
	virt, target, hasTarget := strings.Cut(s, ",")
	v, err := strconv.ParseUint(strings.TrimSpace(virt), 10, 16)
	if err != nil || v == 0 {
		return OnionPort{}, false
	}
	p := OnionPort{Virtual: uint16(v), Target: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(v)).String()}
	target = strings.TrimSpace(target)
	if !hasTarget || target == "" {
		return p, true
	}
	if path, ok := strings.CutPrefix(target, "unix:"); ok {
		if unq, n, err := unquote(path); err == nil && n == len(path) {
			path = unq
		}
		if path == "" || strings.ContainsAny(path, "\x00") {
			return OnionPort{}, false
		}
		p.Target = "unix:" + path
		return p, true
	}
	if !strings.ContainsAny(target, ":.") {
		n, err := strconv.ParseUint(target, 10, 16)
		if err != nil || n == 0 {
			return OnionPort{}, false
		}
		p.Target = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(n)).String()
		return p, true
	}
	host, port := target, uint64(v)
	if h, ps, err := net.SplitHostPort(target); err == nil {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			return OnionPort{}, false
		}
		host = h
		if n != 0 {
			port = n
		}
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil || a.Zone() != "" {
		return OnionPort{}, false
	}
	p.Target = netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
	return p, true
}

// parseClientAuthV3 decodes a base32 x25519 public key (52 characters,
// no padding, either case) as C tor's parse_authorized_client_key.
func parseClientAuthV3(s string) ([32]byte, bool) {
	var k [32]byte
	if len(s) != 52 {
		return k, false
	}
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s))
	if err != nil || len(b) != 32 {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

func (c *conn) cmdAddOnion(cmd command) bool {
	h, ok := c.s.b.(OnionHoster)
	if !ok {
		c.writeLine(551, "ADD_ONION is not supported by this implementation")
		return true
	}
	p, code, msg := parseAddOnion(cmd.Args)
	if code != 0 {
		c.writeLine(code, msg)
		return true
	}
	added, err := h.AddOnion(p.req)
	if err != nil {
		c.s.log.Info("control: ADD_ONION failed", "err", err)
		switch {
		case errors.Is(err, ErrOnionExists):
			c.writeLine(550, "Onion address collision")
		case errors.Is(err, ErrBadOnionKey):
			c.writeLine(551, "Failed to generate onion address")
		case errors.Is(err, ErrInvalidValue):
			c.writeLine(512, "Invalid VIRTPORT/TARGET")
		default:
			c.writeLine(551, "Failed to add Onion Service")
		}
		return true
	}
	if p.detach {
		o := &c.s.onions
		o.mu.Lock()
		o.detached = append(o.detached, added.ServiceID)
		o.mu.Unlock()
	} else {
		c.onions = append(c.onions, added.ServiceID)
	}
	r := newReply(250).Line("ServiceID=" + added.ServiceID)
	if p.req.Key == nil && !p.discardPK {
		r.Line("PrivateKey=ED25519-V3:" + base64.StdEncoding.EncodeToString(added.Key[:]))
	}
	for _, a := range p.authEcho {
		r.Line("ClientAuthV3=" + a)
	}
	c.write(r.Line("OK").Bytes())
	return true
}

func (c *conn) cmdDelOnion(cmd command) bool {
	h, ok := c.s.b.(OnionHoster)
	if !ok {
		c.writeLine(551, "DEL_ONION is not supported by this implementation")
		return true
	}
	words := strings.Fields(cmd.Args)
	switch {
	case len(words) == 0:
		return c.bad(errors.New("Need at least 1 argument(s)"), cmd)
	case len(words) > 1:
		return c.bad(errors.New("Cannot accept more than 1 argument(s)"), cmd)
	}
	id := words[0]
	if !validV3Address(id) {
		c.writeLine(512, "Malformed Onion Service id")
		return true
	}
	// The connection's own services first, then the detached ones.
	owned := false
	if i := slices.Index(c.onions, id); i >= 0 {
		c.onions = slices.Delete(c.onions, i, i+1)
		owned = true
	} else {
		o := &c.s.onions
		o.mu.Lock()
		if i := slices.Index(o.detached, id); i >= 0 {
			o.detached = slices.Delete(o.detached, i, i+1)
			owned = true
		}
		o.mu.Unlock()
	}
	if !owned {
		c.writeLine(552, "Unknown Onion Service id")
		return true
	}
	if err := h.DelOnion(id); err != nil {
		c.s.log.Warn("control: DEL_ONION of a service this server added", "err", err)
	}
	c.writeLine(250, "OK")
	return true
}

// onionsInfo answers GETINFO onions/current and onions/detached: one
// address a line, empty when there is none.
func (c *conn) onionsInfo(detached bool) string {
	if !detached {
		return strings.Join(c.onions, "\n")
	}
	o := &c.s.onions
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.detached, "\n")
}

// dropOnions removes the services the closing connection owns
// (connection_control_closed).
func (c *conn) dropOnions() {
	h, ok := c.s.b.(OnionHoster)
	if !ok {
		return
	}
	for _, id := range c.onions {
		if err := h.DelOnion(id); err != nil && !errors.Is(err, ErrUnknownKey) {
			c.s.log.Warn("control: removing an onion service of a closed connection", "err", err)
		}
	}
	c.onions = nil
}
