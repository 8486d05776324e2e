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
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

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

// Version is the version of the message format; Decode refuses later ones.
const Version = 1

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

// message is the body of one stream message: the records of one partition
// of one batch.
type message struct {
	V         int          `json:"v"`
	Partition int          `json:"partition"`
	Records   []wireRecord `json:"records"`
}

type wireRecord struct {
	Record
	Event json.RawMessage `json:"event,omitempty"`
}

// wireEvent is a processed event on the stream: its columns, with
// event_data encoded by event.MarshalData like the stores do.
type wireEvent struct {
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
	Data            json.RawMessage  `json:"event_data,omitempty"`
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

// encodeEvent encodes e for the stream; withData false leaves event_data
// out. event_data (compact JSON from MarshalData) is spliced in as it is,
// rather than passed through json.Marshal, which would scan it again.
func encodeEvent(e *event.Event, withData bool) ([]byte, error) {
	w := wireEvent{
		ID: e.ID, RawEventID: e.RawEventID, EventType: e.EventType, Severity: e.Severity,
		SourceSystem: e.SourceSystem, SourceType: e.SourceType, SourceHost: e.SourceHost,
		SourceService: e.SourceService, Title: e.Title, Description: e.Description, Tags: e.Tags,
		OccurredAt: e.OccurredAt, ReceivedAt: e.ReceivedAt, ProcessedAt: e.ProcessedAt,
		CorrelationID: e.CorrelationID, ParentEventID: e.ParentEventID, Fingerprint: e.Fingerprint,
		OccurrenceCount: e.OccurrenceCount, LastSeenAt: e.LastSeenAt, Priority: e.Priority,
	}
	b, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("processed: encode event %d: %w", e.ID, err)
	}
	if !withData {
		return b, nil
	}
	d, err := e.MarshalData()
	if err != nil {
		return nil, err
	}
	return withEventData(b, d), nil
}

// withEventData splices event_data d into b, an event encoded without it.
func withEventData(b, d []byte) []byte {
	if len(d) == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+len(d)+len(`,"event_data":`))
	out = append(out, b[:len(b)-1]...) // without the closing brace
	out = append(out, `,"event_data":`...)
	out = append(out, d...)
	return append(out, '}')
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

func decodeEvent(b []byte) (*event.Event, error) {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("processed: decode event: %w", err)
	}
	e := &event.Event{
		ID: w.ID, RawEventID: w.RawEventID, EventType: w.EventType, Severity: w.Severity,
		SourceSystem: w.SourceSystem, SourceType: w.SourceType, SourceHost: w.SourceHost,
		SourceService: w.SourceService, Title: w.Title, Description: w.Description, Tags: w.Tags,
		OccurredAt: w.OccurredAt, ReceivedAt: w.ReceivedAt, ProcessedAt: w.ProcessedAt,
		CorrelationID: w.CorrelationID, ParentEventID: w.ParentEventID, Fingerprint: w.Fingerprint,
		OccurrenceCount: w.OccurrenceCount, LastSeenAt: w.LastSeenAt, Priority: w.Priority,
	}
	if err := e.UnmarshalData(w.Data); err != nil {
		return nil, err
	}
	return e, nil
}

// ErrCorrupt means a stream message is not a valid processed message.
var ErrCorrupt = errors.New("processed: corrupt message")

// Decode decodes one stream message into its records. It fails with
// ErrCorrupt on anything that is not a message of a known version.
func Decode(data []byte) (partition int, recs []Record, err error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if m.V < 1 || m.V > Version {
		return 0, nil, fmt.Errorf("%w: unsupported version %d", ErrCorrupt, m.V)
	}
	recs = make([]Record, 0, len(m.Records))
	for i := range m.Records {
		w := &m.Records[i]
		r := w.Record
		if r.RawEventID <= 0 || r.EventID <= 0 || (r.Kind != KindNew && r.Kind != KindRepeat) {
			return 0, nil, fmt.Errorf("%w: record %d: kind %q, raw event %d, event %d", ErrCorrupt, i, r.Kind, r.RawEventID, r.EventID)
		}
		if len(w.Event) > 0 && string(w.Event) != "null" {
			e, err := decodeEvent(w.Event)
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
