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
// it, and records the last query; event patterns are kept in a list.
type fakePatterns struct {
	ts   []store.LogTemplate
	last store.TemplateQuery
	eps  []store.EventPattern // newest last
}

func (f *fakePatterns) Patterns(_ context.Context, q store.PatternQuery) ([]store.EventPattern, error) {
	var out []store.EventPattern
	for i := len(f.eps) - 1; i >= 0; i-- {
		p := f.eps[i]
		if (q.Type != "" && p.Type != q.Type) || (q.BeforeID > 0 && p.ID >= q.BeforeID) {
			continue
		}
		if len(out) == q.PageSize() {
			break
		}
		out = append(out, p)
	}
	return out, nil
}

func (f *fakePatterns) Pattern(_ context.Context, id int64) (store.EventPattern, error) {
	for _, p := range f.eps {
		if p.ID == id {
			return p, nil
		}
	}
	return store.EventPattern{}, store.ErrNotFound
}

func (f *fakePatterns) CreatePattern(_ context.Context, p store.EventPattern) (store.EventPattern, error) {
	p.ID = int64(len(f.eps) + 1)
	f.eps = append(f.eps, p)
	return p, nil
}

func (f *fakePatterns) UpdatePattern(_ context.Context, p store.EventPattern) (store.EventPattern, error) {
	for i := range f.eps {
		if f.eps[i].ID == p.ID {
			p.Type = f.eps[i].Type
			f.eps[i] = p
			return p, nil
		}
	}
	return p, store.ErrNotFound
}

func (f *fakePatterns) Templates(_ context.Context, q store.TemplateQuery) ([]store.LogTemplate, error) {
	f.last = q
	var out []store.LogTemplate
	for _, t := range f.ts {
		if q.BeforeID != 0 && !t.LastSeen.Before(q.BeforeLastSeen) && (!t.LastSeen.Equal(q.BeforeLastSeen) || t.ID >= q.BeforeID) {
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
	e := newEnv(t, func(o *EventsOptions) { o.Patterns = PatternOptions{Store: ps} })

	w := e.do(req{method: "GET", path: "/api/v1/patterns?type=template&limit=2&host=Web-01", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var page PatternList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Equal(t, 2, page.Count)
	require.Equal(t, "web-01", ps.last.Host, "hosts are matched lowercased, as stored")
	got := page.Patterns[0]
	require.EqualValues(t, 3, got.ID)
	require.Equal(t, "template", got.PatternType)
	require.Equal(t, "disk <*> full", got.PatternName)
	require.EqualValues(t, 7, *got.Count)
	require.True(t, base.Equal(*got.FirstSeen))
	require.True(t, base.Add(2*time.Minute).Equal(*got.LastSeen))
	require.JSONEq(t, `{"template": "disk <*> full", "example": "disk sda full"}`, string(got.Definition))
	require.Nil(t, got.Active, "templates have no active flag")
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
		{"type=sequences", "type"},
		{"type=sequence&host=web-01", "host"},
		{"type=sequence&cursor=t.AQAAAAAAAAAAAAAAAAAAAAAAAAAB", "cursor"},
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

func TestPatternsOfAllTypes(t *testing.T) {
	base := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	ps := &fakePatterns{ts: []store.LogTemplate{
		{ID: 2, Text: "b", Count: 1, FirstSeen: base, LastSeen: base.Add(time.Minute)},
		{ID: 1, Text: "a", Count: 1, FirstSeen: base, LastSeen: base},
	}}
	changed := 0
	e := newEnv(t, func(o *EventsOptions) {
		o.Patterns = PatternOptions{Store: ps, Changed: func(context.Context) { changed++ }}
	})

	// Created by hand: rules:write.
	body := `{"pattern_name":"deploy then errors","pattern_type":"sequence","pattern_definition":{"before":{"event_type":"deploy"},"after":{"event_type":"error_rate"},"within_seconds":600}}`
	require.Equal(t, http.StatusForbidden, e.do(req{method: "POST", path: "/api/v1/patterns", key: "reader", body: body}).Code)
	w := e.do(req{method: "POST", path: "/api/v1/patterns", key: "rules", body: body})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var created Pattern
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &created))
	require.Equal(t, "sequence", created.PatternType)
	require.True(t, *created.Active, "active by default")
	require.InDelta(t, 0.8, *created.ConfidenceThreshold, 1e-9, "threshold 0.8 by default")
	require.Equal(t, 1, changed)
	w = e.do(req{method: "POST", path: "/api/v1/patterns", key: "rules", body: `{"pattern_name":"cpu per hour","pattern_type":"frequency","pattern_definition":{"per_hour_mean":3},"active":false}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())

	for _, tt := range []struct{ body, field string }{
		{`{"pattern_name":"x","pattern_type":"template","pattern_definition":{}}`, "pattern_type"},
		{`{"pattern_name":"x","pattern_type":"sequel","pattern_definition":{}}`, "pattern_type"},
		{`{"pattern_type":"frequency","pattern_definition":{}}`, "pattern_name"},
		{`{"pattern_name":"x","pattern_type":"frequency","pattern_definition":[1]}`, "pattern_definition"},
		{`{"pattern_name":"x","pattern_type":"sequence","pattern_definition":{"before":{"event_type":"a"}}}`, "pattern_definition"},
		{`{"pattern_name":"x","pattern_type":"frequency","pattern_definition":{},"confidence_threshold":1.5}`, "confidence_threshold"},
		{`{"pattern_name":"x","pattern_type":"frequency","pattern_definition":{},"colour":1}`, "colour"},
	} {
		w := e.do(req{method: "POST", path: "/api/v1/patterns", key: "rules", body: tt.body})
		require.Equal(t, http.StatusBadRequest, w.Code, tt.body)
		require.Contains(t, w.Body.String(), tt.field, tt.body)
	}

	// All types: the event patterns, newest first, then the templates.
	var page PatternList
	w = e.do(req{method: "GET", path: "/api/v1/patterns?limit=3", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Equal(t, []string{"frequency", "sequence", "template"}, []string{page.Patterns[0].PatternType, page.Patterns[1].PatternType, page.Patterns[2].PatternType})
	require.EqualValues(t, 2, page.Patterns[2].ID)
	w = e.do(req{method: "GET", path: "/api/v1/patterns?limit=3&cursor=" + page.NextCursor, key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	page = PatternList{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Len(t, page.Patterns, 1)
	require.EqualValues(t, 1, page.Patterns[0].ID)
	w = e.do(req{method: "GET", path: "/api/v1/patterns?type=sequence", key: "reader"})
	page = PatternList{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &page))
	require.Len(t, page.Patterns, 1)
	require.Equal(t, created.ID, page.Patterns[0].ID)

	// Disabled, and its threshold changed.
	w = e.do(req{method: "PUT", path: "/api/v1/patterns/1", key: "rules", body: `{"active":false,"confidence_threshold":0.95}`})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var up Pattern
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &up))
	require.False(t, *up.Active)
	require.InDelta(t, 0.95, *up.ConfidenceThreshold, 1e-9)
	require.Equal(t, "deploy then errors", up.PatternName, "what the request leaves out stays")
	require.Equal(t, 3, changed, "after each create and update")
	w = e.do(req{method: "GET", path: "/api/v1/patterns/1", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, http.StatusNotFound, e.do(req{method: "PUT", path: "/api/v1/patterns/99", key: "rules", body: `{"active":true}`}).Code)
	require.Equal(t, http.StatusNotFound, e.do(req{method: "GET", path: "/api/v1/patterns/99", key: "reader"}).Code)
	require.Equal(t, http.StatusBadRequest, e.do(req{method: "PUT", path: "/api/v1/patterns/1", key: "rules", body: `{"pattern_type":"frequency"}`}).Code)
	require.Equal(t, http.StatusBadRequest, e.do(req{method: "PUT", path: "/api/v1/patterns/x", key: "rules", body: `{}`}).Code)
}
