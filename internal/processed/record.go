// Package processed is reflex's at-least-once delivery of what the pipeline
// stored to the components that come after the store: trigger rules, the
// intelligence layer, the autonomous service. The Publisher is the
// pipeline's Downstream: after each store commit, and before the intake
// messages are acknowledged, it publishes one Record per stored raw event
// (a new processed event, or a repeat folded into an earlier one) on the
// processed stream (bus.Processed); after a crash between a commit and its
// acknowledgement it republishes, from the store, what the redelivered
// messages had stored. A Consumer reads the stream for one component, in
// batches, and acknowledges after its handler returns.
//
// # The consumer contract
//
// Every stored event reaches every consumer at least once, and sometimes
// more than once (a republish after a crash, a handler error, a lost
// acknowledgement). A consumer's effects must therefore be idempotent,
// keyed by (consumer, Record.Key()): the raw event id of the occurrence.
// Durable effects (a rule execution row, a decision, a notification) are
// keyed in the component's own tables, with a unique constraint on
// (component or rule, raw event id) and an insert that ignores conflicts;
// Recent, an in-memory set of recently handled keys, only saves work on
// the common duplicates and is lost at restart.
package processed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/reflex-ops/reflex/internal/event"
)

// Kind says what a Record reports.
type Kind string

// The kinds of Records.
const (
	// KindNew is a new processed event: EventID == RawEventID.
	KindNew Kind = "new"
	// KindRepeat is a raw event that deduplication folded into the earlier
	// processed event EventID: one more occurrence of it.
	KindRepeat Kind = "repeat"
)

// Version is the version of the message format that Publisher writes;
// Decode reads it and version 1, and refuses later ones. Version 2 carries
// an event's typed results (asset, scoring, template) beside its
// event_data instead of inside it, so that a consumer decodes each event
// in one pass (version 1 took four passes over event_data: a third of a
// consumer's CPU). A reflex older than version 2 terminates version 2
// messages as corrupt: do not downgrade with records in the stream.
const Version = 2

// Record is one entry of the processed stream: one stored raw event and
// the processed event it became or was folded into.
type Record struct {
	Kind Kind `json:"kind"`
	// RawEventID is the occurrence: the raw event's id. It is the record's
	// identity (Key).
	RawEventID int64 `json:"raw_event_id"`
	// EventID is the processed event: the raw event's own id for KindNew,
	// the earlier event it was folded into for KindRepeat.
	EventID int64 `json:"event_id"`
	// OccurrenceCount is the processed event's occurrence count with this
	// occurrence, and LastSeenAt its last_seen_at. In a republished record
	// (Replayed) they are the values stored at the time of the republish,
	// which may already include later occurrences.
	OccurrenceCount int       `json:"occurrence_count"`
	LastSeenAt      time.Time `json:"last_seen_at"`
	// Replayed marks a record republished after a redelivery found its
	// raw event already stored.
	Replayed bool `json:"replayed,omitempty"`
	// Truncated marks a record whose event_data was left out because the
	// record would not fit in a message; read the event from the store.
	Truncated bool `json:"truncated,omitempty"`
	// Event is the processed event EventID as stored (for a repeat: the
	// event it was folded into, which shares its fingerprint: source,
	// host, service, type, severity and title up to digits), with
	// OccurrenceCount and LastSeenAt set to the record's. Nil only when
	// the store no longer had it when the record was made.
	Event *event.Event `json:"-"`
}

// Key is the record's idempotency key: its raw event id. A consumer's
// effects keyed by (consumer, Key) happen once however often the record
// is delivered.
func (r *Record) Key() int64 { return r.RawEventID }

// wireRecord is a record as Publisher writes it: its event already
// encoded.
type wireRecord struct {
	Record
	Event json.RawMessage `json:"event,omitempty"`
}

// wireColumns are a processed event's columns on the stream, event_data
// aside.
type wireColumns struct {
	ID              int64            `json:"id"`
	RawEventID      int64            `json:"raw_event_id"`
	EventType       string           `json:"event_type"`
	Severity        event.Severity   `json:"severity"`
	SourceSystem    string           `json:"source_system"`
	SourceType      event.SourceType `json:"source_type"`
	SourceHost      string           `json:"source_host,omitempty"`
	SourceService   string           `json:"source_service,omitempty"`
	Title           string           `json:"title"`
	Description     string           `json:"description,omitempty"`
	Tags            []string         `json:"tags,omitempty"`
	OccurredAt      time.Time        `json:"occurred_at"`
	ReceivedAt      time.Time        `json:"received_at"`
	ProcessedAt     time.Time        `json:"processed_at"`
	CorrelationID   string           `json:"correlation_id,omitempty"`
	ParentEventID   int64            `json:"parent_event_id,omitempty"`
	Fingerprint     string           `json:"fingerprint,omitempty"`
	OccurrenceCount int              `json:"occurrence_count"`
	LastSeenAt      time.Time        `json:"last_seen_at"`
	Priority        int              `json:"priority"`
}

// wireEvent is a processed event on the stream (version 2): its columns,
// its typed results, and event_data holding the rest (Event.Data, which
// may itself hold a key of a typed result whose stored value did not fit
// the type). Decoding it is one pass, with no document decoded twice.
// TestWireCarriesEveryTypedResult fails when event gains a typed result
// this does not carry.
type wireEvent struct {
	wireColumns
	Asset    *event.Asset    `json:"asset,omitempty"`
	Scoring  *event.Scoring  `json:"scoring,omitempty"`
	Template *event.Template `json:"template,omitempty"`
	Alert    *event.Alert    `json:"alert,omitempty"`
	Data     map[string]any  `json:"event_data,omitempty"`
}

// wireEventV1 is an event of a version 1 message: event_data as
// event.MarshalData wrote it, typed results inside.
type wireEventV1 struct {
	wireColumns
	Data json.RawMessage `json:"event_data,omitempty"`
}

func columns(e *event.Event) wireColumns {
	return wireColumns{
		ID: e.ID, RawEventID: e.RawEventID, EventType: e.EventType, Severity: e.Severity,
		SourceSystem: e.SourceSystem, SourceType: e.SourceType, SourceHost: e.SourceHost,
		SourceService: e.SourceService, Title: e.Title, Description: e.Description, Tags: e.Tags,
		OccurredAt: e.OccurredAt, ReceivedAt: e.ReceivedAt, ProcessedAt: e.ProcessedAt,
		CorrelationID: e.CorrelationID, ParentEventID: e.ParentEventID, Fingerprint: e.Fingerprint,
		OccurrenceCount: e.OccurrenceCount, LastSeenAt: e.LastSeenAt, Priority: e.Priority,
	}
}

func (w *wireColumns) event() *event.Event {
	return &event.Event{
		ID: w.ID, RawEventID: w.RawEventID, EventType: w.EventType, Severity: w.Severity,
		SourceSystem: w.SourceSystem, SourceType: w.SourceType, SourceHost: w.SourceHost,
		SourceService: w.SourceService, Title: w.Title, Description: w.Description, Tags: w.Tags,
		OccurredAt: w.OccurredAt, ReceivedAt: w.ReceivedAt, ProcessedAt: w.ProcessedAt,
		CorrelationID: w.CorrelationID, ParentEventID: w.ParentEventID, Fingerprint: w.Fingerprint,
		OccurrenceCount: w.OccurrenceCount, LastSeenAt: w.LastSeenAt, Priority: w.Priority,
	}
}

// encodeEvent encodes e for the stream; withData false leaves event_data
// and the typed results out (a record too large for a message). HTML
// characters are not escaped: templates are full of "<*>".
func encodeEvent(e *event.Event, withData bool) ([]byte, error) {
	w := wireEvent{wireColumns: columns(e)}
	if withData {
		w.Asset, w.Scoring, w.Template, w.Alert, w.Data = e.Asset, e.Scoring, e.Template, e.Alert, e.Data
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		return nil, fmt.Errorf("processed: encode event %d: %w", e.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendRecord appends the JSON of a record whose event is already
// encoded (ev, nil for none) to buf.
func appendRecord(buf []byte, r *Record, ev []byte) []byte {
	buf = append(buf, `{"kind":"`...)
	buf = append(buf, r.Kind...)
	buf = append(buf, `","raw_event_id":`...)
	buf = strconv.AppendInt(buf, r.RawEventID, 10)
	buf = append(buf, `,"event_id":`...)
	buf = strconv.AppendInt(buf, r.EventID, 10)
	buf = append(buf, `,"occurrence_count":`...)
	buf = strconv.AppendInt(buf, int64(r.OccurrenceCount), 10)
	buf = append(buf, `,"last_seen_at":"`...)
	buf = r.LastSeenAt.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, '"')
	if r.Replayed {
		buf = append(buf, `,"replayed":true`...)
	}
	if r.Truncated {
		buf = append(buf, `,"truncated":true`...)
	}
	if len(ev) > 0 {
		buf = append(buf, `,"event":`...)
		buf = append(buf, ev...)
	}
	return append(buf, '}')
}

// decodeEventV1 decodes an event of a version 1 message.
func decodeEventV1(b []byte) (*event.Event, error) {
	var w wireEventV1
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("processed: decode event: %w", err)
	}
	e := w.event()
	if err := e.UnmarshalData(w.Data); err != nil {
		return nil, err
	}
	return e, nil
}

// ErrCorrupt means a stream message is not a valid processed message.
var ErrCorrupt = errors.New("processed: corrupt message")

// message is the body of one stream message as Decode reads it (version
// 2): the records of one partition of one batch.
type message struct {
	V         int          `json:"v"`
	Partition int          `json:"partition"`
	Records   []recordInV2 `json:"records"`
}

type recordInV2 struct {
	Record
	Event *wireEvent `json:"event"`
}

// Decode decodes one stream message into its records. It fails with
// ErrCorrupt on anything that is not a message of a known version.
func Decode(data []byte) (partition int, recs []Record, err error) {
	var m message
	// goccy/go-json decodes the same JSON into the same values as
	// encoding/json (FuzzDecodeMatchesEncodingJSON holds it to that) in
	// a third of the time: decoding is most of what each of the
	// downstream consumers costs.
	if err := gojson.Unmarshal(data, &m); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if m.V < 1 || m.V > Version {
		return 0, nil, fmt.Errorf("%w: unsupported version %d", ErrCorrupt, m.V)
	}
	if m.V == 1 {
		return decodeV1(data)
	}
	recs = make([]Record, 0, len(m.Records))
	for i := range m.Records {
		w := &m.Records[i]
		r := w.Record
		if err := checkRecord(i, &r); err != nil {
			return 0, nil, err
		}
		if w.Event != nil {
			e := w.Event.event()
			e.Asset, e.Scoring, e.Template, e.Alert, e.Data = w.Event.Asset, w.Event.Scoring, w.Event.Template, w.Event.Alert, w.Event.Data
			e.OccurrenceCount, e.LastSeenAt = r.OccurrenceCount, r.LastSeenAt
			r.Event = e
		}
		recs = append(recs, r)
	}
	return m.Partition, recs, nil
}

func checkRecord(i int, r *Record) error {
	if r.RawEventID <= 0 || r.EventID <= 0 || (r.Kind != KindNew && r.Kind != KindRepeat) {
		return fmt.Errorf("%w: record %d: kind %q, raw event %d, event %d", ErrCorrupt, i, r.Kind, r.RawEventID, r.EventID)
	}
	return nil
}

// decodeV1 decodes a version 1 message (written before version 2, still
// in the stream after an upgrade).
func decodeV1(data []byte) (partition int, recs []Record, err error) {
	var m struct {
		Partition int          `json:"partition"`
		Records   []wireRecord `json:"records"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	recs = make([]Record, 0, len(m.Records))
	for i := range m.Records {
		w := &m.Records[i]
		r := w.Record
		if err := checkRecord(i, &r); err != nil {
			return 0, nil, err
		}
		if len(w.Event) > 0 && string(w.Event) != "null" {
			e, err := decodeEventV1(w.Event)
			if err != nil {
				return 0, nil, fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, err)
			}
			e.OccurrenceCount, e.LastSeenAt = r.OccurrenceCount, r.LastSeenAt
			r.Event = e
		}
		recs = append(recs, r)
	}
	return m.Partition, recs, nil
}
