package noise

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/pipeline/pipelinetest"
	"github.com/reflex-ops/reflex/internal/store"
)

// The tests of this file run the noise stages in a pipeline.Runner over a
// fake intake log, in a synctest bubble, and check what the store holds
// after redeliveries, store retries and poison events.

type msg struct {
	Host    string `json:"host"`
	Message string `json:"message"`
}

// normalizeMsg turns each raw msg into an event titled by its message.
var normalizeMsg = pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
	for _, rw := range b.Raw {
		var m msg
		if err := json.Unmarshal(rw.Data, &m); err != nil {
			return pipeline.Permanent(err)
		}
		b.Events = append(b.Events, &event.Event{
			ID: rw.ID, RawEventID: rw.ID, SourceSystem: rw.SourceSystem, SourceType: rw.SourceType,
			SourceHost: m.Host, Title: m.Message, EventType: "alert", Severity: event.High,
			OccurredAt: rw.ReceivedAt, ReceivedAt: rw.ReceivedAt, ProcessedAt: b.Now, OccurrenceCount: 1,
		})
	}
	return nil
})

// after is a stage that runs after the noise filter: it fails on an event
// titled fail (with err, or a panic if err is nil) the next n times it
// meets one (forever if n < 0).
type after struct {
	mu   sync.Mutex
	fail string
	err  error
	n    int
}

func (a *after) Name() string { return "score" }

func (a *after) Process(_ context.Context, b *pipeline.Batch) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range b.Events {
		if e.Title == a.fail && a.n != 0 {
			a.n--
			if a.err == nil {
				panic("score bug")
			}
			return a.err
		}
	}
	return nil
}

type noiseRig struct {
	log    *pipelinetest.Log
	store  *pipelinetest.Store
	dedup  *Dedup
	limit  *RateLimiter
	after  *after
	cancel context.CancelFunc
	done   chan error
}

func newNoiseRig(t *testing.T, opts Options) *noiseRig {
	t.Helper()
	d, err := NewDedup(opts)
	require.NoError(t, err)
	rl, err := NewRateLimiter(opts, d)
	require.NoError(t, err)
	return &noiseRig{log: pipelinetest.NewLog(bus.LaneLo), store: pipelinetest.NewStore(), dedup: d, limit: rl, after: &after{}}
}

// start runs a runner; st, if not nil, replaces the store.
func (r *noiseRig) start(t *testing.T, st pipeline.Store, drain time.Duration) {
	t.Helper()
	if st == nil {
		st = r.store
	}
	runner, err := pipeline.NewRunner(pipeline.RunnerOptions{
		Consumer: r.log, Lane: "lo", Normalize: normalizeMsg, Workers: 2, Store: st,
		Stages:   pipeline.MultiStage{r.limit, r.dedup, r.after},
		RetryMin: time.Second, RetryMax: 4 * time.Second, DrainTimeout: drain,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- runner.Run(ctx) }()
}

func (r *noiseRig) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	require.NoError(t, <-r.done)
}

// publish publishes one envelope of events of host h, titled messages.
func (r *noiseRig) publish(messages ...string) []int64 {
	its := make([]intake.Item, len(messages))
	for i, m := range messages {
		data, _ := json.Marshal(msg{Host: "h", Message: m})
		its[i] = intake.Item{SourceSystem: "prom", Severity: event.High, Data: data}
	}
	return r.log.Publish(its...)
}

// settle lets the runner work through redeliveries until the log is empty.
func (r *noiseRig) settle(t *testing.T) {
	t.Helper()
	for i := 0; ; i++ {
		synctest.Wait()
		if r.log.Pending() == 0 {
			return
		}
		require.Less(t, i, 20, "the log does not drain")
		time.Sleep(time.Second)
	}
}

func (r *noiseRig) count(t *testing.T, id int64) int {
	t.Helper()
	r.store.Lock()
	defer r.store.Unlock()
	e, ok := r.store.Processed[id]
	require.True(t, ok, "event %d stored", id)
	return e.OccurrenceCount
}

func (r *noiseRig) raw(id int64) event.Raw {
	r.store.Lock()
	defer r.store.Unlock()
	return r.store.Raw[id]
}

func TestRedeliveredRepeatCountedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newNoiseRig(t, Options{})
		r.start(t, nil, 0)
		defer r.stop(t)
		k := r.publish("disk full")[0]
		r.settle(t)
		require.Equal(t, 1, r.count(t, k))

		// The repeat's batch fails after the noise filter, twice, and is
		// redelivered.
		r.after.fail, r.after.err, r.after.n = "other", errors.New("model unavailable"), 2
		ids := r.publish("disk full", "other")
		r.settle(t)
		require.Equal(t, uint64(3), r.log.Deliveries(keyOf(ids)))
		require.Equal(t, 2, r.count(t, k), "one repeat: occurrence_count 2")
		require.Equal(t, k, r.raw(ids[0]).ProcessedEventID)
		require.Equal(t, 1, r.count(t, ids[1]))

		r.publish("disk full")
		r.settle(t)
		require.Equal(t, 3, r.count(t, k))
		r.store.Lock()
		require.Empty(t, r.store.Dups)
		require.Empty(t, r.store.LostRepeats)
		r.store.Unlock()
	})
}

func keyOf(ids []int64) string { return strconv.FormatInt(ids[0], 10) }

func TestStoreRetryCountsRepeatOnce(t *testing.T) {
	t.Run("retried in hand", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newNoiseRig(t, Options{})
			r.start(t, nil, 0)
			defer r.stop(t)
			k := r.publish("disk full")[0]
			r.settle(t)
			r.store.FailWrites(2)
			r.publish("disk full", "disk full")
			r.settle(t)
			require.Equal(t, 3, r.count(t, k))
			require.Empty(t, r.log.Naks())
		})
	})
	t.Run("abandoned at stop and redelivered", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newNoiseRig(t, Options{})
			r.start(t, nil, 0)
			k := r.publish("disk full")[0]
			r.settle(t)
			r.stop(t)

			// A store that never answers: the batch is given up at stop.
			down := &stuckStore{Store: r.store}
			r.start(t, down, 10*time.Second)
			r.publish("disk full")
			synctest.Wait()
			r.stop(t)
			require.Equal(t, 1, r.log.Pending())
			require.Equal(t, 1, r.count(t, k))

			// It is back: the next runner (same state) stores it.
			r.start(t, nil, 0)
			defer r.stop(t)
			r.log.Expire()
			r.settle(t)
			require.Equal(t, 2, r.count(t, k), "counted once")
		})
	})
}

func TestPoisonEventAmongRepeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newNoiseRig(t, Options{})
		r.start(t, nil, 0)
		defer r.stop(t)
		k := r.publish("disk full")[0]
		r.settle(t)

		r.after.fail, r.after.n = "poison", -1 // a panic, each time
		ids := r.publish("disk full", "poison", "disk full", "cpu high")
		r.settle(t)
		require.Empty(t, r.log.Naks(), "a panic is not retried")
		p := r.raw(ids[1])
		require.False(t, p.Processed)
		require.Equal(t, []string{"score: panic: score bug"}, p.ProcessingErrors)
		require.Equal(t, 3, r.count(t, k), "two repeats")
		require.Equal(t, 1, r.count(t, ids[3]))

		// The poison event was never stored: its repeat is not folded
		// into it (it would be lost), it is poison too.
		more := r.publish("poison", "disk full")
		r.settle(t)
		require.False(t, r.raw(more[0]).Processed)
		require.Equal(t, 4, r.count(t, k))
		r.store.Lock()
		defer r.store.Unlock()
		require.Empty(t, r.store.LostRepeats, "no repeat of an event that is not stored")
		require.Empty(t, r.store.Dups)
		require.Len(t, r.store.Raw, 7, "every raw event stored")
	})
}

func TestRedeliveredEventsTakeOneToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newNoiseRig(t, Options{Rate: 0.0001, Burst: 3})
		r.start(t, nil, 0)
		defer r.stop(t)
		r.after.fail, r.after.err, r.after.n = "b", errors.New("model unavailable"), 3
		ids := r.publish("a", "b", "c")
		r.settle(t)
		for _, id := range ids {
			require.True(t, r.raw(id).Processed)
			require.Empty(t, r.raw(id).ProcessingErrors, "not rate limited on redelivery")
		}
		// The bucket holds what three events took: nothing.
		more := r.publish("d")
		r.settle(t)
		require.Equal(t, []string{RateLimitedError}, r.raw(more[0]).ProcessingErrors)
	})
}

// stuckStore never completes a write.
type stuckStore struct{ *pipelinetest.Store }

func (s *stuckStore) WriteBatch(ctx context.Context, _ *store.Batch) error {
	<-ctx.Done()
	return ctx.Err()
}
