package logtmpl

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSnapshotAndRestore(t *testing.T) {
	m := New(Options{})
	msgs := []string{
		"session closed for alice", // 1; 2-4 fold into it at the fourth value
		"session closed for bob",
		"session closed for carol",
		"session closed for dave",
		"disk sda is full (92%)",          // 5
		"connection from 10.0.0.1 closed", // 6
	}
	examples := map[int64]string{}
	for _, msg := range msgs {
		tm, _ := m.Add(msg)
		if _, ok := examples[tm.ID]; !ok {
			examples[tm.ID] = msg
		}
	}
	examples[2], examples[3], examples[4] = msgs[1], msgs[2], msgs[3]
	saved, top := m.Changed(0)
	require.EqualValues(t, 6, top)
	require.Len(t, saved, 6)
	for i := range saved {
		saved[i].Example = examples[saved[i].ID]
	}
	require.Equal(t, "session closed for <*>", saved[0].Text)
	require.EqualValues(t, 1, saved[3].FoldedInto)
	require.Equal(t, "session closed for <*>", saved[3].Text, "a folded template reads as its live one")
	require.Equal(t, "disk sda is full (<*>%)", saved[4].Text)

	// Nothing changed after 6; a new template is reported alone.
	more, top := m.Changed(6)
	require.Empty(t, more)
	require.EqualValues(t, 6, top)
	m.Add("backup finished")
	more, _ = m.Changed(6)
	require.Len(t, more, 1)
	require.EqualValues(t, 7, more[0].ID)
	require.Equal(t, []Saved{{ID: 5, Text: "disk sda is full (<*>%)", Tokens: saved[4].Tokens, Glued: saved[4].Glued, Count: 1}}, m.Snapshot([]int64{5, 99}))

	r := New(Options{})
	require.NoError(t, r.Restore(saved))
	require.Equal(t, m.Templates()[:6], r.Templates())
	for _, msg := range append(msgs, "session closed for eve") {
		want, _ := m.Add(msg)
		got, isNew := r.Add(msg)
		require.False(t, isNew, msg)
		require.Equal(t, want.ID, got.ID, msg)
		require.Equal(t, want.Text, got.Text, msg)
	}
	tm, isNew := r.Add("certificate expires soon")
	require.True(t, isNew)
	require.EqualValues(t, 7, tm.ID, "after the largest restored id")
}

func TestRestoreRoutesByExample(t *testing.T) {
	// A template whose leading token became a parameter: found through
	// its first message's route, as before the restart.
	r := New(Options{})
	require.NoError(t, r.Restore([]Saved{
		{ID: 3, Tokens: []string{"disk", "is", "full", "on", "<*>"}, Count: 4, Example: "disk is full on sda"},
		{ID: 1, Tokens: []string{"<*>", "logged", "in"}, Count: 2, Example: "alice logged in"},
	}))
	require.Equal(t, []Template{
		{ID: 1, Text: "<*> logged in", Count: 2},
		{ID: 2}, // a hole: created, never stored
		{ID: 3, Text: "disk is full on <*>", Count: 4},
	}, r.Templates())
	tm, isNew := r.Add("alice logged in")
	require.False(t, isNew)
	require.EqualValues(t, 1, tm.ID)
	tm, _ = r.Add("disk is full on sdb")
	require.EqualValues(t, 3, tm.ID)

	for name, saved := range map[string][]Saved{
		"id zero":      {{ID: 0, Tokens: []string{"x"}}},
		"id twice":     {{ID: 1, Tokens: []string{"x"}}, {ID: 1, Tokens: []string{"y"}}},
		"far beyond":   {{ID: 1 << 40, Tokens: []string{"x"}}},
		"folded later": {{ID: 1, Tokens: []string{"x"}, FoldedInto: 2}, {ID: 2, Tokens: []string{"x"}}},
		"folded away":  {{ID: 2, Tokens: []string{"x"}, FoldedInto: 1}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, New(Options{}).Restore(saved))
		})
	}
	require.Error(t, r.Restore(nil), "the miner is not empty")
}
