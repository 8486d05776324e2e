package orchestrator

import (
	"context"
	"fmt"
	"strings"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
)

// recoverRounds bounds Recover's listings (MaxDecisionLimit executions
// each).
const recoverRounds = 100

// Recover settles, at start, the executions a previous process left in
// flight, and returns how many it settled. An execution left running
// ends failed: a step (or rollback step) that was running has an
// unknown outcome (it may have done its work, or part of it): it is
// marked unknown and never run again; steps that had not started are
// cancelled; the execution is audited and escalated, with an error that
// says which step's outcome is unknown. An execution pending on an
// approval (a step waiting_approval with its approval id) stays pending;
// one pending on nothing (the process stopped as it began) ends failed
// the same way. Each execution it ends is passed to Options.Ended, as
// any other that ends. Call it before Start, Resume and the rest.
func (o *Orchestrator) Recover(ctx context.Context) (int, error) {
	settled := 0
	for range recoverRounds {
		xs, err := o.store.Executions(ctx, store.ExecutionQuery{Statuses: []string{store.ExecRunning}, Limit: store.MaxDecisionLimit})
		if err != nil {
			return settled, fmt.Errorf("orchestrator: recover: list running executions: %w", err)
		}
		n, err := o.settle(ctx, xs)
		settled += n
		if err != nil {
			return settled, err
		}
		if n == 0 || len(xs) < store.MaxDecisionLimit {
			break
		}
	}
	xs, err := o.store.Executions(ctx, store.ExecutionQuery{Statuses: []string{store.ExecPending}, Limit: store.MaxDecisionLimit})
	if err != nil {
		return settled, fmt.Errorf("orchestrator: recover: list pending executions: %w", err)
	}
	var stray []store.Execution
	for _, x := range xs {
		if !waitsForApproval(x) {
			stray = append(stray, x)
		}
	}
	n, err := o.settle(ctx, stray)
	return settled + n, err
}

// waitsForApproval says x is pending on an approval, and nothing of it
// runs.
func waitsForApproval(x store.Execution) bool {
	waiting := false
	for _, s := range x.Steps {
		switch {
		case s.Status == store.StepRunning:
			return false
		case s.Status == store.StepWaitingApproval && s.ApprovalID != nil:
			waiting = true
		}
	}
	return waiting
}

// settle ends each of xs failed, as Recover says.
func (o *Orchestrator) settle(ctx context.Context, xs []store.Execution) (int, error) {
	n := 0
	for _, x := range xs {
		o.mu.Lock()
		_, mine := o.runs[x.ID]
		o.mu.Unlock()
		if mine {
			continue
		}
		var unknown []string
		now := o.now()
		for _, list := range [][]store.StepState{x.Steps, x.Rollback} {
			for i := range list {
				if list[i].Status == store.StepRunning {
					list[i].Status = store.StepUnknown
					list[i].Error = "outcome unknown: the server stopped while the step ran; it is not run again"
					list[i].FinishedAt = &now
					unknown = append(unknown, list[i].Name)
					o.m.steps.WithLabelValues(store.StepUnknown).Inc()
				}
			}
		}
		why := "the server stopped during the execution"
		if len(unknown) > 0 {
			why += fmt.Sprintf("; the outcome of step %s is unknown (not run again): check it by hand", strings.Join(quoteAll(unknown), ", "))
		} else {
			why += "; no step was running"
		}
		status := store.ExecFailed
		if len(x.Rollback) > 0 {
			status = store.ExecRollbackFailed
			why += "; the rollback did not finish"
		}
		markRest(&x, store.StepCancelled, "not run: the server stopped during the execution")
		x.Status, x.Error, x.FinishedAt = status, clipError(why), &now
		x.Outcome = outcome(x)
		stored, err := o.store.UpdateExecution(ctx, x)
		if err != nil {
			return n, fmt.Errorf("orchestrator: recover execution %d: %w", x.ID, err)
		}
		n++
		o.m.executions.WithLabelValues(status).Inc()
		o.appendAudit(ctx, audit.ActorSystem, audit.ActionExecution, subject(x.ID, ""), map[string]any{
			"event": "recovered", "status": status, "unknown_steps": unknown, "error": stored.Error,
		})
		o.appendAudit(ctx, audit.ActorSystem, audit.ActionEscalation, subject(x.ID, ""), map[string]any{"reason": why})
		o.escalator.Escalate(ctx, stored, why)
		if o.ended != nil {
			o.ended(ctx, clone(stored))
		}
		o.log.Warn("execution interrupted by a restart settled", "execution_id", x.ID, "status", status, "unknown_steps", len(unknown))
	}
	return n, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}
