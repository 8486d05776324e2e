package orchestrator

import (
	"context"
	"fmt"
	"strings"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
)

// rollbackAndEnd is the run of a rollback alone (a rejected approval of
// an execution with rollback_on_failure).
func (o *Orchestrator) rollbackAndEnd(r *run, why string) {
	defer o.finish(r)
	o.rollback(r, why)
}

// rollback undoes the completed (succeeded) steps in reverse order: for
// each, its action's rollback action (Step.Rollback, recorded when the
// step ran) runs with the execution's data and the step's parameters. A
// step without a rollback action is skipped, and says so in x.Rollback.
// The first rollback that fails (or is refused, or cancelled) stops the
// rollback: the execution ends rollback_failed and escalates at once;
// else it ends rolled_back. why is what made the execution roll back.
func (o *Orchestrator) rollback(r *run, why string) {
	x := r.snapshot()
	o.appendAudit(r.auditCtx(), audit.ActorSystem, audit.ActionRollback, subject(r.id, ""), map[string]any{
		"event": "started", "reason": why,
	})
	var skipped []string
	for k := len(x.Steps) - 1; k >= 0; k-- {
		s := x.Steps[k]
		if s.Status != store.StepSucceeded {
			continue
		}
		if s.Rollback == "" {
			skipped = append(skipped, s.Name)
			_ = r.update(func(x *store.Execution) {
				x.Rollback = append(x.Rollback, store.StepState{
					Step:   store.Step{Name: s.Name, Type: s.Type},
					Status: store.StepSkipped,
					Error:  fmt.Sprintf("%s has no rollback action: step %q stays as it is", describe(s.Step), s.Name),
				})
			})
			continue
		}
		var f ref
		_ = r.update(func(x *store.Execution) {
			x.Rollback = append(x.Rollback, store.StepState{
				Step: store.Step{
					Name: s.Name, Type: s.Type, ActionName: s.Rollback, Parameters: s.Parameters,
					Timeout: s.Timeout, Retries: s.Retries,
				},
				Status: store.StepPending,
			})
			f = ref{rollback: true, i: len(x.Rollback) - 1}
		})
		if r.ctx.Err() != nil {
			o.stepEnded(r, f, store.StepCancelled, "not run: "+context.Cause(r.ctx).Error(), nil)
		} else {
			o.rollbackStep(r, f)
		}
		if rs := r.step(f); rs.Status != store.StepSucceeded {
			reason := fmt.Sprintf("%s; the rollback of step %q failed: %s", why, s.Name, rs.Error)
			if left := notRolledBack(r.snapshot(), k); len(left) > 0 {
				reason += "; not rolled back: " + strings.Join(left, ", ")
			}
			o.end(r, store.ExecRollbackFailed, reason, true)
			return
		}
		_ = r.update(func(x *store.Execution) { x.Steps[k].Status = store.StepRolledBack })
	}
	reason := why + "; rolled back"
	if len(skipped) > 0 {
		reason += fmt.Sprintf(" (without a rollback action: %s)", strings.Join(skipped, ", "))
	}
	o.end(r, store.ExecRolledBack, reason, false)
}

// rollbackStep runs one rollback step: its action by name, admitted by
// the Guard (which cannot make it wait for approval), audited, with
// retries as the forward step had.
func (o *Orchestrator) rollbackStep(r *run, f ref) {
	s := r.step(f)
	d, ex, err := o.resolve(r.ctx, s.Step)
	if err != nil {
		o.stepEnded(r, f, store.StepFailed, "refused: "+err.Error(), nil)
		return
	}
	_ = r.update(func(x *store.Execution) {
		st := f.in(x)
		st.ActionID, st.RiskLevel = d.ID, d.RiskLevel
	})
	o.admitAndRun(r, f, d, ex)
}

// notRolledBack lists the succeeded steps before index k (in reverse
// order): what a failed rollback leaves as it is.
func notRolledBack(x store.Execution, k int) []string {
	var left []string
	for j := k - 1; j >= 0; j-- {
		if x.Steps[j].Status == store.StepSucceeded {
			left = append(left, x.Steps[j].Name)
		}
	}
	return left
}
