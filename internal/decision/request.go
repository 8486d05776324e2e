// Package decision is the contract between the rules engine and the
// Autonomous Response Service: the decision request that each firing of a
// trigger rule queues on the decisions stream (bus.Decisions). The rules
// engine encodes requests; the autonomous service decodes them, decides
// whether to investigate, automate, escalate or ignore, and records what
// became of the firing in its rules.rule_executions row.
package decision

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Version is the version of the request format; Decode refuses others.
const Version = 1

// Request asks the Autonomous Response Service to decide what to do about
// one firing of a trigger rule.
type Request struct {
	V int `json:"v"`
	// ExecutionID is the firing's rules.rule_executions row, pending until
	// the autonomous service takes it up. It is the request's identity.
	ExecutionID int64  `json:"execution_id"`
	RuleID      int64  `json:"rule_id"`
	RuleName    string `json:"rule_name"`
	// OccurrenceID is the raw event whose arrival made the rule fire
	// (Event's own raw event, or a repeat folded into it).
	OccurrenceID int64 `json:"occurrence_id"`
	// GroupKey is the rule's group key of the firing (its group_by
	// values), Occurrences how many matching occurrences the window held.
	GroupKey    string    `json:"group_key"`
	Occurrences int       `json:"occurrences"`
	FiredAt     time.Time `json:"fired_at"`
	// Event is the processed event that fired the rule, as stored.
	Event event.Event `json:"event"`
	// Correlations are the correlation groups that involve Event (its
	// time-based group, causal groups), as GET
	// /api/v1/events/{id}/correlations answers them.
	Correlations []event.Correlation `json:"correlations"`
	// Templates are the rule's active response templates, the candidates
	// of the decision.
	Templates []store.ResponseTemplate `json:"templates"`
}

// MsgID is the stream message id of the request of an execution: a
// request published again (after a crash or a redelivery) within the
// stream's duplicate window is dropped.
func MsgID(executionID int64) string {
	return "decision-request-" + strconv.FormatInt(executionID, 10)
}

// Encode encodes r as a stream message body, stamping its version.
func Encode(r *Request) ([]byte, error) {
	r.V = Version
	if r.Correlations == nil {
		r.Correlations = []event.Correlation{}
	}
	if r.Templates == nil {
		r.Templates = []store.ResponseTemplate{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("decision: encode request of execution %d: %w", r.ExecutionID, err)
	}
	return b, nil
}

// ErrVersion marks a request of a version that Decode does not know.
var ErrVersion = errors.New("decision: unknown request version")

// Decode decodes a stream message body.
func Decode(b []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decision: decode request: %w", err)
	}
	if r.V != Version {
		return nil, fmt.Errorf("%w: %d (this build reads %d)", ErrVersion, r.V, Version)
	}
	if r.ExecutionID == 0 {
		return nil, errors.New("decision: decode request: no execution_id")
	}
	return &r, nil
}
