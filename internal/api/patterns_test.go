package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// fakePatterns answers Templates from a list ordered as the store orders
// it, and records the last query.
type fakePatterns struct {
	ts   []store.LogTemplate
	last store.TemplateQuery
}

func (f *fakePatterns) Templates(_ context.Context, q store.TemplateQuery) ([]store.LogTemplate, error) {
	f.last = q
	var out []store.LogTemplate
	for _, t := range f.ts {
		if q.BeforeID != 0 && !(t.LastSeen.Before(q.BeforeLastSeen) || (t.LastSeen.Equal(q.BeforeLastSeen) && t.ID < q.BeforeID)) {
			continue
		}
		if len(out) == q.PageSize() {
			break
		}
		out = append(out, t)
	}
	return out, nil
}

func TestListPatterns(t *testing.T) {
	base := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	ps := &fakePatterns{ts: []store.LogTemplate{
		{ID: 3, Text: "disk <*> full", Example: "disk sda full", Count: 7, FirstSeen: base, LastSeen: base.Add(2 * time.Minute)},
		{ID: 2, Text: "user <*> logged in", Example: "user 12 logged in", Count: 2, FirstSeen: base, LastSeen: base.Add(time.Minute)},
		{ID: 1, Text: "started", Example: "started", Count: 1, FirstSeen: base, LastSeen: base},
	}}
	e := newEnv(t, func(o *EventsOptions) { o.Patterns = ps })

	w := e.do(req{method: "GET", path: "/api/v1/patterns?type=template&limit=2&host=Web-01", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var page PatternList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Equal(t, 2, page.Count)
	require.Equal(t, "web-01", ps.last.Host, "hosts are matched lowercased, as stored")
	require.Equal(t, Pattern{ID: 3, PatternType: "template", PatternName: "disk <*> full", Count: 7, FirstSeen: base, LastSeen: base.Add(2 * time.Minute),
		Definition: map[string]any{"template": "disk <*> full", "example": "disk sda full"}}, page.Patterns[0])
	require.NotEmpty(t, page.NextCursor)

	w = e.do(req{method: "GET", path: "/api/v1/patterns?limit=2&cursor=" + page.NextCursor, key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	page = PatternList{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Len(t, page.Patterns, 1)
	require.EqualValues(t, 1, page.Patterns[0].ID)
	require.Empty(t, page.NextCursor, "the last page")

	for _, tt := range []struct {
		query, field string
	}{
		{"type=sequence", "type"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"cursor=nonsense", "cursor"},
		{"colour=red", "colour"},
		{"type=template&type=template", "type"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			w := e.do(req{method: "GET", path: "/api/v1/patterns?" + tt.query, key: "reader"})
			require.Equal(t, http.StatusBadRequest, w.Code)
			require.Contains(t, w.Body.String(), tt.field)
		})
	}
	require.Equal(t, http.StatusUnauthorized, e.do(req{method: "GET", path: "/api/v1/patterns"}).Code)
	require.Equal(t, http.StatusForbidden, e.do(req{method: "GET", path: "/api/v1/patterns", key: "rules"}).Code, "events:read is needed")
}
