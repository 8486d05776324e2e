package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// doAs is ts.do with another bearer token (an API key).
func (ts *testServer) doAs(token, method, url, body string, out any) int {
	ts.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(ts.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	if out != nil && len(data) > 0 {
		require.NoError(ts.t, json.Unmarshal(data, out), string(data))
	}
	return resp.StatusCode
}

// createKey creates an API key with scopes through the events API and
// returns its id and secret.
func (ts *testServer) createKey(name string, scopes ...string) (id, secret string) {
	ts.t.Helper()
	b, err := json.Marshal(map[string]any{"name": name, "scopes": scopes})
	require.NoError(ts.t, err)
	var k struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	require.Equal(ts.t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/keys", string(b), &k))
	require.NotEmpty(ts.t, k.Key)
	require.NotEmpty(ts.t, k.ID)
	return k.ID, k.Key
}

// actionIDs maps the action definitions' names to their ids.
func (ts *testServer) actionIDs() map[string]int64 {
	ts.t.Helper()
	var l struct {
		Actions []struct {
			ID   int64  `json:"id"`
			Name string `json:"action_name"`
		} `json:"actions"`
	}
	require.Equal(ts.t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/actions", "", &l))
	out := map[string]int64{}
	for _, a := range l.Actions {
		out[a.Name] = a.ID
	}
	return out
}

// waitDecision polls GET /decisions?event_id= until the event has a
// decision (a firing's decision is made asynchronously).
func (ts *testServer) waitDecision(eventID int64) store.Decision {
	ts.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l struct {
			Decisions []store.Decision `json:"decisions"`
		}
		require.Equal(ts.t, http.StatusOK, ts.auto("GET", fmt.Sprintf("/api/v1/autonomous/decisions?event_id=%d", eventID), "", &l))
		if len(l.Decisions) > 0 {
			return l.Decisions[0]
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("event %d has no decision after 30s", eventID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIncident polls the event until it has joined an incident (events
// join them asynchronously) and returns the incident's id.
func (ts *testServer) waitIncident(eventID int64) any {
	ts.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if id := ts.waitEvent(eventID)["incident_id"]; id != nil {
			return id
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("event %d joined no incident within 30s", eventID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setupStory defines the story's actions, rule and template on ts, and
// returns the rule's id and the actions' ids.
func (ts *testServer) setupStory() (int64, map[string]int64) {
	ts.t.Helper()
	for _, a := range storyActions(ts.t) {
		require.Equal(ts.t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/actions", a, nil), a)
	}
	var rule ruleAnswer
	require.Equal(ts.t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers", seedRule, &rule))
	require.Equal(ts.t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/responses", fmt.Sprintf(storyTemplate, rule.ID, ""), nil))
	return rule.ID, ts.actionIDs()
}

// cpuEvent posts the story's CPU event (it fires the seed's rule).
func (ts *testServer) cpuEvent(host, source string) int64 {
	ts.t.Helper()
	ids := ts.post(`{"source": "` + source + `", "event_type": "threshold_breach", "severity": "critical", "host": "` + host + `",
		"title": "CPU saturated", "message": "CPU usage above threshold", "metadata": {"cpu_usage": 97}}`)
	require.Len(ts.t, ids, 1)
	return ids[0]
}

// storyServer starts a server with the story's policy, each source its
// own incident, and the marks file of the story's scripts.
func storyServer(t *testing.T, policyYAML string) (*testServer, string) {
	t.Helper()
	marks := filepath.Join(t.TempDir(), "marks")
	t.Setenv("REFLEX_TEST_MARKS", marks)
	cfg := testConfig(t)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(policyYAML), 0o600))
	cfg.AutonomousPolicy = pol
	cfg.IncidentGroupBy = "source"
	return start(t, cfg), marks
}

// readArgv reads what testdata/autonomous/argv.sh recorded: nil when it
// did not run.
func readArgv(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	count, rest, ok := bytes.Cut(b, []byte("\n"))
	require.True(t, ok, "argv file %q", b)
	args := []string{}
	if len(rest) > 0 {
		require.Equal(t, byte(0), rest[len(rest)-1], "argv file %q", b)
		for _, a := range bytes.Split(rest[:len(rest)-1], []byte{0}) {
			args = append(args, string(a))
		}
	}
	require.Equal(t, string(count), fmt.Sprint(len(args)), "the count the script saw and the arguments it wrote agree")
	return args
}

// TestAutonomousInjection: event fields and parameters such as "; id",
// "$(touch ...)", backticks, newlines and a leading "-" never reach a
// shell or become options. The action's argv passes the event's title,
// host and a metadata field to a script that records its arguments.
func TestAutonomousInjection(t *testing.T) {
	tmp := t.TempDir()
	argvFile := filepath.Join(tmp, "argv")
	t.Setenv("REFLEX_TEST_ARGV", argvFile)
	cfg := testConfig(t)
	cfg.IncidentGroupBy = "source"
	ts := start(t, cfg)

	script, err := filepath.Abs("testdata/autonomous/argv.sh")
	require.NoError(t, err)
	define := func(name, dash string) int64 {
		ex := map[string]any{"type": "command", "argv": []string{script, "{{.event.title}}", "{{.event.source_host}}", "{{.event.event_data.metadata.arg}}"},
			"env": []string{"REFLEX_TEST_ARGV"}, "timeout": "20s"}
		if dash != "" {
			ex["dash_args"] = dash
		}
		b, err := json.Marshal(map[string]any{"action_name": name, "action_type": "diagnostic", "risk_level": "low", "approval_required": false, "executor": ex})
		require.NoError(t, err)
		var a struct {
			ID int64 `json:"id"`
		}
		require.Equal(t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/actions", string(b), &a), string(b))
		require.NotZero(t, a.ID)
		return a.ID
	}
	refuse := define("record_argv", "")
	separate := define("record_argv_separate", "separate")

	n := 0
	// run posts an event, has it analyzed, and runs action on its
	// decision; it returns the execution's last state.
	run := func(action int64, title, host, arg string) store.Execution {
		t.Helper()
		n++
		if err := os.Remove(argvFile); err != nil && !os.IsNotExist(err) {
			require.NoError(t, err, "the previous run's record")
		}
		b, err := json.Marshal(map[string]any{"source": fmt.Sprintf("probe-%d", n), "event_type": "injection_probe", "severity": "high",
			"host": host, "title": title, "message": "probe", "metadata": map[string]any{"arg": arg}})
		require.NoError(t, err)
		ids := ts.post(string(b))
		require.Len(t, ids, 1)
		ts.waitEvent(ids[0])
		var d AnalyzeAnswerForTest
		code := ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(`{"event_id": %d}`, ids[0]), &d)
		require.Equal(t, http.StatusCreated, code)
		require.Equal(t, ids[0], d.EventID)
		var x struct {
			ExecutionID int64 `json:"execution_id"`
		}
		require.Equal(t, http.StatusAccepted, ts.auto("POST", "/api/v1/autonomous/execute",
			fmt.Sprintf(`{"decision_id": %d, "action_id": %d, "execution_options": {"dry_run": false}}`, d.ID, action), &x))
		seen := ts.watch(x.ExecutionID)
		return seen[len(seen)-1]
	}
	pwned := filepath.Join(tmp, "pwned")
	cases := []struct{ title, host, arg string }{
		{"; id", "web-01", "$(touch " + pwned + "-dollar)"},
		{"`touch " + pwned + "-backtick`", "web-02", "; touch " + pwned + "-semicolon"},
		{"line one\nline two; id", "web-03", "a\nb `id` $(id) | id && id > " + pwned + "-redirect"},
		{"'quoted' \"double\" \\ $HOME *", "web-04", "&& touch " + pwned + "-and"},
	}
	for _, c := range cases {
		x := run(refuse, c.title, c.host, c.arg)
		require.Equal(t, store.ExecCompleted, x.Status, "%+v", x)
		got := readArgv(t, argvFile)
		require.Equal(t, []string{c.title, c.host, c.arg}, got, "each field is exactly one literal argument")
	}
	marks, err := filepath.Glob(pwned + "*")
	require.NoError(t, err)
	require.Empty(t, marks, "no shell ran any of the fields")

	// A value with a leading "-" is refused under the default dash_args:
	// the step fails naming the option problem, the script never runs.
	x := run(refuse, "CPU saturated", "web-05", "--output=/etc/passwd")
	require.NotEqual(t, store.ExecCompleted, x.Status, "%+v", x)
	require.Len(t, x.Steps, 1)
	require.Equal(t, store.StepFailed, x.Steps[0].Status)
	require.Contains(t, x.Steps[0].Error, "refused")
	require.Contains(t, x.Steps[0].Error, `begins with "-"`)
	require.Contains(t, x.Steps[0].Error, "option")
	require.Nil(t, readArgv(t, argvFile), "the script never ran")

	// With dash_args separate it is passed after "--", one argument.
	x = run(separate, "CPU saturated", "web-06", "--output=/etc/passwd")
	require.Equal(t, store.ExecCompleted, x.Status, "%+v", x)
	require.Equal(t, []string{"--", "CPU saturated", "web-06", "--output=/etc/passwd"}, readArgv(t, argvFile))
}

// AnalyzeAnswerForTest is the answer of analyze.
type AnalyzeAnswerForTest struct {
	store.Decision
	Existing bool `json:"existing"`
}

// TestAutonomousAnalyzeAPI: POST /analyze with the seed's payload, on an
// event no rule fired for and on one of a rule; one decision per
// incident; the given context is in the factors; errors; and GET
// /decisions with its timerange.
func TestAutonomousAnalyzeAPI(t *testing.T) {
	ts, _ := storyServer(t, storyPolicy)
	ts.setupStory()
	// A rule-less event (nothing fires for it) and the story's CPU event.
	ids := ts.post(`{"source": "syslog-a", "event_type": "disk_warning", "severity": "high", "host": "db-01", "title": "disk 81% full", "message": "disk usage above 80%"}`)
	require.Len(t, ids, 1)
	lone := ids[0]
	ts.waitIncident(lone)

	seedPayload := `{"event_id": %d, "context": {"business_hours": true, "maintenance_window": true, "system_criticality": "high"}}`
	var a AnalyzeAnswerForTest
	require.Equal(t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(seedPayload, lone), &a))
	require.NotZero(t, a.ID)
	require.False(t, a.Existing)
	require.Equal(t, lone, a.EventID)
	require.Contains(t, []string{store.DecisionInvestigate, store.DecisionAutomate, store.DecisionEscalate, store.DecisionIgnore}, a.DecisionType)
	require.GreaterOrEqual(t, a.Confidence, 0.0)
	require.LessOrEqual(t, a.Confidence, 1.0)
	require.NotEmpty(t, a.Reasoning)
	require.NotNil(t, a.RecommendedActions, "recommended_actions is in the answer")
	require.Nil(t, a.RuleID, "no rule matches the disk event")
	var raw map[string]any
	require.Equal(t, http.StatusOK, ts.auto("GET", fmt.Sprintf("/api/v1/autonomous/decisions/%d", a.ID), "", &raw))
	for _, k := range []string{"id", "decision_type", "confidence_score", "reasoning", "recommended_actions"} {
		require.Contains(t, raw, k)
	}
	// The given context shows in the factors and the reasoning.
	text := a.Reasoning
	for _, f := range a.Factors {
		text += "\n" + f.Name + " " + f.Value + " " + f.Detail
	}
	require.Contains(t, text, "maintenance", a.Reasoning)
	require.Contains(t, strings.ToLower(text), "high", a.Reasoning)
	require.Contains(t, string(a.Context), `"maintenance_window":true`)
	require.Contains(t, string(a.Context), `"system_criticality":"high"`)

	// The same event again: the same decision, 200, existing.
	var again AnalyzeAnswerForTest
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(seedPayload, lone), &again))
	require.True(t, again.Existing)
	require.Equal(t, a.ID, again.ID)

	// An event in no incident (below the incident severity floor): one
	// decision per event all the same.
	ids = ts.post(`{"source": "syslog-b", "event_type": "disk_warning", "severity": "low", "host": "db-02", "title": "disk 61% full", "message": "disk usage above 60%"}`)
	require.Len(t, ids, 1)
	require.Nil(t, ts.waitEvent(ids[0])["incident_id"])
	var first AnalyzeAnswerForTest
	require.Equal(t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(`{"event_id": %d}`, ids[0]), &first))
	require.Nil(t, first.IncidentID)
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(`{"event_id": %d}`, ids[0]), &again))
	require.True(t, again.Existing)
	require.Equal(t, first.ID, again.ID)

	// An event of a rule: the firing decides; analyze of it, and of a
	// second event of the same incident, answers that decision.
	ev1 := ts.cpuEvent("web-01", "prometheus-a")
	fired := ts.waitDecision(ev1)
	require.NotNil(t, fired.RuleID)
	require.Equal(t, "CPU Investigation Playbook", fired.RecommendedActions[0].TemplateName)
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(`{"event_id": %d}`, ev1), &again))
	require.True(t, again.Existing)
	require.Equal(t, fired.ID, again.ID)
	ev2 := ts.cpuEvent("web-01", "prometheus-a")
	require.NotEqual(t, ev1, ev2)
	require.Equal(t, ts.waitIncident(ev1), ts.waitIncident(ev2), "the same source: the same incident")
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(`{"event_id": %d}`, ev2), &again))
	require.True(t, again.Existing, "one decision per incident")
	require.Equal(t, fired.ID, again.ID)
	require.Equal(t, ev1, again.EventID)

	// A new incident with a rule, analyzed by a human before or while
	// the firing decides: 201 or 200, and in both cases the decision has
	// the playbook.
	ev3 := ts.cpuEvent("web-03", "prometheus-c")
	ts.waitEvent(ev3)
	again = AnalyzeAnswerForTest{}
	code := ts.auto("POST", "/api/v1/autonomous/analyze", fmt.Sprintf(`{"event_id": %d}`, ev3), &again)
	require.Contains(t, []int{http.StatusCreated, http.StatusOK}, code)
	require.Equal(t, code == http.StatusOK, again.Existing)
	require.Equal(t, "CPU Investigation Playbook", again.RecommendedActions[0].TemplateName)
	require.NotNil(t, again.RuleID)

	// Errors.
	var e ErrorBodyForTest
	require.Equal(t, http.StatusNotFound, ts.auto("POST", "/api/v1/autonomous/analyze", `{"event_id": 999999}`, &e))
	require.Contains(t, e.Error, "999999")
	require.Equal(t, http.StatusBadRequest, ts.auto("POST", "/api/v1/autonomous/analyze", `{}`, &e))
	require.Contains(t, e.Error, "event_id")
	require.Equal(t, http.StatusBadRequest, ts.auto("POST", "/api/v1/autonomous/analyze", `{"event_id": "x"}`, &e))
	require.Equal(t, http.StatusBadRequest, ts.auto("POST", "/api/v1/autonomous/analyze", `{"event_id": 1, "bogus": 1}`, &e))
	// A context value of the wrong type is the request's fault, on an
	// event without a decision yet.
	ids = ts.post(`{"source": "syslog-z", "event_type": "disk_warning", "severity": "high", "host": "db-09", "title": "disk 95% full", "message": "disk"}`)
	ts.waitIncident(ids[0])
	require.Equal(t, http.StatusBadRequest, ts.auto("POST", "/api/v1/autonomous/analyze",
		fmt.Sprintf(`{"event_id": %d, "context": {"maintenance_window": "yes"}}`, ids[0]), &e), e.Error)
	require.Contains(t, e.Error, "maintenance_window")

	// GET /decisions as in the seed.
	var l struct {
		Decisions []store.Decision `json:"decisions"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", fmt.Sprintf("/api/v1/autonomous/decisions?event_id=%d&timerange=7d", lone), "", &l))
	require.Len(t, l.Decisions, 1)
	require.Equal(t, a.ID, l.Decisions[0].ID)
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/decisions?timerange=7d", "", &l))
	require.Len(t, l.Decisions, 4, "one decision per incident or event; the refused analyze made none")
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/decisions?event_id=999999&timerange=1h", "", &l))
	require.NotNil(t, l.Decisions, `an empty list is [], not null`)
	require.Empty(t, l.Decisions)
	for _, q := range []string{"timerange=bogus", "timerange=-1h", "event_id=x", "event_id=0", "nope=1"} {
		require.Equal(t, http.StatusBadRequest, ts.auto("GET", "/api/v1/autonomous/decisions?"+q, "", &e), q)
		require.NotEmpty(t, e.Error, q)
	}
}

// TestAutonomousKillSwitchAndMetrics: POST /pause holds all new
// automation (the decision of a firing is still recorded, escalated with
// a policy factor saying paused, and nothing runs), a manual execute is
// refused with 409; POST /resume lets the next firing run; both are in
// the audit log. Then the performance tracker and /metrics.
func TestAutonomousKillSwitchAndMetrics(t *testing.T) {
	ts, marks := storyServer(t, storyPolicy)
	_, ids := ts.setupStory()

	var st struct {
		Paused bool   `json:"paused"`
		By     string `json:"by"`
		Reason string `json:"reason"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/status", "", &st))
	require.False(t, st.Paused)
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/pause", `{"reason": "release freeze"}`, &st))
	require.True(t, st.Paused)
	st.Paused = false
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/status", "", &st))
	require.True(t, st.Paused)
	require.Equal(t, "release freeze", st.Reason)
	require.NotEmpty(t, st.By)

	ev1 := ts.cpuEvent("web-01", "prometheus-a")
	d1 := ts.waitDecision(ev1)
	require.Equal(t, store.DecisionEscalate, d1.DecisionType, d1.Reasoning)
	require.Equal(t, "CPU Investigation Playbook", d1.RecommendedActions[0].TemplateName, "the decision still says what it would run")
	var policyFactor *store.Factor
	for i, f := range d1.Factors {
		if f.Name == "policy" {
			policyFactor = &d1.Factors[i]
		}
	}
	require.NotNil(t, policyFactor, d1.Reasoning)
	require.Contains(t, policyFactor.Detail, "paused", d1.Reasoning)
	require.Contains(t, d1.Reasoning, "release freeze")

	// A human's execute is refused while paused, and nothing ran.
	var e ErrorBodyForTest
	require.Equal(t, http.StatusConflict, ts.auto("POST", "/api/v1/autonomous/execute", fmt.Sprintf(`{"decision_id": %d}`, d1.ID), &e))
	require.Contains(t, e.Error, "paused")
	require.Equal(t, http.StatusConflict, ts.auto("POST", "/api/v1/autonomous/execute",
		fmt.Sprintf(`{"decision_id": %d, "action_id": %d}`, d1.ID, ids["check_processes"]), &e))
	// A dry run is still allowed: it runs nothing.
	var dry struct {
		ExecutionID int64 `json:"execution_id"`
		DryRun      bool  `json:"dry_run"`
	}
	require.Equal(t, http.StatusAccepted, ts.auto("POST", "/api/v1/autonomous/execute",
		fmt.Sprintf(`{"decision_id": %d, "execution_options": {"dry_run": true}}`, d1.ID), &dry))
	require.True(t, dry.DryRun)
	ts.watch(dry.ExecutionID)
	var l struct {
		Approvals []store.Approval `json:"approvals"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/approvals", "", &l))
	require.Empty(t, l.Approvals)
	require.Nil(t, readMarks(t, marks), "nothing ran while paused")

	// Resumed: the next firing runs by itself.
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/resume", "", &st))
	require.False(t, st.Paused)
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/status", "", &st))
	require.False(t, st.Paused)
	ev2 := ts.cpuEvent("web-02", "prometheus-b")
	ap := ts.waitApproval(0)
	d2 := ts.waitDecision(ev2)
	require.Equal(t, d2.ID, ap.DecisionID)
	require.Equal(t, store.DecisionInvestigate, d2.DecisionType, d2.Reasoning)
	require.Equal(t, []string{"check web-02", "drain", "throttle"}, readMarks(t, marks))

	// The audit log has the pause (with its reason) and the resume.
	var page struct {
		Records []struct {
			Action     string         `json:"action"`
			Actor      string         `json:"actor"`
			Parameters map[string]any `json:"parameters"`
		} `json:"records"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/audit?action=pause", "", &page))
	require.Len(t, page.Records, 1)
	require.Equal(t, "release freeze", page.Records[0].Parameters["reason"])
	require.NotEmpty(t, page.Records[0].Actor)
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/audit?action=resume", "", &page))
	require.Len(t, page.Records, 1)

	// The approval runs the kill: one successful outcome.
	var tok struct {
		Token string `json:"approval_token"`
	}
	require.Equal(t, http.StatusOK, ts.auto("POST", fmt.Sprintf("/api/v1/autonomous/approvals/%d/approve", ap.ID), `{}`, &tok))
	var started struct {
		ExecutionID int64 `json:"execution_id"`
	}
	require.Equal(t, http.StatusAccepted, ts.auto("POST", "/api/v1/autonomous/execute",
		fmt.Sprintf(`{"decision_id": %d, "action_id": %d, "approval_token": %q}`, d2.ID, ap.ActionID, tok.Token), &started))
	seen := ts.watch(started.ExecutionID)
	require.Equal(t, store.ExecCompleted, seen[len(seen)-1].Status)
	// A third firing waits for its approval.
	ts.cpuEvent("web-03", "prometheus-c")
	ts.waitApproval(ap.ID)

	var perf struct {
		Decisions        int            `json:"decisions"`
		ByType           map[string]int `json:"by_type"`
		AutomationRate   *float64       `json:"automation_rate"`
		SuccessRate      *float64       `json:"success_rate"`
		Outcomes         map[string]int `json:"outcomes"`
		ApprovalsWaiting int            `json:"approvals_waiting"`
		OldestApproval   *float64       `json:"oldest_approval_age_seconds"`
		MTTA             *float64       `json:"mean_time_to_acknowledge_seconds"`
		MTTR             *float64       `json:"mean_time_to_resolve_seconds"`
		Paused           bool           `json:"paused"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/metrics", "", &perf))
	require.Equal(t, 3, perf.Decisions)
	require.Equal(t, map[string]int{store.DecisionEscalate: 1, store.DecisionInvestigate: 2}, perf.ByType)
	require.NotNil(t, perf.AutomationRate)
	require.InDelta(t, 2.0/3, *perf.AutomationRate, 1e-9)
	require.NotNil(t, perf.SuccessRate)
	require.InDelta(t, 1.0, *perf.SuccessRate, 1e-9)
	require.Equal(t, map[string]int{"successful": 1}, perf.Outcomes)
	require.Equal(t, 1, perf.ApprovalsWaiting)
	require.NotNil(t, perf.OldestApproval)
	require.NotNil(t, perf.MTTR)
	require.False(t, perf.Paused)
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/metrics?timerange=1h", "", &perf))
	require.Equal(t, 3, perf.Decisions)
	require.Equal(t, http.StatusBadRequest, ts.auto("GET", "/api/v1/autonomous/metrics?timerange=soon", "", &e))
	require.Contains(t, e.Error, "timerange")

	// Prometheus, on the autonomous address.
	req, err := http.NewRequest("GET", ts.autonomous+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	text := string(body)
	require.Contains(t, text, `reflex_autonomous_decisions_total{type="escalate"} 1`)
	require.Contains(t, text, `reflex_autonomous_decisions_total{type="investigate"} 2`)
	require.Contains(t, text, `reflex_autonomous_approvals_waiting 1`)
	require.Contains(t, text, `reflex_autonomous_paused 0`)
}

// failoverTemplate is a playbook whose second step is of critical risk.
const failoverTemplate = `{
  "name": "Database Failover",
  "type": "remediation",
  "trigger_rule_id": %d,
  "actions": [
    {"type": "diagnostic", "script": "check_processes", "parameters": {"host": "{{.event.source_host}}"}},
    {"type": "remediation", "script": "failover_database"}
  ]
}`

// TestAutonomousScopesTwoPersonAndTokens: a key without actions:approve
// only reads; under a two-person policy the key that requested a
// critical step cannot approve it, another key can; a token presented
// for another action runs nothing and is spent.
func TestAutonomousScopesTwoPersonAndTokens(t *testing.T) {
	ts, marks := storyServer(t, "risk_levels:\n  critical: {two_person: true}\n")
	dir, err := filepath.Abs("testdata/autonomous")
	require.NoError(t, err)
	for _, a := range []string{
		`{"action_name": "check_processes", "action_type": "diagnostic", "risk_level": "low", "approval_required": false,
		  "executor": {"type": "command", "argv": ["` + dir + `/check_processes.sh", "{{.params.host}}"], "env": ["REFLEX_TEST_MARKS"], "timeout": "20s"}}`,
		`{"action_name": "failover_database", "action_type": "remediation", "risk_level": "critical", "approval_required": true,
		  "executor": {"type": "command", "argv": ["` + dir + `/mark.sh", "failover"], "env": ["REFLEX_TEST_MARKS"], "timeout": "20s"}}`,
	} {
		require.Equal(t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/actions", a, nil), a)
	}
	var rule ruleAnswer
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers",
		`{"name": "Database down", "conditions": {"event_type": "db_down"}, "max_triggers_per_hour": 100}`, &rule))
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/responses", fmt.Sprintf(failoverTemplate, rule.ID), nil))
	ids := ts.actionIDs()

	keyA, secretA := ts.createKey("operator-a", "actions:approve", "events:read")
	keyB, secretB := ts.createKey("operator-b", "actions:approve", "events:read")
	_, reader := ts.createKey("dashboard", "events:read")
	require.NotEqual(t, keyA, keyB)

	posted := ts.post(`{"source": "pg-monitor", "event_type": "db_down", "severity": "critical", "host": "db-01", "title": "primary down", "message": "no answer on 5432"}`)
	require.Len(t, posted, 1)
	d := ts.waitDecision(posted[0])
	require.Equal(t, store.DecisionEscalate, d.DecisionType, "the default threshold holds a new template: %s", d.Reasoning)
	require.Nil(t, readMarks(t, marks))

	// Key A asks for the whole plan: the diagnostic runs, the critical
	// step waits for approval, requested by A.
	var x struct {
		ExecutionID int64 `json:"execution_id"`
	}
	require.Equal(t, http.StatusAccepted, ts.doAs(secretA, "POST", ts.autonomous+"/api/v1/autonomous/execute", fmt.Sprintf(`{"decision_id": %d}`, d.ID), &x))
	ap := ts.waitApproval(0)
	require.Equal(t, x.ExecutionID, *ap.ExecutionID)
	require.Equal(t, "failover_database", ap.ActionName)
	require.Equal(t, "critical", ap.RiskLevel)
	require.Equal(t, keyA, ap.RequestedBy)
	require.True(t, ap.TwoPerson)
	require.Equal(t, []string{"check db-01"}, readMarks(t, marks))

	// The reader reads, and is refused everything that acts.
	for _, p := range []string{"/api/v1/autonomous/approvals", "/api/v1/autonomous/decisions?timerange=7d", fmt.Sprintf("/api/v1/autonomous/decisions/%d", d.ID),
		"/api/v1/autonomous/status", "/api/v1/autonomous/metrics", "/api/v1/audit", fmt.Sprintf("/api/v1/autonomous/executions/%d", x.ExecutionID)} {
		require.Equal(t, http.StatusOK, ts.doAs(reader, "GET", ts.autonomous+p, "", nil), p)
	}
	var e ErrorBodyForTest
	for p, body := range map[string]string{
		fmt.Sprintf("/api/v1/autonomous/approvals/%d/approve", ap.ID): `{}`,
		fmt.Sprintf("/api/v1/autonomous/approvals/%d/reject", ap.ID):  `{}`,
		"/api/v1/autonomous/execute":                                  fmt.Sprintf(`{"decision_id": %d, "action_id": %d}`, d.ID, ids["check_processes"]),
		"/api/v1/autonomous/feedback":                                 fmt.Sprintf(`{"decision_id": %d, "feedback": "helpful"}`, d.ID),
		"/api/v1/autonomous/analyze":                                  fmt.Sprintf(`{"event_id": %d}`, posted[0]),
		"/api/v1/autonomous/pause":                                    `{"reason": "x"}`,
		"/api/v1/autonomous/resume":                                   ``,
	} {
		e = ErrorBodyForTest{}
		require.Equal(t, http.StatusForbidden, ts.doAs(reader, "POST", ts.autonomous+p, body, &e), p)
		require.Contains(t, e.Error, "actions:approve", p)
	}
	var st struct {
		Paused bool `json:"paused"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/status", "", &st))
	require.False(t, st.Paused)
	require.Equal(t, []string{"check db-01"}, readMarks(t, marks), "the reader ran nothing")

	// Two people: A requested, A cannot approve; B can.
	require.Equal(t, http.StatusForbidden, ts.doAs(secretA, "POST", ts.autonomous+fmt.Sprintf("/api/v1/autonomous/approvals/%d/approve", ap.ID), `{}`, &e))
	require.NotEmpty(t, e.Error)
	var tok struct {
		Token    string         `json:"approval_token"`
		Approval store.Approval `json:"approval"`
	}
	require.Equal(t, http.StatusOK, ts.doAs(secretB, "POST", ts.autonomous+fmt.Sprintf("/api/v1/autonomous/approvals/%d/approve", ap.ID), `{"comment": "second pair of eyes"}`, &tok))
	require.NotEmpty(t, tok.Token)
	require.Equal(t, keyB, tok.Approval.DecidedBy)

	// The token presented for another action: 403, nothing runs.
	require.Equal(t, http.StatusForbidden, ts.doAs(secretB, "POST", ts.autonomous+"/api/v1/autonomous/execute",
		fmt.Sprintf(`{"decision_id": %d, "action_id": %d, "approval_token": %q}`, d.ID, ids["check_processes"], tok.Token), &e))
	require.Equal(t, []string{"check db-01"}, readMarks(t, marks))
	// It is then spent: its own action refuses it too.
	code := ts.doAs(secretB, "POST", ts.autonomous+"/api/v1/autonomous/execute",
		fmt.Sprintf(`{"decision_id": %d, "action_id": %d, "approval_token": %q}`, d.ID, ids["failover_database"], tok.Token), &e)
	require.Contains(t, []int{http.StatusConflict, http.StatusForbidden}, code, e.Error)
	require.Equal(t, []string{"check db-01"}, readMarks(t, marks), "a token tried on another action is spent")
	var ex store.Execution
	require.Equal(t, http.StatusOK, ts.auto("GET", fmt.Sprintf("/api/v1/autonomous/executions/%d", x.ExecutionID), "", &ex))
	require.Equal(t, store.StepWaitingApproval, ex.Steps[1].Status, "the step still waits")
}
