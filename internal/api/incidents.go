package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/incident"
	"github.com/reflex-ops/reflex/internal/store"
)

// IncidentReader is the part of store.Store the incident routes read.
type IncidentReader interface {
	Incident(ctx context.Context, id int64) (store.Incident, error)
	ListIncidents(ctx context.Context, q store.IncidentQuery) (store.IncidentPage, error)
	IncidentEventIDs(ctx context.Context, id int64, limit int) ([]int64, error)
	EventsByID(ctx context.Context, ids []int64) ([]event.Event, error)
}

// IncidentEngine changes the status of incidents (*incident.Engine),
// returning store.ErrNotFound or incident.ErrTransition.
type IncidentEngine interface {
	SetStatus(ctx context.Context, id int64, status store.IncidentStatus) (store.Incident, error)
}

var _ IncidentEngine = (*incident.Engine)(nil)

// IncidentOptions serve /api/v1/incidents. Without Store those routes are
// 404; without Engine the status changes answer 503.
type IncidentOptions struct {
	Store  IncidentReader
	Engine IncidentEngine
}

// maxTimelineEvents bounds the events of an incident's timeline.
const maxTimelineEvents = 1000

// Incident is an incident as the API answers it.
type Incident struct {
	ID               int64                 `json:"id"`
	Status           store.IncidentStatus  `json:"status"`
	Title            string                `json:"title"`
	RootEventID      *int64                `json:"root_event_id"`
	RootCauseRanking []store.RootCandidate `json:"root_cause_ranking"`
	EventCount       int                   `json:"event_count"`
	Hosts            []string              `json:"hosts"`
	OpenedAt         time.Time             `json:"opened_at"`
	UpdatedAt        time.Time             `json:"updated_at"`
	AcknowledgedAt   *time.Time            `json:"acknowledged_at"`
	ResolvedAt       *time.Time            `json:"resolved_at"`
	CorrelationID    string                `json:"correlation_id"`
	CorrelationType  event.CorrelationType `json:"correlation_type"`
}

// IncidentList is the answer of GET /api/v1/incidents.
type IncidentList struct {
	Incidents []Incident `json:"incidents"`
	// NextCursor, when present, fetches the next (older) page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// TimelineEntry is one moment of an incident: an event that joined it,
// or a change of its status.
type TimelineEntry struct {
	At         time.Time      `json:"at"`
	Kind       string         `json:"kind"` // event, opened, acknowledged, resolved
	EventID    int64          `json:"event_id,omitempty"`
	SourceHost string         `json:"source_host,omitempty"`
	Severity   event.Severity `json:"severity,omitempty"`
	EventType  string         `json:"event_type,omitempty"`
	Title      string         `json:"title,omitempty"`
	Root       bool           `json:"root,omitempty"`
}

// IncidentDetail is the answer of GET /api/v1/incidents/{id}.
type IncidentDetail struct {
	Incident
	Timeline []TimelineEntry `json:"timeline"`
}

// IncidentEvents is the answer of GET /api/v1/incidents/{id}/events.
type IncidentEvents struct {
	IncidentID int64         `json:"incident_id"`
	Events     []event.Event `json:"events"`
	Count      int           `json:"count"`
}

func answerIncident(in store.Incident) Incident {
	out := Incident{ID: in.ID, Status: in.Status, Title: in.Title, RootCauseRanking: in.RootCauseRanking,
		EventCount: in.EventCount, Hosts: in.Hosts, OpenedAt: in.OpenedAt, UpdatedAt: in.UpdatedAt,
		CorrelationID: in.CorrelationID, CorrelationType: in.CorrelationType}
	if in.RootEventID != 0 {
		id := in.RootEventID
		out.RootEventID = &id
	}
	if !in.AcknowledgedAt.IsZero() {
		t := in.AcknowledgedAt
		out.AcknowledgedAt = &t
	}
	if !in.ResolvedAt.IsZero() {
		t := in.ResolvedAt
		out.ResolvedAt = &t
	}
	if out.RootCauseRanking == nil {
		out.RootCauseRanking = []store.RootCandidate{}
	}
	if out.Hosts == nil {
		out.Hosts = []string{}
	}
	return out
}

type incidentsAPI struct {
	*eventsAPI
	store  IncidentReader
	engine IncidentEngine
}

// incidentRoutes serves /api/v1/incidents when o has a store.
func (s *eventsAPI) incidentRoutes(mux *http.ServeMux, o IncidentOptions) {
	if o.Store == nil {
		return
	}
	a := &incidentsAPI{eventsAPI: s, store: o.Store, engine: o.Engine}
	mux.Handle("GET /api/v1/incidents", s.with(auth.ScopeEventsRead, a.list))
	mux.Handle("GET /api/v1/incidents/{id}", s.with(auth.ScopeEventsRead, a.get))
	mux.Handle("GET /api/v1/incidents/{id}/events", s.with(auth.ScopeEventsRead, a.events))
	mux.Handle("POST /api/v1/incidents/{id}/ack", s.with(auth.ScopeEventsWrite, a.status(store.IncidentAcknowledged)))
	mux.Handle("POST /api/v1/incidents/{id}/resolve", s.with(auth.ScopeEventsWrite, a.status(store.IncidentResolved)))
	mux.Handle("POST /api/v1/incidents/{id}/reopen", s.with(auth.ScopeEventsWrite, a.status(store.IncidentOpen)))
}

var incidentParams = []string{"status", "since", "limit", "cursor", "host"}

// parseIncidentQuery validates the query of GET /api/v1/incidents.
func parseIncidentQuery(r *http.Request) (store.IncidentQuery, *fieldError) {
	var q store.IncidentQuery
	v, fe := queryValues(r)
	if fe != nil {
		return q, fe
	}
	if fe := checkParams(v, incidentParams, "status", "host"); fe != nil {
		return q, fe
	}
	for _, val := range v["status"] {
		for _, part := range strings.Split(val, ",") {
			st := store.IncidentStatus(strings.TrimSpace(part))
			if !st.Valid() {
				return q, badField("status", "unknown status %q: want open, acknowledged or resolved (comma-separated or repeated)", clip(part, 40))
			}
			if !slices.Contains(q.Status, st) {
				q.Status = append(q.Status, st)
			}
		}
	}
	for _, val := range v["host"] {
		for _, part := range strings.Split(val, ",") {
			h := strings.TrimSpace(part)
			if h == "" || len(h) > maxFilterLen {
				return q, badField("host", "must be host names of 1 to %d bytes (comma-separated or repeated)", maxFilterLen)
			}
			q.Hosts = append(q.Hosts, h)
		}
	}
	if v.Has("since") {
		t, fe := parseTime("since", v.Get("since"))
		if fe != nil {
			return q, fe
		}
		q.Since = t
	}
	if q.Limit, fe = parseLimit(v, defaultLimit, maxLimit); fe != nil {
		return q, fe
	}
	if v.Has("cursor") {
		t, id, err := decodeCursor(v.Get("cursor"))
		if err != nil {
			return q, badField("cursor", "invalid: pass next_cursor from the previous page unchanged")
		}
		q.CursorTime, q.CursorID = t, id
	}
	return q, nil
}

// list serves GET /api/v1/incidents.
func (a *incidentsAPI) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	q, fe := parseIncidentQuery(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	page, err := a.store.ListIncidents(r.Context(), q)
	if err != nil {
		a.unavailable(w, r, err, "list incidents")
		return
	}
	out := IncidentList{Incidents: make([]Incident, 0, len(page.Incidents))}
	for _, in := range page.Incidents {
		out.Incidents = append(out.Incidents, answerIncident(in))
	}
	if page.More {
		out.NextCursor = encodeCursor(page.NextTime, page.NextID)
	}
	writeJSON(w, http.StatusOK, out)
}

// find reads the incident of the path, or answers 400, 404 or 503.
func (a *incidentsAPI) find(w http.ResponseWriter, r *http.Request) (store.Incident, bool) {
	id, fe := incidentID(r)
	if fe == nil {
		fe = noParams(r)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return store.Incident{}, false
	}
	in, err := a.store.Incident(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "incident "+strconv.FormatInt(id, 10)+" not found", "")
		return in, false
	case err != nil:
		a.unavailable(w, r, err, "read incident")
		return in, false
	}
	return in, true
}

func incidentID(r *http.Request) (int64, *fieldError) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badField("id", "must be a positive integer incident id, got %q", clip(s, 40))
	}
	return id, nil
}

// eventsOf reads the events of in, oldest first, at most limit.
func (a *incidentsAPI) eventsOf(ctx context.Context, in store.Incident, limit int) ([]event.Event, error) {
	ids, err := a.store.IncidentEventIDs(ctx, in.ID, limit)
	if err != nil {
		return nil, err
	}
	evs, err := a.store.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(evs, func(x, y event.Event) int {
		if c := x.OccurredAt.Compare(y.OccurredAt); c != 0 {
			return c
		}
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return evs, nil
}

// get serves GET /api/v1/incidents/{id}: the incident and its timeline.
func (a *incidentsAPI) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	in, ok := a.find(w, r)
	if !ok {
		return
	}
	evs, err := a.eventsOf(r.Context(), in, maxTimelineEvents)
	if err != nil {
		a.unavailable(w, r, err, "read incident events")
		return
	}
	tl := []TimelineEntry{{At: in.OpenedAt, Kind: "opened"}}
	for _, e := range evs {
		tl = append(tl, TimelineEntry{At: e.OccurredAt, Kind: "event", EventID: e.ID, SourceHost: e.SourceHost,
			Severity: e.Severity, EventType: e.EventType, Title: e.Title, Root: e.ID == in.RootEventID})
	}
	if !in.AcknowledgedAt.IsZero() {
		tl = append(tl, TimelineEntry{At: in.AcknowledgedAt, Kind: "acknowledged"})
	}
	if !in.ResolvedAt.IsZero() {
		tl = append(tl, TimelineEntry{At: in.ResolvedAt, Kind: "resolved"})
	}
	slices.SortStableFunc(tl, func(x, y TimelineEntry) int { return x.At.Compare(y.At) })
	writeJSON(w, http.StatusOK, IncidentDetail{Incident: answerIncident(in), Timeline: tl})
}

// events serves GET /api/v1/incidents/{id}/events.
func (a *incidentsAPI) events(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := incidentID(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, []string{"limit"})
	}
	limit := maxLimit
	if fe == nil {
		limit, fe = parseLimit(v, maxLimit, maxLimit)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	in, err := a.store.Incident(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "incident "+strconv.FormatInt(id, 10)+" not found", "")
		return
	case err != nil:
		a.unavailable(w, r, err, "read incident")
		return
	}
	evs, err := a.eventsOf(r.Context(), in, limit)
	if err != nil {
		a.unavailable(w, r, err, "read incident events")
		return
	}
	writeJSON(w, http.StatusOK, IncidentEvents{IncidentID: in.ID, Events: evs, Count: len(evs)})
}

// status serves POST /api/v1/incidents/{id}/ack, /resolve and /reopen.
func (a *incidentsAPI) status(to store.IncidentStatus) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
		id, fe := incidentID(r)
		if fe == nil {
			fe = noParams(r)
		}
		if fe != nil {
			writeFieldError(w, fe)
			return
		}
		if a.engine == nil {
			w.Header().Set("Retry-After", retryUnavailable)
			writeError(w, http.StatusServiceUnavailable, "the incident engine does not run in this service", "")
			return
		}
		in, err := a.engine.SetStatus(r.Context(), id, to)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "incident "+strconv.FormatInt(id, 10)+" not found", "")
		case errors.Is(err, incident.ErrTransition):
			writeError(w, http.StatusConflict, trimPrefixes(err.Error(), "incident: "), "")
		case err != nil:
			a.unavailable(w, r, err, "change incident status")
		default:
			writeJSON(w, http.StatusOK, answerIncident(in))
		}
	}
}
