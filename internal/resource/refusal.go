package resource

import (
	"errors"
	"time"
)

// ErrRefused is what every Refusal is (errors.Is): the manager refused a
// lease because a limit holds.
var ErrRefused = errors.New("resource: refused")

// ErrInvalid is the error of an invalid request, option or snapshot.
var ErrInvalid = errors.New("resource: invalid")

// Code says which limit refused a lease, for machines (metrics, the
// decision's reasoning, the API).
type Code string

// The refusal codes. The first four are transient: the limit frees when
// a running action ends, and the request may be tried again then. The
// others mean that a human should look: escalate instead of acting.
const (
	// CodeGlobalLimit: MaxConcurrent actions are running.
	CodeGlobalLimit Code = "global_limit"
	// CodeHostLimit: MaxPerHost actions are running on the host.
	CodeHostLimit Code = "host_limit"
	// CodeHostBusy: a remediation is running on the host
	// (MaxRemediationsPerHost of them).
	CodeHostBusy Code = "host_busy"
	// CodeTemplateLimit: MaxPerTemplate actions of the template are
	// running.
	CodeTemplateLimit Code = "template_limit"

	// CodeTemplateRate: the template ran TemplatePerHour remediations in
	// the last hour.
	CodeTemplateRate Code = "template_rate"
	// CodeBudget: the host had HostBudget remediations in the last 24
	// hours.
	CodeBudget Code = "budget"
	// CodeBreakerOpen: the template's circuit breaker is open after
	// BreakerFailures consecutive failures (or half-open, its one trial
	// running).
	CodeBreakerOpen Code = "breaker_open"
	// CodeRemediationLoop: the pattern came back on the host after each
	// of its last LoopCount remediations within LoopWindow.
	CodeRemediationLoop Code = "remediation_loop"
	// CodeCapacity: the manager tracks MaxKeys hosts, templates and
	// patterns and cannot track one more without forgetting a limit's
	// history; it refuses rather than forgets.
	CodeCapacity Code = "capacity"
)

// Codes are all the refusal codes, for metrics and documentation.
var Codes = []Code{
	CodeGlobalLimit, CodeHostLimit, CodeHostBusy, CodeTemplateLimit,
	CodeTemplateRate, CodeBudget, CodeBreakerOpen, CodeRemediationLoop, CodeCapacity,
}

// Refusal is the error of a refused Acquire: which limit, and why.
type Refusal struct {
	// Code is the limit, for machines.
	Code Code `json:"code"`
	// Reason says why in a sentence for a human, for the decision's
	// reasoning and the audit log.
	Reason string `json:"reason"`
	// Limit is the value of the limit that refused.
	Limit int `json:"limit"`
	// RetryAt is when the limit frees by itself: the oldest run leaving
	// the window (template_rate, budget, remediation_loop), the breaker's
	// cooldown ending (breaker_open). It is zero when only a running
	// action ending frees it (the transient codes), when a breaker's
	// trial is running, or when only an operator can free it.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Request is the refused request.
	Request Request `json:"request"`
}

// Error is the reason, with the package and the code.
func (r *Refusal) Error() string {
	return "resource: refused (" + string(r.Code) + "): " + r.Reason
}

// Is makes every Refusal ErrRefused.
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// Escalate reports whether the refusal asks for a human rather than a
// wait: every code but the transient global_limit, host_limit, host_busy
// and template_limit.
func (r *Refusal) Escalate() bool {
	switch r.Code {
	case CodeGlobalLimit, CodeHostLimit, CodeHostBusy, CodeTemplateLimit:
		return false
	}
	return true
}
