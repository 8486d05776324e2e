// Package event defines reflex's normalized event, its severity scale, the
// identifiers given to events at intake and the fingerprint used to
// deduplicate them. It has no dependencies on the rest of reflex.
package event

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// SourceType names the adapter an event came in through.
type SourceType string

// The adapters reflex knows (internal/ingest/...).
const (
	SourceWebhook      SourceType = "webhook"
	SourceSyslog       SourceType = "syslog"
	SourceSNMP         SourceType = "snmp"
	SourceEmail        SourceType = "email"
	SourceAlertmanager SourceType = "alertmanager"
	SourceGrafana      SourceType = "grafana"
	// SourceMetrics are the events of metric rules over ingested samples
	// (remote write, InfluxDB line protocol) and of PromQL checks.
	SourceMetrics SourceType = "metrics"
	// SourceDB are the events of database checks and LISTEN/NOTIFY.
	SourceDB SourceType = "database"
	// SourceReflex is reflex itself: events its components derive, such
	// as new_log_pattern and anomaly (package derived).
	SourceReflex SourceType = "reflex"
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
	// IncidentID is the incident the event is in (0: none, answered as
	// null). It is not a column of the event: the stores' event reads
	// look it up in the incident engine's table.
	IncidentID NullID `json:"incident_id"`
	// ResolvedAt is when the alert this event fired was resolved (nil:
	// not an alert, or still firing; left out of the JSON then). Like
	// IncidentID it is not a column of the event: the stores' event reads
	// look it up in the alerts table.
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`

	// Message is the event's log text as the source sent it (the webhook
	// payload's message; later syslog and email messages), set by the
	// normalizer for the template miner. It is not stored as a column: the
	// normalizer keeps the text in title, description or event_data.
	Message string `json:"-"`

	// The typed results of the stages, for the stages after them. Each is
	// kept inside event_data under its own key (see MarshalData) and is
	// nil until its stage sets it.

	// Asset is what the enricher found in the asset inventory for the
	// event's host (event_data.asset); nil for an unknown host.
	Asset *Asset `json:"-"`
	// Scoring is how the severity scorer arrived at Priority and Severity
	// (event_data.scoring).
	Scoring *Scoring `json:"-"`
	// Template is the log template the template miner found for Message
	// (event_data.template); nil for an event without log text.
	Template *Template `json:"-"`

	// Alert is the event's place in the alert lifecycle of its source
	// (event_data.alert), set by the normalizers of sources whose alerts
	// fire and resolve (Alertmanager, Grafana, metric rules and checks,
	// database checks); nil for an event that only happened.
	Alert *Alert `json:"-"`
}

// AlertStatus is the state of an alert an event reports.
type AlertStatus string

// The alert states.
const (
	// AlertFiring: the condition holds. The event is the alert; it stays
	// open until an event of the same source type and alert key resolves it.
	AlertFiring AlertStatus = "firing"
	// AlertResolved: the condition has ended. The event is the
	// resolution: it resolves the firing event of its alert key, and the
	// incident of that event once all the incident's alerts are resolved.
	// It opens no incident itself. Adapters submit resolutions at severity
	// info, so that they take the low lane and match no severity rule.
	AlertResolved AlertStatus = "resolved"
)

// Alert is what a source says about an alert (event_data.alert). Its
// fields are in the order of their JSON keys, as every typed result's, so
// that it encodes as the map it is read back as.
type Alert struct {
	// EndsAt is when the condition ended, for a resolution whose source
	// says so.
	EndsAt *time.Time `json:"ends_at,omitempty"`
	// Key is the source's stable identity of the alert, the same in its
	// firing and its resolution: Alertmanager's and Grafana's fingerprint,
	// a metric rule's name and series labels, a check's name and target.
	// Resolutions match firings by source type and Key.
	Key string `json:"key"`
	// StartsAt is when the source saw the condition begin, when it says.
	StartsAt *time.Time `json:"starts_at,omitempty"`
	// Status is firing or resolved.
	Status AlertStatus `json:"status"`
}

// MaxAlertKeyLen bounds Alert.Key, in bytes; normalizers hash a longer
// identity (see AlertKey).
const MaxAlertKeyLen = 200

// Template is the template stage's result, as kept in event_data.template:
// the id of the log template of the event's message (stable across
// restarts; GET /api/v1/patterns?type=template lists them) and its text
// when the event was processed (constant words, <*> for the parameters).
type Template struct {
	ID   int64  `json:"id"`
	Text string `json:"text"`
}

// NullID is an id that encodes as JSON null when it is 0.
type NullID int64

// MarshalJSON encodes 0 as null and any other id as a number.
func (id NullID) MarshalJSON() ([]byte, error) {
	if id == 0 {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, int64(id), 10), nil
}

// UnmarshalJSON decodes null as 0 and a number as the id.
func (id *NullID) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*id = 0
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("event: id %s: %w", b, err)
	}
	*id = NullID(n)
	return nil
}

// Asset is the enricher's result: the inventory's entry for the event's
// host, as kept in event_data.asset. Empty fields are left out of the JSON.
// The asset's tags are added to the event's Tags, not kept here.
//
// The fields are declared in the alphabetical order of their JSON names,
// the order in which encoding/json writes the keys of a map: event_data
// was a map before these results were typed, and keeping the order keeps
// the stored bytes. Keep it so in every type of this file that is stored.
type Asset struct {
	Criticality  string   `json:"criticality,omitempty"`
	Dependencies []string `json:"dependencies,omitempty"`
	Environment  string   `json:"environment,omitempty"`
	Owner        string   `json:"owner,omitempty"`
	Service      string   `json:"service,omitempty"`
	Team         string   `json:"team,omitempty"`
}

// Scoring is the severity scorer's result, as kept in event_data.scoring:
// the priority, the severity before (SourceSeverity, info for an unknown
// one) and after scoring, and the factors whose weights add up to the
// priority before it is clamped to 0..100.
type Scoring struct {
	Factors        []ScoringFactor `json:"factors"`
	Priority       int             `json:"priority"`
	Severity       Severity        `json:"severity"`
	SourceSeverity Severity        `json:"source_severity"`
}

// ScoringFactor is one term of a priority: its name, the reason in words and
// the weight it adds.
type ScoringFactor struct {
	Factor string `json:"factor"`
	Reason string `json:"reason"`
	Weight int    `json:"weight"`
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

// SetData sets event_data[key], creating the map when needed. The keys of
// the typed results (DataAsset, DataScoring, ...) belong to their fields:
// a typed result that is set replaces a Data value under its key.
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
