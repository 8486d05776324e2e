package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// PatternTable is the table of event patterns, in the events schema.
const PatternTable = "event_patterns"

const patternSelect = `id, pattern_name, pattern_type, pattern_definition, COALESCE(confidence_threshold, 0.8), COALESCE(active, ` + "TRUE" + `), created_at, updated_at`

func (q *Queries) patternTable() string { return q.d.Table("events", PatternTable) }

var _ store.PatternStore = (*Queries)(nil)

// threshold is the stored value of a confidence threshold: within 0..1,
// two decimals (the seed's DECIMAL(3,2)).
func threshold(v float64) float64 {
	if math.IsNaN(v) {
		return 0.8
	}
	return math.Round(min(1, max(0, v))*100) / 100
}

// CreatePattern stores p under a new id.
func (q *Queries) CreatePattern(ctx context.Context, p store.EventPattern) (store.EventPattern, error) {
	now := q.microNow()
	p.Name = store.CleanText(p.Name, store.MaxPatternName)
	p.ConfidenceThreshold = threshold(p.ConfidenceThreshold)
	def := store.CleanJSON(p.Definition)
	err := q.w.QueryRow(ctx, q.d.Rebind(`INSERT INTO `+q.patternTable()+` (pattern_name, pattern_type, pattern_definition, confidence_threshold, active, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		p.Name, store.CleanText(p.Type, 50), q.d.JSON(def), p.ConfidenceThreshold, p.Active, q.d.Time(now), q.d.Time(now)).Scan(&p.ID)
	if err != nil {
		return p, fmt.Errorf("%s: create pattern: %w", q.d.Name, err)
	}
	p.Definition, p.CreatedAt, p.UpdatedAt = def, now, now
	return p, nil
}

// UpdatePattern replaces what may change of pattern p.ID.
func (q *Queries) UpdatePattern(ctx context.Context, p store.EventPattern) (store.EventPattern, error) {
	now := q.microNow()
	n, err := q.w.Exec(ctx, q.d.Rebind(`UPDATE `+q.patternTable()+` SET pattern_name = ?, pattern_definition = ?, confidence_threshold = ?, active = ?, updated_at = ? WHERE id = ?`),
		store.CleanText(p.Name, store.MaxPatternName), q.d.JSON(store.CleanJSON(p.Definition)), threshold(p.ConfidenceThreshold), p.Active, q.d.Time(now), p.ID)
	if err != nil {
		return p, fmt.Errorf("%s: update pattern %d: %w", q.d.Name, p.ID, err)
	}
	if n == 0 {
		return p, fmt.Errorf("%s: update pattern %d: %w", q.d.Name, p.ID, store.ErrNotFound)
	}
	return q.Pattern(ctx, p.ID)
}

func scanPattern(row Row) (store.EventPattern, error) {
	var (
		p              store.EventPattern
		def            []byte
		created, updat time.Time
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Type, &def, &p.ConfidenceThreshold, &p.Active, Time(&created), Time(&updat)); err != nil {
		return p, err
	}
	p.Definition, p.CreatedAt, p.UpdatedAt = def, created, updat
	return p, nil
}

// Pattern returns the pattern with this id.
func (q *Queries) Pattern(ctx context.Context, id int64) (store.EventPattern, error) {
	return byID(ctx, q, "pattern", patternSelect, q.patternTable(), id, scanPattern)
}

// Patterns lists the patterns pq selects, newest first.
func (q *Queries) Patterns(ctx context.Context, pq store.PatternQuery) ([]store.EventPattern, error) {
	var w Where
	if pq.Type != "" {
		w.Add("pattern_type = ?", store.CleanText(pq.Type, 50))
	}
	if pq.Active != nil {
		w.Add("COALESCE(active, TRUE) = ?", *pq.Active)
	}
	if pq.BeforeID > 0 {
		w.Add("id < ?", pq.BeforeID)
	}
	text := `SELECT ` + patternSelect + ` FROM ` + q.patternTable() + w.Clause() + fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, pq.PageSize())
	return collect(ctx, q, "patterns", scanPattern, text, w.Args()...)
}
