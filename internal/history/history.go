package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// Store is the part of store.Store the analyzer reads. It must be safe for
// concurrent use.
type Store interface {
	Top(ctx context.Context, q store.TopQuery) ([]store.TopEntry, error)
	Series(ctx context.Context, q store.SeriesQuery) ([]store.SeriesRow, error)
}

var _ Store = store.Store(nil)

// Bounds of the analysis.
const (
	// MaxBuckets bounds the buckets of one series (range / interval).
	MaxBuckets = 1000
	// MaxSeries bounds the series of one answer.
	MaxSeries = 100
	// MaxGroups bounds the groups a comparison reads from each period;
	// past it Comparison.Truncated is set.
	MaxGroups = store.MaxTopLimit
	// MaxCompareLimit bounds CompareRequest.Limit.
	MaxCompareLimit = 1000
	// autoBuckets is the most buckets an automatic interval gives.
	autoBuckets = 200
)

// Intervals are the intervals of the API, shortest first.
var Intervals = []struct {
	Name string
	D    time.Duration
}{{"5m", 5 * time.Minute}, {"1h", time.Hour}, {"1d", 24 * time.Hour}}

// ErrTooManyBuckets is returned for a range that an interval cuts into
// more than MaxBuckets buckets.
var ErrTooManyBuckets = errors.New("history: too many buckets")

// Point is the count of one bucket, [Start, Start+interval). Partial marks
// a bucket that the range covers only in part (the first, when the range
// starts within it, and the last, when it ends within it): its count is of
// that part, and the trend leaves it out.
type Point struct {
	Start       time.Time `json:"start"`
	Count       int64     `json:"count"`
	Occurrences int64     `json:"occurrences"`
	Partial     bool      `json:"partial,omitempty"`
}

// Series is one key's counts over the range: in total, per bucket and its
// trend over the whole buckets. Label is the template's text or the rule's
// name where the dimension has one.
type Series struct {
	Key         string  `json:"key"`
	Label       string  `json:"label,omitempty"`
	Count       int64   `json:"count"`
	Occurrences int64   `json:"occurrences"`
	Points      []Point `json:"points,omitempty"`
	Trend       *Trend  `json:"trend,omitempty"`
}

// Analyzer answers the historical analysis from a Store. It is safe for
// concurrent use.
type Analyzer struct {
	store Store
}

// New returns an analyzer over s.
func New(s Store) (*Analyzer, error) {
	if s == nil {
		return nil, errors.New("history: new: the store is required")
	}
	return &Analyzer{store: s}, nil
}

// CheckBuckets returns ErrTooManyBuckets (wrapped, saying how many) when
// interval cuts [since, until) into more than MaxBuckets buckets.
func CheckBuckets(since, until time.Time, interval time.Duration) error {
	if n := bucketCount(since, until, interval); n > MaxBuckets {
		return fmt.Errorf("%w: %d buckets of %s, at most %d", ErrTooManyBuckets, n, Short(interval), MaxBuckets)
	}
	return nil
}

func bucketCount(since, until time.Time, interval time.Duration) int64 {
	first := floor(since, interval)
	return int64((until.Sub(first) + interval - 1) / interval)
}

// AutoInterval is the shortest of Intervals that cuts a range of length d
// into at most 200 buckets (1d for longer ranges).
func AutoInterval(d time.Duration) (string, time.Duration) {
	for _, iv := range Intervals {
		if d/iv.D <= autoBuckets {
			return iv.Name, iv.D
		}
	}
	last := Intervals[len(Intervals)-1]
	return last.Name, last.D
}

// floor is the start of t's bucket: a multiple of interval since the Unix
// epoch, as the store buckets.
func floor(t time.Time, interval time.Duration) time.Time {
	us, iv := t.UnixMicro(), interval.Microseconds()
	return time.UnixMicro(us - ((us%iv)+iv)%iv).UTC()
}

// SeriesRequest asks for the series of keys of By over [Since, Until) per
// Interval. Nil Keys means every key with events.
type SeriesRequest struct {
	Since, Until time.Time
	Interval     time.Duration
	By           store.Dimension
	Keys         []string
}

// Series returns the series of r.Keys in their order (for nil Keys, of
// every key with events, by key), each with a point for every bucket
// (zeros included) and its trend.
func (a *Analyzer) Series(ctx context.Context, r SeriesRequest) ([]Series, error) {
	if err := CheckBuckets(r.Since, r.Until, r.Interval); err != nil {
		return nil, err
	}
	if r.Keys != nil && len(r.Keys) == 0 {
		return []Series{}, nil
	}
	rows, err := a.store.Series(ctx, store.SeriesQuery{Since: r.Since, Until: r.Until, Interval: r.Interval, By: r.By, Keys: r.Keys})
	if err != nil {
		return nil, err
	}
	byKey := map[string][]store.SeriesRow{}
	keys := r.Keys
	for _, row := range rows {
		if _, ok := byKey[row.Key]; !ok && r.Keys == nil {
			keys = append(keys, row.Key)
		}
		byKey[row.Key] = append(byKey[row.Key], row)
	}
	out := make([]Series, 0, len(keys))
	for _, k := range keys {
		s := Series{Key: k}
		s.Points = dense(byKey[k], r.Since, r.Until, r.Interval)
		for _, p := range s.Points {
			s.Count += p.Count
			s.Occurrences += p.Occurrences
		}
		tr := trendOf(s.Points)
		s.Trend = &tr
		out = append(out, s)
	}
	return out, nil
}

// dense lays rows (of one key, by start) over every bucket of [since,
// until).
func dense(rows []store.SeriesRow, since, until time.Time, interval time.Duration) []Point {
	first := floor(since, interval)
	n := bucketCount(since, until, interval)
	pts := make([]Point, n)
	for i := range pts {
		start := first.Add(time.Duration(i) * interval)
		pts[i] = Point{Start: start, Partial: start.Before(since) || start.Add(interval).After(until)}
	}
	for _, row := range rows {
		i := int64(row.Start.Sub(first) / interval)
		if i >= 0 && i < n {
			pts[i].Count += row.Count
			pts[i].Occurrences += row.Occurrences
		}
	}
	return pts
}

// trendOf is the trend of the whole buckets of pts.
func trendOf(pts []Point) Trend {
	y := make([]float64, 0, len(pts))
	for _, p := range pts {
		if !p.Partial {
			y = append(y, float64(p.Count))
		}
	}
	return TrendOf(y)
}

// TopRequest asks for the Limit noisiest keys of By over [Since, Until),
// with their series when Interval is set.
type TopRequest struct {
	Since, Until time.Time
	By           store.Dimension
	Limit        int // 1..MaxSeries
	Interval     time.Duration
}

// Top returns the noisiest keys of r.By, noisiest first, each with its
// points and trend when r.Interval is set.
func (a *Analyzer) Top(ctx context.Context, r TopRequest) ([]Series, error) {
	if r.Interval > 0 {
		if err := CheckBuckets(r.Since, r.Until, r.Interval); err != nil {
			return nil, err
		}
	}
	limit := min(max(r.Limit, 1), MaxSeries)
	top, err := a.store.Top(ctx, store.TopQuery{Since: r.Since, Until: r.Until, By: r.By, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]Series, len(top))
	keys := make([]string, len(top))
	for i, e := range top {
		out[i] = Series{Key: e.Key, Label: e.Label, Count: e.Count, Occurrences: e.Occurrences}
		keys[i] = e.Key
	}
	if r.Interval <= 0 || len(top) == 0 {
		return out, nil
	}
	series, err := a.Series(ctx, SeriesRequest{Since: r.Since, Until: r.Until, Interval: r.Interval, By: r.By, Keys: keys})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Points, out[i].Trend = series[i].Points, series[i].Trend
	}
	return out, nil
}

// CompareRequest compares each key of By in [Until-Range, Until) with the
// period of the same length before it. Interval is the bucket width of
// the trend (zero: AutoInterval of Range).
type CompareRequest struct {
	Until    time.Time
	Range    time.Duration
	By       store.Dimension
	Limit    int // 1..MaxCompareLimit
	Interval time.Duration
}

// Group is one key of a comparison: its count in the current period and
// in the previous one, the change (Current - Previous) and the change in
// percent of Previous (nil when Previous is 0), and the trend of the
// current period.
type Group struct {
	Key           string   `json:"key"`
	Current       int64    `json:"current"`
	Previous      int64    `json:"previous"`
	Change        int64    `json:"change"`
	ChangePercent *float64 `json:"change_percent"`
	Trend         Trend    `json:"trend"`
}

// Comparison is the answer of Compare: the periods, the interval of the
// trends, and the groups with the largest changes first (by the absolute
// change, then the current count, then key). Truncated reports that a
// period had more than MaxGroups keys: the least noisy were left out.
type Comparison struct {
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	PreviousSince time.Time `json:"previous_since"`
	Interval      string    `json:"interval"`
	Groups        []Group   `json:"groups"`
	Truncated     bool      `json:"truncated"`
}

// Compare compares the current period with the previous one.
func (a *Analyzer) Compare(ctx context.Context, r CompareRequest) (Comparison, error) {
	since, prev := r.Until.Add(-r.Range), r.Until.Add(-2*r.Range)
	name, iv := AutoInterval(r.Range)
	if r.Interval > 0 {
		iv = r.Interval
		name = Short(r.Interval)
		for _, x := range Intervals {
			if x.D == iv {
				name = x.Name
			}
		}
	}
	out := Comparison{Since: since, Until: r.Until, PreviousSince: prev, Interval: name, Groups: []Group{}}
	if err := CheckBuckets(since, r.Until, iv); err != nil {
		return out, err
	}
	cur, err := a.store.Top(ctx, store.TopQuery{Since: since, Until: r.Until, By: r.By, Limit: MaxGroups})
	if err != nil {
		return out, err
	}
	old, err := a.store.Top(ctx, store.TopQuery{Since: prev, Until: since, By: r.By, Limit: MaxGroups})
	if err != nil {
		return out, err
	}
	out.Truncated = len(cur) >= MaxGroups || len(old) >= MaxGroups
	groups := make(map[string]*Group, len(cur)+len(old))
	for _, e := range cur {
		groups[e.Key] = &Group{Key: e.Key, Current: e.Count}
	}
	for _, e := range old {
		g, ok := groups[e.Key]
		if !ok {
			g = &Group{Key: e.Key}
			groups[e.Key] = g
		}
		g.Previous = e.Count
	}
	for _, g := range groups {
		g.Change = g.Current - g.Previous
		if g.Previous > 0 {
			pct := math.Round(float64(g.Change)/float64(g.Previous)*10000) / 100
			g.ChangePercent = &pct
		}
		out.Groups = append(out.Groups, *g)
	}
	slices.SortFunc(out.Groups, func(x, y Group) int {
		return cmp.Or(
			cmp.Compare(abs(y.Change), abs(x.Change)),
			cmp.Compare(y.Current, x.Current),
			cmp.Compare(x.Key, y.Key))
	})
	limit := min(max(r.Limit, 1), MaxCompareLimit)
	if len(out.Groups) > limit {
		out.Groups = out.Groups[:limit]
	}
	keys := make([]string, len(out.Groups))
	for i, g := range out.Groups {
		keys[i] = g.Key
	}
	series, err := a.Series(ctx, SeriesRequest{Since: since, Until: r.Until, Interval: iv, By: r.By, Keys: keys})
	if err != nil {
		return out, err
	}
	for i := range out.Groups {
		out.Groups[i].Trend = *series[i].Trend
	}
	return out, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// Short spells d as time.Duration does without its zero units: 5m, 1h,
// 1h30m, 90s.
func Short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
