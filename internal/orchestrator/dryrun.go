package orchestrator

import (
	"fmt"
	"strings"

	"github.com/reflex-ops/reflex/internal/store"
)

// dryRun walks the plan and runs nothing: for each step it resolves the
// action (and makes its executor, which it never calls), renders the
// parameters (outputs of earlier steps as placeholders
// "<steps.name.key>") and asks the Guard, whose lease it releases at
// once. A step that would wait for approval has ApprovalRequired and
// ApprovalReason set, one that would be refused or cannot render has
// Error set; every step ends skipped, and the execution completed with a
// note in Error that sums it up. No approval is requested.
func (o *Orchestrator) dryRun(r *run) {
	x := r.snapshot()
	var approvals, problems []string
	for i := range x.Steps {
		if r.ctx.Err() != nil {
			o.stopped(r)
			return
		}
		s := x.Steps[i]
		note := ""
		d, _, err := o.resolve(r.ctx, s.Step)
		if err != nil {
			note = "would be refused: " + err.Error()
		} else {
			s.ActionID, s.ActionName, s.Rollback = d.ID, d.Name, d.Rollback
			if s.RiskLevel == "" {
				s.RiskLevel = d.RiskLevel
			}
			if d.ApprovalRequired {
				s.ApprovalRequired = true
			}
		}
		if s.ApprovalID == nil {
			data := baseData(x)
			data["steps"] = placeholders(x.Steps, i)
			params, err := render(s.Parameters, data)
			if err != nil && note == "" {
				note = "would not run: " + err.Error()
			} else if err == nil {
				s.Parameters = params
			}
		}
		if note == "" {
			adm, err := o.guard.Admit(r.ctx, x, s)
			switch {
			case err != nil:
				note = "would be refused: the safety controller failed: " + err.Error()
			case adm.Refused != "":
				note = "would be refused: " + adm.Refused
			case adm.NeedsApproval:
				s.ApprovalRequired = true
				if adm.Reason != "" {
					s.ApprovalReason = adm.Reason
				} else if s.ApprovalReason == "" {
					s.ApprovalReason = "the safety controller requires approval"
				}
			case !adm.Run:
				note = "would be refused: the safety controller did not admit the step"
			}
			if adm.Release != nil {
				adm.Release(store.StepSkipped)
			}
		}
		if s.ApprovalRequired {
			approvals = append(approvals, s.Name)
		}
		if note != "" {
			problems = append(problems, s.Name)
		}
		s.Status, s.Error = store.StepSkipped, clipError(note)
		x.Steps[i] = s
		_ = r.update(func(y *store.Execution) { y.Steps[i] = s })
		o.m.steps.WithLabelValues(store.StepSkipped).Inc()
	}
	summary := fmt.Sprintf("dry run: nothing ran; %d steps checked", len(x.Steps))
	if len(approvals) > 0 {
		summary += "; would wait for approval: " + strings.Join(approvals, ", ")
	}
	if len(problems) > 0 {
		summary += "; would not run: " + strings.Join(problems, ", ")
	}
	o.end(r, store.ExecCompleted, summary, false)
}
