package pipeline

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline/pipelinetest"
	"github.com/reflex-ops/reflex/internal/store"
)

// flaky is a stage named "flaky" with state: it counts, per event, how
// often it applied it (undone on abort), and fails on the events whose
// title is in bad: with err, or a panic if err is nil, for the next
// failures calls that meet one (forever if negative).
type flaky struct {
	mu       sync.Mutex
	bad      map[string]bool
	err      error
	failures int
	applied  map[int64]int
	seen     map[int64]int
}

func newFlaky(err error, failures int, bad ...string) *flaky {
	f := &flaky{bad: map[string]bool{}, err: err, failures: failures, applied: map[int64]int{}, seen: map[int64]int{}}
	for _, b := range bad {
		f.bad[b] = true
	}
	return f
}

func (f *flaky) Name() string { return "flaky" }

func (f *flaky) Process(_ context.Context, b *Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range b.Events {
		f.seen[e.ID]++
	}
	var done []int64
	b.OnAbort(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range done {
			f.applied[id]--
		}
	})
	for _, e := range b.Events {
		if f.bad[e.Title] && f.failures != 0 {
			if f.failures > 0 {
				f.failures--
			}
			if f.err == nil {
				panic("bug on " + e.Title)
			}
			return f.err
		}
		f.applied[e.ID]++
		done = append(done, e.ID)
	}
	return nil
}

func (f *flaky) appliedOf(id int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied[id]
}

// srig is a runner over a pipelinetest.Log, for tests in a synctest bubble.
type srig struct {
	log    *pipelinetest.Log
	store  *pipelinetest.Store
	reg    *prometheus.Registry
	runner *Runner
	cancel context.CancelFunc
	done   chan error
}

func startS(t *testing.T, stages Stage, mod func(*RunnerOptions)) *srig {
	t.Helper()
	r := &srig{log: pipelinetest.NewLog(bus.LaneLo), store: pipelinetest.NewStore(), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	opts := RunnerOptions{
		Consumer: r.log, Lane: "lo", Normalize: &normalizer{}, Stages: stages, Workers: 4,
		Store: r.store, Registerer: r.reg, Pipeline: testPipeline,
	}
	if mod != nil {
		mod(&opts)
	}
	runner, err := NewRunner(opts)
	require.NoError(t, err)
	r.runner = runner
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- runner.Run(ctx) }()
	return r
}

// stop stops the runner and returns Run's error.
func (r *srig) stop() error {
	r.cancel()
	return <-r.done
}

func (r *srig) metrics(t *testing.T) *runnerMetrics {
	t.Helper()
	m, err := newRunnerMetrics(r.reg, "lo")
	require.NoError(t, err)
	return m
}

func titled(titles ...string) []string { return titles }

// publish publishes one envelope of events of host h with the titles.
func (r *srig) publish(titles []string) []int64 {
	return r.log.Publish(items([]string{"h1", "h2", "h3"}, len(titles), event.Low, func(i int) string { return titles[i] })...)
}

func TestPoisonPanicIsolated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(nil, -1, "poison")
		r := startS(t, MultiStage{f}, nil)
		defer func() { require.NoError(t, r.stop()) }()
		ids := r.publish(titled("a", "b", "c", "poison", "d", "e", "f", "g"))
		synctest.Wait()

		r.store.Lock()
		require.Len(t, r.store.Raw, 8, "every raw event stored")
		require.Len(t, r.store.Processed, 7)
		require.Empty(t, r.store.Dups)
		p := r.store.Raw[ids[3]]
		r.store.Unlock()
		require.False(t, p.Processed)
		require.Zero(t, p.ProcessedEventID)
		require.Equal(t, []string{"flaky: panic: bug on poison"}, p.ProcessingErrors)

		require.Zero(t, r.log.Pending(), "acknowledged")
		require.Equal(t, uint64(1), r.log.Deliveries(strconv.FormatInt(ids[0], 10)), "a panic is permanent: no redelivery")
		require.Empty(t, r.log.Naks())
		for i, id := range ids {
			want := 1
			if i == 3 {
				want = 0
			}
			require.Equal(t, want, f.appliedOf(id), "event %d applied once by the stage's state", i)
		}
		m := r.metrics(t)
		require.InDelta(t, 1, metricValue(t, m.poison.WithLabelValues("flaky")), 0)
		require.EqualValues(t, 1, r.runner.Status().PoisonEvents)
		require.False(t, r.runner.Status().Failing)
	})
}

func TestPoisonRetryableBoundedByDeliveries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(errors.New("lookup failed"), -1, "bad")
		r := startS(t, MultiStage{f}, func(o *RunnerOptions) { o.RetryMin, o.RetryMax, o.MaxDeliveries = time.Second, 4*time.Second, 4 })
		defer func() { require.NoError(t, r.stop()) }()
		start := time.Now()
		ids := r.publish(titled("a", "bad", "c"))
		msgID := strconv.FormatInt(ids[0], 10)

		// Deliveries 1 to 3 fail and are returned with a growing delay.
		for n, delay := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			synctest.Wait()
			require.Equal(t, uint64(n+1), r.log.Deliveries(msgID))
			require.Len(t, r.log.Naks(), n+1)
			require.Equal(t, delay, r.log.Naks()[n])
			require.Zero(t, r.store.RawLen())
			st := r.runner.Status()
			require.True(t, st.Failing)
			require.Equal(t, "flaky: lookup failed", st.Err)
			time.Sleep(delay)
		}
		// The fourth isolates the event that fails.
		synctest.Wait()
		require.Equal(t, 7*time.Second, time.Since(start))
		require.Equal(t, uint64(4), r.log.Deliveries(msgID))
		require.Len(t, r.log.Naks(), 3)
		require.Zero(t, r.log.Pending())
		r.store.Lock()
		require.Len(t, r.store.Raw, 3)
		require.Len(t, r.store.Processed, 2)
		require.Equal(t, []string{"flaky: lookup failed"}, r.store.Raw[ids[1]].ProcessingErrors)
		require.False(t, r.store.Raw[ids[1]].Processed)
		r.store.Unlock()
		require.Equal(t, 1, f.appliedOf(ids[0]))
		require.Equal(t, 1, f.appliedOf(ids[2]))
		require.False(t, r.runner.Status().Failing)
		require.InDelta(t, 4, metricValue(t, r.metrics(t).failures.WithLabelValues("flaky")), 0)
	})
}

func TestPoisonOnlyAtTheMessagesLastDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(errors.New("lookup failed"), -1, "bad")
		r := startS(t, MultiStage{f}, func(o *RunnerOptions) { o.RetryMin, o.RetryMax, o.MaxDeliveries = time.Second, time.Minute, 3 })
		defer func() { require.NoError(t, r.stop()) }()
		first := r.publish(titled("a", "bad"))
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, r.log.Naks())

		// A fresh message joins the first one's last delivery.
		r.log.Hold()
		second := r.publish(titled("c", "bad"))
		time.Sleep(2 * time.Second)
		r.log.Release()
		synctest.Wait()
		r.store.Lock()
		require.Len(t, r.store.Raw, 2, "the first message's events are stored")
		require.False(t, r.store.Raw[first[1]].Processed)
		require.NotContains(t, r.store.Raw, second[0])
		r.store.Unlock()
		require.Equal(t, time.Second, r.log.Naks()[2], "the second goes back, as at its first delivery")
		require.Equal(t, 1, r.log.Pending())

		time.Sleep(time.Second)
		synctest.Wait()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Zero(t, r.log.Pending())
		require.Equal(t, uint64(3), r.log.Deliveries(strconv.FormatInt(second[0], 10)))
		r.store.Lock()
		defer r.store.Unlock()
		require.Len(t, r.store.Raw, 4)
		require.True(t, r.store.Raw[second[0]].Processed)
		require.False(t, r.store.Raw[second[1]].Processed)
		require.Empty(t, r.store.Dups)
	})
}

func TestRetryableStageErrorRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(errors.New("asset inventory unreachable"), 2, "x")
		r := startS(t, MultiStage{f}, func(o *RunnerOptions) { o.RetryMin, o.RetryMax = time.Second, 30*time.Second })
		defer func() { require.NoError(t, r.stop()) }()
		start := time.Now()
		ids := r.publish(titled("x", "y", "z"))
		synctest.Wait()
		require.Equal(t, []time.Duration{time.Second}, r.log.Naks())
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, r.log.Naks())
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, 3*time.Second, time.Since(start))
		require.Zero(t, r.log.Pending())
		r.store.Lock()
		require.Len(t, r.store.Processed, 3)
		for _, id := range ids {
			require.True(t, r.store.Raw[id].Processed)
			require.Empty(t, r.store.Raw[id].ProcessingErrors)
		}
		r.store.Unlock()
		for _, id := range ids {
			require.Equal(t, 1, f.appliedOf(id), "undone after each failure, applied once")
		}
		require.Zero(t, r.runner.Status().PoisonEvents)
	})
}

func TestPermanentErrorIsolatedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(Permanent(errors.New("unparseable field")), -1, "bad1", "bad2")
		r := startS(t, MultiStage{StageFunc(func(context.Context, *Batch) error { return nil }), f}, nil)
		defer func() { require.NoError(t, r.stop()) }()
		var titles []string
		for i := 0; i < 40; i++ {
			titles = append(titles, "ok"+strconv.Itoa(i))
		}
		titles[7], titles[31] = "bad1", "bad2"
		ids := r.publish(titles)
		synctest.Wait()
		require.Empty(t, r.log.Naks())
		require.Zero(t, r.log.Pending())
		r.store.Lock()
		defer r.store.Unlock()
		require.Len(t, r.store.Raw, 40)
		require.Len(t, r.store.Processed, 38)
		for i, id := range ids {
			raw := r.store.Raw[id]
			if i == 7 || i == 31 {
				require.False(t, raw.Processed)
				require.Equal(t, []string{"flaky: unparseable field"}, raw.ProcessingErrors)
				continue
			}
			require.True(t, raw.Processed)
			require.Equal(t, 1, f.appliedOf(id))
		}
		require.EqualValues(t, 2, r.runner.Status().PoisonEvents)
	})
}

func TestNormalizePanicIsolated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		norm := StageFunc(func(ctx context.Context, b *Batch) error {
			for _, rw := range b.Raw {
				if strings.Contains(string(rw.Data), "boom") {
					panic("normalizer bug")
				}
			}
			return (&normalizer{}).Process(ctx, b)
		})
		r := startS(t, nil, func(o *RunnerOptions) { o.Normalize = norm })
		defer func() { require.NoError(t, r.stop()) }()
		ids := r.publish(titled("a", "boom", "c"))
		synctest.Wait()
		r.store.Lock()
		defer r.store.Unlock()
		require.Len(t, r.store.Raw, 3)
		require.Equal(t, []string{"normalize: panic: normalizer bug"}, r.store.Raw[ids[1]].ProcessingErrors)
		require.Len(t, r.store.Processed, 2)
	})
}

func TestRunnerRetriesStoreWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlaky(nil, 0)
		r := startS(t, MultiStage{f}, func(o *RunnerOptions) { o.RetryMin, o.RetryMax = time.Second, 2*time.Second })
		defer func() { require.NoError(t, r.stop()) }()
		r.store.FailWrites(3)
		start := time.Now()
		ids := r.publish(titled("a", "b", "c", "d"))
		synctest.Wait()
		st := r.runner.Status()
		require.True(t, st.Failing)
		require.Contains(t, st.Err, "store: ")
		require.Equal(t, 1, r.log.InProgress(), "the ack deadline is extended while retrying")
		time.Sleep(time.Second) // second attempt
		synctest.Wait()
		time.Sleep(2 * time.Second) // third
		synctest.Wait()
		require.Zero(t, r.store.RawLen())
		time.Sleep(2 * time.Second) // fourth succeeds
		synctest.Wait()
		require.Equal(t, 5*time.Second, time.Since(start))
		r.store.Lock()
		require.Equal(t, 4, r.store.Writes)
		require.Len(t, r.store.Raw, 4)
		r.store.Unlock()
		require.Empty(t, r.log.Naks(), "a store failure is not a stage failure: no redelivery")
		require.Zero(t, r.log.Pending())
		for _, id := range ids {
			require.Equal(t, 1, f.appliedOf(id))
			f.mu.Lock()
			require.Equal(t, 1, f.seen[id], "the stages ran once")
			f.mu.Unlock()
		}
		require.False(t, r.runner.Status().Failing)
		require.Zero(t, r.runner.Status().PoisonEvents, "a store failure is never poison")
		require.InDelta(t, 3, metricValue(t, r.metrics(t).failures.WithLabelValues("store")), 0)
	})
}

// blockingStore blocks WriteBatch until release is closed or ctx ends.
type blockingStore struct {
	*pipelinetest.Store
	release chan struct{}
}

func (s *blockingStore) WriteBatch(ctx context.Context, b *store.Batch) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.WriteBatch(ctx, b)
}

func TestRunnerDrainsOnStopS(t *testing.T) {
	t.Run("the batch in hand is finished", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			bs := &blockingStore{Store: pipelinetest.NewStore(), release: make(chan struct{})}
			r := startS(t, nil, func(o *RunnerOptions) { o.Store = bs })
			r.publish(titled("a", "b"))
			synctest.Wait() // the batch is being stored
			r.cancel()
			time.Sleep(DefaultDrainTimeout - time.Millisecond)
			synctest.Wait()
			select {
			case <-r.done:
				t.Fatal("Run returned with a batch in hand")
			default:
			}
			close(bs.release)
			require.NoError(t, <-r.done)
			require.Equal(t, 2, bs.RawLen())
			require.Zero(t, r.log.Pending())
		})
	})
	t.Run("a batch that cannot finish is left for redelivery and undone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			bs := &blockingStore{Store: pipelinetest.NewStore(), release: make(chan struct{})}
			f := newFlaky(nil, 0)
			r := startS(t, MultiStage{f}, func(o *RunnerOptions) { o.Store, o.DrainTimeout = bs, 20*time.Second })
			ids := r.publish(titled("a", "b"))
			synctest.Wait()
			require.Equal(t, 1, f.appliedOf(ids[0]))
			start := time.Now()
			r.cancel()
			require.NoError(t, <-r.done)
			require.Equal(t, 20*time.Second, time.Since(start), "stopped after DrainTimeout")
			require.Zero(t, bs.RawLen())
			require.Equal(t, 1, r.log.Pending(), "not acknowledged: it will be delivered again")
			require.Zero(t, f.appliedOf(ids[0]), "what the stages applied is undone")
		})
	})
}

// failingDownstream fails its first n calls of each kind.
type failingDownstream struct {
	mu               sync.Mutex
	n                int
	stored, replayed int
	storedIDs        []int64
	replayedIDs      []int64
}

func (d *failingDownstream) Stored(_ context.Context, b *store.Batch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stored++
	if d.stored <= d.n {
		return errors.New("processed stream unavailable")
	}
	for _, rw := range b.Raw {
		d.storedIDs = append(d.storedIDs, rw.ID)
	}
	return nil
}

func (d *failingDownstream) Replayed(_ context.Context, ids []int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.replayed++
	if d.replayed <= d.n {
		return errors.New("processed stream unavailable")
	}
	d.replayedIDs = append(d.replayedIDs, ids...)
	return nil
}

func TestDownstreamRetriedBeforeAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &failingDownstream{n: 2}
		r := startS(t, nil, func(o *RunnerOptions) { o.Downstream, o.RetryMin, o.RetryMax = d, time.Second, time.Minute })
		defer func() { require.NoError(t, r.stop()) }()
		start := time.Now()
		ids := r.publish(titled("a", "b"))
		synctest.Wait()
		require.Equal(t, 2, r.store.RawLen(), "committed")
		require.Equal(t, 1, r.log.Pending(), "not acknowledged before Stored succeeds")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		require.Equal(t, 3*time.Second, time.Since(start))
		require.Zero(t, r.log.Pending())
		require.Equal(t, ids, d.storedIDs)

		// A redelivery of stored events goes to Replayed, retried too.
		data := []byte(`{"v":1,"base_id":` + strconv.FormatInt(ids[0], 10) + `,"source_type":"webhook","events":[{"source":"test","severity":"low","data":{"host":"h1","message":"a","severity":"low"}},{"source":"test","severity":"low","data":{"host":"h2","message":"b","severity":"low"}}]}`)
		r.log.PublishRaw("again", data)
		synctest.Wait()
		require.Equal(t, 1, r.log.Pending())
		time.Sleep(3 * time.Second)
		synctest.Wait()
		require.Zero(t, r.log.Pending())
		require.Equal(t, ids, d.replayedIDs)
		r.store.Lock()
		require.Empty(t, r.store.Dups)
		r.store.Unlock()
	})
}

func TestIsRetryable(t *testing.T) {
	plain := errors.New("x")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"plain", plain, true},
		{"wrapped plain", &StageError{Stage: "s", Err: plain}, true},
		{"permanent", Permanent(plain), false},
		{"wrapped permanent", &StageError{Stage: "s", Err: Permanent(plain)}, false},
		{"panic", &StageError{Stage: "s", Err: &PanicError{Value: 1}}, false},
		{"joined, one retryable", errors.Join(Permanent(plain), plain), true},
		{"joined, all permanent", errors.Join(Permanent(plain), &PanicError{}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, IsRetryable(tt.err))
		})
	}
	require.NoError(t, Permanent(nil))
	require.ErrorIs(t, Permanent(plain), plain)
}

func TestRedeliveryDelay(t *testing.T) {
	for n, want := range map[uint64]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 60: 30 * time.Second} {
		require.Equal(t, want, RedeliveryDelay(n, time.Second, 30*time.Second), "delivery %d", n)
	}
}
