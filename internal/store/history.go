package store

import (
	"context"
	"time"
)

// HistoryStore answers the historical analysis of GET
// /api/v1/events/analytics and /api/v1/events/trends and the context
// analyzer's event rate: counts of processed events (and of rule
// executions) by dimension, top N, and per time bucket.
type HistoryStore interface {
	// Top returns the q.Limit keys of q.By with the most events in
	// [q.Since, q.Until), noisiest first (by count, then occurrences,
	// then key bytewise).
	Top(ctx context.Context, q TopQuery) ([]TopEntry, error)
	// Series counts the events of [q.Since, q.Until) per key of q.By and
	// per bucket of q.Interval (buckets start at multiples of the interval
	// since the Unix epoch, in UTC). Only buckets with events are
	// returned, ordered by key (bytewise), then start.
	Series(ctx context.Context, q SeriesQuery) ([]SeriesRow, error)
	// EventCounts returns, for each of ranges, how many processed events
	// of host occurred in it (repeats folded into an event by
	// deduplication count once; reflex's own derived events, of source
	// type reflex, not at all), in the order of ranges.
	EventCounts(ctx context.Context, host string, ranges []TimeRange) ([]int64, error)
}

// Dimension is what Top and Series group by.
type Dimension string

// The dimensions of Top and Series. DimTemplate groups events by their
// log template (event_data.template.id, labelled with
// event_data.template.text; events without one are left out); DimRule
// counts rule executions (rules.rule_executions by started_at) per rule
// id, labelled with the rule's name.
const (
	DimAll       Dimension = "" // Series only: every event under the key ""
	DimHost      Dimension = "host"
	DimService   Dimension = "service"
	DimEventType Dimension = "event_type"
	DimSeverity  Dimension = "severity"
	DimSource    Dimension = "source"
	DimTemplate  Dimension = "template"
	DimRule      Dimension = "rule"
)

// MaxTopLimit bounds TopQuery.Limit.
const MaxTopLimit = 10_000

// TopQuery asks for the noisiest keys of a dimension.
type TopQuery struct {
	Since, Until time.Time // Until exclusive; zero: no bound
	By           Dimension
	Limit        int // 1..MaxTopLimit; 0 means 10
}

// TopEntry is one key of Top: its value ("" for events without the
// dimension), a label when the dimension has one (a template's text, a
// rule's name), the number of events (rule executions for DimRule) and of
// occurrences (with the repeats folded into them; executions again for
// DimRule).
type TopEntry struct {
	Key         string `json:"key"`
	Label       string `json:"label,omitempty"`
	Count       int64  `json:"count"`
	Occurrences int64  `json:"occurrences"`
}

// SeriesQuery asks for counts per time bucket.
type SeriesQuery struct {
	Since, Until time.Time // Until exclusive; both required
	// Interval is the bucket width: whole seconds, positive.
	Interval time.Duration
	By       Dimension
	// Keys, when not nil, keeps only these keys of By.
	Keys []string
}

// SeriesRow is the count of one key in one bucket.
type SeriesRow struct {
	Key         string
	Start       time.Time
	Count       int64
	Occurrences int64
}

// TimeRange is [Since, Until).
type TimeRange struct {
	Since, Until time.Time
}
