package noise

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/keyed"
	"github.com/reflex-ops/reflex/internal/pipeline"
)

func from(source string, e *event.Event) *event.Event {
	e.SourceSystem = source
	e.Fingerprint = event.Fingerprint(e)
	return e
}

func critical(e *event.Event) *event.Event {
	e.Severity = event.Critical
	e.Fingerprint = event.Fingerprint(e)
	return e
}

func TestRateLimiter(t *testing.T) {
	limited := pipeline.Outcome{Error: "rate_limited"}
	type step struct {
		now      time.Duration
		events   []*event.Event
		pass     []int64
		outcomes map[int64]pipeline.Outcome
	}
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{
			name: "burst then refill",
			opts: Options{Rate: 1, Burst: 2},
			steps: []step{
				{events: []*event.Event{ev(1, "h", "a", 0), ev(2, "h", "b", 0), ev(3, "h", "c", 0), ev(4, "h", "d", 0)},
					pass: []int64{1, 2}, outcomes: map[int64]pipeline.Outcome{3: limited, 4: limited}},
				{now: 500 * time.Millisecond, events: []*event.Event{ev(5, "h", "e", 0)},
					pass: []int64{}, outcomes: map[int64]pipeline.Outcome{5: limited}},
				{now: time.Second, events: []*event.Event{ev(6, "h", "f", 0), ev(7, "h", "g", 0)},
					pass: []int64{6}, outcomes: map[int64]pipeline.Outcome{7: limited}},
				{now: time.Hour, events: []*event.Event{ev(8, "h", "a", 0), ev(9, "h", "b", 0), ev(10, "h", "c", 0)},
					pass: []int64{8, 9}, outcomes: map[int64]pipeline.Outcome{10: limited}},
			},
		},
		{
			name: "default burst is one second's worth",
			opts: Options{Rate: 2.5},
			steps: []step{{events: []*event.Event{ev(1, "h", "a", 0), ev(2, "h", "b", 0), ev(3, "h", "c", 0), ev(4, "h", "d", 0)},
				pass: []int64{1, 2, 3}, outcomes: map[int64]pipeline.Outcome{4: limited}}},
		},
		{
			name: "sources have their own buckets",
			opts: Options{Rate: 1, Burst: 1},
			steps: []step{{events: []*event.Event{from("a", ev(1, "h", "x", 0)), from("b", ev(2, "h", "x", 0)), from("a", ev(3, "h", "y", 0))},
				pass: []int64{1, 2}, outcomes: map[int64]pipeline.Outcome{3: limited}}},
		},
		{
			name: "critical events are never limited and take no token",
			opts: Options{Rate: 1, Burst: 1},
			steps: []step{{events: []*event.Event{critical(ev(1, "h", "a", 0)), critical(ev(2, "h", "b", 0)), ev(3, "h", "c", 0), ev(4, "h", "d", 0)},
				pass: []int64{1, 2, 3}, outcomes: map[int64]pipeline.Outcome{4: limited}}},
		},
		{
			name: "rate 0 disables",
			opts: Options{},
			steps: []step{{events: []*event.Event{ev(1, "h", "a", 0), ev(2, "h", "b", 0), ev(3, "h", "c", 0)},
				pass: []int64{1, 2, 3}}},
		},
		{
			name: "a clock that steps back does not refill",
			opts: Options{Rate: 1, Burst: 1},
			steps: []step{
				{now: time.Minute, events: []*event.Event{ev(1, "h", "a", 0)}, pass: []int64{1}},
				{now: 0, events: []*event.Event{ev(2, "h", "b", 0)}, pass: []int64{}, outcomes: map[int64]pipeline.Outcome{2: limited}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRateLimiter(tt.opts, nil)
			require.NoError(t, err)
			for i, st := range tt.steps {
				b := &pipeline.Batch{Now: t0.Add(st.now), Events: st.events}
				require.NoError(t, r.Process(context.Background(), b))
				require.Equal(t, st.pass, ids(b.Events), "step %d", i)
				if st.outcomes == nil {
					require.Empty(t, b.Outcomes, "step %d", i)
				} else {
					require.Equal(t, st.outcomes, b.Outcomes, "step %d", i)
				}
			}
		})
	}
}

// TestRateLimiterExemptsRepeats runs the limiter before Dedup, as the
// pipeline does: repeats pass free and are folded, so their count is kept.
func TestRateLimiterExemptsRepeats(t *testing.T) {
	d, err := NewDedup(Options{})
	require.NoError(t, err)
	r, err := NewRateLimiter(Options{Rate: 1, Burst: 1}, d)
	require.NoError(t, err)
	stages := pipeline.MultiStage{r, d}

	b := &pipeline.Batch{Now: t0, Events: []*event.Event{ev(1, "h", "CPU high", 0), ev(2, "h", "CPU high", 0), ev(3, "h", "Disk full", 0), ev(4, "h", "CPU high", 0)}}
	require.NoError(t, stages.Process(context.Background(), b))
	require.Equal(t, []int64{1}, ids(b.Events))
	require.Equal(t, 3, b.Events[0].OccurrenceCount)
	require.Equal(t, map[int64]pipeline.Outcome{2: {ProcessedEventID: 1}, 3: {Error: "rate_limited"}, 4: {ProcessedEventID: 1}}, b.Outcomes)

	// A later repeat passes though the bucket is empty.
	b = &pipeline.Batch{Now: t0.Add(100 * time.Millisecond), Events: []*event.Event{ev(5, "h", "CPU high", 0), ev(6, "h", "Disk full", 0)}}
	require.NoError(t, stages.Process(context.Background(), b))
	require.Empty(t, b.Events)
	require.Equal(t, map[int64]pipeline.Outcome{5: {ProcessedEventID: 1}, 6: {Error: "rate_limited"}}, b.Outcomes)
	require.Len(t, b.Repeats, 1)
}

func TestRateLimiterSweepAndCap(t *testing.T) {
	r, err := NewRateLimiter(Options{Rate: 1, Burst: 10, MaxKeys: 2}, nil)
	require.NoError(t, err)
	b := &pipeline.Batch{Now: t0, Events: []*event.Event{from("a", ev(1, "h", "x", 0)), from("b", ev(2, "h", "x", 0)), from("c", ev(3, "h", "x", 0))}}
	require.NoError(t, r.Process(context.Background(), b))
	require.Equal(t, 2, r.Len())
	require.Equal(t, 1.0, counterValue(t, r.m.evictions.WithLabelValues(keyed.ReasonCapacity)))

	require.Equal(t, 0, r.Sweep(t0.Add(9*time.Second)), "not yet full again")
	require.Equal(t, 2, r.Sweep(t0.Add(10*time.Second)))
	require.Equal(t, 0, r.Len())
}

// TestRateLimiterConcurrent takes tokens from one bucket on two goroutines;
// run with -race. With a fixed batch time nothing refills, so exactly Burst
// events pass.
func TestRateLimiterConcurrent(t *testing.T) {
	r, err := NewRateLimiter(Options{Rate: 10, Burst: 25}, nil)
	require.NoError(t, err)
	var passed atomic.Int64
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				b := &pipeline.Batch{Now: t0, Events: []*event.Event{ev(int64(g*1000+i), "web-01", "x", 0)}}
				require.NoError(t, r.Process(context.Background(), b))
				passed.Add(int64(len(b.Events)))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(25), passed.Load())
}
