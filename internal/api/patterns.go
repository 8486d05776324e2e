package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/patterns"
	"github.com/reflex-ops/reflex/internal/store"
)

// PatternStore is the part of store.Store that /api/v1/patterns reads and
// writes: the log templates and the event patterns. It must be safe for
// concurrent use.
type PatternStore interface {
	Templates(ctx context.Context, q store.TemplateQuery) ([]store.LogTemplate, error)
	Patterns(ctx context.Context, q store.PatternQuery) ([]store.EventPattern, error)
	Pattern(ctx context.Context, id int64) (store.EventPattern, error)
	CreatePattern(ctx context.Context, p store.EventPattern) (store.EventPattern, error)
	UpdatePattern(ctx context.Context, p store.EventPattern) (store.EventPattern, error)
}

var _ PatternStore = store.Store(nil)

// PatternOptions configure /api/v1/patterns.
type PatternOptions struct {
	// Store holds the patterns; nil means the routes are 404.
	Store PatternStore
	// Changed, if set, is called after a pattern is created or updated
	// (the server reloads the sequence learner's patterns).
	Changed func(ctx context.Context)
}

// PatternTemplate is the pattern type of a log template
// (events.log_templates); the others are those of events.event_patterns
// (store.PatternSequence, PatternFrequency, PatternAnomaly).
const PatternTemplate = "template"

// Pattern is one pattern of /api/v1/patterns. A log template has count,
// first_seen and last_seen, its text as name, and its text and first
// message in its definition; a pattern of events.event_patterns has its
// confidence_threshold, active, created_at and updated_at. Template ids
// and event pattern ids are apart: pattern_type tells which an id names.
type Pattern struct {
	ID                  int64           `json:"id"`
	PatternType         string          `json:"pattern_type"`
	PatternName         string          `json:"pattern_name"`
	Count               *int64          `json:"count,omitempty"`
	FirstSeen           *time.Time      `json:"first_seen,omitempty"`
	LastSeen            *time.Time      `json:"last_seen,omitempty"`
	Definition          json.RawMessage `json:"pattern_definition"`
	ConfidenceThreshold *float64        `json:"confidence_threshold,omitempty"`
	Active              *bool           `json:"active,omitempty"`
	CreatedAt           *time.Time      `json:"created_at,omitempty"`
	UpdatedAt           *time.Time      `json:"updated_at,omitempty"`
}

// PatternList is the answer of GET /api/v1/patterns.
type PatternList struct {
	Patterns []Pattern `json:"patterns"`
	// NextCursor, when present, fetches the next page: repeat the request
	// with the same filters and cursor=NextCursor.
	NextCursor string `json:"next_cursor,omitempty"`
	Count      int    `json:"count"`
}

// PatternRequest is the body of POST /api/v1/patterns and PUT
// /api/v1/patterns/{id}. In a PUT every field is optional and the type
// cannot change.
type PatternRequest struct {
	PatternName         *string         `json:"pattern_name"`
	PatternType         string          `json:"pattern_type"`
	PatternDefinition   json.RawMessage `json:"pattern_definition"`
	ConfidenceThreshold *float64        `json:"confidence_threshold"`
	Active              *bool           `json:"active"`
}

var (
	patternParams = []string{"type", "host", "limit", "cursor"}
	patternTypes  = []string{PatternTemplate, store.PatternSequence, store.PatternFrequency, store.PatternAnomaly}
)

type patternsAPI struct {
	*eventsAPI
	opts PatternOptions
}

// patternRoutes adds /api/v1/patterns when o has a Store.
func (s *eventsAPI) patternRoutes(mux *http.ServeMux, o PatternOptions) {
	if o.Store == nil {
		return
	}
	p := &patternsAPI{eventsAPI: s, opts: o}
	mux.Handle("GET /api/v1/patterns", s.with(auth.ScopeEventsRead, p.list))
	mux.Handle("GET /api/v1/patterns/{id}", s.with(auth.ScopeEventsRead, p.get))
	mux.Handle("POST /api/v1/patterns", s.with(auth.ScopeRulesWrite, p.create))
	mux.Handle("PUT /api/v1/patterns/{id}", s.with(auth.ScopeRulesWrite, p.update))
}

func templatePattern(t store.LogTemplate) Pattern {
	d := map[string]any{"template": t.Text, "example": t.Example}
	if t.FoldedInto > 0 {
		d["folded_into"] = t.FoldedInto
	}
	def, _ := json.Marshal(d) // strings and ids always encode
	count, first, last := t.Count, t.FirstSeen, t.LastSeen
	return Pattern{ID: t.ID, PatternType: PatternTemplate, PatternName: t.Text, Count: &count, FirstSeen: &first, LastSeen: &last, Definition: def}
}

func eventPattern(p store.EventPattern) Pattern {
	th, active, created, updated := p.ConfidenceThreshold, p.Active, p.CreatedAt, p.UpdatedAt
	def := json.RawMessage(p.Definition)
	if !json.Valid(def) {
		def = json.RawMessage("null")
	}
	return Pattern{ID: p.ID, PatternType: p.Type, PatternName: p.Name, Definition: def,
		ConfidenceThreshold: &th, Active: &active, CreatedAt: &created, UpdatedAt: &updated}
}

// Cursors of the list: "p." and the last event pattern's id, or "t." and
// the last template's (last seen, id); both as encodeCursor writes them.
const (
	cursorPatterns  = "p."
	cursorTemplates = "t."
)

// list serves GET /api/v1/patterns?type=&host=&limit=&cursor=: without a
// type, the event patterns (newest first) and then the log templates
// (most recently seen first); with one, the patterns of that type. host
// keeps the templates seen on a host (and no event patterns: they are not
// per host).
func (p *patternsAPI) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	v, fe := queryValues(r)
	if fe == nil {
		fe = checkParams(v, patternParams)
	}
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	typ := v.Get("type")
	if typ != "" && !contains(patternTypes, typ) {
		writeFieldError(w, badField("type", "%q is not a pattern type: %s", clip(typ, 40), strings.Join(patternTypes, ", ")))
		return
	}
	host := strings.ToLower(strings.TrimSpace(v.Get("host")))
	if len(host) > maxFilterLen {
		writeFieldError(w, badField("host", "longer than %d bytes", maxFilterLen))
		return
	}
	if host != "" && typ != "" && typ != PatternTemplate {
		writeFieldError(w, badField("host", "only templates are per host: use it with type=template or no type"))
		return
	}
	limit, fe := parseLimit(v, defaultLimit, maxLimit)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	var (
		phase  = cursorPatterns
		before time.Time
		id     int64
	)
	if typ == PatternTemplate || host != "" {
		phase = cursorTemplates
	}
	if c := v.Get("cursor"); v.Has("cursor") {
		var err error
		switch {
		case strings.HasPrefix(c, cursorPatterns) && phase == cursorPatterns:
			_, id, err = decodeCursor(strings.TrimPrefix(c, cursorPatterns))
		case strings.HasPrefix(c, cursorTemplates) && (typ == "" || typ == PatternTemplate):
			phase = cursorTemplates
			before, id, err = decodeCursor(strings.TrimPrefix(c, cursorTemplates))
		default:
			err = errors.New("bad cursor")
		}
		if err != nil {
			writeFieldError(w, badField("cursor", "invalid: pass next_cursor from the previous page unchanged"))
			return
		}
	}
	out := PatternList{Patterns: []Pattern{}}
	if phase == cursorPatterns {
		ps, err := p.opts.Store.Patterns(r.Context(), store.PatternQuery{Type: typ, Limit: limit, BeforeID: id})
		if err != nil {
			p.unavailable(w, r, err, "list patterns")
			return
		}
		for _, ep := range ps {
			out.Patterns = append(out.Patterns, eventPattern(ep))
		}
		if len(ps) == limit {
			out.NextCursor = cursorPatterns + encodeCursor(time.Unix(0, 0), ps[len(ps)-1].ID)
		}
		id, before = 0, time.Time{}
	}
	if want := limit - len(out.Patterns); want > 0 && (typ == "" || typ == PatternTemplate) {
		ts, err := p.opts.Store.Templates(r.Context(), store.TemplateQuery{Host: host, Limit: want, BeforeLastSeen: before, BeforeID: id})
		if err != nil {
			p.unavailable(w, r, err, "list patterns")
			return
		}
		for _, t := range ts {
			out.Patterns = append(out.Patterns, templatePattern(t))
		}
		if len(ts) == want {
			last := ts[len(ts)-1]
			out.NextCursor = cursorTemplates + encodeCursor(last.LastSeen, last.ID)
		}
	}
	out.Count = len(out.Patterns)
	writeJSON(w, http.StatusOK, out)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// patternID reads the {id} of an event pattern.
func patternID(r *http.Request) (int64, *fieldError) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badField("id", "must be a positive integer pattern id, got %q", clip(s, 40))
	}
	return id, nil
}

// get serves GET /api/v1/patterns/{id}: an event pattern (templates are
// listed, not addressed).
func (p *patternsAPI) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := patternID(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	ep, err := p.opts.Store.Pattern(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no event pattern "+strconv.FormatInt(id, 10), "id")
		return
	}
	if err != nil {
		p.unavailable(w, r, err, "get pattern")
		return
	}
	writeJSON(w, http.StatusOK, eventPattern(ep))
}

// checkPattern validates an event pattern as it will be stored.
func checkPattern(ep store.EventPattern) *fieldError {
	switch {
	case strings.TrimSpace(ep.Name) == "":
		return badField("pattern_name", "is required")
	case len(ep.Name) > store.MaxPatternName:
		return badField("pattern_name", "longer than %d bytes", store.MaxPatternName)
	case ep.ConfidenceThreshold < 0 || ep.ConfidenceThreshold > 1:
		return badField("confidence_threshold", "must be from 0 to 1")
	}
	def := bytes.TrimSpace(ep.Definition)
	if len(def) == 0 || def[0] != '{' || !json.Valid(def) {
		return badField("pattern_definition", "must be a JSON object")
	}
	if ep.Type == store.PatternSequence {
		if _, err := patterns.ParseSequence(def); err != nil {
			return badField("pattern_definition", "%s", strings.TrimPrefix(err.Error(), "patterns: sequence definition: "))
		}
	}
	return nil
}

// create serves POST /api/v1/patterns: a pattern made by hand.
func (p *patternsAPI) create(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	var req PatternRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	switch req.PatternType {
	case store.PatternSequence, store.PatternFrequency, store.PatternAnomaly:
	case PatternTemplate:
		writeFieldError(w, badField("pattern_type", "templates are mined from log messages, not created"))
		return
	default:
		writeFieldError(w, badField("pattern_type", "must be sequence, frequency or anomaly"))
		return
	}
	ep := store.EventPattern{Type: req.PatternType, Definition: req.PatternDefinition, ConfidenceThreshold: 0.8, Active: true}
	if req.PatternName != nil {
		ep.Name = *req.PatternName
	}
	if req.ConfidenceThreshold != nil {
		ep.ConfidenceThreshold = *req.ConfidenceThreshold
	}
	if req.Active != nil {
		ep.Active = *req.Active
	}
	if fe := checkPattern(ep); fe != nil {
		writeFieldError(w, fe)
		return
	}
	stored, err := p.opts.Store.CreatePattern(r.Context(), ep)
	if err != nil {
		p.unavailable(w, r, err, "create pattern")
		return
	}
	p.changed(r.Context())
	writeJSON(w, http.StatusCreated, eventPattern(stored))
}

// update serves PUT /api/v1/patterns/{id}: enable or disable a pattern,
// change its threshold, name or definition.
func (p *patternsAPI) update(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, fe := patternID(r)
	if fe != nil {
		writeFieldError(w, fe)
		return
	}
	var req PatternRequest
	if fe := decodeJSON(w, r, &req, maxJSONBodyBytes); fe != nil {
		writeFieldError(w, fe)
		return
	}
	ep, err := p.opts.Store.Pattern(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no event pattern "+strconv.FormatInt(id, 10), "id")
		return
	}
	if err != nil {
		p.unavailable(w, r, err, "update pattern")
		return
	}
	if req.PatternType != "" && req.PatternType != ep.Type {
		writeFieldError(w, badField("pattern_type", "cannot change (%s): create another pattern", ep.Type))
		return
	}
	if req.PatternName != nil {
		ep.Name = *req.PatternName
	}
	if req.PatternDefinition != nil {
		ep.Definition = req.PatternDefinition
	}
	if req.ConfidenceThreshold != nil {
		ep.ConfidenceThreshold = *req.ConfidenceThreshold
	}
	if req.Active != nil {
		ep.Active = *req.Active
	}
	if fe := checkPattern(ep); fe != nil {
		writeFieldError(w, fe)
		return
	}
	stored, err := p.opts.Store.UpdatePattern(r.Context(), ep)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no event pattern "+strconv.FormatInt(id, 10), "id")
		return
	}
	if err != nil {
		p.unavailable(w, r, err, "update pattern")
		return
	}
	p.changed(r.Context())
	writeJSON(w, http.StatusOK, eventPattern(stored))
}

func (p *patternsAPI) changed(ctx context.Context) {
	if p.opts.Changed != nil {
		p.opts.Changed(ctx)
	}
}
