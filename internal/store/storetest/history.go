package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// History is the part of a store that RunHistory checks: the history
// queries, over events and rule executions it writes.
type History interface {
	store.Lifecycle
	store.EventStore
	store.RuleStore
	store.HistoryStore
}

// RunHistory runs the conformance suite of store.HistoryStore, as
// RunAssets.
func RunHistory(t *testing.T, open func(t *testing.T) History) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *historyEnv)
	}{
		{"Top", testTop},
		{"Top/rules", testTopRules},
		{"Series", testSeries},
		{"EventCounts", testEventCounts},
	} {
		t.Run("History/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			e := &historyEnv{s: s, ctx: ctx, t0: base.Truncate(time.Hour).Add(-24 * time.Hour)}
			tt.fn(t, e)
		})
	}
}

type historyEnv struct {
	s   History
	ctx context.Context
	t0  time.Time // a whole UTC hour, a day before the test's now
}

// templated is an event of host at at, with a log template when id is
// not zero.
func templated(at time.Time, host string, id int64, text string) pair {
	p := mk(at, host, event.High, "disk full")
	p.ev.Data = map[string]any{}
	if id != 0 {
		p.ev.Data["template"] = map[string]any{"id": id, "text": text}
	}
	return p
}

// dataset writes the history fixture: host a has 3 events in the first
// hour (template 42), 1 in the second (template 7); host b has 2 in the
// third (no template), one of them repeated twice more.
func (e *historyEnv) dataset(t *testing.T) {
	t.Helper()
	T := e.t0
	b2 := templated(T.Add(2*time.Hour+5*time.Minute), "b", 0, "")
	b2.ev.OccurrenceCount = 3
	b := batch(
		templated(T.Add(1*time.Minute), "a", 42, "disk <*> full"),
		templated(T.Add(2*time.Minute), "a", 42, "disk <*> full"),
		templated(T.Add(3*time.Minute), "a", 42, "disk <*> full"),
		templated(T.Add(time.Hour+time.Minute), "a", 7, "connection reset by <*>"),
		templated(T.Add(2*time.Hour+time.Minute), "b", 0, ""),
		b2,
	)
	require.NoError(t, e.s.WriteBatch(e.ctx, b))
}

func testTop(t *testing.T, e *historyEnv) {
	e.dataset(t)
	T := e.t0
	for _, c := range []struct {
		name string
		q    store.TopQuery
		want []store.TopEntry
	}{
		{"hosts", store.TopQuery{By: store.DimHost}, []store.TopEntry{{Key: "a", Count: 4, Occurrences: 4}, {Key: "b", Count: 2, Occurrences: 4}}},
		{"limit", store.TopQuery{By: store.DimHost, Limit: 1}, []store.TopEntry{{Key: "a", Count: 4, Occurrences: 4}}},
		{"range", store.TopQuery{By: store.DimHost, Since: T.Add(time.Hour), Until: T.Add(3 * time.Hour)},
			[]store.TopEntry{{Key: "b", Count: 2, Occurrences: 4}, {Key: "a", Count: 1, Occurrences: 1}}},
		{"templates", store.TopQuery{By: store.DimTemplate}, []store.TopEntry{
			{Key: "42", Label: "disk <*> full", Count: 3, Occurrences: 3},
			{Key: "7", Label: "connection reset by <*>", Count: 1, Occurrences: 1}}},
		{"severity", store.TopQuery{By: store.DimSeverity}, []store.TopEntry{{Key: "high", Count: 6, Occurrences: 8}}},
		{"empty range", store.TopQuery{By: store.DimService, Since: T.Add(48 * time.Hour)}, []store.TopEntry{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.s.Top(e.ctx, c.q)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
	t.Run("unknown dimension", func(t *testing.T) {
		_, err := e.s.Top(e.ctx, store.TopQuery{By: "color"})
		require.Error(t, err)
		_, err = e.s.Top(e.ctx, store.TopQuery{By: store.DimAll})
		require.Error(t, err)
	})
}

func testTopRules(t *testing.T, e *historyEnv) {
	T := e.t0.Truncate(2 * time.Hour) // a bucket of the 2h series below
	cpu, err := e.s.CreateTriggerRule(e.ctx, store.TriggerRule{Name: "High CPU", Conditions: json.RawMessage(`{}`), Active: true})
	require.NoError(t, err)
	disk, err := e.s.CreateTriggerRule(e.ctx, store.TriggerRule{Name: "Disk full", Conditions: json.RawMessage(`{}`), Active: true})
	require.NoError(t, err)
	for i, r := range []int64{cpu.ID, disk.ID, disk.ID, disk.ID, cpu.ID} {
		_, err := e.s.InsertRuleExecution(e.ctx, store.RuleExecution{
			TriggerRuleID: r, TriggeringEventID: int64(100 + i), TriggeringRawEventID: int64(100 + i), Status: "completed", StartedAt: T.Add(time.Duration(i) * time.Hour),
		})
		require.NoError(t, err)
	}
	got, err := e.s.Top(e.ctx, store.TopQuery{By: store.DimRule})
	require.NoError(t, err)
	require.Equal(t, []store.TopEntry{
		{Key: itoa(disk.ID), Label: "Disk full", Count: 3, Occurrences: 3},
		{Key: itoa(cpu.ID), Label: "High CPU", Count: 2, Occurrences: 2},
	}, got)

	// The last two hours only: one of each; ties by key.
	got, err = e.s.Top(e.ctx, store.TopQuery{By: store.DimRule, Since: T.Add(3 * time.Hour)})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, int64(1), got[0].Count)

	rows, err := e.s.Series(e.ctx, store.SeriesQuery{By: store.DimRule, Since: T, Until: T.Add(5 * time.Hour), Interval: 2 * time.Hour, Keys: []string{itoa(disk.ID)}})
	require.NoError(t, err)
	require.Equal(t, []store.SeriesRow{
		{Key: itoa(disk.ID), Start: T, Count: 1, Occurrences: 1},
		{Key: itoa(disk.ID), Start: T.Add(2 * time.Hour), Count: 2, Occurrences: 2},
	}, floorRows(rows))
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// floorRows returns rows with their start times in UTC (as the stores
// return them already) for comparison.
func floorRows(rows []store.SeriesRow) []store.SeriesRow {
	for i := range rows {
		rows[i].Start = rows[i].Start.UTC()
	}
	return rows
}

func testSeries(t *testing.T, e *historyEnv) {
	e.dataset(t)
	T := e.t0
	day := T.Truncate(24 * time.Hour)
	for _, c := range []struct {
		name string
		q    store.SeriesQuery
		want []store.SeriesRow
	}{
		{"hosts by hour", store.SeriesQuery{By: store.DimHost, Since: T, Until: T.Add(24 * time.Hour), Interval: time.Hour}, []store.SeriesRow{
			{Key: "a", Start: T, Count: 3, Occurrences: 3},
			{Key: "a", Start: T.Add(time.Hour), Count: 1, Occurrences: 1},
			{Key: "b", Start: T.Add(2 * time.Hour), Count: 2, Occurrences: 4},
		}},
		{"all by hour", store.SeriesQuery{Since: T, Until: T.Add(24 * time.Hour), Interval: time.Hour}, []store.SeriesRow{
			{Key: "", Start: T, Count: 3, Occurrences: 3},
			{Key: "", Start: T.Add(time.Hour), Count: 1, Occurrences: 1},
			{Key: "", Start: T.Add(2 * time.Hour), Count: 2, Occurrences: 4},
		}},
		{"5 minutes", store.SeriesQuery{By: store.DimHost, Keys: []string{"b"}, Since: T, Until: T.Add(24 * time.Hour), Interval: 5 * time.Minute}, []store.SeriesRow{
			{Key: "b", Start: T.Add(2 * time.Hour), Count: 1, Occurrences: 1},
			{Key: "b", Start: T.Add(2*time.Hour + 5*time.Minute), Count: 1, Occurrences: 3},
		}},
		{"keys", store.SeriesQuery{By: store.DimTemplate, Keys: []string{"7"}, Since: T, Until: T.Add(24 * time.Hour), Interval: time.Hour}, []store.SeriesRow{
			{Key: "7", Start: T.Add(time.Hour), Count: 1, Occurrences: 1},
		}},
		{"range", store.SeriesQuery{By: store.DimHost, Since: T.Add(2 * time.Minute), Until: T.Add(2*time.Hour + 2*time.Minute), Interval: time.Hour}, []store.SeriesRow{
			{Key: "a", Start: T, Count: 2, Occurrences: 2},
			{Key: "a", Start: T.Add(time.Hour), Count: 1, Occurrences: 1},
			{Key: "b", Start: T.Add(2 * time.Hour), Count: 1, Occurrences: 1},
		}},
		{"no keys", store.SeriesQuery{By: store.DimHost, Keys: []string{}, Since: T, Until: T.Add(24 * time.Hour), Interval: time.Hour}, []store.SeriesRow{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.s.Series(e.ctx, c.q)
			require.NoError(t, err)
			require.Equal(t, c.want, floorRows(got))
		})
	}
	t.Run("days are UTC days", func(t *testing.T) {
		got, err := e.s.Series(e.ctx, store.SeriesQuery{Since: day, Until: day.Add(48 * time.Hour), Interval: 24 * time.Hour})
		require.NoError(t, err)
		var total int64
		for _, r := range got {
			require.Equal(t, r.Start.Truncate(24*time.Hour), r.Start)
			require.Equal(t, "", r.Key)
			total += r.Count
		}
		require.Equal(t, int64(6), total)
	})
	t.Run("bad queries", func(t *testing.T) {
		_, err := e.s.Series(e.ctx, store.SeriesQuery{Since: T, Until: T.Add(time.Hour)})
		require.Error(t, err, "no interval")
		_, err = e.s.Series(e.ctx, store.SeriesQuery{Since: T, Until: T.Add(time.Hour), Interval: 1500 * time.Millisecond})
		require.Error(t, err, "fractional seconds")
		_, err = e.s.Series(e.ctx, store.SeriesQuery{Interval: time.Hour})
		require.Error(t, err, "no range")
		_, err = e.s.Series(e.ctx, store.SeriesQuery{By: "color", Since: T, Until: T.Add(time.Hour), Interval: time.Hour})
		require.Error(t, err)
	})
}

func testEventCounts(t *testing.T, e *historyEnv) {
	e.dataset(t)
	T := e.t0
	// reflex's own events about a host (an anomaly of its rate, a new log
	// pattern) are not events of its rate.
	own := mk(T.Add(4*time.Minute), "a", event.High, "anomaly in rate:host:a")
	own.ev.SourceType, own.raw.SourceType = event.SourceReflex, event.SourceReflex
	require.NoError(t, e.s.WriteBatch(e.ctx, batch(own)))
	got, err := e.s.EventCounts(e.ctx, "a", []store.TimeRange{
		{Since: T, Until: T.Add(time.Hour)},
		{Since: T.Add(time.Hour), Until: T.Add(2 * time.Hour)},
		{Since: T.Add(3 * time.Hour), Until: T.Add(4 * time.Hour)},
		{Since: T.Add(2 * time.Minute), Until: T.Add(3 * time.Minute)}, // since inclusive, until exclusive
	})
	require.NoError(t, err)
	require.Equal(t, []int64{3, 1, 0, 1}, got)

	got, err = e.s.EventCounts(e.ctx, "b", []store.TimeRange{{Since: T, Until: T.Add(24 * time.Hour)}})
	require.NoError(t, err)
	require.Equal(t, []int64{2}, got, "repeats count once")

	got, err = e.s.EventCounts(e.ctx, "nobody", []store.TimeRange{{Since: T, Until: T.Add(24 * time.Hour)}})
	require.NoError(t, err)
	require.Equal(t, []int64{0}, got)

	got, err = e.s.EventCounts(e.ctx, "a", nil)
	require.NoError(t, err)
	require.Empty(t, got)
}

// BenchHistory fills s with events of 1,000 hosts spread over the 7 days
// before now (Workload's, half of them with one of 500 log templates),
// then measures the history queries of the API and the context analyzer:
// top hosts and templates of the last 24 hours, the hourly series of the
// 10 noisiest hosts over 7 days, and one host's event counts of 8
// ranges (the context's rate).
func BenchHistory(b *testing.B, s History, events int) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour)
	const size = 1000
	batches := max(events/size, 1)
	w := Workload{Hosts: 1000}
	for i := range batches {
		w.Now = now.Add(-7 * 24 * time.Hour).Add(time.Duration(i) * 7 * 24 * time.Hour / time.Duration(batches))
		bt := w.Next(size)
		for j := range bt.New {
			if j%2 == 0 {
				id := int64(j*7919) % 500
				bt.New[j].Data["template"] = map[string]any{"id": id, "text": fmt.Sprintf("template %d <*>", id)}
			}
		}
		require.NoError(b, s.WriteBatch(ctx, bt))
	}
	day := store.TopQuery{Since: now.Add(-24 * time.Hour), Until: now, Limit: 10}
	b.Run("top hosts 24h", func(b *testing.B) {
		q := day
		q.By = store.DimHost
		for b.Loop() {
			_, err := s.Top(ctx, q)
			require.NoError(b, err)
		}
	})
	b.Run("top templates 24h", func(b *testing.B) {
		q := day
		q.By = store.DimTemplate
		for b.Loop() {
			_, err := s.Top(ctx, q)
			require.NoError(b, err)
		}
	})
	top, err := s.Top(ctx, store.TopQuery{Since: now.Add(-7 * 24 * time.Hour), Until: now, By: store.DimHost, Limit: 10})
	require.NoError(b, err)
	keys := make([]string, len(top))
	for i, e := range top {
		keys[i] = e.Key
	}
	b.Run("series of 10 hosts 7d 1h", func(b *testing.B) {
		for b.Loop() {
			_, err := s.Series(ctx, store.SeriesQuery{Since: now.Add(-7 * 24 * time.Hour), Until: now, Interval: time.Hour, By: store.DimHost, Keys: keys})
			require.NoError(b, err)
		}
	})
	b.Run("event counts of a host", func(b *testing.B) {
		ranges := make([]store.TimeRange, 8)
		for k := range ranges {
			end := now.Add(-time.Duration(k) * 24 * time.Hour)
			ranges[k] = store.TimeRange{Since: end.Add(-5 * time.Minute), Until: end}
		}
		for b.Loop() {
			_, err := s.EventCounts(ctx, keys[0], ranges)
			require.NoError(b, err)
		}
	})
}
