package autonomous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/approval"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/orchestrator"
	"github.com/reflex-ops/reflex/internal/policy"
	"github.com/reflex-ops/reflex/internal/resource"
	"github.com/reflex-ops/reflex/internal/store"
)

// ExecuteRequest is the body of POST /api/v1/autonomous/execute: the
// seed's payload.
type ExecuteRequest struct {
	DecisionID int64 `json:"decision_id"`
	// ActionID names the one action to run (the step of the decision's
	// recommendation that runs it); 0 runs the decision's first
	// recommendation whole.
	ActionID         int64            `json:"action_id"`
	ApprovalToken    string           `json:"approval_token"`
	ExecutionOptions ExecutionOptions `json:"execution_options"`
}

// ExecutionOptions are the seed's execution_options.
type ExecutionOptions struct {
	DryRun bool `json:"dry_run"`
	// RollbackOnFailure defaults to true.
	RollbackOnFailure *bool `json:"rollback_on_failure"`
}

// Execute runs what a human asks (POST /execute). With an approval
// token, the step the token approves runs: the waiting step of the
// decision's execution resumes, or a new execution of that action alone
// starts. Without one, an action that needs approval is refused with
// ErrApprovalRequired, and a whole plan starts with its approval-required
// steps waiting in the approval queue.
func (s *Service) Execute(ctx context.Context, req ExecuteRequest, by string) (store.Execution, error) {
	if req.DecisionID <= 0 {
		return store.Execution{}, invalid("decision_id: required, a positive integer")
	}
	if req.ActionID < 0 {
		return store.Execution{}, invalid("action_id: must be a positive integer")
	}
	d, err := s.o.Store.Decision(ctx, req.DecisionID)
	if err != nil {
		return store.Execution{}, err
	}
	rollback := true
	if req.ExecutionOptions.RollbackOnFailure != nil {
		rollback = *req.ExecutionOptions.RollbackOnFailure
	}
	dry := req.ExecutionOptions.DryRun

	if req.ApprovalToken != "" {
		if dry {
			return store.Execution{}, invalid("execution_options.dry_run: a dry run runs nothing and needs no approval_token (the token stays unspent)")
		}
		if s.o.Switch.State().Paused {
			return store.Execution{}, fmt.Errorf("%w: the approval_token stays unspent; resume first", ErrPaused)
		}
		return s.executeApproved(ctx, d, req, by, rollback)
	}
	if req.ActionID == 0 {
		if len(d.RecommendedActions) == 0 || len(d.RecommendedActions[0].Steps) == 0 {
			return store.Execution{}, invalid("decision %d recommends nothing to run: name an action_id", d.ID)
		}
		if !dry && s.o.Switch.State().Paused {
			return store.Execution{}, ErrPaused
		}
		return s.startPlan(ctx, d, d.RecommendedActions[0], by, dry, rollback)
	}
	step, err := s.actionStep(ctx, d, req.ActionID)
	if err != nil {
		return store.Execution{}, err
	}
	s.impactOf(ctx, d, &step)
	if !dry {
		if s.o.Switch.State().Paused {
			return store.Execution{}, ErrPaused
		}
		if v := s.verdict(ctx, d, step, true, false); v.NeedsApproval {
			s.refused(ctx, by, d, step, "no approval token: "+joinReasons(v.Reasons))
			return store.Execution{}, fmt.Errorf("%w: %s needs a valid approval_token (%s)", ErrApprovalRequired, step.ActionName, joinReasons(v.Reasons))
		}
	}
	return s.startPlan(ctx, d, store.Recommendation{ActionID: req.ActionID, Steps: []store.Step{step}}, by, dry, rollback)
}

// executeApproved redeems the token and runs what it approves.
func (s *Service) executeApproved(ctx context.Context, d store.Decision, req ExecuteRequest, by string, rollback bool) (store.Execution, error) {
	waiting, step, err := s.waitingStep(ctx, d.ID, req.ActionID)
	if err != nil {
		return store.Execution{}, err
	}
	actionID := req.ActionID
	if waiting == nil {
		if actionID == 0 {
			return store.Execution{}, invalid("action_id: required with an approval_token when no execution of decision %d waits for approval", d.ID)
		}
		if step, err = s.actionStep(ctx, d, actionID); err != nil {
			return store.Execution{}, err
		}
		s.impactOf(ctx, d, &step)
	} else {
		actionID = step.ActionID
	}
	a, err := s.o.Gate.Redeem(ctx, req.ApprovalToken, d.ID, actionID, step.Parameters)
	if err != nil {
		s.refused(ctx, by, d, step, "approval token refused: "+err.Error())
		return store.Execution{}, err
	}
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: audit.ActionExecution, Subject: subject("decision", d.ID),
		Parameters: map[string]any{"approval_id": a.ID, "action_id": actionID, "parameters": step.Parameters, "event": "approval token used"}}); err != nil {
		return store.Execution{}, err
	}
	if waiting != nil {
		id := waiting.ID
		if a.ExecutionID != nil {
			id = *a.ExecutionID // the execution the approval was asked for
		}
		return s.orch.Resume(ctx, id, a.ID, by)
	}
	st := store.Recommendation{ActionID: actionID, Steps: []store.Step{step}}
	x := s.plan(d, st, by, false, rollback)
	x.Steps[0].ApprovalID = &a.ID
	return s.start(ctx, d, x)
}

// waitingStep finds the execution of decision id waiting for approval of
// actionID (any action when 0).
func (s *Service) waitingStep(ctx context.Context, decisionID, actionID int64) (*store.Execution, store.Step, error) {
	xs, err := s.o.Store.Executions(ctx, store.ExecutionQuery{DecisionID: decisionID, Statuses: []string{store.ExecPending, store.ExecRunning}})
	if err != nil {
		return nil, store.Step{}, err
	}
	for i := range xs {
		for _, st := range xs[i].Steps {
			if st.Status == store.StepWaitingApproval && (actionID == 0 || st.ActionID == actionID) {
				return &xs[i], st.Step, nil
			}
		}
	}
	return nil, store.Step{}, nil
}

// actionStep is the step of d's recommendations that runs actionID, or a
// step of the action alone when none does.
func (s *Service) actionStep(ctx context.Context, d store.Decision, actionID int64) (store.Step, error) {
	for _, r := range d.RecommendedActions {
		for _, st := range r.Steps {
			if st.ActionID == actionID {
				return st, nil
			}
		}
	}
	def, err := s.o.Store.Action(ctx, actionID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Step{}, invalid("action_id: no action definition %d", actionID)
	}
	if err != nil {
		return store.Step{}, err
	}
	return store.Step{
		Name: def.Name, Type: def.Type, ActionID: def.ID, ActionName: def.Name, RiskLevel: def.RiskLevel,
		ApprovalRequired: def.ApprovalRequired, Rollback: def.Rollback,
		ApprovalReason: approvalReason(def),
	}, nil
}

// impactOf makes a remediation step approval-required when the blast
// radius of the decision's host asks for it (or cannot be known).
func (s *Service) impactOf(ctx context.Context, d store.Decision, st *store.Step) {
	if s.o.Impact == nil || st.Type != actions.TypeRemediation || st.ApprovalRequired || d.SourceHost == "" {
		return
	}
	r, err := s.o.Impact.Analyze(ctx, d.SourceHost)
	if err != nil {
		st.ApprovalRequired, st.ApprovalReason = true, "the blast radius is unknown (the impact analyzer failed): approval required"
		return
	}
	if r.RequiresApproval {
		st.ApprovalRequired, st.ApprovalReason = true, r.Reason
	}
}

func approvalReason(def actions.Definition) string {
	if def.ApprovalRequired {
		return "the action " + def.Name + " always needs approval"
	}
	return ""
}

// startPlan starts an execution of rec for decision d.
func (s *Service) startPlan(ctx context.Context, d store.Decision, rec store.Recommendation, by string, dry, rollback bool) (store.Execution, error) {
	return s.start(ctx, d, s.plan(d, rec, by, dry, rollback))
}

func (s *Service) plan(d store.Decision, rec store.Recommendation, by string, dry, rollback bool) store.Execution {
	x := store.Execution{
		DecisionID: d.ID, RuleExecutionID: d.RuleExecutionID, Status: store.ExecPending,
		DryRun: dry, RollbackOnFailure: rollback, RequestedBy: by,
	}
	if rec.TemplateID != 0 {
		x.TemplateID = ptr(rec.TemplateID)
	}
	for _, st := range rec.Steps {
		x.Steps = append(x.Steps, store.StepState{Step: st, Status: store.StepPending})
	}
	return x
}

func (s *Service) start(ctx context.Context, d store.Decision, x store.Execution) (store.Execution, error) {
	data, err := s.data(ctx, d)
	if err != nil {
		return store.Execution{}, err
	}
	x.Data = data
	if err := s.audit(ctx, audit.Entry{Actor: x.RequestedBy, Action: audit.ActionExecution, Subject: subject("decision", d.ID),
		Parameters: map[string]any{"event": "start", "dry_run": x.DryRun, "rollback_on_failure": x.RollbackOnFailure, "steps": x.Steps}}); err != nil {
		return store.Execution{}, err
	}
	x, err = s.orch.Start(ctx, x)
	if err != nil {
		return store.Execution{}, err
	}
	if d.AcknowledgedAt == nil {
		d.AcknowledgedAt = ptr(s.now().UTC())
		if _, err := s.o.Store.UpdateDecision(ctx, d); err != nil {
			s.log.Warn("could not record the decision's acknowledgement", "decision_id", d.ID, "err", err)
		}
	}
	s.met.executions.Inc()
	return x, nil
}

// data is what an execution's steps render from: "event" (the event the
// decision acts on: its incident's root cause when that is another
// event, the triggering one then being "trigger"), "incident" and
// "decision".
func (s *Service) data(ctx context.Context, d store.Decision) (json.RawMessage, error) {
	out := map[string]any{}
	ev, err := s.o.Store.Event(ctx, d.EventID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if ev != nil {
		out["event"] = ev
	}
	if d.IncidentID != nil {
		if inc, err := s.o.Store.Incident(ctx, *d.IncidentID); err == nil {
			out["incident"] = inc
			if inc.RootEventID != 0 && inc.RootEventID != d.EventID {
				if root, err := s.o.Store.Event(ctx, inc.RootEventID); err == nil {
					out["event"], out["trigger"] = root, ev
				}
			}
		}
	}
	out["decision"] = map[string]any{"id": d.ID, "decision_type": d.DecisionType, "confidence": d.Confidence}
	return json.Marshal(out)
}

// verdict asks the policy about one step of decision d, in the host's
// context now. manual says a human asked for it: the confidence is then
// not the policy's to judge. approved says the step carries a redeemed
// approval.
func (s *Service) verdict(ctx context.Context, d store.Decision, st store.Step, manual, approved bool) policy.Verdict {
	conf := d.Confidence
	if manual {
		conf = 1
	}
	sw := s.o.Switch.State()
	req := policy.Request{Step: st, Confidence: conf, Paused: sw.Paused, PausedReason: sw.String(), Approved: approved, Now: s.now()}
	if s.o.Context != nil && d.SourceHost != "" {
		c, err := s.o.Context.Context(ctx, d.SourceHost, s.now())
		if err != nil {
			s.log.Warn("context analyzer failed: the step needs approval", "host", d.SourceHost, "err", err)
			req.ImpactRequiresApproval, req.ImpactReason = true, "the host's context is unknown (the context analyzer failed)"
		} else {
			req.Conditions = policy.ConditionsOf(c)
		}
	}
	return s.o.Policy().Evaluate(req)
}

// Admit is the orchestrator's guard: the policy, the approval and the
// resource manager, asked before each step starts.
func (s *Service) Admit(ctx context.Context, x store.Execution, st store.StepState) (orchestrator.Admission, error) {
	s.reloadSwitch(ctx)
	d, err := s.o.Store.Decision(ctx, x.DecisionID)
	if err != nil {
		return orchestrator.Admission{}, err
	}
	if isRollback(x, st) {
		// A rollback undoes what this execution did: neither the policy
		// nor the resource limits stand in its way.
		return orchestrator.Admission{Run: true}, nil
	}
	approved := st.ApprovalID != nil && s.approvedFor(ctx, *st.ApprovalID, x, st)
	v := s.verdict(ctx, d, st.Step, x.RequestedBy != ActorAutomation, approved)
	switch {
	case v.Hold:
		return orchestrator.Admission{Refused: joinReasons(v.Reasons)}, nil
	case v.NeedsApproval && !approved:
		return orchestrator.Admission{NeedsApproval: true, Reason: joinReasons(v.Reasons)}, nil
	}
	if x.DryRun {
		return orchestrator.Admission{Run: true}, nil
	}
	kind := resource.Diagnostic
	if st.Type == actions.TypeRemediation {
		kind = resource.Remediation
	}
	tmpl := "action:" + st.ActionName
	if x.TemplateID != nil {
		tmpl = templateKey(*x.TemplateID)
	}
	lease, err := s.o.Resources.Acquire(resource.Request{Host: d.SourceHost, Template: tmpl, Pattern: d.Pattern, Kind: kind, Execution: x.ID})
	if err != nil {
		var r *resource.Refusal
		if errors.As(err, &r) {
			return orchestrator.Admission{Refused: r.Error()}, nil
		}
		return orchestrator.Admission{}, err
	}
	return orchestrator.Admission{Run: true, Release: func(outcome string) {
		o := resource.Failure
		if outcome == store.StepSucceeded {
			o = resource.Success
		}
		if ch := lease.Release(o); ch != nil {
			s.breakerChanged(context.WithoutCancel(ctx), d, x, ch)
		}
	}}, nil
}

// isRollback reports whether st is one of x's rollback steps (named as
// the step it undoes, running its rollback action).
func isRollback(x store.Execution, st store.StepState) bool {
	for _, rb := range x.Rollback {
		if rb.Name == st.Name && rb.ActionName == st.ActionName && st.ActionName != "" {
			return true
		}
	}
	return false
}

// approvedFor reports whether approval id was redeemed for this very
// step: used, of x's decision, of the step's action, and of its exact
// parameters.
func (s *Service) approvedFor(ctx context.Context, id int64, x store.Execution, st store.StepState) bool {
	a, err := s.o.Store.Approval(ctx, id)
	if err != nil {
		s.log.Warn("approval of a step unreadable: it needs another", "approval_id", id, "err", err)
		return false
	}
	return a.Status == store.ApprovalUsed && a.DecisionID == x.DecisionID && a.ActionID == st.ActionID &&
		a.ParamsHash == approval.ParamsHash(x.DecisionID, st.ActionID, st.Parameters)
}

// breakerChanged audits and notifies a change of a template's circuit
// breaker.
func (s *Service) breakerChanged(ctx context.Context, d store.Decision, x store.Execution, ch *resource.BreakerChange) {
	s.log.Warn("circuit breaker changed", "template", ch.Template, "from", ch.From, "to", ch.To, "reason", ch.Reason)
	if err := s.audit(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionEscalation, Subject: "template:" + ch.Template,
		Parameters: map[string]any{"event": "circuit breaker", "change": ch, "execution_id": x.ID}}); err != nil {
		s.log.Error("circuit breaker change not audited", "err", err)
	}
	s.escalate(ctx, d, &x, ch.Reason)
}

// Request is the orchestrator's approver: a step waits in the approval
// queue.
func (s *Service) Request(ctx context.Context, x store.Execution, st store.StepState) (int64, error) {
	d, err := s.o.Store.Decision(ctx, x.DecisionID)
	if err != nil {
		return 0, err
	}
	v := s.verdict(ctx, d, st.Step, x.RequestedBy != ActorAutomation, false)
	// The guard's reasons are the step's ApprovalReason by now.
	reason := st.ApprovalReason
	if reason == "" {
		reason = joinReasons(v.Reasons)
	}
	a, err := s.o.Gate.Request(ctx, store.Approval{
		DecisionID: x.DecisionID, ExecutionID: &x.ID, StepName: st.Name, ActionID: st.ActionID, ActionName: st.ActionName,
		Parameters: st.Parameters, RiskLevel: st.RiskLevel, Reason: reason, TwoPerson: v.TwoPerson, RequestedBy: x.RequestedBy,
	})
	if err != nil {
		return 0, err
	}
	if err := s.audit(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionApprovalRequest, Subject: subject("approval", a.ID),
		Parameters: map[string]any{"decision_id": a.DecisionID, "execution_id": x.ID, "step": st.Name, "action_id": a.ActionID, "parameters": a.Parameters, "risk_level": a.RiskLevel, "reason": a.Reason}}); err != nil {
		return 0, err
	}
	s.escalate(ctx, d, &x, fmt.Sprintf("step %q (%s) waits for approval %d: %s", st.Name, st.ActionName, a.ID, reason))
	return a.ID, nil
}

// Escalate is the orchestrator's escalator.
func (s *Service) Escalate(ctx context.Context, x store.Execution, reason string) {
	d, err := s.o.Store.Decision(ctx, x.DecisionID)
	if err != nil {
		s.log.Error("escalation of an execution whose decision is unreadable", "execution_id", x.ID, "reason", reason, "err", err)
		return
	}
	s.escalate(ctx, d, &x, reason)
}

// Approve approves a waiting approval and returns its token.
func (s *Service) Approve(ctx context.Context, id int64, by, comment string) (store.Approval, string, error) {
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: audit.ActionApproval, Subject: subject("approval", id), Parameters: map[string]any{"comment": comment}}); err != nil {
		return store.Approval{}, "", err
	}
	a, token, err := s.o.Gate.Approve(ctx, id, by, comment)
	if err != nil {
		return a, "", err
	}
	s.acknowledge(ctx, a.DecisionID)
	return a, token, nil
}

// Reject rejects a waiting approval; its execution is cancelled.
func (s *Service) Reject(ctx context.Context, id int64, by, comment string) (store.Approval, error) {
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: audit.ActionRejection, Subject: subject("approval", id), Parameters: map[string]any{"comment": comment}}); err != nil {
		return store.Approval{}, err
	}
	a, err := s.o.Gate.Reject(ctx, id, by, comment)
	if err != nil {
		return a, err
	}
	s.acknowledge(ctx, a.DecisionID)
	if a.ExecutionID != nil {
		if _, err := s.orch.Reject(ctx, *a.ExecutionID, a.ID, by, comment); err != nil && !errors.Is(err, orchestrator.ErrNotWaiting) {
			s.log.Warn("could not cancel the execution of a rejected approval", "execution_id", *a.ExecutionID, "err", err)
		}
	}
	return a, nil
}

// Approvals lists the approvals waiting.
func (s *Service) Approvals(ctx context.Context) ([]store.Approval, error) {
	if _, err := s.o.Gate.ExpireDue(ctx); err != nil {
		s.log.Warn("could not expire approvals", "err", err)
	}
	return s.o.Gate.Pending(ctx)
}

// Execution returns an execution, and Subscribe follows one live.
func (s *Service) Execution(ctx context.Context, id int64) (store.Execution, error) {
	return s.o.Store.Execution(ctx, id)
}

// Subscribe streams the states of execution id until it ends.
func (s *Service) Subscribe(id int64) (<-chan store.Execution, func()) { return s.orch.Subscribe(id) }

func (s *Service) acknowledge(ctx context.Context, decisionID int64) {
	d, err := s.o.Store.Decision(ctx, decisionID)
	if err != nil || d.AcknowledgedAt != nil {
		return
	}
	d.AcknowledgedAt = ptr(s.now().UTC())
	if _, err := s.o.Store.UpdateDecision(ctx, d); err != nil {
		s.log.Warn("could not record the decision's acknowledgement", "decision_id", d.ID, "err", err)
	}
}

func (s *Service) refused(ctx context.Context, by string, d store.Decision, st store.Step, reason string) {
	s.met.refusals.Inc()
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: audit.ActionRefusal, Subject: subject("decision", d.ID),
		Parameters: map[string]any{"action_id": st.ActionID, "action": st.ActionName, "parameters": st.Parameters, "reason": reason}}); err != nil {
		s.log.Error("refusal not audited", "decision_id", d.ID, "err", err)
	}
}

func joinReasons(rs []string) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return strings.Join(out, "; ")
}

// Cancel stops execution id: its running steps are killed, the steps not
// yet run are cancelled, and the approvals it waits for expire.
func (s *Service) Cancel(ctx context.Context, id int64, by string) (store.Execution, error) {
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: audit.ActionExecution, Subject: subject("execution", id),
		Parameters: map[string]any{"event": "cancel requested"}}); err != nil {
		return store.Execution{}, err
	}
	x, err := s.orch.Cancel(ctx, id, by)
	if err != nil {
		return x, err
	}
	s.expireApprovalsOf(ctx, id, "the execution was cancelled by "+by)
	return x, nil
}

// expireApprovalsOf expires the pending approvals of execution id.
func (s *Service) expireApprovalsOf(ctx context.Context, id int64, why string) {
	as, err := s.o.Store.Approvals(ctx, store.ApprovalQuery{Status: store.ApprovalPending, Limit: store.MaxDecisionLimit})
	if err != nil {
		s.log.Warn("could not list the approvals of a cancelled execution", "execution_id", id, "err", err)
		return
	}
	now := s.now().UTC()
	for _, a := range as {
		if a.ExecutionID == nil || *a.ExecutionID != id {
			continue
		}
		a.Status, a.DecidedBy, a.DecidedAt, a.Comment = store.ApprovalExpired, audit.ActorSystem, &now, why
		if _, err := s.o.Store.DecideApproval(ctx, a); err != nil && !errors.Is(err, store.ErrConflict) {
			s.log.Warn("could not expire an approval of a cancelled execution", "approval_id", a.ID, "err", err)
		}
	}
}

// ExpireApprovals expires the approvals past their expiry; the server
// calls it periodically.
// The executions waiting for an expired approval are cancelled and
// escalated.
func (s *Service) ExpireApprovals(ctx context.Context) {
	pending, err := s.o.Store.Approvals(ctx, store.ApprovalQuery{Status: store.ApprovalPending, Limit: store.MaxDecisionLimit})
	if err != nil {
		s.log.Warn("could not list the approvals waiting", "err", err)
		return
	}
	n, err := s.o.Gate.ExpireDue(ctx)
	if err != nil {
		s.log.Warn("could not expire approvals", "err", err)
		return
	}
	if n == 0 {
		return
	}
	s.log.Info("approvals expired unanswered", "approvals", n)
	for _, a := range pending {
		if a.ExecutionID == nil {
			continue
		}
		cur, err := s.o.Store.Approval(ctx, a.ID)
		if err != nil || cur.Status != store.ApprovalExpired {
			continue
		}
		x, err := s.orch.Reject(ctx, *a.ExecutionID, a.ID, audit.ActorSystem, "the approval expired unanswered")
		if err != nil {
			if !errors.Is(err, orchestrator.ErrNotWaiting) && !errors.Is(err, orchestrator.ErrEnded) {
				s.log.Warn("could not cancel the execution of an expired approval", "execution_id", *a.ExecutionID, "err", err)
			}
			continue
		}
		s.Escalate(ctx, x, fmt.Sprintf("approval %d of step %q expired unanswered: the execution was cancelled", a.ID, a.StepName))
	}
}
