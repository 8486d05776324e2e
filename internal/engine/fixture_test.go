package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/store"
)

var at = time.Date(2026, 3, 4, 3, 12, 0, 0, time.UTC)

var highCPU = store.TriggerRule{ID: 3, Name: "High CPU Alert", MinCount: 1, TimeWindowMinutes: 5, Active: true}

// observed returns the estimate of a real learning.Estimator after the
// observations, in order.
func observed(t *testing.T, obs ...learning.Observation) learning.Estimate {
	t.Helper()
	e, err := learning.New(learning.Options{Now: func() time.Time { return at }})
	require.NoError(t, err)
	k := learning.Key{Pattern: "rule:3/cpu_high", Template: "12"}
	est := e.Get(k)
	for _, o := range obs {
		est, _, err = e.Update(k, o)
		require.NoError(t, err)
	}
	return est
}

// outcomes returns n observations of the outcome o.
func outcomes(n int, o learning.Outcome) []learning.Observation {
	out := make([]learning.Observation, n)
	for i := range out {
		out[i] = learning.Observation{Outcome: o}
	}
	return out
}

func successes(t *testing.T, n int) learning.Estimate {
	t.Helper()
	return observed(t, outcomes(n, learning.Successful)...)
}

func restartTemplate(est learning.Estimate) Candidate {
	return Candidate{
		Template: store.ResponseTemplate{ID: 12, Name: "Restart nginx", Type: "remediation", TriggerRuleID: 3, Active: true},
		Steps: []store.Step{
			{Name: "top", Type: "diagnostic", ActionID: 1, ActionName: "cpu_top", RiskLevel: "low"},
			{Name: "restart", Type: "remediation", ActionID: 2, ActionName: "restart_nginx", RiskLevel: "medium",
				Parameters: map[string]string{"host": "{{.event.source_host}}"}},
		},
		Success: est,
	}
}

func investigationTemplate(est learning.Estimate) Candidate {
	return Candidate{
		Template: store.ResponseTemplate{ID: 11, Name: "CPU Investigation Playbook", Type: "investigation", TriggerRuleID: 3, Active: true},
		Steps:    []store.Step{{Name: "top", Type: "diagnostic", ActionID: 1, ActionName: "cpu_top", RiskLevel: "low"}},
		Success:  est,
	}
}

// cpuInput is the story: a CPU saturation event on web-1 fires
// the High CPU Alert, whose remediation template has est.
func cpuInput(est learning.Estimate) Input {
	ev := event.Event{
		ID: 1001, EventType: "cpu_high", Severity: event.High, Priority: 70,
		SourceSystem: "prometheus", SourceHost: "web-1", SourceService: "nginx",
		Title: "CPU usage 97% on web-1", OccurredAt: at,
		Asset: &event.Asset{Criticality: "medium", Service: "nginx"},
	}
	rule := highCPU
	return Input{
		Event:       ev,
		Rule:        &rule,
		Occurrences: 3,
		Context: contextual.Context{
			Host:          "web-1",
			At:            at,
			Asset:         &store.Asset{Host: "web-1", Criticality: "medium", Service: "nginx"},
			BusinessHours: contextual.BusinessHours{Configured: true, Inside: false},
			Incidents:     contextual.Incidents{Available: true},
			EventRate:     contextual.EventRate{Source: contextual.RateFromStore, Interval: "5m0s", Current: 4, ExpectedLow: 0, ExpectedHigh: 9},
		},
		Candidates: []Candidate{restartTemplate(est)},
		Impact:     Impact{Criticality: "medium"},
	}
}

func builtin(t *testing.T) *Builtin {
	t.Helper()
	b, err := NewBuiltin(BuiltinOptions{})
	require.NoError(t, err)
	return b
}

func decide(t *testing.T, in Input) store.Decision {
	t.Helper()
	d, err := builtin(t).Decide(t.Context(), in)
	require.NoError(t, err)
	return d
}

// factorOf returns the decision's factor named name (the first).
func factorOf(t *testing.T, d store.Decision, name string) store.Factor {
	t.Helper()
	for _, f := range d.Factors {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no factor %q in %v", name, d.Factors)
	return store.Factor{}
}
