package webhook

import (
	"encoding/json"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// Normalizer is the webhook's normalizer, registered for
// event.SourceWebhook (see normalize.Options.Normalizers). It maps a
// payload (see Payload) to the event's fields:
//
//	event_type      event_type, default "generic"
//	severity        severity through event.ParseSeverity, default info
//	source_system   the raw event's source system (the payload's source, default "webhook")
//	source_host     host (the stage lowercases it; may be empty)
//	source_service  service
//	title           title, or else message cut to 500 characters (and trailing space)
//	description     description, or else message when the title is not the whole message
//	event_data      {"metadata": {...}, "extra": {...}, "message": "...", "original_timestamp": ...}
//	tags            tags (the stage lowercases, deduplicates and cuts them)
//	occurred_at     timestamp, as bounded by the stage
//
// event_data holds only what the payload had: "metadata" is the payload's
// metadata object as sent (so that rules address metadata.cpu_usage),
// "extra" the unknown top-level fields by name, "message" the message when
// neither title nor description holds it in full (both were given, or only
// a description and the message was cut for the title), and
// "original_timestamp" the source's timestamp when the stage replaced it.
// Numbers in event_data are json.Number, exactly as sent. Later stages add
// their own keys beside these ("asset", "scoring").
type Normalizer struct{}

var _ normalize.Normalizer = Normalizer{}

// Normalize parses raw.Data with Parse and maps the payload.
func (Normalizer) Normalize(raw *event.Raw) (normalize.Draft, error) {
	p, err := Parse(raw.Data)
	if err != nil {
		return normalize.Draft{}, err
	}
	e := &event.Event{
		EventType:     p.EventType,
		Severity:      p.Severity,
		SourceSystem:  p.Source,
		SourceHost:    p.Host,
		SourceService: p.Service,
		Title:         p.Title,
		Description:   p.Description,
		Tags:          p.Tags,
		Message:       p.Message,
	}
	if e.Title == "" {
		e.Title = normalize.Title(p.Message)
	}
	if e.Description == "" && e.Title != p.Message {
		e.Description = p.Message
	}
	if p.Metadata != nil {
		e.SetData(normalize.DataMetadata, p.Metadata)
	}
	if len(p.Extra) > 0 {
		e.SetData(normalize.DataExtra, p.Extra)
	}
	if e.Title != p.Message && e.Description != p.Message {
		e.SetData(normalize.DataMessage, p.Message)
	}
	d := normalize.Draft{Event: e}
	if p.TimestampRaw != nil {
		d.Timestamp = p.Timestamp
		d.OriginalTimestamp = original(p.TimestampRaw)
	}
	return d, nil
}

// original decodes the source's timestamp value for event_data: a string,
// or a json.Number.
func original(raw json.RawMessage) any {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return json.Number(raw)
}
