package pipeline

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/pipeline/pipelinetest"
	"github.com/reflex-ops/reflex/internal/store"
)

// testPipeline is the RunnerOptions.Pipeline of the runners the tests'
// rigs start; TestPipelined runs the runner's tests again with more.
var testPipeline = 1

// TestPipelined runs the runner's tests with batches in flight: every
// guarantee of the sequential runner holds for the pipelined one.
func TestPipelined(t *testing.T) {
	testPipeline = 3
	defer func() { testPipeline = 1 }()
	for _, tt := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"StoresEachEventOnce", TestRunnerStoresEachEventOnce},
		{"KeepsHostOrder", TestRunnerKeepsHostOrder},
		{"SkipsReplays", TestRunnerSkipsReplays},
		{"CorruptMessages", TestRunnerCorruptMessages},
		{"PoisonPanicIsolated", TestPoisonPanicIsolated},
		{"PoisonRetryableBoundedByDeliveries", TestPoisonRetryableBoundedByDeliveries},
		{"PoisonOnlyAtTheMessagesLastDelivery", TestPoisonOnlyAtTheMessagesLastDelivery},
		{"RetryableStageErrorRecovers", TestRetryableStageErrorRecovers},
		{"PermanentErrorIsolatedAtOnce", TestPermanentErrorIsolatedAtOnce},
		{"NormalizePanicIsolated", TestNormalizePanicIsolated},
		{"RetriesStoreWithBackoff", TestRunnerRetriesStoreWithBackoff},
		{"DrainsOnStop", TestRunnerDrainsOnStopS},
		{"DownstreamRetriedBeforeAck", TestDownstreamRetriedBeforeAck},
	} {
		t.Run(tt.name, tt.f)
	}
}

// gateStore blocks each WriteBatch until a value is sent on gate (or ctx
// ends) and records the raw events of each write.
type gateStore struct {
	*pipelinetest.Store
	gate   chan struct{}
	mu     sync.Mutex
	writes [][]int64
}

func newGateStore() *gateStore {
	return &gateStore{Store: pipelinetest.NewStore(), gate: make(chan struct{})}
}

func (s *gateStore) WriteBatch(ctx context.Context, b *store.Batch) error {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	ids := make([]int64, len(b.Raw))
	for i, rw := range b.Raw {
		ids[i] = rw.ID
	}
	s.mu.Lock()
	s.writes = append(s.writes, ids)
	s.mu.Unlock()
	return s.Store.WriteBatch(ctx, b)
}

func (s *gateStore) written() [][]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// undoLog is a stage that records, per event, that it ran and, in order,
// which batches were undone.
type undoLog struct {
	mu     sync.Mutex
	ran    map[int64]int
	undone [][]int64
}

func (u *undoLog) Name() string { return "undolog" }

func (u *undoLog) Process(_ context.Context, b *Batch) error {
	ids := make([]int64, 0, len(b.Events))
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, e := range b.Events {
		u.ran[e.ID]++
		ids = append(ids, e.ID)
	}
	b.OnAbort(func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, id := range ids {
			u.ran[id]--
		}
		u.undone = append(u.undone, ids)
	})
	return nil
}

func (u *undoLog) ranOf(id int64) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ran[id]
}

func TestPipelinedOverlapsStagesWithTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gs := newGateStore()
		u := &undoLog{ran: map[int64]int{}}
		r := startS(t, u, func(o *RunnerOptions) { o.Store, o.Pipeline = gs, 3 })
		r.log.MaxBatch = 1 // one envelope per batch
		var envs [][]int64
		for _, name := range []string{"a", "b", "c", "d"} {
			envs = append(envs, r.publish(titled(name+"1", name+"2")))
		}
		synctest.Wait()
		// The first batch is in the store; the next two ran their stages
		// meanwhile; the fourth waits for a slot, its stages not run.
		for i, ids := range envs {
			want := 1
			if i == 3 {
				want = 0
			}
			require.Equal(t, want, u.ranOf(ids[0]), "batch %d", i)
		}
		require.Zero(t, r.log.Acked())

		gs.gate <- struct{}{} // the first
		synctest.Wait()
		close(gs.gate) // the rest
		synctest.Wait()
		require.NoError(t, r.stop())
		w := gs.written()
		// Whether the second batch had finished its stages when the store
		// took the first (and joined its transaction) depends on
		// scheduling; that the batches that waited are merged does not.
		require.Equal(t, envs[0], w[0][:len(envs[0])], "the first batch is stored first")
		require.Less(t, len(w), len(envs), "the batches that waited are merged")
		var all, stored []int64
		for _, ids := range envs {
			all = append(all, ids...)
		}
		for _, ids := range w {
			stored = append(stored, ids...)
		}
		require.Equal(t, all, stored, "each stored once, in intake order")
		require.Equal(t, 4, r.log.Acked())
		require.Zero(t, r.log.Pending())
		require.Equal(t, 8, gs.RawLen())
		require.Empty(t, u.undone)
	})
}

func TestPipelinedStopUndoesEveryBatchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gs := newGateStore()
		u := &undoLog{ran: map[int64]int{}}
		r := startS(t, u, func(o *RunnerOptions) {
			o.Store, o.Pipeline, o.DrainTimeout = gs, 3, 10*time.Second
		})
		r.log.MaxBatch = 1
		var envs [][]int64
		for _, name := range []string{"a", "b", "c", "d"} {
			envs = append(envs, r.publish(titled(name+"1", name+"2")))
		}
		synctest.Wait()
		// Three in flight, the fourth in hand waiting for a slot.
		for i, ids := range envs {
			require.Equal(t, min(1, 3-i), u.ranOf(ids[0]))
		}
		start := time.Now()
		r.cancel()
		require.NoError(t, <-r.done)
		require.Equal(t, 10*time.Second, time.Since(start), "stopped after DrainTimeout")
		require.Zero(t, gs.RawLen())
		require.Equal(t, 4, r.log.Pending(), "nothing acknowledged: all will be delivered again")
		for _, ids := range envs {
			require.Zero(t, u.ranOf(ids[0]), "undone")
		}
		// The newest first: a later batch ran on top of the earlier ones.
		var order, want []int64
		for _, ids := range u.undone {
			order = append(order, ids...)
		}
		for i := len(envs) - 1; i >= 0; i-- {
			want = append(want, envs[i][1], envs[i][0])
		}
		require.Equal(t, want, order)
	})
}

func TestPipelinedRedeliveryOfABatchInFlightWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gs := newGateStore()
		u := &undoLog{ran: map[int64]int{}}
		r := startS(t, u, func(o *RunnerOptions) { o.Store, o.Pipeline = gs, 3 })
		defer func() { require.NoError(t, r.stop()) }()
		ids := r.publish(titled("a", "b"))
		synctest.Wait() // in the store
		r.log.Expire()  // its ack wait runs out: delivered again
		synctest.Wait()
		require.Equal(t, 1, u.ranOf(ids[0]), "the second delivery waits for the first")
		gs.gate <- struct{}{}
		synctest.Wait()
		require.Equal(t, 1, u.ranOf(ids[0]), "and then finds it stored")
		require.Equal(t, uint64(2), r.log.Deliveries(strconv.FormatInt(ids[0], 10)), "delivered twice")
		gs.Lock()
		require.Empty(t, gs.Dups)
		gs.Unlock()
		require.Zero(t, r.log.Pending())
		require.Len(t, gs.written(), 1)
	})
}
