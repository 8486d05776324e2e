package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// Templates is the part of a store that RunTemplates checks.
type Templates interface {
	store.Lifecycle
	store.TemplateStore
}

// RunTemplates runs the conformance suite of store.TemplateStore, as
// RunAssets.
func RunTemplates(t *testing.T, open func(t *testing.T) Templates) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, s Templates, base time.Time)
	}{
		{"Put and read back", testPutTemplates},
		{"List order, cursor and host", testListTemplates},
		{"Hosts", testTemplateHosts},
	} {
		t.Run("Templates/"+tt.name, func(t *testing.T) {
			s := open(t)
			_, base := setUp(t, s)
			tt.fn(t, s, base.Truncate(time.Microsecond))
		})
	}
}

func testPutTemplates(t *testing.T, s Templates, base time.Time) {
	ctx := t.Context()
	all, err := s.AllTemplates(ctx)
	require.NoError(t, err)
	require.Empty(t, all)
	require.NoError(t, s.PutTemplates(ctx, nil))

	a := store.LogTemplate{ID: 2, Text: "connection from <*> closed", Example: "connection from 10.0.0.1 closed", State: []byte(`{"tokens":["x"]}`), Count: 3, FirstSeen: base, LastSeen: base.Add(time.Second)}
	b := store.LogTemplate{ID: 1, Text: "disk <*> full", Example: "disk sda full", Count: 1, FirstSeen: base, LastSeen: base}
	require.NoError(t, s.PutTemplates(ctx, []store.LogTemplate{a, b}))
	all, err = s.AllTemplates(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, []int64{1, 2}, []int64{all[0].ID, all[1].ID}, "by id")
	got := all[1]
	require.Equal(t, a.Text, got.Text)
	require.Equal(t, a.Example, got.Example)
	require.Equal(t, a.State, got.State)
	require.Zero(t, got.FoldedInto)
	require.EqualValues(t, 3, got.Count)
	require.True(t, a.FirstSeen.Equal(got.FirstSeen), "%v != %v", a.FirstSeen, got.FirstSeen)
	require.True(t, a.LastSeen.Equal(got.LastSeen))
	require.False(t, got.UpdatedAt.IsZero())

	// An update: the text and count replaced, the earlier first seen and
	// the later last seen kept, the first example kept.
	up := store.LogTemplate{ID: 2, Text: "connection from <*> <*>", Example: "connection from 10.0.0.2 reset", Count: 10,
		FoldedInto: 1, State: []byte(`{"tokens":["y"]}`), FirstSeen: base.Add(time.Minute), LastSeen: base.Add(time.Minute)}
	require.NoError(t, s.PutTemplates(ctx, []store.LogTemplate{up}))
	all, err = s.AllTemplates(ctx)
	require.NoError(t, err)
	got = all[1]
	require.Equal(t, up.Text, got.Text)
	require.Equal(t, a.Example, got.Example)
	require.EqualValues(t, 10, got.Count)
	require.EqualValues(t, 1, got.FoldedInto)
	require.Equal(t, up.State, got.State)
	require.True(t, base.Equal(got.FirstSeen), "the earlier first seen stays")
	require.True(t, up.LastSeen.Equal(got.LastSeen))
	older := up
	older.LastSeen = base
	require.NoError(t, s.PutTemplates(ctx, []store.LogTemplate{older}))
	all, err = s.AllTemplates(ctx)
	require.NoError(t, err)
	require.True(t, up.LastSeen.Equal(all[1].LastSeen), "the later last seen stays")

	// Many at once (more than one statement), long and bad text cleaned.
	var many []store.LogTemplate
	for i := range 1200 {
		many = append(many, store.LogTemplate{ID: int64(10 + i), Text: "t <*>", Count: int64(i), FirstSeen: base, LastSeen: base})
	}
	many[0].Text = strings.Repeat("x", 2*store.MaxTemplateText) + "\x00"
	require.NoError(t, s.PutTemplates(ctx, many))
	all, err = s.AllTemplates(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1202)
	require.LessOrEqual(t, len(all[2].Text), store.MaxTemplateText)
	require.NotContains(t, all[2].Text, "\x00")

	require.Error(t, s.PutTemplates(ctx, []store.LogTemplate{{ID: 0, Text: "x"}}), "ids are positive")
}

func testListTemplates(t *testing.T, s Templates, base time.Time) {
	ctx := t.Context()
	var ts []store.LogTemplate
	for i := range 5 {
		// Templates 1 and 2 share a last seen time.
		last := base.Add(time.Duration(max(i, 1)) * time.Second)
		ts = append(ts, store.LogTemplate{ID: int64(i + 1), Text: "template", Count: 1, FirstSeen: base, LastSeen: last})
	}
	require.NoError(t, s.PutTemplates(ctx, ts))
	page, err := s.Templates(ctx, store.TemplateQuery{})
	require.NoError(t, err)
	require.Equal(t, []int64{5, 4, 3, 2, 1}, templateIDs(page), "most recently seen first, then by id")

	var got []int64
	q := store.TemplateQuery{Limit: 2}
	for range 5 {
		page, err := s.Templates(ctx, q)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		got = append(got, templateIDs(page)...)
		last := page[len(page)-1]
		q.BeforeLastSeen, q.BeforeID = last.LastSeen, last.ID
	}
	require.Equal(t, []int64{5, 4, 3, 2, 1}, got, "pages of 2 through the equal times")

	_, err = s.AddTemplateHosts(ctx, []store.TemplateHost{{TemplateID: 2, Host: "web-01", FirstSeen: base}, {TemplateID: 4, Host: "web-01", FirstSeen: base}, {TemplateID: 3, Host: "db-01", FirstSeen: base}})
	require.NoError(t, err)
	page, err = s.Templates(ctx, store.TemplateQuery{Host: "web-01"})
	require.NoError(t, err)
	require.Equal(t, []int64{4, 2}, templateIDs(page))
	page, err = s.Templates(ctx, store.TemplateQuery{Host: "nowhere"})
	require.NoError(t, err)
	require.Empty(t, page)
}

func templateIDs(ts []store.LogTemplate) []int64 {
	out := make([]int64, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func testTemplateHosts(t *testing.T, s Templates, base time.Time) {
	ctx := t.Context()
	first, err := s.HostsFirstSeen(ctx, []string{"web-01"})
	require.NoError(t, err)
	require.Empty(t, first)

	added, err := s.AddTemplateHosts(ctx, []store.TemplateHost{
		{TemplateID: 1, Host: "web-01", FirstSeen: base},
		{TemplateID: 2, Host: "web-01", FirstSeen: base.Add(time.Minute)},
		{TemplateID: 1, Host: "web-01", FirstSeen: base.Add(time.Hour)}, // the same pair again
		{TemplateID: 1, Host: "db-01", FirstSeen: base.Add(2 * time.Minute)},
	})
	require.NoError(t, err)
	require.ElementsMatch(t, []store.TemplateHost{
		{TemplateID: 1, Host: "web-01", FirstSeen: base},
		{TemplateID: 2, Host: "web-01", FirstSeen: base.Add(time.Minute)},
		{TemplateID: 1, Host: "db-01", FirstSeen: base.Add(2 * time.Minute)},
	}, normalizePairs(added))

	// Recorded pairs are not new again; others are.
	added, err = s.AddTemplateHosts(ctx, []store.TemplateHost{
		{TemplateID: 2, Host: "web-01", FirstSeen: base.Add(time.Hour)},
		{TemplateID: 3, Host: "web-01", FirstSeen: base.Add(time.Hour)},
	})
	require.NoError(t, err)
	require.Equal(t, []store.TemplateHost{{TemplateID: 3, Host: "web-01", FirstSeen: base.Add(time.Hour)}}, normalizePairs(added))
	added, err = s.AddTemplateHosts(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, added)

	first, err = s.HostsFirstSeen(ctx, []string{"web-01", "db-01", "nowhere"})
	require.NoError(t, err)
	require.Len(t, first, 2)
	require.True(t, base.Equal(first["web-01"]), "%v", first)
	require.True(t, base.Add(2*time.Minute).Equal(first["db-01"]))
}

// normalizePairs makes the times of pairs comparable with require.Equal.
func normalizePairs(ps []store.TemplateHost) []store.TemplateHost {
	for i := range ps {
		ps[i].FirstSeen = ps[i].FirstSeen.UTC()
	}
	return ps
}
