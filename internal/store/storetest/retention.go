package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

func testRetention(t *testing.T, e *env) {
	T := e.base
	old := mk(T.Add(-200*24*time.Hour), "web-01", event.High, "old")
	oldFolded := mk(T.Add(-200*24*time.Hour), "web-01", event.High, "old again")
	oldFolded.raw.ProcessedEventID = old.ev.ID
	recent := mk(T.Add(-2*24*time.Hour), "web-01", event.High, "recent")
	fresh := mk(T, "web-02", event.Low, "fresh")
	oldOccurred := mk(T, "web-03", event.Low, "received now, occurred long ago")
	oldOccurred.ev.OccurredAt = T.Add(-150 * 24 * time.Hour)

	bt := batch(old, recent, fresh, oldOccurred)
	bt.Raw = append(bt.Raw, oldFolded.raw)
	const oldCorr, newCorr = "dddddddd-0000-4000-8000-000000000001", "dddddddd-0000-4000-8000-000000000002"
	bt.Correlations = []event.Correlation{
		{CorrelationID: oldCorr, Type: event.CorrelationTimeBased, PrimaryEventID: fresh.ev.ID,
			RelatedEventIDs: []int64{fresh.ev.ID}, Score: 0.1, Reason: "old group", CreatedAt: T.Add(-200 * 24 * time.Hour)},
		{CorrelationID: newCorr, Type: event.CorrelationTimeBased, PrimaryEventID: fresh.ev.ID,
			RelatedEventIDs: []int64{fresh.ev.ID}, Score: 0.1, Reason: "new group", CreatedAt: T},
	}
	e.write(t, bt)

	n, err := e.s.EnforceRetention(e.ctx, T.Add(-90*24*time.Hour))
	require.NoError(t, err)
	// raw: old, oldFolded; processed: old, oldOccurred. PostgreSQL drops
	// partitions and counts their rows first.
	require.Equal(t, int64(4), n)

	for _, id := range []int64{old.ev.ID, oldFolded.raw.ID, oldOccurred.ev.ID} {
		_, err := e.s.Event(e.ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "event %d", id)
	}
	for _, id := range []int64{old.raw.ID, oldFolded.raw.ID} {
		_, err := e.s.RawEvent(e.ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "raw event %d", id)
	}
	stored, err := e.s.StoredRawIDs(e.ctx, []int64{old.raw.ID, oldFolded.raw.ID, recent.raw.ID, fresh.raw.ID, oldOccurred.raw.ID})
	require.NoError(t, err)
	require.Equal(t, map[int64]bool{recent.raw.ID: true, fresh.raw.ID: true, oldOccurred.raw.ID: true}, stored)
	for _, p := range []pair{recent, fresh} {
		got, err := e.s.Event(e.ctx, p.ev.ID)
		require.NoError(t, err)
		requireEvent(t, p.ev, got)
	}
	cs, err := e.s.Correlations(e.ctx, fresh.ev.ID)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, newCorr, cs[0].CorrelationID)

	t.Run("again is a no-op", func(t *testing.T) {
		n, err := e.s.EnforceRetention(e.ctx, T.Add(-90*24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, int64(0), n)
	})
	t.Run("old days can be written again", func(t *testing.T) {
		again := mk(T.Add(-200*24*time.Hour), "web-01", event.High, "old, replayed after retention")
		e.write(t, batch(again))
		got, err := e.s.Event(e.ctx, again.ev.ID)
		require.NoError(t, err)
		requireEvent(t, again.ev, got)
	})
}
