package policy

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/maintenance"
	"github.com/reflex-ops/reflex/internal/store"
)

// Request is what Evaluate decides about: one step of a plan.
type Request struct {
	// Step is the step as resolved: its type, risk level, and whether its
	// action or template requires approval (ApprovalRequired, with
	// ApprovalReason).
	Step store.Step
	// Confidence is the decision's confidence, in [0, 1].
	Confidence float64
	// Paused is the kill switch's state (Switch.State().Paused), and
	// PausedReason what it says ("paused by alice: incident 42").
	Paused       bool
	PausedReason string
	// Conditions are the step's host's maintenance windows and change
	// freezes (ConditionsOf a contextual.Context).
	Conditions Conditions
	// ImpactRequiresApproval is the impact analyzer's verdict on the
	// host (impact.Radius.RequiresApproval), ImpactReason its reason.
	ImpactRequiresApproval bool
	ImpactReason           string
	// Approved says the step runs with an approval redeemed for it: a
	// human decided, so approval no longer blocks it and automation hours
	// do not hold it (the kill switch, maintenance and change freezes
	// still do).
	Approved bool
	// Now is the time of the decision; zero: time.Now().
	Now time.Time
}

// Conditions are what holds automation on a host besides the kill switch.
type Conditions struct {
	// Maintenance says a maintenance window (not a change freeze) covers
	// the host now; MaintenanceReason names it.
	Maintenance       bool
	MaintenanceReason string
	// ChangeFreeze says a change freeze covers the host now;
	// ChangeFreezeReason names it.
	ChangeFreeze       bool
	ChangeFreezeReason string
}

// IsChangeFreeze reports whether a maintenance window is a change freeze:
// the context analyzer has no such notion, so a freeze is a maintenance
// window whose comment contains the word "freeze" (any case: "change
// freeze", "Code freeze until release").
func IsChangeFreeze(w maintenance.Window) bool {
	return strings.Contains(strings.ToLower(w.Comment), "freeze")
}

// ConditionsOf reads the conditions from the context of the step's host:
// its active maintenance windows, split into change freezes
// (IsChangeFreeze) and the others. Windows that cover only a dependency
// do not hold the host.
func ConditionsOf(c contextual.Context) Conditions {
	var out Conditions
	var maint, freeze []string
	for _, w := range c.Maintenance.Windows {
		if !w.Active(c.At) && !c.At.IsZero() {
			continue
		}
		desc := describeWindow(w)
		if IsChangeFreeze(w) {
			freeze = append(freeze, desc)
		} else {
			maint = append(maint, desc)
		}
	}
	if len(maint) > 0 {
		out.Maintenance, out.MaintenanceReason = true, strings.Join(maint, "; ")
	}
	if len(freeze) > 0 {
		out.ChangeFreeze, out.ChangeFreezeReason = true, strings.Join(freeze, "; ")
	}
	return out
}

func describeWindow(w maintenance.Window) string {
	s := fmt.Sprintf("window %d until %s", w.ID, w.EndsAt.UTC().Format(time.RFC3339))
	if c := strings.TrimSpace(w.Comment); c != "" {
		s += fmt.Sprintf(" (%s)", clip(c))
	}
	return s
}

// Verdict is the policy's answer for one step.
type Verdict struct {
	// Allow says the step may start now: nothing holds it and it needs
	// no approval, or it has one (Request.Approved).
	Allow bool
	// Hold says the step must not start now (kill switch, maintenance,
	// change freeze, outside automation hours): the automation waits or
	// escalates. A held step may also need approval.
	Hold bool
	// NeedsApproval says the step needs a human's approval (the action,
	// the template, the blast radius, its risk level or a low confidence
	// asks for it), whether or not Request.Approved already carries one.
	NeedsApproval bool
	// TwoPerson says the approval must come from someone other than the
	// requester (the risk level's two_person).
	TwoPerson bool
	// RiskLevel is the level the rule was taken from.
	RiskLevel string
	// Reasons say why, one readable sentence each, approvals first.
	Reasons []string
}

// Evaluate decides about one step. Approval is needed when the step
// (its action or template) or the blast radius requires it, when its risk
// level may not run unattended, or when the confidence is below the risk
// level's min_confidence (the caller escalates). The step is held while
// the kill switch is on, while a maintenance window or a change freeze
// covers its host (as the policy says), and, unless it is approved or
// waits for approval anyway, outside the automation hours. An unknown
// risk level gets the strictest rule.
func (p Policy) Evaluate(r Request) Verdict {
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	level := r.Step.RiskLevel
	if level == "" {
		level = actions.RiskMedium
	}
	rule, known := p.Rule(level)
	v := Verdict{RiskLevel: level}
	need := func(reason string) {
		v.NeedsApproval = true
		v.Reasons = append(v.Reasons, reason)
	}
	if r.Step.ApprovalRequired {
		why := strings.TrimSpace(r.Step.ApprovalReason)
		if why == "" {
			why = "its action or template requires approval"
		}
		need("step " + stepName(r.Step) + " needs approval: " + why)
	}
	if r.ImpactRequiresApproval {
		why := strings.TrimSpace(r.ImpactReason)
		if why == "" {
			why = "the blast radius requires approval"
		}
		need("blast radius: " + why)
	}
	switch {
	case !known:
		need(fmt.Sprintf("risk level %q is unknown: it never runs unattended", clip(level)))
	case !rule.Unattended:
		need("policy: risk level " + level + " never runs unattended")
	case math.IsNaN(r.Confidence) || r.Confidence < rule.MinConfidence:
		need(fmt.Sprintf("confidence %.2f is below the policy's minimum %.2f for risk level %s", r.Confidence, rule.MinConfidence, level))
	}
	if v.NeedsApproval && rule.TwoPerson {
		v.TwoPerson = true
		v.Reasons = append(v.Reasons, "policy: risk level "+level+" needs a second person to approve")
	}

	hold := func(reason string) {
		v.Hold = true
		v.Reasons = append(v.Reasons, reason)
	}
	if r.Paused {
		why := strings.TrimSpace(r.PausedReason)
		if why == "" {
			why = "the kill switch is on"
		}
		hold("automation is paused: " + why)
	}
	if p.HoldDuringMaintenance && r.Conditions.Maintenance {
		hold("the host is in maintenance: " + orDefault(r.Conditions.MaintenanceReason, "a maintenance window covers it"))
	}
	if p.HoldDuringChangeFreeze && r.Conditions.ChangeFreeze {
		hold("the host is in a change freeze: " + orDefault(r.Conditions.ChangeFreezeReason, "a change freeze covers it"))
	}
	if p.Hours != nil && !r.Approved && !v.NeedsApproval && !p.Hours.Inside(now) {
		hold("outside the automation hours (" + p.Hours.String() + ")")
	}
	v.Allow = !v.Hold && (!v.NeedsApproval || r.Approved)
	return v
}

func stepName(s store.Step) string {
	switch {
	case s.Name != "":
		return clip(s.Name)
	case s.ActionName != "":
		return clip(s.ActionName)
	}
	return "(unnamed)"
}

func orDefault(s, def string) string {
	if s = strings.TrimSpace(s); s != "" {
		return s
	}
	return def
}
