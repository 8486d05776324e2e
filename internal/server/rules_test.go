package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/decision"
	"github.com/reflex-ops/reflex/internal/notify/receiver"
	"github.com/reflex-ops/reflex/internal/rules/engine"
	"github.com/reflex-ops/reflex/internal/store"
)

// The seed's rule and template payloads, exactly.
const (
	seedRule = `{
  "name": "High CPU Alert",
  "conditions": {
    "event_type": "threshold_breach",
    "severity": ["critical", "high"],
    "metadata.cpu_usage": {"$gt": 90}
  },
  "time_window_minutes": 5,
  "max_triggers_per_hour": 3
}`
	seedTemplate = `{
  "name": "CPU Investigation Playbook",
  "type": "investigation",
  "trigger_rule_id": %d,
  "actions": [
    {"type": "diagnostic", "script": "check_processes"},
    {"type": "remediation", "script": "kill_high_cpu_processes", "approval_required": true},
    {"type": "notification", "channels": ["email", "slack"]}
  ]
}`
)

type ruleAnswer struct {
	ID                int64 `json:"id"`
	Firings           int64 `json:"firings"`
	SuppressedFirings int64 `json:"suppressed_firings"`
}

type executionList struct {
	Executions []store.RuleExecution `json:"executions"`
}

// waitExecutions polls the rule's executions until there are n.
func (ts *testServer) waitExecutions(ruleID int64, n int) []store.RuleExecution {
	ts.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var l executionList
		require.Equal(ts.t, http.StatusOK, ts.do("GET", fmt.Sprintf("%s/api/v1/rules/executions?rule_id=%d", ts.events, ruleID), "", &l))
		if len(l.Executions) >= n {
			return l.Executions
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("rule %d has %d executions after 20s, want %d", ruleID, len(l.Executions), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ts *testServer) rule(id int64) ruleAnswer {
	ts.t.Helper()
	var r ruleAnswer
	require.Equal(ts.t, http.StatusOK, ts.do("GET", fmt.Sprintf("%s/api/v1/rules/triggers/%d", ts.events, id), "", &r))
	return r
}

// takeDecisions reads every decision request queued on the server's
// decisions stream.
func (ts *testServer) takeDecisions(want int) []*decision.Request {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ts.srv.rules.decisions.Consumer(ctx, bus.DecisionsConsumerOptions{Name: "test"})
	require.NoError(ts.t, err)
	var out []*decision.Request
	for len(out) < want && ctx.Err() == nil {
		msgs, err := c.Fetch(ctx, want, 500*time.Millisecond)
		require.NoError(ts.t, err)
		for _, m := range msgs {
			rs, err := decision.Unpack(m.Data)
			require.NoError(ts.t, err)
			out = append(out, rs...)
			require.NoError(ts.t, m.Ack())
		}
	}
	require.Len(ts.t, out, want)
	return out
}

// waitRulesIdle waits until the rules engine has handled everything on the
// processed stream, so that a rule created next sees only later events.
func (ts *testServer) waitRulesIdle() {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := ts.srv.processed.stream.Consumer(ctx, bus.ProcessedConsumerOptions{Name: engine.ConsumerName})
	require.NoError(ts.t, err)
	for {
		n, err := c.Pending(ctx)
		require.NoError(ts.t, err)
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			ts.t.Fatalf("the rules engine still has %d processed messages to handle after 20s", n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runRuleStory walks the rules issue's user story: the seed's rule and
// template, a test of the rule, CPU events, firings as the window and
// throttle allow, executions, decision requests and one signed
// notification.
func runRuleStory(t *testing.T, ts *testServer, h *hook) {
	ts.waitRulesIdle()
	var rule ruleAnswer
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers", seedRule, &rule))
	var tmpl struct {
		ID int64 `json:"id"`
	}
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/responses", fmt.Sprintf(seedTemplate, rule.ID), &tmpl))

	var tr struct {
		Matched bool   `json:"matched"`
		Reason  string `json:"reason"`
	}
	require.Equal(t, http.StatusOK, ts.do("POST", fmt.Sprintf("%s/api/v1/rules/triggers/%d/test", ts.events, rule.ID),
		`{"event": `+strings.Replace(seedPayload, "97.5", "42", 1)+`}`, &tr))
	require.False(t, tr.Matched)
	require.Contains(t, tr.Reason, "metadata.cpu_usage")

	// A CPU event below the threshold, one above: one firing.
	ts.post(strings.Replace(strings.Replace(seedPayload, "97.5", "42", 1), "web-server-01", "web-server-02", 1))
	ts.post(seedPayload)
	xs := ts.waitExecutions(rule.ID, 1)
	require.Len(t, xs, 1)
	x := xs[0]
	require.Equal(t, "pending", x.Status)
	require.Equal(t, tmpl.ID, *x.ResponseTemplateID)

	// Its notification arrives, signed, once.
	select {
	case got := <-h.reqs:
		require.NoError(t, receiver.Verify(hookSecret, got.signature, got.body, time.Now(), time.Minute))
		var n struct {
			Receiver string `json:"receiver"`
			Status   string `json:"status"`
			Alerts   []struct {
				RuleID     int64  `json:"rule_id"`
				RuleName   string `json:"rule_name"`
				EventID    int64  `json:"event_id"`
				SourceHost string `json:"source_host"`
			} `json:"alerts"`
		}
		require.NoError(t, json.Unmarshal(got.body, &n))
		require.Equal(t, "ops", n.Receiver)
		require.Equal(t, "firing", n.Status)
		require.Len(t, n.Alerts, 1)
		require.Equal(t, "High CPU Alert", n.Alerts[0].RuleName)
		require.Equal(t, x.TriggeringEventID, n.Alerts[0].EventID)
		require.Equal(t, "web-server-01", n.Alerts[0].SourceHost)
	case <-time.After(10 * time.Second):
		t.Fatal("the notification did not arrive")
	}

	// Three more at once: two fire (three per hour), one is suppressed.
	// They are repeats of the first, folded into it: one alert in the
	// group, so no second notification.
	ts.post("[" + strings.Repeat(seedPayload+",", 2) + seedPayload + "]")
	ts.waitExecutions(rule.ID, 3)
	deadline := time.Now().Add(10 * time.Second)
	for ts.rule(rule.ID).SuppressedFirings < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := ts.rule(rule.ID)
	require.Equal(t, int64(3), got.Firings)
	require.Equal(t, int64(1), got.SuppressedFirings)
	require.Len(t, ts.waitExecutions(rule.ID, 3), 3)

	// Each firing queued a decision request, with the template: they wait
	// in the decisions stream.
	resp, err := http.Get(ts.events + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Regexp(t, `(?m)^reflex_decisions_stream_messages [1-9]`, string(metrics))
	reqs := ts.takeDecisions(3)
	require.Equal(t, x.ID, reqs[0].ExecutionID)
	require.Equal(t, "High CPU Alert", reqs[0].RuleName)
	require.Equal(t, "web-server-01", reqs[0].Event.SourceHost)
	require.Len(t, reqs[0].Templates, 1)
	require.Equal(t, "CPU Investigation Playbook", reqs[0].Templates[0].Name)

	select {
	case extra := <-h.reqs:
		t.Fatalf("a second notification arrived within the group interval: %s", extra.body)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestRuleStoryEmbedded(t *testing.T) {
	h := newHook(t)
	cfg := testConfig(t)
	cfg.NotificationsFile = policyFile(t, h.srv.URL)
	cfg.OutboundAllow = "127.0.0.1/32"
	runRuleStory(t, startWith(t, Options{Config: cfg, HoldDecisionRequests: true}), h)
}

// TestRuleWindowAcrossRestart restarts the server inside a rule's window:
// the occurrences before the restart still count.
func TestRuleWindowAcrossRestart(t *testing.T) {
	cfg := testConfig(t)
	held := Options{Config: cfg, HoldDecisionRequests: true}
	ts := startWith(t, held)
	var rule ruleAnswer
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers",
		`{"name": "Disk latency", "conditions": {"event_type": "disk_latency"}, "time_window_minutes": 10, "min_count": 3}`, &rule))
	disk := func(word string) string {
		return `{"source": "node_exporter", "event_type": "disk_latency", "severity": "high", "host": "db-01",
			"message": "disk latency high on ` + word + `"}`
	}
	ts.post(disk("sda"))
	ts.post(disk("sdb"))
	// Wait until the engine stored the window with both occurrences.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ws, err := ts.srv.store.RuleWindows(context.Background())
		require.NoError(t, err)
		if len(ws) == 1 && strings.Count(string(ws[0].State), `"id"`) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the window was not stored with two occurrences: %+v", ws)
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Zero(t, ts.rule(rule.ID).Firings)

	require.NoError(t, ts.srv.Shutdown(t.Context()))
	ts = startWith(t, held)
	ts.post(disk("sdc"))
	xs := ts.waitExecutions(rule.ID, 1)
	require.Len(t, xs, 1)
	require.Equal(t, int64(1), ts.rule(rule.ID).Firings)
	reqs := ts.takeDecisions(1)
	require.Equal(t, xs[0].ID, reqs[0].ExecutionID)
	require.Equal(t, 3, reqs[0].Occurrences)
}

// TestRuleTestEnrichesAndScores: the event of a rule test goes through the
// enricher and the scorer as in the pipeline, so a condition on the asset
// or on the tags it adds matches in the test as it would live.
func TestRuleTestEnrichesAndScores(t *testing.T) {
	ts := start(t, testConfig(t))
	require.Equal(t, http.StatusCreated, ts.do("PUT", ts.events+"/api/v1/assets/db-01",
		`{"criticality": "critical", "environment": "production", "team": "dba"}`, nil))
	var rule ruleAnswer
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/rules/triggers",
		`{"name": "Production databases", "conditions": {"event_data.asset.criticality": "critical", "tags": "env:production"}}`, &rule))
	var tr struct {
		Matched bool   `json:"matched"`
		Reason  string `json:"reason"`
	}
	path := fmt.Sprintf("%s/api/v1/rules/triggers/%d/test", ts.events, rule.ID)
	event := func(host string) string {
		return `{"event": {"source": "zabbix", "event_type": "disk_full", "severity": "high", "host": "` + host + `", "message": "disk 95% full"}}`
	}
	require.Equal(t, http.StatusOK, ts.do("POST", path, event("db-01"), &tr))
	require.True(t, tr.Matched, tr.Reason)
	require.Equal(t, http.StatusOK, ts.do("POST", path, event("web-01"), &tr))
	require.False(t, tr.Matched)
	require.Regexp(t, `event_data.asset.criticality|tags`, tr.Reason, "an unknown host has no asset")
}
