package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reflex-ops/reflex/internal/store"
)

// Bounds of the history queries.
const (
	defaultTopLimit = 10
	// maxCountRanges bounds the ranges of one EventCounts query.
	maxCountRanges = 64
)

// dimension is how a store.Dimension is read: the table, its time column,
// the key expression (text), the label expression ("" when none) and the
// occurrences expression.
type dimension struct {
	table, time, key, label, occurrences string
	// col, when set, is the column key reads (key is COALESCE(col, '')):
	// a filter on keys other than "" reads it, and its index, directly.
	col string
	// notNull: rows whose key is NULL are left out (templates).
	notNull bool
}

func (q *Queries) dimension(by store.Dimension) (dimension, error) {
	ev := dimension{table: q.table(ProcessedTable), time: "occurred_at", occurrences: "COALESCE(sum(occurrence_count), 0)"}
	switch by {
	case store.DimAll:
		ev.key = "''"
	case store.DimHost:
		ev.key, ev.col = "COALESCE(source_host, '')", "source_host"
	case store.DimService:
		ev.key, ev.col = "COALESCE(source_service, '')", "source_service"
	case store.DimEventType:
		ev.key = "event_type"
	case store.DimSeverity:
		ev.key = "severity"
	case store.DimSource:
		ev.key = "COALESCE(source_system, '')"
	case store.DimTemplate:
		ev.key = q.d.JSONText("event_data", "template", "id")
		ev.label = "max(" + q.d.JSONText("event_data", "template", "text") + ")"
		ev.notNull = true
	case store.DimRule:
		return dimension{
			table: q.executions() + " x LEFT JOIN " + q.triggerRules() + " r ON r.id = x.trigger_rule_id",
			time:  "x.started_at", key: "CAST(x.trigger_rule_id AS TEXT)", label: "max(r.rule_name)",
			occurrences: "count(*)", notNull: true,
		}, nil
	default:
		return dimension{}, fmt.Errorf("%s: unknown dimension %q", q.d.Name, by)
	}
	return ev, nil
}

// where is the time range (and the non-NULL key) of a history query.
func (q *Queries) where(dim dimension, since, until time.Time) *Where {
	w := &Where{}
	if !since.IsZero() {
		w.Add(dim.time+" >= ?", q.d.Time(since))
	}
	if !until.IsZero() {
		w.Add(dim.time+" < ?", q.d.Time(until))
	}
	if dim.notNull {
		w.Add(dim.key + " IS NOT NULL")
	}
	return w
}

// Top returns the noisiest keys of tq.By.
func (q *Queries) Top(ctx context.Context, tq store.TopQuery) ([]store.TopEntry, error) {
	dim, err := q.dimension(tq.By)
	if err != nil || tq.By == store.DimAll {
		return nil, fmt.Errorf("%s: top: unknown dimension %q", q.d.Name, tq.By)
	}
	limit := tq.Limit
	if limit <= 0 {
		limit = defaultTopLimit
	}
	limit = min(limit, store.MaxTopLimit)
	label := dim.label
	if label == "" {
		label = "''"
	}
	w := q.where(dim, tq.Since, tq.Until)
	// Every expression comes from dimension's switch, never from input.
	text := `SELECT ` + dim.key + `, COALESCE(` + label + `, ''), count(*), ` + dim.occurrences + ` FROM ` + dim.table + w.Clause() + //nolint:gosec // see above
		` GROUP BY 1 ORDER BY 3 DESC, 4 DESC, ` + q.d.Binary(dim.key) + fmt.Sprintf(` LIMIT %d`, limit)
	return collect(ctx, q, "top", func(r Row) (store.TopEntry, error) {
		var e store.TopEntry
		err := r.Scan(&e.Key, &e.Label, &e.Count, &e.Occurrences)
		return e, err
	}, text, w.Args()...)
}

// Series counts the events per key and bucket.
func (q *Queries) Series(ctx context.Context, sq store.SeriesQuery) ([]store.SeriesRow, error) {
	dim, err := q.dimension(sq.By)
	if err != nil {
		return nil, fmt.Errorf("%s: series: %w", q.d.Name, err)
	}
	if sq.Interval < time.Second || sq.Interval%time.Second != 0 {
		return nil, fmt.Errorf("%s: series: interval %s is not a positive number of whole seconds", q.d.Name, sq.Interval)
	}
	if sq.Since.IsZero() || sq.Until.IsZero() {
		return nil, fmt.Errorf("%s: series: since and until are required", q.d.Name)
	}
	w := q.where(dim, sq.Since, sq.Until)
	if sq.Keys != nil {
		col := dim.key
		if dim.col != "" && !slices.Contains(sq.Keys, "") {
			col = dim.col
		}
		w.Add(q.d.InList(col), q.d.Strings(sq.Keys, 0))
	}
	bucket := q.d.FloorTime(dim.time, sq.Interval)
	text := `SELECT ` + dim.key + `, ` + bucket + `, count(*), ` + dim.occurrences + ` FROM ` + dim.table + w.Clause() + //nolint:gosec // see Top
		` GROUP BY 1, 2 ORDER BY ` + q.d.Binary(dim.key) + `, 2`
	return collect(ctx, q, "series", func(r Row) (store.SeriesRow, error) {
		var (
			s     store.SeriesRow
			start time.Time
		)
		err := r.Scan(&s.Key, Time(&start), &s.Count, &s.Occurrences)
		s.Start = start
		return s, err
	}, text, w.Args()...)
}

// EventCounts counts the processed events of host in each range, in one
// query over the (source_host, occurred_at) index.
func (q *Queries) EventCounts(ctx context.Context, host string, ranges []store.TimeRange) ([]int64, error) {
	if len(ranges) == 0 {
		return []int64{}, nil
	}
	if len(ranges) > maxCountRanges {
		return nil, fmt.Errorf("%s: event counts: %d ranges, at most %d", q.d.Name, len(ranges), maxCountRanges)
	}
	var (
		cols       string
		args       []any
		first, end time.Time
	)
	for i, r := range ranges {
		if i > 0 {
			cols += ", "
		}
		cols += "COALESCE(sum(CASE WHEN occurred_at >= ? AND occurred_at < ? THEN 1 ELSE 0 END), 0)"
		args = append(args, q.d.Time(r.Since), q.d.Time(r.Until))
		if first.IsZero() || r.Since.Before(first) {
			first = r.Since
		}
		if r.Until.After(end) {
			end = r.Until
		}
	}
	args = append(args, store.CleanText(host, 0), q.d.Time(first), q.d.Time(end))
	out := make([]int64, len(ranges))
	dest := make([]any, len(ranges))
	for i := range out {
		dest[i] = &out[i]
	}
	err := q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+cols+` FROM `+q.table(ProcessedTable)+ //nolint:gosec // placeholders only
		` WHERE source_host = ? AND occurred_at >= ? AND occurred_at < ? AND (source_type IS NULL OR source_type <> 'reflex')`), args...).Scan(dest...)
	if err != nil {
		return nil, fmt.Errorf("%s: event counts: %w", q.d.Name, err)
	}
	return out, nil
}

var _ store.HistoryStore = (*Queries)(nil)
