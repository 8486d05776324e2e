package syslog

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Keys of event_data set by the normalizer.
const (
	DataSyslog         = "syslog"          // the header fields, see Normalizer
	DataStructuredData = "structured_data" // RFC 5424 SD: {sd-id: {param: value}}
)

// TagMalformed marks the event of a message that did not parse.
const TagMalformed = "syslog_malformed"

// facilities are the facility keywords, by code (RFC 5424 6.2.1, the
// names of syslog(3) and rsyslog).
var facilities = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// severities are the severity keywords, by code, and the event severity
// each maps to.
var severities = [8]struct {
	name string
	sev  event.Severity
}{
	{"emerg", event.Critical},
	{"alert", event.Critical},
	{"crit", event.Critical},
	{"err", event.High},
	{"warning", event.Medium},
	{"notice", event.Low},
	{"info", event.Info},
	{"debug", event.Info},
}

// FacilityName is the keyword of facility code f (kern ... local7).
func FacilityName(f uint8) string {
	if int(f) < len(facilities) {
		return facilities[f]
	}
	return fmt.Sprintf("facility%d", f)
}

// SeverityName is the keyword of syslog severity code s (emerg ... debug).
func SeverityName(s uint8) string { return severities[s&7].name }

// SeverityOf maps a syslog severity code to the event's severity:
// emerg, alert and crit to critical, err to high, warning to medium,
// notice to low, info and debug to info.
func SeverityOf(s uint8) event.Severity { return severities[s&7].sev }

// raw is an intake item's Data: the message as it came off the wire and
// where from. The normalizer parses it again, so that the raw event keeps
// exactly what the sender wrote (made valid UTF-8 without NUL).
type raw struct {
	Message  string `json:"message"`
	Peer     string `json:"peer,omitempty"`     // the sender's IP address
	Listener string `json:"listener,omitempty"` // udp, tcp or tls
}

// Normalizer is the syslog adapter's normalizer, registered for
// event.SourceSyslog. It parses the raw event's message (RFC 5424, else
// RFC 3164, best effort) and maps it:
//
//	event_type      "syslog.<app-name>" (lowercased; characters other than a-z 0-9 . _ - become _), "syslog" without app-name
//	severity        the syslog severity: emerg/alert/crit critical, err high, warning medium, notice low, info/debug info
//	source_host     HOSTNAME, or else the sender's IP address
//	source_service  APP-NAME (the RFC 3164 tag)
//	title           the message text's first line (cut to 500 characters); default "<facility>.<severity> syslog message"
//	description     the message text (for a malformed message: everything after the PRI)
//	event_data      syslog: {format, facility, severity, priority, hostname, app_name, procid, msgid, peer, listener, malformed}
//	                structured_data: {sd-id: {param: value}} (RFC 5424)
//	tags            "syslog_malformed" for a message that did not parse
//	occurred_at     TIMESTAMP (RFC 3164: in Location, year inferred from the receipt time)
//
// Event.Message is the text, for the template miner. Empty fields are
// left out of event_data.syslog.
type Normalizer struct {
	// Location is the zone of RFC 3164 times, which carry none (default
	// time.Local, as rsyslog reads them).
	Location *time.Location
}

var _ normalize.Normalizer = Normalizer{}

var parsers sync.Map // *time.Location -> *sync.Pool of *parser

func (n Normalizer) parser() (*parser, func()) {
	loc := n.Location
	if loc == nil {
		loc = time.Local
	}
	v, ok := parsers.Load(loc)
	if !ok {
		v, _ = parsers.LoadOrStore(loc, &sync.Pool{New: func() any { return newParser(loc) }})
	}
	pool := v.(*sync.Pool)
	p := pool.Get().(*parser)
	return p, func() { pool.Put(p) }
}

// Normalize decodes raw.Data (see raw), parses the message and maps it.
func (n Normalizer) Normalize(r *event.Raw) (normalize.Draft, error) {
	var d raw
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return normalize.Draft{}, fmt.Errorf("syslog: raw event data: %w", err)
	}
	if d.Message == "" {
		return normalize.Draft{}, errors.New("syslog: raw event data has no message")
	}
	p, done := n.parser()
	defer done()
	received := r.ReceivedAt
	if received.IsZero() {
		received = event.TimeOfID(r.ID)
	}
	m := p.parse([]byte(d.Message), received)
	return draft(&m, d.Peer, d.Listener), nil
}

// draft maps a parsed message to the event's fields.
func draft(m *Message, peer, listener string) normalize.Draft {
	e := &event.Event{
		EventType:     eventType(m.AppName),
		Severity:      SeverityOf(m.Severity),
		SourceHost:    hostOf(m, peer),
		SourceService: m.AppName,
		Title:         firstLine(m.Text),
		Description:   m.Text,
		Message:       m.Text,
	}
	if e.Title == "" {
		e.Title = FacilityName(m.Facility) + "." + SeverityName(m.Severity) + " syslog message"
	}
	hdr := map[string]any{
		"format":   m.Format,
		"facility": FacilityName(m.Facility),
		"severity": SeverityName(m.Severity),
		"priority": int(m.Priority),
	}
	for k, v := range map[string]string{
		"hostname": m.Hostname, "app_name": m.AppName, "procid": m.ProcID, "msgid": m.MsgID,
		"peer": peer, "listener": listener, "malformed": m.Malformed,
	} {
		if v != "" {
			hdr[k] = v
		}
	}
	e.SetData(DataSyslog, hdr)
	if len(m.StructuredData) > 0 {
		sd := make(map[string]any, len(m.StructuredData))
		for id, params := range m.StructuredData {
			ps := make(map[string]any, len(params))
			for k, v := range params {
				ps[k] = v
			}
			sd[id] = ps
		}
		e.SetData(DataStructuredData, sd)
	}
	if m.Malformed != "" {
		e.Tag(TagMalformed)
	}
	return normalize.Draft{Event: e, Timestamp: m.Timestamp}
}

// hostOf is the event's host: the message's HOSTNAME, or else the peer.
func hostOf(m *Message, peer string) string {
	if m.Hostname != "" {
		return m.Hostname
	}
	return peer
}

// maxAppInType bounds the app-name part of event_type.
const maxAppInType = 64

// eventType is "syslog.<app>", the app-name lowercased, with every
// character but a-z, 0-9, '.', '_' and '-' replaced by '_'.
func eventType(app string) string {
	if app == "" {
		return "syslog"
	}
	var b strings.Builder
	b.Grow(len("syslog.") + min(len(app), maxAppInType))
	b.WriteString("syslog.")
	n := 0
	for _, r := range strings.ToLower(app) {
		if n == maxAppInType {
			break
		}
		n++
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// firstLine is s up to its first line end, trimmed.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}
