// Package event defines reflex's normalized event, its severity scale, the
// identifiers given to events at intake and the fingerprint used to
// deduplicate them. It has no dependencies on the rest of reflex.
package event

import (
	"encoding/json"
	"time"
)

// SourceType names the adapter an event came in through.
type SourceType string

// The adapters reflex knows. Only webhook exists in the first release; the
// others are reserved so that stored data keeps one vocabulary.
const (
	SourceWebhook SourceType = "webhook"
	SourceSyslog  SourceType = "syslog"
	SourceSNMP    SourceType = "snmp"
	SourceEmail   SourceType = "email"
	SourceMetrics SourceType = "metrics"
	SourceDB      SourceType = "database"
)

// Raw is an event as accepted at intake, before any processing: the bytes
// the source sent for this one event, and what intake knew about it. It
// becomes a row of events.raw_events.
type Raw struct {
	// ID is the event's identity, allocated at intake (see IDGen). The
	// processed event created from it carries the same id.
	ID           int64           `json:"id"`
	SourceSystem string          `json:"source_system"`
	SourceType   SourceType      `json:"source_type"`
	Data         json.RawMessage `json:"raw_data"`
	ReceivedAt   time.Time       `json:"received_at"`
	// Processed and ProcessingErrors reflect the raw row once the pipeline
	// has handled it. ProcessedEventID is the processed event the raw event
	// became or was folded into by deduplication (0 when none, for example
	// when it was rate limited).
	Processed        bool     `json:"processed"`
	ProcessingErrors []string `json:"processing_errors,omitempty"`
	ProcessedEventID int64    `json:"processed_event_id,omitempty"`
}

// Event is a normalized, enriched and scored event: a row of
// events.processed_events.
type Event struct {
	ID            int64          `json:"id"`
	RawEventID    int64          `json:"raw_event_id"`
	EventType     string         `json:"event_type"`
	Severity      Severity       `json:"severity"`
	SourceSystem  string         `json:"source_system"`
	SourceType    SourceType     `json:"source_type"`
	SourceHost    string         `json:"source_host,omitempty"`
	SourceService string         `json:"source_service,omitempty"`
	Title         string         `json:"title"`
	Description   string         `json:"description,omitempty"`
	Data          map[string]any `json:"event_data,omitempty"`
	Tags          []string       `json:"tags,omitempty"`
	OccurredAt    time.Time      `json:"occurred_at"`
	ReceivedAt    time.Time      `json:"received_at"`
	ProcessedAt   time.Time      `json:"processed_at"`
	CorrelationID string         `json:"correlation_id,omitempty"`
	ParentEventID int64          `json:"parent_event_id,omitempty"`

	// Fingerprint identifies repeats of the same event (see Fingerprint).
	Fingerprint string `json:"fingerprint,omitempty"`
	// OccurrenceCount is how many raw events were folded into this one by
	// deduplication, itself included; LastSeenAt is when the latest arrived.
	OccurrenceCount int       `json:"occurrence_count"`
	LastSeenAt      time.Time `json:"last_seen_at"`
	// Priority is the severity scorer's numeric priority, 0 (lowest) to 100.
	Priority int `json:"priority"`
}

// Tag adds t to the event's tags unless it is already there.
func (e *Event) Tag(t string) {
	for _, have := range e.Tags {
		if have == t {
			return
		}
	}
	e.Tags = append(e.Tags, t)
}

// SetData sets event_data[key], creating the map when needed.
func (e *Event) SetData(key string, v any) {
	if e.Data == nil {
		e.Data = make(map[string]any)
	}
	e.Data[key] = v
}

// CorrelationType is the kind of an events.event_correlations row.
type CorrelationType string

// Correlation types of the seed schema.
const (
	CorrelationTimeBased    CorrelationType = "time_based"
	CorrelationPatternBased CorrelationType = "pattern_based"
	CorrelationCausal       CorrelationType = "causal"
)

// Correlation is a row of events.event_correlations: a group of related
// events. CorrelationID is unique per row; the pipeline rewrites a row as
// events join its group.
type Correlation struct {
	ID              int64           `json:"id"`
	CorrelationID   string          `json:"correlation_id"`
	Type            CorrelationType `json:"correlation_type"`
	PrimaryEventID  int64           `json:"primary_event_id"`
	RelatedEventIDs []int64         `json:"related_event_ids"`
	Score           float64         `json:"correlation_score"`
	Reason          string          `json:"correlation_reason"`
	CreatedAt       time.Time       `json:"created_at"`
}
