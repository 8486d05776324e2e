package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/store"
)

// PatternStore is the part of store.Store that GET /api/v1/patterns
// reads. It must be safe for concurrent use.
type PatternStore interface {
	Templates(ctx context.Context, q store.TemplateQuery) ([]store.LogTemplate, error)
}

var _ PatternStore = store.Store(nil)

// Pattern types of GET /api/v1/patterns.
const (
	// PatternTemplate is a log template (events.log_templates).
	PatternTemplate = "template"
)

// Pattern is one pattern of GET /api/v1/patterns: a log template (its
// text is the name, its definition holds the text and its first message)
// and, in the same shape, the learned patterns of events.event_patterns.
type Pattern struct {
	ID          int64          `json:"id"`
	PatternType string         `json:"pattern_type"`
	PatternName string         `json:"pattern_name"`
	Count       int64          `json:"count"`
	FirstSeen   time.Time      `json:"first_seen"`
	LastSeen    time.Time      `json:"last_seen"`
	Definition  map[string]any `json:"pattern_definition"`
}

// PatternList is the answer of GET /api/v1/patterns.
type PatternList struct {
	Patterns []Pattern `json:"patterns"`
	// NextCursor, when present, fetches the next page: repeat the request
	// with the same filters and cursor=NextCursor.
	NextCursor string `json:"next_cursor,omitempty"`
	Count      int    `json:"count"`
}

var patternParams = []string{"type", "host", "limit", "cursor"}

// patternRoutes adds GET /api/v1/patterns when ps is set.
func (s *eventsAPI) patternRoutes(mux *http.ServeMux, ps PatternStore) {
	if ps == nil {
		return
	}
	mux.Handle("GET /api/v1/patterns", s.with(auth.ScopeEventsRead, func(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
		s.listPatterns(w, r, ps)
	}))
}

// listPatterns serves GET /api/v1/patterns?type=template&host=&limit=&cursor=:
// the log templates, most recently seen first.
func (s *eventsAPI) listPatterns(w http.ResponseWriter, r *http.Request, ps PatternStore) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, patternParams)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	switch t := v.Get("type"); t {
	case "", PatternTemplate:
	default:
		writeFieldError(w, badField("type", "%q is not a pattern type: template", clip(t, 40)))
		return
	}
	q := store.TemplateQuery{Host: strings.ToLower(strings.TrimSpace(v.Get("host"))), Limit: defaultLimit}
	if len(q.Host) > maxFilterLen {
		writeFieldError(w, badField("host", "longer than %d bytes", maxFilterLen))
		return
	}
	if v.Has("limit") {
		n, err := strconv.Atoi(v.Get("limit"))
		if err != nil || n < 1 || n > maxLimit {
			writeFieldError(w, badField("limit", "must be an integer from 1 to %d", maxLimit))
			return
		}
		q.Limit = n
	}
	if v.Has("cursor") {
		t, id, err := decodeCursor(v.Get("cursor"))
		if err != nil {
			writeFieldError(w, badField("cursor", "invalid: pass next_cursor from the previous page unchanged"))
			return
		}
		q.BeforeLastSeen, q.BeforeID = t, id
	}
	ts, err := ps.Templates(r.Context(), q)
	if err != nil {
		s.unavailable(w, r, err, "list patterns")
		return
	}
	out := PatternList{Patterns: make([]Pattern, len(ts)), Count: len(ts)}
	for i, t := range ts {
		out.Patterns[i] = Pattern{
			ID: t.ID, PatternType: PatternTemplate, PatternName: t.Text, Count: t.Count,
			FirstSeen: t.FirstSeen, LastSeen: t.LastSeen,
			Definition: map[string]any{"template": t.Text, "example": t.Example},
		}
	}
	if len(ts) == q.PageSize() {
		last := ts[len(ts)-1]
		out.NextCursor = encodeCursor(last.LastSeen, last.ID)
	}
	writeJSON(w, http.StatusOK, out)
}
