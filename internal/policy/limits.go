package policy

import (
	"time"

	"github.com/reflex-ops/reflex/internal/resource"
)

// Limits are the resource manager's limits (internal/resource) as a
// policy writes them: how much automation may do at once, per hour and
// per day, when a template's circuit breaker opens, and what is a
// remediation loop. What a policy leaves out takes resource.DefaultLimits.
type Limits struct {
	MaxConcurrent          int      `json:"max_concurrent" yaml:"max_concurrent"`
	MaxPerHost             int      `json:"max_per_host" yaml:"max_per_host"`
	MaxPerTemplate         int      `json:"max_per_template" yaml:"max_per_template"`
	MaxRemediationsPerHost int      `json:"max_remediations_per_host" yaml:"max_remediations_per_host"`
	TemplatePerHour        int      `json:"template_per_hour" yaml:"template_per_hour"`
	HostBudget             int      `json:"host_budget" yaml:"host_budget"`
	BreakerFailures        int      `json:"breaker_failures" yaml:"breaker_failures"`
	BreakerCooldown        Duration `json:"breaker_cooldown" yaml:"breaker_cooldown"`
	LoopWindow             Duration `json:"loop_window" yaml:"loop_window"`
	LoopCount              int      `json:"loop_count" yaml:"loop_count"`
}

// rawLimits are the limits as written: nil is "not given".
type rawLimits struct {
	MaxConcurrent          *int      `json:"max_concurrent"`
	MaxPerHost             *int      `json:"max_per_host"`
	MaxPerTemplate         *int      `json:"max_per_template"`
	MaxRemediationsPerHost *int      `json:"max_remediations_per_host"`
	TemplatePerHour        *int      `json:"template_per_hour"`
	HostBudget             *int      `json:"host_budget"`
	BreakerFailures        *int      `json:"breaker_failures"`
	BreakerCooldown        *Duration `json:"breaker_cooldown"`
	LoopWindow             *Duration `json:"loop_window"`
	LoopCount              *int      `json:"loop_count"`
}

// DefaultLimits are resource.DefaultLimits.
func DefaultLimits() Limits {
	d := resource.DefaultLimits
	return Limits{
		MaxConcurrent: d.MaxConcurrent, MaxPerHost: d.MaxPerHost, MaxPerTemplate: d.MaxPerTemplate,
		MaxRemediationsPerHost: d.MaxRemediationsPerHost, TemplatePerHour: d.TemplatePerHour, HostBudget: d.HostBudget,
		BreakerFailures: d.BreakerFailures, BreakerCooldown: Duration(d.BreakerCooldown),
		LoopWindow: Duration(d.LoopWindow), LoopCount: d.LoopCount,
	}
}

// Resource returns the limits as the resource manager takes them.
func (l Limits) Resource() resource.Limits {
	return resource.Limits{
		MaxConcurrent: l.MaxConcurrent, MaxPerHost: l.MaxPerHost, MaxPerTemplate: l.MaxPerTemplate,
		MaxRemediationsPerHost: l.MaxRemediationsPerHost, TemplatePerHour: l.TemplatePerHour, HostBudget: l.HostBudget,
		BreakerFailures: l.BreakerFailures, BreakerCooldown: time.Duration(l.BreakerCooldown),
		LoopWindow: time.Duration(l.LoopWindow), LoopCount: l.LoopCount,
	}
}

// merge sets what raw gives over l.
func (l Limits) merge(raw *rawLimits) Limits {
	if raw == nil {
		return l
	}
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&l.MaxConcurrent, raw.MaxConcurrent)
	set(&l.MaxPerHost, raw.MaxPerHost)
	set(&l.MaxPerTemplate, raw.MaxPerTemplate)
	set(&l.MaxRemediationsPerHost, raw.MaxRemediationsPerHost)
	set(&l.TemplatePerHour, raw.TemplatePerHour)
	set(&l.HostBudget, raw.HostBudget)
	set(&l.BreakerFailures, raw.BreakerFailures)
	set(&l.LoopCount, raw.LoopCount)
	if raw.BreakerCooldown != nil {
		l.BreakerCooldown = *raw.BreakerCooldown
	}
	if raw.LoopWindow != nil {
		l.LoopWindow = *raw.LoopWindow
	}
	return l
}

// validate checks the limits: counts of at least 1; a negative
// breaker_cooldown (no trial: only an operator closes an open breaker),
// and a negative loop_count or loop_window (no loop detection), are
// allowed.
func (l Limits) validate() error {
	for _, c := range []struct {
		name string
		v    int
	}{
		{"max_concurrent", l.MaxConcurrent}, {"max_per_host", l.MaxPerHost}, {"max_per_template", l.MaxPerTemplate},
		{"max_remediations_per_host", l.MaxRemediationsPerHost}, {"template_per_hour", l.TemplatePerHour},
		{"host_budget", l.HostBudget}, {"breaker_failures", l.BreakerFailures},
	} {
		if c.v < 1 {
			return bad("limits."+c.name, "%d: must be at least 1", c.v)
		}
	}
	if l.LoopCount == 0 {
		return bad("limits.loop_count", "0: must be at least 1 (negative: no loop detection)")
	}
	if l.BreakerCooldown == 0 {
		return bad("limits.breaker_cooldown", "0: must not be 0 (negative: only an operator closes an open breaker)")
	}
	if l.LoopWindow == 0 {
		return bad("limits.loop_window", "0: must not be 0 (negative: no loop detection)")
	}
	return nil
}
