package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/executor/command"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// newAutonomousEnv is env with the Autonomous Response Service's handler
// over a real SQLite store.
func newAutonomousEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(context.Background()))
	e.h, err = NewAutonomous(AutonomousOptions{
		Auth:       e.auth,
		Actions:    st,
		Validators: actions.Validators{command.Type: func(s executor.Spec) error { _, err := command.Parse(s); return err }},
		Logger:     slog.New(slog.NewTextHandler(e.logs, nil)),
		Now:        func() time.Time { return testNow },
	})
	require.NoError(t, err)
	return e
}

const restartBody = `{"action_name":"restart_nginx","action_type":"remediation","risk_level":"high",
	"rollback_action":"start_nginx","estimated_duration_minutes":2,
	"executor":{"type":"command","argv":["/opt/fix/restart.sh","{{.event.source_host}}"],"timeout":"30s"},
	"success_criteria":{"exit_code":0,"no_new_event_minutes":10}}`

func TestActionsCRUD(t *testing.T) {
	e := newAutonomousEnv(t)
	w := e.do(req{method: http.MethodPost, path: "/api/v1/autonomous/actions", key: "admin", body: restartBody})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var d actions.Definition
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &d))
	require.Positive(t, d.ID)
	require.True(t, d.ApprovalRequired, "approval required by default")
	require.True(t, d.Enabled)
	require.Equal(t, "start_nginx", d.Rollback)
	path := "/api/v1/autonomous/actions/" + strconv.FormatInt(d.ID, 10)

	w = e.do(req{method: http.MethodPost, path: "/api/v1/autonomous/actions", key: "admin", body: restartBody})
	requireError(t, w, http.StatusConflict, "action_name", "exists")

	w = e.do(req{method: http.MethodGet, path: path, key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"type":"command","argv":["/opt/fix/restart.sh","{{.event.source_host}}"],"timeout":"30s"}`,
		mustJSON(t, decodeBody(t, w)["executor"]))

	// PUT replaces; the GET answer can be sent back as it is.
	var back map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &back))
	back["risk_level"] = "critical"
	w = e.do(req{method: http.MethodPut, path: path, key: "admin", body: mustJSON(t, back)})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "critical", decodeBody(t, w)["risk_level"])

	w = e.do(req{method: http.MethodPost, path: "/api/v1/autonomous/actions", key: "admin", body: `{"action_name":"start_nginx","action_type":"remediation",
		"executor":{"type":"command","argv":["/opt/fix/start.sh"]}}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var start actions.Definition
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &start))

	w = e.do(req{method: http.MethodGet, path: "/api/v1/autonomous/actions", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var list ActionList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Equal(t, 2, list.Count)
	require.Equal(t, "restart_nginx", list.Actions[0].Name)

	startPath := "/api/v1/autonomous/actions/" + strconv.FormatInt(start.ID, 10)
	w = e.do(req{method: http.MethodDelete, path: startPath, key: "admin"})
	requireError(t, w, http.StatusConflict, "", "rollback")
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: path, key: "admin"}).Code)
	require.Equal(t, http.StatusNoContent, e.do(req{method: http.MethodDelete, path: startPath, key: "admin"}).Code)
	requireError(t, e.do(req{method: http.MethodGet, path: path, key: "reader"}), http.StatusNotFound, "", "no action with id")
	requireError(t, e.do(req{method: http.MethodDelete, path: path, key: "admin"}), http.StatusNotFound, "", "no action")
	requireError(t, e.do(req{method: http.MethodPut, path: path, key: "admin", body: restartBody}), http.StatusNotFound, "", "no action")
}

func TestActionsRefused(t *testing.T) {
	e := newAutonomousEnv(t)
	post := func(key, body string) *httptest.ResponseRecorder {
		return e.do(req{method: http.MethodPost, path: "/api/v1/autonomous/actions", key: key, body: body})
	}
	require.Equal(t, http.StatusUnauthorized, post("", restartBody).Code)
	requireError(t, post("reader", restartBody), http.StatusForbidden, "", `lacks the scope "admin"`)
	requireError(t, post("rules", restartBody), http.StatusForbidden, "", `lacks the scope "admin"`)
	for _, tc := range []struct{ body, field, contains string }{
		{`{"action_name":"x","action_type":"diagnostic","executor":{"type":"command","argv":["/bin/true"]},"scrip":"y"}`, "", `unknown field "scrip"`},
		{`{"action_name":"x y","action_type":"diagnostic","executor":{"type":"command","argv":["/bin/true"]}}`, "action_name", "letters"},
		{`{"action_name":"x","action_type":"investigate","executor":{"type":"command","argv":["/bin/true"]}}`, "action_type", "want one of"},
		{`{"action_name":"x","action_type":"diagnostic"}`, "executor", "is required"},
		{`{"action_name":"x","action_type":"diagnostic","executor":{"type":"shell","cmd":"rm -rf /"}}`, "executor.type", "not an executor type"},
		{`{"action_name":"x","action_type":"diagnostic","executor":{"type":"command","argv":["restart.sh"]}}`, "executor", "absolute"},
		{`{"action_name":"x","action_type":"diagnostic","executor":{"type":"command","argv":["/bin/echo"],"shell":true}}`, "executor", "shell"},
		{`[]`, "", ""},
	} {
		w := post("admin", tc.body)
		requireError(t, w, http.StatusBadRequest, tc.field, tc.contains)
	}
	w := e.do(req{method: http.MethodGet, path: "/api/v1/autonomous/actions/x", key: "reader"})
	requireError(t, w, http.StatusBadRequest, "id", "action id")
}
