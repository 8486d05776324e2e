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

// setupStory defines the story's actions, rule and template on ts, and
// returns the rule's id and the actions' ids.
func (ts *testServer) setupStory() (int64, map[string]int64) {
	ts.t.Helper()
	for _, a := range storyActions(ts.t) {
		require.Equal(ts.t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/actions", a, nil), a)
	}
	var rule ruleAnswer
	require.Equal(ts.t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers", seedRule, &rule))
	require.Equal(ts.t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/responses", fmt.Sprintf(storyTemplate, rule.ID), nil))
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
