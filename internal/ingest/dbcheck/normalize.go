package dbcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Normalizer is the database adapter's normalizer, registered for
// event.SourceDB. It maps a Payload to the event's fields.
//
// A check (kind check and check_failed):
//
//	event_type      the check's name; check_failed for a check that fails
//	severity        the check's severity when firing, info when resolved
//	source_system   the database's name (databases[].name)
//	source_host     the database's host (databases[].host, default the DSN's host)
//	source_service  the driver: postgres or mysql
//	title           the check's summary template (see Check.Summary); "Resolved: " before it when resolved
//	description     what held or ceased to hold (the condition, the value, the row count), or the error
//	event_data      {"database", "check", "builtin", "condition", "threshold", "value", "row_count", "rows", "error", "alert"}
//	occurred_at     when the check ran
//
// event_data.alert is {"key": "<database>/<check>" ("<database>/<check>/check_failed"
// for check_failed), "status": firing|resolved, "starts_at", "ends_at"}.
//
// A notification (kind notify): see ParseNotification for the payload.
//
//	event_type      listen[].event_type, default the channel
//	severity        the payload's severity, else listen[].severity (default medium)
//	source_system   the database's name
//	source_host     the payload's host, else the database's host
//	source_service  postgres
//	title           the payload's title, else its message's start, else "<channel> on <database>"
//	description     the message when the title is not all of it
//	event_data      {"database", "channel", "pid", "payload": the JSON object as sent, when it was one}
//	occurred_at     when the notification arrived
type Normalizer struct{}

var _ normalize.Normalizer = Normalizer{}

// Normalize decodes raw.Data (see ParsePayload) and maps it.
func (Normalizer) Normalize(raw *event.Raw) (normalize.Draft, error) {
	p, err := ParsePayload(raw.Data)
	if err != nil {
		return normalize.Draft{}, err
	}
	if p.Kind == KindNotify {
		return normalizeNotify(p), nil
	}
	return normalizeCheck(p), nil
}

func normalizeCheck(p *Payload) normalize.Draft {
	resolved := p.Status == string(event.AlertResolved)
	e := &event.Event{
		EventType:     p.Check,
		Severity:      severityOr(p.Severity, DefaultSeverity),
		SourceSystem:  p.Database,
		SourceHost:    p.Host,
		SourceService: p.Driver,
		Title:         p.Title,
	}
	key := event.AlertKey(p.Database, p.Check)
	if p.Kind == KindCheckFailed {
		e.EventType = EventTypeCheckFailed
		key = event.AlertKey(p.Database, p.Check, EventTypeCheckFailed)
	}
	alert := &event.Alert{Key: key, Status: event.AlertFiring, StartsAt: p.Since}
	if resolved {
		alert.Status = event.AlertResolved
		at := p.At
		alert.EndsAt = &at
		e.Severity = event.Info
	}
	e.Alert = alert
	if e.Title == "" {
		e.Title = fmt.Sprintf("%s on %s", p.Check, p.Database)
		if resolved {
			e.Title = "Resolved: " + e.Title
		}
	}
	e.Description = checkDescription(p, resolved)

	e.SetData("database", p.Database)
	e.SetData("check", p.Check)
	if p.Builtin != "" {
		e.SetData("builtin", p.Builtin)
	}
	if p.Condition != "" {
		e.SetData("condition", p.Condition)
	}
	if p.Threshold != nil {
		e.SetData("threshold", *p.Threshold)
	}
	if p.Kind == KindCheckFailed {
		if p.Error != "" {
			e.SetData("error", p.Error)
		}
	} else {
		if p.Value != nil {
			e.SetData("value", *p.Value)
		}
		e.SetData("row_count", p.RowCount)
		if len(p.Rows) > 0 {
			e.SetData("rows", p.Rows)
		}
	}
	return normalize.Draft{Event: e, Timestamp: p.At}
}

func checkDescription(p *Payload, resolved bool) string {
	if p.Kind == KindCheckFailed {
		if resolved {
			return fmt.Sprintf("Check %s on %s runs again.", p.Check, p.Database)
		}
		return fmt.Sprintf("Check %s on %s failed: %s", p.Check, p.Database, p.Error)
	}
	var b strings.Builder
	if resolved {
		fmt.Fprintf(&b, "%s no longer holds on %s: ", p.Condition, p.Database)
	} else {
		fmt.Fprintf(&b, "%s holds on %s: ", p.Condition, p.Database)
	}
	if p.Value != nil {
		fmt.Fprintf(&b, "value %s, ", formatNumber(*p.Value))
	}
	if p.RowCount == 1 {
		b.WriteString("1 row.")
	} else {
		fmt.Fprintf(&b, "%d rows.", p.RowCount)
	}
	return b.String()
}

func severityOr(s string, def event.Severity) event.Severity {
	if sev, err := event.ParseSeverity(s); err == nil && s != "" {
		return sev
	}
	return def
}

func normalizeNotify(p *Payload) normalize.Draft {
	n := ParseNotification(p.Text)
	e := &event.Event{
		EventType:     p.EventType,
		Severity:      severityOr(p.Severity, DefaultNotifySeverity),
		SourceSystem:  p.Database,
		SourceHost:    p.Host,
		SourceService: DriverPostgres,
		Title:         n.Title,
		Message:       n.Message,
	}
	if e.EventType == "" {
		e.EventType = p.Channel
	}
	if n.Severity != "" {
		e.Severity = n.Severity
	}
	if n.Host != "" {
		e.SourceHost = n.Host
	}
	if e.Title == "" {
		e.Title = normalize.Title(n.Message)
	}
	if e.Title == "" {
		e.Title = fmt.Sprintf("%s on %s", p.Channel, p.Database)
	}
	if n.Message != "" && n.Message != e.Title {
		e.Description = n.Message
	}
	e.SetData("database", p.Database)
	e.SetData("channel", p.Channel)
	if p.PID != 0 {
		e.SetData("pid", p.PID)
	}
	if n.Object != nil {
		e.SetData("payload", n.Object)
	}
	return normalize.Draft{Event: e, Timestamp: p.At}
}

// Notification is what a NOTIFY payload says.
type Notification struct {
	// Object is the payload when it is a JSON object (numbers as
	// json.Number); nil otherwise.
	Object map[string]any
	// Title, Severity, Host and Message are the object's "title",
	// "severity" (parsed; empty when absent or unknown), "host" and
	// "message" strings; Message is the payload itself when it is no
	// JSON object.
	Title    string
	Severity event.Severity
	Host     string
	Message  string
}

// ParseNotification reads a NOTIFY payload: a JSON object, whose title,
// severity, host and message (strings) are honoured and whose other keys
// are kept, or else plain text, which is the message. It never fails.
func ParseNotification(text string) Notification {
	trimmed := strings.TrimSpace(text)
	if !strings.HasPrefix(trimmed, "{") {
		return Notification{Message: trimmed}
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(trimmed)))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() || dec.InputOffset() != int64(len(trimmed)) {
		return Notification{Message: trimmed}
	}
	n := Notification{Object: obj}
	str := func(k string) string {
		s, _ := obj[k].(string)
		return strings.TrimSpace(s)
	}
	n.Title = str("title")
	n.Host = str("host")
	n.Message = str("message")
	if s := str("severity"); s != "" {
		if sev, err := event.ParseSeverity(s); err == nil {
			n.Severity = sev
		}
	}
	return n
}
