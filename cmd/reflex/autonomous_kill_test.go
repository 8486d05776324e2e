package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/testutil"
)

// autoPolicy lets low-risk steps run by themselves at any confidence, as
// in the story test: the first decision on a pattern runs its low-risk
// steps.
const autoPolicy = "risk_levels:\n  low: {unattended: true, min_confidence: 0}\n"

// cpuRule is the seed's "High CPU Alert", and cpuEvent an event it fires
// on.
const (
	cpuRule = `{"name": "High CPU Alert", "conditions": {"event_type": "threshold_breach", "severity": ["critical", "high"],
	  "metadata.cpu_usage": {"$gt": 90}}, "time_window_minutes": 5, "max_triggers_per_hour": 3}`
	cpuEvent = `{"source": "prometheus", "event_type": "threshold_breach", "severity": "critical", "host": "%s",
	  "title": "CPU saturated", "message": "CPU usage above threshold", "metadata": {"cpu_usage": 97}}`
)

// client calls the API of a child process with the admin token.
type client struct {
	t    *testing.T
	http *http.Client
}

func newClient(t *testing.T) *client {
	return &client{t: t, http: &http.Client{Timeout: 30 * time.Second}}
}

// do sends body (none when "") and decodes the answer into out (when not
// nil); it returns the status.
func (c *client) do(method, url, body string, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+killToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err, "%s %s", method, url)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if out != nil && len(data) > 0 {
		require.NoError(c.t, json.Unmarshal(data, out), "%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	return resp.StatusCode
}

// must is do that requires status want.
func (c *client) must(want int, method, url, body string, out any) {
	c.t.Helper()
	var raw json.RawMessage
	got := c.do(method, url, body, &raw)
	require.Equal(c.t, want, got, "%s %s: %s", method, url, raw)
	if out != nil {
		require.NoError(c.t, json.Unmarshal(raw, out))
	}
}

// commandExecutor is a command executor of script (an absolute path) with
// args, which passes REFLEX_TEST_MARKS through.
func commandExecutor(t *testing.T, script, timeout string, args ...string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": "command", "argv": append([]string{script}, args...),
		"env": []string{"REFLEX_TEST_MARKS"}, "timeout": timeout})
	require.NoError(t, err)
	return string(b)
}

// marks reads the lines a test script recorded (none when the file does
// not exist).
func marks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// eventually polls cond every 50ms until it holds, failing with what
// after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ruleExecutions lists a rule's executions on the events service at base.
func (c *client) ruleExecutions(base string, ruleID int64) []store.RuleExecution {
	c.t.Helper()
	var l struct {
		Executions []store.RuleExecution `json:"executions"`
	}
	c.must(http.StatusOK, "GET", fmt.Sprintf("%s/api/v1/rules/executions?rule_id=%d", base, ruleID), "", &l)
	return l.Executions
}

// execution reads an execution from the autonomous service at base.
func (c *client) execution(base string, id int64) store.Execution {
	c.t.Helper()
	var x store.Execution
	c.must(http.StatusOK, "GET", fmt.Sprintf("%s/api/v1/autonomous/executions/%d", base, id), "", &x)
	return x
}

// auditRecords reads the audit log's records of action from the
// autonomous service at base.
func (c *client) auditRecords(base, action string) []auditRecord {
	c.t.Helper()
	var page struct {
		Records []auditRecord `json:"records"`
	}
	c.must(http.StatusOK, "GET", base+"/api/v1/audit?limit=1000&action="+action, "", &page)
	return page.Records
}

type auditRecord struct {
	Seq        int64          `json:"seq"`
	Action     string         `json:"action"`
	Subject    string         `json:"subject"`
	Parameters map[string]any `json:"parameters"`
}

// auditVerify runs `reflex audit verify` with args and returns its exit
// status and output.
func auditVerify(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"audit", "verify"}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err, string(out))
	return 0, string(out)
}

// killGroupOf kills, at the end of the test, the process group whose
// leader's pid the script wrote to pidFile: the command executor runs each
// step in its own group, which outlives a server killed with SIGKILL.
func killGroupOf(t *testing.T, pidFile string) {
	t.Cleanup(func() {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

// TestKillDuringExecution kills the server with SIGKILL while a step of
// an execution runs (a script that records its start and sleeps), and
// restarts it on the same data dir: the execution is still there, its
// running step is marked unknown and never run again, the steps after it
// do not run, the execution ends failed saying so and is escalated, the
// firing's rule execution follows, and the audit log records it and
// verifies, until one of its records is changed in the database.
func TestKillDuringExecution(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	eventsAddr, autoAddr, natsAddr := freePort(t), freePort(t), freePort(t)
	events, auto := "http://"+eventsAddr, "http://"+autoAddr
	marksFile := filepath.Join(t.TempDir(), "marks")
	killGroupOf(t, marksFile+".pid")
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(autoPolicy), 0o600))
	env := []string{"REFLEX_TEST_MARKS=" + marksFile, "REFLEX_AUTONOMOUS_POLICY=" + pol}
	hang, err := filepath.Abs("testdata/autonomous/hang.sh")
	require.NoError(t, err)
	mark, err := filepath.Abs("../../internal/server/testdata/autonomous/mark.sh")
	require.NoError(t, err)

	p := startReflex(t, bin, dataDir, eventsAddr, autoAddr, natsAddr, env...)
	c := newClient(t)
	c.must(http.StatusCreated, "POST", auto+"/api/v1/autonomous/actions", `{"action_name": "collect_diagnostics", "action_type": "diagnostic",
	  "risk_level": "low", "approval_required": false, "executor": `+commandExecutor(t, hang, "600s")+`}`, nil)
	c.must(http.StatusCreated, "POST", auto+"/api/v1/autonomous/actions", `{"action_name": "after_diagnostics", "action_type": "diagnostic",
	  "risk_level": "low", "approval_required": false, "executor": `+commandExecutor(t, mark, "20s", "after")+`}`, nil)
	var rule struct {
		ID int64 `json:"id"`
	}
	c.must(http.StatusCreated, "POST", events+"/api/v1/rules/triggers", cpuRule, &rule)
	c.must(http.StatusCreated, "POST", events+"/api/v1/rules/responses", fmt.Sprintf(`{"name": "Slow Diagnostics", "type": "investigation",
	  "trigger_rule_id": %d, "actions": [{"type": "diagnostic", "script": "collect_diagnostics"}, {"type": "diagnostic", "script": "after_diagnostics"}]}`, rule.ID), nil)

	var acc struct {
		IDs []int64 `json:"ids"`
	}
	c.must(http.StatusAccepted, "POST", events+"/api/v1/events/webhook", fmt.Sprintf(cpuEvent, "web-01"), &acc)
	require.Len(t, acc.IDs, 1)

	// The firing's rule execution names the execution the service started.
	var firing store.RuleExecution
	var execID int64
	eventually(t, 60*time.Second, "the firing names no running execution", func() bool {
		for _, re := range c.ruleExecutions(events, rule.ID) {
			var res struct {
				ExecutionID int64 `json:"execution_id"`
			}
			if len(re.Result) > 0 && json.Unmarshal(re.Result, &res) == nil && res.ExecutionID > 0 {
				firing, execID = re, res.ExecutionID
				return true
			}
		}
		return false
	})
	eventually(t, 60*time.Second, "the first step is not running with one start recorded", func() bool {
		x := c.execution(auto, execID)
		return x.Status == store.ExecRunning && x.Steps[0].Status == store.StepRunning && len(marks(t, marksFile)) == 1
	})
	require.Len(t, marks(t, marksFile), 1)
	require.True(t, strings.HasPrefix(marks(t, marksFile)[0], "start "))
	require.Equal(t, store.ExecRunning, firing.Status)

	// SIGKILL, then restart on the same data dir.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
	p = startReflex(t, bin, dataDir, eventsAddr, autoAddr, natsAddr, env...)

	x := c.execution(auto, execID)
	require.Equal(t, store.ExecFailed, x.Status, "%+v", x)
	require.Contains(t, x.Error, "unknown")
	require.Contains(t, x.Error, "collect_diagnostics")
	require.NotNil(t, x.FinishedAt)
	require.Len(t, x.Steps, 2)
	require.Equal(t, store.StepUnknown, x.Steps[0].Status)
	require.Contains(t, x.Steps[0].Error, "not run again")
	require.Equal(t, store.StepCancelled, x.Steps[1].Status)

	// Neither the unknown step nor the next runs again, also a while
	// after the restart.
	time.Sleep(2 * time.Second)
	require.Len(t, marks(t, marksFile), 1, "the step whose outcome is unknown is not run again")
	x = c.execution(auto, execID)
	require.Equal(t, store.ExecFailed, x.Status)
	require.Equal(t, store.StepUnknown, x.Steps[0].Status)

	// The firing follows the execution.
	for _, re := range c.ruleExecutions(events, rule.ID) {
		if re.ID == firing.ID {
			require.Equal(t, store.ExecFailed, re.Status, "the rule execution follows the execution's status")
			require.NotNil(t, re.CompletedAt)
		}
	}

	// The escalation is in the audit log, which verifies.
	escalated := false
	for _, r := range c.auditRecords(auto, "escalation") {
		if r.Subject == fmt.Sprintf("execution:%d", execID) || r.Parameters["execution_id"] == float64(execID) {
			escalated = true
		}
	}
	require.True(t, escalated, "the audit log has an escalation of execution %d", execID)
	code, out := auditVerify(t, bin, "--data-dir", dataDir)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "audit log verified")

	// Stop the server, change one record's parameters in the database:
	// verify exits 1 and names the record.
	decisions := c.auditRecords(auto, "decision")
	require.NotEmpty(t, decisions)
	seq := decisions[0].Seq
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("reflex did not stop within 60s of SIGTERM")
	}
	tamper(t, filepath.Join(dataDir, "reflex.db"), seq)
	code, out = auditVerify(t, bin, "--data-dir", dataDir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, fmt.Sprintf("record %d ", seq), out)
	require.Contains(t, out, "changed")
}

// tamper changes the parameters of audit record seq in the SQLite
// database at path, as someone who can write the file would: the
// append-only trigger is no obstacle to them.
func tamper(t *testing.T, path string, seq int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	var params string
	require.NoError(t, db.QueryRow(`SELECT parameters FROM audit_log WHERE seq = ?`, seq).Scan(&params))
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(params), &m))
	m["decision_type"] = "ignore"
	m["confidence"] = 0.01
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.NotEqual(t, params, string(b))
	_, err = db.Exec(`DROP TRIGGER audit_log_no_update`)
	require.NoError(t, err)
	res, err := db.Exec(`UPDATE audit_log SET parameters = ? WHERE seq = ?`, string(b), seq)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

// serviceURLs gives the tests the external services, failing (not
// skipping) when they cannot be reached: the variables default to the
// services of the test machine.
func serviceURLs(t *testing.T) (pg, natsURL string) {
	t.Helper()
	if os.Getenv(testutil.EnvDatabaseURL) == "" {
		t.Setenv(testutil.EnvDatabaseURL, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	if os.Getenv(testutil.EnvNATSURL) == "" {
		t.Setenv(testutil.EnvNATSURL, "nats://127.0.0.1:4222")
	}
	return testutil.PostgresURL(t), testutil.NATSURL(t)
}

// startService runs `reflex server` with args as a child process and
// waits until readyURL answers 200.
func startService(t *testing.T, bin, logFile, readyURL string, args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"server", "--log-level", "warn"}, args...)...)
	cmd.Env = append(append(os.Environ(), "REFLEX_ADMIN_TOKEN="+killToken), env...)
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			data, _ := os.ReadFile(logFile)
			t.Fatalf("reflex %s exited before it was ready: %v\n%s", strings.Join(args, " "), err, data)
		case <-time.After(50 * time.Millisecond):
		}
	}
	data, _ := os.ReadFile(logFile)
	t.Fatalf("reflex %s was not ready within 60s\n%s", strings.Join(args, " "), data)
	return nil
}

// dropStream deletes a test stream from the NATS server at url.
func dropStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("delete stream %s: %v", stream, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("delete stream %s: %v", stream, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("delete stream %s: %v", stream, err)
	}
}

// TestServicesInTwoProcesses runs the Event Processing Service and the
// Autonomous Response Service as two processes sharing a fresh PostgreSQL
// database and the external NATS: an event posted to the first fires a
// rule; the second decides, runs the diagnostic by itself and leaves the
// approval-required step in its approval queue; approved, it runs; the
// execution completes and the firing's rule execution, read from the
// events service, follows.
func TestServicesInTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pgURL, natsURL := serviceURLs(t)
	bin := buildBinary(t)

	// Streams of the test's own.
	stream := testutil.RandomName("REFLEX_TEST_TWO_")
	subj := strings.ToLower(stream)
	t.Cleanup(func() {
		for _, s := range []string{stream, "KV_" + bus.LeaseBucket(stream), stream + "_P", stream + "_D"} {
			dropStream(t, natsURL, s)
		}
	})
	natsArgs := []string{"--database-url", pgURL, "--nats-url", natsURL,
		"--nats-stream", stream, "--nats-subject-prefix", "reflex.test." + subj,
		"--processed-stream", stream + "_P", "--processed-subject-prefix", "reflex.testp." + subj,
		"--decisions-stream", stream + "_D", "--decisions-subject", "reflex.testd." + subj}

	// One audit key for both.
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600))
	marksFile := filepath.Join(t.TempDir(), "marks")
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(autoPolicy), 0o600))

	eventsAddr, autoAddr := freePort(t), freePort(t)
	events, auto := "http://"+eventsAddr, "http://"+autoAddr
	evDir, autoDir := t.TempDir(), t.TempDir()
	startService(t, bin, filepath.Join(evDir, "server.log"), events+"/readyz", append([]string{"--services", "events",
		"--data-dir", evDir, "--events-addr", eventsAddr, "--audit-key-file", keyFile}, natsArgs...))
	startService(t, bin, filepath.Join(autoDir, "server.log"), auto+"/readyz", append([]string{"--services", "autonomous",
		"--data-dir", autoDir, "--autonomous-addr", autoAddr, "--audit-key-file", keyFile, "--autonomous-policy", pol}, natsArgs...),
		"REFLEX_TEST_MARKS="+marksFile)

	// The actions on the autonomous service, the rule and the template on
	// the events service.
	scripts, err := filepath.Abs("../../internal/server/testdata/autonomous")
	require.NoError(t, err)
	c := newClient(t)
	c.must(http.StatusCreated, "POST", auto+"/api/v1/autonomous/actions", `{"action_name": "check_processes", "action_type": "diagnostic",
	  "risk_level": "low", "approval_required": false, "executor": `+commandExecutor(t, filepath.Join(scripts, "check_processes.sh"), "20s", "{{.params.host}}")+`}`, nil)
	var kill struct {
		ID int64 `json:"id"`
	}
	c.must(http.StatusCreated, "POST", auto+"/api/v1/autonomous/actions", `{"action_name": "kill_high_cpu_processes", "action_type": "remediation",
	  "risk_level": "high", "approval_required": true, "success_criteria": {"exit_code": 0},
	  "executor": `+commandExecutor(t, filepath.Join(scripts, "kill_cpu.sh"), "20s", "{{.params.pid}}")+`}`, &kill)
	require.NotZero(t, kill.ID)
	var rule struct {
		ID int64 `json:"id"`
	}
	c.must(http.StatusCreated, "POST", events+"/api/v1/rules/triggers", cpuRule, &rule)
	c.must(http.StatusCreated, "POST", events+"/api/v1/rules/responses", fmt.Sprintf(`{"name": "CPU Investigation Playbook", "type": "investigation",
	  "trigger_rule_id": %d, "actions": [
	    {"type": "diagnostic", "script": "check_processes", "parameters": {"host": "{{.event.source_host}}"}},
	    {"type": "remediation", "script": "kill_high_cpu_processes", "approval_required": true, "parameters": {"pid": "{{.steps.check_processes.pid}}"}}]}`, rule.ID), nil)

	var acc struct {
		IDs []int64 `json:"ids"`
	}
	c.must(http.StatusAccepted, "POST", events+"/api/v1/events/webhook", fmt.Sprintf(cpuEvent, "web-07"), &acc)
	require.Len(t, acc.IDs, 1)

	// The autonomous process decides about the event.
	var d store.Decision
	eventually(t, 60*time.Second, "no decision about the event", func() bool {
		var l struct {
			Decisions []store.Decision `json:"decisions"`
		}
		c.must(http.StatusOK, "GET", fmt.Sprintf("%s/api/v1/autonomous/decisions?event_id=%d&timerange=7d", auto, acc.IDs[0]), "", &l)
		if len(l.Decisions) == 0 {
			return false
		}
		require.Len(t, l.Decisions, 1)
		d = l.Decisions[0]
		return true
	})
	require.Equal(t, store.DecisionInvestigate, d.DecisionType)
	require.NotNil(t, d.RuleExecutionID, "the decision answers the firing")
	require.NotEmpty(t, d.RecommendedActions)
	require.Equal(t, "CPU Investigation Playbook", d.RecommendedActions[0].TemplateName)

	// The diagnostic runs by itself; the kill waits for approval with
	// the pid the diagnostic found.
	var ap store.Approval
	eventually(t, 60*time.Second, "no approval is waiting", func() bool {
		var l struct {
			Approvals []store.Approval `json:"approvals"`
		}
		c.must(http.StatusOK, "GET", auto+"/api/v1/autonomous/approvals", "", &l)
		for _, a := range l.Approvals {
			if a.DecisionID == d.ID {
				ap = a
				return true
			}
		}
		return false
	})
	require.Equal(t, []string{"check web-07"}, marks(t, marksFile))
	require.Equal(t, "kill_high_cpu_processes", ap.ActionName)
	require.Equal(t, map[string]string{"pid": "4242"}, ap.Parameters)
	require.NotNil(t, ap.ExecutionID)
	// The approval is queued a moment before the execution is stored
	// pending on it (the orchestrator requests it, then stores the step
	// waiting, then the execution pending): wait for that.
	var x store.Execution
	eventually(t, 30*time.Second, "the execution is not pending on the approval", func() bool {
		x = c.execution(auto, *ap.ExecutionID)
		return x.Status != store.ExecRunning
	})
	require.Equal(t, store.ExecPending, x.Status)
	require.Equal(t, store.StepSucceeded, x.Steps[0].Status)
	require.Equal(t, store.StepWaitingApproval, x.Steps[1].Status)

	// Approved, it runs with the token.
	var tok struct {
		Token string `json:"approval_token"`
	}
	c.must(http.StatusOK, "POST", fmt.Sprintf("%s/api/v1/autonomous/approvals/%d/approve", auto, ap.ID), `{"comment": "runaway stress test"}`, &tok)
	require.NotEmpty(t, tok.Token)
	var started struct {
		ExecutionID int64 `json:"execution_id"`
	}
	c.must(http.StatusAccepted, "POST", auto+"/api/v1/autonomous/execute", fmt.Sprintf(`{"decision_id": %d, "action_id": %d, "approval_token": %q,
	  "execution_options": {"dry_run": false, "rollback_on_failure": true}}`, d.ID, kill.ID, tok.Token), &started)
	require.Equal(t, *ap.ExecutionID, started.ExecutionID)
	eventually(t, 60*time.Second, "the execution did not end", func() bool {
		x = c.execution(auto, started.ExecutionID)
		return x.FinishedAt != nil
	})
	require.Equal(t, store.ExecCompleted, x.Status, "%+v", x)
	require.Equal(t, store.StepSucceeded, x.Steps[1].Status)
	require.Equal(t, []string{"check web-07", "kill 4242"}, marks(t, marksFile))

	// The events service shows the firing completed, and the autonomous
	// service the decision's outcome.
	var re store.RuleExecution
	eventually(t, 30*time.Second, "the rule execution is not completed", func() bool {
		for _, e := range c.ruleExecutions(events, rule.ID) {
			if e.ID == *d.RuleExecutionID {
				re = e
			}
		}
		return re.Status == store.ExecCompleted
	})
	require.NotNil(t, re.CompletedAt)
	var d2 store.Decision
	c.must(http.StatusOK, "GET", fmt.Sprintf("%s/api/v1/autonomous/decisions/%d", auto, d.ID), "", &d2)
	require.Equal(t, "successful", d2.Outcome)

	// Both processes wrote one chain, with the shared key, and it verifies.
	code, out := auditVerify(t, bin, "--database-url", pgURL, "--audit-key-file", keyFile)
	require.Equal(t, 0, code, out)

	// The database is the test's own.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM autonomous.decision_log`).Scan(&n))
	require.Equal(t, 1, n)
}
