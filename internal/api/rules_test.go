package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// The seed's payloads (architecture.md, rule management API).
const (
	seedRule = `{"name": "High CPU Alert",
		"conditions": {"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}},
		"time_window_minutes": 5, "max_triggers_per_hour": 3}`
	seedTemplate = `{"name": "CPU Investigation Playbook", "type": "investigation", "trigger_rule_id": %d,
		"actions": [{"type": "diagnostic", "script": "check_processes"},
			{"type": "remediation", "script": "kill_high_cpu_processes", "approval_required": true},
			{"type": "notification", "channels": ["email", "slack"]}],
		"approval_required": true, "rollback_supported": false, "max_execution_time_minutes": 15}`
)

// newRulesEnv is newEnv with a real SQLite store behind the rule API.
func newRulesEnv(t *testing.T) (*env, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(t.Context()))
	return newEnv(t, func(o *EventsOptions) { o.Rules = st }), st
}

// createRule posts body and returns the created rule's id.
func createRule(t *testing.T, e *env, body string) int64 {
	t.Helper()
	w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/triggers", key: "rules", body: body})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var r store.TriggerRule
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &r))
	require.NotZero(t, r.ID)
	return r.ID
}

func TestTriggerRules(t *testing.T) {
	e, _ := newRulesEnv(t)

	w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/triggers", key: "rules", body: seedRule})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	created := decodeBody(t, w)
	id := int64(created["id"].(float64))
	require.NotZero(t, id)
	require.JSONEq(t, fmt.Sprintf(`{"id": %d, "name": "High CPU Alert", "description": "",
		"conditions": {"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}},
		"severity_threshold": "", "time_window_minutes": 5, "min_count": 1, "group_by": ["source_host"],
		"max_triggers_per_hour": 3, "active": true, "created_by": %q,
		"firings": 0, "suppressed_firings": 0, "last_fired_at": null,
		"created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:00Z"}`, id, keyID(t, e, "rules")), w.Body.String())

	path := fmt.Sprintf("/api/v1/rules/triggers/%d", id)
	w = e.do(req{method: http.MethodGet, path: path, key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, mustJSON(t, created), w.Body.String())

	// Defaults: max_triggers_per_hour 10, no window.
	other := createRule(t, e, `{"name": "Disk", "conditions": {"metadata.disk": {"$gte": 95}}, "active": false}`)
	w = e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	var list TriggerRuleList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Equal(t, 2, list.Count)
	require.Equal(t, []int64{id, other}, []int64{list.Triggers[0].ID, list.Triggers[1].ID})
	require.Equal(t, 10, list.Triggers[1].MaxTriggersPerHour)
	require.Equal(t, 1, list.Triggers[1].MinCount)
	require.False(t, list.Triggers[1].Active)
	w = e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers?active=true", key: "reader"})
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Equal(t, 1, list.Count)
	require.Equal(t, id, list.Triggers[0].ID)

	t.Run("update", func(t *testing.T) {
		w := e.do(req{method: http.MethodPut, path: path, key: "rules", body: `{"name": "High CPU Alert",
			"conditions": {"metadata.cpu_usage": {"$gt": 95}}, "severity_threshold": "HIGH", "time_window_minutes": 10,
			"min_count": 3, "group_by": ["source_host", "event_type"], "max_triggers_per_hour": 2}`})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var r store.TriggerRule
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &r))
		require.Equal(t, id, r.ID)
		require.Equal(t, "high", r.SeverityThreshold)
		require.Equal(t, 3, r.MinCount)
		require.Equal(t, []string{"source_host", "event_type"}, r.GroupBy)
		require.JSONEq(t, `{"metadata.cpu_usage": {"$gt": 95}}`, string(r.Conditions))
		require.Equal(t, keyID(t, e, "rules"), r.CreatedBy, "kept")

		w = e.do(req{method: http.MethodPut, path: path, key: "rules", body: `{"name": "Disk", "conditions": {}}`})
		requireError(t, w, http.StatusConflict, "name", `name: another trigger rule is named "Disk"`)
		w = e.do(req{method: http.MethodPut, path: "/api/v1/rules/triggers/999", key: "rules", body: seedRule})
		requireError(t, w, http.StatusNotFound, "", "no trigger rule 999")
	})
	t.Run("duplicate name", func(t *testing.T) {
		w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/triggers", key: "rules", body: seedRule})
		requireError(t, w, http.StatusConflict, "name", `name: a trigger rule named "High CPU Alert" exists`)
	})
	t.Run("delete", func(t *testing.T) {
		w := e.do(req{method: http.MethodDelete, path: fmt.Sprintf("/api/v1/rules/triggers/%d", other), key: "rules"})
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		w = e.do(req{method: http.MethodGet, path: fmt.Sprintf("/api/v1/rules/triggers/%d", other), key: "reader"})
		requireError(t, w, http.StatusNotFound, "", fmt.Sprintf("no trigger rule %d", other))
		w = e.do(req{method: http.MethodDelete, path: fmt.Sprintf("/api/v1/rules/triggers/%d", other), key: "rules"})
		requireError(t, w, http.StatusNotFound, "", "")
	})
	t.Run("in use", func(t *testing.T) {
		w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/responses", key: "rules", body: fmt.Sprintf(seedTemplate, id)})
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		w = e.do(req{method: http.MethodDelete, path: path, key: "rules"})
		requireError(t, w, http.StatusConflict, "", "is in use")
	})
}

// keyID is the id of the key of role.
func keyID(t *testing.T, e *env, role string) string {
	t.Helper()
	p, err := e.auth.Authenticate(t.Context(), bearer(e.keys[role]))
	require.NoError(t, err)
	return p.KeyID
}

func bearer(key string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestTriggerRuleValidation(t *testing.T) {
	e, _ := newRulesEnv(t)
	for _, tt := range []struct {
		body, field, msg string
	}{
		{`{"name": "a", "conditions": {"metadata.cpu_usage": {"$gtt": 90}}}`,
			"conditions.metadata.cpu_usage.$gtt", "conditions.metadata.cpu_usage.$gtt: unknown operator"},
		{`{"name": "a", "conditions": {"title": {"$regex": "a(b"}}}`,
			"conditions.title.$regex", "conditions.title.$regex: invalid regular expression: missing closing ): `a(b`"},
		{`{"name": "a", "conditions": {"hots": "a"}}`, "conditions.hots", "conditions.hots: unknown field"},
		{`{"name": "a"}`, "conditions", "conditions: required"},
		{`{"conditions": {}}`, "name", "name: required"},
		{`{"name": "a", "conditions": {}, "severity_threshold": "urgent"}`,
			"severity_threshold", `severity_threshold: unknown severity "urgent" (want critical, high, medium, low or info)`},
		{`{"name": "a", "conditions": {}, "time_window_minutes": -1}`, "time_window_minutes", "time_window_minutes: must not be negative"},
		{`{"name": "a", "conditions": {}, "max_triggers_per_hour": -5}`, "max_triggers_per_hour", "max_triggers_per_hour: must not be negative"},
		{`{"name": "a", "conditions": {}, "max_triggers_per_hour": 0}`, "max_triggers_per_hour", "max_triggers_per_hour: must be at least 1"},
		{`{"name": "a", "conditions": {}, "min_count": -1}`, "min_count", "min_count: must not be negative"},
		{`{"name": "a", "conditions": {}, "min_count": 3}`, "time_window_minutes", "time_window_minutes: must be at least 1 when min_count is above 1"},
		{`{"name": "a", "conditions": {}, "group_by": ["source_host", "hots"]}`, "group_by[1]", "group_by[1]: unknown field"},
		{`{"name": "a", "conditions": {}, "group_by": ["host", "host"]}`, "group_by[1]", `group_by[1]: "host" is listed twice`},
		{`{"name": "a", "conditions": {}, "priority": 1}`, "priority", "priority: unknown field"},
		{`{"name": "a", "conditions": {}, "min_count": "3"}`, "min_count", "min_count: must be a number"},
	} {
		t.Run(tt.msg, func(t *testing.T) {
			w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/triggers", key: "rules", body: tt.body})
			m := requireError(t, w, http.StatusBadRequest, tt.field, tt.msg)
			require.Contains(t, m["error"], tt.msg)
			if tt.field == "conditions.metadata.cpu_usage.$gtt" || tt.field == "conditions.title.$regex" {
				require.Equal(t, tt.msg, m["error"], "the compiler's message as it is")
			}
		})
	}
	w := e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers", key: "reader"})
	require.JSONEq(t, `{"triggers": [], "count": 0}`, w.Body.String(), "nothing was stored")
	w = e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers/abc", key: "reader"})
	requireError(t, w, http.StatusBadRequest, "id", "id: must be a positive integer trigger rule id")
	w = e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers?active=maybe", key: "reader"})
	requireError(t, w, http.StatusBadRequest, "active", "active: must be true or false")
}

func TestRuleScopes(t *testing.T) {
	e, _ := newRulesEnv(t)
	id := createRule(t, e, seedRule)
	rule := fmt.Sprintf("/api/v1/rules/triggers/%d", id)
	for _, tt := range []struct {
		method, path, body, key, scope string
	}{
		{http.MethodPost, "/api/v1/rules/triggers", seedRule, "reader", "rules:write"},
		{http.MethodPost, "/api/v1/rules/triggers", seedRule, "writer", "rules:write"},
		{http.MethodPut, rule, seedRule, "reader", "rules:write"},
		{http.MethodDelete, rule, "", "reader", "rules:write"},
		{http.MethodPost, "/api/v1/rules/responses", fmt.Sprintf(seedTemplate, id), "reader", "rules:write"},
		{http.MethodPut, "/api/v1/rules/responses/1", fmt.Sprintf(seedTemplate, id), "reader", "rules:write"},
		{http.MethodDelete, "/api/v1/rules/responses/1", "", "reader", "rules:write"},
		{http.MethodGet, "/api/v1/rules/triggers", "", "rules", "events:read"},
		{http.MethodGet, rule, "", "rules", "events:read"},
		{http.MethodGet, "/api/v1/rules/responses", "", "rules", "events:read"},
		{http.MethodGet, "/api/v1/rules/responses/1", "", "rules", "events:read"},
		{http.MethodGet, "/api/v1/rules/executions", "", "rules", "events:read"},
		{http.MethodGet, "/api/v1/rules/executions/1", "", "rules", "events:read"},
		{http.MethodPost, rule + "/test", `{"event": {}}`, "rules", "events:read"},
	} {
		t.Run(tt.method+" "+tt.path+" "+tt.key, func(t *testing.T) {
			w := e.do(req{method: tt.method, path: tt.path, key: tt.key, body: tt.body})
			require.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
			require.Equal(t, tt.scope, decodeBody(t, w)["scope"])
		})
	}
	w := e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers"})
	require.Equal(t, http.StatusUnauthorized, w.Code)
	w = e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers", key: "admin"})
	require.Equal(t, http.StatusOK, w.Code, "admin has every scope")
}

func TestRulesNotServedWithoutStore(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: http.MethodGet, path: "/api/v1/rules/triggers", key: "admin"})
	requireError(t, w, http.StatusNotFound, "", "no such endpoint")
}

func TestResponseTemplates(t *testing.T) {
	e, _ := newRulesEnv(t)
	rule := createRule(t, e, seedRule)

	w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/responses", key: "rules", body: fmt.Sprintf(seedTemplate, rule)})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var created ResponseTemplate
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &created))
	require.NotZero(t, created.ID)
	require.JSONEq(t, fmt.Sprintf(`{"id": %d, "name": "CPU Investigation Playbook", "type": "investigation", "trigger_rule_id": %d,
		"actions": [{"type": "diagnostic", "script": "check_processes"},
			{"type": "remediation", "script": "kill_high_cpu_processes", "approval_required": true},
			{"type": "notification", "channels": ["email", "slack"]}],
		"approval_required": true, "rollback_supported": false, "max_execution_time_minutes": 15, "active": true,
		"created_at": "2026-11-27T10:00:00Z"}`, created.ID, rule), w.Body.String())

	path := fmt.Sprintf("/api/v1/rules/responses/%d", created.ID)
	w = e.do(req{method: http.MethodGet, path: path, key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, mustJSON(t, created), w.Body.String())
	w = e.do(req{method: http.MethodGet, path: "/api/v1/rules/responses", key: "reader"})
	require.JSONEq(t, `{"responses": [`+mustJSON(t, created)+`], "count": 1}`, w.Body.String())

	w = e.do(req{method: http.MethodPost, path: "/api/v1/rules/responses", key: "rules", body: fmt.Sprintf(seedTemplate, rule)})
	requireError(t, w, http.StatusConflict, "name", `name: a response template named "CPU Investigation Playbook" exists`)

	w = e.do(req{method: http.MethodPut, path: path, key: "rules", body: fmt.Sprintf(`{"name": "CPU Playbook", "type": "escalation",
		"trigger_rule_id": %d, "actions": [{"type": "notification", "channels": ["pager"]}]}`, rule)})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var up ResponseTemplate
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &up))
	require.Equal(t, "escalation", up.Type)
	require.Equal(t, 30, up.MaxExecutionTimeMinutes, "default")
	require.Equal(t, []Action{{Type: "notification", Channels: []string{"pager"}}}, up.Actions)
	w = e.do(req{method: http.MethodPut, path: path, key: "rules", body: fmt.Sprintf(seedTemplate, 77)})
	requireError(t, w, http.StatusBadRequest, "trigger_rule_id", "trigger_rule_id: no trigger rule 77")
	w = e.do(req{method: http.MethodPut, path: "/api/v1/rules/responses/999", key: "rules", body: fmt.Sprintf(seedTemplate, rule)})
	requireError(t, w, http.StatusNotFound, "", "no response template 999")

	w = e.do(req{method: http.MethodDelete, path: path, key: "rules"})
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	w = e.do(req{method: http.MethodGet, path: path, key: "reader"})
	requireError(t, w, http.StatusNotFound, "", fmt.Sprintf("no response template %d", created.ID))

	t.Run("validation", func(t *testing.T) {
		for _, tt := range []struct {
			body, field, msg string
		}{
			{`{"name": "t", "type": "investigation", "actions": [{"type": "diagnostic", "script": "x"}]}`,
				"trigger_rule_id", "trigger_rule_id: required"},
			{`{"name": "t", "type": "investigation", "trigger_rule_id": 99, "actions": [{"type": "diagnostic", "script": "x"}]}`,
				"trigger_rule_id", "trigger_rule_id: no trigger rule 99"},
			{`{"name": "t", "type": "fix", "trigger_rule_id": RULE, "actions": [{"type": "diagnostic", "script": "x"}]}`,
				"type", `type: unknown template type "fix" (want investigation, remediation or escalation)`},
			{`{"name": "t", "type": "investigation", "trigger_rule_id": RULE, "actions": []}`,
				"actions", "actions: required: at least one step"},
			{`{"name": "t", "type": "investigation", "trigger_rule_id": RULE, "actions": [{"type": "reboot", "script": "x"}]}`,
				"actions[0].type", `actions[0].type: unknown action type "reboot" (want diagnostic, remediation or notification)`},
			{`{"name": "t", "type": "investigation", "trigger_rule_id": RULE, "actions": [{"type": "diagnostic", "script": "x"}, {"type": "remediation"}]}`,
				"actions[1].script", "actions[1].script: a remediation step needs a script"},
			{`{"name": "t", "type": "investigation", "trigger_rule_id": RULE, "actions": [{"type": "notification"}]}`,
				"actions[0].channels", "actions[0].channels: a notification step needs channels"},
			{`{"name": "t", "type": "investigation", "trigger_rule_id": RULE, "actions": [{"type": "notification", "channels": ["ops"], "when": 1}]}`,
				"when", "when: unknown field"},
			{`{"name": "t", "type": "investigation", "trigger_rule_id": RULE, "actions": [{"type": "diagnostic", "script": "x"}], "max_execution_time_minutes": -1}`,
				"max_execution_time_minutes", "max_execution_time_minutes: must not be negative"},
		} {
			t.Run(tt.msg, func(t *testing.T) {
				body := strings.ReplaceAll(tt.body, "RULE", fmt.Sprint(rule))
				w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/responses", key: "rules", body: body})
				m := requireError(t, w, http.StatusBadRequest, tt.field, tt.msg)
				require.Equal(t, tt.msg, m["error"])
			})
		}
	})
}

func TestRuleTest(t *testing.T) {
	e, st := newRulesEnv(t)
	id := createRule(t, e, seedRule)
	path := fmt.Sprintf("/api/v1/rules/triggers/%d/test", id)
	event := func(cpu string) string {
		return `{"event": {"source": "nagios", "event_type": "threshold_breach", "severity": "high",
			"host": "web-server-01", "message": "CPU usage high", "metadata": {"cpu_usage": ` + cpu + `}}}`
	}
	before, err := st.TriggerRule(t.Context(), id)
	require.NoError(t, err)

	w := e.do(req{method: http.MethodPost, path: path, key: "reader", body: event("95")})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"matched": true, "reason": "all conditions hold"}`, w.Body.String())

	w = e.do(req{method: http.MethodPost, path: path, key: "reader", body: event("85")})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"matched": false, "reason": "metadata.cpu_usage: 85 is not > 90"}`, w.Body.String())

	// The severity is normalized as the pipeline does: "warning" is medium.
	w = e.do(req{method: http.MethodPost, path: path, key: "reader", body: `{"event": {"event_type": "threshold_breach",
		"severity": "warning", "message": "CPU", "metadata": {"cpu_usage": 99}}}`})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"matched": false, "reason": "severity: \"medium\" is not in [\"critical\", \"high\"]"}`, w.Body.String())

	t.Run("severity threshold", func(t *testing.T) {
		strict := createRule(t, e, `{"name": "strict", "conditions": {}, "severity_threshold": "critical"}`)
		w := e.do(req{method: http.MethodPost, path: fmt.Sprintf("/api/v1/rules/triggers/%d/test", strict), key: "reader", body: event("95")})
		require.JSONEq(t, `{"matched": false, "reason": "severity_threshold: \"high\" is below \"critical\""}`, w.Body.String())
	})
	t.Run("bad events", func(t *testing.T) {
		for _, tt := range []struct{ body, field, msg string }{
			{`{}`, "event", "event: required"},
			{`{"event": [1]}`, "event", "event: must be a JSON object: one webhook event"},
			{`{"event": {"message": "x", "severity": "urgent"}}`, "event.severity", `event.severity: `},
			{`{"event": {"severity": "high"}}`, "event.message", `event.message: required field is missing or empty`},
			{`{"event": {}, "since": "2026-11-27T00:00:00Z"}`, "event", "event: give either an event or since and until"},
			{`{"events": {}}`, "events", "events: unknown field"},
		} {
			w := e.do(req{method: http.MethodPost, path: path, key: "reader", body: tt.body})
			requireError(t, w, http.StatusBadRequest, tt.field, tt.msg)
		}
	})
	t.Run("backtest", func(t *testing.T) {
		w := e.do(req{method: http.MethodPost, path: path, key: "reader", body: `{"since": "2026-11-26T00:00:00Z", "until": "2026-11-27T00:00:00Z"}`})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.JSONEq(t, `{"events": 0, "matched": 0, "occurrences": 0, "firings": 0, "suppressed": 0,
			"first_firing_at": null, "last_firing_at": null, "truncated": false}`, w.Body.String(), "no stored events (see TestBacktest)")
	})
	t.Run("unknown rule", func(t *testing.T) {
		w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/triggers/999/test", key: "reader", body: event("95")})
		requireError(t, w, http.StatusNotFound, "", "no trigger rule 999")
	})

	after, err := st.TriggerRule(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, before, after, "no state change")
	xs, err := st.RuleExecutions(t.Context(), store.RuleExecutionQuery{})
	require.NoError(t, err)
	require.Empty(t, xs, "no firing")
	require.Zero(t, e.submit.calls, "nothing submitted")
}

func TestRuleExecutions(t *testing.T) {
	e, st := newRulesEnv(t)
	rule := createRule(t, e, seedRule)
	other := createRule(t, e, `{"name": "Other", "conditions": {}}`)
	var tmpl ResponseTemplate
	w := e.do(req{method: http.MethodPost, path: "/api/v1/rules/responses", key: "rules", body: fmt.Sprintf(seedTemplate, rule)})
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tmpl))

	t0 := testNow.Add(-time.Hour)
	done := t0.Add(2 * time.Minute)
	x1, err := st.InsertRuleExecution(t.Context(), store.RuleExecution{TriggerRuleID: rule, ResponseTemplateID: &tmpl.ID,
		TriggeringEventID: 7340032, Status: "completed", StartedAt: t0, CompletedAt: &done})
	require.NoError(t, err)
	x2, err := st.InsertRuleExecution(t.Context(), store.RuleExecution{TriggerRuleID: rule, TriggeringEventID: 7340033,
		Status: "pending", StartedAt: t0.Add(10 * time.Minute)})
	require.NoError(t, err)
	x3, err := st.InsertRuleExecution(t.Context(), store.RuleExecution{TriggerRuleID: other, TriggeringEventID: 7340034,
		Status: "pending", StartedAt: t0.Add(20 * time.Minute)})
	require.NoError(t, err)

	ids := func(query string) []int64 {
		t.Helper()
		w := e.do(req{method: http.MethodGet, path: "/api/v1/rules/executions" + query, key: "reader"})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var l RuleExecutionList
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &l))
		out := []int64{}
		for _, x := range l.Executions {
			out = append(out, x.ID)
		}
		return out
	}
	require.Equal(t, []int64{x3.ID, x2.ID, x1.ID}, ids(""))
	require.Equal(t, []int64{x2.ID, x1.ID}, ids(fmt.Sprintf("?rule_id=%d", rule)))
	require.Equal(t, []int64{x3.ID, x2.ID}, ids("?status=pending"))
	require.Equal(t, []int64{x2.ID}, ids(fmt.Sprintf("?rule_id=%d&status=pending", rule)))
	require.Equal(t, []int64{x3.ID, x2.ID}, ids("?since="+t0.Add(time.Minute).Format(time.RFC3339)))
	require.Equal(t, []int64{x3.ID}, ids("?limit=1"))

	w = e.do(req{method: http.MethodGet, path: fmt.Sprintf("/api/v1/rules/executions/%d", x1.ID), key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, fmt.Sprintf(`{"id": %d, "trigger_rule_id": %d, "response_template_id": %d, "triggering_event_id": 7340032,
		"execution_status": "completed", "started_at": "2026-11-27T09:00:00Z", "completed_at": "2026-11-27T09:02:00Z"}`,
		x1.ID, rule, tmpl.ID), w.Body.String())
	w = e.do(req{method: http.MethodGet, path: fmt.Sprintf("/api/v1/rules/executions/%d", x2.ID), key: "reader"})
	require.JSONEq(t, fmt.Sprintf(`{"id": %d, "trigger_rule_id": %d, "response_template_id": null, "triggering_event_id": 7340033,
		"execution_status": "pending", "started_at": "2026-11-27T09:10:00Z", "completed_at": null}`, x2.ID, rule), w.Body.String())
	w = e.do(req{method: http.MethodGet, path: "/api/v1/rules/executions/999", key: "reader"})
	requireError(t, w, http.StatusNotFound, "", "no rule execution 999")

	for _, tt := range []struct{ query, field, msg string }{
		{"?rule_id=x", "rule_id", "rule_id: must be a positive integer"},
		{"?status=done", "status", `status: unknown status "done"`},
		{"?since=yesterday", "since", "since: must be an RFC 3339 time"},
		{"?limit=0", "limit", "limit: must be an integer from 1 to 1000"},
		{"?rule=1", "rule", "rule: unknown query parameter"},
	} {
		w := e.do(req{method: http.MethodGet, path: "/api/v1/rules/executions" + tt.query, key: "reader"})
		requireError(t, w, http.StatusBadRequest, tt.field, tt.msg)
	}
}
