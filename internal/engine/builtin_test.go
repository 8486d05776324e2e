package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
)

// TestFactorDirection changes one thing of the story at a time and
// checks which way the confidence and that factor's contribution move.
func TestFactorDirection(t *testing.T) {
	est := successes(t, 8) // a lower bound well inside (0, 1): nothing clamps
	base := decide(t, cpuInput(est))
	require.Equal(t, store.DecisionAutomate, base.DecisionType)
	require.Greater(t, base.Confidence, 0.3)
	require.Less(t, base.Confidence, 0.9)

	withAnomaly := func(in *Input, score float64) {
		in.Event.Data = map[string]any{"metadata": map[string]any{"anomaly_score": score}}
	}
	cases := []struct {
		name   string
		factor string
		change func(in *Input)
		dir    int // +1 higher, -1 lower, 0 the factor unchanged
	}{
		{"critical severity", "severity", func(in *Input) { in.Event.Severity = event.Critical }, +1},
		{"medium severity", "severity", func(in *Input) { in.Event.Severity = event.Medium }, -1},
		{"info severity", "severity", func(in *Input) { in.Event.Severity = event.Info }, -1},
		{"higher priority", "priority", func(in *Input) { in.Event.Priority = 95 }, +1},
		{"lower priority", "priority", func(in *Input) { in.Event.Priority = 10 }, -1},
		{"critical asset", "asset_criticality", func(in *Input) { in.Impact.Criticality = "critical" }, -1},
		{"high asset", "asset_criticality", func(in *Input) { in.Impact.Criticality = "high" }, -1},
		{"low asset", "asset_criticality", func(in *Input) { in.Impact.Criticality = "low" }, +1},
		{"criticality given", "asset_criticality", func(in *Input) { in.Given = map[string]any{"system_criticality": "high"} }, -1},
		{"unknown criticality", "asset_criticality", func(in *Input) {
			in.Impact.Criticality, in.Context.Asset, in.Event.Asset = "", nil, nil
		}, -1},
		{"dependents", "blast_radius", func(in *Input) {
			in.Impact.Dependents = []string{"app-1", "app-2", "app-3"}
			in.Impact.Services = []string{"checkout"}
		}, -1},
		{"business hours", "business_hours", func(in *Input) { in.Context.BusinessHours.Inside = true }, -1},
		{"business hours given", "business_hours", func(in *Input) { in.Given = map[string]any{"business_hours": true} }, -1},
		{"maintenance", "maintenance_window", func(in *Input) {
			in.Context.Maintenance = contextual.MaintenanceStatus{Active: true, Windows: []maintenance.Window{{ID: 4, Comment: "kernel upgrade"}}}
		}, -1},
		{"maintenance given", "maintenance_window", func(in *Input) { in.Given = map[string]any{"maintenance_window": true} }, -1},
		{"dependency maintenance", "maintenance_window", func(in *Input) {
			in.Context.Maintenance.DependenciesInMaintenance = []string{"db-1"}
		}, -1},
		{"recent change", "recent_changes", func(in *Input) {
			in.Context.Changes.Events = []contextual.ChangeRef{{EventID: 900, Title: "deploy nginx 1.27"}}
		}, -1},
		{"open incident elsewhere", "open_incidents", func(in *Input) {
			in.Context.Incidents.OnDependencies = []contextual.IncidentRef{{ID: 77, Title: "db-1 down"}}
		}, -1},
		{"own incident is not another", "open_incidents", func(in *Input) {
			in.Incident = &store.Incident{ID: 55, RootEventID: 1001}
			in.Context.Incidents.OnHost = []contextual.IncidentRef{{ID: 55}}
		}, 0},
		{"anomalous event rate", "event_rate", func(in *Input) {
			in.Context.EventRate.Current, in.Context.EventRate.Anomalous = 40, true
		}, -1},
		{"anomaly score", "anomaly_score", func(in *Input) { withAnomaly(in, 0.97) }, +1},
		{"more occurrences", "occurrences", func(in *Input) { in.Occurrences = 10 }, +1},
		{"no rule", "rule_match", func(in *Input) { in.Rule, in.Occurrences = nil, 0 }, -1},
		{"root unranked", "root_cause", func(in *Input) { in.Incident = &store.Incident{ID: 55, EventCount: 4} }, -1},
		{"event is the root", "root_cause", func(in *Input) { in.Incident = &store.Incident{ID: 55, RootEventID: 1001} }, +1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := cpuInput(est)
			c.change(&in)
			d := decide(t, in)
			gotF := factorOf(t, d, c.factor).Contribution - factorOf(t, base, c.factor).Contribution
			switch c.dir {
			case +1:
				require.Positive(t, gotF, "factor %s", c.factor)
				require.Greater(t, d.Confidence, base.Confidence)
			case -1:
				require.Negative(t, gotF, "factor %s", c.factor)
				require.Less(t, d.Confidence, base.Confidence)
			default:
				require.Zero(t, gotF)
			}
		})
	}
}

// TestSeverityMonotone: along the whole scale, a higher severity never
// gives a lower confidence.
func TestSeverityMonotone(t *testing.T) {
	est := successes(t, 8)
	prev := -1.0
	for _, sev := range []event.Severity{event.Info, event.Low, event.Medium, event.High, event.Critical} {
		in := cpuInput(est)
		in.Event.Severity = sev
		d := decide(t, in)
		require.Greater(t, d.Confidence, prev, "severity %s", sev)
		prev = d.Confidence
	}
}

// TestLearningMovesConfidence follows the learning loop with a real
// estimator: a new template is cautious, successes earn it autonomy,
// failures and negative feedback take it back.
func TestLearningMovesConfidence(t *testing.T) {
	fresh := decide(t, cpuInput(observed(t)))
	require.Equal(t, store.DecisionAutomate, fresh.DecisionType)
	require.Less(t, fresh.Confidence, 0.8, "a template never run starts below the execution threshold")
	require.Contains(t, fresh.Reasoning, "never run on this pattern")

	prev := fresh.Confidence
	for _, n := range []int{1, 3, 8, 15, 30} {
		d := decide(t, cpuInput(successes(t, n)))
		require.Greater(t, d.Confidence, prev, "%d successes", n)
		prev = d.Confidence
	}
	// Whatever else is in its favour, a template never run stays below
	// the threshold.
	best := cpuInput(observed(t))
	best.Event.Severity, best.Event.Priority, best.Occurrences = event.Critical, 100, 100
	best.Impact.Criticality = "low"
	best.Event.Data = map[string]any{"metadata": map[string]any{"anomaly_score": 1.0}}
	best.Incident = &store.Incident{ID: 1001, RootEventID: 1001}
	require.InDelta(t, 0.05+0.26, decide(t, best).Confidence, 1e-9, "the package documentation's bound")

	earned := decide(t, cpuInput(successes(t, 15)))
	require.GreaterOrEqual(t, earned.Confidence, 0.8, "15 successes in a row earn autonomy")

	ok := outcomes(15, learning.Successful)
	withFailure := decide(t, cpuInput(observed(t, append(ok, learning.Observation{Outcome: learning.Failed})...)))
	require.Less(t, withFailure.Confidence, earned.Confidence, "a failure lowers the confidence")
	notHelpful := decide(t, cpuInput(observed(t, append(ok, learning.Observation{Feedback: learning.NotHelpful, FeedbackOn: learning.Successful})...)))
	require.Less(t, notHelpful.Confidence, earned.Confidence, "negative feedback lowers the confidence")
	incorrect := decide(t, cpuInput(observed(t, append(ok, learning.Observation{Feedback: learning.Incorrect, FeedbackOn: learning.Successful})...)))
	require.Less(t, incorrect.Confidence, notHelpful.Confidence, "incorrect weighs more than not helpful")

	rec := earned.RecommendedActions[0]
	require.Equal(t, int64(12), rec.TemplateID)
	require.InDelta(t, successes(t, 15).Lower, rec.Success, 1e-12)
	require.InDelta(t, 15, rec.Evidence, 1e-9)
	require.Len(t, rec.Steps, 2)
}

// TestConfidenceMonotoneInSuccess: over a range of histories, more
// successes never lower the confidence, more failures never raise it
// (demotion aside: a demoted template changes the decision's type, which
// TestDemotedNeverAutomates covers).
func TestConfidenceMonotoneInSuccess(t *testing.T) {
	b := builtin(t)
	conf := func(fails, succ int) (float64, bool) {
		est := observed(t, append(outcomes(fails, learning.Failed), outcomes(succ, learning.Successful)...)...)
		d, err := b.Decide(t.Context(), cpuInput(est))
		require.NoError(t, err)
		return d.Confidence, est.Demoted
	}
	for fails := 0; fails <= 3; fails++ {
		prev := -1.0
		for succ := 0; succ <= 25; succ++ {
			c, demoted := conf(fails, succ)
			if demoted {
				prev = -1
				continue
			}
			require.GreaterOrEqual(t, c, prev, "%d successes, %d failures", succ, fails)
			prev = c
			if fewer, demoted := conf(fails+1, succ); !demoted {
				require.LessOrEqual(t, fewer, c, "one failure more raised the confidence (%d successes, %d failures)", succ, fails)
			}
		}
	}
}

func TestDemotedNeverAutomates(t *testing.T) {
	// 2 successes and 6 failures: the mean falls below the floor after
	// the minimum number of outcomes.
	demoted := observed(t, append(outcomes(2, learning.Successful), outcomes(6, learning.Failed)...)...)
	require.True(t, demoted.Demoted)
	notDemoted := demoted
	notDemoted.Demoted = false

	require.Equal(t, store.DecisionAutomate, decide(t, cpuInput(notDemoted)).DecisionType)

	d := decide(t, cpuInput(demoted))
	require.Equal(t, store.DecisionEscalate, d.DecisionType)
	require.Equal(t, "every candidate demoted", factorOf(t, d, "base").Value)
	require.Len(t, d.RecommendedActions, 1)
	for _, s := range d.RecommendedActions[0].Steps {
		require.True(t, s.ApprovalRequired, "step %s of a demoted template", s.Name)
		require.Contains(t, s.ApprovalReason, "demoted")
	}

	// Beside another candidate, the demoted one ranks last and the other
	// decides, even with a lower success bound.
	in := cpuInput(successes(t, 30))
	in.Candidates[0].Success.Demoted = true
	in.Candidates = append(in.Candidates, investigationTemplate(observed(t)))
	d = decide(t, in)
	require.Equal(t, store.DecisionInvestigate, d.DecisionType)
	require.Equal(t, int64(11), d.RecommendedActions[0].TemplateID)
	require.Equal(t, int64(12), d.RecommendedActions[1].TemplateID)
	require.False(t, d.RecommendedActions[0].Steps[0].ApprovalRequired)
	require.True(t, d.RecommendedActions[1].Steps[1].ApprovalRequired)
	// The input's steps are not changed.
	require.False(t, in.Candidates[0].Steps[1].ApprovalRequired)
}

func TestRanking(t *testing.T) {
	in := cpuInput(observed(t))
	in.Candidates = append(in.Candidates, investigationTemplate(successes(t, 10)))
	d := decide(t, in)
	require.Equal(t, store.DecisionInvestigate, d.DecisionType, "the better-proven investigation leads")
	require.Equal(t, []int64{11, 12}, []int64{d.RecommendedActions[0].TemplateID, d.RecommendedActions[1].TemplateID})
	var lines []store.Factor
	for _, f := range d.Factors {
		if f.Name == "template_success" {
			lines = append(lines, f)
		}
	}
	require.Len(t, lines, 2)
	require.InDelta(t, round2(successes(t, 10).Lower), lines[0].Contribution, 1e-9)
	require.Zero(t, lines[1].Contribution)
}

func TestTemplateTypes(t *testing.T) {
	for typ, want := range map[string]string{
		"investigation": store.DecisionInvestigate,
		"remediation":   store.DecisionAutomate,
		"escalation":    store.DecisionEscalate,
		"other":         store.DecisionInvestigate,
	} {
		in := cpuInput(successes(t, 3))
		in.Candidates[0].Template.Type = typ
		require.Equal(t, want, decide(t, in).DecisionType, typ)
	}
}

func TestNoCandidates(t *testing.T) {
	cases := []struct {
		sev     event.Severity
		anomaly float64 // <0: none
		rate    bool
		want    string
	}{
		{event.Critical, -1, false, store.DecisionEscalate},
		{event.High, -1, false, store.DecisionEscalate},
		{event.Medium, -1, false, store.DecisionInvestigate},
		{event.Low, -1, false, store.DecisionIgnore},
		{event.Info, -1, false, store.DecisionIgnore},
		{event.Info, 0.5, false, store.DecisionIgnore},
		{event.Info, 0.9, false, store.DecisionInvestigate},
		{event.Low, -1, true, store.DecisionInvestigate},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%v/%v", c.sev, c.anomaly, c.rate), func(t *testing.T) {
			in := cpuInput(learning.Estimate{})
			in.Candidates = nil
			in.Event.Severity = c.sev
			if c.anomaly >= 0 {
				in.Event.Data = map[string]any{"metadata": map[string]any{"anomaly_score": json.Number(fmt.Sprint(c.anomaly))}}
			}
			in.Context.EventRate.Anomalous = c.rate
			d := decide(t, in)
			require.Equal(t, c.want, d.DecisionType)
			require.Empty(t, d.RecommendedActions)
			require.Equal(t, "no candidate template", factorOf(t, d, "base").Value)
			require.InDelta(t, DefaultWeights.NoCandidateBase, factorOf(t, d, "base").Contribution, 1e-9)
			require.Contains(t, d.Reasoning, "=> "+c.want)
		})
	}
}

func TestRootCause(t *testing.T) {
	in := cpuInput(successes(t, 8))
	root := event.Event{ID: 990, EventType: "disk_full", Severity: event.Critical, Priority: 90, SourceHost: "db-1"}
	in.Incident = &store.Incident{ID: 990, Title: "db-1 disk full", Status: "open", RootEventID: 990, EventCount: 5,
		Hosts:            []string{"db-1", "web-1"},
		RootCauseRanking: []store.RootCandidate{{EventID: 990, SourceHost: "db-1", Score: 0.87, Reason: "dependency of web-1, earliest"}}}
	in.Root = &root
	d := decide(t, in)

	require.Equal(t, int64(1001), d.EventID, "the decision is of the event")
	require.Equal(t, "db-1", d.SourceHost, "it acts on the root's host")
	require.Equal(t, Pattern(in.Event, in.Rule), d.Pattern, "it learns under the firing's pattern")
	require.NotNil(t, d.IncidentID)
	require.Equal(t, int64(990), *d.IncidentID)
	rc := factorOf(t, d, "root_cause")
	require.Equal(t, "event 990 on db-1", rc.Value)
	require.Positive(t, rc.Contribution)
	require.Contains(t, rc.Detail, "symptom")
	require.Contains(t, rc.Detail, "0.87")
	require.Equal(t, "critical", factorOf(t, d, "severity").Value, "the root's severity counts")
	require.Contains(t, d.Reasoning, "acting on the root cause (event 990), not on the symptom (event 1001)")

	// The root being the event itself is no symptom.
	in.Root = &in.Event
	d = decide(t, in)
	require.Equal(t, "web-1", d.SourceHost)
	require.NotContains(t, d.Reasoning, "not on the symptom")
}

func TestReasoningNamesEveryFactor(t *testing.T) {
	in := cpuInput(successes(t, 8))
	in.Candidates = append(in.Candidates, investigationTemplate(observed(t)))
	in.Similar = []Similar{
		{DecisionID: 7, At: at.Add(-48 * 3600e9), TemplateName: "Restart nginx", Outcome: "successful", Title: "CPU usage 99% on web-2"},
		{DecisionID: 5, At: at.Add(-96 * 3600e9), TemplateName: "Restart nginx", Outcome: "failed", Feedback: "not_helpful"},
	}
	d := decide(t, in)
	lines := strings.Split(d.Reasoning, "\n")
	require.Len(t, lines, len(d.Factors)+1, "one line per factor, then the conclusion")
	names := map[string]bool{}
	sum := 0.0
	for i, f := range d.Factors {
		names[f.Name] = true
		require.NotEmpty(t, f.Value, f.Name)
		require.NotEmpty(t, f.Detail, f.Name)
		require.True(t, strings.HasPrefix(lines[i], fmt.Sprintf("%+.2f  %s = ", f.Contribution, f.Name)), "line %q", lines[i])
		sum += f.Contribution
	}
	for _, n := range []string{"template_success", "rule_match", "occurrences", "severity", "priority", "asset_criticality",
		"blast_radius", "business_hours", "maintenance_window", "recent_changes", "open_incidents", "event_rate",
		"anomaly_score", "incident", "root_cause", "similar_incidents"} {
		require.True(t, names[n], "factor %s missing", n)
	}
	require.InDelta(t, d.Confidence, sum, 1e-9, "the lines add up to the confidence")
	require.True(t, strings.HasPrefix(lines[len(lines)-1], fmt.Sprintf("=> automate, confidence %.2f: ", d.Confidence)), lines[len(lines)-1])
	require.Contains(t, factorOf(t, d, "similar_incidents").Detail, `"Restart nginx" ×1`)

	var ev struct {
		Similar []Similar `json:"similar_incidents"`
	}
	require.NoError(t, json.Unmarshal(d.Evidence, &ev))
	require.Equal(t, in.Similar, ev.Similar)
	require.Equal(t, BuiltinName, d.Engine)
	require.Equal(t, "web-1", d.SourceHost)
	require.Equal(t, int64(3), *d.RuleID)
}

func TestClamped(t *testing.T) {
	in := cpuInput(successes(t, 5000))
	in.Event.Severity, in.Event.Priority, in.Occurrences = event.Critical, 100, 50
	in.Impact.Criticality = "low"
	in.Event.Data = map[string]any{"metadata": map[string]any{"anomaly_score": 1.0}}
	d := decide(t, in)
	require.InDelta(t, 1, d.Confidence, 1e-12)
	require.Contains(t, d.Reasoning, "(clamped from ")

	in = cpuInput(observed(t))
	in.Event.Severity, in.Event.Priority = event.Info, 0
	in.Context.Maintenance.Active = true
	in.Impact.Criticality = "critical"
	d = decide(t, in)
	require.Zero(t, d.Confidence)
	require.False(t, math.Signbit(d.Confidence))
}

func TestGiven(t *testing.T) {
	in := cpuInput(successes(t, 8))
	in.Context.Maintenance.Active = true
	in.Given = map[string]any{"maintenance_window": false, "business_hours": false, "system_criticality": "LOW", "other": 1}
	d := decide(t, in)
	require.Equal(t, "none", factorOf(t, d, "maintenance_window").Value, "the request overrides the analyzer")
	require.Contains(t, factorOf(t, d, "maintenance_window").Detail, "the request")
	require.Equal(t, "low", factorOf(t, d, "asset_criticality").Value)
	var c map[string]any
	require.NoError(t, json.Unmarshal(d.Context, &c))
	require.Equal(t, false, c["maintenance"].(map[string]any)["active"])
	require.Equal(t, in.Given["system_criticality"], c["request"].(map[string]any)["system_criticality"])

	for _, bad := range []map[string]any{
		{"business_hours": "yes"},
		{"maintenance_window": 1.0},
		{"system_criticality": "extreme"},
		{"system_criticality": true},
	} {
		_, err := builtin(t).Decide(t.Context(), Input{Event: in.Event, Given: bad})
		require.ErrorIs(t, err, ErrInvalid, "%v", bad)
	}
}

func TestDecideCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := builtin(t).Decide(ctx, cpuInput(observed(t)))
	require.ErrorIs(t, err, context.Canceled)
}

func TestNewBuiltinOptions(t *testing.T) {
	w := DefaultWeights
	w.Maintenance = 1.5
	_, err := NewBuiltin(BuiltinOptions{Weights: &w})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "maintenance")
	w.Maintenance = -0.1
	_, err = NewBuiltin(BuiltinOptions{Weights: &w})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewBuiltin(BuiltinOptions{AnomalyThreshold: 2})
	require.ErrorIs(t, err, ErrInvalid)

	// Weights change the model: without the maintenance weight, a
	// window costs nothing.
	w = DefaultWeights
	w.Maintenance = 0
	b, err := NewBuiltin(BuiltinOptions{Weights: &w, MaxSimilar: 1})
	require.NoError(t, err)
	in := cpuInput(successes(t, 8))
	plain, err := b.Decide(t.Context(), in)
	require.NoError(t, err)
	in.Context.Maintenance.Active = true
	in.Similar = []Similar{{DecisionID: 1}, {DecisionID: 2}}
	held, err := b.Decide(t.Context(), in)
	require.NoError(t, err)
	require.InDelta(t, plain.Confidence, held.Confidence, 1e-9)
	var ev struct {
		Similar []Similar `json:"similar_incidents"`
	}
	require.NoError(t, json.Unmarshal(held.Evidence, &ev))
	require.Len(t, ev.Similar, 1, "MaxSimilar bounds the evidence")
}

func TestPattern(t *testing.T) {
	rule := highCPU
	a := event.Event{ID: 1, EventType: "cpu_high", SourceHost: "web-1", Title: "CPU 97% on web-1", Template: &event.Template{ID: 4}}
	b := event.Event{ID: 2, EventType: "cpu_high", SourceHost: "web-2", Title: "CPU 91% on web-2", Template: &event.Template{ID: 9}, Severity: event.Critical}
	require.Equal(t, "rule:3/cpu_high", Pattern(a, &rule))
	require.Equal(t, Pattern(a, &rule), Pattern(b, &rule), "the same pattern recurring gives the same key")
	other := rule
	other.ID = 4
	require.NotEqual(t, Pattern(a, &rule), Pattern(a, &other))
	c := a
	c.EventType = "disk_full"
	require.NotEqual(t, Pattern(a, &rule), Pattern(c, &rule))
	require.Equal(t, "event:cpu_high", Pattern(a, nil))
	require.Equal(t, "event:unknown", Pattern(event.Event{}, nil))

	long := a
	long.EventType = strings.Repeat("é", 600)
	p := Pattern(long, &rule)
	require.LessOrEqual(t, len(p), learning.MaxKeyLen)
	require.True(t, utf8.ValidString(p))
	require.Equal(t, p, Pattern(long, &rule))
}
