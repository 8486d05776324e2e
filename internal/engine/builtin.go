package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/store"
)

// Weights are the bounds of the built-in model's contributions (see the
// package documentation for what each does). Each is in [0, 1].
type Weights struct {
	// RuleMatch is added when a trigger rule fired.
	RuleMatch float64 `json:"rule_match"`
	// PerOccurrence is added for each occurrence beyond the rule's
	// min_count (beyond 1 without one), at most MaxOccurrences in all.
	PerOccurrence  float64 `json:"per_occurrence"`
	MaxOccurrences float64 `json:"max_occurrences"`
	// Severity is added for critical, half of it for high, nothing for
	// medium, and taken away likewise for low and info.
	Severity float64 `json:"severity"`
	// Priority is added at priority 100 and taken away at 0, linearly,
	// nothing at 50.
	Priority float64 `json:"priority"`
	// Criticality is taken away for a critical asset, half of it for a
	// high one; a fifth of it is added for a low one and taken away for
	// an asset of unknown criticality.
	Criticality float64 `json:"criticality"`
	// PerDependent and PerService are taken away for each asset and
	// each service that depends on the target, at most MaxBlastRadius
	// in all.
	PerDependent   float64 `json:"per_dependent"`
	PerService     float64 `json:"per_service"`
	MaxBlastRadius float64 `json:"max_blast_radius"`
	// BusinessHours is taken away inside business hours.
	BusinessHours float64 `json:"business_hours"`
	// Maintenance is taken away when a maintenance window covers the
	// host, DependencyMaintenance when one covers only a dependency.
	Maintenance           float64 `json:"maintenance"`
	DependencyMaintenance float64 `json:"dependency_maintenance"`
	// PerChange is taken away for each recent change event, at most
	// MaxChanges in all.
	PerChange  float64 `json:"per_change"`
	MaxChanges float64 `json:"max_changes"`
	// PerOpenIncident is taken away for each other open incident on the
	// host or its dependencies, at most MaxOpenIncidents in all.
	PerOpenIncident  float64 `json:"per_open_incident"`
	MaxOpenIncidents float64 `json:"max_open_incidents"`
	// EventRate is taken away when the host's event rate is outside its
	// baseline's expected range.
	EventRate float64 `json:"event_rate"`
	// Anomaly times the event's anomaly score (0 to 1) is added.
	Anomaly float64 `json:"anomaly"`
	// RootKnown is added when the decision acts on a ranked root cause;
	// RootUnknown taken away for an event in an incident without one.
	RootKnown   float64 `json:"root_known"`
	RootUnknown float64 `json:"root_unknown"`
	// NoCandidateBase is the base of a decision without a chosen
	// template (none, or all demoted).
	NoCandidateBase float64 `json:"no_candidate_base"`
}

// DefaultWeights are the weights of BuiltinOptions.Weights nil.
var DefaultWeights = Weights{
	RuleMatch:             0.05,
	PerOccurrence:         0.01,
	MaxOccurrences:        0.03,
	Severity:              0.06,
	Priority:              0.03,
	Criticality:           0.10,
	PerDependent:          0.01,
	PerService:            0.02,
	MaxBlastRadius:        0.10,
	BusinessHours:         0.03,
	Maintenance:           0.30,
	DependencyMaintenance: 0.05,
	PerChange:             0.03,
	MaxChanges:            0.09,
	PerOpenIncident:       0.03,
	MaxOpenIncidents:      0.09,
	EventRate:             0.05,
	Anomaly:               0.05,
	RootKnown:             0.02,
	RootUnknown:           0.05,
	NoCandidateBase:       0.5,
}

// Defaults of BuiltinOptions.
const (
	DefaultAnomalyThreshold = 0.8
	DefaultMaxSimilar       = 10
)

// BuiltinOptions configure NewBuiltin. The zero value is the default
// model.
type BuiltinOptions struct {
	// Weights of the contributions (nil: DefaultWeights).
	Weights *Weights
	// AnomalyThreshold is the anomaly score at or above which an event
	// counts as anomalous (default 0.8): an info or low event without a
	// candidate is then investigated rather than ignored.
	AnomalyThreshold float64
	// MaxSimilar bounds the similar incidents kept as evidence (default
	// 10).
	MaxSimilar int
}

// Builtin is the built-in engine: explainable, deterministic, without
// network. It is safe for concurrent use.
type Builtin struct {
	w         Weights
	threshold float64
	maxSim    int
}

var _ Engine = (*Builtin)(nil)

// ErrInvalid is the error of invalid options or an invalid request
// context.
var ErrInvalid = errors.New("engine: invalid")

// NewBuiltin returns the built-in engine, or an error (ErrInvalid) when
// a weight or the threshold is outside [0, 1].
func NewBuiltin(o BuiltinOptions) (*Builtin, error) {
	w := DefaultWeights
	if o.Weights != nil {
		w = *o.Weights
	}
	v := reflect.ValueOf(w)
	for i := range v.NumField() {
		if f := v.Field(i).Float(); !(f >= 0 && f <= 1) {
			return nil, fmt.Errorf("%w weight %s: %v is outside [0, 1]", ErrInvalid, v.Type().Field(i).Tag.Get("json"), f)
		}
	}
	if o.AnomalyThreshold == 0 {
		o.AnomalyThreshold = DefaultAnomalyThreshold
	}
	if !(o.AnomalyThreshold > 0 && o.AnomalyThreshold <= 1) {
		return nil, fmt.Errorf("%w anomaly threshold: %v is outside (0, 1]", ErrInvalid, o.AnomalyThreshold)
	}
	if o.MaxSimilar <= 0 {
		o.MaxSimilar = DefaultMaxSimilar
	}
	return &Builtin{w: w, threshold: o.AnomalyThreshold, maxSim: o.MaxSimilar}, nil
}

// Decide makes the decision of in; see the package documentation for
// the model. Its errors: ctx's, and ErrInvalid for a request context of
// the wrong type (business_hours: true).
func (b *Builtin) Decide(ctx context.Context, in Input) (store.Decision, error) {
	if err := ctx.Err(); err != nil {
		return store.Decision{}, fmt.Errorf("engine: decide: %w", err)
	}
	given, err := parseGiven(in.Given)
	if err != nil {
		return store.Decision{}, err
	}
	s := newSituation(in, given, b.threshold)

	ranked := rank(in.Candidates)
	var chosen *Candidate
	if len(ranked) > 0 && !ranked[0].Success.Demoted {
		chosen = &ranked[0]
	}

	var fs []store.Factor
	if chosen != nil {
		fs = append(fs, successFactors(ranked, chosen)...)
	} else {
		fs = append(fs, b.baseFactor(ranked))
	}
	fs = append(fs, b.adjustments(s)...)

	sum := 0.0
	for _, f := range fs {
		sum += f.Contribution
	}
	sum = round2(sum)
	conf := min(max(sum, 0), 1)

	typ := decisionType(s, ranked, chosen)
	d := store.Decision{
		EventID:            in.Event.ID,
		IncidentID:         incidentID(in),
		SourceHost:         s.host,
		Pattern:            Pattern(in.Event, in.Rule),
		DecisionType:       typ,
		Confidence:         conf,
		Factors:            fs,
		RecommendedActions: recommendations(ranked),
		Engine:             BuiltinName,
	}
	if in.Rule != nil {
		id := in.Rule.ID
		d.RuleID = &id
	}
	d.Reasoning = Reasoning(fs, conclusion(s, typ, conf, sum, ranked, chosen))
	similar := in.Similar
	if len(similar) > b.maxSim {
		similar = similar[:b.maxSim]
	}
	if similar == nil {
		similar = []Similar{}
	}
	if d.Evidence, err = json.Marshal(struct {
		Similar []Similar `json:"similar_incidents"`
	}{similar}); err != nil {
		return store.Decision{}, fmt.Errorf("engine: decide: evidence: %w", err)
	}
	if d.Context, err = json.Marshal(struct {
		contextual.Context
		Request map[string]any `json:"request,omitempty"`
	}{s.ctx, in.Given}); err != nil {
		return store.Decision{}, fmt.Errorf("engine: decide: context: %w", err)
	}
	return d, nil
}

// Reasoning returns the readable text of a decision: one line per
// factor ("+0.05  rule_match = ...: detail"), then the conclusion.
func Reasoning(fs []store.Factor, conclusion string) string {
	var sb strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&sb, "%+.2f  %s = %s: %s\n", f.Contribution, f.Name, f.Value, f.Detail)
	}
	sb.WriteString(conclusion)
	return sb.String()
}

// rank returns the candidates best first: not demoted before demoted,
// then by the lower bound of their success, its mean, their id.
func rank(cs []Candidate) []Candidate {
	out := slices.Clone(cs)
	slices.SortStableFunc(out, func(a, b Candidate) int {
		if a.Success.Demoted != b.Success.Demoted {
			if a.Success.Demoted {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(b.Success.Lower, a.Success.Lower); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Success.Mean, a.Success.Mean); c != 0 {
			return c
		}
		return cmp.Compare(a.Template.ID, b.Template.ID)
	})
	return out
}

// Template types (rules.response_templates.template_type).
const (
	templateInvestigation = "investigation"
	templateRemediation   = "remediation"
	templateEscalation    = "escalation"
)

// TypeOf returns the decision type a template of type t leads to:
// investigation → investigate, remediation → automate, escalation →
// escalate; investigate for another.
func TypeOf(t string) string {
	switch t {
	case templateRemediation:
		return store.DecisionAutomate
	case templateEscalation:
		return store.DecisionEscalate
	}
	return store.DecisionInvestigate
}

func decisionType(s *situation, ranked []Candidate, chosen *Candidate) string {
	switch {
	case chosen != nil:
		return TypeOf(chosen.Template.Type)
	case len(ranked) > 0: // every candidate demoted
		return store.DecisionEscalate
	case s.severity >= 3:
		return store.DecisionEscalate
	case s.severity <= 1 && !s.anomalous():
		return store.DecisionIgnore
	}
	return store.DecisionInvestigate
}

func recommendations(ranked []Candidate) []store.Recommendation {
	out := make([]store.Recommendation, 0, len(ranked))
	for _, c := range ranked {
		r := store.Recommendation{
			TemplateID:   c.Template.ID,
			TemplateName: c.Template.Name,
			Success:      c.Success.Lower,
			Evidence:     c.Success.N,
			Steps:        slices.Clone(c.Steps),
		}
		for i := range r.Steps {
			r.Steps[i].Parameters = cloneMap(r.Steps[i].Parameters)
			r.Steps[i].Channels = slices.Clone(r.Steps[i].Channels)
			if c.Success.Demoted {
				const why = "the template is demoted to approval-required on this pattern"
				r.Steps[i].ApprovalRequired = true
				if r.Steps[i].ApprovalReason == "" {
					r.Steps[i].ApprovalReason = why
				} else {
					r.Steps[i].ApprovalReason += "; " + why
				}
			}
		}
		out = append(out, r)
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func incidentID(in Input) *int64 {
	var id int64
	switch {
	case in.Incident != nil:
		id = in.Incident.ID
	case in.Event.IncidentID != 0:
		id = int64(in.Event.IncidentID)
	default:
		return nil
	}
	return &id
}

// round2 rounds to two decimals, the precision of decision_log.
func round2(v float64) float64 { return math.Round(v*100) / 100 }

// Keys of Input.Given.
const (
	GivenBusinessHours     = "business_hours"
	GivenMaintenanceWindow = "maintenance_window"
	GivenCriticality       = "system_criticality"
)

// given is the request's context, typed; nil fields were not given.
type given struct {
	businessHours *bool
	maintenance   *bool
	criticality   string
}

func parseGiven(m map[string]any) (given, error) {
	var g given
	boolean := func(key string) (*bool, error) {
		v, ok := m[key]
		if !ok || v == nil {
			return nil, nil
		}
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%w context %s: want true or false, got %v", ErrInvalid, key, v)
		}
		return &b, nil
	}
	var err error
	if g.businessHours, err = boolean(GivenBusinessHours); err != nil {
		return g, err
	}
	if g.maintenance, err = boolean(GivenMaintenanceWindow); err != nil {
		return g, err
	}
	if v, ok := m[GivenCriticality]; ok && v != nil {
		s, ok := v.(string)
		c := strings.ToLower(strings.TrimSpace(s))
		if !ok || criticalityRank(c) < 0 {
			return g, fmt.Errorf("%w context %s: want critical, high, medium or low, got %v", ErrInvalid, GivenCriticality, v)
		}
		g.criticality = c
	}
	return g, nil
}

// criticalityRank orders criticalities: low 0 to critical 3, -1 for
// another.
func criticalityRank(c string) int {
	return slices.Index([]string{"low", "medium", "high", "critical"}, c)
}
