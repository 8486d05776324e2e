package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// PoisonData is an event_data that SQLite and PostgreSQL store but that
// cannot be read back into a float64 (issue 5, defect 1.1).
const PoisonData = `{"message":"poison","metadata":{"v":1e309}}`

// Unreadable is what RunUnreadable needs of an implementation.
type Unreadable struct {
	// Open returns a new, empty store that registers its metrics with reg.
	Open func(t *testing.T, reg prometheus.Registerer) Events
	// Corrupt sets, with SQL, the event_data of the stored processed event
	// id to PoisonData.
	Corrupt func(t *testing.T, s Events, id int64)
}

// RunUnreadable checks that one row that cannot be decoded breaks no read:
// list reads skip it (Events reports it), Event returns
// store.ErrUnreadable, and reflex_store_unreadable_rows_total counts it.
func RunUnreadable(t *testing.T, u Unreadable) {
	reg := prometheus.NewRegistry()
	s := u.Open(t, reg)
	ctx, base := setUp(t, s)
	e := &env{s: s, ctx: ctx, base: base}

	older := mk(base.Add(-2*time.Second), "web-01", event.High, "older")
	poison := mk(base.Add(-time.Second), "web-01", event.High, "poison")
	newer := mk(base, "web-01", event.High, "newer")
	folded := mk(base, "web-01", event.High, "poison again")
	folded.raw.ProcessedEventID = poison.ev.ID
	bt := batch(older, poison, newer)
	bt.Raw = append(bt.Raw, folded.raw)
	bt.Correlations = []event.Correlation{{CorrelationID: "eeeeeeee-0000-4000-8000-000000000001",
		Type: event.CorrelationTimeBased, PrimaryEventID: poison.ev.ID,
		RelatedEventIDs: []int64{older.ev.ID, poison.ev.ID}, Score: 0.5, CreatedAt: base}}
	e.write(t, bt)
	u.Corrupt(t, s, poison.ev.ID)

	count := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "reflex_store_unreadable_rows_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "table" && l.GetValue() == "processed_events" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	// counted checks that fn skipped exactly one unreadable row.
	counted := func(t *testing.T, fn func()) {
		t.Helper()
		before := count()
		fn()
		require.InDelta(t, before+1, count(), 0.001, "reflex_store_unreadable_rows_total{table=\"processed_events\"}")
	}

	t.Run("Events skips and reports it", func(t *testing.T) {
		counted(t, func() {
			p, err := s.Events(ctx, store.EventQuery{})
			require.NoError(t, err)
			require.Equal(t, idsOf(newer, older), ids(p.Events))
			require.Equal(t, []int64{poison.ev.ID}, p.Unreadable)
			require.False(t, p.More)
		})
	})
	t.Run("Events pages past it", func(t *testing.T) {
		q := store.EventQuery{Limit: 1}
		var got, bad []int64
		for range 5 {
			p, err := s.Events(ctx, q)
			require.NoError(t, err)
			got, bad = append(got, ids(p.Events)...), append(bad, p.Unreadable...)
			require.LessOrEqual(t, len(p.Events)+len(p.Unreadable), 1)
			if !p.More {
				break
			}
			q.BeforeTime, q.BeforeID = p.NextTime, p.NextID
		}
		require.Equal(t, idsOf(newer, older), got)
		require.Equal(t, []int64{poison.ev.ID}, bad)
	})
	t.Run("Event returns ErrUnreadable", func(t *testing.T) {
		counted(t, func() {
			_, err := s.Event(ctx, poison.ev.ID)
			require.ErrorIs(t, err, store.ErrUnreadable)
			require.Contains(t, err.Error(), fmt.Sprint(poison.ev.ID))
			require.NotContains(t, err.Error(), "1e309", "the error never holds the data")
		})
		_, err := s.Event(ctx, folded.raw.ID)
		require.ErrorIs(t, err, store.ErrUnreadable, "a raw id folded into it")
		got, err := s.Event(ctx, older.ev.ID)
		require.NoError(t, err)
		requireEvent(t, older.ev, got)
	})
	t.Run("RecentEvents skips it", func(t *testing.T) {
		counted(t, func() {
			evs, err := s.RecentEvents(ctx, base.Add(-time.Hour), 0)
			require.NoError(t, err)
			require.Equal(t, idsOf(older, newer), ids(evs))
		})
	})
	t.Run("EventsByID skips it", func(t *testing.T) {
		counted(t, func() {
			evs, err := s.EventsByID(ctx, idsOf(older, poison, newer))
			require.NoError(t, err)
			require.Equal(t, idsOf(older, newer), ids(evs))
		})
	})
	t.Run("Correlations of it", func(t *testing.T) {
		cs, err := s.Correlations(ctx, poison.ev.ID)
		require.NoError(t, err)
		require.Len(t, cs, 1)
		cs, err = s.Correlations(ctx, older.ev.ID)
		require.NoError(t, err)
		require.Empty(t, cs)
	})
	t.Run("its raw event is readable", func(t *testing.T) {
		r, err := s.RawEvent(ctx, poison.raw.ID)
		require.NoError(t, err)
		require.Equal(t, poison.raw.ID, r.ID)
	})
}
