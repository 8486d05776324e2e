package engine

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/store"
)

// Engine decides what to do about one event. Implementations are safe
// for concurrent use. Decide returns a decision with every field the
// engine knows set (not its ID, CreatedAt, RequestedBy nor
// RuleExecutionID, which are the caller's); an error means no decision
// could be made from in (an invalid request context, a cancelled ctx).
type Engine interface {
	Decide(ctx context.Context, in Input) (store.Decision, error)
}

// Input is everything one decision is made from; the service gathers it.
type Input struct {
	// Event is the event decided about: the rule's firing event, or the
	// one POST /analyze names.
	Event event.Event
	// Rule is the rule that fired; nil for POST /analyze of an event no
	// rule fired for.
	Rule *store.TriggerRule
	// Occurrences is the number of matching occurrences in the rule's
	// window.
	Occurrences int
	// Incident is the event's incident, nil if none.
	Incident *store.Incident
	// Root is the incident's root-cause event when it is not Event: the
	// decision acts on it.
	Root *event.Event
	// Context is the context analyzer's answer for the host.
	Context contextual.Context
	// Given is the request's context (business_hours and
	// maintenance_window booleans, system_criticality a criticality),
	// overriding the analyzer's where set. Other keys are ignored.
	Given map[string]any
	// Candidates are the rule's active response templates, resolved.
	Candidates []Candidate
	// Similar are similar past incidents or decisions and what resolved
	// them: evidence, shown beside the reasoning.
	Similar []Similar
	// Impact is the blast radius of the target.
	Impact Impact
}

// Candidate is one response template the decision may recommend.
type Candidate struct {
	Template store.ResponseTemplate
	// Steps are the template's steps, resolved: action ids, names, risk
	// levels, approval flags, parameter templates.
	Steps []store.Step
	// Success is the template's success estimate on this pattern.
	Success learning.Estimate
}

// Similar is one similar past incident or decision and what became of
// it.
type Similar struct {
	DecisionID   int64     `json:"decision_id,omitempty"`
	IncidentID   int64     `json:"incident_id,omitempty"`
	At           time.Time `json:"at"`
	TemplateName string    `json:"template_name,omitempty"`
	// Outcome is successful, failed, partially_successful or "".
	Outcome string `json:"outcome,omitempty"`
	// Feedback is helpful, not_helpful, incorrect or "".
	Feedback string `json:"feedback,omitempty"`
	Title    string `json:"title,omitempty"`
}

// Impact is the blast radius of a decision's target, from the asset
// dependencies.
type Impact struct {
	// Criticality is the target asset's (critical, high, medium, low;
	// "" unknown).
	Criticality string `json:"criticality,omitempty"`
	// Dependents are the assets that depend on the target, Services
	// their services.
	Dependents []string `json:"dependents,omitempty"`
	Services   []string `json:"services,omitempty"`
}

// BuiltinName is the Engine of the built-in engine's decisions.
const BuiltinName = "builtin"

// Names of the factors whose contribution is the base of the confidence:
// the chosen template's success lower bound, or the base of a decision
// without a chosen template. Every other factor is an adjustment.
const (
	FactorTemplateSuccess = "template_success"
	FactorBase            = "base"
)

// Pattern returns the learning pattern key of an event for a rule:
// "rule:<id>/<event_type>" (or "event:<event_type>" without a rule).
// It leaves out what varies between recurrences of one problem (the
// host, the message's words, the log template, which the miner can fold
// into another), so that the same rule firing on the same kind of event
// learns under one key. It is at most learning.MaxKeyLen bytes.
func Pattern(ev event.Event, rule *store.TriggerRule) string {
	typ := strings.TrimSpace(ev.EventType)
	if typ == "" {
		typ = "unknown"
	}
	var p string
	if rule != nil {
		p = "rule:" + strconv.FormatInt(rule.ID, 10) + "/" + typ
	} else {
		p = "event:" + typ
	}
	return clip(p, learning.MaxKeyLen)
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
