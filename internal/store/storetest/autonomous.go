package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Autonomous is the part of a store that RunAutonomous checks: the
// autonomous service's state, with the events its decisions are about
// and the rule executions it keeps in step.
type Autonomous interface {
	store.Lifecycle
	store.EventStore
	store.RuleStore
	store.AutonomousStore
}

// RunAutonomous runs the conformance suite of store.AutonomousStore and
// of the rule execution updates of the autonomous service
// (UpdateRuleExecution, SetRuleExecutionFeedback), as RunAssets.
func RunAutonomous(t *testing.T, open func(t *testing.T) Autonomous) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *autoEnv)
	}{
		{"decisions/round trip", testDecisionRoundTrip},
		{"decisions/errors", testDecisionErrors},
		{"decisions/one per incident and per firing", testDecisionConflicts},
		{"decisions/concurrent inserts for one incident", testDecisionRace},
		{"decisions/list", testDecisionList},
		{"decisions/update", testDecisionUpdate},
		{"executions/round trip and update", testExecutions},
		{"executions/list", testExecutionList},
		{"approvals/lifecycle", testApprovals},
		{"approvals/concurrent use", testApprovalRace},
		{"learning data", testLearning},
		{"settings", testSettings},
		{"rule executions/update and feedback", testRuleExecutionFeedback},
	}
	for _, tt := range tests {
		t.Run("Autonomous/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			tt.fn(t, &autoEnv{s: s, ctx: ctx, base: base.Truncate(time.Microsecond)})
		})
	}
}

type autoEnv struct {
	s    Autonomous
	ctx  context.Context
	base time.Time
}

// event stores a processed event at the base time and returns its id.
func (e *autoEnv) event(t *testing.T, host string) int64 {
	t.Helper()
	p := mk(e.base, host, event.Critical, "CPU usage above 95%")
	require.NoError(t, e.s.WriteBatch(e.ctx, batch(p)))
	return p.ev.ID
}

func ptr[T any](v T) *T { return &v }

// fullDecision is a decision with every field set.
func (e *autoEnv) fullDecision(eventID int64) store.Decision {
	at := e.base.Add(-time.Minute)
	return store.Decision{
		EventID: eventID, IncidentID: ptr(eventID), RuleExecutionID: ptr(int64(41)), RuleID: ptr(int64(7)),
		SourceHost: "web-01", Pattern: "threshold_breach/critical/nginx", DecisionType: store.DecisionAutomate,
		Confidence: 0.876,
		Reasoning:  "severity critical: +0.30\nasset criticality high: +0.20\ntemplate success 0.93: +0.38",
		Factors: []store.Factor{
			{Name: "severity", Value: "critical", Contribution: 0.3, Detail: "a critical event"},
			{Name: "template_success", Value: "0.93", Contribution: 0.38},
		},
		RecommendedActions: []store.Recommendation{{
			TemplateID: 3, TemplateName: "CPU Investigation Playbook", Success: 0.81, Evidence: 12.5,
			Steps: []store.Step{
				{Name: "check", Type: "diagnostic", ActionID: 5, ActionName: "check_processes",
					Parameters: map[string]string{"host": "web-01"}, RiskLevel: "low", Timeout: "30s"},
				{Name: "kill", Type: "remediation", ActionID: 6, ActionName: "kill_high_cpu_processes",
					RiskLevel: "high", ApprovalRequired: true, ApprovalReason: "risk high", Group: "fix",
					Retries: 2, OnFailure: "rollback", Rollback: "restart_processes"},
				{Name: "tell", Type: "notification", Channels: []string{"email", "slack"}},
			},
		}},
		Evidence:            json.RawMessage(`{"similar": [{"incident": 12, "resolved_by": "CPU Investigation Playbook"}], "count": 1}`),
		Engine:              "builtin",
		Context:             json.RawMessage(`{"maintenance": false, "asset": {"criticality": "high", "name": "web-01"}}`),
		RequestedBy:         "rules",
		HumanOverride:       true,
		OverrideReason:      "known noisy host",
		Outcome:             "partially_successful",
		Feedback:            "helpful",
		FeedbackNotes:       "right call",
		FeedbackSuggestions: "page the web team too",
		FeedbackBy:          "key-1",
		FeedbackAt:          ptr(at.Add(3 * time.Second)),
		AcknowledgedAt:      ptr(at.Add(time.Second)),
		ResolvedAt:          ptr(at.Add(2 * time.Second)),
		CreatedAt:           at,
	}
}

// requireDecision checks that got is want as stored: the same fields,
// the JSON documents equal as documents, the confidence to two decimals.
func requireDecision(t *testing.T, want, got store.Decision) {
	t.Helper()
	requireDoc(t, want.Evidence, got.Evidence)
	requireDoc(t, want.Context, got.Context)
	want.Evidence, got.Evidence, want.Context, got.Context = nil, nil, nil, nil
	require.InDelta(t, want.Confidence, got.Confidence, 0.005001)
	want.Confidence = got.Confidence
	require.Equal(t, want, got)
}

// requireDoc checks that got is the JSON document want, or nil for nil.
func requireDoc(t *testing.T, want, got json.RawMessage) {
	t.Helper()
	if want == nil {
		require.Nil(t, got)
		return
	}
	require.JSONEq(t, string(want), string(got))
}

func testDecisionRoundTrip(t *testing.T, e *autoEnv) {
	_, err := e.s.Decision(e.ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := e.s.Decisions(e.ctx, store.DecisionQuery{})
	require.NoError(t, err)
	require.Empty(t, list)

	ev := e.event(t, "web-01")
	in := e.fullDecision(ev)
	got, err := e.s.InsertDecision(e.ctx, in)
	require.NoError(t, err)
	require.Positive(t, got.ID)
	in.ID = got.ID
	require.Equal(t, 0.88, got.Confidence, "kept with two decimals")
	requireDecision(t, in, got)
	read, err := e.s.Decision(e.ctx, got.ID)
	require.NoError(t, err)
	require.Equal(t, got, read)

	// The least decision: nil pointers stay nil, the lists are empty,
	// CreatedAt is stamped.
	before := time.Now().UTC().Truncate(time.Microsecond)
	least, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: ev, DecisionType: store.DecisionIgnore})
	require.NoError(t, err)
	require.Nil(t, least.IncidentID)
	require.Nil(t, least.RuleExecutionID)
	require.Nil(t, least.RuleID)
	require.Nil(t, least.Evidence)
	require.Nil(t, least.Context)
	require.Nil(t, least.FeedbackAt)
	require.Nil(t, least.AcknowledgedAt)
	require.Nil(t, least.ResolvedAt)
	require.NotNil(t, least.Factors)
	require.Empty(t, least.Factors)
	require.NotNil(t, least.RecommendedActions)
	require.Empty(t, least.RecommendedActions)
	require.Zero(t, least.Confidence)
	require.False(t, least.HumanOverride)
	require.Empty(t, least.Outcome)
	require.Empty(t, least.OverrideReason)
	require.False(t, least.CreatedAt.Before(before), "stamped now: %v", least.CreatedAt)
	read, err = e.s.Decision(e.ctx, least.ID)
	require.NoError(t, err)
	require.Equal(t, least, read)

	// Confidence is rounded to the nearest hundredth, both bounds kept.
	for _, c := range []float64{0, 0.004, 0.005, 0.994, 1} {
		d, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: ev, DecisionType: store.DecisionEscalate, Confidence: c})
		require.NoError(t, err)
		require.InDelta(t, c, d.Confidence, 0.005001, "%v", c)
		cents := d.Confidence * 100
		require.InDelta(t, float64(int(cents+0.5)), cents, 1e-9, "two decimals: %v", d.Confidence)
	}
}

func testDecisionErrors(t *testing.T, e *autoEnv) {
	ev := e.event(t, "web-01")
	_, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: ev + 1, DecisionType: store.DecisionIgnore})
	require.ErrorIs(t, err, store.ErrNotFound, "an event that does not exist")
	_, err = e.s.InsertDecision(e.ctx, store.Decision{EventID: ev + 1, IncidentID: ptr(ev + 1), DecisionType: store.DecisionIgnore})
	require.ErrorIs(t, err, store.ErrNotFound, "an event that does not exist, with an incident")
	for _, c := range []float64{-0.01, 1.01, 10} {
		_, err = e.s.InsertDecision(e.ctx, store.Decision{EventID: ev, DecisionType: store.DecisionIgnore, Confidence: c})
		require.Error(t, err, "confidence %v", c)
		require.NotErrorIs(t, err, store.ErrConflict)
		require.NotErrorIs(t, err, store.ErrNotFound)
	}
	list, err := e.s.Decisions(e.ctx, store.DecisionQuery{})
	require.NoError(t, err)
	require.Empty(t, list, "nothing was stored")
	_, err = e.s.UpdateDecision(e.ctx, store.Decision{ID: 99, DecisionType: store.DecisionIgnore})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testDecisionConflicts(t *testing.T, e *autoEnv) {
	ev := e.event(t, "web-01")
	other := e.event(t, "web-02")
	first, err := e.s.InsertDecision(e.ctx, e.fullDecision(ev))
	require.NoError(t, err)

	// The same incident, another firing: the stored decision comes back.
	again := e.fullDecision(other)
	again.IncidentID, again.RuleExecutionID = first.IncidentID, ptr(int64(42))
	again.Reasoning = "another try"
	got, err := e.s.InsertDecision(e.ctx, again)
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, first, got)

	// Another incident, the same firing (a redelivered request).
	again = e.fullDecision(other)
	again.IncidentID = ptr(other)
	got, err = e.s.InsertDecision(e.ctx, again)
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, first, got)

	// The same firing without an incident.
	again.IncidentID = nil
	got, err = e.s.InsertDecision(e.ctx, again)
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, first, got)

	// Neither: stored. Decisions without incident or firing are many.
	again.RuleExecutionID = ptr(int64(43))
	third, err := e.s.InsertDecision(e.ctx, again)
	require.NoError(t, err)
	require.NotEqual(t, first.ID, third.ID)
	for range 2 {
		_, err = e.s.InsertDecision(e.ctx, store.Decision{EventID: ev, DecisionType: store.DecisionInvestigate})
		require.NoError(t, err)
	}
	list, err := e.s.Decisions(e.ctx, store.DecisionQuery{})
	require.NoError(t, err)
	require.Len(t, list, 4)
}

func testDecisionRace(t *testing.T, e *autoEnv) {
	ev := e.event(t, "web-01")
	const n = 4
	var (
		wg   sync.WaitGroup
		errs [n]error
		got  [n]store.Decision
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = e.s.InsertDecision(e.ctx, store.Decision{
				EventID: ev, IncidentID: ptr(ev), DecisionType: store.DecisionAutomate, Reasoning: fmt.Sprint(i),
			})
		}()
	}
	wg.Wait()
	wins := 0
	for i := range n {
		if errs[i] == nil {
			wins++
			continue
		}
		require.ErrorIs(t, errs[i], store.ErrConflict)
	}
	require.Equal(t, 1, wins, "one decision per incident: %v", errs)
	for i := 1; i < n; i++ {
		require.Equal(t, got[0], got[i], "every caller has the stored decision")
	}
}

func testDecisionList(t *testing.T, e *autoEnv) {
	a, b := e.event(t, "web-01"), e.event(t, "web-02")
	at := func(m int) time.Time { return e.base.Add(time.Duration(m) * time.Minute) }
	ins := func(d store.Decision) store.Decision {
		t.Helper()
		d.DecisionType = store.DecisionInvestigate
		got, err := e.s.InsertDecision(e.ctx, d)
		require.NoError(t, err)
		return got
	}
	d1 := ins(store.Decision{EventID: a, IncidentID: ptr(int64(100)), CreatedAt: at(1)})
	d2 := ins(store.Decision{EventID: b, RuleExecutionID: ptr(int64(200)), CreatedAt: at(2)})
	d3 := ins(store.Decision{EventID: a, CreatedAt: at(2)}) // the same time as d2: by id
	d4 := ins(store.Decision{EventID: b, IncidentID: ptr(int64(101)), RuleExecutionID: ptr(int64(201)), CreatedAt: at(0)})
	idsOfDecisions := func(q store.DecisionQuery) []int64 {
		t.Helper()
		list, err := e.s.Decisions(e.ctx, q)
		require.NoError(t, err)
		out := make([]int64, len(list))
		for i, d := range list {
			out[i] = d.ID
		}
		return out
	}
	require.Equal(t, []int64{d3.ID, d2.ID, d1.ID, d4.ID}, idsOfDecisions(store.DecisionQuery{}), "newest first, then by id")
	require.Equal(t, []int64{d3.ID, d1.ID}, idsOfDecisions(store.DecisionQuery{EventID: a}))
	require.Equal(t, []int64{d4.ID}, idsOfDecisions(store.DecisionQuery{IncidentID: 101}))
	require.Equal(t, []int64{d2.ID}, idsOfDecisions(store.DecisionQuery{RuleExecutionID: 200}))
	require.Equal(t, []int64{d4.ID}, idsOfDecisions(store.DecisionQuery{EventID: b, RuleExecutionID: 201}))
	require.Empty(t, idsOfDecisions(store.DecisionQuery{EventID: a, RuleExecutionID: 201}))
	require.Equal(t, []int64{d3.ID, d2.ID}, idsOfDecisions(store.DecisionQuery{Since: at(2)}), "Since is inclusive")
	require.Equal(t, []int64{d3.ID, d2.ID, d1.ID}, idsOfDecisions(store.DecisionQuery{Since: at(1).Add(-time.Microsecond)}))
	require.Equal(t, []int64{d3.ID, d2.ID}, idsOfDecisions(store.DecisionQuery{Limit: 2}))
	require.Len(t, idsOfDecisions(store.DecisionQuery{Limit: store.MaxDecisionLimit + 1}), 4)

	// Limit 0 (or less) is DefaultDecisionLimit.
	for i := range store.DefaultDecisionLimit {
		ins(store.Decision{EventID: a, CreatedAt: at(10 + i)})
	}
	all := idsOfDecisions(store.DecisionQuery{Limit: store.MaxDecisionLimit})
	require.Len(t, all, store.DefaultDecisionLimit+4)
	require.Equal(t, all[:store.DefaultDecisionLimit], idsOfDecisions(store.DecisionQuery{}))
	require.Equal(t, all[:store.DefaultDecisionLimit], idsOfDecisions(store.DecisionQuery{Limit: -1}))
}

func testDecisionUpdate(t *testing.T, e *autoEnv) {
	ev := e.event(t, "web-01")
	in := e.fullDecision(ev)
	in.HumanOverride, in.OverrideReason, in.Outcome, in.Feedback = false, "", "", ""
	in.FeedbackNotes, in.FeedbackSuggestions, in.FeedbackBy = "", "", ""
	in.FeedbackAt, in.AcknowledgedAt, in.ResolvedAt = nil, nil, nil
	stored, err := e.s.InsertDecision(e.ctx, in)
	require.NoError(t, err)

	// Every mutable field changes; the others stay as stored whatever
	// the update says.
	upd := stored
	upd.DecisionType, upd.Outcome, upd.HumanOverride, upd.OverrideReason = store.DecisionEscalate, "failed", true, "operator knows better"
	upd.Feedback, upd.FeedbackNotes, upd.FeedbackSuggestions, upd.FeedbackBy = "incorrect", "wrong host", "look at the db", "key-9"
	upd.FeedbackAt, upd.AcknowledgedAt, upd.ResolvedAt = ptr(e.base.Add(time.Hour)), ptr(e.base.Add(time.Second)), ptr(e.base.Add(time.Minute))
	want := upd
	upd.EventID, upd.Confidence, upd.Reasoning, upd.Pattern, upd.IncidentID = ev+5, 0.1, "changed", "changed", nil
	upd.Factors, upd.RecommendedActions, upd.Evidence, upd.CreatedAt = nil, nil, nil, e.base.Add(time.Hour)
	got, err := e.s.UpdateDecision(e.ctx, upd)
	require.NoError(t, err)
	requireDecision(t, want, got)
	read, err := e.s.Decision(e.ctx, stored.ID)
	require.NoError(t, err)
	require.Equal(t, got, read)

	// And back: nil times and empty texts clear them.
	got, err = e.s.UpdateDecision(e.ctx, stored)
	require.NoError(t, err)
	require.Equal(t, stored, got)
}

// steps is an execution's plan, in the states given.
func (e *autoEnv) steps(check, kill string) []store.StepState {
	started, ended := e.base.Add(time.Second), e.base.Add(3*time.Second)
	return []store.StepState{
		{
			Step: store.Step{Name: "check", Type: "diagnostic", ActionID: 5, ActionName: "check_processes",
				Parameters: map[string]string{"host": "web-01", "top": "5"}, RiskLevel: "low", Timeout: "30s"},
			Status: check, Attempts: 2, ExitCode: ptr(0), Output: "nginx 97%\n", Truncated: true,
			Outputs: map[string]string{"pid": "4242"}, Validation: "exit code 0", StartedAt: &started, FinishedAt: &ended,
		},
		{
			Step: store.Step{Name: "kill", Type: "remediation", ActionID: 6, ActionName: "kill_high_cpu_processes",
				RiskLevel: "high", ApprovalRequired: true, ApprovalReason: "risk high", OnFailure: "rollback",
				Rollback: "restart_processes", Retries: 1, Group: "fix"},
			Status: kill, ApprovalID: ptr(int64(9)),
		},
	}
}

// requireExecution checks that got is want as stored, Data as a document
// and UpdatedAt set by the store.
func requireExecution(t *testing.T, want, got store.Execution) {
	t.Helper()
	requireDoc(t, want.Data, got.Data)
	want.Data, got.Data = nil, nil
	want.UpdatedAt = got.UpdatedAt
	require.Equal(t, want, got)
}

func testExecutions(t *testing.T, e *autoEnv) {
	_, err := e.s.Execution(e.ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.InsertExecution(e.ctx, store.Execution{DecisionID: 1, Status: store.ExecPending})
	require.ErrorIs(t, err, store.ErrNotFound, "no such decision")
	_, err = e.s.UpdateExecution(e.ctx, store.Execution{ID: 1, Status: store.ExecRunning})
	require.ErrorIs(t, err, store.ErrNotFound)

	d, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: e.event(t, "web-01"), DecisionType: store.DecisionAutomate})
	require.NoError(t, err)
	started := e.base.Add(time.Second)
	in := store.Execution{
		DecisionID: d.ID, TemplateID: ptr(int64(3)), RuleExecutionID: ptr(int64(41)), Status: store.ExecRunning,
		DryRun: true, RollbackOnFailure: true, RequestedBy: "automation",
		Data:  json.RawMessage(`{"event": {"source_host": "web-01", "id": 12}, "incident": null}`),
		Steps: e.steps(store.StepSucceeded, store.StepWaitingApproval), CreatedAt: e.base, StartedAt: &started,
		UpdatedAt: e.base,
	}
	got, err := e.s.InsertExecution(e.ctx, in)
	require.NoError(t, err)
	require.Positive(t, got.ID)
	in.ID = got.ID
	requireExecution(t, in, got)
	require.Equal(t, e.base, got.UpdatedAt, "as given")
	require.Nil(t, got.Rollback)
	require.Nil(t, got.FinishedAt)
	read, err := e.s.Execution(e.ctx, got.ID)
	require.NoError(t, err)
	require.Equal(t, got, read)

	// The least execution: times stamped, steps empty, pointers nil.
	before := time.Now().UTC().Truncate(time.Microsecond)
	least, err := e.s.InsertExecution(e.ctx, store.Execution{DecisionID: d.ID, Status: store.ExecPending})
	require.NoError(t, err)
	require.False(t, least.CreatedAt.Before(before))
	require.Equal(t, least.CreatedAt, least.UpdatedAt)
	require.NotNil(t, least.Steps)
	require.Empty(t, least.Steps)
	require.Nil(t, least.Rollback)
	require.Nil(t, least.Data)
	require.Nil(t, least.TemplateID)
	require.Nil(t, least.RuleExecutionID)
	require.Nil(t, least.StartedAt)

	// UpdateExecution replaces the steps and everything else but the
	// decision and the creation time, and stamps UpdatedAt.
	finished := e.base.Add(time.Minute)
	upd := got
	upd.Status, upd.Outcome, upd.Error = store.ExecRolledBack, "failed", "kill: exit status 1"
	upd.DryRun, upd.RollbackOnFailure, upd.RequestedBy, upd.TemplateID, upd.RuleExecutionID = false, false, "key-2", nil, nil
	upd.Steps = e.steps(store.StepSucceeded, store.StepFailed)[1:]
	upd.Steps[0].Output, upd.Steps[0].ExitCode = "no such process\x00", ptr(1)
	upd.Rollback = []store.StepState{{Step: store.Step{Name: "rollback kill", Type: "remediation", ActionName: "restart_processes"},
		Status: store.StepRolledBack, Attempts: 1}}
	upd.Data, upd.FinishedAt = json.RawMessage(`{"event": {"id": 13}}`), &finished
	want := upd
	upd.DecisionID, upd.CreatedAt = d.ID+1, e.base.Add(time.Hour)
	before = time.Now().UTC().Truncate(time.Microsecond)
	after, err := e.s.UpdateExecution(e.ctx, upd)
	require.NoError(t, err)
	require.Equal(t, "no such process", after.Steps[0].Output, "NUL removed, the rest kept")
	want.Steps[0].Output = after.Steps[0].Output
	requireExecution(t, want, after)
	require.Len(t, after.Steps, 1)
	require.False(t, after.UpdatedAt.Before(before), "stamped now: %v", after.UpdatedAt)
	read, err = e.s.Execution(e.ctx, got.ID)
	require.NoError(t, err)
	require.Equal(t, after, read)

	// A later update drops the rollback again.
	upd = after
	upd.Rollback = nil
	after, err = e.s.UpdateExecution(e.ctx, upd)
	require.NoError(t, err)
	require.Nil(t, after.Rollback)
}

func testExecutionList(t *testing.T, e *autoEnv) {
	ev := e.event(t, "web-01")
	d1, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: ev, DecisionType: store.DecisionAutomate})
	require.NoError(t, err)
	d2, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: ev, DecisionType: store.DecisionAutomate})
	require.NoError(t, err)
	ins := func(d int64, status string, m int) int64 {
		t.Helper()
		x, err := e.s.InsertExecution(e.ctx, store.Execution{DecisionID: d, Status: status, CreatedAt: e.base.Add(time.Duration(m) * time.Minute)})
		require.NoError(t, err)
		return x.ID
	}
	x1 := ins(d1.ID, store.ExecCompleted, 0)
	x2 := ins(d1.ID, store.ExecRunning, 2)
	x3 := ins(d2.ID, store.ExecPending, 1)
	x4 := ins(d2.ID, store.ExecRunning, 2)
	list := func(q store.ExecutionQuery) []int64 {
		t.Helper()
		xs, err := e.s.Executions(e.ctx, q)
		require.NoError(t, err)
		out := make([]int64, len(xs))
		for i, x := range xs {
			out[i] = x.ID
		}
		return out
	}
	require.Equal(t, []int64{x4, x2, x3, x1}, list(store.ExecutionQuery{}), "newest first, then by id")
	require.Equal(t, []int64{x2, x1}, list(store.ExecutionQuery{DecisionID: d1.ID}))
	require.Equal(t, []int64{x4, x2, x3}, list(store.ExecutionQuery{Statuses: []string{store.ExecRunning, store.ExecPending}}))
	require.Equal(t, []int64{x4}, list(store.ExecutionQuery{DecisionID: d2.ID, Statuses: []string{store.ExecRunning}}))
	require.Empty(t, list(store.ExecutionQuery{Statuses: []string{store.ExecCancelled}}))
	require.Equal(t, []int64{x4, x2}, list(store.ExecutionQuery{Limit: 2}))
	require.Len(t, list(store.ExecutionQuery{Limit: store.MaxDecisionLimit + 1}), 4)
	require.Len(t, list(store.ExecutionQuery{Limit: -1}), 4)
}

func testApprovals(t *testing.T, e *autoEnv) {
	_, err := e.s.Approval(e.ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.InsertApproval(e.ctx, store.Approval{DecisionID: 1, ActionID: 6, ActionName: "kill", ExpiresAt: e.base})
	require.ErrorIs(t, err, store.ErrNotFound, "no such decision")
	d, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: e.event(t, "web-01"), DecisionType: store.DecisionAutomate})
	require.NoError(t, err)
	_, err = e.s.InsertApproval(e.ctx, store.Approval{DecisionID: d.ID, ExecutionID: ptr(int64(99)), ActionID: 6, ActionName: "kill", ExpiresAt: e.base})
	require.ErrorIs(t, err, store.ErrNotFound, "no such execution")
	x, err := e.s.InsertExecution(e.ctx, store.Execution{DecisionID: d.ID, Status: store.ExecRunning})
	require.NoError(t, err)

	expires := e.base.Add(time.Hour)
	in := store.Approval{
		DecisionID: d.ID, ExecutionID: &x.ID, StepName: "kill", ActionID: 6, ActionName: "kill_high_cpu_processes",
		Parameters: map[string]string{"host": "web-01", "signal": "TERM"}, ParamsHash: "9f86d08", RiskLevel: "high",
		Reason: "risk high; blast radius 12 services", TwoPerson: true, RequestedBy: "key-1",
		Status: store.ApprovalApproved, ExpiresAt: expires, CreatedAt: e.base.Add(-time.Minute),
	}
	a1, err := e.s.InsertApproval(e.ctx, in)
	require.NoError(t, err)
	require.Positive(t, a1.ID)
	want := in
	want.ID, want.Status = a1.ID, store.ApprovalPending
	require.Equal(t, want, a1, "stored pending, whatever Status said")
	read, err := e.s.Approval(e.ctx, a1.ID)
	require.NoError(t, err)
	require.Equal(t, a1, read)

	a2, err := e.s.InsertApproval(e.ctx, store.Approval{DecisionID: d.ID, ActionID: 7, ActionName: "restart", RiskLevel: "medium",
		ExpiresAt: expires, CreatedAt: e.base.Add(-time.Second)})
	require.NoError(t, err)
	require.Nil(t, a2.ExecutionID)
	require.NotNil(t, a2.Parameters)
	require.Empty(t, a2.Parameters)
	require.Nil(t, a2.DecidedAt)
	require.Nil(t, a2.UsedAt)
	other, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: d.EventID, DecisionType: store.DecisionAutomate})
	require.NoError(t, err)
	before := time.Now().UTC().Truncate(time.Microsecond)
	a3, err := e.s.InsertApproval(e.ctx, store.Approval{DecisionID: other.ID, ActionID: 7, ActionName: "restart", ExpiresAt: expires})
	require.NoError(t, err)
	require.False(t, a3.CreatedAt.Before(before), "stamped now")

	approvals := func(q store.ApprovalQuery) []int64 {
		t.Helper()
		list, err := e.s.Approvals(e.ctx, q)
		require.NoError(t, err)
		out := make([]int64, len(list))
		for i, a := range list {
			out[i] = a.ID
		}
		return out
	}
	require.Equal(t, []int64{a1.ID, a2.ID, a3.ID}, approvals(store.ApprovalQuery{}), "oldest first")
	require.Equal(t, []int64{a1.ID, a2.ID}, approvals(store.ApprovalQuery{DecisionID: d.ID}))
	require.Equal(t, []int64{a1.ID}, approvals(store.ApprovalQuery{Limit: 1}))
	require.Equal(t, []int64{a1.ID, a2.ID, a3.ID}, approvals(store.ApprovalQuery{Status: store.ApprovalPending}))
	require.Empty(t, approvals(store.ApprovalQuery{Status: store.ApprovalApproved}))

	// Deciding: only approved, rejected or expired; approved with a token.
	_, err = e.s.DecideApproval(e.ctx, store.Approval{ID: 99, Status: store.ApprovalRejected, DecidedBy: "key-2"})
	require.ErrorIs(t, err, store.ErrNotFound)
	for _, bad := range []store.Approval{
		{ID: a1.ID, Status: store.ApprovalUsed, TokenHash: "h"},
		{ID: a1.ID, Status: store.ApprovalPending},
		{ID: a1.ID, Status: store.ApprovalApproved},
	} {
		_, err = e.s.DecideApproval(e.ctx, bad)
		require.Error(t, err, "%+v", bad)
		require.NotErrorIs(t, err, store.ErrConflict)
	}
	decided := e.base.Add(time.Minute)
	ok, err := e.s.DecideApproval(e.ctx, store.Approval{ID: a1.ID, Status: store.ApprovalApproved, DecidedBy: "key-2",
		DecidedAt: &decided, Comment: "go", TokenHash: "token-hash-1", ActionName: "ignored", RiskLevel: "ignored"})
	require.NoError(t, err)
	want = a1
	want.Status, want.DecidedBy, want.DecidedAt, want.Comment, want.TokenHash = store.ApprovalApproved, "key-2", &decided, "go", "token-hash-1"
	require.Equal(t, want, ok)
	read, err = e.s.Approval(e.ctx, a1.ID)
	require.NoError(t, err)
	require.Equal(t, ok, read)
	require.Equal(t, []int64{a1.ID}, approvals(store.ApprovalQuery{Status: store.ApprovalApproved}))

	got, err := e.s.DecideApproval(e.ctx, store.Approval{ID: a1.ID, Status: store.ApprovalRejected, DecidedBy: "key-3"})
	require.ErrorIs(t, err, store.ErrConflict, "no longer pending")
	require.Equal(t, ok, got, "the stored approval")

	before = time.Now().UTC().Truncate(time.Microsecond)
	rejected, err := e.s.DecideApproval(e.ctx, store.Approval{ID: a2.ID, Status: store.ApprovalRejected, DecidedBy: "key-3",
		Comment: "not now", TokenHash: "ignored-for-a-rejection"})
	require.NoError(t, err)
	require.Equal(t, store.ApprovalRejected, rejected.Status)
	require.Empty(t, rejected.TokenHash)
	require.NotNil(t, rejected.DecidedAt)
	require.False(t, rejected.DecidedAt.Before(before), "DecidedAt nil is now")
	_, err = e.s.DecideApproval(e.ctx, store.Approval{ID: a2.ID, Status: store.ApprovalApproved, TokenHash: "h2"})
	require.ErrorIs(t, err, store.ErrConflict)

	// A token hash is unique.
	_, err = e.s.DecideApproval(e.ctx, store.Approval{ID: a3.ID, Status: store.ApprovalApproved, TokenHash: "token-hash-1"})
	require.Error(t, err)
	read, err = e.s.Approval(e.ctx, a3.ID)
	require.NoError(t, err)
	require.Equal(t, a3, read, "unchanged")

	// Using: once.
	_, err = e.s.UseApproval(e.ctx, "", e.base)
	require.ErrorIs(t, err, store.ErrNotFound, "an empty hash matches no approval")
	_, err = e.s.UseApproval(e.ctx, "no-such-hash", e.base)
	require.ErrorIs(t, err, store.ErrNotFound)
	usedAt := e.base.Add(2 * time.Minute)
	used, err := e.s.UseApproval(e.ctx, "token-hash-1", usedAt)
	require.NoError(t, err)
	want = ok
	want.Status, want.UsedAt = store.ApprovalUsed, &usedAt
	require.Equal(t, want, used)
	read, err = e.s.Approval(e.ctx, a1.ID)
	require.NoError(t, err)
	require.Equal(t, used, read)
	got, err = e.s.UseApproval(e.ctx, "token-hash-1", usedAt.Add(time.Second))
	require.ErrorIs(t, err, store.ErrConflict, "a replayed token")
	require.Equal(t, used, got)

	// Expired: decided, never usable.
	expired, err := e.s.DecideApproval(e.ctx, store.Approval{ID: a3.ID, Status: store.ApprovalExpired, DecidedBy: "system"})
	require.NoError(t, err)
	require.Equal(t, store.ApprovalExpired, expired.Status)
	require.Equal(t, []int64{a3.ID}, approvals(store.ApprovalQuery{Status: store.ApprovalExpired}))
}

func testApprovalRace(t *testing.T, e *autoEnv) {
	d, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: e.event(t, "web-01"), DecisionType: store.DecisionAutomate})
	require.NoError(t, err)
	for round := range 5 {
		a, err := e.s.InsertApproval(e.ctx, store.Approval{DecisionID: d.ID, ActionID: 6, ActionName: "kill", ExpiresAt: e.base.Add(time.Hour)})
		require.NoError(t, err)
		hash := fmt.Sprintf("race-%d", round)
		_, err = e.s.DecideApproval(e.ctx, store.Approval{ID: a.ID, Status: store.ApprovalApproved, DecidedBy: "key-2", TokenHash: hash})
		require.NoError(t, err)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  [2]error
			got   [2]store.Approval
		)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i], errs[i] = e.s.UseApproval(e.ctx, hash, e.base.Add(time.Duration(i+1)*time.Second))
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "two uses of one token succeeded")
				winner = i
				continue
			}
			require.ErrorIs(t, err, store.ErrConflict)
		}
		require.NotEqual(t, -1, winner, "one use succeeds: %v", errs)
		loser := 1 - winner
		require.Equal(t, got[winner], got[loser], "the loser sees the winner's use")
		require.Equal(t, store.ApprovalUsed, got[winner].Status)
	}
}

func testLearning(t *testing.T, e *autoEnv) {
	list, err := e.s.LearningRecords(e.ctx, 0, 10)
	require.NoError(t, err)
	require.Empty(t, list)
	_, err = e.s.InsertLearning(e.ctx, store.LearningRecord{DecisionID: ptr(int64(99)), Pattern: "p", Template: "1"})
	require.ErrorIs(t, err, store.ErrNotFound, "no such decision")

	d, err := e.s.InsertDecision(e.ctx, store.Decision{EventID: e.event(t, "web-01"), DecisionType: store.DecisionAutomate})
	require.NoError(t, err)
	in := store.LearningRecord{
		DecisionID: &d.ID, Pattern: "threshold_breach/critical/nginx", Template: "3",
		Observation:     json.RawMessage(`{"success": true, "weight": 1, "kind": "outcome"}`),
		ActionTaken:     json.RawMessage(`{"template_id": 3, "steps": ["check", "kill"]}`),
		OutcomeSuccess:  ptr(true),
		OutcomeMetrics:  json.RawMessage(`{"response_time": 1.5, "resolution_time": 42}`),
		LessonsLearned:  "kill works on nginx",
		KnowledgeUpdate: json.RawMessage(`{"alpha": 2, "beta": 1}`),
		CreatedAt:       e.base,
	}
	got, err := e.s.InsertLearning(e.ctx, in)
	require.NoError(t, err)
	require.Positive(t, got.ID)
	for _, p := range [][2]json.RawMessage{{in.Observation, got.Observation}, {in.ActionTaken, got.ActionTaken},
		{in.OutcomeMetrics, got.OutcomeMetrics}, {in.KnowledgeUpdate, got.KnowledgeUpdate}} {
		requireDoc(t, p[0], p[1])
	}
	want := in
	want.ID = got.ID
	want.Observation, want.ActionTaken, want.OutcomeMetrics, want.KnowledgeUpdate = nil, nil, nil, nil
	cmp := got
	cmp.Observation, cmp.ActionTaken, cmp.OutcomeMetrics, cmp.KnowledgeUpdate = nil, nil, nil, nil
	require.Equal(t, want, cmp)

	before := time.Now().UTC().Truncate(time.Microsecond)
	ids := []int64{got.ID}
	for i, success := range []*bool{nil, ptr(false), nil, ptr(true)} {
		l := store.LearningRecord{Pattern: "p", Template: fmt.Sprintf("action:%d", i), OutcomeSuccess: success,
			Observation: json.RawMessage(`{"feedback": "helpful"}`)}
		if i%2 == 0 {
			l.DecisionID = &d.ID
		}
		r, err := e.s.InsertLearning(e.ctx, l)
		require.NoError(t, err)
		require.Equal(t, success, r.OutcomeSuccess)
		require.False(t, r.CreatedAt.Before(before), "stamped now")
		require.Nil(t, r.ActionTaken)
		require.Empty(t, r.LessonsLearned)
		require.Greater(t, r.ID, ids[len(ids)-1])
		ids = append(ids, r.ID)
	}

	// Paged by id.
	var paged []int64
	after := int64(0)
	for {
		page, err := e.s.LearningRecords(e.ctx, after, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			paged = append(paged, r.ID)
		}
		after = page[len(page)-1].ID
	}
	require.Equal(t, ids, paged)
	all, err := e.s.LearningRecords(e.ctx, 0, 100)
	require.NoError(t, err)
	require.Len(t, all, 5)
	require.Equal(t, got, all[0])
	rest, err := e.s.LearningRecords(e.ctx, ids[2], 100)
	require.NoError(t, err)
	require.Len(t, rest, 2)
	require.Equal(t, ids[3], rest[0].ID)
}

func testSettings(t *testing.T, e *autoEnv) {
	_, err := e.s.Setting(e.ctx, "paused")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, e.s.PutSetting(e.ctx, "paused", json.RawMessage(`{"paused": true, "by": "key-1", "at": "2026-12-02T13:00:00Z"}`)))
	v, err := e.s.Setting(e.ctx, "paused")
	require.NoError(t, err)
	require.JSONEq(t, `{"by": "key-1", "at": "2026-12-02T13:00:00Z", "paused": true}`, string(v))
	require.NoError(t, e.s.PutSetting(e.ctx, "paused", json.RawMessage(`false`)))
	v, err = e.s.Setting(e.ctx, "paused")
	require.NoError(t, err)
	require.JSONEq(t, `false`, string(v), "replaced")
	require.NoError(t, e.s.PutSetting(e.ctx, "policy", json.RawMessage(`[1, "two"]`)))
	v, err = e.s.Setting(e.ctx, "policy")
	require.NoError(t, err)
	require.JSONEq(t, `[1, "two"]`, string(v))
	v, err = e.s.Setting(e.ctx, "paused")
	require.NoError(t, err)
	require.JSONEq(t, `false`, string(v), "keys are apart")

	require.Error(t, e.s.PutSetting(e.ctx, "paused", json.RawMessage(`{not json`)))
	require.Error(t, e.s.PutSetting(e.ctx, "paused", nil))
	require.Error(t, e.s.PutSetting(e.ctx, "", json.RawMessage(`true`)))
	v, err = e.s.Setting(e.ctx, "paused")
	require.NoError(t, err)
	require.JSONEq(t, `false`, string(v), "a refused put changes nothing")
}

func testRuleExecutionFeedback(t *testing.T, e *autoEnv) {
	rule, err := e.s.CreateTriggerRule(e.ctx, highCPU(e.base))
	require.NoError(t, err)
	tmpl, err := e.s.CreateResponseTemplate(e.ctx, cpuPlaybook(rule.ID, e.base))
	require.NoError(t, err)
	other := cpuPlaybook(rule.ID, e.base)
	other.Name = "Another playbook"
	tmpl2, err := e.s.CreateResponseTemplate(e.ctx, other)
	require.NoError(t, err)

	_, err = e.s.UpdateRuleExecution(e.ctx, store.RuleExecutionUpdate{ID: 99, Status: store.ExecRunning})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.s.SetRuleExecutionFeedback(e.ctx, 99, "helpful", "")
	require.ErrorIs(t, err, store.ErrNotFound)

	xs, err := e.s.RecordFirings(e.ctx, store.FiringBatch{Executions: []store.RuleExecution{{
		TriggerRuleID: rule.ID, ResponseTemplateID: &tmpl.ID, TriggeringEventID: 7340032, TriggeringRawEventID: 7340031,
		Status: store.ExecPending, StartedAt: e.base,
	}}})
	require.NoError(t, err)
	x := xs[0]
	require.Empty(t, x.HumanFeedback)
	require.Empty(t, x.FeedbackNotes)

	// Status alone leaves the rest.
	got, err := e.s.UpdateRuleExecution(e.ctx, store.RuleExecutionUpdate{ID: x.ID, Status: store.ExecRunning})
	require.NoError(t, err)
	want := x
	want.Status = store.ExecRunning
	require.Equal(t, want, got)

	// The others replace what is stored when set.
	done := e.base.Add(time.Minute)
	got, err = e.s.UpdateRuleExecution(e.ctx, store.RuleExecutionUpdate{ID: x.ID, Status: store.ExecFailed,
		ResponseTemplateID: &tmpl2.ID, Result: json.RawMessage(`{"execution_id": 5, "outcome": "failed"}`),
		Error: "kill: exit status 1", CompletedAt: &done})
	require.NoError(t, err)
	require.JSONEq(t, `{"outcome": "failed", "execution_id": 5}`, string(got.Result))
	want.Status, want.ResponseTemplateID, want.Error, want.CompletedAt, want.Result = store.ExecFailed, &tmpl2.ID, "kill: exit status 1", &done, got.Result
	require.Equal(t, want, got)
	_, err = e.s.UpdateRuleExecution(e.ctx, store.RuleExecutionUpdate{ID: x.ID, Status: store.ExecFailed, ResponseTemplateID: ptr(tmpl2.ID + 100)})
	require.ErrorIs(t, err, store.ErrNotFound, "no such template")
	_, err = e.s.UpdateRuleExecution(e.ctx, store.RuleExecutionUpdate{ID: x.ID})
	require.Error(t, err, "no status")
	read, err := e.s.RuleExecution(e.ctx, x.ID)
	require.NoError(t, err)
	require.Equal(t, got, read, "the refused updates changed nothing")

	// Feedback, carried by every read.
	fb, err := e.s.SetRuleExecutionFeedback(e.ctx, x.ID, "not_helpful", "the wrong playbook")
	require.NoError(t, err)
	want = got
	want.HumanFeedback, want.FeedbackNotes = "not_helpful", "the wrong playbook"
	require.Equal(t, want, fb)
	read, err = e.s.RuleExecution(e.ctx, x.ID)
	require.NoError(t, err)
	require.Equal(t, want, read)
	list, err := e.s.RuleExecutions(e.ctx, store.RuleExecutionQuery{RuleID: rule.ID})
	require.NoError(t, err)
	require.Equal(t, []store.RuleExecution{want}, list)
	occ, err := e.s.OccurrenceExecution(e.ctx, rule.ID, 7340031)
	require.NoError(t, err)
	require.Equal(t, want, occ)
	replayed, err := e.s.RecordFirings(e.ctx, store.FiringBatch{Executions: []store.RuleExecution{{
		TriggerRuleID: rule.ID, TriggeringEventID: 7340032, TriggeringRawEventID: 7340031, Status: store.ExecPending, StartedAt: e.base,
	}}})
	require.NoError(t, err)
	require.Equal(t, want, replayed[0], "a redelivered firing returns the stored execution, feedback included")

	// An update keeps the feedback; feedback "" clears it.
	got, err = e.s.UpdateRuleExecution(e.ctx, store.RuleExecutionUpdate{ID: x.ID, Status: store.ExecRolledBack})
	require.NoError(t, err)
	require.Equal(t, "not_helpful", got.HumanFeedback)
	got, err = e.s.SetRuleExecutionFeedback(e.ctx, x.ID, "", "")
	require.NoError(t, err)
	require.Empty(t, got.HumanFeedback)
	require.Empty(t, got.FeedbackNotes)
	require.Equal(t, store.ExecRolledBack, got.Status)
}
