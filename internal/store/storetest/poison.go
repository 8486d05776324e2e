package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// PoisonTitle is the title of a processed event that RunPoisoned's store
// must reject inside the write transaction (a trigger installed by the
// implementation's test), after the batch's raw events were written.
const PoisonTitle = "storetest: poison"

// RunPoisoned checks that a batch failing halfway through its transaction
// leaves nothing behind, and that it does not fail the batches written
// beside it. s must be migrated and reject PoisonTitle events.
func RunPoisoned(t *testing.T, s Events) {
	e := &env{s: s, ctx: t.Context(), base: time.Now().UTC().Truncate(time.Millisecond)}

	mkBatch := func(poisoned bool) (*store.Batch, []pair) {
		a := mk(e.base, "web-01", event.High, "fine")
		b := mk(e.base, "web-02", event.High, "fine too")
		if poisoned {
			b.ev.Title = PoisonTitle
		}
		bt := batch(a, b)
		bt.Correlations = []event.Correlation{{CorrelationID: uuid.NewString(),
			Type: event.CorrelationTimeBased, PrimaryEventID: a.ev.ID, RelatedEventIDs: []int64{a.ev.ID}, CreatedAt: e.base}}
		return bt, []pair{a, b}
	}
	requireAbsent := func(t *testing.T, ps []pair) {
		t.Helper()
		for _, p := range ps {
			stored, err := s.StoredRawIDs(e.ctx, []int64{p.raw.ID})
			require.NoError(t, err)
			require.Empty(t, stored)
			_, err = s.Event(e.ctx, p.ev.ID)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
	}

	t.Run("all or nothing", func(t *testing.T) {
		bt, ps := mkBatch(true)
		require.Error(t, s.WriteBatch(e.ctx, bt))
		requireAbsent(t, ps)
	})
	t.Run("concurrent batches are not failed by it", func(t *testing.T) {
		const good = 6
		var wg sync.WaitGroup
		errs := make([]error, good+1)
		sets := make([][]pair, good+1)
		for i := range good + 1 {
			bt, ps := mkBatch(i == good)
			sets[i] = ps
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.WriteBatch(e.ctx, bt)
			}()
		}
		wg.Wait()
		for i := range good {
			require.NoError(t, errs[i])
			for _, p := range sets[i] {
				got, err := s.Event(e.ctx, p.ev.ID)
				require.NoError(t, err)
				requireEvent(t, p.ev, got)
			}
		}
		require.Error(t, errs[good])
		requireAbsent(t, sets[good])
	})
}
