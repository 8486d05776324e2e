// Package store is reflex's storage interface. Two implementations live in
// its subpackages: sqlite (the embedded default) and postgres. Both pass the
// conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// Errors returned by every Store.
var (
	// ErrNotFound: the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a row with the same unique key exists.
	ErrConflict = errors.New("store: conflict")
)

// Store is the persistence of reflex. Implementations are safe for
// concurrent use. WriteBatch calls may come from several goroutines (one per
// pipeline lane); each is one transaction.
type Store interface {
	// Migrate applies the embedded schema migrations that are not yet
	// applied. It is idempotent and safe to call at every start.
	Migrate(ctx context.Context) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections. It is idempotent.
	Close() error

	// WriteBatch stores one pipeline batch atomically: all of it or none.
	WriteBatch(ctx context.Context, b *Batch) error
	// StoredRawIDs returns which of ids already have a raw_events row, so
	// that a redelivered intake message is not stored twice.
	StoredRawIDs(ctx context.Context, ids []int64) (map[int64]bool, error)

	// Event returns the processed event with this id. If id names a raw
	// event that was folded into another processed event (deduplicated),
	// it returns that processed event. ErrNotFound otherwise.
	Event(ctx context.Context, id int64) (*event.Event, error)
	// RawEvent returns the raw event with this id, or ErrNotFound.
	RawEvent(ctx context.Context, id int64) (*event.Raw, error)
	// Events lists processed events matching q, newest first.
	Events(ctx context.Context, q EventQuery) (EventPage, error)
	// Correlations lists the correlation rows that involve the processed
	// event id: its time-based group, causal groups it is the parent of,
	// and the causal group that names it as a child.
	Correlations(ctx context.Context, id int64) ([]event.Correlation, error)
	// Analytics counts processed events by one dimension over a time range.
	Analytics(ctx context.Context, q AnalyticsQuery) ([]Bucket, error)
	// RecentEvents returns processed events with last_seen_at at or after
	// since, oldest first, at most limit; the pipeline warms its
	// deduplication and correlation state from them at start.
	RecentEvents(ctx context.Context, since time.Time, limit int) ([]event.Event, error)

	// PutAsset creates or replaces the asset of a.Host.
	PutAsset(ctx context.Context, a Asset) error
	// Asset returns the asset of host, or ErrNotFound.
	Asset(ctx context.Context, host string) (Asset, error)
	// DeleteAsset deletes the asset of host, or returns ErrNotFound.
	DeleteAsset(ctx context.Context, host string) error
	// Assets lists every asset, ordered by host.
	Assets(ctx context.Context) ([]Asset, error)

	// CreateKey stores a new API key (its hash, never the secret).
	// ErrConflict if k.ID exists.
	CreateKey(ctx context.Context, k APIKey) error
	// Key returns the key with this id, revoked or not, or ErrNotFound.
	Key(ctx context.Context, id string) (APIKey, error)
	// Keys lists every key, revoked ones included, oldest first.
	Keys(ctx context.Context) ([]APIKey, error)
	// RevokeKey marks the key revoked at the given time, or returns
	// ErrNotFound.
	RevokeKey(ctx context.Context, id string, at time.Time) error

	// EnforceRetention removes raw and processed events (and correlations
	// whose primary event is gone) older than before. PostgreSQL drops whole
	// daily partitions; SQLite deletes rows in bounded batches. It returns
	// how many events (raw plus processed) it removed, or -1 if the
	// implementation dropped partitions without counting.
	EnforceRetention(ctx context.Context, before time.Time) (int64, error)
}

// Batch is what one pipeline batch writes.
type Batch struct {
	// Raw holds every raw event of the batch, each with Processed,
	// ProcessingErrors and ProcessedEventID already set.
	Raw []event.Raw
	// New holds processed events to insert.
	New []event.Event
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
}

// PageSize is q.Limit within 1..1000, 100 when unset. A store fetches one
// event more than this to learn whether there are more.
func (q EventQuery) PageSize() int {
	if q.Limit <= 0 {
		return 100
	}
	return min(q.Limit, 1000)
}

// NewEventPage makes the page of a query that fetched up to limit+1 events.
func NewEventPage(evs []event.Event, limit int) EventPage {
	if len(evs) > limit {
		return EventPage{Events: evs[:limit], More: true}
	}
	return EventPage{Events: evs}
}

// EventPage is one page of Events.
type EventPage struct {
	Events []event.Event
	// More reports whether more events match; the cursor for the next page
	// is the (OccurredAt, ID) of the last event.
	More bool
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

// Asset is an entry of the asset inventory.
type Asset struct {
	Host         string    `json:"host" yaml:"host"`
	Environment  string    `json:"environment,omitempty" yaml:"environment"`
	Criticality  string    `json:"criticality,omitempty" yaml:"criticality"` // critical, high, medium, low
	Owner        string    `json:"owner,omitempty" yaml:"owner"`
	Team         string    `json:"team,omitempty" yaml:"team"`
	Service      string    `json:"service,omitempty" yaml:"service"`
	Dependencies []string  `json:"dependencies,omitempty" yaml:"dependencies"` // hosts this one depends on
	Tags         []string  `json:"tags,omitempty" yaml:"tags"`
	UpdatedAt    time.Time `json:"updated_at" yaml:"-"`
}

// APIKey is a stored API key. The secret itself is never stored: Hash is
// SHA-256 of the full key string.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Hash      []byte     `json:"-"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}
