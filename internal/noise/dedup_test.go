package noise

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/keyed"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/store"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// ev is a normalized event as the normalizer hands it on; received is its
// offset from t0.
func ev(id int64, host, title string, received time.Duration) *event.Event {
	e := &event.Event{ID: id, RawEventID: id, EventType: "threshold_breach", Severity: event.High,
		SourceSystem: "prom", SourceType: event.SourceWebhook, SourceHost: host, Title: title,
		OccurredAt: t0.Add(received - time.Second), ReceivedAt: t0.Add(received), OccurrenceCount: 1}
	e.Fingerprint = event.Fingerprint(e)
	return e
}

func ids(events []*event.Event) []int64 {
	out := []int64{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	sum := 0.0
	for m := range ch {
		var pb dto.Metric
		require.NoError(t, m.Write(&pb))
		sum += pb.GetCounter().GetValue() + pb.GetGauge().GetValue()
	}
	return sum
}

func TestDedup(t *testing.T) {
	type step struct {
		now      time.Duration // batch time, offset from t0
		events   []*event.Event
		kept     []int64
		counts   []int // OccurrenceCount of each kept event after the step
		outcomes map[int64]pipeline.Outcome
		repeats  []store.Repeat
	}
	folded := func(id int64) pipeline.Outcome { return pipeline.Outcome{ProcessedEventID: id} }
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "repeats in one batch fold into the kept event",
			steps: []step{{
				events: []*event.Event{ev(1, "web-01", "CPU at 97%", 0), ev(2, "web-01", "CPU at 98%", time.Second), ev(3, "web-01", "Disk full", time.Second), ev(4, "web-01", "CPU at 99.5%", 2*time.Second)},
				kept:   []int64{1, 3}, counts: []int{3, 1},
				outcomes: map[int64]pipeline.Outcome{2: folded(1), 4: folded(1)},
			}},
		},
		{
			name: "repeats in later batches become one Repeat per batch",
			steps: []step{
				{events: []*event.Event{ev(1, "web-01", "CPU high", 0)}, kept: []int64{1}, counts: []int{1}},
				{
					now:      time.Minute,
					events:   []*event.Event{ev(2, "web-01", "CPU high", time.Minute), ev(3, "web-01", "CPU high", 2*time.Minute)},
					kept:     []int64{},
					outcomes: map[int64]pipeline.Outcome{2: folded(1), 3: folded(1)},
					repeats:  []store.Repeat{{EventID: 1, OccurredAt: t0.Add(-time.Second), OccurrenceCount: 3, LastSeenAt: t0.Add(2 * time.Minute)}},
				},
			},
		},
		{
			name: "other hosts are other events",
			steps: []step{{
				events: []*event.Event{ev(1, "web-01", "CPU high", 0), ev(2, "web-02", "CPU high", 0)},
				kept:   []int64{1, 2}, counts: []int{1, 1},
			}},
		},
		{
			name: "window is measured from the first sighting, not the last repeat",
			steps: []step{
				{events: []*event.Event{ev(1, "web-01", "CPU high", 0)}, kept: []int64{1}, counts: []int{1}},
				{now: 4 * time.Minute, events: []*event.Event{ev(2, "web-01", "CPU high", 4*time.Minute)}, kept: []int64{},
					outcomes: map[int64]pipeline.Outcome{2: folded(1)},
					repeats:  []store.Repeat{{EventID: 1, OccurredAt: t0.Add(-time.Second), OccurrenceCount: 2, LastSeenAt: t0.Add(4 * time.Minute)}}},
				{now: 5 * time.Minute, events: []*event.Event{ev(3, "web-01", "CPU high", 5*time.Minute), ev(4, "web-01", "CPU high", 5*time.Minute)},
					kept: []int64{3}, counts: []int{2}, outcomes: map[int64]pipeline.Outcome{4: folded(3)}},
			},
		},
		{
			name: "a retried batch keeps its events instead of folding them into themselves",
			steps: []step{
				{events: []*event.Event{ev(1, "web-01", "CPU high", 0), ev(2, "web-01", "CPU high", 0)}, kept: []int64{1}, counts: []int{2},
					outcomes: map[int64]pipeline.Outcome{2: folded(1)}},
				{now: time.Second, events: []*event.Event{ev(1, "web-01", "CPU high", 0), ev(2, "web-01", "CPU high", 0)}, kept: []int64{1}, counts: []int{2},
					outcomes: map[int64]pipeline.Outcome{2: folded(1)}},
			},
		},
		{
			name: "last_seen_at does not move back for a late repeat",
			steps: []step{
				{events: []*event.Event{ev(1, "web-01", "CPU high", 10*time.Second)}, kept: []int64{1}, counts: []int{1}},
				{now: time.Minute, events: []*event.Event{ev(2, "web-01", "CPU high", 5*time.Second)}, kept: []int64{},
					outcomes: map[int64]pipeline.Outcome{2: folded(1)},
					repeats:  []store.Repeat{{EventID: 1, OccurredAt: t0.Add(9 * time.Second), OccurrenceCount: 2, LastSeenAt: t0.Add(10 * time.Second)}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDedup(Options{})
			require.NoError(t, err)
			for i, st := range tt.steps {
				b := &pipeline.Batch{Now: t0.Add(st.now), Events: st.events}
				require.NoError(t, d.Process(context.Background(), b), "step %d", i)
				require.Equal(t, st.kept, ids(b.Events), "step %d: kept", i)
				for j, e := range b.Events {
					require.Equal(t, st.counts[j], e.OccurrenceCount, "step %d: count of %d", i, e.ID)
					require.False(t, e.LastSeenAt.IsZero())
				}
				if st.outcomes == nil {
					require.Empty(t, b.Outcomes, "step %d", i)
				} else {
					require.Equal(t, st.outcomes, b.Outcomes, "step %d", i)
				}
				require.Equal(t, st.repeats, b.Repeats, "step %d: repeats", i)
			}
		})
	}
}

func TestDedupLastSeenInBatch(t *testing.T) {
	d, err := NewDedup(Options{})
	require.NoError(t, err)
	b := &pipeline.Batch{Now: t0, Events: []*event.Event{ev(1, "h", "x", 0), ev(2, "h", "x", 3*time.Second)}}
	require.NoError(t, d.Process(context.Background(), b))
	require.Equal(t, t0.Add(3*time.Second), b.Events[0].LastSeenAt)
}

func TestDedupWarm(t *testing.T) {
	d, err := NewDedup(Options{})
	require.NoError(t, err)
	stored := *ev(1, "web-01", "CPU high", 0)
	stored.OccurrenceCount = 4
	stored.LastSeenAt = t0.Add(time.Minute)
	older := *ev(0, "web-01", "CPU high", -time.Hour) // an older kept event of the same fingerprint
	d.Warm([]event.Event{older, stored})
	require.Equal(t, 1, d.Len())

	b := &pipeline.Batch{Now: t0.Add(2 * time.Minute), Events: []*event.Event{ev(5, "web-01", "CPU high", 2*time.Minute)}}
	require.NoError(t, d.Process(context.Background(), b))
	require.Empty(t, b.Events)
	require.Equal(t, []store.Repeat{{EventID: 1, OccurredAt: t0.Add(-time.Second), OccurrenceCount: 5, LastSeenAt: t0.Add(2 * time.Minute)}}, b.Repeats)

	// The warmed window opened at the stored event's received_at.
	b = &pipeline.Batch{Now: t0.Add(5 * time.Minute), Events: []*event.Event{ev(6, "web-01", "CPU high", 5*time.Minute)}}
	require.NoError(t, d.Process(context.Background(), b))
	require.Equal(t, []int64{6}, ids(b.Events))
}

func TestDedupSweepAndCap(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, err := NewDedup(Options{MaxKeys: 2, Window: time.Minute, Registerer: reg})
	require.NoError(t, err)
	run := func(now time.Duration, events ...*event.Event) *pipeline.Batch {
		b := &pipeline.Batch{Now: t0.Add(now), Events: events}
		require.NoError(t, d.Process(context.Background(), b))
		return b
	}
	run(0, ev(1, "h", "a", 0), ev(2, "h", "b", 0), ev(3, "h", "c", 0))
	require.Equal(t, 2, d.Len(), "capped at MaxKeys")
	require.Equal(t, 1.0, counterValue(t, d.m.evictions.WithLabelValues(keyed.ReasonCapacity)))
	// "a" was the oldest and was evicted: its repeat is a new event.
	b := run(time.Second, ev(4, "h", "a", time.Second))
	require.Equal(t, []int64{4}, ids(b.Events))

	require.Equal(t, 0, d.Sweep(t0.Add(59*time.Second)))
	require.Equal(t, 1, d.Sweep(t0.Add(time.Minute)), "c expires, a (seen at 1s) stays")
	require.Equal(t, 1, d.Len())
	require.Equal(t, 1.0, counterValue(t, d.m.evictions.WithLabelValues(keyed.ReasonExpired)))

	// Process sweeps by itself once per window of batch time.
	run(3*time.Minute, ev(5, "other", "z", 3*time.Minute))
	require.Equal(t, 1, d.Len(), "only z is left")

	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	require.True(t, names["reflex_noise_state_keys"])
	require.True(t, names["reflex_noise_state_evictions_total"])
}

func TestDedupMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	d, err := NewDedup(Options{Registerer: reg})
	require.NoError(t, err)
	b := &pipeline.Batch{Now: t0, Events: []*event.Event{ev(1, "h", "a", 0), ev(2, "h", "a", 0), ev(3, "h", "a", 0)}}
	require.NoError(t, d.Process(context.Background(), b))
	require.Equal(t, 2.0, counterValue(t, d.m.events.WithLabelValues("webhook")))

	// A rate limiter on the same registry registers its own series.
	_, err = NewRateLimiter(Options{Rate: 1, Registerer: reg}, d)
	require.NoError(t, err)
	_, err = reg.Gather()
	require.NoError(t, err)
}

// TestDedupConcurrent processes one host's repeats on two goroutines at
// once, as the two lanes do; run with -race.
func TestDedupConcurrent(t *testing.T) {
	d, err := NewDedup(Options{MaxKeys: 4096})
	require.NoError(t, err)
	const perG, batch = 400, 10
	var (
		mu      sync.Mutex
		kept    []*event.Event
		folded  int
		maxSeen int
	)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i += batch {
				b := &pipeline.Batch{Now: t0.Add(time.Duration(i) * time.Millisecond)}
				for j := range batch {
					b.Events = append(b.Events, ev(int64(g*perG+i+j+1), "web-01", "CPU high", 0))
				}
				require.NoError(t, d.Process(context.Background(), b))
				mu.Lock()
				kept = append(kept, b.Events...)
				folded += len(b.Outcomes)
				for _, r := range b.Repeats {
					maxSeen = max(maxSeen, r.OccurrenceCount)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, kept, 1, "one kept event for one fingerprint within the window")
	require.Equal(t, 2*perG-1, folded)
	require.Equal(t, 2*perG, max(maxSeen, kept[0].OccurrenceCount), "the final total is reported")
}
