package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/reflex-ops/reflex/internal/store"
)

const autonomyToken = "rules-test-token"

// autonomyServer is a reflex server run in process for the autonomy
// commands, on a data dir the test keeps.
type autonomyServer struct {
	t       *testing.T
	events  string // http://host:port of the events API
	auto    string // http://host:port of the autonomous API
	dataDir string
	stop    func() // shuts the server down (once)
}

// startAutonomyServer runs the server with the story's policy (low-risk
// steps run by themselves), each event source its own incident.
func startAutonomyServer(t *testing.T) *autonomyServer {
	t.Helper()
	t.Setenv("REFLEX_ADMIN_TOKEN", autonomyToken)
	dataDir := t.TempDir()
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte("risk_levels:\n  low: {unattended: true, min_confidence: 0}\n"), 0o600))
	events, auto := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, []string{"--data-dir", dataDir, "--events-addr", events, "--autonomous-addr", auto,
			"--autonomous-policy", pol, "--incident-group-by", "source", "--log-level", "error"}, os.Stderr)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	s := &autonomyServer{t: t, events: "http://" + events, auto: "http://" + auto, dataDir: dataDir, stop: stop}
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.events + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "server ready")
	return s
}

// api calls the server with the admin token and decodes the answer.
func (s *autonomyServer) api(method, url, body string, out any) int {
	s.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+autonomyToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	if out != nil && len(data) > 0 {
		require.NoError(s.t, json.Unmarshal(data, out), string(data))
	}
	return resp.StatusCode
}

// setup defines the story of internal/server's TestAutonomousStory: its
// scripts as actions, the seed's rule and the CPU playbook.
func (s *autonomyServer) setup() {
	s.t.Helper()
	dir, err := filepath.Abs("../../internal/server/testdata/autonomous")
	require.NoError(s.t, err)
	cmd := func(script string, args ...string) string {
		b, err := json.Marshal(map[string]any{"type": "command", "argv": append([]string{filepath.Join(dir, script)}, args...),
			"env": []string{"REFLEX_TEST_MARKS"}, "timeout": "20s"})
		require.NoError(s.t, err)
		return string(b)
	}
	for _, a := range []string{
		`{"action_name": "check_processes", "action_type": "diagnostic", "risk_level": "low", "approval_required": false, "executor": ` + cmd("check_processes.sh", "{{.params.host}}") + `}`,
		`{"action_name": "undrain_traffic", "action_type": "remediation", "risk_level": "low", "approval_required": false, "executor": ` + cmd("mark.sh", "undrain") + `}`,
		`{"action_name": "drain_traffic", "action_type": "remediation", "risk_level": "low", "approval_required": false, "rollback_action": "undrain_traffic", "executor": ` + cmd("mark.sh", "drain") + `}`,
		`{"action_name": "kill_high_cpu_processes", "action_type": "remediation", "risk_level": "high", "approval_required": true,
		  "executor": ` + cmd("kill_cpu.sh", "{{.params.pid}}") + `}`,
	} {
		require.Equal(s.t, http.StatusCreated, s.api("POST", s.auto+"/api/v1/autonomous/actions", a, nil), a)
	}
	var rule struct {
		ID int64 `json:"id"`
	}
	require.Equal(s.t, http.StatusCreated, s.api("POST", s.events+"/api/v1/rules/triggers",
		`{"name": "High CPU Alert", "conditions": {"event_type": "threshold_breach", "metadata.cpu_usage": {"$gt": 90}}, "max_triggers_per_hour": 100}`, &rule))
	require.Equal(s.t, http.StatusCreated, s.api("POST", s.events+"/api/v1/rules/responses", fmt.Sprintf(`{
	  "name": "CPU Investigation Playbook", "type": "investigation", "trigger_rule_id": %d,
	  "actions": [
	    {"type": "diagnostic", "script": "check_processes", "parameters": {"host": "{{.event.source_host}}"}},
	    {"type": "remediation", "script": "drain_traffic"},
	    {"type": "remediation", "script": "kill_high_cpu_processes", "approval_required": true, "parameters": {"pid": "{{.steps.check_processes.pid}}"}}
	  ]}`, rule.ID), nil))
}

// cpu posts a CPU event from its own source (its own incident) and waits
// for the approval of its kill step.
func (s *autonomyServer) cpu(host string, after int64) store.Approval {
	s.t.Helper()
	code := s.api("POST", s.events+"/api/v1/events/webhook", `{"source": "prom-`+host+`", "event_type": "threshold_breach", "severity": "critical",
		"host": "`+host+`", "title": "CPU saturated", "message": "CPU usage above threshold", "metadata": {"cpu_usage": 97}}`, nil)
	require.Equal(s.t, http.StatusAccepted, code)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l struct {
			Approvals []store.Approval `json:"approvals"`
		}
		require.Equal(s.t, http.StatusOK, s.api("GET", s.auto+"/api/v1/autonomous/approvals", "", &l))
		for _, a := range l.Approvals {
			if a.ID > after {
				return a
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no approval after %d waits after 30s", after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchAsync runs `reflex executions watch ID` in the background.
func watchAsync(t *testing.T, id int64) <-chan [3]string {
	t.Helper()
	ch := make(chan [3]string, 1)
	go func() {
		var code int
		var out, errOut string
		code, out, errOut = runCmdNoT("executions", "watch", strconv.FormatInt(id, 10))
		ch <- [3]string{strconv.Itoa(code), out, errOut}
	}()
	return ch
}

// runCmdNoT is runCmd for a goroutine (no *testing.T).
func runCmdNoT(args ...string) (int, string, string) {
	var out, errOut strings.Builder
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func waitWatch(t *testing.T, ch <-chan [3]string) (int, string, string) {
	t.Helper()
	select {
	case r := <-ch:
		code, err := strconv.Atoi(r[0])
		require.NoError(t, err)
		return code, r[1], r[2]
	case <-time.After(60 * time.Second):
		t.Fatal("executions watch did not end within 60s")
	}
	return 0, "", ""
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// TestAutonomyCLI drives the approval flow with the CLI against a real
// server: approvals list (table and JSON), approve (running the step,
// or printing the token), reject, executions watch (exit 0 on completed,
// 1 on rolled back or cancelled), feedback, audit verify (0 intact, 1
// tampered, 2 without a key), and the usage errors.
func TestAutonomyCLI(t *testing.T) {
	marks := filepath.Join(t.TempDir(), "marks")
	t.Setenv("REFLEX_TEST_MARKS", marks)
	s := startAutonomyServer(t)
	s.setup()
	t.Setenv("REFLEX_TOKEN", autonomyToken)
	t.Setenv("REFLEX_URL", s.events)
	t.Setenv("REFLEX_AUTONOMOUS_URL", s.auto)

	// 1. The first CPU event: its kill waits; list shows it.
	ap1 := s.cpu("web-01", 0)
	code, out, errOut := runCmd(t, "approvals", "list")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ID")
	require.Contains(t, out, "PARAMETERS")
	require.Regexp(t, fmt.Sprintf(`(?m)^%d\s+%d\s+%d\s+kill_high_cpu_processes\s+high\s+.*\{"pid":"4242"\}`, ap1.ID, ap1.DecisionID, *ap1.ExecutionID), out)
	code, out, errOut = runCmd(t, "approvals", "list", "--json")
	require.Equal(t, 0, code, errOut)
	var list struct {
		Approvals []store.Approval `json:"approvals"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list.Approvals, 1)
	require.Equal(t, ap1.ID, list.Approvals[0].ID)
	require.Equal(t, map[string]string{"pid": "4242"}, list.Approvals[0].Parameters)

	// 2. approve runs the step; watch, started before, follows it live
	// to completed and exits 0.
	w := watchAsync(t, *ap1.ExecutionID)
	code, out, errOut = runCmd(t, "approvals", "approve", strconv.FormatInt(ap1.ID, 10), "--comment", "pid 4242 is the runaway")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, fmt.Sprintf("approval %d approved: execution %d", ap1.ID, *ap1.ExecutionID))
	code, out, errOut = waitWatch(t, w)
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, fmt.Sprintf("execution %d: pending", *ap1.ExecutionID))
	require.Regexp(t, `kill_high_cpu_processes\s+succeeded \(exit 0\)`, out)
	require.Contains(t, out, "| killed 4242")
	require.Contains(t, out, fmt.Sprintf("execution %d completed", *ap1.ExecutionID))
	require.Equal(t, []string{"check web-01", "drain", "kill 4242"}, readLines(t, marks))
	// The approval is used: approving it again fails, naming why.
	code, _, errOut = runCmd(t, "approvals", "approve", strconv.FormatInt(ap1.ID, 10))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "409")

	// 3. feedback on the decision.
	code, out, errOut = runCmd(t, "feedback", strconv.FormatInt(ap1.DecisionID, 10), "helpful", "--notes", "found and fixed it", "--suggestions", "faster")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, fmt.Sprintf("feedback helpful recorded on decision %d", ap1.DecisionID))
	var d store.Decision
	require.Equal(t, http.StatusOK, s.api("GET", fmt.Sprintf("%s/api/v1/autonomous/decisions/%d", s.auto, ap1.DecisionID), "", &d))
	require.Equal(t, "helpful", d.Feedback)
	require.Equal(t, "found and fixed it", d.FeedbackNotes)
	require.Equal(t, "faster", d.FeedbackSuggestions)

	// 4. approve --execute=false prints the token; run with it, the kill
	// fails and the drain rolls back: watch exits non-zero.
	require.NoError(t, os.WriteFile(marks+".fail", nil, 0o600))
	ap2 := s.cpu("web-02", ap1.ID)
	code, out, errOut = runCmd(t, "approvals", "approve", strconv.FormatInt(ap2.ID, 10), "--execute=false")
	require.Equal(t, 0, code, errOut)
	token := regexp.MustCompile(`rxa_\S+`).FindString(out)
	require.NotEmpty(t, token, out)
	require.Equal(t, []string{"check web-01", "drain", "kill 4242", "check web-02", "drain"}, readLines(t, marks), "--execute=false runs nothing")
	w = watchAsync(t, *ap2.ExecutionID)
	var started struct {
		ExecutionID int64 `json:"execution_id"`
	}
	require.Equal(t, http.StatusAccepted, s.api("POST", s.auto+"/api/v1/autonomous/execute",
		fmt.Sprintf(`{"decision_id": %d, "action_id": %d, "approval_token": %q}`, ap2.DecisionID, ap2.ActionID, token), &started))
	require.Equal(t, *ap2.ExecutionID, started.ExecutionID)
	code, out, errOut = waitWatch(t, w)
	require.Equal(t, 1, code, out)
	require.Contains(t, errOut, fmt.Sprintf("execution %d ended rolled_back", *ap2.ExecutionID))
	require.Regexp(t, `kill_high_cpu_processes\s+failed \(exit 1\)`, out)
	require.Contains(t, out, "operation not permitted")
	require.Regexp(t, `rollback \S*\s+succeeded`, out)
	require.Contains(t, out, fmt.Sprintf("execution %d rolled_back", *ap2.ExecutionID))
	// Watching an ended execution prints its state and the same verdict.
	code, out, _ = runCmd(t, "executions", "watch", strconv.FormatInt(*ap2.ExecutionID, 10))
	require.Equal(t, 1, code)
	require.Contains(t, out, "rolled_back")

	// 5. reject, with a comment: the execution is cancelled.
	require.NoError(t, os.Remove(marks+".fail"))
	ap3 := s.cpu("web-03", ap2.ID)
	code, out, errOut = runCmd(t, "approvals", "reject", strconv.FormatInt(ap3.ID, 10), "--comment", "not during the demo")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, fmt.Sprintf("approval %d rejected", ap3.ID))
	code, out, _ = runCmd(t, "executions", "watch", strconv.FormatInt(*ap3.ExecutionID, 10))
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "cancelled")
	var page struct {
		Records []struct {
			Parameters map[string]any `json:"parameters"`
		} `json:"records"`
	}
	require.Equal(t, http.StatusOK, s.api("GET", s.auto+"/api/v1/audit?action=rejection", "", &page))
	require.Len(t, page.Records, 1)
	require.Equal(t, "not during the demo", page.Records[0].Parameters["comment"])
	code, out, _ = runCmd(t, "approvals", "list")
	require.Equal(t, 0, code)
	require.Contains(t, out, "no approvals waiting")

	// 6. Usage errors name the problem.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"approvals"}, "a command is required"},
		{[]string{"approvals", "frob"}, `unknown command "frob"`},
		{[]string{"approvals", "approve"}, "give one approval ID"},
		{[]string{"approvals", "approve", "x12"}, `"x12" is not an ID`},
		{[]string{"approvals", "reject", "--comment", "c"}, "give one approval ID"},
		{[]string{"approvals", "approve", "999999"}, "404"},
		{[]string{"executions"}, "the command is watch ID"},
		{[]string{"executions", "watch"}, "give one execution ID"},
		{[]string{"executions", "watch", "0"}, `"0" is not an ID`},
		{[]string{"executions", "watch", "999999"}, "404"},
		{[]string{"feedback"}, "give a decision ID and helpful, not_helpful or incorrect"},
		{[]string{"feedback", strconv.FormatInt(ap1.DecisionID, 10)}, "give a decision ID and helpful"},
		{[]string{"feedback", "abc", "helpful"}, `"abc" is not a decision ID`},
		{[]string{"feedback", strconv.FormatInt(ap1.DecisionID, 10), "great"}, `"great" is not helpful, not_helpful or incorrect`},
		{[]string{"audit"}, "the command is verify"},
	} {
		code, out, errOut := runCmd(t, c.args...)
		require.NotEqual(t, 0, code, "%v: %s", c.args, out)
		require.Contains(t, errOut, c.want, c.args)
	}

	// 7. audit verify: intact while the server runs and after it stops;
	// 1 naming the record after one is changed; 2 without a key.
	code, out, errOut = runCmd(t, "audit", "verify", "--data-dir", s.dataDir)
	require.Equal(t, 0, code, out+errOut)
	s.stop()
	code, out, errOut = runCmd(t, "audit", "verify", "--data-dir", s.dataDir)
	require.Equal(t, 0, code, out+errOut)
	intact := out
	require.Contains(t, intact, "audit log verified: ")

	db, err := sql.Open("sqlite", filepath.Join(s.dataDir, "reflex.db"))
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM audit_log`).Scan(&n))
	require.Greater(t, n, 10)
	_, err = db.Exec(`DROP TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	res, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 5`)
	require.NoError(t, err)
	changed, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, changed)
	require.NoError(t, db.Close())

	code, out, errOut = runCmd(t, "audit", "verify", "--data-dir", s.dataDir)
	require.Equal(t, 1, code, out+errOut)
	require.NotEqual(t, intact, out)
	require.Contains(t, out, "audit log: record 5 ", "the report names the first bad record")
	require.Contains(t, out, "4 records verified before it")
	require.Contains(t, errOut, "tampered")

	code, _, errOut = runCmd(t, "audit", "verify", "--data-dir", t.TempDir())
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "audit verify")
	code, _, errOut = runCmd(t, "audit", "verify", "--data-dir", s.dataDir, "--audit-key-file", filepath.Join(t.TempDir(), "none.key"))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "none.key")
}
