package autonomous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/decision"
	"github.com/reflex-ops/reflex/internal/engine"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/policy"
	"github.com/reflex-ops/reflex/internal/rules/cond"
	"github.com/reflex-ops/reflex/internal/store"
)

// AnalyzeRequest is the body of POST /api/v1/autonomous/analyze: the
// seed's payload.
type AnalyzeRequest struct {
	EventID int64 `json:"event_id"`
	// Context is merged over what the context analyzer knows
	// (business_hours, maintenance_window, system_criticality ...).
	Context map[string]any `json:"context"`
}

// ActorAutomation is who the executions that the service starts by itself
// are requested by, and ActorRules who asks for the decisions of firings.
const (
	ActorAutomation = "automation"
	ActorRules      = "rules"
)

// similarWindow and maxSimilar bound the evidence of past decisions.
const (
	similarWindow = 30 * 24 * time.Hour
	maxSimilar    = 5
	maxScanned    = 1000
)

// Analyze decides about one event on a human's request (POST /analyze).
// A decision already made about the event's incident is returned as it
// is (one decision per incident), with existing true.
func (s *Service) Analyze(ctx context.Context, req AnalyzeRequest, by string) (d store.Decision, existing bool, err error) {
	if req.EventID <= 0 {
		return d, false, invalid("event_id: required, a positive integer")
	}
	ev, err := s.o.Store.Event(ctx, req.EventID)
	if err != nil {
		return d, false, err
	}
	return s.decide(ctx, decideInput{event: ev, given: req.Context, by: by})
}

// HandleRequest decides about one firing of a trigger rule, from the
// decisions stream. It is idempotent by the firing's execution id: a
// redelivered request finds its decision and does nothing more.
func (s *Service) HandleRequest(ctx context.Context, r *decision.Request) error {
	if ds, err := s.o.Store.Decisions(ctx, store.DecisionQuery{RuleExecutionID: r.ExecutionID, Limit: 1}); err != nil {
		return err
	} else if len(ds) > 0 {
		return nil
	}
	ev := &r.Event
	if r.Truncated || ev.ID == 0 {
		var err error
		if ev, err = s.o.Store.Event(ctx, r.Event.ID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				s.log.Warn("decision request for an event that is no longer stored: dropped", "execution_id", r.ExecutionID, "event_id", r.Event.ID)
				return nil
			}
			return err
		}
	}
	rule, err := s.o.Store.TriggerRule(ctx, r.RuleID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	in := decideInput{event: ev, by: ActorRules, firing: &r.ExecutionID, occurrences: r.Occurrences, templates: r.Templates}
	if err == nil {
		in.rule = &rule
	}
	_, _, err = s.decide(ctx, in)
	return err
}

type decideInput struct {
	event       *event.Event
	given       map[string]any
	by          string
	firing      *int64 // the rule execution asking, nil for analyze
	rule        *store.TriggerRule
	occurrences int
	templates   []store.ResponseTemplate // the firing's candidates; nil: find them
}

func (s *Service) decide(ctx context.Context, di decideInput) (store.Decision, bool, error) {
	s.reloadSwitch(ctx)
	ev := di.event
	now := s.now().UTC()
	in := engine.Input{Event: *ev, Rule: di.rule, Occurrences: di.occurrences, Given: di.given}

	// One decision per event too: an event decided before it joined an
	// incident (analyze racing the incident tracker, or an event that
	// never joins one) is not decided again, by analyze or by its firing.
	if ds, err := s.o.Store.Decisions(ctx, store.DecisionQuery{EventID: ev.ID, Limit: 1}); err != nil {
		return store.Decision{}, false, err
	} else if len(ds) > 0 {
		s.folded(ctx, di.firing, ds[0])
		return ds[0], true, nil
	}

	// The incident, and its root: one decision per incident.
	var incidentID *int64
	if m, err := s.o.Store.IncidentsOfEvents(ctx, []int64{ev.ID}); err != nil {
		return store.Decision{}, false, err
	} else if id, ok := m[ev.ID]; ok {
		incidentID = &id
		if ds, err := s.o.Store.Decisions(ctx, store.DecisionQuery{IncidentID: id, Limit: 1}); err != nil {
			return store.Decision{}, false, err
		} else if len(ds) > 0 {
			s.folded(ctx, di.firing, ds[0])
			return ds[0], true, nil
		}
		inc, err := s.o.Store.Incident(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Decision{}, false, err
		}
		if err == nil {
			in.Incident = &inc
			if inc.RootEventID != 0 && inc.RootEventID != ev.ID {
				if root, err := s.o.Store.Event(ctx, inc.RootEventID); err == nil {
					in.Root = root
				}
			}
		}
	}

	// The candidates: the firing's templates, or those of every active
	// rule the event matches.
	templates, rule, err := s.candidates(ctx, di, ev)
	if err != nil {
		return store.Decision{}, false, err
	}
	if in.Rule == nil {
		in.Rule = rule
	}
	pattern := engine.Pattern(*ev, in.Rule)
	for _, t := range templates {
		c, ok := s.resolve(ctx, t, pattern)
		if ok {
			in.Candidates = append(in.Candidates, c)
		}
	}

	host := ev.SourceHost
	if in.Root != nil && in.Root.SourceHost != "" {
		host = in.Root.SourceHost
	}
	if s.o.Context != nil && host != "" {
		c, err := s.o.Context.Context(ctx, host, now)
		if err != nil {
			s.log.Warn("context analyzer failed: deciding without its context", "host", host, "err", err)
		} else {
			in.Context = c
		}
	}
	if s.o.Impact != nil && host != "" {
		r, err := s.o.Impact.Analyze(ctx, host)
		if err != nil {
			s.log.Warn("impact analyzer failed: every remediation needs approval", "host", host, "err", err)
			r.RequiresApproval, r.Reason = true, "the blast radius is unknown (the impact analyzer failed): approval required"
		}
		{
			in.Impact = engine.Impact{Criticality: r.Criticality, Dependents: r.Dependents, Services: r.Services}
			if r.RequiresApproval {
				for i := range in.Candidates {
					for j := range in.Candidates[i].Steps {
						st := &in.Candidates[i].Steps[j]
						if st.Type == actions.TypeRemediation && !st.ApprovalRequired {
							st.ApprovalRequired, st.ApprovalReason = true, r.Reason
						}
					}
				}
			}
		}
	}
	in.Similar = s.similar(ctx, pattern, now)

	d, err := s.o.Engine.Decide(ctx, in)
	if errors.Is(err, engine.ErrInvalid) {
		// The request's context is wrong (a value of the wrong type): the
		// caller's fault, not the service's.
		return store.Decision{}, false, invalid("%s", strings.TrimPrefix(err.Error(), "engine: invalid "))
	}
	if err != nil {
		return store.Decision{}, false, fmt.Errorf("autonomous: decide: %w", err)
	}
	d.EventID, d.IncidentID, d.RuleExecutionID = ev.ID, incidentID, di.firing
	if in.Rule != nil {
		d.RuleID = &in.Rule.ID
	}
	if d.Pattern == "" {
		d.Pattern = pattern
	}
	if d.SourceHost == "" {
		d.SourceHost = host
	}
	d.RequestedBy = di.by
	d.CreatedAt = now
	if c, err := json.Marshal(map[string]any{"analyzer": in.Context, "given": di.given}); err == nil {
		d.Context = c
	}
	run := false
	if s.o.Resources.Recurred(d.SourceHost, d.Pattern) {
		addFactor(&d, store.Factor{Name: "remediation_loop", Value: "looping",
			Detail: "the pattern came back on " + d.SourceHost + " after each of its latest remediations: escalated instead of acting again"})
		d.DecisionType = store.DecisionEscalate
	} else {
		run = s.gate(&d, in.Context)
	}

	stored, err := s.o.Store.InsertDecision(ctx, d)
	if errors.Is(err, store.ErrConflict) {
		s.folded(ctx, di.firing, stored)
		return stored, true, nil
	}
	if err != nil {
		return store.Decision{}, false, err
	}
	d = stored
	s.met.decisions.WithLabelValues(d.DecisionType).Inc()
	if err := s.audit(ctx, audit.Entry{Actor: di.by, Action: audit.ActionDecision, Subject: subject("decision", d.ID), Parameters: map[string]any{
		"event_id": d.EventID, "incident_id": d.IncidentID, "decision_type": d.DecisionType,
		"confidence": d.Confidence, "engine": d.Engine, "recommended_actions": d.RecommendedActions,
	}}); err != nil {
		s.ruleStatus(ctx, d.RuleExecutionID, store.ExecFailed, nil, err.Error())
		return d, false, err
	}

	switch {
	case run:
		x, err := s.startPlan(ctx, d, d.RecommendedActions[0], ActorAutomation, false, true)
		if err != nil {
			s.log.Error("could not start the decision's execution: escalating", "decision_id", d.ID, "err", err)
			s.escalate(ctx, d, nil, "the execution could not start: "+err.Error())
			s.ruleStatus(ctx, d.RuleExecutionID, store.ExecFailed, nil, err.Error())
			return d, false, nil
		}
		s.ruleStatus(ctx, d.RuleExecutionID, store.ExecRunning, &x.ID, "")
		if d.RuleExecutionID != nil && x.TemplateID != nil {
			if _, err := s.o.Store.UpdateRuleExecution(ctx, store.RuleExecutionUpdate{ID: *d.RuleExecutionID, Status: store.ExecRunning, ResponseTemplateID: x.TemplateID}); err != nil {
				s.log.Warn("could not record the template on the rule execution", "rule_execution_id", *d.RuleExecutionID, "err", err)
			}
		}
	case d.DecisionType == store.DecisionEscalate:
		s.escalate(ctx, d, nil, "")
		s.ruleStatus(ctx, d.RuleExecutionID, store.ExecCompleted, nil, "")
	default:
		s.ruleStatus(ctx, d.RuleExecutionID, store.ExecCompleted, nil, "")
	}
	return d, false, nil
}

// gate applies the policy to what the engine proposes: whether its first
// recommendation may start now by itself. A proposal to act whose
// confidence is under the threshold of its first step's risk level (what
// would run by itself first; each later step is admitted by its own risk
// level when it is reached) becomes an escalation; a pause, a maintenance
// window or a change freeze holds it (the decision is still recorded). It
// adds its factor to the reasoning.
func (s *Service) gate(d *store.Decision, c contextual.Context) bool {
	if d.DecisionType != store.DecisionAutomate && d.DecisionType != store.DecisionInvestigate {
		return false
	}
	if len(d.RecommendedActions) == 0 || len(d.RecommendedActions[0].Steps) == 0 {
		return false
	}
	p := s.o.Policy()
	plan := d.RecommendedActions[0]
	first := plan.Steps[0]
	risk := first.RiskLevel
	if risk == "" {
		risk = actions.RiskMedium
	}
	rule, _ := p.Rule(risk)
	sw := s.o.Switch.State()
	v := p.Evaluate(policy.Request{Step: first, Confidence: d.Confidence, Paused: sw.Paused, PausedReason: sw.String(),
		Conditions: policy.ConditionsOf(c), Now: s.now()})
	if v.Hold {
		addFactor(d, store.Factor{Name: "policy", Value: "held", Detail: joinReasons(v.Reasons) + ": nothing runs by itself; a human can still execute the decision"})
		d.DecisionType = store.DecisionEscalate
		return false
	}
	if d.Confidence < rule.MinConfidence {
		addFactor(d, store.Factor{Name: "policy", Value: fmt.Sprintf("%.2f < %.2f", d.Confidence, rule.MinConfidence),
			Detail: fmt.Sprintf("the confidence is below the execution threshold %.2f of %s risk: escalated to a human", rule.MinConfidence, risk)})
		d.DecisionType = store.DecisionEscalate
		return false
	}
	addFactor(d, store.Factor{Name: "policy", Value: fmt.Sprintf("%.2f >= %.2f", d.Confidence, rule.MinConfidence),
		Detail: fmt.Sprintf("the confidence reaches the execution threshold %.2f of %s risk: %q starts; steps that need approval wait for it", rule.MinConfidence, risk, plan.TemplateName)})
	return true
}

func addFactor(d *store.Decision, f store.Factor) {
	d.Factors = append(d.Factors, f)
	line := fmt.Sprintf("%s (%s): %s", f.Name, f.Value, f.Detail)
	if d.Reasoning == "" {
		d.Reasoning = line
	} else {
		d.Reasoning += "\n" + line
	}
}

// candidates returns the response templates a decision chooses from and
// the rule they belong to (the first matching rule for analyze).
func (s *Service) candidates(ctx context.Context, di decideInput, ev *event.Event) ([]store.ResponseTemplate, *store.TriggerRule, error) {
	if di.firing != nil {
		return di.templates, nil, nil
	}
	active := true
	rules, err := s.o.Store.TriggerRules(ctx, &active)
	if err != nil {
		return nil, nil, err
	}
	templates, err := s.o.Store.ResponseTemplates(ctx, &active)
	if err != nil {
		return nil, nil, err
	}
	var out []store.ResponseTemplate
	var first *store.TriggerRule
	for i := range rules {
		m, err := cond.Compile(rules[i].Conditions)
		if err != nil || !m.Match(ev) {
			continue
		}
		if first == nil {
			first = &rules[i]
		}
		for _, t := range templates {
			if t.TriggerRuleID == rules[i].ID {
				out = append(out, t)
			}
		}
	}
	return out, first, nil
}

// resolve makes a template an engine candidate: each step with its action
// definition (a template naming an action that does not exist, or is
// disabled, is left out, logged) and the template's success on pattern.
func (s *Service) resolve(ctx context.Context, t store.ResponseTemplate, pattern string) (engine.Candidate, bool) {
	steps, err := actions.ParseSteps(t.Definition)
	if err != nil {
		s.log.Warn("response template unreadable: not a candidate", "template", t.Name, "err", err)
		return engine.Candidate{}, false
	}
	est := s.o.Learning.Get(learning.Key{Pattern: pattern, Template: templateKey(t.ID)})
	c := engine.Candidate{Template: t, Success: est}
	for i, st := range steps {
		rs := store.Step{
			Name: st.StepName(i), Type: st.Type, Channels: st.Channels, Parameters: st.Parameters,
			Group: st.Group, Timeout: st.Timeout, Retries: st.Retries, OnFailure: st.OnFailure,
			ApprovalRequired: st.ApprovalRequired || t.ApprovalRequired,
		}
		switch {
		case st.ApprovalRequired:
			rs.ApprovalReason = "the template's step asks for approval"
		case t.ApprovalRequired:
			rs.ApprovalReason = "the template asks for approval"
		}
		if st.Type == actions.TypeNotification {
			rs.RiskLevel = actions.RiskLow
			c.Steps = append(c.Steps, rs)
			continue
		}
		def, err := s.o.Store.ActionByName(ctx, st.Script)
		if err != nil {
			s.log.Warn("response template names an action that is not defined: not a candidate", "template", t.Name, "action", st.Script, "err", err)
			return engine.Candidate{}, false
		}
		if !def.Enabled {
			s.log.Info("response template names a disabled action: not a candidate", "template", t.Name, "action", def.Name)
			return engine.Candidate{}, false
		}
		rs.ActionID, rs.ActionName, rs.RiskLevel, rs.Rollback = def.ID, def.Name, def.RiskLevel, def.Rollback
		if def.ApprovalRequired && !rs.ApprovalRequired {
			rs.ApprovalRequired, rs.ApprovalReason = true, "the action "+def.Name+" always needs approval"
		}
		if est.Demoted && st.Type == actions.TypeRemediation && !rs.ApprovalRequired {
			rs.ApprovalRequired, rs.ApprovalReason = true, "the template was demoted on this pattern: its success fell below the floor"
		}
		c.Steps = append(c.Steps, rs)
	}
	return c, true
}

// similar returns the latest decisions of the same pattern and what
// became of them, as evidence.
func (s *Service) similar(ctx context.Context, pattern string, now time.Time) []engine.Similar {
	ds, err := s.o.Store.Decisions(ctx, store.DecisionQuery{Since: now.Add(-similarWindow), Limit: maxScanned})
	if err != nil {
		s.log.Warn("past decisions unreadable: deciding without them", "err", err)
		return nil
	}
	var out []engine.Similar
	for _, d := range ds {
		if d.Pattern != pattern {
			continue
		}
		sim := engine.Similar{DecisionID: d.ID, At: d.CreatedAt, Outcome: d.Outcome, Feedback: d.Feedback}
		if d.IncidentID != nil {
			sim.IncidentID = *d.IncidentID
		}
		if len(d.RecommendedActions) > 0 {
			sim.TemplateName = d.RecommendedActions[0].TemplateName
		}
		out = append(out, sim)
		if len(out) == maxSimilar {
			break
		}
	}
	return out
}

// folded records on a firing that its decision is an earlier one (of its
// incident).
func (s *Service) folded(ctx context.Context, firing *int64, d store.Decision) {
	if firing == nil {
		return
	}
	res, _ := json.Marshal(map[string]any{"decision_id": d.ID, "folded": "the incident already has this decision"})
	_, err := s.o.Store.UpdateRuleExecution(ctx, store.RuleExecutionUpdate{ID: *firing, Status: store.ExecCompleted, Result: res, CompletedAt: ptr(s.now().UTC())})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("could not update the rule execution", "rule_execution_id", *firing, "err", err)
	}
}

// ruleStatus keeps the firing's rules.rule_executions row in step.
func (s *Service) ruleStatus(ctx context.Context, id *int64, status string, executionID *int64, errMsg string) {
	if id == nil {
		return
	}
	u := store.RuleExecutionUpdate{ID: *id, Status: status, Error: errMsg}
	if executionID != nil {
		u.Result, _ = json.Marshal(map[string]any{"execution_id": *executionID})
	}
	switch status {
	case store.ExecPending, store.ExecRunning:
	default:
		u.CompletedAt = ptr(s.now().UTC())
	}
	if _, err := s.o.Store.UpdateRuleExecution(ctx, u); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("could not update the rule execution", "rule_execution_id", *id, "err", err)
	}
}

// escalate hands a decision (and its execution, when there is one) to a
// human through the notification router, and audits it.
func (s *Service) escalate(ctx context.Context, d store.Decision, x *store.Execution, reason string) {
	s.met.escalations.Inc()
	params := map[string]any{"decision_id": d.ID, "decision_type": d.DecisionType, "confidence": d.Confidence, "reason": reason}
	subj := subject("decision", d.ID)
	if x != nil {
		params["execution_id"], params["status"] = x.ID, x.Status
		subj = subject("execution", x.ID)
	}
	if err := s.audit(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionEscalation, Subject: subj, Parameters: params}); err != nil {
		s.log.Error("escalation not audited", "decision_id", d.ID, "err", err)
	}
	title := fmt.Sprintf("reflex decision %d: %s (confidence %.2f)", d.ID, d.DecisionType, d.Confidence)
	if x != nil {
		title = fmt.Sprintf("reflex execution %d of decision %d: %s", x.ID, d.ID, x.Status)
	}
	if reason != "" {
		title += ": " + reason
	}
	s.log.Warn("escalated to a human", "decision_id", d.ID, "reason", reason)
	if s.o.Notifier == nil {
		return
	}
	ruleID, ruleName := int64(0), "reflex-autonomous"
	if d.RuleID != nil {
		ruleID = *d.RuleID
	}
	s.o.Notifier.Dispatch(notify.Alert{
		RuleID: ruleID, RuleName: ruleName, EventID: d.EventID, SourceHost: d.SourceHost,
		Severity: "high", Title: clipText(title, 500), FiredAt: s.now().UTC(),
		Labels: map[string]string{
			"rule": ruleName, "rule_id": strconv.FormatInt(ruleID, 10), "source_host": d.SourceHost,
			"severity": "high", "event_type": "autonomous_escalation", "source": "reflex",
			"decision_id": strconv.FormatInt(d.ID, 10), "decision_type": d.DecisionType,
		},
	})
}

func subject(kind string, id int64) string { return kind + ":" + strconv.FormatInt(id, 10) }

func templateKey(id int64) string { return strconv.FormatInt(id, 10) }

func ptr[T any](v T) *T { return &v }

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
