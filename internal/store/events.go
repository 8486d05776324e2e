package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// EventStore is the events schema: raw and processed events, their
// correlations, the analytics over them and their retention. WriteBatch
// calls may come from several goroutines (one per pipeline lane); each is
// one transaction.
type EventStore interface {
	// WriteBatch stores one pipeline batch atomically: all of it or none.
	WriteBatch(ctx context.Context, b *Batch) error
	// StoredRawIDs returns which of ids already have a raw_events row, so
	// that a redelivered intake message is not stored twice.
	StoredRawIDs(ctx context.Context, ids []int64) (map[int64]bool, error)

	// Event returns the processed event with this id. If id names a raw
	// event that was folded into another processed event (deduplicated),
	// it returns that processed event. ErrNotFound otherwise, and
	// ErrUnreadable if the row exists but cannot be decoded.
	Event(ctx context.Context, id int64) (*event.Event, error)
	// RawEvent returns the raw event with this id, or ErrNotFound.
	RawEvent(ctx context.Context, id int64) (*event.Raw, error)
	// RawEvents returns the raw events of ids that are stored, in the
	// order of ids (duplicates once); missing ids are left out.
	RawEvents(ctx context.Context, ids []int64) ([]event.Raw, error)
	// EventsByID returns the processed events of ids that are stored, in
	// the order of ids (duplicates once); missing and unreadable ones are
	// left out (unreadable ones logged and counted). Unlike Event it does
	// not follow raw ids to the event they were folded into.
	EventsByID(ctx context.Context, ids []int64) ([]event.Event, error)
	// Events lists processed events matching q, newest first (oldest
	// first with q.OldestFirst). Unreadable
	// rows are skipped and their ids listed in EventPage.Unreadable.
	Events(ctx context.Context, q EventQuery) (EventPage, error)
	// Correlations lists the correlation rows that involve the processed
	// event id: its time-based group, causal groups it is the parent of,
	// and the causal group that names it as a child. It works for an event
	// whose own row is unreadable; unreadable correlation rows are skipped.
	Correlations(ctx context.Context, id int64) ([]event.Correlation, error)
	// Analytics counts processed events by one dimension over a time range.
	Analytics(ctx context.Context, q AnalyticsQuery) ([]Bucket, error)
	// RecentEvents returns processed events with last_seen_at at or after
	// since, oldest first, at most limit; the pipeline warms its
	// deduplication and correlation state from them at start. Unreadable
	// rows are skipped (logged once each, with their id, and counted).
	RecentEvents(ctx context.Context, since time.Time, limit int) ([]event.Event, error)

	// EnforceRetention removes raw and processed events (and correlations
	// created) before before. PostgreSQL drops whole daily partitions,
	// counting their rows first; SQLite deletes rows in bounded batches.
	// It returns how many events (raw plus processed) it removed.
	EnforceRetention(ctx context.Context, before time.Time) (int64, error)
}

// Batch is what one pipeline batch writes.
type Batch struct {
	// Raw holds every raw event of the batch, each with Processed,
	// ProcessingErrors and ProcessedEventID already set.
	Raw []event.Raw
	// New holds processed events to insert.
	New []event.Event
	// Data, when it has one entry per event of New, holds their event_data
	// as event.MarshalData encoded it, so that the store and what follows
	// it (the processed stream) encode it once. Nil: each encodes it.
	Data []json.RawMessage
	// Repeats updates occurrence_count and last_seen_at of processed
	// events stored by earlier batches (deduplication hits). Hits on events
	// in New are already folded into New.
	Repeats []Repeat
	// Correlations holds correlation rows to insert, or to replace when a
	// row with the same CorrelationID exists (the group grew).
	Correlations []event.Correlation
	// Urgent marks a batch of the critical lane: a store that serializes
	// writes commits it ahead of, and not merged into, large batches of
	// the other lane.
	Urgent bool
}

// EventData returns the event_data of b.New[i]: b.Data[i] when the batch
// carries it, else its encoding now.
func (b *Batch) EventData(i int) (json.RawMessage, error) {
	if len(b.Data) == len(b.New) {
		return b.Data[i], nil
	}
	return b.New[i].MarshalData()
}

// EncodeData fills b.Data from b.New.
func (b *Batch) EncodeData() error {
	b.Data = make([]json.RawMessage, len(b.New))
	for i := range b.New {
		d, err := b.New[i].MarshalData()
		if err != nil {
			b.Data = nil
			return err
		}
		b.Data[i] = d
	}
	return nil
}

// Repeat is a deduplication hit on a stored processed event.
type Repeat struct {
	EventID         int64
	OccurredAt      time.Time // of the stored event: locates its partition
	OccurrenceCount int       // the new total
	LastSeenAt      time.Time
}

// EventQuery filters processed events. Zero fields do not filter.
type EventQuery struct {
	Severities    []event.Severity
	Since, Until  time.Time // on occurred_at; Until is exclusive
	Host          string
	Service       string
	EventType     string
	Source        string // source_system
	CorrelationID string
	Text          string // case-insensitive substring of title or description
	Limit         int    // 1..1000; 0 means 100
	// Before is the pagination cursor: only events ordered strictly after
	// (BeforeTime, BeforeID) in newest-first order, i.e. occurred earlier,
	// or at the same time with a smaller id.
	BeforeTime time.Time
	BeforeID   int64
	// OldestFirst lists events oldest first (by occurred_at, then id)
	// instead; its cursor is (AfterTime, AfterID), and Before is ignored.
	OldestFirst bool
	// After is the cursor of an OldestFirst query: only events ordered
	// strictly after (AfterTime, AfterID) oldest first, i.e. occurred
	// later, or at the same time with a larger id.
	AfterTime time.Time
	AfterID   int64
}

// PageSize is q.Limit within 1..1000, 100 when unset. A store fetches one
// event more than this to learn whether there are more.
func (q EventQuery) PageSize() int {
	if q.Limit <= 0 {
		return 100
	}
	return min(q.Limit, 1000)
}

// EventPage is one page of Events.
type EventPage struct {
	Events []event.Event
	// More reports whether more events match; the cursor for the next page
	// is (NextTime, NextID).
	More bool
	// NextTime and NextID are the (occurred_at, id) of the last row of the
	// page, readable or not: the cursor of the next page when More.
	NextTime time.Time
	NextID   int64
	// Unreadable lists the ids of rows of this page that matched but could
	// not be decoded (see ErrUnreadable), in the page's order; nil when
	// none.
	Unreadable []int64
}

// GroupBy is a dimension of Analytics.
type GroupBy string

// The dimensions Analytics can group by.
const (
	BySeverity  GroupBy = "severity"
	ByHost      GroupBy = "host"
	ByService   GroupBy = "service"
	ByEventType GroupBy = "event_type"
	BySource    GroupBy = "source"
	ByHour      GroupBy = "hour"
)

// AnalyticsQuery asks for counts of processed events that occurred in
// [Since, Until), grouped by GroupBy.
type AnalyticsQuery struct {
	Since, Until time.Time
	GroupBy      GroupBy
}

// Bucket is one group of Analytics. Key is the group's value (for ByHour an
// RFC 3339 UTC hour such as "2026-11-27T07:00:00Z"; "" for events without the
// dimension). Count counts processed events; Occurrences also counts the
// repeats folded into them.
type Bucket struct {
	Key         string `json:"key"`
	Count       int64  `json:"count"`
	Occurrences int64  `json:"occurrences"`
}
