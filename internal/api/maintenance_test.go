package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMaintenanceCreateListEnd(t *testing.T) {
	e := newHistoryEnv(t)
	at := func(d time.Duration) string { return testNow.Add(d).Format(time.RFC3339) }

	w := e.do(req{method: http.MethodPost, path: "/api/v1/maintenance", key: "rules", body: `{
		"matchers": {"host": {"regex": "db-[0-9]+"}, "service": ["postgres", "pgbouncer"], "tags": "env:prod"},
		"ends_at": "` + at(2*time.Hour) + `", "comment": "upgrade to PostgreSQL 17"}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var active MaintenanceInfo
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &active))
	require.NotZero(t, active.ID)
	require.Equal(t, MaintenanceActive, active.Status)
	require.True(t, testNow.Equal(active.StartsAt), "starts now by default")
	require.Equal(t, "rules", active.CreatedBy, "the key's name by default")
	require.Equal(t, "db-[0-9]+", active.Matchers["host"].Regex)
	require.JSONEq(t, `{"host": {"regex": "db-[0-9]+"}, "service": ["postgres", "pgbouncer"], "tags": "env:prod"}`, mustJSON(t, active.Matchers))

	w = e.do(req{method: http.MethodPost, path: "/api/v1/maintenance", key: "rules", body: `{
		"matchers": {"host": "web-01"}, "starts_at": "` + at(24*time.Hour) + `", "ends_at": "` + at(26*time.Hour) + `", "created_by": "alice"}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var upcoming MaintenanceInfo
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &upcoming))
	require.Equal(t, MaintenanceUpcoming, upcoming.Status)
	require.Equal(t, "alice", upcoming.CreatedBy)

	list := func(query string) []int64 {
		t.Helper()
		w := e.do(req{method: http.MethodGet, path: "/api/v1/maintenance" + query, key: "reader"})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var l MaintenanceList
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &l))
		require.Equal(t, len(l.Windows), l.Count)
		ids := []int64{}
		for _, x := range l.Windows {
			ids = append(ids, x.ID)
		}
		return ids
	}
	require.Equal(t, []int64{active.ID, upcoming.ID}, list(""))
	require.Equal(t, []int64{active.ID}, list("?status=active"))
	require.Equal(t, []int64{upcoming.ID}, list("?status=upcoming"))
	require.Equal(t, []int64{}, list("?status=ended"))

	w = e.do(req{method: http.MethodDelete, path: "/api/v1/maintenance/" + strconv.FormatInt(active.ID, 10), key: "rules"})
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, []int64{active.ID}, list("?status=ended"))
	require.Equal(t, []int64{upcoming.ID}, list(""))
	require.Equal(t, []int64{active.ID, upcoming.ID}, list("?status=all"))
	w = e.do(req{method: http.MethodDelete, path: "/api/v1/maintenance/" + strconv.FormatInt(active.ID, 10), key: "rules"})
	require.Equal(t, http.StatusNoContent, w.Code, "ending an ended window succeeds again")

	requireError(t, e.do(req{method: http.MethodDelete, path: "/api/v1/maintenance/999", key: "rules"}), http.StatusNotFound, "", "999")
}

func TestMaintenanceBadRequests(t *testing.T) {
	e := newHistoryEnv(t)
	end := `"ends_at": "2026-11-27T12:00:00Z"`
	for _, c := range []struct{ body, field, contains string }{
		{`{` + end + `}`, "matchers", "at least one matcher"},
		{`{"matchers": {}, ` + end + `}`, "matchers", "at least one matcher"},
		{`{"matchers": {"color": "red"}, ` + end + `}`, "matchers.color", "unknown field"},
		{`{"matchers": {"host": {"regex": "("}}, ` + end + `}`, "matchers.host", "invalid regex"},
		{`{"matchers": {"host": {"regex": ".*"}}, ` + end + `}`, "matchers.host", "empty value"},
		{`{"matchers": {"host": 12}, ` + end + `}`, "matchers.host", "want a string"},
		{`{"matchers": {"host": []}, ` + end + `}`, "matchers.host", "empty list"},
		{`{"matchers": {"host": "a"}}`, "ends_at", "required"},
		{`{"matchers": {"host": "a"}, "ends_at": "2026-11-27T09:00:00Z"}`, "ends_at", "after starts_at"},
		{`{"matchers": {"host": "a"}, "starts_at": "2026-11-27T08:00:00Z", "ends_at": "2026-11-27T09:00:00Z"}`, "ends_at", "in the past"},
		{`{"matchers": {"host": "a"}, "ends_at": "soon"}`, "", "invalid JSON"},
		{`{"matchers": {"host": "a"}, ` + end + `, "owner": "x"}`, "owner", "unknown field"},
	} {
		t.Run(c.body, func(t *testing.T) {
			requireError(t, e.do(req{method: http.MethodPost, path: "/api/v1/maintenance", key: "rules", body: c.body}), http.StatusBadRequest, c.field, c.contains)
		})
	}
	requireError(t, e.do(req{method: http.MethodGet, path: "/api/v1/maintenance?status=over", key: "reader"}), http.StatusBadRequest, "status", "active, upcoming, ended or all")
	requireError(t, e.do(req{method: http.MethodDelete, path: "/api/v1/maintenance/abc", key: "rules"}), http.StatusBadRequest, "id", "positive integer")
	requireError(t, e.do(req{method: http.MethodPost, path: "/api/v1/maintenance", key: "rules", body: `{"matchers": {"host": "a"}, ` + end + `}`, ctype: "text/plain"}), http.StatusUnsupportedMediaType, "Content-Type", "")
}
