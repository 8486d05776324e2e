package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/executor"
	notifyexec "github.com/reflex-ops/reflex/internal/executor/notify"
	"github.com/reflex-ops/reflex/internal/store"
)

// Steps run in order, each persisted as running before its executor
// starts and with its result after; a step's outputs feed later steps by
// name; parameters are rendered (and stored) before the Guard is asked.
func TestOrderOutputsAndPersistence(t *testing.T) {
	h := newHarness(t)
	marks := filepath.Join(h.dir, "marks")
	h.def("probe", "emit.sh", []string{"host", "db-3"})
	h.def("mark", "mark.sh", []string{marks, "{{.params.tag}}"})
	h.beforeExec = func(req executor.Request) {
		// The restart-safety rule: the store says running before anything runs.
		x := h.store.get(t, req.ExecutionID)
		for _, s := range x.Steps {
			if s.Name == req.Step {
				if s.Status != store.StepRunning || s.Attempts != 1 || s.StartedAt == nil {
					t.Errorf("step %s runs while the store has it %s (attempts %d)", s.Name, s.Status, s.Attempts)
				}
			}
		}
	}
	x := h.start(store.Execution{DecisionID: 9},
		step("probe", "probe", nil),
		step("first", "mark", map[string]string{"tag": "first-{{.steps.probe.host}}"}),
		step("second", "mark", map[string]string{"tag": "second-{{.event.source_host}}-{{.steps.first.tag}}"}),
	)
	require.Equal(t, store.ExecPending, x.Status)
	got := h.waitEnd(x.ID)

	require.Equal(t, store.ExecCompleted, got.Status, got.Error)
	require.Equal(t, "successful", got.Outcome)
	require.Equal(t, []string{"probe:succeeded", "first:succeeded", "second:succeeded"}, statuses(got.Steps))
	require.Equal(t, []string{"first-db-3", "second-web-7-first-db-3"}, lines(t, marks), "in order, each once")
	require.Equal(t, "first-db-3", got.Steps[1].Parameters["tag"], "the rendered value is stored")
	require.Equal(t, "db-3", got.Steps[0].Outputs["host"])
	require.NotNil(t, got.Steps[2].ExitCode)
	require.Equal(t, 0, *got.Steps[2].ExitCode)
	require.Contains(t, got.Steps[2].Output, "marked second-web-7-first-db-3")
	require.NotNil(t, got.StartedAt)
	require.NotNil(t, got.FinishedAt)
	require.EqualValues(t, 3, h.calls.Load())

	// The Guard saw the rendered values.
	h.guard.mu.Lock()
	require.Equal(t, "second-web-7-first-db-3", h.guard.asked[2].Parameters["tag"])
	h.guard.mu.Unlock()
	require.ElementsMatch(t, []string{"probe:succeeded", "first:succeeded", "second:succeeded"}, h.guard.releases())

	// Every step was stored running before it was stored succeeded.
	for i := range got.Steps {
		seen := ""
		for _, v := range h.store.history[x.ID] {
			st := v.Steps[i].Status
			if st == store.StepRunning && seen == "" {
				seen = "running"
			}
			if st == store.StepSucceeded {
				require.Equal(t, "running", seen, "step %d stored succeeded before running", i)
				break
			}
		}
	}

	// Audited: the steps' starts with their parameters, their ends, the
	// execution's start and end.
	var started []string
	for _, r := range h.audit.records(t) {
		if r.Action == audit.ActionExecutionStep && strings.Contains(string(r.Parameters), `"started"`) {
			started = append(started, r.Subject)
			require.Equal(t, "key:ops", r.Actor)
		}
	}
	require.Equal(t, []string{
		fmt.Sprintf("execution:%d/step:probe", x.ID), fmt.Sprintf("execution:%d/step:first", x.ID), fmt.Sprintf("execution:%d/step:second", x.ID),
	}, started)
	require.InDelta(t, 1, testutil.ToFloat64(h.orc.m.executions.WithLabelValues(store.ExecCompleted)), 0)
	require.InDelta(t, 3, testutil.ToFloat64(h.orc.m.steps.WithLabelValues(store.StepSucceeded)), 0)
	require.InDelta(t, 0, testutil.ToFloat64(h.orc.m.running), 0)
}

// Adjacent steps of a group run at the same time: each waits for the
// other's marker file, which only works when both run at once; the step
// after the group starts when both have ended.
func TestParallelGroup(t *testing.T) {
	h := newHarness(t)
	meet := filepath.Join(h.dir, "meet")
	require.NoError(t, os.Mkdir(meet, 0o755))
	marks := filepath.Join(h.dir, "marks")
	h.def("rendezvous", "rendezvous.sh", []string{meet, "{{.params.me}}", "{{.params.other}}"})
	h.def("mark", "mark.sh", []string{marks, "{{.params.tag}}"})
	inGroup := func(s *store.Step) { s.Group = "together" }
	x := h.start(store.Execution{},
		step("left", "rendezvous", map[string]string{"me": "left", "other": "right"}, inGroup),
		step("right", "rendezvous", map[string]string{"me": "right", "other": "left"}, inGroup),
		step("after", "mark", map[string]string{"tag": "after"}),
	)
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecCompleted, got.Status, got.Error)
	require.Equal(t, []string{"left:succeeded", "right:succeeded", "after:succeeded"}, statuses(got.Steps))
	require.Contains(t, got.Steps[0].Output, "met right")
	require.Contains(t, got.Steps[1].Output, "met left")
	// "after" started after both ended.
	require.False(t, got.Steps[2].StartedAt.Before(*got.Steps[0].FinishedAt))
	require.False(t, got.Steps[2].StartedAt.Before(*got.Steps[1].FinishedAt))
}

// A failure is retried only when the executor says it is retryable, with
// the step's retries as the bound.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     string // exit code of the failures
		need     string // runs until success
		retries  int
		status   string
		attempts int
	}{
		{name: "retryable until it succeeds", code: "75", need: "3", retries: 3, status: store.StepSucceeded, attempts: 3},
		{name: "retryable but out of retries", code: "75", need: "10", retries: 2, status: store.StepFailed, attempts: 3},
		{name: "not retryable", code: "3", need: "3", retries: 5, status: store.StepFailed, attempts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			runs := filepath.Join(h.dir, "runs")
			h.def("flaky", "flaky.sh", []string{runs, tc.need, tc.code}, func(_ *actions.Definition, spec map[string]any) {
				spec["retryable_exit_codes"] = []int{75}
			})
			x := h.start(store.Execution{}, step("flaky", "flaky", nil, func(s *store.Step) { s.Retries = tc.retries }))
			got := h.waitEnd(x.ID)
			require.Equal(t, tc.status, got.Steps[0].Status, got.Steps[0].Error)
			require.Equal(t, tc.attempts, got.Steps[0].Attempts)
			require.Len(t, lines(t, runs), tc.attempts, "the program ran once per attempt")
			require.EqualValues(t, tc.attempts, h.calls.Load())
			if tc.status == store.StepFailed {
				require.Equal(t, store.ExecFailed, got.Status)
				require.Contains(t, got.Error, `step "flaky" failed`)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	o := &Orchestrator{backoffBase: time.Second}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
		[]time.Duration{o.backoff(1), o.backoff(2), o.backoff(3), o.backoff(4)})
	require.Equal(t, MaxBackoff, o.backoff(30))
}

// on_failure abort stops (no rollback unless asked), continue goes on,
// rollback rolls the completed steps back whatever the execution asked.
func TestOnFailure(t *testing.T) {
	for _, tc := range []struct {
		onFailure string
		status    string
		outcome   string
		marks     []string
		steps     []string
	}{
		{onFailure: "", status: store.ExecFailed, outcome: "failed",
			marks: []string{"do-a"}, steps: []string{"a:succeeded", "broken:failed", "c:skipped"}},
		{onFailure: actions.OnFailureAbort, status: store.ExecFailed, outcome: "failed",
			marks: []string{"do-a"}, steps: []string{"a:succeeded", "broken:failed", "c:skipped"}},
		{onFailure: actions.OnFailureContinue, status: store.ExecCompleted, outcome: "partially_successful",
			marks: []string{"do-a", "do-c"}, steps: []string{"a:succeeded", "broken:failed", "c:succeeded"}},
		{onFailure: actions.OnFailureRollback, status: store.ExecRolledBack, outcome: "failed",
			marks: []string{"do-a", "undo-a"}, steps: []string{"a:rolled_back", "broken:failed", "c:skipped"}},
	} {
		t.Run("on_failure="+tc.onFailure, func(t *testing.T) {
			h := newHarness(t)
			marks := filepath.Join(h.dir, "marks")
			h.def("undo", "mark.sh", []string{marks, "undo-{{.params.tag}}"})
			h.def("do", "mark.sh", []string{marks, "do-{{.params.tag}}"}, withRollback("undo"))
			h.def("broken", "fail.sh", nil)
			x := h.start(store.Execution{},
				step("a", "do", map[string]string{"tag": "a"}),
				step("broken", "broken", nil, func(s *store.Step) { s.OnFailure = tc.onFailure }),
				step("c", "do", map[string]string{"tag": "c"}),
			)
			got := h.waitEnd(x.ID)
			require.Equal(t, tc.status, got.Status, got.Error)
			require.Equal(t, tc.outcome, got.Outcome)
			require.Equal(t, tc.steps, statuses(got.Steps))
			require.Equal(t, tc.marks, lines(t, marks))
			require.NotNil(t, got.Steps[1].ExitCode)
			require.Equal(t, 3, *got.Steps[1].ExitCode)
			require.Contains(t, got.Steps[1].Output, "failing on purpose")
		})
	}
}

// With rollback_on_failure, the completed steps' rollback actions run in
// reverse order with the steps' parameters; a step without a rollback
// action is skipped and says so.
func TestRollbackReverseOrder(t *testing.T) {
	h := newHarness(t)
	marks := filepath.Join(h.dir, "marks")
	h.def("undo", "mark.sh", []string{marks, "undo-{{.params.tag}}"})
	h.def("do", "mark.sh", []string{marks, "do-{{.params.tag}}"}, withRollback("undo"))
	h.def("note", "mark.sh", []string{marks, "note-{{.params.tag}}"})
	h.def("broken", "fail.sh", nil)
	x := h.start(store.Execution{RollbackOnFailure: true},
		step("a", "do", map[string]string{"tag": "a"}),
		step("b", "note", map[string]string{"tag": "b"}),
		step("c", "do", map[string]string{"tag": "{{.event.source_host}}"}),
		step("broken", "broken", nil),
		step("e", "do", map[string]string{"tag": "e"}),
	)
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecRolledBack, got.Status, got.Error)
	require.Equal(t, []string{"do-a", "note-b", "do-web-7", "undo-web-7", "undo-a"}, lines(t, marks))
	require.Equal(t, []string{"a:rolled_back", "b:succeeded", "c:rolled_back", "broken:failed", "e:skipped"}, statuses(got.Steps))
	require.Equal(t, []string{"c:succeeded", "b:skipped", "a:succeeded"}, statuses(got.Rollback))
	require.Equal(t, "undo", got.Rollback[0].ActionName)
	require.Equal(t, "web-7", got.Rollback[0].Parameters["tag"], "the step's own parameters")
	require.Contains(t, got.Rollback[1].Error, "no rollback action")
	require.Contains(t, got.Error, "rolled back")
	require.Empty(t, h.esc.all(), "a successful rollback does not escalate")
	var rollbacks int
	for _, r := range h.audit.records(t) {
		if r.Action == audit.ActionRollback && strings.Contains(string(r.Parameters), `"started"`) && strings.Contains(r.Subject, "/rollback:") {
			rollbacks++
		}
	}
	require.Equal(t, 2, rollbacks, "each rollback run audited before it started")
}

// A rollback that fails stops the rollback, ends the execution
// rollback_failed and escalates at once.
func TestRollbackFailedEscalates(t *testing.T) {
	h := newHarness(t)
	marks := filepath.Join(h.dir, "marks")
	h.def("undo", "mark.sh", []string{marks, "undo-{{.params.tag}}"})
	h.def("undo-broken", "mark.sh", []string{marks, "undo-{{.params.tag}}", "4"})
	h.def("do", "mark.sh", []string{marks, "do-{{.params.tag}}"}, withRollback("undo"))
	h.def("do2", "mark.sh", []string{marks, "do-{{.params.tag}}"}, withRollback("undo-broken"))
	h.def("broken", "fail.sh", nil)
	x := h.start(store.Execution{RollbackOnFailure: true},
		step("a", "do", map[string]string{"tag": "a"}),
		step("b", "do2", map[string]string{"tag": "b"}),
		step("broken", "broken", nil),
	)
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecRollbackFailed, got.Status)
	require.Equal(t, []string{"do-a", "do-b", "undo-b"}, lines(t, marks), "a is not rolled back after b's rollback failed")
	require.Equal(t, []string{"a:succeeded", "b:succeeded", "broken:failed"}, statuses(got.Steps))
	require.Equal(t, []string{"b:failed"}, statuses(got.Rollback))
	require.Contains(t, got.Error, `not rolled back: a`)
	esc := h.esc.all()
	require.Len(t, esc, 1)
	require.Contains(t, esc[0], `the rollback of step "b" failed`)
}

// A step that needs approval stops the execution, pending, with its
// rendered parameters; Resume with that approval runs it with exactly
// those values.
func TestApprovalWaitResume(t *testing.T) {
	h := newHarness(t)
	marks := filepath.Join(h.dir, "marks")
	h.def("mark", "mark.sh", []string{marks, "{{.params.tag}}"})
	h.guard.admit = func(_ store.Execution, s store.StepState) Admission {
		if s.Name == "restart" && s.ApprovalID == nil {
			return Admission{NeedsApproval: true, Reason: "high risk"}
		}
		return Admission{Run: true}
	}
	x := h.start(store.Execution{},
		step("diagnose", "mark", map[string]string{"tag": "diagnose"}),
		step("restart", "mark", map[string]string{"tag": "restart-{{.event.source_host}}"}),
		step("verify", "mark", map[string]string{"tag": "verify"}),
	)
	pending := h.waitWaiting(x.ID)
	require.Equal(t, []string{"diagnose:succeeded", "restart:waiting_approval", "verify:pending"}, statuses(pending.Steps))
	require.NotNil(t, pending.Steps[1].ApprovalID)
	require.Equal(t, "high risk", pending.Steps[1].ApprovalReason)
	require.True(t, pending.Steps[1].ApprovalRequired)
	require.Equal(t, []string{"diagnose"}, lines(t, marks), "nothing ran past the approval")
	require.Len(t, h.approvals.requests, 1)
	require.Equal(t, "restart-web-7", h.approvals.requests[0].Parameters["tag"], "the approval binds to rendered values")
	approval := *pending.Steps[1].ApprovalID
	require.Equal(t, store.ExecPending, h.store.get(t, x.ID).Status)

	_, err := h.orc.Resume(t.Context(), x.ID, approval+1, "key:alice")
	require.ErrorIs(t, err, ErrNotWaiting)
	// The event changes: the approved values run all the same.
	resumed, err := h.orc.Resume(t.Context(), x.ID, approval, "key:alice")
	require.NoError(t, err)
	require.Equal(t, store.ExecRunning, resumed.Status)
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecCompleted, got.Status, got.Error)
	require.Equal(t, []string{"diagnose", "restart-web-7", "verify"}, lines(t, marks))
	require.Equal(t, approval, *got.Steps[1].ApprovalID)

	_, err = h.orc.Resume(t.Context(), x.ID, approval, "key:alice")
	require.ErrorIs(t, err, ErrNotWaiting, "an approval resumes once")
}

// A rejected approval cancels the execution: the step and those after it
// are cancelled, nothing more runs; with rollback_on_failure the
// completed steps are rolled back.
func TestReject(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollback_on_failure=%v", rollback), func(t *testing.T) {
			h := newHarness(t)
			marks := filepath.Join(h.dir, "marks")
			h.def("undo", "mark.sh", []string{marks, "undo-{{.params.tag}}"})
			h.def("mark", "mark.sh", []string{marks, "{{.params.tag}}"}, withRollback("undo"))
			h.guard.admit = func(_ store.Execution, s store.StepState) Admission {
				if s.Name == "restart" {
					return Admission{NeedsApproval: true}
				}
				return Admission{Run: true}
			}
			x := h.start(store.Execution{RollbackOnFailure: rollback},
				step("diagnose", "mark", map[string]string{"tag": "diagnose"}),
				step("restart", "mark", map[string]string{"tag": "restart"}),
				step("verify", "mark", map[string]string{"tag": "verify"}),
			)
			pending := h.waitWaiting(x.ID)
			_, err := h.orc.Reject(t.Context(), x.ID, *pending.Steps[1].ApprovalID, "key:bob", "not now")
			require.NoError(t, err)
			got := h.waitEnd(x.ID)
			if rollback {
				require.Equal(t, store.ExecRolledBack, got.Status)
				require.Equal(t, []string{"diagnose", "undo-diagnose"}, lines(t, marks))
				require.Equal(t, []string{"diagnose:rolled_back", "restart:cancelled", "verify:cancelled"}, statuses(got.Steps))
			} else {
				require.Equal(t, store.ExecCancelled, got.Status)
				require.Equal(t, []string{"diagnose"}, lines(t, marks))
				require.Equal(t, []string{"diagnose:succeeded", "restart:cancelled", "verify:cancelled"}, statuses(got.Steps))
			}
			require.Contains(t, got.Steps[1].Error, "rejected by key:bob: not now")
			_, err = h.orc.Resume(t.Context(), x.ID, *pending.Steps[1].ApprovalID, "key:alice")
			require.ErrorIs(t, err, ErrNotWaiting)
		})
	}
}

// Cancel kills a running step's process group and cancels the steps
// after it.
func TestCancelKillsRunningStep(t *testing.T) {
	h := newHarness(t)
	fifo := filepath.Join(h.dir, "pids")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	marks := filepath.Join(h.dir, "marks")
	h.def("hang", "hang.sh", []string{fifo})
	h.def("mark", "mark.sh", []string{marks, "after"})
	x := h.start(store.Execution{}, step("hang", "hang", nil), step("after", "mark", nil))
	b, err := os.ReadFile(fifo) // returns when hang.sh wrote its pids: it runs
	require.NoError(t, err)
	var leader, child int
	_, err = fmt.Sscan(string(b), &leader, &child)
	require.NoError(t, err, "hang.sh wrote %q", b)

	got, err := h.orc.Cancel(t.Context(), x.ID, "key:carol")
	require.NoError(t, err)
	require.Equal(t, store.ExecCancelled, got.Status)
	requireGone(t, leader)
	requireGone(t, child)
	stored := h.store.get(t, x.ID)
	require.Equal(t, store.ExecCancelled, stored.Status)
	require.Equal(t, []string{"hang:cancelled", "after:cancelled"}, statuses(stored.Steps))
	require.Contains(t, stored.Error, "cancelled by key:carol")
	require.Nil(t, lines(t, marks))
	_, err = h.orc.Cancel(t.Context(), x.ID, "key:carol")
	require.ErrorIs(t, err, ErrEnded)
}

// A pending execution is cancelled in the store.
func TestCancelPending(t *testing.T) {
	h := newHarness(t)
	h.def("mark", "mark.sh", []string{filepath.Join(h.dir, "marks"), "x"})
	h.guard.admit = func(store.Execution, store.StepState) Admission { return Admission{NeedsApproval: true} }
	x := h.start(store.Execution{}, step("a", "mark", nil))
	h.waitWaiting(x.ID)
	got, err := h.orc.Cancel(t.Context(), x.ID, "key:carol")
	require.NoError(t, err)
	require.Equal(t, store.ExecCancelled, got.Status)
	require.Equal(t, []string{"a:cancelled"}, statuses(h.store.get(t, x.ID).Steps))
	require.Zero(t, h.calls.Load())
}

// A dry run resolves, renders and asks the Guard, and runs nothing.
func TestDryRunRunsNothing(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Executors = func(actions.Definition) (executor.Executor, error) {
			return execFunc(func(context.Context, executor.Request) (executor.Result, error) {
				t.Error("an executor was called in a dry run")
				return executor.Result{}, errors.New("dry run")
			}), nil
		}
	})
	h.def("probe", "emit.sh", []string{"host", "x"})
	h.def("mark", "mark.sh", []string{"/nonexistent", "{{.params.tag}}"})
	h.actions.add(actions.Definition{Name: "off", Type: actions.TypeRemediation, Executor: json.RawMessage(`{"type":"command"}`)})
	h.guard.admit = func(_ store.Execution, s store.StepState) Admission {
		switch s.Name {
		case "restart":
			return Admission{NeedsApproval: true, Reason: "policy: remediation on a critical host"}
		case "purge":
			return Admission{Refused: "host budget exhausted"}
		}
		return Admission{Run: true}
	}
	x := h.start(store.Execution{DryRun: true},
		step("probe", "probe", nil),
		step("restart", "mark", map[string]string{"tag": "{{.steps.probe.host}}@{{.event.source_host}}"}),
		step("purge", "mark", nil),
		step("disabled", "off", nil),
		step("bad", "mark", map[string]string{"tag": "{{.steps.later.x}}"}),
	)
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecCompleted, got.Status)
	require.Empty(t, got.Outcome)
	require.Equal(t, []string{"probe:skipped", "restart:skipped", "purge:skipped", "disabled:skipped", "bad:skipped"}, statuses(got.Steps))
	require.Equal(t, "<steps.probe.host>@web-7", got.Steps[1].Parameters["tag"])
	require.True(t, got.Steps[1].ApprovalRequired)
	require.Equal(t, "policy: remediation on a critical host", got.Steps[1].ApprovalReason)
	require.Contains(t, got.Steps[2].Error, "would be refused: host budget exhausted")
	require.Contains(t, got.Steps[3].Error, "disabled")
	require.Contains(t, got.Steps[4].Error, "would not run")
	require.Contains(t, got.Error, "dry run: nothing ran")
	require.Contains(t, got.Error, "would wait for approval: restart")
	require.Empty(t, h.approvals.requests, "a dry run requests no approval")
	require.Len(t, h.guard.releases(), 3, "leases are given back at once")
}

// Recover marks a step that was running when the server died unknown,
// ends its execution failed, escalates, and never runs it again; an
// execution pending on an approval stays pending.
func TestRecoverMarksUnknownAndDoesNotRerun(t *testing.T) {
	h := newHarness(t)
	marks := filepath.Join(h.dir, "marks")
	h.def("mark", "mark.sh", []string{marks, "{{.params.tag}}"})
	started := time.Now()
	crashed, err := h.store.InsertExecution(t.Context(), store.Execution{
		Status: store.ExecRunning, StartedAt: &started,
		Steps: []store.StepState{
			{Step: store.Step{Name: "a", Type: "remediation", ActionName: "mark", Parameters: map[string]string{"tag": "a"}}, Status: store.StepSucceeded, Attempts: 1},
			{Step: store.Step{Name: "b", Type: "remediation", ActionName: "mark", Parameters: map[string]string{"tag": "b"}}, Status: store.StepRunning, Attempts: 1, StartedAt: &started},
			{Step: store.Step{Name: "c", Type: "remediation", ActionName: "mark", Parameters: map[string]string{"tag": "c"}}, Status: store.StepPending},
		},
	})
	require.NoError(t, err)
	approval := int64(7)
	waiting, err := h.store.InsertExecution(t.Context(), store.Execution{
		Status: store.ExecPending,
		Steps: []store.StepState{
			{Step: store.Step{Name: "a", Type: "remediation", ActionName: "mark", Parameters: map[string]string{"tag": "approved"}}, Status: store.StepWaitingApproval, ApprovalID: &approval},
		},
	})
	require.NoError(t, err)

	restarted := h.newOrchestrator()
	n, err := restarted.Recover(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got := h.store.get(t, crashed.ID)
	require.Equal(t, store.ExecFailed, got.Status)
	require.Equal(t, "failed", got.Outcome)
	require.Equal(t, []string{"a:succeeded", "b:unknown", "c:cancelled"}, statuses(got.Steps))
	require.Contains(t, got.Error, `the outcome of step "b" is unknown`)
	require.Contains(t, got.Steps[1].Error, "not run again")
	require.Equal(t, store.ExecPending, h.store.get(t, waiting.ID).Status)
	esc := h.esc.all()
	require.Len(t, esc, 1)
	require.Contains(t, esc[0], fmt.Sprintf("%d: ", crashed.ID))

	n, err = restarted.Recover(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "settled once")
	require.Zero(t, h.calls.Load(), "nothing ran again")
	require.Nil(t, lines(t, marks))

	// The waiting one can still be resumed by the new process.
	_, err = restarted.Resume(t.Context(), waiting.ID, approval, "key:alice")
	require.NoError(t, err)
	h.waitFor(restarted, waiting.ID, func(x store.Execution) bool { return ended(x.Status) })
	require.Equal(t, []string{"a:succeeded"}, statuses(h.store.get(t, waiting.ID).Steps))
	require.Equal(t, []string{"approved"}, lines(t, marks), "with the approved parameters")
}

// When the audit log cannot be written, the step is refused and nothing
// runs (fail closed).
func TestAuditFailureRefusesStep(t *testing.T) {
	h := newHarness(t)
	marks := filepath.Join(h.dir, "marks")
	h.def("mark", "mark.sh", []string{marks, "x"})
	h.audit.failing.Store(true)
	x := h.start(store.Execution{}, step("a", "mark", nil), step("b", "mark", nil))
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecFailed, got.Status)
	require.Equal(t, []string{"a:failed", "b:skipped"}, statuses(got.Steps))
	require.Contains(t, got.Steps[0].Error, "refused: the audit log cannot be written")
	require.Zero(t, got.Steps[0].Attempts)
	require.Zero(t, h.calls.Load())
	require.Nil(t, lines(t, marks))
	require.Len(t, h.esc.all(), 1)
}

// A Guard refusal fails the step without running it and escalates.
func TestGuardRefusal(t *testing.T) {
	h := newHarness(t)
	h.def("mark", "mark.sh", []string{filepath.Join(h.dir, "marks"), "x"})
	h.guard.admit = func(store.Execution, store.StepState) Admission { return Admission{Refused: "automation paused"} }
	x := h.start(store.Execution{}, step("a", "mark", nil))
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecFailed, got.Status)
	require.Equal(t, "refused: automation paused", got.Steps[0].Error)
	require.Zero(t, h.calls.Load())
	require.Equal(t, []string{"a:failed"}, h.guard.releases())
	require.Len(t, h.esc.all(), 1)
}

// A step that cannot be stored as running does not run.
func TestNoRunWithoutPersistence(t *testing.T) {
	h := newHarness(t)
	h.def("mark", "mark.sh", []string{filepath.Join(h.dir, "marks"), "x"})
	h.guard.admit = func(store.Execution, store.StepState) Admission {
		h.store.failing.Store(true)
		return Admission{Run: true}
	}
	x := h.start(store.Execution{}, step("a", "mark", nil))
	ch, stop := h.orc.Subscribe(x.ID)
	defer stop()
	var last store.Execution
	for x := range ch { // closed after the final state, which the store could not take
		last = x
	}
	require.Equal(t, store.ExecFailed, last.Status)
	require.Contains(t, last.Steps[0].Error, "not run: ")
	require.Zero(t, h.calls.Load())
}

// A subscriber that does not read never holds the orchestrator up, and
// gets the latest state; the channel closes after the final state.
func TestSubscriptionCoalesces(t *testing.T) {
	h := newHarness(t)
	h.def("mark", "mark.sh", []string{filepath.Join(h.dir, "marks"), "x"})
	h.guard.admit = func(store.Execution, store.StepState) Admission { return Admission{NeedsApproval: true} }
	x := h.start(store.Execution{}, step("a", "mark", nil), step("b", "mark", nil), step("c", "mark", nil), step("d", "mark", nil))
	h.waitWaiting(x.ID)
	h.guard.admit = nil

	slow, stopSlow := h.orc.Subscribe(x.ID) // never read until the end
	defer stopSlow()
	gone, stopGone := h.orc.Subscribe(x.ID)
	stopGone()
	stopGone() // twice is fine
	n := 0
	for range gone { // what it held, then closed
		n++
	}
	require.LessOrEqual(t, n, 1)

	_, err := h.orc.Resume(t.Context(), x.ID, *h.store.get(t, x.ID).Steps[0].ApprovalID, "key:alice")
	require.NoError(t, err)
	final := h.waitEnd(x.ID) // many states went by; the slow reader held nothing up
	require.Equal(t, store.ExecCompleted, final.Status)

	last, open := <-slow
	require.True(t, open)
	require.Equal(t, store.ExecCompleted, last.Status, "the latest state, not the first")
	_, open = <-slow
	require.False(t, open, "closed after the final state")

	// An ended execution: its state, then closed.
	ch, stop := h.orc.Subscribe(x.ID)
	defer stop()
	got := <-ch
	require.Equal(t, store.ExecCompleted, got.Status)
	_, open = <-ch
	require.False(t, open)
	// An unknown one: closed.
	ch, stop = h.orc.Subscribe(999)
	defer stop()
	_, open = <-ch
	require.False(t, open)
}

// Start refuses a plan that cannot run, and more executions than
// MaxRunning.
func TestStartRefuses(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxRunning = 1 })
	fifo := filepath.Join(h.dir, "pids")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	h.def("hang", "hang.sh", []string{fifo})
	for name, steps := range map[string][]store.StepState{
		"no steps":      nil,
		"no action":     {{Step: store.Step{Name: "a", Type: "remediation"}}},
		"same name":     {step("a", "hang", nil), step("a", "hang", nil)},
		"split group":   {step("a", "hang", nil, func(s *store.Step) { s.Group = "g" }), step("b", "hang", nil), step("c", "hang", nil, func(s *store.Step) { s.Group = "g" })},
		"bad timeout":   {step("a", "hang", nil, func(s *store.Step) { s.Timeout = "soon" })},
		"bad retries":   {step("a", "hang", nil, func(s *store.Step) { s.Retries = 99 })},
		"bad on_failre": {step("a", "hang", nil, func(s *store.Step) { s.OnFailure = "explode" })},
	} {
		_, err := h.orc.Start(t.Context(), store.Execution{Steps: steps})
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err := h.orc.Start(t.Context(), store.Execution{Data: json.RawMessage(`[1]`), Steps: []store.StepState{step("a", "hang", nil)}})
	require.ErrorIs(t, err, ErrInvalid)

	x := h.start(store.Execution{}, step("a", "hang", nil))
	_, err = os.ReadFile(fifo)
	require.NoError(t, err)
	_, err = h.orc.Start(t.Context(), store.Execution{Steps: []store.StepState{step("a", "hang", nil)}})
	require.ErrorIs(t, err, ErrBusy)
	_, err = h.orc.Cancel(t.Context(), x.ID, "test")
	require.NoError(t, err)
}

// Close waits for what runs; when its context ends first, the running
// steps are killed and their executions end failed and escalated.
func TestCloseInterrupts(t *testing.T) {
	h := newHarness(t)
	fifo := filepath.Join(h.dir, "pids")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	h.def("hang", "hang.sh", []string{fifo})
	x := h.start(store.Execution{}, step("a", "hang", nil), step("b", "hang", nil))
	_, err := os.ReadFile(fifo)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the grace is over at once
	require.ErrorIs(t, h.orc.Close(ctx), context.Canceled)
	got := h.store.get(t, x.ID)
	require.Equal(t, store.ExecFailed, got.Status)
	require.Equal(t, []string{"a:cancelled", "b:cancelled"}, statuses(got.Steps))
	require.Contains(t, got.Error, "the server shut down")
	require.Len(t, h.esc.all(), 1)
	_, err = h.orc.Start(t.Context(), store.Execution{Steps: []store.StepState{step("a", "hang", nil)}})
	require.ErrorIs(t, err, ErrClosed)
}

// Output is stored to a bound.
func TestBoundedOutput(t *testing.T) {
	st := &store.StepState{}
	big := strings.Repeat("é", MaxOutput)
	setResult(st, &executor.Result{ExitCode: 0, Output: []byte(big), Outputs: map[string]string{"stdout": big}})
	require.LessOrEqual(t, len(st.Output), MaxOutput)
	require.True(t, st.Truncated)
	require.LessOrEqual(t, len(st.Outputs["stdout"]), MaxOutputValue)
	require.True(t, strings.HasSuffix(st.Output, "é"), "cut at a character boundary")
}

func TestNewRequiresDependencies(t *testing.T) {
	_, err := New(Options{})
	require.Error(t, err)
}

// An action that requires approval waits for one even when the Guard
// would let it run.
func TestActionApprovalRequired(t *testing.T) {
	h := newHarness(t)
	marks := filepath.Join(h.dir, "marks")
	h.def("mark", "mark.sh", []string{marks, "x"}, func(d *actions.Definition, _ map[string]any) { d.ApprovalRequired = true })
	x := h.start(store.Execution{}, step("a", "mark", nil))
	pending := h.waitWaiting(x.ID)
	require.Equal(t, "the action or the template requires approval", pending.Steps[0].ApprovalReason)
	require.Zero(t, h.calls.Load())
	_, err := h.orc.Resume(t.Context(), x.ID, *pending.Steps[0].ApprovalID, "key:alice")
	require.NoError(t, err)
	require.Equal(t, store.ExecCompleted, h.waitEnd(x.ID).Status)
	require.Equal(t, []string{"x"}, lines(t, marks))
}

// A step's timeout bounds its run; a timeout is not retried unless the
// executor says so.
func TestStepTimeout(t *testing.T) {
	h := newHarness(t)
	h.def("hang", "hang.sh", nil)
	x := h.start(store.Execution{}, step("a", "hang", nil, func(s *store.Step) { s.Timeout = "1s"; s.Retries = 3 }))
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecFailed, got.Status)
	require.Equal(t, store.StepFailed, got.Steps[0].Status)
	require.Equal(t, 1, got.Steps[0].Attempts)
	require.Contains(t, got.Steps[0].Error, "timed out after 1s")
}

// A notification step of a plan runs the notification executor with its
// channels; its parameters are rendered into params.
func TestNotificationStep(t *testing.T) {
	var got executor.Request
	var spec executor.Spec
	h := newHarness(t, func(o *Options) {
		o.Executors = func(d actions.Definition) (executor.Executor, error) {
			var err error
			spec, err = executor.ParseSpec(d.Executor)
			if err != nil {
				return nil, err
			}
			return execFunc(func(_ context.Context, req executor.Request) (executor.Result, error) {
				got = req
				return executor.Result{Outputs: map[string]string{"output": "sent"}}, nil
			}), nil
		}
	})
	x := h.start(store.Execution{}, store.StepState{Step: store.Step{
		Name: "tell", Type: actions.TypeNotification, Channels: []string{"oncall"},
		Parameters: map[string]string{"message": "restarting {{.event.source_host}}"},
	}})
	end := h.waitEnd(x.ID)
	require.Equal(t, store.ExecCompleted, end.Status, end.Error)
	require.Equal(t, NotificationExecutor, spec.Type)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(spec.Config, &cfg))
	require.Equal(t, []any{"oncall"}, cfg["channels"])
	require.NotEmpty(t, cfg["title"])
	// The notification executor takes the definition as it is.
	_, err := notifyexec.Parse(spec)
	require.NoError(t, err)
	require.Equal(t, "restarting web-7", got.Data["params"].(map[string]any)["message"])
	require.Equal(t, "tell", got.Step)
	require.Equal(t, x.ID, got.ExecutionID)
}

type validatorFunc func(d actions.Definition, data map[string]any, res executor.Result) (bool, string, error)

func (f validatorFunc) Validate(_ context.Context, d actions.Definition, data map[string]any, res executor.Result) (bool, string, error) {
	return f(d, data, res)
}

// Success criteria are checked after a step its executor says succeeded:
// a failed criterion fails the step, with the verdict stored.
func TestValidator(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Validator = validatorFunc(func(d actions.Definition, data map[string]any, res executor.Result) (bool, string, error) {
			if d.Name == "plain" {
				t.Error("a definition without success criteria was validated")
			}
			tag := data["params"].(map[string]any)["tag"]
			if tag == "good" {
				return true, "output matches", nil
			}
			return false, fmt.Sprintf("output %q does not match", strings.TrimSpace(string(res.Output))), nil
		})
	})
	marks := filepath.Join(h.dir, "marks")
	criteria := func(d *actions.Definition, _ map[string]any) {
		d.SuccessCriteria = &actions.Criteria{OutputMatches: "^marked good"}
	}
	h.def("checked", "mark.sh", []string{marks, "{{.params.tag}}"}, criteria)
	h.def("plain", "mark.sh", []string{marks, "plain"})
	x := h.start(store.Execution{},
		step("plain", "plain", nil),
		step("good", "checked", map[string]string{"tag": "good"}),
		step("bad", "checked", map[string]string{"tag": "bad"}),
	)
	got := h.waitEnd(x.ID)
	require.Equal(t, store.ExecFailed, got.Status)
	require.Equal(t, []string{"plain:succeeded", "good:succeeded", "bad:failed"}, statuses(got.Steps))
	require.Empty(t, got.Steps[0].Validation)
	require.Equal(t, "passed: output matches", got.Steps[1].Validation)
	require.Contains(t, got.Steps[2].Validation, "failed: output")
	require.Contains(t, got.Steps[2].Error, "success criteria not met")
}
