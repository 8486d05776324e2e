package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

const eventColumns = `id, raw_event_id, event_type, severity, source_host, source_service, title,
	description, event_data, tags, occurred_at, processed_at, correlation_id::text, parent_event_id,
	source_system, source_type, received_at, fingerprint, occurrence_count, last_seen_at, priority`

// scanEvent reads one row of eventColumns.
func scanEvent(row pgx.Row) (event.Event, error) {
	var (
		e                                   event.Event
		rawID, parentID                     *int64
		severity                            string
		host, service, desc, corr, sys, typ *string
		fp                                  *string
		data                                []byte
		processedAt, receivedAt, lastSeen   *time.Time
		count                               int32
		priority                            *int16
	)
	err := row.Scan(&e.ID, &rawID, &e.EventType, &severity, &host, &service, &e.Title,
		&desc, &data, &e.Tags, &e.OccurredAt, &processedAt, &corr, &parentID,
		&sys, &typ, &receivedAt, &fp, &count, &lastSeen, &priority)
	if err != nil {
		return e, err
	}
	e.Severity = event.Severity(severity)
	e.RawEventID = deref(rawID)
	e.ParentEventID = deref(parentID)
	e.SourceHost, e.SourceService, e.Description = deref(host), deref(service), deref(desc)
	e.CorrelationID, e.SourceSystem, e.SourceType = deref(corr), deref(sys), event.SourceType(deref(typ))
	e.Fingerprint = deref(fp)
	e.OccurredAt = e.OccurredAt.UTC()
	e.ProcessedAt, e.ReceivedAt, e.LastSeenAt = utc(processedAt), utc(receivedAt), utc(lastSeen)
	e.OccurrenceCount = int(count)
	e.Priority = int(deref(priority))
	if err := e.UnmarshalData(data); err != nil {
		return e, err
	}
	return e, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// idHint is how far from the receipt time in an id a first lookup searches
// (occurred_at, received_at); a miss is retried without it.
const idHint = 24 * time.Hour

// processedByID looks up a processed event by id, first in the partitions
// around the time of the id, then in all of them.
func (s *Store) processedByID(ctx context.Context, id int64) (*event.Event, error) {
	t := event.TimeOfID(id)
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events.processed_events
		WHERE id = $1 AND occurred_at >= $2 AND occurred_at < $3 LIMIT 1`,
		id, store.CleanTime(t.Add(-idHint)), store.CleanTime(t.Add(idHint))))
	if errors.Is(err, pgx.ErrNoRows) {
		e, err = scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events.processed_events
			WHERE id = $1 LIMIT 1`, id))
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Event returns the processed event id or, if id is a raw event folded
// into another processed event, that event.
func (s *Store) Event(ctx context.Context, id int64) (*event.Event, error) {
	e, err := s.processedByID(ctx, id)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		if err != nil {
			return nil, fmt.Errorf("postgres: event %d: %w", id, err)
		}
		return e, nil
	}
	r, err := s.RawEvent(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.ProcessedEventID == 0 || r.ProcessedEventID == id {
		return nil, fmt.Errorf("postgres: event %d: %w", id, store.ErrNotFound)
	}
	e, err = s.processedByID(ctx, r.ProcessedEventID)
	if err != nil {
		return nil, fmt.Errorf("postgres: event %d (kept as %d): %w", id, r.ProcessedEventID, err)
	}
	return e, nil
}

// RawEvent returns the raw event id.
func (s *Store) RawEvent(ctx context.Context, id int64) (*event.Raw, error) {
	const cols = `id, source_system, source_type, raw_data, received_at, processed, processing_errors, processed_event_id`
	scan := func(row pgx.Row) (*event.Raw, error) {
		var (
			r         event.Raw
			typ       string
			processed *bool
			pid       *int64
			data      []byte
		)
		if err := row.Scan(&r.ID, &r.SourceSystem, &typ, &data, &r.ReceivedAt, &processed, &r.ProcessingErrors, &pid); err != nil {
			return nil, err
		}
		r.SourceType = event.SourceType(typ)
		r.Data = json.RawMessage(data)
		r.ReceivedAt = r.ReceivedAt.UTC()
		r.Processed = deref(processed)
		r.ProcessedEventID = deref(pid)
		return &r, nil
	}
	t := event.TimeOfID(id)
	r, err := scan(s.pool.QueryRow(ctx, `SELECT `+cols+` FROM events.raw_events
		WHERE id = $1 AND received_at >= $2 AND received_at < $3 LIMIT 1`,
		id, store.CleanTime(t.Add(-rawIDSlack)), store.CleanTime(t.Add(rawIDSlack))))
	if errors.Is(err, pgx.ErrNoRows) {
		r, err = scan(s.pool.QueryRow(ctx, `SELECT `+cols+` FROM events.raw_events WHERE id = $1 LIMIT 1`, id))
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: raw event %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: raw event %d: %w", id, err)
	}
	return r, nil
}

// query builds a WHERE clause with numbered parameters.
type query struct {
	conds []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *query) where(cond string) { q.conds = append(q.conds, cond) }

func (q *query) clause() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// escapeLike escapes the LIKE wildcards of s (backslash is the escape).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Events lists processed events matching q, newest first by (occurred_at,
// id), one page at a time.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	var w query
	if len(q.Severities) > 0 {
		sev := make([]string, len(q.Severities))
		for i, v := range q.Severities {
			sev[i] = string(v)
		}
		w.where("severity = ANY(" + w.arg(sev) + ")")
	}
	if !q.Since.IsZero() {
		w.where("occurred_at >= " + w.arg(store.CleanTime(q.Since)))
	}
	if !q.Until.IsZero() {
		w.where("occurred_at < " + w.arg(store.CleanTime(q.Until)))
	}
	if q.Host != "" {
		w.where("source_host = " + w.arg(store.CleanText(q.Host, 0)))
	}
	if q.Service != "" {
		w.where("source_service = " + w.arg(store.CleanText(q.Service, 0)))
	}
	if q.EventType != "" {
		w.where("event_type = " + w.arg(store.CleanText(q.EventType, 0)))
	}
	if q.Source != "" {
		w.where("source_system = " + w.arg(store.CleanText(q.Source, 0)))
	}
	if q.CorrelationID != "" {
		w.where("correlation_id = " + w.arg(store.CorrelationKey(q.CorrelationID)) + "::uuid")
	}
	if q.Text != "" {
		p := w.arg("%" + escapeLike(store.CleanText(q.Text, 0)) + "%")
		w.where("(title ILIKE " + p + " OR description ILIKE " + p + ")")
	}
	if !q.BeforeTime.IsZero() {
		bt := w.arg(store.CleanTime(q.BeforeTime))
		w.where("occurred_at <= " + bt + " AND (occurred_at < " + bt + " OR id < " + w.arg(q.BeforeID) + ")")
	}
	limit := q.PageSize()
	sql := `SELECT ` + eventColumns + ` FROM events.processed_events` + w.clause() +
		` ORDER BY occurred_at DESC, id DESC LIMIT ` + w.arg(limit+1)
	evs, err := s.queryEvents(ctx, sql, w.args...)
	if err != nil {
		return store.EventPage{}, fmt.Errorf("postgres: events: %w", err)
	}
	return store.NewEventPage(evs, limit), nil
}

func (s *Store) queryEvents(ctx context.Context, sql string, args ...any) ([]event.Event, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Correlations returns the rows involving processed event id: its own group
// (by its correlation_id), the groups it is the primary event of, and the
// causal group of its parent that lists it.
func (s *Store) Correlations(ctx context.Context, id int64) ([]event.Correlation, error) {
	e, err := s.processedByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: correlations of %d: %w", id, err)
	}
	var corr any
	if e.CorrelationID != "" {
		corr = e.CorrelationID
	}
	rows, err := s.pool.Query(ctx, `SELECT id, correlation_id::text, correlation_type, primary_event_id,
			related_event_ids, correlation_score::float8, correlation_reason, created_at
		FROM events.event_correlations
		WHERE correlation_id = $1::uuid
		   OR primary_event_id = $2
		   OR (primary_event_id = $3 AND $2 = ANY(related_event_ids))
		ORDER BY id`, corr, e.ID, e.ParentEventID)
	if err != nil {
		return nil, fmt.Errorf("postgres: correlations of %d: %w", id, err)
	}
	defer rows.Close()
	out := []event.Correlation{}
	for rows.Next() {
		var (
			c       event.Correlation
			typ     string
			primary *int64
			score   *float64
			reason  *string
			created *time.Time
		)
		if err := rows.Scan(&c.ID, &c.CorrelationID, &typ, &primary, &c.RelatedEventIDs, &score, &reason, &created); err != nil {
			return nil, fmt.Errorf("postgres: correlations of %d: %w", id, err)
		}
		c.Type = event.CorrelationType(typ)
		c.PrimaryEventID, c.Score, c.Reason, c.CreatedAt = deref(primary), deref(score), deref(reason), utc(created)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: correlations of %d: %w", id, err)
	}
	return out, nil
}

// Analytics counts processed events by one dimension. Buckets are ordered
// by key for ByHour, by count (descending) then key otherwise.
func (s *Store) Analytics(ctx context.Context, q store.AnalyticsQuery) ([]store.Bucket, error) {
	var key, order string
	switch q.GroupBy {
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
		key = `to_char(date_trunc('hour', occurred_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:00:00"Z"')`
	default:
		return nil, fmt.Errorf("postgres: analytics: unknown group by %q", q.GroupBy)
	}
	if q.GroupBy == store.ByHour {
		order = "1"
	} else {
		order = `2 DESC, (` + key + `) COLLATE "C"`
	}
	var w query
	if !q.Since.IsZero() {
		w.where("occurred_at >= " + w.arg(store.CleanTime(q.Since)))
	}
	if !q.Until.IsZero() {
		w.where("occurred_at < " + w.arg(store.CleanTime(q.Until)))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+key+`, count(*), COALESCE(sum(occurrence_count), 0)
		FROM events.processed_events`+w.clause()+` GROUP BY 1 ORDER BY `+order, w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: analytics: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Bucket, error) {
		var b store.Bucket
		err := r.Scan(&b.Key, &b.Count, &b.Occurrences)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: analytics: %w", err)
	}
	if out == nil {
		out = []store.Bucket{}
	}
	return out, nil
}

// recentSlack covers the gap between the time in an event's id and its
// received_at/last_seen_at (clock steps between id allocation and stamping).
const recentSlack = time.Minute

// RecentEvents returns processed events last seen at or after since, oldest
// first (by last_seen_at, id), at most limit (no limit when limit <= 0).
// An event is last seen no earlier than its first raw event arrived, which
// its id encodes: events received since then are found by id range (the
// primary key of every partition), older ones seen again by the partial
// index on repeated events' last_seen_at.
func (s *Store) RecentEvents(ctx context.Context, since time.Time, limit int) ([]event.Event, error) {
	since = store.CleanTime(since)
	idMin := event.IDAt(since.Add(-recentSlack))
	sql := `SELECT ` + eventColumns + ` FROM (
			SELECT * FROM events.processed_events WHERE id >= $1 AND last_seen_at >= $2
			UNION ALL
			SELECT * FROM events.processed_events WHERE id < $1 AND occurrence_count > 1 AND last_seen_at >= $2
		) e ORDER BY last_seen_at, id`
	args := []any{idMin, since}
	if limit > 0 {
		sql += ` LIMIT $3`
		args = append(args, limit)
	}
	evs, err := s.queryEvents(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: recent events: %w", err)
	}
	return evs, nil
}
