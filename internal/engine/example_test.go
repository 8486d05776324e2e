package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/engine"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/store"
)

// The issue's story: the High CPU Alert fires on web-1, whose
// remediation template has succeeded 15 times on this pattern and whose
// investigation playbook never ran; a deployment happened an hour ago.
func ExampleBuiltin_Decide() {
	now := time.Date(2026, 3, 4, 3, 12, 0, 0, time.UTC)
	est, _ := learning.New(learning.Options{Now: func() time.Time { return now }})
	rule := store.TriggerRule{ID: 3, Name: "High CPU Alert", MinCount: 1}
	ev := event.Event{ID: 1001, EventType: "cpu_high", Severity: event.High, Priority: 70, SourceHost: "web-1"}
	key := learning.Key{Pattern: engine.Pattern(ev, &rule), Template: "12"}
	for range 15 {
		_, _, _ = est.Update(key, learning.Observation{Outcome: learning.Successful})
	}

	b, _ := engine.NewBuiltin(engine.BuiltinOptions{})
	d, _ := b.Decide(context.Background(), engine.Input{
		Event: ev, Rule: &rule, Occurrences: 3,
		Context: contextual.Context{
			Host:          "web-1",
			BusinessHours: contextual.BusinessHours{Configured: true},
			Changes:       contextual.Changes{Events: []contextual.ChangeRef{{EventID: 990, Title: "deploy nginx 1.27.1"}}},
			Incidents:     contextual.Incidents{Available: true},
			EventRate:     contextual.EventRate{Source: "store", Interval: "5m0s", Current: 4, ExpectedHigh: 9},
		},
		Candidates: []engine.Candidate{
			{Template: store.ResponseTemplate{ID: 12, Name: "Restart nginx", Type: "remediation"}, Success: est.Get(key)},
			{Template: store.ResponseTemplate{ID: 11, Name: "CPU Investigation Playbook", Type: "investigation"},
				Success: est.Get(learning.Key{Pattern: key.Pattern, Template: "11"})},
		},
		Impact:  engine.Impact{Criticality: "high", Dependents: []string{"lb-1"}, Services: []string{"checkout"}},
		Similar: []engine.Similar{{DecisionID: 41, TemplateName: "Restart nginx", Outcome: "successful"}},
	})
	fmt.Println(d.Reasoning)
	// Output:
	// +0.83  template_success = 0.83 for "Restart nginx" (template 12, remediation): success lower bound 0.83, mean 0.94 on 15 outcomes and feedback; the base of the confidence
	// +0.00  template_success = 0.05 for "CPU Investigation Playbook" (template 11, investigation): success lower bound 0.05, mean 0.5 on 0 outcomes and feedback; ranked below the chosen template
	// +0.05  rule_match = "High CPU Alert" (rule 3): the trigger rule matched the event
	// +0.02  occurrences = 3: 3 matching occurrences in the rule's window, 2 beyond its min_count of 1
	// +0.03  severity = high: the event's severity; higher severity gives more weight to acting
	// +0.01  priority = 70: the severity scorer's priority (0 to 100, 50 neutral)
	// -0.05  asset_criticality = high: the impact analyzer's criticality of web-1; a more critical asset asks for more caution
	// -0.03  blast_radius = 1 asset, 1 service: depending on web-1: lb-1; services: checkout; a wider blast radius asks for more caution
	// +0.00  business_hours = outside: outside business hours, per the business calendar
	// +0.00  maintenance_window = none: no maintenance window covers web-1 or its dependencies, per the maintenance windows
	// -0.03  recent_changes = 1: recent change events may be the cause, and an action may fight them: "deploy nginx 1.27.1" (event 990)
	// +0.00  open_incidents = 0: no other open incident on web-1 or its dependencies
	// +0.00  event_rate = 4 in 5m0s: within the expected 0 to 9 of its baseline
	// +0.00  anomaly_score = none: the event carries no anomaly score
	// +0.00  incident = none: the event is in no incident
	// +0.00  root_cause = none: no incident, no root cause to rank
	// +0.00  similar_incidents = 1: 1 successful; resolved by "Restart nginx" ×1; evidence only (their outcomes already count in the success estimates)
	// => automate, confidence 0.83: recommend "Restart nginx" (template 12, remediation; success lower bound 0.83 on 15 outcomes and feedback) on web-1. The policy decides what runs unattended.
}
