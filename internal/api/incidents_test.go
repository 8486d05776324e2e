package api

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/enrich"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/incident"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// incidentEnv is an API over a SQLite store with an incident engine that
// grouped a database failure (db-01, then app-01 that depends on it) and
// an unrelated failure of cache-01.
type incidentEnv struct {
	*env
	db, app, cache event.Event
}

func newIncidentEnv(t *testing.T) *incidentEnv {
	t.Helper()
	ctx := t.Context()
	s, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(ctx))
	inv := enrich.NewInventory()
	inv.Set(store.Asset{Host: "db-01", Criticality: "critical"})
	inv.Set(store.Asset{Host: "app-01", Dependencies: []string{"db-01"}})
	eng, err := incident.New(ctx, incident.Options{Store: s, Graph: inv, Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	mk := func(id int64, host string, at time.Duration, sev event.Severity, title string) event.Event {
		ts := testNow.Add(-time.Hour + at)
		ev := event.Event{ID: id, RawEventID: id, EventType: "alert", Severity: sev, SourceSystem: "mon", SourceType: event.SourceWebhook,
			SourceHost: host, Title: title, OccurredAt: ts, ReceivedAt: ts, ProcessedAt: ts, OccurrenceCount: 1, LastSeenAt: ts}
		raw := event.Raw{ID: id, SourceSystem: "mon", SourceType: event.SourceWebhook, Data: []byte(`{}`), ReceivedAt: ts, Processed: true, ProcessedEventID: id}
		require.NoError(t, s.WriteBatch(ctx, &store.Batch{Raw: []event.Raw{raw}, New: []event.Event{ev}}))
		return ev
	}
	ie := &incidentEnv{
		app:   mk(event.IDAt(testNow.Add(-time.Hour)), "app-01", 0, event.High, "connection refused"),
		db:    mk(event.IDAt(testNow.Add(-time.Hour))+1, "db-01", 30*time.Second, event.Critical, "database down"),
		cache: mk(event.IDAt(testNow.Add(-time.Hour))+2, "cache-01", 40*time.Second, event.High, "redis down"),
	}
	var recs []processed.Record
	for _, ev := range []event.Event{ie.app, ie.db, ie.cache} {
		recs = append(recs, processed.Record{Kind: processed.KindNew, RawEventID: ev.ID, EventID: ev.ID, Event: &ev})
	}
	require.NoError(t, eng.Handle(ctx, recs))
	ie.env = newEnv(t, func(o *EventsOptions) { o.Incidents = IncidentOptions{Store: s, Engine: eng} })
	return ie
}

func TestIncidentsAPI(t *testing.T) {
	e := newIncidentEnv(t)

	w := e.do(req{method: http.MethodGet, path: "/api/v1/incidents", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var list IncidentList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Len(t, list.Incidents, 2)
	var raw map[string][]map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	for _, k := range []string{"id", "status", "title", "root_event_id", "root_cause_ranking", "event_count", "hosts", "opened_at", "updated_at"} {
		require.Contains(t, raw["incidents"][0], k)
	}
	var dbInc Incident
	for _, in := range list.Incidents {
		if in.ID == e.app.ID {
			dbInc = in
		}
	}
	require.Equal(t, e.db.ID, *dbInc.RootEventID, "the database is the root")
	require.Equal(t, 2, dbInc.EventCount)
	require.Equal(t, []string{"app-01", "db-01"}, dbInc.Hosts)
	require.Equal(t, e.db.ID, dbInc.RootCauseRanking[0].EventID)
	require.Equal(t, "db-01", dbInc.RootCauseRanking[0].SourceHost)
	require.NotEmpty(t, dbInc.RootCauseRanking[0].Reason)

	// Paging and filters.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/incidents?limit=1&status=open", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	list = IncidentList{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Len(t, list.Incidents, 1)
	require.NotEmpty(t, list.NextCursor)
	first := list.Incidents[0].ID
	w = e.do(req{method: http.MethodGet, path: "/api/v1/incidents?limit=1&status=open&cursor=" + list.NextCursor, key: "reader"})
	list = IncidentList{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Len(t, list.Incidents, 1)
	require.NotEqual(t, first, list.Incidents[0].ID)
	require.Empty(t, list.NextCursor)
	w = e.do(req{method: http.MethodGet, path: "/api/v1/incidents?host=cache-01", key: "reader"})
	list = IncidentList{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Len(t, list.Incidents, 1)
	require.Equal(t, e.cache.ID, list.Incidents[0].ID)

	// The detail with its timeline, and the events with their incident.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/incidents/" + itoa(e.app.ID), key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var detail IncidentDetail
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &detail))
	require.Len(t, detail.Timeline, 3)
	require.Equal(t, "event", detail.Timeline[0].Kind, "in time order: the events happened before the engine opened the incident")
	require.Equal(t, e.app.ID, detail.Timeline[0].EventID)
	require.True(t, detail.Timeline[1].Root)
	require.Equal(t, "opened", detail.Timeline[2].Kind)
	w = e.do(req{method: http.MethodGet, path: "/api/v1/incidents/" + itoa(e.app.ID) + "/events", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var evs IncidentEvents
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &evs))
	require.Equal(t, 2, evs.Count)
	require.Equal(t, event.NullID(e.app.ID), evs.Events[0].IncidentID)

	// The lifecycle: ack, resolve, a second resolve conflicts, reopen.
	w = e.do(req{method: http.MethodPost, path: "/api/v1/incidents/" + itoa(e.app.ID) + "/ack", key: "reader"})
	require.Equal(t, http.StatusForbidden, w.Code, "status changes need events:write")
	w = e.do(req{method: http.MethodPost, path: "/api/v1/incidents/" + itoa(e.app.ID) + "/ack", key: "writer"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var in Incident
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &in))
	require.Equal(t, store.IncidentAcknowledged, in.Status)
	require.NotNil(t, in.AcknowledgedAt)
	w = e.do(req{method: http.MethodPost, path: "/api/v1/incidents/" + itoa(e.app.ID) + "/resolve", key: "writer"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	w = e.do(req{method: http.MethodPost, path: "/api/v1/incidents/" + itoa(e.app.ID) + "/resolve", key: "writer"})
	require.Equal(t, http.StatusConflict, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "is resolved")
	w = e.do(req{method: http.MethodPost, path: "/api/v1/incidents/" + itoa(e.app.ID) + "/reopen", key: "writer"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	w = e.do(req{method: http.MethodGet, path: "/api/v1/incidents?status=resolved", key: "reader"})
	list = IncidentList{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Empty(t, list.Incidents)
}

func TestIncidentsAPIBadRequests(t *testing.T) {
	e := newIncidentEnv(t)
	for _, tt := range []struct {
		path, method string
		code         int
		field        string
	}{
		{"/api/v1/incidents?status=closed", http.MethodGet, http.StatusBadRequest, "status"},
		{"/api/v1/incidents?limit=0", http.MethodGet, http.StatusBadRequest, "limit"},
		{"/api/v1/incidents?since=yesterday", http.MethodGet, http.StatusBadRequest, "since"},
		{"/api/v1/incidents?cursor=xyz", http.MethodGet, http.StatusBadRequest, "cursor"},
		{"/api/v1/incidents?colour=red", http.MethodGet, http.StatusBadRequest, "colour"},
		{"/api/v1/incidents/abc", http.MethodGet, http.StatusBadRequest, "id"},
		{"/api/v1/incidents/99", http.MethodGet, http.StatusNotFound, ""},
		{"/api/v1/incidents/99/events", http.MethodGet, http.StatusNotFound, ""},
		{"/api/v1/incidents/99/ack", http.MethodPost, http.StatusNotFound, ""},
		{"/api/v1/incidents/" + itoa(e.cache.ID) + "/reopen", http.MethodPost, http.StatusConflict, ""},
	} {
		t.Run(tt.path, func(t *testing.T) {
			w := e.do(req{method: tt.method, path: tt.path, key: "admin"})
			require.Equal(t, tt.code, w.Code, w.Body.String())
			if tt.field != "" {
				var body ErrorBody
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				require.Equal(t, tt.field, body.Field)
			}
		})
	}
	w := e.do(req{method: http.MethodGet, path: "/api/v1/incidents"})
	require.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestEventAnswersCarryTheirIncident(t *testing.T) {
	e := newIncidentEnv(t)
	w := e.do(req{method: http.MethodGet, path: "/api/v1/incidents/" + itoa(e.app.ID) + "/events", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	first := raw["events"].([]any)[0].(map[string]any)
	require.Equal(t, float64(e.app.ID), first["incident_id"])
}
