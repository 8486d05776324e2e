package syslog

import (
	"bytes"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// Formats of Message.Format.
const (
	FormatRFC5424  = "rfc5424"
	FormatRFC3164  = "rfc3164"
	FormatUnparsed = "unparsed" // no valid PRI: the whole line is the text
)

// Malformed reasons (Message.Malformed; the reason label of
// reflex_syslog_malformed_total): a fixed set, never text of the input.
const (
	MalformedPriority = "priority" // no valid <PRI> at the start
	MalformedRFC5424  = "rfc5424"  // a version 1 header that does not parse
	MalformedRFC3164  = "rfc3164"  // a BSD header that does not parse
)

// defaultPriority is the priority of a message without one: user.notice,
// as RFC 3164 4.3.3 has a relay assume.
const defaultPriority = 13

// Message is a syslog message as reflex reads it. A malformed message is
// still a Message: what could be parsed is set, Malformed names the
// problem and Text holds everything after the PRI (the whole line when
// there is no PRI), so that nothing the sender wrote is lost.
type Message struct {
	Format    string
	Malformed string // empty when the message parsed
	Priority  uint8
	Facility  uint8 // Priority / 8
	Severity  uint8 // Priority % 8
	// Timestamp is the message's time; zero when it has none. An RFC 3164
	// time (no year, no zone) is read in the parser's location, in the
	// year that puts it nearest before the receipt time.
	Timestamp      time.Time
	Hostname       string
	AppName        string
	ProcID         string
	MsgID          string
	StructuredData map[string]map[string]string
	Text           string
}

// parser parses syslog messages. It is used by one goroutine (the
// library's machines keep state); make one per goroutine.
type parser struct {
	loc     *time.Location
	rfc5424 gosyslog.Machine
	rfc3164 gosyslog.Machine
}

func newParser(loc *time.Location) *parser {
	if loc == nil {
		loc = time.Local
	}
	return &parser{
		loc:     loc,
		rfc5424: rfc5424.NewMachine(rfc5424.WithBestEffort()),
		rfc3164: rfc3164.NewMachine(
			rfc3164.WithBestEffort(),
			rfc3164.WithRFC3339(),
			rfc3164.WithSecondFractions(),
			rfc3164.WithLenientDay(),
			rfc3164.WithEmbeddedNewlines(), // an octet-counted frame may hold lines
		),
	}
}

// parse reads one message; received is its receipt time (for the year of
// an RFC 3164 time). It never fails: see Message.
func (p *parser) parse(raw []byte, received time.Time) Message {
	pri, n := priority(raw)
	if n == 0 {
		m := Message{Format: FormatUnparsed, Malformed: MalformedPriority, Text: text(raw)}
		m.setPriority(defaultPriority)
		return m
	}
	rest := raw[n:]
	if isVersion1(rest) {
		return p.parse5424(raw, rest, pri)
	}
	return p.parse3164(raw, rest, pri, received)
}

func (p *parser) parse5424(raw, rest []byte, pri uint8) Message {
	m := Message{Format: FormatRFC5424}
	m.setPriority(pri)
	msg, err := p.rfc5424.Parse(raw)
	sm, _ := msg.(*rfc5424.SyslogMessage)
	if sm != nil {
		m.setBase(&sm.Base)
		if sm.StructuredData != nil && len(*sm.StructuredData) > 0 {
			m.StructuredData = *sm.StructuredData
		}
	}
	if err != nil || sm == nil {
		m.Malformed = MalformedRFC5424
		m.Text = text(rest)
	}
	return m
}

func (p *parser) parse3164(raw, rest []byte, pri uint8, received time.Time) Message {
	m := Message{Format: FormatRFC3164}
	m.setPriority(pri)
	msg, err := p.rfc3164.Parse(raw)
	sm, _ := msg.(*rfc3164.SyslogMessage)
	if sm != nil {
		m.setBase(&sm.Base)
		if sm.Timestamp != nil && sm.Timestamp.Year() == 0 {
			m.Timestamp = p.bsdTime(*sm.Timestamp, received)
		}
	}
	if err != nil || sm == nil || (m.Text == "" && m.Timestamp.IsZero() && len(bytes.TrimSpace(rest)) > 0) {
		// A header the parser gave up on, or nothing recognised of a
		// non-empty message: keep all of it.
		m.Malformed = MalformedRFC3164
		m.Text = text(rest)
	}
	return m
}

func (m *Message) setPriority(pri uint8) {
	m.Priority = pri
	m.Facility = pri / 8
	m.Severity = pri % 8
}

func (m *Message) setBase(b *gosyslog.Base) {
	if b.Timestamp != nil {
		m.Timestamp = *b.Timestamp
	}
	m.Hostname = deref(b.Hostname)
	m.AppName = deref(b.Appname)
	m.ProcID = deref(b.ProcID)
	m.MsgID = deref(b.MsgID)
	if b.Message != nil {
		m.Text = text([]byte(*b.Message))
	}
}

// bsdTime places an RFC 3164 time (month, day, clock; parsed in year 0)
// in p.loc, in the year that puts it at most a month after received and
// otherwise nearest before it: a December message received in January is
// last year's.
func (p *parser) bsdTime(t time.Time, received time.Time) time.Time {
	if received.IsZero() {
		received = time.Now()
	}
	y := received.In(p.loc).Year()
	at := func(year int) time.Time {
		return time.Date(year, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), p.loc)
	}
	ts := at(y)
	if ts.After(received.AddDate(0, 1, 0)) {
		ts = at(y - 1)
	}
	return ts
}

// priority reads <PRI> at the start of b: its value and length, or 0, 0
// when there is none (1 to 3 digits, at most 191, no leading zero but
// "<0>").
func priority(b []byte) (uint8, int) {
	if len(b) < 3 || b[0] != '<' {
		return 0, 0
	}
	v := 0
	i := 1
	for ; i < len(b) && i <= 4 && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int(b[i]-'0')
	}
	digits := i - 1
	if digits == 0 || digits > 3 || i >= len(b) || b[i] != '>' || v > 191 || (digits > 1 && b[1] == '0') {
		return 0, 0
	}
	return uint8(v), i + 1 //nolint:gosec // v <= 191
}

// isVersion1 reports whether b starts with the RFC 5424 version "1 ".
func isVersion1(b []byte) bool { return len(b) >= 2 && b[0] == '1' && b[1] == ' ' }

// text is a message's text: a leading UTF-8 BOM (RFC 5424 6.4) and
// trailing line ends dropped.
func text(b []byte) string {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	return string(bytes.TrimRight(b, "\r\n\x00"))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
