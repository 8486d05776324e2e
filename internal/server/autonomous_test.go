package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// storyActions are the action definitions of the story: the scripts of
// testdata/autonomous, which record what ran in $REFLEX_TEST_MARKS.
func storyActions(t *testing.T) []string {
	dir, err := filepath.Abs("testdata/autonomous")
	require.NoError(t, err)
	cmd := func(script string, args ...string) string {
		argv := append([]string{filepath.Join(dir, script)}, args...)
		b, err := json.Marshal(map[string]any{"type": "command", "argv": argv, "env": []string{"REFLEX_TEST_MARKS"}, "timeout": "20s"})
		require.NoError(t, err)
		return string(b)
	}
	return []string{
		`{"action_name": "check_processes", "action_type": "diagnostic", "risk_level": "low", "approval_required": false,
		  "executor": ` + cmd("check_processes.sh", "{{.params.host}}") + `}`,
		`{"action_name": "undrain_traffic", "action_type": "remediation", "risk_level": "low", "approval_required": false,
		  "executor": ` + cmd("mark.sh", "undrain") + `}`,
		`{"action_name": "drain_traffic", "action_type": "remediation", "risk_level": "low", "approval_required": false,
		  "rollback_action": "undrain_traffic", "executor": ` + cmd("mark.sh", "drain") + `}`,
		`{"action_name": "unthrottle_cpu", "action_type": "remediation", "risk_level": "low", "approval_required": false,
		  "executor": ` + cmd("mark.sh", "unthrottle") + `}`,
		`{"action_name": "throttle_cpu", "action_type": "remediation", "risk_level": "low", "approval_required": false,
		  "rollback_action": "unthrottle_cpu", "executor": ` + cmd("mark.sh", "throttle") + `}`,
		`{"action_name": "kill_high_cpu_processes", "action_type": "remediation", "risk_level": "high", "approval_required": true,
		  "success_criteria": {"exit_code": 0}, "executor": ` + cmd("kill_cpu.sh", "{{.params.pid}}") + `}`,
	}
}

// storyTemplate is the seed's "CPU Investigation Playbook" with the
// steps of the story: a diagnostic that runs by itself, two low-risk
// remediations with rollbacks, and the approval-required kill of the
// process the diagnostic found; %s is the steps after it (notifyStep or
// none).
const storyTemplate = `{
  "name": "CPU Investigation Playbook",
  "type": "investigation",
  "trigger_rule_id": %d,
  "actions": [
    {"type": "diagnostic", "script": "check_processes", "parameters": {"host": "{{.event.source_host}}"}},
    {"type": "remediation", "script": "drain_traffic"},
    {"type": "remediation", "script": "throttle_cpu"},
    {"type": "remediation", "script": "kill_high_cpu_processes", "approval_required": true,
     "parameters": {"pid": "{{.steps.check_processes.pid}}"}}%s
  ]
}`

// notifyStep is the story's last step: a notification to the receiver
// "ops" of the test's notification policy.
const notifyStep = `,
    {"type": "notification", "channels": ["ops"]}`

// storyPolicy lets low-risk steps run by themselves at any confidence,
// so that the story's first decision runs its diagnostic (a real
// deployment keeps the default 0.8 and lets the template earn it).
const storyPolicy = `risk_levels:
  low: {unattended: true, min_confidence: 0}
`

func (ts *testServer) auto(method, path, body string, out any) int {
	ts.t.Helper()
	return ts.do(method, ts.autonomous+path, body, out)
}

// waitApproval polls the approval queue until an approval of decision
// waits (any decision when 0).
func (ts *testServer) waitApproval(after int64) store.Approval {
	ts.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l struct {
			Approvals []store.Approval `json:"approvals"`
		}
		require.Equal(ts.t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/approvals", "", &l))
		for _, a := range l.Approvals {
			if a.ID > after {
				return a
			}
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("no approval after %d is waiting after 30s", after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ts *testServer) decisionOf(eventID int64) store.Decision {
	ts.t.Helper()
	var l struct {
		Decisions []store.Decision `json:"decisions"`
	}
	require.Equal(ts.t, http.StatusOK, ts.auto("GET", fmt.Sprintf("/api/v1/autonomous/decisions?event_id=%d&timerange=7d", eventID), "", &l))
	require.Len(ts.t, l.Decisions, 1)
	return l.Decisions[0]
}

// watch follows an execution's event stream to its end and returns the
// states it saw.
func (ts *testServer) watch(id int64) []store.Execution {
	ts.t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/autonomous/executions/%d/stream", ts.autonomous, id), nil)
	require.NoError(ts.t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	require.Equal(ts.t, http.StatusOK, resp.StatusCode)
	require.Equal(ts.t, "text/event-stream", resp.Header.Get("Content-Type"))
	var seen []store.Execution
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	ev := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && ev == "execution":
			var x store.Execution
			require.NoError(ts.t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &x))
			seen = append(seen, x)
		case strings.HasPrefix(line, "data: ") && ev == "end":
			return seen
		}
	}
	ts.t.Fatalf("the stream of execution %d ended without an end event: %v", id, sc.Err())
	return nil
}

func readMarks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// TestAutonomousStory is issue 8's story on the embedded default: a CPU
// event fires the "High CPU Alert"; the service decides, with a
// confidence and reasoning, to run the "CPU Investigation Playbook"; the
// diagnostic and the low-risk steps run by themselves; the kill waits for
// approval with the pid the diagnostic found; without a token it is
// refused, with one it runs, a replayed token is refused; feedback
// reaches the rule execution; the next time the kill fails and the
// completed steps roll back in reverse order; the confidence of each
// next decision reflects what happened; and all of it is in an intact
// audit log.
func TestAutonomousStory(t *testing.T) {
	marksFile := filepath.Join(t.TempDir(), "marks")
	t.Setenv("REFLEX_TEST_MARKS", marksFile)
	cfg := testConfig(t)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(storyPolicy), 0o600))
	cfg.AutonomousPolicy = pol
	cfg.IncidentGroupBy = "source" // each run of the story is its own incident
	h := newHook(t)
	cfg.NotificationsFile = policyFile(t, h.srv.URL)
	cfg.OutboundAllow = "127.0.0.1/32"
	var hookMu sync.Mutex
	var notified []string
	go func() {
		for r := range h.reqs {
			hookMu.Lock()
			notified = append(notified, string(r.body))
			hookMu.Unlock()
		}
	}()
	ts := start(t, cfg)

	for _, a := range storyActions(t) {
		var body map[string]any
		require.Equal(t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/actions", a, &body), a)
	}
	var rule ruleAnswer
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers", seedRule, &rule))
	var tmpl struct {
		ID int64 `json:"id"`
	}
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/responses", fmt.Sprintf(storyTemplate, rule.ID, notifyStep), &tmpl))
	var kill struct {
		ID int64 `json:"id"`
	}
	var actionList struct {
		Actions []struct {
			ID   int64  `json:"id"`
			Name string `json:"action_name"`
		} `json:"actions"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/autonomous/actions", "", &actionList))
	for _, a := range actionList.Actions {
		if a.Name == "kill_high_cpu_processes" {
			kill.ID = a.ID
		}
	}
	require.NotZero(t, kill.ID)

	cpu := func(host, source string) int64 {
		ids := ts.post(`{"source": "` + source + `", "event_type": "threshold_breach", "severity": "critical", "host": "` + host + `",
			"title": "CPU saturated", "message": "CPU usage above threshold", "metadata": {"cpu_usage": 97}}`)
		require.Len(t, ids, 1)
		return ids[0]
	}

	// 1. The event fires the rule; the service decides and starts the
	// playbook; the kill waits for approval with the diagnostic's pid.
	ev1 := cpu("web-01", "prometheus-a")
	ap1 := ts.waitApproval(0)
	require.Equal(t, "kill_high_cpu_processes", ap1.ActionName)
	require.Equal(t, map[string]string{"pid": "4242"}, ap1.Parameters)
	require.Equal(t, "high", ap1.RiskLevel)
	require.NotEmpty(t, ap1.Reason)
	require.True(t, ap1.ExpiresAt.After(time.Now()))
	require.NotNil(t, ap1.ExecutionID)

	d1 := ts.decisionOf(ev1)
	require.Equal(t, ap1.DecisionID, d1.ID)
	require.Equal(t, store.DecisionInvestigate, d1.DecisionType)
	require.GreaterOrEqual(t, d1.Confidence, 0.0)
	require.LessOrEqual(t, d1.Confidence, 1.0)
	require.Equal(t, "CPU Investigation Playbook", d1.RecommendedActions[0].TemplateName)
	require.NotNil(t, d1.RuleExecutionID)
	names := map[string]bool{}
	for _, f := range d1.Factors {
		names[f.Name] = true
		require.Contains(t, d1.Reasoning, f.Name, "the reasoning names every factor")
	}
	require.True(t, names["policy"], "the policy's verdict is a factor: %v", names)
	require.Greater(t, len(d1.Factors), 3)

	// The execution is pending once the steps before the approval have
	// all ended (it may read running a moment after the approval shows).
	var x1 store.Execution
	require.Eventually(t, func() bool {
		x1 = store.Execution{}
		require.Equal(t, http.StatusOK, ts.auto("GET", fmt.Sprintf("/api/v1/autonomous/executions/%d", *ap1.ExecutionID), "", &x1))
		return x1.Status == store.ExecPending
	}, 20*time.Second, 10*time.Millisecond, "execution %d never pending", *ap1.ExecutionID)
	require.Len(t, x1.Steps, 5)
	require.Equal(t, store.StepSucceeded, x1.Steps[0].Status)
	require.Contains(t, x1.Steps[0].Output, "stress (pid 4242")
	require.Equal(t, "4242", x1.Steps[0].Outputs["pid"])
	require.Equal(t, store.StepSucceeded, x1.Steps[1].Status)
	require.Equal(t, store.StepSucceeded, x1.Steps[2].Status)
	require.Equal(t, store.StepWaitingApproval, x1.Steps[3].Status)
	require.Equal(t, store.StepPending, x1.Steps[4].Status)
	require.Equal(t, []string{"check web-01", "drain", "throttle"}, readMarks(t, marksFile))

	// 2. Without a token the kill is refused and nothing runs.
	execBody := func(d int64, token string) string {
		return fmt.Sprintf(`{"decision_id": %d, "action_id": %d, "approval_token": %q, "execution_options": {"dry_run": false, "rollback_on_failure": true}}`, d, kill.ID, token)
	}
	var errBody ErrorBodyForTest
	require.Equal(t, http.StatusForbidden, ts.auto("POST", "/api/v1/autonomous/execute", execBody(d1.ID, ""), &errBody))
	require.Contains(t, errBody.Error, "approval")
	require.Equal(t, []string{"check web-01", "drain", "throttle"}, readMarks(t, marksFile))

	// 3. The operator approves; the token runs the waiting step.
	var ok struct {
		Token string `json:"approval_token"`
	}
	require.Equal(t, http.StatusOK, ts.auto("POST", fmt.Sprintf("/api/v1/autonomous/approvals/%d/approve", ap1.ID), `{"comment": "pid 4242 is the runaway stress test"}`, &ok))
	require.True(t, strings.HasPrefix(ok.Token, "rxa_"), ok.Token)
	var started struct {
		ExecutionID int64  `json:"execution_id"`
		Status      string `json:"status"`
	}
	require.Equal(t, http.StatusAccepted, ts.auto("POST", "/api/v1/autonomous/execute", execBody(d1.ID, ok.Token), &started))
	require.Equal(t, *ap1.ExecutionID, started.ExecutionID)
	seen := ts.watch(started.ExecutionID)
	last := seen[len(seen)-1]
	require.Equal(t, store.ExecCompleted, last.Status)
	require.Equal(t, store.StepSucceeded, last.Steps[3].Status)
	require.NotNil(t, last.Steps[3].ExitCode)
	require.Equal(t, 0, *last.Steps[3].ExitCode)
	require.Equal(t, store.StepSucceeded, last.Steps[4].Status, last.Steps[4].Error)
	// The notification step reached the policy's receiver; so did the
	// escalation that asked for the approval.
	require.Eventually(t, func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		step, asked := false, false
		for _, b := range notified {
			step = step || strings.Contains(b, "reflex: CPU saturated on web-01")
			asked = asked || strings.Contains(b, "waits for approval")
		}
		return step && asked
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"check web-01", "drain", "throttle", "kill 4242"}, readMarks(t, marksFile))

	// A replayed token runs nothing.
	require.Equal(t, http.StatusConflict, ts.auto("POST", "/api/v1/autonomous/execute", execBody(d1.ID, ok.Token), &errBody))
	require.Equal(t, []string{"check web-01", "drain", "throttle", "kill 4242"}, readMarks(t, marksFile))

	// The outcome is on the decision, the status on the firing.
	d1 = ts.decisionOf(ev1)
	require.Equal(t, "successful", d1.Outcome)
	re := ts.ruleExecution(rule.ID, *d1.RuleExecutionID)
	require.Equal(t, store.ExecCompleted, re.Status)

	// 4. Feedback reaches the decision and the rule execution.
	var fd store.Decision
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/feedback",
		fmt.Sprintf(`{"decision_id": %d, "feedback": "helpful", "notes": "Correctly identified and resolved the issue", "suggestions": "Could have been faster"}`, d1.ID), &fd))
	require.Equal(t, "helpful", fd.Feedback)
	re = ts.ruleExecution(rule.ID, *d1.RuleExecutionID)
	require.Equal(t, "helpful", re.HumanFeedback)
	require.Equal(t, "Correctly identified and resolved the issue", re.FeedbackNotes)

	// 5. The same pattern again: more confident after a success and
	// helpful feedback. This time the kill fails: the completed steps
	// roll back in reverse order.
	require.NoError(t, os.WriteFile(marksFile+".fail", nil, 0o600))
	ev2 := cpu("web-02", "prometheus-b")
	ap2 := ts.waitApproval(ap1.ID)
	d2 := ts.decisionOf(ev2)
	require.Greater(t, d2.Confidence, d1.Confidence, "a success and helpful feedback raise the confidence:\n%s\n---\n%s", d1.Reasoning, d2.Reasoning)
	require.Equal(t, http.StatusOK, ts.auto("POST", fmt.Sprintf("/api/v1/autonomous/approvals/%d/approve", ap2.ID), `{}`, &ok))
	var raw json.RawMessage
	require.Equal(t, http.StatusAccepted, ts.auto("POST", "/api/v1/autonomous/execute", execBody(d2.ID, ok.Token), &raw), "approval %+v decision %d: %s", ap2, d2.ID, raw)
	require.NoError(t, json.Unmarshal(raw, &started))
	seen = ts.watch(started.ExecutionID)
	last = seen[len(seen)-1]
	require.Equal(t, store.ExecRolledBack, last.Status, "%+v", last)
	require.Equal(t, store.StepFailed, last.Steps[3].Status)
	require.Equal(t, []string{"check web-01", "drain", "throttle", "kill 4242",
		"check web-02", "drain", "throttle", "kill 4242", "unthrottle", "undrain"}, readMarks(t, marksFile))
	d2 = ts.decisionOf(ev2)
	require.Equal(t, "failed", d2.Outcome)

	// 6. After a failure and negative feedback, less confident.
	require.Equal(t, http.StatusOK, ts.auto("POST", "/api/v1/autonomous/feedback",
		fmt.Sprintf(`{"decision_id": %d, "feedback": "not_helpful", "notes": "the kill failed"}`, d2.ID), &fd))
	ev3 := cpu("web-03", "prometheus-c")
	ts.waitApproval(ap2.ID)
	d3 := ts.decisionOf(ev3)
	t.Logf("confidences: %.2f, %.2f, %.2f\n%s", d1.Confidence, d2.Confidence, d3.Confidence, d3.Reasoning)
	require.Less(t, d3.Confidence, d2.Confidence, "a failure and negative feedback lower the confidence:\n%s\n---\n%s", d2.Reasoning, d3.Reasoning)

	// 7. A dry run walks the plan and runs nothing.
	var dry struct {
		ExecutionID int64           `json:"execution_id"`
		Status      string          `json:"status"`
		DryRun      bool            `json:"dry_run"`
		Execution   store.Execution `json:"execution"`
	}
	before := readMarks(t, marksFile)
	require.Equal(t, http.StatusAccepted, ts.auto("POST", "/api/v1/autonomous/execute",
		fmt.Sprintf(`{"decision_id": %d, "execution_options": {"dry_run": true}}`, d3.ID), &dry))
	require.True(t, dry.DryRun)
	if dry.Status != store.ExecCompleted {
		seen = ts.watch(dry.ExecutionID)
		require.Equal(t, store.ExecCompleted, seen[len(seen)-1].Status)
	}
	require.Equal(t, before, readMarks(t, marksFile))

	// 8. Everything is in the audit log, and its chain verifies.
	var page struct {
		Records []struct {
			Action  string `json:"action"`
			Subject string `json:"subject"`
		} `json:"records"`
	}
	require.Equal(t, http.StatusOK, ts.auto("GET", "/api/v1/audit?limit=1000", "", &page))
	actions := map[string]int{}
	for _, r := range page.Records {
		actions[r.Action]++
	}
	for _, a := range []string{"decision", "approval_request", "approval", "execution", "execution_step", "rollback", "feedback", "refusal", "escalation", "action_definition", "policy_change"} {
		require.Positive(t, actions[a], "the audit log has %s records: %v", a, actions)
	}
	rep, err := ts.srv.auto.audit.Verify(t.Context())
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}

// ErrorBodyForTest is an error answer.
type ErrorBodyForTest struct {
	Error string `json:"error"`
}

func (ts *testServer) ruleExecution(ruleID, id int64) store.RuleExecution {
	ts.t.Helper()
	for _, x := range ts.waitExecutions(ruleID, 1) {
		if x.ID == id {
			return x
		}
	}
	ts.t.Fatalf("rule %d has no execution %d", ruleID, id)
	return store.RuleExecution{}
}

// TestAutonomousCancel: POST /executions/{id}/cancel kills a running
// step's process and ends the execution cancelled; cancelling it again
// is a 409.
func TestAutonomousCancel(t *testing.T) {
	marksFile := filepath.Join(t.TempDir(), "marks")
	t.Setenv("REFLEX_TEST_MARKS", marksFile)
	dir, err := filepath.Abs("testdata/autonomous")
	require.NoError(t, err)
	cfg := testConfig(t)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(storyPolicy), 0o600))
	cfg.AutonomousPolicy = pol
	ts := start(t, cfg)

	exec, err := json.Marshal(map[string]any{"type": "command", "argv": []string{filepath.Join(dir, "hang.sh")}, "env": []string{"REFLEX_TEST_MARKS"}, "timeout": "10m"})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, ts.auto("POST", "/api/v1/autonomous/actions",
		`{"action_name": "wait_forever", "action_type": "diagnostic", "risk_level": "low", "approval_required": false, "executor": `+string(exec)+`}`, nil))
	var rule ruleAnswer
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers", seedRule, &rule))
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/responses", fmt.Sprintf(`{"name": "Wait", "type": "investigation",
		"trigger_rule_id": %d, "actions": [{"type": "diagnostic", "script": "wait_forever"}]}`, rule.ID), nil))
	ts.post(`{"source": "prometheus", "event_type": "threshold_breach", "severity": "critical", "host": "web-09",
		"title": "CPU saturated", "message": "CPU usage above threshold", "metadata": {"cpu_usage": 99}}`)

	// The step runs: its script wrote its pid.
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(marksFile + ".pid")
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil && pid > 0
	}, 30*time.Second, 20*time.Millisecond)
	xs := ts.waitExecutions(rule.ID, 1)
	var res struct {
		ExecutionID int64 `json:"execution_id"`
	}
	require.Eventually(t, func() bool {
		xs = ts.waitExecutions(rule.ID, 1)
		return json.Unmarshal(xs[0].Result, &res) == nil && res.ExecutionID != 0
	}, 20*time.Second, 20*time.Millisecond)

	var x store.Execution
	require.Equal(t, http.StatusOK, ts.auto("POST", fmt.Sprintf("/api/v1/autonomous/executions/%d/cancel", res.ExecutionID), "", &x))
	require.Eventually(t, func() bool {
		require.Equal(t, http.StatusOK, ts.auto("GET", fmt.Sprintf("/api/v1/autonomous/executions/%d", res.ExecutionID), "", &x))
		return x.Status == store.ExecCancelled
	}, 20*time.Second, 20*time.Millisecond, "the execution was not cancelled: %+v", x)
	require.Equal(t, store.StepCancelled, x.Steps[0].Status)
	// Its process is gone (sleep was exec'd in the script's process).
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusConflict, ts.auto("POST", fmt.Sprintf("/api/v1/autonomous/executions/%d/cancel", res.ExecutionID), "", nil))
	require.Equal(t, store.ExecCancelled, ts.ruleExecution(rule.ID, xs[0].ID).Status)
}
