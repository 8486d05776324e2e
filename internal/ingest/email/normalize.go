package email

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// DefaultEventType is the event type of a mail no rule gave one.
const DefaultEventType = "email"

// DataEmail is the key of event_data that holds what the mail said
// besides its subject and text (see Normalizer).
const DataEmail = "email"

// Record is a mail as the adapter submits it (intake.Item.Data): what
// Parse read, how it arrived and what the rules extracted. The raw mail
// is not kept.
type Record struct {
	Mail
	Envelope  Envelope  `json:"envelope"`
	Extracted Extracted `json:"extracted"`
}

// Envelope is how a mail arrived.
type Envelope struct {
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
	// Helo is the name the client greeted with.
	Helo string `json:"helo,omitempty"`
	// RemoteIP is the client's address.
	RemoteIP string `json:"remote_ip,omitempty"`
	TLS      bool   `json:"tls,omitempty"`
	// User is the authenticated user, when the client authenticated.
	User string `json:"user,omitempty"`
	// Size is the message's size in bytes, as received.
	Size int `json:"size"`
}

// NewRecord builds the record of a parsed mail: it applies rules to its
// subject and text.
func NewRecord(m *Mail, env Envelope, rules *Rules) *Record {
	return &Record{Mail: *m, Envelope: env, Extracted: rules.Extract(m.Subject, m.Body, m.Headers["X-Priority"])}
}

// Normalizer is the email adapter's normalizer, registered for
// event.SourceEmail. It maps a Record to the event's fields:
//
//	event_type      the rules' event type, default "email"
//	severity        the rules' severity (see Rules.Extract)
//	source_host     the rules' host (may be empty)
//	source_service  the rules' service
//	title           the subject (default: the text's start, by normalize.Clean)
//	description     the text (text/plain part, or text/html converted)
//	occurred_at     the Date header (the receipt time when absent, unreadable or implausible)
//	event_data      {"email": {from, to, cc, message_id, date, headers,
//	                 body_type, body_truncated, attachments, envelope, rules},
//	                 "alert": {key, status} when the rules tell}
//
// Event.Message is the text, for the template miner.
type Normalizer struct{}

var _ normalize.Normalizer = Normalizer{}

// Normalize decodes raw.Data as a Record and maps it.
func (Normalizer) Normalize(raw *event.Raw) (normalize.Draft, error) {
	var r Record
	if err := json.Unmarshal(raw.Data, &r); err != nil {
		return normalize.Draft{}, fmt.Errorf("email: decode record: %w", err)
	}
	x := r.Extracted
	e := &event.Event{
		EventType:     x.EventType,
		Severity:      x.Severity,
		SourceHost:    x.Host,
		SourceService: x.Service,
		Title:         r.Subject,
		Description:   r.Body,
		Message:       r.Body,
	}
	if e.EventType == "" {
		e.EventType = DefaultEventType
	}
	if !e.Severity.Valid() {
		e.Severity = event.Info
	}
	data := map[string]any{"envelope": r.Envelope}
	put := func(k string, v any, ok bool) {
		if ok {
			data[k] = v
		}
	}
	put("from", r.From, r.From != "")
	put("to", r.To, len(r.To) > 0)
	put("cc", r.Cc, len(r.Cc) > 0)
	put("message_id", r.MessageID, r.MessageID != "")
	put("date", r.Date, r.Date != "")
	put("headers", r.Headers, len(r.Headers) > 0)
	put("body_type", r.BodyType, r.BodyType != "")
	put("body_truncated", true, r.BodyTruncated)
	put("attachments", r.Attachments, len(r.Attachments) > 0)
	put("rules", x.Rules, len(x.Rules) > 0)
	generic, err := genericJSON(data)
	if err != nil {
		return normalize.Draft{}, err
	}
	e.SetData(DataEmail, generic)
	if x.AlertKey != "" && (x.Status == event.AlertFiring || x.Status == event.AlertResolved) {
		e.Alert = &event.Alert{Key: x.AlertKey, Status: x.Status}
	}
	d := normalize.Draft{Event: e}
	if r.Date != "" {
		if t, err := mail.ParseDate(strings.TrimSpace(r.Date)); err == nil {
			d.Timestamp = t
			d.OriginalTimestamp = r.Date
		}
	}
	return d, nil
}

// genericJSON turns v into the values event_data holds when read back
// from the store (maps, slices, strings, bools and json.Number), so that
// later stages see one shape.
func genericJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("email: encode event data: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("email: decode event data: %w", err)
	}
	return out, nil
}

// encodeRecord is the intake item data of a record.
func encodeRecord(r *Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("email: encode record: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
