package store

import (
	"context"
	"time"
)

// PatternStore holds the learned and hand-made event patterns
// (events.event_patterns): sequences, frequencies and anomalies.
type PatternStore interface {
	// CreatePattern stores p under a new id and returns it as stored
	// (CreatedAt and UpdatedAt set to now). p.ID is ignored.
	CreatePattern(ctx context.Context, p EventPattern) (EventPattern, error)
	// UpdatePattern replaces the name, definition, threshold and active
	// flag of pattern p.ID (UpdatedAt set to now) and returns it as
	// stored, or ErrNotFound.
	UpdatePattern(ctx context.Context, p EventPattern) (EventPattern, error)
	// Pattern returns the pattern with this id, or ErrNotFound.
	Pattern(ctx context.Context, id int64) (EventPattern, error)
	// Patterns lists the patterns q selects, newest first (by id).
	Patterns(ctx context.Context, q PatternQuery) ([]EventPattern, error)
}

// Pattern types of events.event_patterns.
const (
	PatternSequence  = "sequence"
	PatternFrequency = "frequency"
	PatternAnomaly   = "anomaly"
)

// EventPattern is a row of events.event_patterns. Definition is a JSON
// object whose shape depends on Type (see docs/intelligence.md).
type EventPattern struct {
	ID                  int64
	Name                string
	Type                string
	Definition          []byte
	ConfidenceThreshold float64
	Active              bool
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// PatternQuery selects patterns. The zero value selects the first 100 of
// every type.
type PatternQuery struct {
	Type string // "" for every type
	// Active, when set, keeps the patterns whose active flag equals it.
	Active *bool
	// Limit bounds the answer: 1..10000, 0 means 100.
	Limit int
	// BeforeID is the pagination cursor: only patterns with a smaller id.
	BeforeID int64
}

// PageSize is q.Limit within 1..10000, 100 when unset.
func (q PatternQuery) PageSize() int {
	if q.Limit <= 0 {
		return 100
	}
	return min(q.Limit, 10000)
}

// MaxPatternName bounds a pattern's name, in bytes (the seed's
// VARCHAR(200)).
const MaxPatternName = 200
