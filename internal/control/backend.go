// Package control implements the subset of Tor's control protocol that
// controllers such as stem and nyx need: authentication (control-spec §3.5,
// §3.21 PROTOCOLINFO, §3.24 AUTHCHALLENGE), GETINFO (§3.9), GETCONF/SETCONF/
// RESETCONF (§3.1-§3.3), SAVECONF (§3.6), LOADCONF (§3.22), SETEVENTS
// (§3.4), SIGNAL (§3.7), TAKEOWNERSHIP (§3.23), and the CIRC/STREAM/BW/
// STATUS_*/CONF_CHANGED/log events of §4.1.
//
// The server is independent of the client: everything it reports comes from
// a Backend, which the client implements.
//
// This file: the Backend interface and the data it returns (control-spec
// §4.1.1 CIRC, §4.1.2 STREAM, §4.1.10 STATUS_*, §3.9 GETINFO).
package control

import (
	"errors"
	"time"
)

// Errors a Backend may return (wrapped or as is) from GetConf/SetConf/
// Signal/NSByID; the server maps them onto control-spec reply codes.
var (
	// ErrUnknownKey: the configuration key, descriptor or entity is unknown (552).
	ErrUnknownKey = errors.New("unrecognized key")
	// ErrInvalidValue: a SETCONF value was rejected (553).
	ErrInvalidValue = errors.New("invalid configuration value")
	// ErrNotSupported: the operation is known but not implemented (551).
	ErrNotSupported = errors.New("not supported")
	// ErrTransition: a SETCONF/LOADCONF would change an option that
	// cannot change while running (553 Transition not allowed).
	ErrTransition = errors.New("transition not allowed")
)

// Error returns an error whose message is msg and that matches kind
// (ErrUnknownKey, ErrInvalidValue, ErrTransition, ...) under errors.Is,
// so that the reply carries msg without the kind's own text.
func Error(kind error, msg string) error { return &kindError{kind, msg} }

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// Backend is what the control server needs from the client. Every method
// may be called concurrently from several control connections and must not
// block for long.
type Backend interface {
	// Version is the string reported by GETINFO version and PROTOCOLINFO.
	// stem parses it as a Tor version, so it should look like
	// "0.4.9.0-gotor" or "0.4.9.0 (gotor)".
	Version() string
	// BootstrapStatus reports the current bootstrap phase (control-spec
	// §5.5): percent 0..100, tag such as "conn_pt" or "done", and summary.
	BootstrapStatus() Bootstrap
	// Circuits lists origin circuits for GETINFO circuit-status.
	Circuits() []CircuitInfo
	// Streams lists client streams for GETINFO stream-status.
	Streams() []StreamInfo
	// Listeners returns the addresses ("127.0.0.1:9050", "unix:/path") of
	// the listeners of the given kind: "socks", "control", "dns", "trans",
	// "natd", "httptunnel", "metrics".
	Listeners(kind string) []string
	// GetConf returns the canonical name and the values of a
	// configuration option; no values means the option is unset
	// (reported as "250 Key"). Unknown keys return ErrUnknownKey.
	GetConf(key string) (name string, values []string, err error)
	// SetConf applies SETCONF/RESETCONF changes atomically: either all of
	// them or none (ErrUnknownKey, ErrInvalidValue, ErrTransition, or
	// another error for a configuration that does not validate). The
	// backend publishes CONF_CHANGED for what changed, also when the
	// configuration changes otherwise (LOADCONF, SIGHUP).
	SetConf(changes []ConfChange) error
	// LoadConf replaces the configuration with the text of a torrc
	// (+LOADCONF, control-spec §3.22), with the errors of SetConf.
	LoadConf(text string) error
	// SaveConf writes the configuration to the torrc (SAVECONF,
	// control-spec §3.6); without force it fails if the torrc uses
	// %include.
	SaveConf(force bool) error
	// ConfigText is the configuration as a torrc (GETINFO config-text);
	// CanSaveConf reports whether SAVECONF works without FORCE (GETINFO
	// config-can-saveconf); ConfigDefaults are "Option value" lines of
	// the defaults (GETINFO config/defaults).
	ConfigText() string
	CanSaveConf() bool
	ConfigDefaults() []string

	// MapAddress (MAPADDRESS, §3.8) maps from to to for later streams and
	// returns the address mapped: for from "0.0.0.0", "::" or "." a
	// virtual address it chose. to equal to from removes the mapping.
	// Errors: ErrInvalidValue for an address that cannot be mapped, other
	// errors when no address is left (451).
	MapAddress(from, to string) (string, error)
	// AddressMappings lists the mappings of GETINFO address-mappings/KIND
	// (KIND "all", "config", "cache" or "control").
	AddressMappings(kind string) []AddressMapping
	// Resolve (RESOLVE, §3.20) starts looking names up at an exit (reverse:
	// addresses to names); each answer arrives as an ADDRMAP event.
	Resolve(names []string, reverse bool) error
	// CloseStream (§3.16) and CloseCircuit (§3.17) close what the ID
	// names, ErrUnknownKey if nothing; with ifUnused a circuit that
	// carries streams stays.
	CloseStream(id uint64, reason byte) error
	CloseCircuit(id uint64, ifUnused bool) error
	// SetCircuitPurpose (§3.11) gives a circuit the purpose "GENERAL" or
	// "CONTROLLER" (streams are attached to it only by ATTACHSTREAM);
	// ErrUnknownKey for an unknown circuit.
	SetCircuitPurpose(id uint64, purpose string) error
	// DropGuards (§3.25) forgets every guard; DropTimeouts (§3.34) every
	// circuit build time, publishing BUILDTIMEOUT_SET RESET.
	DropGuards() error
	DropTimeouts() error
	// HSFetch (§3.26) fetches the descriptor of a v3 onion service (56
	// base32 characters, no ".onion") from its HSDirs, or from servers
	// (upper-case hex fingerprints; ErrUnknownKey for one not in the
	// consensus), whatever the cache holds; HS_DESC and HS_DESC_CONTENT
	// events report each request.
	HSFetch(address string, servers []string) error
	// OnionClientAuthAdd (§3.30) stores a client authorization key,
	// reporting whether it replaced one; OnionClientAuthRemove (§3.31)
	// whether there was one; OnionClientAuthView (§3.32) lists the keys
	// ("" for all services).
	OnionClientAuthAdd(a ClientAuth) (replaced bool, err error)
	OnionClientAuthRemove(address string) (removed bool, err error)
	OnionClientAuthView(address string) ([]ClientAuth, error)

	// EntryGuards lists the sampled guards, in sample order (GETINFO
	// entry-guards).
	EntryGuards() []GuardInfo
	// ORConns lists the channels to relays (GETINFO orconn-status).
	ORConns() []ORConnInfo
	// Microdesc returns the microdescriptor text of the relay with the
	// upper-case hex fingerprint fp, or the nickname, or of every relay
	// when both are empty (GETINFO md/id/*, md/name/*, md/all);
	// ErrUnknownKey if there is none.
	Microdesc(fp, nickname string) (string, error)
	// VersionStatus is the consensus's verdict on Version ("recommended",
	// "obsolete", "new", "new in series", "unrecommended", "none
	// recommended", "unknown") and its recommended client versions ("?"
	// without a consensus): GETINFO status/version/current, /recommended.
	VersionStatus() (current, recommended string)
	// NetworkLive reports whether the network is reachable (GETINFO
	// network-liveness).
	NetworkLive() bool
	// BridgeNS returns network-status entries for the configured bridges
	// (GETINFO ns/purpose/bridge), "" without any.
	BridgeNS() string
	// Signal acts on a canonical signal name: RELOAD, SHUTDOWN, DUMP,
	// DEBUG, HALT, CLEARDNSCACHE, NEWNYM, HEARTBEAT, DORMANT, ACTIVE.
	// For SHUTDOWN and HALT it is called after "250 OK" has been written,
	// from a goroutine of its own, so it may call Server.Close.
	Signal(name string) error
	// TrafficRead and TrafficWritten are total bytes since start (the BW
	// event is derived from their per-second difference).
	TrafficRead() uint64
	TrafficWritten() uint64
	// NSByID returns the network-status entry (dir-spec §3.4.1 "r"/"s"/
	// "w"/... lines, no trailing dot) of the relay with the given
	// upper-case hex fingerprint, or ErrUnknownKey.
	NSByID(fingerprint string) (string, error)
	// ConfigFile is the torrc path, "" if none.
	ConfigFile() string
}

// EventSource is implemented by backends that push events. If the Backend
// passed to New also implements EventSource, the server subscribes in
// Start and unsubscribes in Close. The callback never blocks. Backends may
// instead call Server.Publish directly.
type EventSource interface {
	Subscribe(func(Event)) (unsubscribe func())
}

// AddressMapping is one line of GETINFO address-mappings/* (§3.9):
// "from to expiry", Expires zero meaning "NEVER".
type AddressMapping struct {
	From, To string
	Expires  time.Time
}

// GuardInfo is one line of GETINFO entry-guards: C tor's status words
// "up", "down", "never-connected" and "unusable", with the time since
// when for the last two where known.
type GuardInfo struct {
	Relay  Hop
	Status string
	Since  time.Time
}

// ORConnInfo is one line of GETINFO orconn-status (status "CONNECTED",
// "LAUNCHED" or "NEW").
type ORConnInfo struct {
	Relay  Hop
	Status string
}

// ClientAuth is a v3 onion service client authorization credential
// (control-spec §3.30): the service (56 base32 characters) and the
// client's x25519 private key.
type ClientAuth struct {
	Address   string
	Key       [32]byte
	Name      string // ClientName, optional
	Permanent bool   // stored in ClientOnionAuthDir (Flags=Permanent)
}

// ConfigLister is optionally implemented by backends to answer GETINFO
// config/names (used by nyx's configuration page).
type ConfigLister interface {
	// ConfigNames lists the supported options with their types ("String",
	// "Boolean", "Port", "LineList", ...; see control-spec §3.9
	// config/names).
	ConfigNames() []ConfigOption
}

// ConfigOption is one line of GETINFO config/names.
type ConfigOption struct {
	Name string
	Type string
	Doc  string // optional one-line documentation
}

// Bootstrap is a bootstrap phase (control-spec §5.5).
type Bootstrap struct {
	Percent int
	Tag     string // e.g. "starting", "conn_done", "done"
	Summary string // e.g. "Done"
	// Warning, if non-empty, turns the phase into a BOOTSTRAP WARN status
	// with WARNING=, REASON= and friends.
	Warning        string
	Reason         string
	Count          int
	Recommendation string // "ignore" or "warn"
}

// Hop is one relay of a circuit path.
type Hop struct {
	Fingerprint string // 40 hex digits, upper case
	Nickname    string // may be empty
}

// Circuit states (control-spec §4.1.1 CircStatus).
const (
	CircLaunched  = "LAUNCHED"
	CircBuilt     = "BUILT"
	CircGuardWait = "GUARD_WAIT"
	CircExtended  = "EXTENDED"
	CircFailed    = "FAILED"
	CircClosed    = "CLOSED"
)

// CircuitInfo describes an origin circuit (control-spec §4.1.1).
type CircuitInfo struct {
	ID          uint64
	State       string   // CircLaunched, ...
	Path        []Hop    // hops completed so far
	BuildFlags  []string // ONEHOP_TUNNEL, IS_INTERNAL, NEED_CAPACITY, NEED_UPTIME
	Purpose     string   // GENERAL, HS_CLIENT_REND, ...; "" means GENERAL
	HSState     string
	RendQuery   string
	TimeCreated time.Time
	// Reason and RemoteReason are given for FAILED/CLOSED only.
	Reason       string
	RemoteReason string
	// SOCKS credentials the circuit is isolated by (IsolateSOCKSAuth);
	// empty means none.
	SocksUsername string
	SocksPassword string
}

// Stream states (control-spec §4.1.2 StreamStatus).
const (
	StreamNew         = "NEW"
	StreamNewResolve  = "NEWRESOLVE"
	StreamRemap       = "REMAP"
	StreamSentConnect = "SENTCONNECT"
	StreamSentResolve = "SENTRESOLVE"
	StreamSucceeded   = "SUCCEEDED"
	StreamFailed      = "FAILED"
	StreamClosed      = "CLOSED"
	StreamDetached    = "DETACHED"
)

// StreamInfo describes a client stream (control-spec §4.1.2).
type StreamInfo struct {
	ID        uint64
	Status    string // StreamNew, ...
	CircuitID uint64 // 0 if unattached
	Target    string // "host:port"
	// Optional fields of the STREAM event.
	Reason         string
	RemoteReason   string
	Source         string // CACHE or EXIT, REMAP only
	SourceAddr     string // "127.0.0.1:53412"
	Purpose        string // USER, DIR_FETCH, DNS_REQUEST, ...
	SocksUsername  string
	SocksPassword  string
	ClientProtocol string // SOCKS4, SOCKS5, DNS, HTTPCONNECT, ...
	// NymEpoch is the NEWNYM epoch; it is only reported when HasNymEpoch.
	NymEpoch     uint32
	HasNymEpoch  bool
	SessionGroup int
	// HasSessionGroup reports whether SessionGroup is meaningful.
	HasSessionGroup bool
	IsoFields       []string // CLIENTADDR, DESTPORT, SOCKS_USERNAME, ...
}

// ConfChange is one key of a SETCONF or RESETCONF command.
type ConfChange struct {
	Key string
	// Values are the new values in order. Several values come from
	// repeated keys ("SETCONF SocksPort=1 SocksPort=2").
	Values []string
	// Reset is true for RESETCONF without a value: back to the default.
	// A SETCONF key without a value has Reset false and no Values: the
	// option is cleared ("reset to 0 or NULL", control-spec §3.1).
	Reset bool
}

// EventType names an asynchronous event (control-spec §4.1).
type EventType string

// Event types the server formats. SETEVENTS accepts every name in
// control-spec §4.1; those without a producer are never emitted.
const (
	EventCirc          EventType = "CIRC"
	EventStream        EventType = "STREAM"
	EventBW            EventType = "BW"
	EventDebug         EventType = "DEBUG"
	EventInfo          EventType = "INFO"
	EventNotice        EventType = "NOTICE"
	EventWarn          EventType = "WARN"
	EventErr           EventType = "ERR"
	EventStatusGeneral EventType = "STATUS_GENERAL"
	EventStatusClient  EventType = "STATUS_CLIENT"
	EventStatusServer  EventType = "STATUS_SERVER"
	EventSignal        EventType = "SIGNAL"
	EventConfChanged   EventType = "CONF_CHANGED"
	EventAddrMap       EventType = "ADDRMAP"
	EventHSDesc        EventType = "HS_DESC"
	EventHSDescContent EventType = "HS_DESC_CONTENT"
	EventBuildTimeout  EventType = "BUILDTIMEOUT_SET"
)

// AddrMapEvent is an ADDRMAP event (control-spec §4.1.7): an address
// mapping entered (MAPADDRESS) or the answer to a RESOLVE.
type AddrMapEvent struct {
	From, To string // To is "<error>" for a failed lookup
	// Expires zero means "NEVER".
	Expires time.Time
	// Error is the error field as C tor writes it: "error=yes" for a
	// failed lookup, "internal" for one that could not start.
	Error    string
	Cached   bool
	StreamID uint64 // 0: none
}

// HSDescEvent is an HS_DESC event (control-spec §4.1.25).
type HSDescEvent struct {
	Action     string // REQUESTED, RECEIVED, FAILED, ...
	Address    string // 56 base32 characters, or "UNKNOWN"
	AuthType   string // "NO_AUTH" unless known
	HSDir      Hop    // Fingerprint "" means "UNKNOWN"
	DescID     string // the blinded key, base64 without padding; optional
	Reason     string // FAILED: NOT_FOUND, BAD_DESC, QUERY_NO_HSDIR, UNEXPECTED, ...
	HSDirIndex string // optional, 64 hex digits
}

// HSDescContentEvent is an HS_DESC_CONTENT event (control-spec §4.1.26):
// the descriptor fetched, empty after a failure.
type HSDescContentEvent struct {
	Address    string // "UNKNOWN" after a failure
	DescID     string
	HSDir      Hop
	Descriptor string
}

// StatusEvent is the body of a STATUS_GENERAL/CLIENT/SERVER event
// (control-spec §4.1.10): "650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=...".
type StatusEvent struct {
	Severity string // NOTICE, WARN, ERR
	Action   string // e.g. BOOTSTRAP, CIRCUIT_ESTABLISHED
	// Args are appended verbatim after Action, already formatted
	// (`PROGRESS=100 TAG=done SUMMARY="Done"`). Use StatusArgs to build it.
	Args string
}

// Event is one asynchronous event. Exactly one payload field is used,
// according to Type.
type Event struct {
	Type EventType
	// CIRC
	Circuit *CircuitInfo
	// STREAM
	Stream *StreamInfo
	// STATUS_*
	Status *StatusEvent
	// DEBUG/INFO/NOTICE/WARN/ERR: the log message; newlines become spaces.
	// SIGNAL: the signal name.
	Message string
	// BW: bytes in the last second.
	Read, Written uint64
	// CONF_CHANGED: "Key=Value" or "Key" lines.
	Conf []string
	// ADDRMAP, HS_DESC, HS_DESC_CONTENT.
	AddrMap       *AddrMapEvent
	HSDesc        *HSDescEvent
	HSDescContent *HSDescContentEvent
	// BUILDTIMEOUT_SET: Message is everything after the event name
	// ("RESET TOTAL_TIMES=0 ...").
}

// BootstrapStatusArgs formats the arguments of a BOOTSTRAP status
// (control-spec §5.5) as used in STATUS_CLIENT and GETINFO
// status/bootstrap-phase, without the severity and action.
func BootstrapStatusArgs(b Bootstrap) string {
	s := "PROGRESS=" + itoa(b.Percent) + " TAG=" + b.Tag + " SUMMARY=" + quote(b.Summary)
	if b.Warning != "" {
		s += " WARNING=" + quote(b.Warning) + " REASON=" + b.Reason +
			" COUNT=" + itoa(b.Count) + " RECOMMENDATION=" + b.Recommendation
	}
	return s
}

// BootstrapEvent builds the STATUS_CLIENT event for a bootstrap phase.
func BootstrapEvent(b Bootstrap) Event {
	sev := "NOTICE"
	if b.Warning != "" {
		sev = "WARN"
	}
	return Event{Type: EventStatusClient, Status: &StatusEvent{
		Severity: sev, Action: "BOOTSTRAP", Args: BootstrapStatusArgs(b)}}
}
