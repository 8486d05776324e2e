package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
)

// Defaults of absent fields.
const (
	// DefaultSource is the source of an event that names none.
	DefaultSource = "webhook"
	// DefaultEventType is the event type of an event that names none.
	DefaultEventType = "generic"
)

// Length limits of the string fields, in characters (runes) after
// trimming surrounding space. They are the column sizes of
// events.processed_events and events.raw_events.
const (
	MaxSourceLen    = 100
	MaxEventTypeLen = 100
	MaxHostLen      = 255
	MaxServiceLen   = 100
	MaxTitleLen     = 500
	MaxTagLen       = 50
	// MaxTags is the most tags one event may carry.
	MaxTags = 64
)

// The payload's field names.
const (
	fieldSource      = "source"
	fieldEventType   = "event_type"
	fieldSeverity    = "severity"
	fieldHost        = "host"
	fieldService     = "service"
	fieldMessage     = "message"
	fieldTitle       = "title"
	fieldDescription = "description"
	fieldTimestamp   = "timestamp"
	fieldMetadata    = "metadata"
	fieldTags        = "tags"
)

var knownFields = map[string]bool{
	fieldSource: true, fieldEventType: true, fieldSeverity: true, fieldHost: true,
	fieldService: true, fieldMessage: true, fieldTitle: true, fieldDescription: true,
	fieldTimestamp: true, fieldMetadata: true, fieldTags: true,
}

// Payload is one webhook event, validated and with defaults applied. On the
// wire it is a JSON object:
//
//	{
//	  "source": "monitoring_system_name",   optional, default "webhook"
//	  "event_type": "threshold_breach",     optional, default "generic"
//	  "severity": "critical",               optional, default "info"; a word or a number (event.ParseSeverity)
//	  "host": "web-server-01",              optional
//	  "service": "nginx",                   optional
//	  "message": "CPU usage exceeded 95%",  required, not empty
//	  "title": "...",                       optional
//	  "description": "...",                 optional
//	  "timestamp": "2024-12-20T10:30:00Z",  optional: RFC 3339, or unix seconds or milliseconds
//	  "metadata": {"cpu_usage": 97.5},      optional object
//	  "tags": ["prod", "web"]               optional array of strings
//	}
//
// A field whose value is null is treated as absent, and so is an empty or
// all-space severity, timestamp or title. Strings are trimmed of
// surrounding space. Field names are case-sensitive. Any other top-level
// field is kept in Extra.
//
// A timestamp is an RFC 3339 time with a zone (fractional seconds allowed),
// or a unix time as a plain decimal number or a string of one: below 10^11 it
// is read as seconds (10^11 seconds is the year 5138), from 10^11 on as
// milliseconds (10^11 ms is 1973); a fraction is allowed. Negative numbers,
// exponents and times after the year 9999 are rejected.
//
// Payload's MarshalJSON writes the wire form and UnmarshalJSON reads it with
// Parse, so a client can build events with it.
type Payload struct {
	Source    string
	EventType string
	Severity  event.Severity
	Host      string
	Service   string
	Message   string
	// Title and Description are empty when not given.
	Title       string
	Description string
	// Timestamp is when the event occurred according to the source, in
	// UTC; zero when not given. TimestampRaw is the value as sent (a JSON
	// string or number), nil when not given.
	Timestamp    time.Time
	TimestampRaw json.RawMessage
	// Metadata is the metadata object, nil when not given. Numbers are
	// json.Number, so they stay exact.
	Metadata map[string]any
	// Tags are the tags as given, trimmed, in order; empty ones dropped.
	Tags []string
	// Extra holds the unknown top-level fields by name, nil when none.
	// Numbers are json.Number.
	Extra map[string]any
}

// FieldError is a validation failure of one event: the top-level field at
// fault (empty for the event as a whole) and why.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "field: reason", or the reason alone.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Parse decodes and validates one webhook event object. The error, if any,
// is a *FieldError. Parse is deterministic: the normalizer calls it again on
// the bytes intake stored and gets the same result Decode got.
func Parse(data []byte) (Payload, error) {
	return parse(data, true)
}

// parse is Parse; with full false it only validates metadata and the
// unknown fields (they are valid JSON objects and values) without building
// them, which is all intake needs.
func parse(data []byte, full bool) (Payload, error) {
	d := trimWS(data)
	if len(d) == 0 || d[0] != '{' {
		what := "empty"
		if len(d) > 0 {
			what = "a JSON " + kind(d[0])
		}
		return Payload{}, &FieldError{Reason: "event must be a JSON object, not " + what}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(d, &fields); err != nil {
		return Payload{}, &FieldError{Reason: "event is not valid JSON: " + err.Error()}
	}
	if fe := checkStorable(d); fe != nil {
		return Payload{}, fe
	}
	p := parser{fields: fields, full: full}
	var out Payload
	out.Message = p.str(fieldMessage, 0)
	if p.err == nil && out.Message == "" {
		p.fail(fieldMessage, "required field is missing or empty"+p.caseHint(fieldMessage))
	}
	out.Severity = p.severity()
	out.Timestamp, out.TimestampRaw = p.timestamp()
	out.Source = p.str(fieldSource, MaxSourceLen)
	out.EventType = p.str(fieldEventType, MaxEventTypeLen)
	out.Host = p.str(fieldHost, MaxHostLen)
	out.Service = p.str(fieldService, MaxServiceLen)
	out.Title = p.str(fieldTitle, MaxTitleLen)
	out.Description = p.str(fieldDescription, 0)
	out.Metadata = p.metadata()
	out.Tags = p.tags()
	out.Extra = p.extra()
	if p.err != nil {
		return Payload{}, p.err
	}
	if out.Source == "" {
		out.Source = DefaultSource
	}
	if out.EventType == "" {
		out.EventType = DefaultEventType
	}
	return out, nil
}

// parser validates the fields of one event, keeping the first failure.
type parser struct {
	fields map[string]json.RawMessage
	full   bool // build Metadata and Extra
	err    *FieldError
}

func (p *parser) fail(field, reason string) {
	if p.err == nil {
		p.err = &FieldError{Field: field, Reason: reason}
	}
}

// caseHint points out a field that differs from name only in case.
func (p *parser) caseHint(name string) string {
	for k := range p.fields {
		if k != name && strings.EqualFold(k, name) {
			return fmt.Sprintf(" (field names are case-sensitive: found %q)", clip(k, 40))
		}
	}
	return ""
}

// raw returns the field's value, or nil when it is absent or null (or an
// earlier field failed).
func (p *parser) raw(name string) json.RawMessage {
	if p.err != nil {
		return nil
	}
	v, ok := p.fields[name]
	if !ok || string(v) == "null" {
		return nil
	}
	return v
}

// str returns the trimmed string field name, checking that it has at most
// limit runes (0: no limit).
func (p *parser) str(name string, limit int) string {
	v := p.raw(name)
	if v == nil {
		return ""
	}
	if v[0] != '"' {
		p.fail(name, "must be a string, not "+aKind(v[0]))
		return ""
	}
	s, ok := unquote(v)
	if !ok {
		p.fail(name, "must be a string")
		return ""
	}
	s = strings.TrimSpace(s)
	if limit > 0 && len(s) > limit && utf8.RuneCountInString(s) > limit {
		p.fail(name, fmt.Sprintf("longer than %d characters", limit))
		return ""
	}
	return s
}

func (p *parser) severity() event.Severity {
	v := p.raw(fieldSeverity)
	if v == nil {
		return event.Info
	}
	var sev event.Severity
	var err error
	switch v[0] {
	case '"':
		s, ok := unquote(v)
		if !ok {
			p.fail(fieldSeverity, "must be a string or a number")
			return ""
		}
		if strings.TrimSpace(s) == "" {
			return event.Info
		}
		sev, err = event.ParseSeverity(s)
	default:
		sev, err = event.ParseSeverityJSON(v)
	}
	if err != nil {
		p.fail(fieldSeverity, err.Error())
		return ""
	}
	return sev
}

const timestampHelp = "want an RFC 3339 time with a zone such as 2024-12-20T10:30:00Z, or a unix time in seconds or milliseconds"

func (p *parser) timestamp() (time.Time, json.RawMessage) {
	v := p.raw(fieldTimestamp)
	if v == nil {
		return time.Time{}, nil
	}
	switch v[0] {
	case '"':
		s, ok := unquote(v)
		if !ok {
			p.fail(fieldTimestamp, timestampHelp)
			return time.Time{}, nil
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return time.Time{}, nil
		}
		if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
			t, ok := parseUnix(s)
			if !ok {
				p.fail(fieldTimestamp, fmt.Sprintf("%q is not a valid unix time: %s", clip(s, 40), timestampHelp))
				return time.Time{}, nil
			}
			return t, v
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			p.fail(fieldTimestamp, fmt.Sprintf("%q is not a valid time: %s", clip(s, 40), timestampHelp))
			return time.Time{}, nil
		}
		return t.UTC(), v
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		t, ok := parseUnix(string(v))
		if !ok {
			p.fail(fieldTimestamp, fmt.Sprintf("%s is not a valid unix time: %s", clip(string(v), 40), timestampHelp))
			return time.Time{}, nil
		}
		return t, v
	}
	p.fail(fieldTimestamp, "must be a string or a number: "+timestampHelp)
	return time.Time{}, nil
}

// unixMillisThreshold separates unix seconds (below) from milliseconds.
const unixMillisThreshold = 100_000_000_000

// maxUnixSeconds is 9999-12-31T23:59:59Z.
const maxUnixSeconds = 253402300799

// parseUnix reads a plain non-negative decimal number (digits, optionally
// a fraction) as unix seconds or milliseconds (see Payload).
func parseUnix(s string) (time.Time, bool) {
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > 16 || !allDigits(intPart) || !allDigits(frac) {
		return time.Time{}, false
	}
	if strings.Contains(s, ".") && frac == "" {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	// The fraction as nanoseconds of the unit: pad or cut to 9 digits.
	frac = (frac + "000000000")[:9]
	fn, _ := strconv.ParseInt(frac, 10, 64)
	var t time.Time
	if n < unixMillisThreshold {
		t = time.Unix(n, fn)
	} else {
		if n/1000 > maxUnixSeconds {
			return time.Time{}, false
		}
		t = time.UnixMilli(n).Add(time.Duration(fn / 1000))
	}
	if t.Unix() > maxUnixSeconds {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (p *parser) metadata() map[string]any {
	v := p.raw(fieldMetadata)
	if v == nil {
		return nil
	}
	if v[0] != '{' {
		p.fail(fieldMetadata, "must be an object, not "+aKind(v[0]))
		return nil
	}
	if !p.full {
		return nil
	}
	var m map[string]any
	if err := decodeNumbers(v, &m); err != nil {
		p.fail(fieldMetadata, "must be an object")
		return nil
	}
	return m
}

func (p *parser) tags() []string {
	v := p.raw(fieldTags)
	if v == nil {
		return nil
	}
	if v[0] != '[' {
		p.fail(fieldTags, "must be an array of strings, not "+aKind(v[0]))
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		p.fail(fieldTags, "must be an array of strings")
		return nil
	}
	if len(raw) > MaxTags {
		p.fail(fieldTags, fmt.Sprintf("more than %d tags", MaxTags))
		return nil
	}
	var out []string
	for i, r := range raw {
		if r[0] != '"' {
			p.fail(fieldTags, fmt.Sprintf("tag %d must be a string, not %s", i, aKind(r[0])))
			return nil
		}
		s, ok := unquote(r)
		if !ok {
			p.fail(fieldTags, fmt.Sprintf("tag %d must be a string", i))
			return nil
		}
		s = strings.TrimSpace(s)
		if utf8.RuneCountInString(s) > MaxTagLen {
			p.fail(fieldTags, fmt.Sprintf("tag %d is longer than %d characters", i, MaxTagLen))
			return nil
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) extra() map[string]any {
	if p.err != nil || !p.full {
		return nil
	}
	var out map[string]any
	for k, v := range p.fields {
		if knownFields[k] {
			continue
		}
		var x any
		if err := decodeNumbers(v, &x); err != nil {
			p.fail(k, "invalid value")
			return nil
		}
		if out == nil {
			out = make(map[string]any)
		}
		out[k] = x
	}
	return out
}

// unquote decodes the JSON string v, without a second validation pass
// when it holds no escape.
func unquote(v []byte) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// decodeNumbers unmarshals data into v, keeping numbers as json.Number.
func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// MarshalJSON writes the payload's wire form: the known fields that are
// set, with Extra's fields beside them (a known field wins over an Extra
// entry of the same name). The timestamp is written in RFC 3339.
func (p Payload) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Extra)+11)
	for k, v := range p.Extra {
		m[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		} else {
			delete(m, k)
		}
	}
	set(fieldSource, p.Source)
	set(fieldEventType, p.EventType)
	set(fieldSeverity, string(p.Severity))
	set(fieldHost, p.Host)
	set(fieldService, p.Service)
	set(fieldMessage, p.Message)
	set(fieldTitle, p.Title)
	set(fieldDescription, p.Description)
	if !p.Timestamp.IsZero() {
		m[fieldTimestamp] = p.Timestamp.UTC().Format(time.RFC3339Nano)
	} else {
		delete(m, fieldTimestamp)
	}
	delete(m, fieldMetadata)
	if p.Metadata != nil {
		m[fieldMetadata] = p.Metadata
	}
	delete(m, fieldTags)
	if len(p.Tags) > 0 {
		m[fieldTags] = p.Tags
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the wire form with Parse.
func (p *Payload) UnmarshalJSON(data []byte) error {
	v, err := Parse(data)
	if err != nil {
		return err
	}
	*p = v
	return nil
}
