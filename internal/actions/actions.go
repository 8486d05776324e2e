// Package actions holds the action definitions of the Autonomous Response
// Service (autonomous.action_definitions): what a response template's step
// names by its "script", how risky it is, whether it needs approval, which
// action undoes it, how success is judged, and the executor that runs it
// with its parameters. Definitions are written through the API
// (POST/PUT /api/v1/autonomous/actions) or as YAML (`reflex actions apply
// -f`); both go through Decode and Validate here, so that one set of rules
// holds.
package actions

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/executor"
)

// Types of actions (action_type).
const (
	TypeDiagnostic   = "diagnostic"
	TypeRemediation  = "remediation"
	TypeNotification = "notification"
)

// Types lists the action types.
var Types = []string{TypeDiagnostic, TypeRemediation, TypeNotification}

// Risk levels (risk_level), in increasing order.
const (
	RiskLow      = "low"
	RiskMedium   = "medium"
	RiskHigh     = "high"
	RiskCritical = "critical"
)

// RiskLevels lists the risk levels from the lowest.
var RiskLevels = []string{RiskLow, RiskMedium, RiskHigh, RiskCritical}

// RiskRank orders risk levels: 0 for low to 3 for critical, -1 for an
// unknown one.
func RiskRank(level string) int { return slices.Index(RiskLevels, level) }

// Categories suggested for action_category (any other is accepted).
var Categories = []string{"system", "network", "application", "security", "database"}

// Definition is one action definition.
type Definition struct {
	ID int64 `json:"id"`
	// Name is action_name: what a response template's step names as its
	// "script". Unique.
	Name        string `json:"action_name"`
	Description string `json:"description,omitempty"`
	// Type is diagnostic, remediation or notification.
	Type     string `json:"action_type"`
	Category string `json:"action_category,omitempty"`
	// RiskLevel is low, medium (the default), high or critical.
	RiskLevel string `json:"risk_level"`
	// ApprovalRequired makes every run of the action wait for a human's
	// approval, whatever the policy allows.
	ApprovalRequired bool `json:"approval_required"`
	// Rollback names the action that undoes this one (empty: none); it
	// runs, in reverse order of the completed steps, when a later step of
	// an execution with rollback_on_failure fails.
	Rollback                 string `json:"rollback_action,omitempty"`
	EstimatedDurationMinutes int    `json:"estimated_duration_minutes,omitempty"`
	// SuccessCriteria are checked after the action ran (nil: success is
	// the executor's own: exit status 0, an expected HTTP status).
	SuccessCriteria *Criteria `json:"success_criteria,omitempty"`
	// Executor is what runs the action: {"type": "command", ...}; the
	// executor of that type validates the rest.
	Executor json.RawMessage `json:"executor"`
	// Enabled false keeps the definition but refuses to run it.
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Criteria are an action's success criteria, all of those set must hold.
type Criteria struct {
	// ExitCode, when set, is the exit status (or HTTP status) required.
	ExitCode *int `json:"exit_code,omitempty"`
	// OutputMatches, when set, is a regular expression (RE2) the captured
	// output must match.
	OutputMatches string `json:"output_matches,omitempty"`
	// HTTPProbe, when set, is a request made after the action whose
	// status must be one of ExpectedStatus (default any 2xx).
	HTTPProbe *Probe `json:"http_probe,omitempty"`
	// NoNewEventMinutes, when above 0, requires that no new event
	// matching the triggering event's pattern arrives for its host within
	// that many minutes after the action.
	NoNewEventMinutes int `json:"no_new_event_minutes,omitempty"`
}

// Probe is an HTTP check of a success criterion.
type Probe struct {
	// URL may be a template ("https://{{.event.source_host}}/health").
	URL            string `json:"url"`
	ExpectedStatus []int  `json:"expected_status,omitempty"`
	// Timeout is a Go duration (default 10s).
	Timeout string `json:"timeout,omitempty"`
}

// Limits of a definition.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 4096
	MaxExecutorBytes  = 64 << 10
	// MaxNoNewEventMinutes bounds NoNewEventMinutes: a day.
	MaxNoNewEventMinutes = 24 * 60
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ErrInvalid is the error of a definition that does not validate; the
// FieldError it wraps names the field.
var ErrInvalid = errors.New("actions: invalid definition")

// FieldError is a validation failure of one field, by its JSON path.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func bad(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validator checks an executor object of one type (the executor
// subpackages' Parse).
type Validator func(executor.Spec) error

// Validators maps an executor type to its Validator: the executor types
// this server can run.
type Validators map[string]Validator

// Normalize applies the defaults (risk level medium) and trims names.
func (d *Definition) Normalize() {
	d.Name = strings.TrimSpace(d.Name)
	d.Rollback = strings.TrimSpace(d.Rollback)
	d.Type = strings.TrimSpace(d.Type)
	d.Category = strings.TrimSpace(d.Category)
	if strings.TrimSpace(d.RiskLevel) == "" {
		d.RiskLevel = RiskMedium
	}
	d.RiskLevel = strings.TrimSpace(d.RiskLevel)
}

// Validate checks d (normalized) against the rules of a definition, its
// executor with the validator of its type. It returns a *FieldError.
func (d *Definition) Validate(vs Validators) error {
	switch {
	case d.Name == "":
		return bad("action_name", "is required")
	case len(d.Name) > MaxNameLen:
		return bad("action_name", "is longer than %d bytes", MaxNameLen)
	case !namePattern.MatchString(d.Name):
		return bad("action_name", "%q: use letters, digits, '_', '.' and '-', starting with a letter or digit", clip(d.Name))
	case len(d.Description) > MaxDescriptionLen:
		return bad("description", "is longer than %d bytes", MaxDescriptionLen)
	case !slices.Contains(Types, d.Type):
		return bad("action_type", "%q: want one of %s", clip(d.Type), strings.Join(Types, ", "))
	case RiskRank(d.RiskLevel) < 0:
		return bad("risk_level", "%q: want one of %s", clip(d.RiskLevel), strings.Join(RiskLevels, ", "))
	case len(d.Category) > MaxNameLen:
		return bad("action_category", "is longer than %d bytes", MaxNameLen)
	case d.Rollback == d.Name:
		return bad("rollback_action", "an action cannot be its own rollback")
	case d.Rollback != "" && !namePattern.MatchString(d.Rollback):
		return bad("rollback_action", "%q is not an action name", clip(d.Rollback))
	case d.EstimatedDurationMinutes < 0 || d.EstimatedDurationMinutes > 24*60:
		return bad("estimated_duration_minutes", "must be between 0 and 1440")
	}
	if err := d.SuccessCriteria.validate(); err != nil {
		return err
	}
	return validateExecutor(d.Executor, vs)
}

func validateExecutor(raw json.RawMessage, vs Validators) error {
	if len(raw) == 0 || string(raw) == "null" {
		return bad("executor", `is required: {"type": "command", "argv": [...]} or another executor type`)
	}
	if len(raw) > MaxExecutorBytes {
		return bad("executor", "is larger than %d bytes", MaxExecutorBytes)
	}
	spec, err := executor.ParseSpec(raw)
	if err != nil {
		return bad("executor", "%s", trimPrefix(err))
	}
	v, ok := vs[spec.Type]
	if !ok {
		known := make([]string, 0, len(vs))
		for t := range vs {
			known = append(known, t)
		}
		slices.Sort(known)
		return bad("executor.type", "%q is not an executor type this server runs (%s)", clip(spec.Type), strings.Join(known, ", "))
	}
	if err := v(spec); err != nil {
		return bad("executor", "%s", trimPrefix(err))
	}
	return nil
}

func (c *Criteria) validate() error {
	if c == nil {
		return nil
	}
	if c.OutputMatches != "" {
		if _, err := regexp.Compile(c.OutputMatches); err != nil {
			return bad("success_criteria.output_matches", "%v", err)
		}
	}
	if c.NoNewEventMinutes < 0 || c.NoNewEventMinutes > MaxNoNewEventMinutes {
		return bad("success_criteria.no_new_event_minutes", "must be between 0 and %d", MaxNoNewEventMinutes)
	}
	if p := c.HTTPProbe; p != nil {
		if strings.TrimSpace(p.URL) == "" {
			return bad("success_criteria.http_probe.url", "is required")
		}
		if err := executor.Check(p.URL); err != nil {
			return bad("success_criteria.http_probe.url", "%s", trimPrefix(err))
		}
		for _, s := range p.ExpectedStatus {
			if s < 100 || s > 599 {
				return bad("success_criteria.http_probe.expected_status", "%d is not an HTTP status", s)
			}
		}
		if p.Timeout != "" {
			d, err := time.ParseDuration(p.Timeout)
			if err != nil || d <= 0 || d > 10*time.Minute {
				return bad("success_criteria.http_probe.timeout", "%q: want a duration above 0 and at most 10m", clip(p.Timeout))
			}
		}
	}
	return nil
}

// Equal reports whether a and b define the same action (ids and times
// aside), for apply's "unchanged".
func Equal(a, b Definition) bool {
	a.ID, b.ID = 0, 0
	a.CreatedAt, b.CreatedAt, a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	ae, be := compactJSON(a.Executor), compactJSON(b.Executor)
	a.Executor, b.Executor = nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb) && ae == be
}

// compactJSON is raw with keys in a canonical order, for comparison.
func compactJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v) // maps encode with sorted keys
	return string(b)
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// trimPrefix drops the package prefixes of an executor's error, which the
// field name already says.
func trimPrefix(err error) string {
	msg := err.Error()
	for _, p := range []string{"executor: invalid configuration: ", "executor: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
