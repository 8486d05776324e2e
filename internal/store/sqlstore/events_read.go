package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// idHint is how far from the receipt time in an id a first lookup by id
// searches (occurred_at, received_at), so that PostgreSQL reads the
// partitions of those days only; a miss is retried without it.
const idHint = 24 * time.Hour

// recentSlack covers the gap between the time in an event's id and its
// received_at/last_seen_at (clock steps between id allocation and
// stamping).
const recentSlack = time.Minute

func (q *Queries) table(name string) string { return q.d.Table("events", name) }

// hinted runs a lookup of one row by id, first with a time range on col
// around the time of the id, then without it.
func (q *Queries) hinted(ctx context.Context, sel, table, col string, id int64, scan func(Row) error) error {
	t := event.TimeOfID(id)
	err := scan(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+sel+` FROM `+q.table(table)+
		` WHERE id = ? AND `+col+` >= ? AND `+col+` < ? LIMIT 1`),
		id, q.d.Time(t.Add(-idHint)), q.d.Time(t.Add(idHint))))
	if errors.Is(err, sql.ErrNoRows) {
		err = scan(q.r.QueryRow(ctx, q.d.Rebind(`SELECT `+sel+` FROM `+q.table(table)+` WHERE id = ? LIMIT 1`), id))
	}
	return err
}

// processedByID reads the processed event id: store.ErrNotFound, or
// store.ErrUnreadable (counted) for a row that does not decode.
func (q *Queries) processedByID(ctx context.Context, id int64) (*event.Event, error) {
	var e event.Event
	err := q.hinted(ctx, processedSelect, ProcessedTable, "occurred_at", id, func(r Row) (err error) {
		e, err = q.d.scanEvent(r)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, store.ErrNotFound
	case isDecode(err):
		q.skipped(ProcessedTable, id)
		return nil, store.ErrUnreadable
	case err != nil:
		return nil, err
	}
	return &e, nil
}

// Event returns the processed event id or, if id is a raw event folded
// into another processed event, that event.
func (q *Queries) Event(ctx context.Context, id int64) (*event.Event, error) {
	e, err := q.processedByID(ctx, id)
	if !errors.Is(err, store.ErrNotFound) {
		if err != nil {
			return nil, fmt.Errorf("%s: event %d: %w", q.d.Name, id, err)
		}
		return q.withIncident(ctx, e)
	}
	r, err := q.RawEvent(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.ProcessedEventID == 0 || r.ProcessedEventID == id {
		return nil, fmt.Errorf("%s: event %d: %w", q.d.Name, id, store.ErrNotFound)
	}
	e, err = q.processedByID(ctx, r.ProcessedEventID)
	if err != nil {
		return nil, fmt.Errorf("%s: event %d (kept as %d): %w", q.d.Name, id, r.ProcessedEventID, err)
	}
	return q.withIncident(ctx, e)
}

// withIncident sets the IncidentID of e.
func (q *Queries) withIncident(ctx context.Context, e *event.Event) (*event.Event, error) {
	es := []event.Event{*e}
	if err := q.withIncidents(ctx, es); err != nil {
		return nil, fmt.Errorf("%s: event %d: %w", q.d.Name, e.ID, err)
	}
	return &es[0], nil
}

// RawEvent returns the raw event id.
func (q *Queries) RawEvent(ctx context.Context, id int64) (*event.Raw, error) {
	var r event.Raw
	err := q.hinted(ctx, rawSelect, RawTable, "received_at", id, func(row Row) (err error) {
		r, err = q.d.scanRaw(row)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("%s: raw event %d: %w", q.d.Name, id, store.ErrNotFound)
	case isDecode(err):
		q.skipped(RawTable, id)
		return nil, fmt.Errorf("%s: raw event %d: %w", q.d.Name, id, store.ErrUnreadable)
	case err != nil:
		return nil, fmt.Errorf("%s: raw event %d: %w", q.d.Name, id, err)
	}
	return &r, nil
}

// idRange is the range of receipt times that raw events of ids can have
// (set with their id at intake), widened by idHint each way.
func idRange(ids []int64) (lo, hi time.Time) {
	return event.TimeOfID(ids[0]).Add(-idHint), event.TimeOfID(ids[len(ids)-1]).Add(idHint)
}

// StoredRawIDs returns which of ids have a raw_events row. The received_at
// range derived from the ids lets PostgreSQL search only the partitions
// that can hold them.
func (q *Queries) StoredRawIDs(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	lo, hi := idRange(ids)
	rs, err := q.r.Query(ctx, q.d.Rebind(`SELECT id FROM `+q.table(RawTable)+` WHERE `+q.d.InList("id")+
		` AND received_at >= ? AND received_at < ?`), q.d.Ints(ids), q.d.Time(lo), q.d.Time(hi))
	if err != nil {
		return nil, fmt.Errorf("%s: stored raw ids: %w", q.d.Name, err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: stored raw ids: %w", q.d.Name, err)
		}
		out[id] = true
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: stored raw ids: %w", q.d.Name, err)
	}
	return out, nil
}

// RawEvents returns the stored raw events of ids, in the order of ids.
// They are looked up in the received_at range of the ids first, then the
// ones missing without it.
func (q *Queries) RawEvents(ctx context.Context, ids []int64) ([]event.Raw, error) {
	if len(ids) == 0 {
		return []event.Raw{}, nil
	}
	sorted := slices.Compact(slices.Sorted(slices.Values(ids)))
	found := make(map[int64]event.Raw, len(sorted))
	read := func(sqlText string, args ...any) error {
		rs, err := q.r.Query(ctx, q.d.Rebind(sqlText), args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			r, err := q.d.scanRaw(rs)
			if isDecode(err) {
				q.skipped(RawTable, r.ID)
				continue
			}
			if err != nil {
				return err
			}
			found[r.ID] = r
		}
		return rs.Err()
	}
	lo, hi := idRange(sorted)
	base := `SELECT ` + rawSelect + ` FROM ` + q.table(RawTable) + ` WHERE ` + q.d.InList("id")
	if err := read(base+` AND received_at >= ? AND received_at < ?`, q.d.Ints(sorted), q.d.Time(lo), q.d.Time(hi)); err != nil {
		return nil, fmt.Errorf("%s: raw events: %w", q.d.Name, err)
	}
	if len(found) < len(sorted) {
		var rest []int64
		for _, id := range sorted {
			if _, ok := found[id]; !ok {
				rest = append(rest, id)
			}
		}
		if err := read(base, q.d.Ints(rest)); err != nil {
			return nil, fmt.Errorf("%s: raw events: %w", q.d.Name, err)
		}
	}
	out := make([]event.Raw, 0, len(found))
	for _, id := range ids {
		if r, ok := found[id]; ok {
			out = append(out, r)
			delete(found, id)
		}
	}
	return out, nil
}

// EventsByID returns the stored, readable processed events of ids, in
// the order of ids.
func (q *Queries) EventsByID(ctx context.Context, ids []int64) ([]event.Event, error) {
	if len(ids) == 0 {
		return []event.Event{}, nil
	}
	sorted := slices.Compact(slices.Sorted(slices.Values(ids)))
	l, err := q.listEvents(ctx, `SELECT `+processedSelect+` FROM `+q.table(ProcessedTable)+` WHERE `+q.d.InList("id"), q.d.Ints(sorted))
	if err != nil {
		return nil, fmt.Errorf("%s: events by id: %w", q.d.Name, err)
	}
	if err := q.withIncidents(ctx, l.events); err != nil {
		return nil, fmt.Errorf("%s: events by id: %w", q.d.Name, err)
	}
	found := make(map[int64]int, len(l.events))
	for i, e := range l.events {
		found[e.ID] = i
	}
	out := make([]event.Event, 0, len(l.events))
	for _, id := range ids {
		if i, ok := found[id]; ok {
			out = append(out, l.events[i])
			delete(found, id)
		}
	}
	return out, nil
}

// eventList is what listEvents read: the readable events, the ids of the
// unreadable rows, and where each row was, readable or not.
type eventList struct {
	events     []event.Event
	unreadable []int64
	rows       []position
}

type position struct {
	t  time.Time
	id int64
}

// listEvents runs a query of processedSelect rows (with ? placeholders),
// skipping the unreadable ones.
func (q *Queries) listEvents(ctx context.Context, sqlText string, args ...any) (eventList, error) {
	var l eventList
	rs, err := q.r.Query(ctx, q.d.Rebind(sqlText), args...)
	if err != nil {
		return l, err
	}
	defer rs.Close()
	for rs.Next() {
		e, err := q.d.scanEvent(rs)
		if err != nil && !isDecode(err) {
			return l, err
		}
		l.rows = append(l.rows, position{e.OccurredAt, e.ID})
		if err != nil {
			q.skipped(ProcessedTable, e.ID)
			l.unreadable = append(l.unreadable, e.ID)
			continue
		}
		l.events = append(l.events, e)
	}
	return l, rs.Err()
}

// Events lists processed events matching eq, newest first by
// (occurred_at, id), one page at a time.
func (q *Queries) Events(ctx context.Context, eq store.EventQuery) (store.EventPage, error) {
	var w Where
	if len(eq.Severities) > 0 {
		args := make([]any, len(eq.Severities))
		for i, v := range eq.Severities {
			args[i] = string(v)
		}
		w.Add("severity IN ("+marks(len(args))+")", args...)
	}
	if !eq.Since.IsZero() {
		w.Add("occurred_at >= ?", q.d.Time(eq.Since))
	}
	if !eq.Until.IsZero() {
		w.Add("occurred_at < ?", q.d.Time(eq.Until))
	}
	if eq.Host != "" {
		w.Add("source_host = ?", store.CleanText(eq.Host, 0))
	}
	if eq.Service != "" {
		w.Add("source_service = ?", store.CleanText(eq.Service, 0))
	}
	if eq.EventType != "" {
		w.Add("event_type = ?", store.CleanText(eq.EventType, 0))
	}
	if eq.Source != "" {
		w.Add("source_system = ?", store.CleanText(eq.Source, 0))
	}
	if eq.CorrelationID != "" {
		w.Add("correlation_id = ?", store.CorrelationKey(eq.CorrelationID))
	}
	if text := store.CleanText(eq.Text, 0); text != "" {
		q.d.ContainsFold(&w, text, "title", "description")
	}
	order := ` ORDER BY occurred_at DESC, id DESC`
	switch {
	case eq.OldestFirst:
		order = ` ORDER BY occurred_at, id`
		if !eq.AfterTime.IsZero() {
			at := q.d.Time(eq.AfterTime)
			w.Add("occurred_at >= ? AND (occurred_at > ? OR id > ?)", at, at, eq.AfterID)
		}
	case !eq.BeforeTime.IsZero():
		bt := q.d.Time(eq.BeforeTime)
		w.Add("occurred_at <= ? AND (occurred_at < ? OR id < ?)", bt, bt, eq.BeforeID)
	}
	limit := eq.PageSize()
	l, err := q.listEvents(ctx, `SELECT `+processedSelect+` FROM `+q.table(ProcessedTable)+w.Clause()+
		order+` LIMIT ?`, append(w.Args(), limit+1)...)
	if err != nil {
		return store.EventPage{}, fmt.Errorf("%s: events: %w", q.d.Name, err)
	}
	if err := q.withIncidents(ctx, l.events); err != nil {
		return store.EventPage{}, fmt.Errorf("%s: events: %w", q.d.Name, err)
	}
	return page(l, limit), nil
}

// page makes the page of a query that fetched up to limit+1 rows.
func page(l eventList, limit int) store.EventPage {
	p := store.EventPage{Events: l.events, Unreadable: l.unreadable}
	if len(l.rows) <= limit {
		return p
	}
	// The extra row only tells that there is more: leave it out, readable
	// or not.
	p.More = true
	extra := l.rows[limit].id
	if n := len(p.Events); n > 0 && p.Events[n-1].ID == extra {
		p.Events = p.Events[:n-1]
	} else if n := len(p.Unreadable); n > 0 && p.Unreadable[n-1] == extra {
		p.Unreadable = p.Unreadable[:n-1]
		if n == 1 {
			p.Unreadable = nil
		}
	}
	// The cursor is the last row kept, readable or not, so that a page of
	// unreadable rows only still leads on.
	p.NextTime, p.NextID = l.rows[limit-1].t, l.rows[limit-1].id
	return p
}

func marks(n int) string {
	b := make([]byte, 0, 3*n)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(b)
}

// Correlations returns the rows involving processed event id: its own group
// (by its correlation_id), the groups it is the primary event of, and the
// causal group of its parent that lists it. It reads only the columns of
// the event that it needs, so that an event whose data is unreadable still
// has its correlations.
func (q *Queries) Correlations(ctx context.Context, id int64) ([]event.Correlation, error) {
	var (
		corr   *string
		parent *int64
	)
	err := q.hinted(ctx, `CAST(correlation_id AS TEXT), parent_event_id`, ProcessedTable, "occurred_at", id,
		func(r Row) error { return r.Scan(&corr, &parent) })
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: correlations of %d: %w", q.d.Name, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: correlations of %d: %w", q.d.Name, id, err)
	}
	var corrArg, parentArg any
	if corr != nil {
		corrArg = *corr
	}
	if parent != nil && *parent != 0 {
		parentArg = *parent
	}
	rs, err := q.r.Query(ctx, q.d.Rebind(`SELECT `+correlationSelect+` FROM `+q.table(CorrelationTable)+
		` WHERE correlation_id = ? OR primary_event_id = ? OR (primary_event_id = ? AND `+q.d.ArrayHas("related_event_ids")+`)
		ORDER BY id`), corrArg, id, parentArg, id)
	if err != nil {
		return nil, fmt.Errorf("%s: correlations of %d: %w", q.d.Name, id, err)
	}
	defer rs.Close()
	out := []event.Correlation{}
	for rs.Next() {
		c, err := q.d.scanCorrelation(rs)
		if isDecode(err) {
			q.skipped(CorrelationTable, c.ID)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: correlations of %d: %w", q.d.Name, id, err)
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: correlations of %d: %w", q.d.Name, id, err)
	}
	return out, nil
}

// Analytics counts processed events by one dimension. Buckets are ordered
// by key for ByHour, by count (descending) then key (bytewise) otherwise.
func (q *Queries) Analytics(ctx context.Context, aq store.AnalyticsQuery) ([]store.Bucket, error) {
	var key string
	switch aq.GroupBy {
	case store.BySeverity:
		key = "severity"
	case store.ByHost:
		key = "COALESCE(source_host, '')"
	case store.ByService:
		key = "COALESCE(source_service, '')"
	case store.ByEventType:
		key = "event_type"
	case store.BySource:
		key = "COALESCE(source_system, '')"
	case store.ByHour:
		key = q.d.HourOf("occurred_at")
	default:
		return nil, fmt.Errorf("%s: analytics: unknown group by %q", q.d.Name, aq.GroupBy)
	}
	order := "1"
	if aq.GroupBy != store.ByHour {
		order = "2 DESC, " + q.d.Binary(key)
	}
	var w Where
	if !aq.Since.IsZero() {
		w.Add("occurred_at >= ?", q.d.Time(aq.Since))
	}
	if !aq.Until.IsZero() {
		w.Add("occurred_at < ?", q.d.Time(aq.Until))
	}
	// key and order come from a switch over GroupBy, never from input.
	rs, err := q.r.Query(ctx, q.d.Rebind(`SELECT `+key+`, count(*), COALESCE(sum(occurrence_count), 0) FROM `+ //nolint:gosec // see above
		q.table(ProcessedTable)+w.Clause()+` GROUP BY 1 ORDER BY `+order), w.Args()...)
	if err != nil {
		return nil, fmt.Errorf("%s: analytics: %w", q.d.Name, err)
	}
	defer rs.Close()
	out := []store.Bucket{}
	for rs.Next() {
		var (
			b    store.Bucket
			hour time.Time
			err  error
		)
		if aq.GroupBy == store.ByHour {
			err = rs.Scan(Time(&hour), &b.Count, &b.Occurrences)
			b.Key = hour.Format(time.RFC3339)
		} else {
			err = rs.Scan(&b.Key, &b.Count, &b.Occurrences)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: analytics: %w", q.d.Name, err)
		}
		out = append(out, b)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: analytics: %w", q.d.Name, err)
	}
	return out, nil
}

// RecentEvents returns processed events last seen at or after since, oldest
// first (by last_seen_at, id), at most limit (no limit when limit <= 0).
// An event is last seen no earlier than its first raw event arrived, which
// its id encodes: events received since then are found by id range (the
// primary key), older ones seen again by the partial index on repeated
// events' last_seen_at. Unreadable rows are skipped.
func (q *Queries) RecentEvents(ctx context.Context, since time.Time, limit int) ([]event.Event, error) {
	since = store.CleanTime(since)
	idMin, sm := event.IDAt(since.Add(-recentSlack)), q.d.Time(since)
	t := q.table(ProcessedTable)
	sqlText := `SELECT ` + processedSelect + ` FROM (
			SELECT * FROM ` + t + ` WHERE id >= ? AND last_seen_at >= ?
			UNION ALL
			SELECT * FROM ` + t + ` WHERE id < ? AND occurrence_count > 1 AND last_seen_at >= ?
		) e ORDER BY last_seen_at, id`
	args := []any{idMin, sm, idMin, sm}
	if limit > 0 {
		sqlText += ` LIMIT ?`
		args = append(args, limit)
	}
	l, err := q.listEvents(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: recent events: %w", q.d.Name, err)
	}
	return l.events, nil
}
