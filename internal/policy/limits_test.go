package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/resource"
)

func TestLimits(t *testing.T) {
	// The defaults are the resource manager's.
	require.Equal(t, resource.DefaultLimits, Default().Limits.Resource())

	// What the document gives replaces the default, field by field.
	p, err := Parse([]byte("limits:\n  max_concurrent: 3\n  host_budget: 2\n  breaker_cooldown: 5m\n  loop_count: -1\n"))
	require.NoError(t, err)
	got := p.Limits.Resource()
	want := resource.DefaultLimits
	want.MaxConcurrent, want.HostBudget, want.BreakerCooldown, want.LoopCount = 3, 2, 5*time.Minute, -1
	require.Equal(t, want, got)

	p, err = Parse([]byte(`{"limits": {"template_per_hour": 7}}`))
	require.NoError(t, err)
	require.Equal(t, 7, p.Limits.TemplatePerHour)
	require.Equal(t, resource.DefaultLimits.MaxPerHost, p.Limits.MaxPerHost)

	for doc, field := range map[string]string{
		"limits: {max_per_host: 0}":       "limits.max_per_host",
		"limits: {breaker_failures: -2}":  "limits.breaker_failures",
		"limits: {loop_count: 0}":         "limits.loop_count",
		"limits: {breaker_cooldown: 0s}":  "limits.breaker_cooldown",
		"limits: {loop_window: 0s}":       "limits.loop_window",
		"limits: {max_concurent: 3}":      "max_concurent",
		"limits: {breaker_cooldown: ten}": `"ten": want a duration`,
	} {
		_, err := Parse([]byte(doc))
		require.Error(t, err, doc)
		require.True(t, errors.Is(err, ErrInvalid), doc)
		require.Contains(t, err.Error(), field, doc)
	}
}
