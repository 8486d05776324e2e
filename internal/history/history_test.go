package history

import (
	"cmp"
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/store"
)

func TestTrendOf(t *testing.T) {
	ramp := make([]float64, 10)
	for i := range ramp {
		ramp[i] = float64(i + 1)
	}
	spike := []float64{5, 5, 5, 5, 5, 500, 5, 5, 5, 5}
	noisyClimb := []float64{3, 9, 4, 10, 6, 12, 8, 14, 10, 16, 12, 18}
	for _, c := range []struct {
		name        string
		y           []float64
		s           int
		z, p, slope float64
		dir         string
	}{
		// var(S) = 10*9*25/18 = 125; Z = (45-1)/sqrt(125).
		{"ramp", ramp, 45, 44 / math.Sqrt(125), math.Erfc(44 / math.Sqrt(125) / math.Sqrt2), 1, Rising},
		{"falling", reversed(ramp), -45, -44 / math.Sqrt(125), math.Erfc(44 / math.Sqrt(125) / math.Sqrt2), -1, Falling},
		// S = 4, var = 4*3*13/18; not significant.
		{"short", []float64{1, 3, 2, 4}, 4, 3 / math.Sqrt(26.0/3), math.Erfc(3 / math.Sqrt(26.0/3) / math.Sqrt2), 0.8, Stable},
		// Ties: S = 2, var = (3*2*11 - 2*1*9)/18 = 8/3.
		{"ties", []float64{1, 1, 2}, 2, 1 / math.Sqrt(8.0/3), math.Erfc(1 / math.Sqrt(8.0/3) / math.Sqrt2), 0.5, Stable},
		{"constant", []float64{4, 4, 4, 4, 4}, 0, 0, 1, 0, Stable},
		{"two points", []float64{1, 2}, 1, 0, 1, 1, Stable},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := TrendOf(c.y)
			require.Equal(t, c.s, tr.S)
			require.InDelta(t, c.z, tr.Z, 1e-9)
			require.InDelta(t, c.p, tr.PValue, 1e-9)
			require.InDelta(t, c.slope, tr.Slope, 1e-9)
			require.Equal(t, c.dir, tr.Direction)
			require.Equal(t, c.p < Alpha, tr.Significant)
			require.Equal(t, MethodMannKendall, tr.Method)
			require.Equal(t, len(c.y), tr.Points)
		})
	}
	t.Run("one burst is no trend", func(t *testing.T) {
		tr := TrendOf(spike)
		require.False(t, tr.Significant)
		require.Equal(t, Stable, tr.Direction)
	})
	t.Run("a noisy climb is a trend", func(t *testing.T) {
		tr := TrendOf(noisyClimb)
		require.True(t, tr.Significant, "p=%g", tr.PValue)
		require.Equal(t, Rising, tr.Direction)
		require.Greater(t, tr.Slope, 0.0)
	})
	t.Run("empty", func(t *testing.T) {
		tr := TrendOf(nil)
		require.Equal(t, Stable, tr.Direction)
		require.Equal(t, 1.0, tr.PValue)
	})
}

func reversed(y []float64) []float64 {
	out := slices.Clone(y)
	slices.Reverse(out)
	return out
}

// fakeStore counts events (a key and a time each) as the SQL stores do.
type fakeStore struct {
	events []fakeEvent
}

type fakeEvent struct {
	key string
	at  time.Time
}

func (f *fakeStore) Top(_ context.Context, q store.TopQuery) ([]store.TopEntry, error) {
	counts := map[string]int64{}
	for _, e := range f.events {
		if !e.at.Before(q.Since) && e.at.Before(q.Until) {
			counts[e.key]++
		}
	}
	out := []store.TopEntry{}
	for k, n := range counts {
		out = append(out, store.TopEntry{Key: k, Count: n, Occurrences: n})
	}
	slices.SortFunc(out, func(a, b store.TopEntry) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key)) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (f *fakeStore) Series(_ context.Context, q store.SeriesQuery) ([]store.SeriesRow, error) {
	type k struct {
		key   string
		start time.Time
	}
	counts := map[k]int64{}
	for _, e := range f.events {
		if e.at.Before(q.Since) || !e.at.Before(q.Until) || (q.Keys != nil && !slices.Contains(q.Keys, e.key)) {
			continue
		}
		counts[k{e.key, floor(e.at, q.Interval)}]++
	}
	out := []store.SeriesRow{}
	for key, n := range counts {
		out = append(out, store.SeriesRow{Key: key.key, Start: key.start, Count: n, Occurrences: n})
	}
	slices.SortFunc(out, func(a, b store.SeriesRow) int { return cmp.Or(cmp.Compare(a.Key, b.Key), a.Start.Compare(b.Start)) })
	return out, nil
}

func (f *fakeStore) add(key string, at time.Time, n int) {
	for range n {
		f.events = append(f.events, fakeEvent{key, at})
	}
}

func TestSeriesDenseAndPartial(t *testing.T) {
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f := &fakeStore{}
	f.add("a", day.Add(10*time.Minute), 2)
	f.add("a", day.Add(3*time.Hour+time.Minute), 1)
	f.add("b", day.Add(2*time.Hour), 4)
	a, err := New(f)
	require.NoError(t, err)

	// From 00:30 to 04:15: buckets 00, 01, 02, 03, 04; the first and the
	// last are partial.
	got, err := a.Series(t.Context(), SeriesRequest{Since: day.Add(30 * time.Minute), Until: day.Add(4*time.Hour + 15*time.Minute), Interval: time.Hour, By: store.DimHost})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "a", got[0].Key)
	require.Equal(t, int64(1), got[0].Count, "the 00:10 events are before since")
	require.Len(t, got[0].Points, 5)
	require.True(t, got[0].Points[0].Partial)
	require.True(t, got[0].Points[4].Partial)
	for _, p := range got[0].Points[1:4] {
		require.False(t, p.Partial)
	}
	require.Equal(t, []int64{0, 0, 0, 1, 0}, counts(got[0].Points))
	require.Equal(t, 3, got[0].Trend.Points, "whole buckets only")
	require.Equal(t, "b", got[1].Key)
	require.Equal(t, []int64{0, 0, 4, 0, 0}, counts(got[1].Points))

	// Keys keep their order, and a key without events has zeros.
	got, err = a.Series(t.Context(), SeriesRequest{Since: day, Until: day.Add(2 * time.Hour), Interval: time.Hour, By: store.DimHost, Keys: []string{"zz", "a"}})
	require.NoError(t, err)
	require.Equal(t, "zz", got[0].Key)
	require.Equal(t, []int64{0, 0}, counts(got[0].Points))
	require.Equal(t, []int64{2, 0}, counts(got[1].Points))
	require.False(t, got[1].Points[1].Partial)

	_, err = a.Series(t.Context(), SeriesRequest{Since: day, Until: day.Add(30 * 24 * time.Hour), Interval: 5 * time.Minute, By: store.DimHost})
	require.ErrorIs(t, err, ErrTooManyBuckets)
}

func counts(pts []Point) []int64 {
	out := make([]int64, len(pts))
	for i, p := range pts {
		out[i] = p.Count
	}
	return out
}

func TestTop(t *testing.T) {
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f := &fakeStore{}
	for h := range 12 {
		f.add("climbing", day.Add(time.Duration(h)*time.Hour), h+1)
		f.add("flat", day.Add(time.Duration(h)*time.Hour), 5)
	}
	a, err := New(f)
	require.NoError(t, err)
	got, err := a.Top(t.Context(), TopRequest{Since: day, Until: day.Add(12 * time.Hour), By: store.DimHost, Limit: 5, Interval: time.Hour})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "climbing", got[0].Key) // 78 events
	require.Equal(t, int64(78), got[0].Count)
	require.Equal(t, Rising, got[0].Trend.Direction)
	require.InDelta(t, 1.0, got[0].Trend.Slope, 1e-9)
	require.Equal(t, "flat", got[1].Key)
	require.Equal(t, Stable, got[1].Trend.Direction)

	got, err = a.Top(t.Context(), TopRequest{Since: day, Until: day.Add(12 * time.Hour), By: store.DimHost, Limit: 1})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Nil(t, got[0].Points, "no interval, no series")
	require.Nil(t, got[0].Trend)
}

func TestCompare(t *testing.T) {
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f := &fakeStore{}
	// Previous day, then the current day.
	f.add("steady", until.Add(-36*time.Hour), 10)
	f.add("steady", until.Add(-12*time.Hour), 10)
	f.add("doubled", until.Add(-30*time.Hour), 20)
	f.add("doubled", until.Add(-6*time.Hour), 40)
	f.add("gone", until.Add(-40*time.Hour), 7)
	f.add("new", until.Add(-time.Hour), 3)
	f.add("older", until.Add(-50*time.Hour), 100) // before both periods
	for h := range 24 {
		f.add("climbing", until.Add(-24*time.Hour+time.Duration(h)*time.Hour), h)
	}
	a, err := New(f)
	require.NoError(t, err)
	cmpr, err := a.Compare(t.Context(), CompareRequest{Until: until, Range: 24 * time.Hour, By: store.DimService, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, "1h", cmpr.Interval, "24 buckets")
	require.Equal(t, until.Add(-24*time.Hour), cmpr.Since)
	require.Equal(t, until.Add(-48*time.Hour), cmpr.PreviousSince)
	var keys []string
	for _, g := range cmpr.Groups {
		keys = append(keys, g.Key)
	}
	// By |change|: climbing +276, doubled +20, gone -7, new +3, steady 0.
	require.Equal(t, []string{"climbing", "doubled", "gone", "new", "steady"}, keys)
	g := cmpr.Groups[1]
	require.Equal(t, int64(40), g.Current)
	require.Equal(t, int64(20), g.Previous)
	require.Equal(t, int64(20), g.Change)
	require.NotNil(t, g.ChangePercent)
	require.InDelta(t, 100.0, *g.ChangePercent, 1e-9)
	require.Equal(t, int64(-7), cmpr.Groups[2].Change)
	require.InDelta(t, -100.0, *cmpr.Groups[2].ChangePercent, 1e-9)
	require.Nil(t, cmpr.Groups[3].ChangePercent, "no previous count")
	require.Equal(t, Rising, cmpr.Groups[0].Trend.Direction)
	require.Equal(t, 24, cmpr.Groups[0].Trend.Points)
	require.False(t, cmpr.Truncated)

	cmpr, err = a.Compare(t.Context(), CompareRequest{Until: until, Range: 24 * time.Hour, By: store.DimService, Limit: 2, Interval: 5 * time.Minute})
	require.NoError(t, err)
	require.Len(t, cmpr.Groups, 2)
	require.Equal(t, "5m", cmpr.Interval)
}

func TestAutoInterval(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{time.Hour, "5m"}, {16 * time.Hour, "5m"}, {24 * time.Hour, "1h"}, {7 * 24 * time.Hour, "1h"}, {30 * 24 * time.Hour, "1d"}, {400 * 24 * time.Hour, "1d"}} {
		name, _ := AutoInterval(c.d)
		require.Equal(t, c.want, name, c.d)
	}
}

func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 36 * time.Hour: "36h", 2 * time.Second: "2s"} {
		require.Equal(t, want, Short(d))
	}
}

// BenchmarkTrendOf is the trend of the longest series (1,000 buckets).
func BenchmarkTrendOf(b *testing.B) {
	y := make([]float64, MaxBuckets)
	for i := range y {
		y[i] = float64((i*7919)%53 + i/10)
	}
	for b.Loop() {
		_ = TrendOf(y)
	}
}
