package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

func testRawEvents(t *testing.T, e *env) {
	a := mk(e.base, "web-01", event.High, "a")
	b := mk(e.base.Add(-3*time.Hour), "web-02", event.Low, "b")
	folded := mk(e.base, "web-01", event.High, "a again")
	folded.raw.ProcessedEventID = a.ev.ID
	folded.raw.ProcessingErrors = []string{"noise: folded"}
	// Received long after the time in its id: found by the second lookup.
	late := mk(e.base, "web-03", event.Low, "late")
	late.raw.ReceivedAt = e.base.Add(72 * time.Hour)
	bt := batch(a, b, late)
	bt.Raw = append(bt.Raw, folded.raw)
	e.write(t, bt)

	missing := idAt(e.base)
	got, err := e.s.RawEvents(e.ctx, []int64{folded.raw.ID, missing, b.raw.ID, a.raw.ID, late.raw.ID, b.raw.ID})
	require.NoError(t, err)
	require.Len(t, got, 4)
	want := []int64{folded.raw.ID, b.raw.ID, a.raw.ID, late.raw.ID}
	for i, r := range got {
		require.Equal(t, want[i], r.ID)
	}
	require.Equal(t, []string{"noise: folded"}, got[0].ProcessingErrors)
	require.Equal(t, a.ev.ID, got[0].ProcessedEventID)
	require.JSONEq(t, string(b.raw.Data), string(got[1].Data))
	require.True(t, got[1].Processed)
	require.Equal(t, b.raw.ReceivedAt, got[1].ReceivedAt)
	require.Equal(t, late.raw.ReceivedAt, got[3].ReceivedAt)

	none, err := e.s.RawEvents(e.ctx, nil)
	require.NoError(t, err)
	require.Empty(t, none)
	none, err = e.s.RawEvents(e.ctx, []int64{missing})
	require.NoError(t, err)
	require.Empty(t, none)
}

func testEventsByID(t *testing.T, e *env) {
	a := mk(e.base, "web-01", event.High, "a")
	b := mk(e.base.Add(-3*time.Hour), "web-02", event.Low, "b")
	// Occurred long before it was received (another partition in
	// PostgreSQL).
	old := mk(e.base, "web-03", event.Low, "old")
	old.ev.OccurredAt = e.base.Add(-40 * 24 * time.Hour)
	folded := mk(e.base, "web-01", event.High, "a again")
	folded.raw.ProcessedEventID = a.ev.ID
	bt := batch(a, b, old)
	bt.Raw = append(bt.Raw, folded.raw)
	e.write(t, bt)

	got, err := e.s.EventsByID(e.ctx, []int64{old.ev.ID, folded.raw.ID, idAt(e.base), a.ev.ID, b.ev.ID, a.ev.ID})
	require.NoError(t, err)
	require.Len(t, got, 3, "a raw id folded into another event is not followed")
	requireEvent(t, old.ev, &got[0])
	requireEvent(t, a.ev, &got[1])
	requireEvent(t, b.ev, &got[2])

	none, err := e.s.EventsByID(e.ctx, []int64{})
	require.NoError(t, err)
	require.Empty(t, none)
}
