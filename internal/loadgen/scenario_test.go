package loadgen

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScenariosAreSeededAndHaveOneRootEach(t *testing.T) {
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			a, err := NewScenario(name, 11)
			require.NoError(t, err)
			again, err := NewScenario(name, 11)
			require.NoError(t, err)
			require.Equal(t, a, again, "the same seed, the same storm")
			b, err := NewScenario(name, 12)
			require.NoError(t, err)
			require.NotEqual(t, a.Assets, b.Assets, "another seed, other hosts")

			hosts := map[string]bool{}
			for _, as := range a.Assets {
				require.False(t, hosts[as.Host], "host %s twice", as.Host)
				hosts[as.Host] = true
			}
			for _, as := range a.Assets {
				for _, d := range as.Dependencies {
					require.True(t, hosts[d], "%s depends on unknown %s", as.Host, d)
				}
			}
			roots := map[string]int{}
			truths := map[string]bool{}
			for i, e := range a.Events {
				require.True(t, hosts[e.Host], e.Host)
				if i > 0 {
					require.GreaterOrEqual(t, e.Offset, a.Events[i-1].Offset, "in arrival order")
				}
				if e.Truth != "" {
					truths[e.Truth] = true
				}
				if e.Root {
					roots[e.Truth]++
					require.NotEmpty(t, e.Truth, "noise has no root")
				}
			}
			for tr := range truths {
				require.Equal(t, 1, roots[tr], "one root for %s", tr)
			}
			require.Len(t, a.Truths(), len(truths))
			require.Greater(t, len(a.Events), 50, "a storm")
		})
	}
	_, err := NewScenario("nope", 1)
	require.ErrorContains(t, err, `unknown scenario "nope"`)
}

func TestScore(t *testing.T) {
	sc := Scenario{Name: "s", Events: []ScenarioEvent{
		{Truth: "a", Root: true}, {Truth: "a"}, {Truth: "a"}, {Truth: "b", Root: true}, {Truth: "b"}, {}, {},
	}}
	p := Posted{Scenario: sc, IDs: []int64{1, 2, 3, 4, 5, 6, 7}}
	obs := Observed{
		// 3 was folded into 2; b's events went into a's incident but for
		// one; 7 is noise in no incident; 6 was never stored.
		Processed: map[int64]int64{1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 7: 7},
		Incident:  map[int64]int64{1: 10, 2: 10, 3: 10, 4: 10, 5: 20},
		Roots:     map[int64]int64{10: 1, 20: 5},
	}
	r := Score(p, obs)
	require.Equal(t, 7, r.Events)
	require.Equal(t, 2, r.Incidents)
	require.Equal(t, 2, r.TruthIncidents)
	require.Equal(t, 1, r.Missing)
	require.InDelta(t, 1-2.0/7, r.Compression, 1e-9)
	// Incident 10's majority is a: a's 3 events are pure, b's 4 is not;
	// 20's majority is b: 5 is pure. 4 of 5.
	require.InDelta(t, 0.8, r.Purity, 1e-9)
	// a: incident 10, root 1 = truth root 1; b: 4 and 5 split 1-1, the
	// lower incident id (10) wins the tie, whose root is not 4.
	require.InDelta(t, 0.5, r.RootTop1, 1e-9)
	all := Overall([]StormResult{r, r})
	require.Equal(t, 14, all.Events)
	require.InDelta(t, r.Purity, all.Purity, 1e-9)
}
