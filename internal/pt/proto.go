// Lines a client transport writes on its standard output: pt-spec §3.3
// (line metaformat), §3.3.1 (VERSION, VERSION-ERROR, ENV-ERROR), §3.3.2
// (PROXY DONE, PROXY-ERROR, CMETHOD, CMETHOD-ERROR, CMETHODS DONE),
// §3.3.4 (LOG) and §3.3.5 (STATUS). C tor: handle_proxy_line and the
// parse_* functions of transports.c.

package pt

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Kind is what a line says.
type Kind int

// Line kinds. KindUnknown is any other keyword: pt-spec says the parent
// ignores those.
const (
	KindUnknown      Kind = iota
	KindVersion           // VERSION <version>
	KindVersionError      // VERSION-ERROR <message>
	KindEnvError          // ENV-ERROR <message>
	KindProxyDone         // PROXY DONE
	KindProxyError        // PROXY-ERROR <message>
	KindCMethod           // CMETHOD <transport> socks4|socks5 <address:port>
	KindCMethodError      // CMETHOD-ERROR <transport> <message>
	KindCMethodsDone      // CMETHODS DONE
	KindLog               // LOG SEVERITY=<severity> MESSAGE=<message>
	KindStatus            // STATUS TRANSPORT=<transport> <K>=<V> ...
)

var kindNames = [...]string{"unknown", "VERSION", "VERSION-ERROR", "ENV-ERROR", "PROXY DONE",
	"PROXY-ERROR", "CMETHOD", "CMETHOD-ERROR", "CMETHODS DONE", "LOG", "STATUS"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Method is a transport's SOCKS listener, from a CMETHOD line or an
// external ClientTransportPlugin.
type Method struct {
	Transport string
	Protocol  string // "socks4" or "socks5"
	Addr      string // HOST:PORT of the listener
}

// Message is one parsed line.
type Message struct {
	Kind Kind
	// Text is the version of VERSION, the message of VERSION-ERROR,
	// ENV-ERROR, PROXY-ERROR and CMETHOD-ERROR (possibly empty), and
	// the keyword of an unknown line.
	Text string
	// Method is the listener of CMETHOD; Method.Transport is also set
	// for CMETHOD-ERROR.
	Method Method
	// Values are the K=V values of LOG and STATUS, in order.
	Values Args
}

// LineError is a malformed line from a transport.
type LineError struct {
	Line string // the line, quoted and cut to 100 bytes
	Msg  string
}

func (e *LineError) Error() string { return "pt: bad line " + e.Line + " from transport: " + e.Msg }

func lineErr(line, format string, args ...any) error {
	if len(line) > 100 {
		line = line[:100] + "..."
	}
	return &LineError{Line: strconv.Quote(line), Msg: fmt.Sprintf(format, args...)}
}

func isKeywordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// ParseLine parses one line (without its newline; a trailing CR is
// ignored). Unknown keywords give KindUnknown and no error; a known
// keyword with bad arguments gives a *LineError.
func ParseLine(line string) (Message, error) {
	line = strings.TrimSuffix(line, "\r")
	kw, rest, _ := strings.Cut(line, " ")
	for i := 0; i < len(kw); i++ {
		if !isKeywordChar(kw[i]) {
			return Message{Kind: KindUnknown}, nil
		}
	}
	if strings.IndexByte(line, 0) >= 0 {
		return Message{}, lineErr(line, "NUL byte")
	}
	switch kw {
	case "VERSION":
		v := strings.TrimSpace(rest)
		if v == "" || strings.ContainsAny(v, " \t,") {
			return Message{}, lineErr(line, "VERSION needs one version")
		}
		return Message{Kind: KindVersion, Text: v}, nil
	case "VERSION-ERROR":
		return Message{Kind: KindVersionError, Text: rest}, nil
	case "ENV-ERROR":
		return Message{Kind: KindEnvError, Text: rest}, nil
	case "PROXY-ERROR":
		return Message{Kind: KindProxyError, Text: rest}, nil
	case "PROXY":
		if strings.TrimSpace(rest) != "DONE" {
			return Message{}, lineErr(line, "PROXY must be followed by DONE")
		}
		return Message{Kind: KindProxyDone}, nil
	case "CMETHODS":
		if strings.TrimSpace(rest) != "DONE" {
			return Message{}, lineErr(line, "CMETHODS must be followed by DONE")
		}
		return Message{Kind: KindCMethodsDone}, nil
	case "CMETHOD":
		return parseCMethod(line, rest)
	case "CMETHOD-ERROR":
		name, msg, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
		if !ValidName(name) {
			return Message{}, lineErr(line, "CMETHOD-ERROR needs a transport name")
		}
		return Message{Kind: KindCMethodError, Method: Method{Transport: name}, Text: msg}, nil
	case "LOG":
		vals, err := parseKVLine(rest)
		if err != nil {
			return Message{}, lineErr(line, "LOG: %v", err)
		}
		sev, ok1 := vals.Get("SEVERITY")
		_, ok2 := vals.Get("MESSAGE")
		if !ok1 || !ok2 {
			return Message{}, lineErr(line, "LOG needs SEVERITY and MESSAGE")
		}
		switch sev {
		case "error", "warning", "notice", "info", "debug":
		default:
			return Message{}, lineErr(line, "LOG: unknown SEVERITY %q", sev)
		}
		return Message{Kind: KindLog, Values: vals}, nil
	case "STATUS":
		vals, err := parseKVLine(rest)
		if err != nil {
			return Message{}, lineErr(line, "STATUS: %v", err)
		}
		if _, ok := vals.Get("TRANSPORT"); !ok {
			return Message{}, lineErr(line, "STATUS needs TRANSPORT")
		}
		return Message{Kind: KindStatus, Values: vals}, nil
	}
	return Message{Kind: KindUnknown, Text: kw}, nil
}

// parseCMethod parses "CMETHOD <transport> socks4|socks5 <address:port>"
// (C tor's parse_method_line_helper: the address must be an IP address
// with a non-zero port; anything after it is ignored).
func parseCMethod(line, rest string) (Message, error) {
	f := strings.Fields(rest)
	if len(f) < 3 {
		return Message{}, lineErr(line, "CMETHOD needs a transport, a SOCKS version and an address")
	}
	if !ValidName(f[0]) {
		return Message{}, lineErr(line, "transport name %q is not a C identifier", f[0])
	}
	if f[1] != "socks4" && f[1] != "socks5" {
		return Message{}, lineErr(line, "unknown proxy protocol %q (want socks4 or socks5)", f[1])
	}
	ap, err := netip.ParseAddrPort(f[2])
	if err != nil || ap.Port() == 0 {
		return Message{}, lineErr(line, "bad listener address %q (want IP:PORT)", f[2])
	}
	return Message{Kind: KindCMethod, Method: Method{Transport: f[0], Protocol: f[1], Addr: ap.String()}}, nil
}
