package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

// Patterns is the part of a store that RunPatterns checks.
type Patterns interface {
	store.Lifecycle
	store.PatternStore
}

// RunPatterns runs the conformance suite of store.PatternStore, as
// RunAssets.
func RunPatterns(t *testing.T, open func(t *testing.T) Patterns) {
	t.Run("Patterns/create, update, list", func(t *testing.T) {
		s := open(t)
		setUp(t, s)
		testPatterns(t, s)
	})
}

func testPatterns(t *testing.T, s Patterns) {
	ctx := t.Context()
	_, err := s.Pattern(ctx, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := s.Patterns(ctx, store.PatternQuery{})
	require.NoError(t, err)
	require.Empty(t, list)

	seq, err := s.CreatePattern(ctx, store.EventPattern{ID: 99, Name: "a → b", Type: store.PatternSequence,
		Definition: []byte(`{"before":{"template_id":1},"after":{"template_id":2},"within_seconds":300}`), ConfidenceThreshold: 0.756, Active: true})
	require.NoError(t, err)
	require.NotEqual(t, int64(99), seq.ID, "the id is the store's")
	require.InDelta(t, 0.76, seq.ConfidenceThreshold, 1e-9, "two decimals, as the seed's DECIMAL(3,2)")
	require.False(t, seq.CreatedAt.IsZero())
	freq, err := s.CreatePattern(ctx, store.EventPattern{Name: "b hourly", Type: store.PatternFrequency, Definition: []byte(`{"per_hour":{"mean":3}}`), ConfidenceThreshold: 7, Active: false})
	require.NoError(t, err)
	require.InDelta(t, 1.0, freq.ConfidenceThreshold, 1e-9, "clamped to 1")

	got, err := s.Pattern(ctx, seq.ID)
	require.NoError(t, err)
	require.Equal(t, "a → b", got.Name)
	require.Equal(t, store.PatternSequence, got.Type)
	require.JSONEq(t, `{"before":{"template_id":1},"after":{"template_id":2},"within_seconds":300}`, string(got.Definition))
	require.True(t, got.Active)
	require.True(t, seq.CreatedAt.Equal(got.CreatedAt))

	list, err = s.Patterns(ctx, store.PatternQuery{})
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, freq.ID, list[0].ID, "newest first")
	list, err = s.Patterns(ctx, store.PatternQuery{Type: store.PatternSequence})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, seq.ID, list[0].ID)
	active := true
	list, err = s.Patterns(ctx, store.PatternQuery{Active: &active})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, seq.ID, list[0].ID)
	list, err = s.Patterns(ctx, store.PatternQuery{BeforeID: freq.ID, Limit: 1})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, seq.ID, list[0].ID)

	time.Sleep(2 * time.Millisecond) // a later updated_at
	seq.Active, seq.ConfidenceThreshold = false, 0.9
	seq.Definition = []byte(`{"before":{"template_id":1},"after":{"template_id":2},"within_seconds":60}`)
	up, err := s.UpdatePattern(ctx, seq)
	require.NoError(t, err)
	require.False(t, up.Active)
	require.InDelta(t, 0.9, up.ConfidenceThreshold, 1e-9)
	require.JSONEq(t, string(seq.Definition), string(up.Definition))
	require.True(t, up.UpdatedAt.After(up.CreatedAt))
	require.Equal(t, store.PatternSequence, up.Type, "the type stays")

	_, err = s.UpdatePattern(ctx, store.EventPattern{ID: 12345, Definition: []byte(`{}`)})
	require.ErrorIs(t, err, store.ErrNotFound)
}
