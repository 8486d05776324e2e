package monitor

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/derived"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/processed"
)

type recorder struct {
	mu  sync.Mutex
	evs []derived.Event
}

func (r *recorder) Emit(e derived.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	return true
}

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func rec(id int64, at time.Time, host string, md map[string]any) processed.Record {
	ev := &event.Event{ID: id, RawEventID: id, EventType: "heartbeat", SourceType: event.SourceWebhook, SourceHost: host, SourceService: "api", OccurredAt: at}
	if md != nil {
		ev.Data = map[string]any{"metadata": md}
	}
	return processed.Record{Kind: processed.KindNew, RawEventID: id, EventID: id, Event: ev}
}

func TestMonitorRateBurst(t *testing.T) {
	r := &recorder{}
	now := t0.Add(24 * time.Hour)
	m, err := New(Options{Sink: r, Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := context.Background()
	id := int64(0)
	post := func(at time.Time, host string) {
		id++
		require.NoError(t, m.Handle(ctx, []processed.Record{rec(id, at, host, nil)}))
	}
	// Four to six events a minute on db-01 for two hours.
	for i := range 120 {
		for k := range 4 + i%3 {
			post(t0.Add(time.Duration(i)*time.Minute+time.Duration(k)*10*time.Second), "db-01")
		}
	}
	require.Empty(t, r.evs)
	st, ok := m.Rate("db-01")
	require.True(t, ok)
	require.Equal(t, 5.0, st.Current) // minute 118: 4 + 118%3
	require.Equal(t, t0.Add(118*time.Minute), st.At)
	require.Less(t, st.ExpectedLow, 5.0)
	require.Greater(t, st.ExpectedHigh, 5.0)
	// A burst of 100 in minute 120, closed by an event of minute 121.
	for k := range 100 {
		post(t0.Add(120*time.Minute+time.Duration(k)*100*time.Millisecond), "db-01")
	}
	post(t0.Add(121*time.Minute), "db-01")
	var got []derived.Event
	for _, e := range r.evs {
		if e.Metadata["series"] == "rate:host:db-01" {
			got = append(got, e)
		}
	}
	require.Len(t, got, 1, "%+v", r.evs)
	e := got[0]
	require.Equal(t, derived.TypeAnomaly, e.Type)
	require.Equal(t, "db-01", e.Host)
	require.Equal(t, 100.0, e.Metadata["value"])
	require.Equal(t, "1m0s", e.Metadata["interval"])
	require.GreaterOrEqual(t, e.Metadata["anomaly_score"], 0.8)
	require.Less(t, e.Metadata["expected_high"], 100.0)
	st, _ = m.Rate("db-01")
	require.Equal(t, 100.0, st.Current)
	_, ok = m.Rate("nope")
	require.False(t, ok)
}

func TestMonitorMetricAndNoFeedback(t *testing.T) {
	r := &recorder{}
	m, err := New(Options{Sink: r, Now: func() time.Time { return t0.Add(48 * time.Hour) }})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 200 {
		v := json.Number([]string{"41", "42", "43", "42"}[i%4])
		require.NoError(t, m.Handle(ctx, []processed.Record{rec(int64(i+1), t0.Add(time.Duration(i)*time.Minute), "web-01", map[string]any{"cpu_usage": v, "name": "x"})}))
	}
	require.Empty(t, r.evs)
	require.NoError(t, m.Handle(ctx, []processed.Record{rec(500, t0.Add(200*time.Minute), "web-01", map[string]any{"cpu_usage": json.Number("97.5")})}))
	require.Len(t, r.evs, 1)
	require.Equal(t, "metric:web-01:cpu_usage", r.evs[0].Metadata["series"])
	require.Equal(t, 97.5, r.evs[0].Metadata["value"])

	// Derived events are not counted.
	ev := rec(501, t0.Add(201*time.Minute), "web-01", nil)
	ev.Event.SourceType = event.SourceReflex
	ev.Event.EventType = derived.TypeAnomaly
	require.NoError(t, m.Handle(ctx, []processed.Record{ev}))
	m.mu.Lock()
	_, counted := m.series["rate:type:anomaly"]
	m.mu.Unlock()
	require.False(t, counted)
}

func TestMonitorMaxSeries(t *testing.T) {
	m, err := New(Options{Sink: &recorder{}, MaxSeries: 10})
	require.NoError(t, err)
	for i := range 50 {
		require.NoError(t, m.Handle(context.Background(), []processed.Record{rec(int64(i+1), t0, "h"+string(rune('a'+i)), nil)}))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Len(t, m.series, 10)
	require.Equal(t, 10, m.lru.Len())
}

func TestMonitorOptions(t *testing.T) {
	_, err := New(Options{})
	require.Error(t, err)
}

func TestMonitorRateRangeIsNeverNegative(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	m, err := New(Options{Sink: &recorder{}, Now: func() time.Time { return now }})
	require.NoError(t, err)
	// One event every ten minutes: the series is mostly zeros, and its
	// expected range around a mean near zero must not go below it.
	for i := range 60 {
		require.NoError(t, m.Handle(context.Background(), []processed.Record{rec(int64(i+1), t0.Add(time.Duration(i)*10*time.Minute), "quiet-01", nil)}))
	}
	st, ok := m.Rate("quiet-01")
	require.True(t, ok)
	require.Zero(t, st.Current, "the last closed minute had no event")
	require.GreaterOrEqual(t, st.ExpectedLow, 0.0)
	require.Greater(t, st.ExpectedHigh, 0.0)
}

func TestMonitorObserve(t *testing.T) {
	r := &recorder{}
	m, err := New(Options{Sink: r, MaxSeries: 6, Now: func() time.Time { return t0.Add(48 * time.Hour) }})
	require.NoError(t, err)
	name := `node_load1{instance="web-01:9100",job="node"}`
	for i := range 200 {
		m.Observe("web-01", name, t0.Add(time.Duration(i)*15*time.Second), []float64{0.9, 1.0, 1.1, 1.0}[i%4])
	}
	require.Empty(t, r.evs)
	m.Observe("web-01", name, t0.Add(200*15*time.Second), 40)
	require.Len(t, r.evs, 1)
	e := r.evs[0]
	require.Equal(t, "sample:web-01:"+name, e.Metadata["series"])
	require.Equal(t, "web-01", e.Host)
	require.Equal(t, 40.0, e.Metadata["value"])

	// Metric series take at most half of MaxSeries: a fourth is skipped,
	// and event series still find room.
	for i := range 5 {
		m.Observe("web-01", "m"+string(rune('a'+i)), t0, 1)
	}
	require.NoError(t, m.Handle(context.Background(), []processed.Record{rec(1, t0, "db-01", nil)}))
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Equal(t, 3, m.samples)
	_, ok := m.series["rate:host:db-01"]
	require.True(t, ok)
	require.LessOrEqual(t, len(m.series), 6)
}
