package loadgen

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/rules/cond"
)

func TestRulesCompileAndAreStable(t *testing.T) {
	rules := Rules(1000, 1)
	require.Len(t, rules, 1000)
	names := map[string]bool{}
	shapes := map[string]bool{}
	for _, r := range rules {
		_, err := cond.Compile(r.Conditions)
		require.NoError(t, err, "%s: %s", r.Name, r.Conditions)
		require.False(t, names[r.Name], "name %q twice", r.Name)
		names[r.Name] = true
		require.GreaterOrEqual(t, r.MaxTriggersPerHour, 1)
		if r.MinCount > 1 {
			require.GreaterOrEqual(t, r.TimeWindowMinutes, 1, "min_count above 1 needs a window")
		}
		shapes[string(r.Conditions[:12])] = true
	}
	require.Equal(t, rules, Rules(1000, 1), "the same rules for the same seed")
	require.Equal(t, rules[:10], Rules(10, 1), "a shorter set is a prefix: runs of different sizes share rules")
	require.Greater(t, len(shapes), 5, "mixed shapes")
}
