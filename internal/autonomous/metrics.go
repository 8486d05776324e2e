package autonomous

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

type metrics struct {
	decisions     *prometheus.CounterVec
	outcomes      *prometheus.CounterVec
	feedback      *prometheus.CounterVec
	executions    prometheus.Counter
	escalations   prometheus.Counter
	refusals      prometheus.Counter
	auditFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Service) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_autonomous_decisions_total", Help: "Decisions made, by decision type.",
		}, []string{"type"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_autonomous_outcomes_total", Help: "Outcomes of executions (successful, failed, partially_successful).",
		}, []string{"outcome"}),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_autonomous_feedback_total", Help: "Feedback received on decisions, by kind.",
		}, []string{"feedback"}),
		executions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_autonomous_executions_started_total", Help: "Executions started (dry runs included).",
		}),
		escalations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_autonomous_escalations_total", Help: "Decisions and executions handed to a human.",
		}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_autonomous_refusals_total", Help: "Executions refused before anything ran (no valid approval token, paused).",
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_autonomous_audit_failures_total", Help: "Audit log writes that failed; what they were for was refused.",
		}),
	}
	for _, t := range []string{store.DecisionInvestigate, store.DecisionAutomate, store.DecisionEscalate, store.DecisionIgnore} {
		m.decisions.WithLabelValues(t)
	}
	pending := func() ([]store.Approval, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return s.o.Store.Approvals(ctx, store.ApprovalQuery{Status: store.ApprovalPending, Limit: store.MaxDecisionLimit})
	}
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "reflex_autonomous_approvals_waiting", Help: "Approvals waiting for a human (-1: the store cannot say).",
	}, func() float64 {
		as, err := pending()
		if err != nil {
			return -1
		}
		return float64(len(as))
	})
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "reflex_autonomous_approval_oldest_age_seconds", Help: "Age of the oldest approval waiting for a human (0: none; -1: the store cannot say).",
	}, func() float64 {
		as, err := pending()
		if err != nil {
			return -1
		}
		age := 0.0
		for _, a := range as {
			age = max(age, s.now().Sub(a.CreatedAt).Seconds())
		}
		return age
	})
	paused := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "reflex_autonomous_paused", Help: "1 while the kill switch holds all new automation.",
	}, func() float64 {
		if s.o.Switch.State().Paused {
			return 1
		}
		return 0
	})
	if err := errors.Join(
		promutil.Register(reg, &m.decisions), promutil.Register(reg, &m.outcomes), promutil.Register(reg, &m.feedback),
		promutil.Register(reg, &m.executions), promutil.Register(reg, &m.escalations), promutil.Register(reg, &m.refusals),
		promutil.Register(reg, &m.auditFailures), promutil.Register(reg, &waiting), promutil.Register(reg, &oldest), promutil.Register(reg, &paused),
	); err != nil {
		return nil, fmt.Errorf("autonomous: metrics: %w", err)
	}
	return m, nil
}

// Performance is the answer of GET /api/v1/autonomous/metrics: the
// performance tracker over the decisions of the window.
type Performance struct {
	Window    string `json:"window"`
	Decisions int    `json:"decisions"`
	// ByType counts the decisions by decision_type.
	ByType map[string]int `json:"by_type"`
	// AutomationRate is the share of decisions that ran something
	// without a human starting it; SuccessRate the share of outcomes
	// that were successful (partially successful counts half).
	AutomationRate *float64       `json:"automation_rate"`
	SuccessRate    *float64       `json:"success_rate"`
	Outcomes       map[string]int `json:"outcomes"`
	// MeanTimeToAcknowledge and MeanTimeToResolve are in seconds, from
	// the decision to its first human or automated action, and to a
	// successful end.
	MeanTimeToAcknowledge *float64 `json:"mean_time_to_acknowledge_seconds"`
	MeanTimeToResolve     *float64 `json:"mean_time_to_resolve_seconds"`
	// Accuracy is the share of decisions with feedback that were judged
	// helpful.
	Accuracy *float64       `json:"decision_accuracy"`
	Feedback map[string]int `json:"feedback"`
	// ApprovalsWaiting and OldestApprovalAge (seconds) describe the
	// approval queue now.
	ApprovalsWaiting  int      `json:"approvals_waiting"`
	OldestApprovalAge *float64 `json:"oldest_approval_age_seconds"`
	Paused            bool     `json:"paused"`
	// Truncated says the window held more decisions than were counted.
	Truncated bool `json:"truncated,omitempty"`
}

// Performance computes the tracker's figures over the decisions of the
// last window.
func (s *Service) Performance(ctx context.Context, window time.Duration) (Performance, error) {
	now := s.now().UTC()
	ds, err := s.o.Store.Decisions(ctx, store.DecisionQuery{Since: now.Add(-window), Limit: store.MaxDecisionLimit})
	if err != nil {
		return Performance{}, err
	}
	p := Performance{Window: window.String(), Decisions: len(ds), ByType: map[string]int{}, Outcomes: map[string]int{}, Feedback: map[string]int{},
		Truncated: len(ds) == store.MaxDecisionLimit, Paused: s.o.Switch.State().Paused}
	var automated, outcomes, helpful, judged int
	var success float64
	var ack, res []float64
	for _, d := range ds {
		p.ByType[d.DecisionType]++
		if d.Outcome != "" {
			p.Outcomes[d.Outcome]++
			outcomes++
			switch learning.Outcome(d.Outcome) {
			case learning.Successful:
				success++
			case learning.PartiallySuccessful:
				success += 0.5
			}
		}
		if d.DecisionType == store.DecisionAutomate || d.DecisionType == store.DecisionInvestigate {
			automated++
		}
		if d.Feedback != "" {
			p.Feedback[d.Feedback]++
			judged++
			if d.Feedback == string(learning.Helpful) {
				helpful++
			}
		}
		if d.AcknowledgedAt != nil {
			ack = append(ack, d.AcknowledgedAt.Sub(d.CreatedAt).Seconds())
		}
		if d.ResolvedAt != nil {
			res = append(res, d.ResolvedAt.Sub(d.CreatedAt).Seconds())
		}
	}
	p.AutomationRate = ratio(float64(automated), len(ds))
	p.SuccessRate = ratio(success, outcomes)
	p.Accuracy = ratio(float64(helpful), judged)
	p.MeanTimeToAcknowledge = mean(ack)
	p.MeanTimeToResolve = mean(res)
	as, err := s.o.Store.Approvals(ctx, store.ApprovalQuery{Status: store.ApprovalPending, Limit: store.MaxDecisionLimit})
	if err != nil {
		return Performance{}, err
	}
	p.ApprovalsWaiting = len(as)
	for _, a := range as {
		age := now.Sub(a.CreatedAt).Seconds()
		if p.OldestApprovalAge == nil || age > *p.OldestApprovalAge {
			p.OldestApprovalAge = &age
		}
	}
	return p, nil
}

func ratio(n float64, of int) *float64 {
	if of == 0 {
		return nil
	}
	r := n / float64(of)
	return &r
}

func mean(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	m := sum / float64(len(xs))
	return &m
}
