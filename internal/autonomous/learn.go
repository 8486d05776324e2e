package autonomous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/store"
)

// FeedbackRequest is the body of POST /api/v1/autonomous/feedback: the
// seed's payload.
type FeedbackRequest struct {
	DecisionID  int64  `json:"decision_id"`
	Feedback    string `json:"feedback"`
	Notes       string `json:"notes"`
	Suggestions string `json:"suggestions"`
}

// Bounds of feedback text.
const maxFeedbackText = 4 << 10

// replayPage is how many learning records are read at once at start.
const replayPage = 1000

// Ended is the orchestrator's hook for an execution that ended: the
// outcome goes to the decision, the firing's row follows the status, and
// the learning layer counts it.
func (s *Service) Ended(ctx context.Context, x store.Execution) {
	s.ruleStatus(ctx, x.RuleExecutionID, x.Status, &x.ID, x.Error)
	if x.DryRun || x.Status == store.ExecCancelled {
		return
	}
	outcome := x.Outcome
	if outcome == "" {
		return
	}
	s.met.outcomes.WithLabelValues(outcome).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.o.Store.Decision(ctx, x.DecisionID)
	if err != nil {
		s.log.Error("execution ended for an unreadable decision: outcome not recorded", "execution_id", x.ID, "err", err)
		return
	}
	d.Outcome = outcome
	now := s.now().UTC()
	if outcome == string(learning.Successful) && d.ResolvedAt == nil {
		d.ResolvedAt = &now
	}
	if d.AcknowledgedAt == nil {
		d.AcknowledgedAt = &now
	}
	if _, err := s.o.Store.UpdateDecision(ctx, d); err != nil {
		s.log.Error("could not record the decision's outcome", "decision_id", d.ID, "err", err)
	}
	tmpl := s.executionTemplate(x)
	if tmpl == "" || d.Pattern == "" {
		return
	}
	metrics := map[string]float64{}
	if x.StartedAt != nil {
		metrics["response_time"] = x.StartedAt.Sub(d.CreatedAt).Seconds()
	}
	if x.FinishedAt != nil {
		metrics["resolution_time"] = x.FinishedAt.Sub(d.CreatedAt).Seconds()
	}
	s.learn(ctx, d, tmpl, learning.Observation{Outcome: learning.Outcome(outcome)}, x, metrics, "")
}

// executionTemplate is the learning template key of what x ran.
func (s *Service) executionTemplate(x store.Execution) string {
	if x.TemplateID != nil {
		return templateKey(*x.TemplateID)
	}
	if len(x.Steps) == 1 && x.Steps[0].ActionID != 0 {
		return fmt.Sprintf("action:%d", x.Steps[0].ActionID)
	}
	return ""
}

// learn feeds one observation to the estimator, stores it, and audits and
// notifies a demotion or promotion. s.mu is held.
func (s *Service) learn(ctx context.Context, d store.Decision, tmpl string, o learning.Observation, x any, metrics map[string]float64, lesson string) {
	key := learning.Key{Pattern: d.Pattern, Template: tmpl}
	est, change, err := s.o.Learning.Update(key, o)
	if err != nil {
		s.log.Error("learning update refused", "decision_id", d.ID, "err", err)
		return
	}
	obs, _ := json.Marshal(o)
	rec := store.LearningRecord{DecisionID: &d.ID, Pattern: d.Pattern, Template: tmpl, Observation: obs, LessonsLearned: lesson}
	if x != nil {
		rec.ActionTaken, _ = json.Marshal(x)
	}
	switch o.Outcome {
	case learning.Successful:
		rec.OutcomeSuccess = ptr(true)
	case learning.Failed:
		rec.OutcomeSuccess = ptr(false)
	}
	if len(metrics) > 0 {
		rec.OutcomeMetrics, _ = json.Marshal(metrics)
	}
	upd := map[string]any{"estimate": est}
	if change != nil {
		upd["change"] = change
	}
	rec.KnowledgeUpdate, _ = json.Marshal(upd)
	if _, err := s.o.Store.InsertLearning(ctx, rec); err != nil {
		s.log.Error("could not store learning data: the estimate holds it until a restart", "decision_id", d.ID, "err", err)
	}
	if change == nil {
		return
	}
	if err := s.audit(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionDemotion, Subject: "template:" + tmpl,
		Parameters: map[string]any{"pattern": d.Pattern, "kind": change.Kind, "reason": change.Reason, "estimate": change.Estimate}}); err != nil {
		s.log.Error("demotion not audited", "err", err)
	}
	s.escalate(ctx, d, nil, fmt.Sprintf("template %s %s on pattern %s: %s", tmpl, change.Kind, d.Pattern, change.Reason))
}

// Feedback records a human's judgment of a decision: on the decision, on
// the firing's rules.rule_executions row, and in the learning data. An
// "incorrect" is an override, recorded with its reason (the notes).
func (s *Service) Feedback(ctx context.Context, req FeedbackRequest, by string) (store.Decision, error) {
	if req.DecisionID <= 0 {
		return store.Decision{}, invalid("decision_id: required, a positive integer")
	}
	fb := learning.Feedback(req.Feedback)
	if !slices.Contains([]learning.Feedback{learning.Helpful, learning.NotHelpful, learning.Incorrect}, fb) {
		return store.Decision{}, invalid("feedback: %q is not helpful, not_helpful or incorrect", clipText(req.Feedback, 40))
	}
	if len(req.Notes) > maxFeedbackText || len(req.Suggestions) > maxFeedbackText {
		return store.Decision{}, invalid("notes and suggestions are at most %d bytes each", maxFeedbackText)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.o.Store.Decision(ctx, req.DecisionID)
	if err != nil {
		return store.Decision{}, err
	}
	action := audit.ActionFeedback
	if fb == learning.Incorrect {
		action = audit.ActionOverride
	}
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: action, Subject: subject("decision", d.ID),
		Parameters: map[string]any{"feedback": req.Feedback, "notes": req.Notes, "suggestions": req.Suggestions, "previous": d.Feedback}}); err != nil {
		return store.Decision{}, err
	}
	previous := learning.Feedback(d.Feedback)
	now := s.now().UTC()
	d.Feedback, d.FeedbackNotes, d.FeedbackSuggestions, d.FeedbackBy, d.FeedbackAt = req.Feedback, req.Notes, req.Suggestions, by, &now
	if fb == learning.Incorrect {
		d.HumanOverride = true
		d.OverrideReason = strings.TrimSpace(req.Notes)
		if d.OverrideReason == "" {
			d.OverrideReason = "marked incorrect by " + by
		}
	}
	if d.AcknowledgedAt == nil {
		d.AcknowledgedAt = &now
	}
	d, err = s.o.Store.UpdateDecision(ctx, d)
	if err != nil {
		return store.Decision{}, err
	}
	s.met.feedback.WithLabelValues(req.Feedback).Inc()
	if d.RuleExecutionID != nil {
		if _, err := s.o.Store.SetRuleExecutionFeedback(ctx, *d.RuleExecutionID, req.Feedback, req.Notes); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("could not record feedback on the rule execution", "rule_execution_id", *d.RuleExecutionID, "err", err)
		}
	}
	if tmpl := decisionTemplate(d); tmpl != "" && d.Pattern != "" {
		o := learning.Observation{Feedback: fb, FeedbackOn: learning.Outcome(d.Outcome)}
		if previous != "" {
			o.Replaces = previous
		}
		s.learn(ctx, d, tmpl, o, nil, nil, req.Suggestions)
	}
	return d, nil
}

// decisionTemplate is the learning template key of a decision's first
// recommendation.
func decisionTemplate(d store.Decision) string {
	if len(d.RecommendedActions) == 0 {
		return ""
	}
	r := d.RecommendedActions[0]
	switch {
	case r.TemplateID != 0:
		return templateKey(r.TemplateID)
	case r.ActionID != 0:
		return fmt.Sprintf("action:%d", r.ActionID)
	}
	return ""
}

// replayLearning rebuilds the estimator from the stored learning data.
func (s *Service) replayLearning(ctx context.Context) error {
	var after int64
	n := 0
	for {
		recs, err := s.o.Store.LearningRecords(ctx, after, replayPage)
		if err != nil {
			return fmt.Errorf("autonomous: replay learning data: %w", err)
		}
		for _, r := range recs {
			after = r.ID
			var o learning.Observation
			if err := json.Unmarshal(r.Observation, &o); err != nil {
				s.log.Warn("learning record unreadable: skipped", "id", r.ID, "err", err)
				continue
			}
			if _, _, err := s.o.Learning.Update(learning.Key{Pattern: r.Pattern, Template: r.Template}, o); err != nil {
				s.log.Warn("learning record refused: skipped", "id", r.ID, "err", err)
				continue
			}
			n++
		}
		if len(recs) < replayPage {
			break
		}
	}
	if n > 0 {
		s.log.Info("learning data replayed", "records", n, "pairs", s.o.Learning.Len())
	}
	return nil
}
