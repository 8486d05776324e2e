package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/contextual"
)

// TestContextEndToEnd asks GET /api/v1/context about a host with a
// dependency, a maintenance window on each and a change event, on a
// server with embedded NATS and SQLite.
func TestContextEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.BusinessHours = "Mon-Sun 00:00-24:00"
	cfg.Timezone = "Europe/Paris"
	// Every template new on app-01 raises a new_log_pattern event of
	// app-01: reflex's own events, which its rate does not count.
	cfg.TemplatesLearning = 0
	ts := start(t, cfg)

	for host, body := range map[string]string{
		"app-01": `{"criticality": "high", "owner": "web-team", "service": "shop", "dependencies": ["db-01"], "tags": ["env:prod"]}`,
		"db-01":  `{"criticality": "critical", "service": "postgres"}`,
	} {
		require.Equal(t, http.StatusCreated, ts.do(http.MethodPut, ts.events+"/api/v1/assets/"+host, body, nil))
	}
	now := time.Now().UTC()
	var db, soon struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	require.Equal(t, http.StatusCreated, ts.do(http.MethodPost, ts.events+"/api/v1/maintenance",
		`{"matchers": {"service": "postgres"}, "ends_at": "`+now.Add(time.Hour).Format(time.RFC3339)+`", "comment": "vacuum full"}`, &db))
	require.Equal(t, "active", db.Status)
	require.Equal(t, http.StatusCreated, ts.do(http.MethodPost, ts.events+"/api/v1/maintenance",
		`{"matchers": {"host": {"regex": "app-[0-9]+"}}, "starts_at": "`+now.Add(2*time.Hour).Format(time.RFC3339)+`", "ends_at": "`+now.Add(3*time.Hour).Format(time.RFC3339)+`"}`, &soon))
	require.Equal(t, "upcoming", soon.Status)

	change := ts.post(`{"source": "argocd", "event_type": "change", "severity": "info", "host": "app-01", "service": "shop", "message": "deployed shop v1.4.2"}`)
	ts.waitEvent(change[0])
	logs := ts.post(`{"source": "app", "event_type": "log", "severity": "low", "host": "app-01", "message": "GET /cart 500"}`)
	ts.waitEvent(logs[0])
	down := ts.post(`{"source": "nagios", "event_type": "service_down", "severity": "critical", "host": "db-01", "message": "postgres is down"}`)
	ts.waitEvent(down[0])
	// The incident engine runs after the store: wait for its incident.
	require.Eventually(t, func() bool {
		var l struct {
			Incidents []struct{ ID int64 } `json:"incidents"`
		}
		return ts.do(http.MethodGet, ts.events+"/api/v1/incidents?host=db-01", "", &l) == http.StatusOK && len(l.Incidents) == 1
	}, 20*time.Second, 50*time.Millisecond)

	var c contextual.Context
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/context?host=app-01", "", &c))
	require.Equal(t, "app-01", c.Host)
	require.NotNil(t, c.Asset)
	require.Equal(t, "high", c.Asset.Criticality)
	require.Equal(t, "web-team", c.Asset.Owner)
	require.Equal(t, []string{"db-01"}, c.Asset.Dependencies)

	require.True(t, c.BusinessHours.Configured)
	require.True(t, c.BusinessHours.Inside)
	require.Equal(t, "Europe/Paris", c.BusinessHours.Timezone)

	require.False(t, c.Maintenance.Active, "the window on postgres covers the dependency, not the host")
	require.Equal(t, []string{"db-01"}, c.Maintenance.DependenciesInMaintenance)
	require.Len(t, c.Maintenance.Upcoming, 1)
	require.Equal(t, soon.ID, c.Maintenance.Upcoming[0].ID)

	require.Len(t, c.Changes.Events, 1)
	require.Equal(t, change[0], c.Changes.Events[0].EventID)
	require.Equal(t, "deployed shop v1.4.2", c.Changes.Events[0].Title)
	require.Equal(t, "argocd", c.Changes.Events[0].SourceSystem)

	require.True(t, c.Incidents.Available)
	require.Empty(t, c.Incidents.OnHost)
	require.Len(t, c.Incidents.OnDependencies, 1, "db-01's incident")
	require.Equal(t, []string{"db-01"}, c.Incidents.OnDependencies[0].Hosts)
	require.Equal(t, "open", c.Incidents.OnDependencies[0].Status)
	require.Equal(t, down[0], c.Incidents.OnDependencies[0].RootEventID)

	require.Equal(t, contextual.RateFromStore, c.EventRate.Source)
	require.Equal(t, 2.0, c.EventRate.Current, "the change and the log of the last 5 minutes")
	require.Equal(t, 7, c.EventRate.BaselineDays)
	require.Equal(t, 3.0, c.EventRate.ExpectedHigh, "no history: 0 ± 3, the deviation at least 1")
	require.False(t, c.EventRate.Anomalous, "two events are within that")

	// The dependency itself is in maintenance; the in-process analyzer
	// says the same.
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/context?host=db-01", "", &c))
	require.True(t, c.Maintenance.Active)
	require.Equal(t, db.ID, c.Maintenance.Windows[0].ID)
	in, err := ts.srv.Context().Context(t.Context(), "db-01", time.Now())
	require.NoError(t, err)
	require.True(t, in.Maintenance.Active)

	// Ending the window ends the maintenance.
	require.Equal(t, http.StatusNoContent, ts.do(http.MethodDelete, fmt.Sprintf("%s/api/v1/maintenance/%d", ts.events, db.ID), "", nil))
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/context?host=db-01", "", &c))
	require.False(t, c.Maintenance.Active)

	// Trends and analytics answer on the server.
	var tr map[string]any
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events/trends?groupby=host&timerange=1h", "", &tr))
	require.EqualValues(t, 2, tr["count"], "app-01 and db-01")
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events/analytics?timerange=1h&interval=5m&top=hosts", "", &tr))
	require.Equal(t, "5m", tr["interval"])
}
