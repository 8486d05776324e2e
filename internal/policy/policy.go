// Package policy is the autonomous service's safety policy: which risk
// levels may run without a human's approval and at which minimum
// confidence, in which hours unattended automation may run, whether
// maintenance windows and change freezes hold it, and how long an approval
// lives. Evaluate turns a step, the decision's confidence, the kill switch
// and the host's conditions into a verdict; Switch is the kill switch,
// persisted in the service's settings.
package policy

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/actions"
)

// Defaults of a policy.
const (
	// DefaultMinConfidence is the minimum confidence of low and medium
	// steps run unattended.
	DefaultMinConfidence = 0.8
	// DefaultHighMinConfidence and DefaultCriticalMinConfidence apply to
	// high and critical steps only when the policy lets them run
	// unattended.
	DefaultHighMinConfidence     = 0.9
	DefaultCriticalMinConfidence = 0.95
	// DefaultApprovalTTL is how long an approval request waits.
	DefaultApprovalTTL = time.Hour
	// MaxApprovalTTL bounds ApprovalTTL.
	MaxApprovalTTL = 7 * 24 * time.Hour
)

// Policy is the safety policy. Its zero value is not valid: start from
// Default or Parse. A Policy is a value: it is safe for concurrent use as
// long as nobody modifies it.
type Policy struct {
	// RiskLevels holds the rule of each risk level (low, medium, high,
	// critical); every level has one.
	RiskLevels map[string]RiskRule `json:"risk_levels" yaml:"risk_levels"`
	// Hours is when unattended automation may run; nil: at any time.
	Hours *Hours `json:"automation_hours" yaml:"automation_hours"`
	// HoldDuringMaintenance holds automation on a host that a maintenance
	// window covers (default true).
	HoldDuringMaintenance bool `json:"hold_during_maintenance" yaml:"hold_during_maintenance"`
	// HoldDuringChangeFreeze holds automation on a host that a change
	// freeze covers (default true).
	HoldDuringChangeFreeze bool `json:"hold_during_change_freeze" yaml:"hold_during_change_freeze"`
	// ApprovalTTL is how long an approval request waits for a human
	// (default 1h, at most 7 days).
	ApprovalTTL Duration `json:"approval_ttl" yaml:"approval_ttl"`
	// Limits are the resource manager's limits (default
	// resource.DefaultLimits).
	Limits Limits `json:"limits" yaml:"limits"`
}

// RiskRule is what the policy allows for one risk level.
type RiskRule struct {
	// Unattended lets a step of this level run without approval when the
	// confidence reaches MinConfidence (default true for low and medium,
	// false for high and critical, which only an explicit true changes).
	Unattended bool `json:"unattended" yaml:"unattended"`
	// MinConfidence is the minimum confidence, in [0, 1], of an
	// unattended run; below it the step needs approval (the decision
	// escalates).
	MinConfidence float64 `json:"min_confidence" yaml:"min_confidence"`
	// TwoPerson says the key that requested an approval of this level
	// cannot approve it (default true for critical only).
	TwoPerson bool `json:"two_person" yaml:"two_person"`
}

// Default returns the default policy: low and medium steps run unattended
// at a confidence of at least 0.8; high and critical steps always need
// approval, critical ones from a second person; maintenance windows and
// change freezes hold automation; no automation hours; approvals wait 1h.
func Default() Policy {
	return Policy{
		RiskLevels:             defaultRules(),
		HoldDuringMaintenance:  true,
		HoldDuringChangeFreeze: true,
		ApprovalTTL:            Duration(DefaultApprovalTTL),
		Limits:                 DefaultLimits(),
	}
}

func defaultRules() map[string]RiskRule {
	return map[string]RiskRule{
		actions.RiskLow:      {Unattended: true, MinConfidence: DefaultMinConfidence},
		actions.RiskMedium:   {Unattended: true, MinConfidence: DefaultMinConfidence},
		actions.RiskHigh:     {MinConfidence: DefaultHighMinConfidence},
		actions.RiskCritical: {MinConfidence: DefaultCriticalMinConfidence, TwoPerson: true},
	}
}

// ErrInvalid is wrapped by every error of Parse and Validate.
var ErrInvalid = errors.New("invalid policy")

func bad(field, format string, args ...any) error {
	return fmt.Errorf("policy: %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalid)
}

// Validate checks the policy: a rule for each of the four risk levels and
// no other, confidences in [0, 1], valid automation hours, an approval
// TTL in (0, 7d]. Errors name the field.
func (p Policy) Validate() error {
	for _, level := range actions.RiskLevels {
		r, ok := p.RiskLevels[level]
		if !ok {
			return bad("risk_levels."+level, "missing")
		}
		if math.IsNaN(r.MinConfidence) || r.MinConfidence < 0 || r.MinConfidence > 1 {
			return bad("risk_levels."+level+".min_confidence", "%v: must be in [0, 1]", r.MinConfidence)
		}
	}
	for level := range p.RiskLevels {
		if actions.RiskRank(level) < 0 {
			return bad("risk_levels."+clip(level), "unknown risk level (want %s)", strings.Join(actions.RiskLevels, ", "))
		}
	}
	if p.Hours != nil {
		if _, err := p.Hours.calendar(); err != nil {
			return err
		}
	}
	if d := time.Duration(p.ApprovalTTL); d <= 0 || d > MaxApprovalTTL {
		return bad("approval_ttl", "%s: must be more than 0 and at most %s", d, MaxApprovalTTL)
	}
	return p.Limits.validate()
}

// Rule returns the rule of a risk level: "" is medium (the action
// definitions' default); an unknown level gets the strictest rule (never
// unattended, two people) and false.
func (p Policy) Rule(level string) (RiskRule, bool) {
	if level == "" {
		level = actions.RiskMedium
	}
	r, ok := p.RiskLevels[level]
	if !ok || actions.RiskRank(level) < 0 {
		return RiskRule{MinConfidence: 1, TwoPerson: true}, false
	}
	return r, true
}

// Duration is a time.Duration written as a Go duration string ("1h30m")
// in JSON and YAML.
type Duration time.Duration

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration string such as "45m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q: want a duration such as 1h or 45m", clip(string(b)))
	}
	*d = Duration(v)
	return nil
}

func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
