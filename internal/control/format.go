// Formatting of circuits, streams and events: control-spec §4.1.1 (CIRC),
// §4.1.2 (STREAM), §4.1.4 (BW), §4.1.5 (log messages), §4.1.7 (ADDRMAP),
// §4.1.10 (STATUS_*), §4.1.16 (BUILDTIMEOUT_SET), §4.1.17 (SIGNAL),
// §4.1.18 (CONF_CHANGED), §4.1.25 (HS_DESC), §4.1.26 (HS_DESC_CONTENT),
// and the matching GETINFO circuit-status / stream-status lines of §3.9.
package control

import (
	"strconv"
	"strings"
)

// timeCreatedLayout is ISOTime2Frac (control-spec §2.4) with microseconds.
const timeCreatedLayout = "2006-01-02T15:04:05.000000"

// formatPath renders LongName *("," LongName).
func formatPath(hops []Hop) string {
	parts := make([]string, 0, len(hops))
	for _, h := range hops {
		p := "$" + strings.ToUpper(h.Fingerprint)
		if h.Nickname != "" {
			p += "~" + h.Nickname
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

// circuitFields renders everything after "CircuitID SP CircStatus". With
// reasons set it includes REASON/REMOTE_REASON (events only).
func circuitFields(c *CircuitInfo, reasons bool) []string {
	var f []string
	if len(c.Path) > 0 {
		f = append(f, formatPath(c.Path))
	}
	if len(c.BuildFlags) > 0 {
		f = append(f, "BUILD_FLAGS="+strings.Join(c.BuildFlags, ","))
	}
	purpose := c.Purpose
	if purpose == "" {
		purpose = "GENERAL"
	}
	f = append(f, "PURPOSE="+purpose)
	if c.HSState != "" {
		f = append(f, "HS_STATE="+c.HSState)
	}
	if c.RendQuery != "" {
		f = append(f, "REND_QUERY="+c.RendQuery)
	}
	if !c.TimeCreated.IsZero() {
		f = append(f, "TIME_CREATED="+c.TimeCreated.UTC().Format(timeCreatedLayout))
	}
	if reasons && c.Reason != "" {
		f = append(f, "REASON="+c.Reason)
		if c.RemoteReason != "" {
			f = append(f, "REMOTE_REASON="+c.RemoteReason)
		}
	}
	if c.SocksUsername != "" {
		f = append(f, "SOCKS_USERNAME="+quote(c.SocksUsername))
	}
	if c.SocksPassword != "" {
		f = append(f, "SOCKS_PASSWORD="+quote(c.SocksPassword))
	}
	return f
}

// circuitStatusLine is one line of GETINFO circuit-status.
func circuitStatusLine(c *CircuitInfo) string {
	return strings.Join(append([]string{u64(c.ID), c.State}, circuitFields(c, false)...), " ")
}

// circEventBody is the CIRC event without "650 " and CRLF.
func circEventBody(c *CircuitInfo) string {
	return strings.Join(append([]string{"CIRC", u64(c.ID), c.State}, circuitFields(c, true)...), " ")
}

// streamStatusLine is one line of GETINFO stream-status:
// StreamID SP StreamStatus SP CircuitID SP Target.
func streamStatusLine(st *StreamInfo) string {
	return u64(st.ID) + " " + st.Status + " " + u64(st.CircuitID) + " " + target(st.Target)
}

func target(t string) string {
	if t == "" {
		return "(Tor_internal):0"
	}
	return t
}

// streamEventBody is the STREAM event without "650 " and CRLF.
func streamEventBody(st *StreamInfo) string {
	f := []string{"STREAM", u64(st.ID), st.Status, u64(st.CircuitID), target(st.Target)}
	if st.Reason != "" {
		f = append(f, "REASON="+st.Reason)
		if st.RemoteReason != "" {
			f = append(f, "REMOTE_REASON="+st.RemoteReason)
		}
	}
	if st.Source != "" {
		f = append(f, "SOURCE="+st.Source)
	}
	if st.SourceAddr != "" {
		f = append(f, "SOURCE_ADDR="+st.SourceAddr)
	}
	if st.Purpose != "" {
		f = append(f, "PURPOSE="+st.Purpose)
	}
	if st.SocksUsername != "" {
		f = append(f, "SOCKS_USERNAME="+quote(st.SocksUsername))
	}
	if st.SocksPassword != "" {
		f = append(f, "SOCKS_PASSWORD="+quote(st.SocksPassword))
	}
	if st.ClientProtocol != "" {
		f = append(f, "CLIENT_PROTOCOL="+st.ClientProtocol)
	}
	if st.HasNymEpoch {
		f = append(f, "NYM_EPOCH="+strconv.FormatUint(uint64(st.NymEpoch), 10))
	}
	if st.HasSessionGroup {
		f = append(f, "SESSION_GROUP="+strconv.Itoa(st.SessionGroup))
	}
	if len(st.IsoFields) > 0 {
		f = append(f, "ISO_FIELDS="+strings.Join(st.IsoFields, ","))
	}
	return strings.Join(f, " ")
}

// oneLine replaces CR and LF with spaces, as C tor does for log events.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// FormatEvent renders an event as sent on the wire, CRLF-terminated. It
// returns nil for events with a missing payload.
func FormatEvent(ev Event) []byte {
	var body string
	switch ev.Type {
	case EventCirc:
		if ev.Circuit == nil {
			return nil
		}
		body = circEventBody(ev.Circuit)
	case EventStream:
		if ev.Stream == nil {
			return nil
		}
		body = streamEventBody(ev.Stream)
	case EventBW:
		body = "BW " + u64(ev.Read) + " " + u64(ev.Written)
	case EventDebug, EventInfo, EventNotice, EventWarn, EventErr:
		body = string(ev.Type) + " " + oneLine(ev.Message)
	case EventStatusGeneral, EventStatusClient, EventStatusServer:
		if ev.Status == nil {
			return nil
		}
		body = string(ev.Type) + " " + ev.Status.Severity + " " + ev.Status.Action
		if ev.Status.Args != "" {
			body += " " + oneLine(ev.Status.Args)
		}
	case EventSignal:
		body = "SIGNAL " + ev.Message
	case EventBuildTimeout:
		body = "BUILDTIMEOUT_SET " + oneLine(ev.Message)
	case EventAddrMap:
		if ev.AddrMap == nil {
			return nil
		}
		body = addrMapBody(ev.AddrMap)
	case EventHSDesc:
		if ev.HSDesc == nil {
			return nil
		}
		body = hsDescBody(ev.HSDesc)
	case EventHSDescContent:
		if ev.HSDescContent == nil {
			return nil
		}
		d := ev.HSDescContent
		head := "HS_DESC_CONTENT " + orUnknown(d.Address) + " " + orUnknown(d.DescID) + " " + hsDirName(d.HSDir)
		return newReply(650).Data(head, d.Descriptor).Line("OK").Bytes()
	case EventConfChanged:
		r := newReply(650).Line("CONF_CHANGED")
		for _, l := range ev.Conf {
			r.Line(oneLine(l))
		}
		return r.Line("OK").Bytes()
	default:
		return nil
	}
	return []byte("650 " + body + "\r\n")
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// addrMapBody formats ADDRMAP as C tor's control_event_address_mapped:
// the expiry as local time, then (extended) error=, EXPIRES= in UTC,
// CACHED= and STREAMID=.
func addrMapBody(a *AddrMapEvent) string {
	b := "ADDRMAP " + a.From + " " + a.To
	errField := ""
	if a.Error != "" {
		errField = a.Error + " "
	}
	cached := "NO"
	if a.Cached {
		cached = "YES"
	}
	if a.Expires.IsZero() {
		b += " NEVER " + errField
	} else {
		b += " " + quote(a.Expires.Local().Format(isoTime)) + " " + errField + "EXPIRES=" + quote(a.Expires.UTC().Format(isoTime)) + " "
	}
	b += "CACHED=" + quote(cached)
	if a.StreamID != 0 {
		b += " STREAMID=" + u64(a.StreamID)
	}
	return b
}

// isoTime is control-spec §2.4 ISOTime.
const isoTime = "2006-01-02 15:04:05"

func orUnknown(s string) string {
	if s == "" {
		return "UNKNOWN"
	}
	return s
}

func hsDirName(h Hop) string {
	if h.Fingerprint == "" {
		return "UNKNOWN"
	}
	return formatPath([]Hop{h})
}

// hsDescBody formats HS_DESC (control-spec §4.1.25).
func hsDescBody(d *HSDescEvent) string {
	auth := d.AuthType
	if auth == "" {
		auth = "NO_AUTH"
	}
	b := "HS_DESC " + d.Action + " " + orUnknown(d.Address) + " " + auth + " " + hsDirName(d.HSDir)
	if d.DescID != "" {
		b += " " + d.DescID
	}
	if d.Reason != "" {
		b += " REASON=" + d.Reason
	}
	if d.HSDirIndex != "" {
		b += " HSDIR_INDEX=" + d.HSDirIndex
	}
	return b
}
