package logtmpl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRestore(t *testing.T) {
	m := New(Options{})
	require.NoError(t, m.Restore([]Saved{
		{ID: 3, Text: "disk is full on <*>", Count: 4, Example: "disk is full on sda"},
		// Its leading token became a parameter: it routes by its example.
		{ID: 1, Text: "<*> logged in", Count: 2, Example: "alice logged in"},
	}))
	require.Equal(t, []Template{
		{ID: 1, Text: "<*> logged in", Count: 2},
		{ID: 2}, // a hole: created, never stored
		{ID: 3, Text: "disk is full on <*>", Count: 4},
	}, m.Templates())

	tm, isNew := m.Add("disk is full on sdb")
	require.False(t, isNew)
	require.Equal(t, Template{ID: 3, Text: "disk is full on <*>", Count: 5}, tm)
	tm, isNew = m.Add("alice logged in")
	require.False(t, isNew, "found through the example's route")
	require.EqualValues(t, 1, tm.ID)
	tm, isNew = m.Add("backup finished")
	require.True(t, isNew)
	require.EqualValues(t, 4, tm.ID, "after the largest id")

	for name, saved := range map[string][]Saved{
		"id zero":    {{ID: 0, Text: "x"}},
		"id twice":   {{ID: 1, Text: "x"}, {ID: 1, Text: "y"}},
		"far beyond": {{ID: 1 << 40, Text: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, New(Options{}).Restore(saved))
		})
	}
	require.Error(t, m.Restore(nil), "the miner is not empty")

	// A restored example of another token count (the masks changed)
	// routes by the text.
	m = New(Options{})
	require.NoError(t, m.Restore([]Saved{{ID: 1, Text: "job <*> done", Example: "job number 7 done"}}))
	tm, _ = m.Add("job 8 done")
	require.EqualValues(t, 1, tm.ID)
}
