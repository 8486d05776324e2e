package store

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
)

// IncidentStore holds what the incident engine keeps (tables incidents
// and incident_events of the events schema): incidents, the events of
// each (an event is in one incident at most) and, through WriteIncidents,
// the parent links and correlation rows the engine derives.
type IncidentStore interface {
	// WriteIncidents stores one batch of the incident engine's changes in
	// one transaction (see IncidentWrite).
	WriteIncidents(ctx context.Context, w IncidentWrite) error
	// Incident returns the incident with this id, or ErrNotFound.
	Incident(ctx context.Context, id int64) (Incident, error)
	// ListIncidents lists the incidents q selects, newest opened first.
	ListIncidents(ctx context.Context, q IncidentQuery) (IncidentPage, error)
	// IncidentEventIDs returns the ids of the events of incident id in
	// the order they were added, at most limit (0: all).
	IncidentEventIDs(ctx context.Context, id int64, limit int) ([]int64, error)
	// IncidentsOfEvents returns the incident of each of ids that is in
	// one; the others are left out.
	IncidentsOfEvents(ctx context.Context, ids []int64) (map[int64]int64, error)
	// AlertsOfEvents returns the alert whose current episode is each of
	// ids (a firing event); the others are left out.
	AlertsOfEvents(ctx context.Context, ids []int64) (map[int64]AlertState, error)
	// SetIncidentStatus sets the status of incident id at at: acknowledged
	// sets AcknowledgedAt, resolved sets ResolvedAt, open (a reopen)
	// clears ResolvedAt. It returns the incident as stored, or
	// ErrNotFound.
	SetIncidentStatus(ctx context.Context, id int64, status IncidentStatus, at time.Time) (Incident, error)
	// PruneIncidents deletes the incidents resolved before before, with
	// their incident_events rows, and returns how many incidents it
	// deleted. The server runs it with the events' retention.
	PruneIncidents(ctx context.Context, before time.Time) (int64, error)
}

// IncidentStatus is the lifecycle state of an incident.
type IncidentStatus string

// The states of an incident.
const (
	IncidentOpen         IncidentStatus = "open"
	IncidentAcknowledged IncidentStatus = "acknowledged"
	IncidentResolved     IncidentStatus = "resolved"
)

// Valid reports whether s is one of the three states.
func (s IncidentStatus) Valid() bool {
	return s == IncidentOpen || s == IncidentAcknowledged || s == IncidentResolved
}

// Incident is a row of incidents: correlated events with a lifecycle and
// the ranking of their probable root causes.
type Incident struct {
	// ID is the id of the event that opened the incident.
	ID int64 `json:"id"`
	// CorrelationID is the UUID of the incident's events.event_correlations
	// row.
	CorrelationID string         `json:"correlation_id"`
	Status        IncidentStatus `json:"status"`
	Title         string         `json:"title"`
	// CorrelationType says what grouped the events: causal (the asset
	// dependency graph), pattern_based (shared labels) or time_based (one
	// host).
	CorrelationType event.CorrelationType `json:"correlation_type"`
	// RootEventID is the top candidate of RootCauseRanking (0: none yet).
	RootEventID      int64           `json:"root_event_id"`
	RootCauseRanking []RootCandidate `json:"root_cause_ranking"`
	EventCount       int             `json:"event_count"`
	Hosts            []string        `json:"hosts"`
	OpenedAt         time.Time       `json:"opened_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
	AcknowledgedAt   time.Time       `json:"acknowledged_at"`
	ResolvedAt       time.Time       `json:"resolved_at"`
}

// RootCandidate is one candidate root cause of an incident: an event,
// its score and the reasons in words. Signature is the event's template
// or type signature, from which the engine learns which kinds of events
// tend to be roots.
type RootCandidate struct {
	EventID    int64   `json:"event_id"`
	SourceHost string  `json:"source_host"`
	Score      float64 `json:"score"`
	Reason     string  `json:"reason"`
	Signature  string  `json:"signature,omitempty"`
}

// IncidentMember puts an event in an incident. An event already in an
// incident stays where it is.
type IncidentMember struct {
	IncidentID int64
	EventID    int64
	AddedAt    time.Time
}

// IncidentMerge moves the events of incident From into incident Into and
// deletes From.
type IncidentMerge struct {
	From, Into int64
}

// ParentLink sets parent_event_id of the processed event EventID (whose
// occurred_at is OccurredAt, which locates its partition) to ParentID.
type ParentLink struct {
	EventID    int64
	OccurredAt time.Time
	ParentID   int64
}

// IncidentWrite is one batch of the incident engine's changes, written
// in this order: Incidents (inserted or replaced by id), Members (events
// already in an incident are left there), Merges, Parents and
// Correlations (inserted or replaced by correlation id, like the
// pipeline's rows).
type IncidentWrite struct {
	Incidents    []Incident
	Members      []IncidentMember
	Merges       []IncidentMerge
	Parents      []ParentLink
	Correlations []event.Correlation
	// Alerts are the firings and resolutions of the batch, in event order
	// (see AlertChange).
	Alerts []AlertChange
}

// Empty reports whether w changes nothing.
func (w *IncidentWrite) Empty() bool {
	return len(w.Incidents)+len(w.Members)+len(w.Merges)+len(w.Parents)+len(w.Correlations)+len(w.Alerts) == 0
}

// AlertChange is a firing or a resolution of an alert (events.alerts, one
// row per source type and alert key). A firing makes EventID the alert's
// current episode, firing; a resolution resolves the alert's firing
// episode, and does nothing when the alert is not firing. A change whose
// EventID is not above the last one applied to the row (a redelivery)
// changes nothing.
type AlertChange struct {
	SourceType event.SourceType
	Key        string
	Status     event.AlertStatus
	// EventID is the firing event, or the resolution event.
	EventID int64
	// At is when the episode started (a firing) or ended (a resolution).
	At time.Time
}

// AlertState is a row of events.alerts.
type AlertState struct {
	SourceType event.SourceType
	Key        string
	EventID    int64 // the firing event of the current episode
	Status     event.AlertStatus
	StartedAt  time.Time
	ResolvedAt time.Time // zero while firing
	ResolvedBy int64     // the resolution event; 0 while firing
}

// IncidentQuery selects incidents. Zero fields do not filter.
type IncidentQuery struct {
	// Status keeps the incidents in one of these states.
	Status []IncidentStatus
	// Hosts keeps the incidents that involve one of these hosts.
	Hosts []string
	// Since keeps the incidents updated at or after it.
	Since time.Time
	// Limit bounds the page: 1..1000, 0 means 100.
	Limit int
	// Cursor continues a listing: only incidents opened before
	// (CursorTime, CursorID) in newest-first order.
	CursorTime time.Time
	CursorID   int64
}

// PageSize is q.Limit within 1..1000, 100 when unset.
func (q IncidentQuery) PageSize() int {
	if q.Limit <= 0 {
		return 100
	}
	return min(q.Limit, 1000)
}

// IncidentPage is one page of ListIncidents. When More, the next page
// starts after (NextTime, NextID).
type IncidentPage struct {
	Incidents []Incident
	More      bool
	NextTime  time.Time
	NextID    int64
}
