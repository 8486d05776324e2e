package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// Rules is the part of a store that RunRules checks.
type Rules interface {
	store.Lifecycle
	store.RuleStore
}

// RunRules runs the conformance suite of store.RuleStore, as RunAssets.
func RunRules(t *testing.T, open func(t *testing.T) Rules) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *ruleEnv)
	}{
		{"trigger rules", testTriggerRules},
		{"response templates", testResponseTemplates},
		{"executions", testRuleExecutions},
		{"firings", testFirings},
	}
	for _, tt := range tests {
		t.Run("Rules/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			tt.fn(t, &ruleEnv{s: s, ctx: ctx, base: base.Truncate(time.Microsecond)})
		})
	}
}

type ruleEnv struct {
	s    Rules
	ctx  context.Context
	base time.Time
}

// highCPU is the seed's High CPU Alert rule.
func highCPU(at time.Time) store.TriggerRule {
	return store.TriggerRule{
		Name:               "High CPU Alert",
		Description:        "CPU above 90% on a critical or high event",
		Conditions:         json.RawMessage(`{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}}`),
		SeverityThreshold:  "high",
		TimeWindowMinutes:  5,
		MinCount:           1,
		GroupBy:            []string{"source_host"},
		MaxTriggersPerHour: 3,
		Active:             true,
		CreatedBy:          "a1b2c3d4e5f6",
		CreatedAt:          at,
		UpdatedAt:          at,
	}
}

// requireRule checks that got is want as stored: the same fields, with
// an equal condition document.
func requireRule(t *testing.T, want, got store.TriggerRule) {
	t.Helper()
	require.JSONEq(t, string(want.Conditions), string(got.Conditions))
	want.Conditions, got.Conditions = nil, nil
	require.Equal(t, want, got)
}

func testTriggerRules(t *testing.T, e *ruleEnv) {
	rules, err := e.s.TriggerRules(e.ctx, nil)
	require.NoError(t, err)
	require.Empty(t, rules)
	_, err = e.s.TriggerRule(e.ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)

	want := highCPU(e.base)
	got, err := e.s.CreateTriggerRule(e.ctx, want)
	require.NoError(t, err)
	require.NotZero(t, got.ID)
	want.ID = got.ID
	requireRule(t, want, got)
	read, err := e.s.TriggerRule(e.ctx, got.ID)
	require.NoError(t, err)
	requireRule(t, want, read)

	_, err = e.s.CreateTriggerRule(e.ctx, highCPU(e.base))
	require.ErrorIs(t, err, store.ErrConflict, "names are unique")

	// A second rule with the unset fields: no threshold, no creator, no
	// group, stamped now.
	other, err := e.s.CreateTriggerRule(e.ctx, store.TriggerRule{
		Name: "Disk", Conditions: json.RawMessage(`{}`), MinCount: 2, MaxTriggersPerHour: 10,
	})
	require.NoError(t, err)
	require.Greater(t, other.ID, got.ID)
	require.Empty(t, other.SeverityThreshold)
	require.Empty(t, other.CreatedBy)
	require.Equal(t, []string{}, other.GroupBy)
	require.False(t, other.Active)
	require.False(t, other.CreatedAt.IsZero())
	require.Equal(t, other.CreatedAt, other.UpdatedAt)
	require.JSONEq(t, `{}`, string(other.Conditions))

	rules, err = e.s.TriggerRules(e.ctx, nil)
	require.NoError(t, err)
	require.Len(t, rules, 2)
	require.Equal(t, []int64{got.ID, other.ID}, []int64{rules[0].ID, rules[1].ID}, "by id")
	yes, no := true, false
	rules, err = e.s.TriggerRules(e.ctx, &yes)
	require.NoError(t, err)
	require.Len(t, rules, 1)
	require.Equal(t, got.ID, rules[0].ID)
	rules, err = e.s.TriggerRules(e.ctx, &no)
	require.NoError(t, err)
	require.Len(t, rules, 1)
	require.Equal(t, other.ID, rules[0].ID)

	t.Run("update", func(t *testing.T) {
		up := read
		up.Name = "High CPU Alert (strict)"
		up.Description = ""
		up.Conditions = json.RawMessage(`{"metadata.cpu_usage": {"$gt": 95}}`)
		up.SeverityThreshold = "critical"
		up.TimeWindowMinutes, up.MinCount, up.MaxTriggersPerHour = 10, 3, 1
		up.GroupBy = []string{"source_host", "event_type"}
		up.Active = false
		up.CreatedBy, up.CreatedAt = "someone else", e.base.Add(time.Hour) // not changed by an update
		up.UpdatedAt = e.base.Add(time.Minute)
		stored, err := e.s.UpdateTriggerRule(e.ctx, up)
		require.NoError(t, err)
		up.CreatedBy, up.CreatedAt = read.CreatedBy, read.CreatedAt
		requireRule(t, up, stored)
		again, err := e.s.TriggerRule(e.ctx, up.ID)
		require.NoError(t, err)
		requireRule(t, up, again)

		dup := stored
		dup.Name = "Disk"
		_, err = e.s.UpdateTriggerRule(e.ctx, dup)
		require.ErrorIs(t, err, store.ErrConflict)
		// Its own name is no conflict.
		_, err = e.s.UpdateTriggerRule(e.ctx, stored)
		require.NoError(t, err)
		missing := stored
		missing.ID = other.ID + 100
		_, err = e.s.UpdateTriggerRule(e.ctx, missing)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
	t.Run("delete", func(t *testing.T) {
		require.NoError(t, e.s.DeleteTriggerRule(e.ctx, other.ID))
		_, err := e.s.TriggerRule(e.ctx, other.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, e.s.DeleteTriggerRule(e.ctx, other.ID), store.ErrNotFound)
		// The name is free again.
		_, err = e.s.CreateTriggerRule(e.ctx, store.TriggerRule{Name: "Disk", Conditions: json.RawMessage(`{}`)})
		require.NoError(t, err)
	})
}

// cpuPlaybook is the seed's CPU Investigation Playbook for rule.
func cpuPlaybook(rule int64, at time.Time) store.ResponseTemplate {
	return store.ResponseTemplate{
		Name:          "CPU Investigation Playbook",
		Type:          "investigation",
		TriggerRuleID: rule,
		Definition: json.RawMessage(`{"actions": [{"type": "diagnostic", "script": "check_processes"},
			{"type": "remediation", "script": "kill_high_cpu_processes", "approval_required": true},
			{"type": "notification", "channels": ["email", "slack"]}]}`),
		ApprovalRequired:        true,
		RollbackSupported:       false,
		MaxExecutionTimeMinutes: 15,
		Active:                  true,
		CreatedAt:               at,
	}
}

func requireTemplate(t *testing.T, want, got store.ResponseTemplate) {
	t.Helper()
	require.JSONEq(t, string(want.Definition), string(got.Definition))
	want.Definition, got.Definition = nil, nil
	require.Equal(t, want, got)
}

func testResponseTemplates(t *testing.T, e *ruleEnv) {
	rule, err := e.s.CreateTriggerRule(e.ctx, highCPU(e.base))
	require.NoError(t, err)
	other, err := e.s.CreateTriggerRule(e.ctx, store.TriggerRule{Name: "Other", Conditions: json.RawMessage(`{}`), Active: true})
	require.NoError(t, err)

	list, err := e.s.ResponseTemplates(e.ctx, nil)
	require.NoError(t, err)
	require.Empty(t, list)
	_, err = e.s.ResponseTemplate(e.ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)

	want := cpuPlaybook(rule.ID, e.base)
	got, err := e.s.CreateResponseTemplate(e.ctx, want)
	require.NoError(t, err)
	require.NotZero(t, got.ID)
	want.ID = got.ID
	requireTemplate(t, want, got)
	read, err := e.s.ResponseTemplate(e.ctx, got.ID)
	require.NoError(t, err)
	requireTemplate(t, want, read)

	_, err = e.s.CreateResponseTemplate(e.ctx, cpuPlaybook(rule.ID, e.base))
	require.ErrorIs(t, err, store.ErrConflict, "names are unique")
	orphan := cpuPlaybook(other.ID+100, e.base)
	orphan.Name = "Orphan"
	_, err = e.s.CreateResponseTemplate(e.ctx, orphan)
	require.ErrorIs(t, err, store.ErrNotFound, "the rule must exist")

	second := cpuPlaybook(other.ID, time.Time{})
	second.Name, second.Active = "Escalate", false
	second.Type = "escalation"
	s2, err := e.s.CreateResponseTemplate(e.ctx, second)
	require.NoError(t, err)
	require.False(t, s2.CreatedAt.IsZero())
	yes := true
	list, err = e.s.ResponseTemplates(e.ctx, &yes)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, got.ID, list[0].ID)
	list, err = e.s.ResponseTemplates(e.ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{got.ID, s2.ID}, []int64{list[0].ID, list[1].ID})

	t.Run("rule in use", func(t *testing.T) {
		require.ErrorIs(t, e.s.DeleteTriggerRule(e.ctx, other.ID), store.ErrConflict, "a template refers to it")
	})
	t.Run("update", func(t *testing.T) {
		up := read
		up.Name = "CPU Playbook v2"
		up.Type = "remediation"
		up.TriggerRuleID = other.ID
		up.Definition = json.RawMessage(`{"actions": [{"type": "notification", "channels": ["ops"]}]}`)
		up.ApprovalRequired, up.RollbackSupported, up.Active = false, true, false
		up.MaxExecutionTimeMinutes = 5
		up.CreatedAt = e.base.Add(time.Hour) // not changed by an update
		stored, err := e.s.UpdateResponseTemplate(e.ctx, up)
		require.NoError(t, err)
		up.CreatedAt = read.CreatedAt
		requireTemplate(t, up, stored)

		dup := stored
		dup.Name = "Escalate"
		_, err = e.s.UpdateResponseTemplate(e.ctx, dup)
		require.ErrorIs(t, err, store.ErrConflict)
		norule := stored
		norule.TriggerRuleID = other.ID + 100
		_, err = e.s.UpdateResponseTemplate(e.ctx, norule)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.Contains(t, err.Error(), "no trigger rule")
		missing := stored
		missing.ID = s2.ID + 100
		_, err = e.s.UpdateResponseTemplate(e.ctx, missing)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
	t.Run("delete", func(t *testing.T) {
		require.NoError(t, e.s.DeleteResponseTemplate(e.ctx, s2.ID))
		require.ErrorIs(t, e.s.DeleteResponseTemplate(e.ctx, s2.ID), store.ErrNotFound)
		_, err := e.s.ResponseTemplate(e.ctx, s2.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func testRuleExecutions(t *testing.T, e *ruleEnv) {
	rule, err := e.s.CreateTriggerRule(e.ctx, highCPU(e.base))
	require.NoError(t, err)
	other, err := e.s.CreateTriggerRule(e.ctx, store.TriggerRule{Name: "Other", Conditions: json.RawMessage(`{}`)})
	require.NoError(t, err)
	tmpl, err := e.s.CreateResponseTemplate(e.ctx, cpuPlaybook(rule.ID, e.base))
	require.NoError(t, err)

	list, err := e.s.RuleExecutions(e.ctx, store.RuleExecutionQuery{})
	require.NoError(t, err)
	require.Empty(t, list)
	_, err = e.s.RuleExecution(e.ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)

	done := e.base.Add(90 * time.Second)
	first, err := e.s.InsertRuleExecution(e.ctx, store.RuleExecution{
		TriggerRuleID: rule.ID, ResponseTemplateID: &tmpl.ID, TriggeringEventID: 7340032,
		Status: "completed", StartedAt: e.base, CompletedAt: &done,
		Result: json.RawMessage(`{"steps": 3}`), Error: "",
	})
	require.NoError(t, err)
	require.NotZero(t, first.ID)
	require.Equal(t, rule.ID, first.TriggerRuleID)
	require.Equal(t, tmpl.ID, *first.ResponseTemplateID)
	require.Equal(t, int64(7340032), first.TriggeringEventID)
	require.Equal(t, "completed", first.Status)
	require.Equal(t, e.base, first.StartedAt)
	require.Equal(t, done, *first.CompletedAt)
	require.JSONEq(t, `{"steps": 3}`, string(first.Result))
	read, err := e.s.RuleExecution(e.ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, first, read)

	// Pending, without a template, result or completion.
	second, err := e.s.InsertRuleExecution(e.ctx, store.RuleExecution{
		TriggerRuleID: rule.ID, TriggeringEventID: 7340033, Status: "pending", StartedAt: e.base.Add(time.Minute),
	})
	require.NoError(t, err)
	require.Nil(t, second.ResponseTemplateID)
	require.Nil(t, second.CompletedAt)
	require.Nil(t, second.Result)
	third, err := e.s.InsertRuleExecution(e.ctx, store.RuleExecution{
		TriggerRuleID: other.ID, TriggeringEventID: 7340034, Status: "failed", Error: "timed out",
		StartedAt: e.base.Add(2 * time.Minute),
	})
	require.NoError(t, err)
	require.Equal(t, "timed out", third.Error)

	_, err = e.s.InsertRuleExecution(e.ctx, store.RuleExecution{TriggerRuleID: other.ID + 100, Status: "pending"})
	require.ErrorIs(t, err, store.ErrNotFound, "the rule must exist")
	bad := tmpl.ID + 100
	_, err = e.s.InsertRuleExecution(e.ctx, store.RuleExecution{TriggerRuleID: rule.ID, ResponseTemplateID: &bad, Status: "pending"})
	require.ErrorIs(t, err, store.ErrNotFound, "the template must exist")

	ids := func(q store.RuleExecutionQuery) []int64 {
		t.Helper()
		xs, err := e.s.RuleExecutions(e.ctx, q)
		require.NoError(t, err)
		out := []int64{}
		for _, x := range xs {
			out = append(out, x.ID)
		}
		return out
	}
	require.Equal(t, []int64{third.ID, second.ID, first.ID}, ids(store.RuleExecutionQuery{}), "newest first")
	require.Equal(t, []int64{second.ID, first.ID}, ids(store.RuleExecutionQuery{RuleID: rule.ID}))
	require.Equal(t, []int64{second.ID}, ids(store.RuleExecutionQuery{RuleID: rule.ID, Status: "pending"}))
	require.Equal(t, []int64{third.ID, second.ID}, ids(store.RuleExecutionQuery{Since: e.base.Add(time.Minute)}))
	require.Equal(t, []int64{third.ID}, ids(store.RuleExecutionQuery{Limit: 1}))
	require.Empty(t, ids(store.RuleExecutionQuery{Status: "running"}))

	t.Run("in use", func(t *testing.T) {
		require.ErrorIs(t, e.s.DeleteResponseTemplate(e.ctx, tmpl.ID), store.ErrConflict)
		require.ErrorIs(t, e.s.DeleteTriggerRule(e.ctx, other.ID), store.ErrConflict, "an execution refers to it")
	})
}

func testFirings(t *testing.T, e *ruleEnv) {
	rule, err := e.s.CreateTriggerRule(e.ctx, highCPU(e.base))
	require.NoError(t, err)
	require.Zero(t, rule.Firings)
	require.Nil(t, rule.LastFiredAt)
	other, err := e.s.CreateTriggerRule(e.ctx, store.TriggerRule{Name: "Other", Conditions: json.RawMessage(`{}`), Active: true})
	require.NoError(t, err)
	tmpl, err := e.s.CreateResponseTemplate(e.ctx, cpuPlaybook(rule.ID, e.base))
	require.NoError(t, err)

	fired := e.base.Add(time.Minute)
	firing := func(ruleID, raw int64) store.RuleExecution {
		return store.RuleExecution{TriggerRuleID: ruleID, TriggeringEventID: 9000, TriggeringRawEventID: raw,
			Status: "pending", StartedAt: fired}
	}
	withTmpl := firing(rule.ID, 9001)
	withTmpl.ResponseTemplateID = &tmpl.ID
	xs, err := e.s.RecordFirings(e.ctx, store.FiringBatch{
		Executions: []store.RuleExecution{withTmpl, firing(other.ID, 9001), firing(other.ID+100, 9002)},
		Counts:     []store.RuleCount{{RuleID: rule.ID, Suppressed: 2}},
		Windows: []store.RuleWindow{
			{RuleID: rule.ID, GroupKey: "web-01", State: json.RawMessage(`{"rule_id": 1, "group_key": "web-01"}`), UpdatedAt: fired},
			{RuleID: other.ID, GroupKey: "", State: json.RawMessage(`{"n": 1}`), UpdatedAt: fired},
		},
	})
	require.NoError(t, err)
	require.Len(t, xs, 3)
	require.NotZero(t, xs[0].ID)
	require.NotZero(t, xs[1].ID)
	require.Zero(t, xs[2].ID, "a rule that does not exist gets no execution")
	read, err := e.s.RuleExecution(e.ctx, xs[0].ID)
	require.NoError(t, err)
	require.Equal(t, xs[0], read)
	require.Equal(t, int64(9001), read.TriggeringRawEventID)
	require.Equal(t, tmpl.ID, *read.ResponseTemplateID)
	got, err := e.s.OccurrenceExecution(e.ctx, other.ID, 9001)
	require.NoError(t, err)
	require.Equal(t, xs[1], got)
	_, err = e.s.OccurrenceExecution(e.ctx, other.ID, 9002)
	require.ErrorIs(t, err, store.ErrNotFound)

	r, err := e.s.TriggerRule(e.ctx, rule.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), r.Firings)
	require.Equal(t, int64(2), r.SuppressedFirings)
	require.Equal(t, fired, *r.LastFiredAt)

	// A redelivered firing is not inserted again, nor counted: the stored
	// one comes back. Suppressions add up.
	again := firing(rule.ID, 9001)
	again.StartedAt = fired.Add(time.Hour)
	xs2, err := e.s.RecordFirings(e.ctx, store.FiringBatch{
		Executions: []store.RuleExecution{again},
		Counts:     []store.RuleCount{{RuleID: rule.ID, Suppressed: 1}},
		Windows: []store.RuleWindow{
			{RuleID: rule.ID, GroupKey: "web-01", State: json.RawMessage(`{"v": 2}`), UpdatedAt: fired.Add(time.Hour)},
			{RuleID: other.ID, GroupKey: ""}, // deleted
		},
	})
	require.NoError(t, err)
	require.Equal(t, xs[0], xs2[0])
	all, err := e.s.RuleExecutions(e.ctx, store.RuleExecutionQuery{RuleID: rule.ID})
	require.NoError(t, err)
	require.Len(t, all, 1)
	r, err = e.s.TriggerRule(e.ctx, rule.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), r.Firings)
	require.Equal(t, int64(3), r.SuppressedFirings)
	require.Equal(t, fired, *r.LastFiredAt)
	o, err := e.s.TriggerRule(e.ctx, other.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), o.Firings)
	require.Zero(t, o.SuppressedFirings)

	ws, err := e.s.RuleWindows(e.ctx)
	require.NoError(t, err)
	require.Len(t, ws, 1)
	require.Equal(t, rule.ID, ws[0].RuleID)
	require.Equal(t, "web-01", ws[0].GroupKey)
	require.JSONEq(t, `{"v": 2}`, string(ws[0].State))
	require.Equal(t, fired.Add(time.Hour), ws[0].UpdatedAt)

	// An update of a rule leaves its counters alone.
	r.Description = "changed"
	r, err = e.s.UpdateTriggerRule(e.ctx, r)
	require.NoError(t, err)
	require.Equal(t, int64(3), r.SuppressedFirings)

	t.Run("many in one batch", func(t *testing.T) {
		var many []store.RuleExecution
		for i := range 450 { // several INSERT statements
			many = append(many, firing(other.ID, int64(20000+i)))
		}
		many = append(many, firing(other.ID, 9001)) // stored already
		xs, err := e.s.RecordFirings(e.ctx, store.FiringBatch{Executions: many, Windows: []store.RuleWindow{
			{RuleID: other.ID, GroupKey: "twice", State: json.RawMessage(`{"n": 1}`), UpdatedAt: fired},
			{RuleID: other.ID, GroupKey: "twice", State: json.RawMessage(`{"n": 2}`), UpdatedAt: fired}, // the last counts
		}})
		require.NoError(t, err)
		seen := map[int64]bool{}
		for i, x := range xs[:450] {
			require.NotZero(t, x.ID)
			require.Equal(t, int64(20000+i), x.TriggeringRawEventID)
			require.False(t, seen[x.ID])
			seen[x.ID] = true
		}
		require.Equal(t, got.ID, xs[450].ID, "the stored execution of the occurrence")
		o, err := e.s.TriggerRule(e.ctx, other.ID)
		require.NoError(t, err)
		require.Equal(t, int64(451), o.Firings)
		ws, err := e.s.RuleWindows(e.ctx)
		require.NoError(t, err)
		found := false
		for _, w := range ws {
			if w.GroupKey == "twice" {
				require.JSONEq(t, `{"n": 2}`, string(w.State))
				found = true
			}
		}
		require.True(t, found)
		_, err = e.s.RecordFirings(e.ctx, store.FiringBatch{Windows: []store.RuleWindow{{RuleID: other.ID, GroupKey: "twice"}}})
		require.NoError(t, err)
	})

	t.Run("forget and prune", func(t *testing.T) {
		_, err := e.s.RecordFirings(e.ctx, store.FiringBatch{
			Forget: []int64{rule.ID},
			Windows: []store.RuleWindow{
				{RuleID: other.ID, GroupKey: "old", State: json.RawMessage(`{}`), UpdatedAt: e.base},
				{RuleID: other.ID, GroupKey: "new", State: json.RawMessage(`{}`), UpdatedAt: fired.Add(2 * time.Hour)},
				{RuleID: other.ID + 100, GroupKey: "gone", State: json.RawMessage(`{}`), UpdatedAt: fired.Add(2 * time.Hour)},
			},
		})
		require.NoError(t, err)
		ws, err := e.s.RuleWindows(e.ctx)
		require.NoError(t, err)
		require.Len(t, ws, 3, "the rule's windows are forgotten")
		n, err := e.s.PruneRuleWindows(e.ctx, fired)
		require.NoError(t, err)
		require.Equal(t, int64(2), n, "the old window and the one of a rule that does not exist")
		ws, err = e.s.RuleWindows(e.ctx)
		require.NoError(t, err)
		require.Len(t, ws, 1)
		require.Equal(t, "new", ws[0].GroupKey)
	})

	t.Run("a canceled batch writes nothing", func(t *testing.T) {
		before, err := e.s.RuleWindows(e.ctx)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		_, err = e.s.RecordFirings(ctx, store.FiringBatch{
			Executions: []store.RuleExecution{firing(other.ID, 9100)},
			Windows:    []store.RuleWindow{{RuleID: other.ID, GroupKey: "x", State: json.RawMessage(`{}`)}},
		})
		require.Error(t, err)
		after, err := e.s.RuleWindows(e.ctx)
		require.NoError(t, err)
		require.Equal(t, before, after)
		_, err = e.s.OccurrenceExecution(e.ctx, other.ID, 9100)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}
