package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

const eventColumns = `id, raw_event_id, event_type, severity, source_host, source_service, occurred_at,
	processed_at, correlation_id, parent_event_id, source_system, source_type, received_at, fingerprint,
	occurrence_count, last_seen_at, priority, title, tags, description, event_data`

type scanner interface{ Scan(dest ...any) error }

// scanEvent reads one row of eventColumns.
func scanEvent(row scanner) (event.Event, error) {
	var (
		e                                   event.Event
		rawID, parentID, prio               *int64
		severity                            string
		host, service, desc, corr, sys, typ *string
		fp, tags, data                      *string
		occurred                            int64
		processedAt, receivedAt, lastSeen   *int64
	)
	err := row.Scan(&e.ID, &rawID, &e.EventType, &severity, &host, &service, &occurred,
		&processedAt, &corr, &parentID, &sys, &typ, &receivedAt, &fp,
		&e.OccurrenceCount, &lastSeen, &prio, &e.Title, &tags, &desc, &data)
	if err != nil {
		return e, err
	}
	e.Severity = event.Severity(severity)
	e.RawEventID, e.ParentEventID = deref(rawID), deref(parentID)
	e.SourceHost, e.SourceService, e.Description = deref(host), deref(service), deref(desc)
	e.CorrelationID, e.SourceSystem, e.SourceType = deref(corr), deref(sys), event.SourceType(deref(typ))
	e.Fingerprint = deref(fp)
	e.OccurredAt = time.UnixMicro(occurred).UTC()
	e.ProcessedAt, e.ReceivedAt, e.LastSeenAt = fromMicros(processedAt), fromMicros(receivedAt), fromMicros(lastSeen)
	e.Priority = int(deref(prio))
	if tags != nil {
		if err := json.Unmarshal([]byte(*tags), &e.Tags); err != nil {
			return e, fmt.Errorf("decode tags of event %d: %w", e.ID, err)
		}
	}
	if data != nil {
		if err := e.UnmarshalData([]byte(*data)); err != nil {
			return e, err
		}
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

func (s *Store) processedByID(ctx context.Context, id int64) (*event.Event, error) {
	e, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM processed_events WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	if err == nil {
		return e, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("sqlite: event %d: %w", id, err)
	}
	var pid *int64
	err = s.r.QueryRowContext(ctx, `SELECT processed_event_id FROM raw_events WHERE id = ?`, id).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (pid == nil || *pid == id)) {
		return nil, fmt.Errorf("sqlite: event %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: event %d: %w", id, err)
	}
	e, err = s.processedByID(ctx, *pid)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event %d (kept as %d): %w", id, *pid, err)
	}
	return e, nil
}

// RawEvent returns the raw event id.
func (s *Store) RawEvent(ctx context.Context, id int64) (*event.Raw, error) {
	var (
		r         event.Raw
		typ, data string
		recv      int64
		processed *bool
		errs      *string
		pid       *int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT id, source_system, source_type, received_at, processed,
		processing_errors, processed_event_id, raw_data FROM raw_events WHERE id = ?`, id).
		Scan(&r.ID, &r.SourceSystem, &typ, &recv, &processed, &errs, &pid, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: raw event %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: raw event %d: %w", id, err)
	}
	r.SourceType = event.SourceType(typ)
	r.ReceivedAt = time.UnixMicro(recv).UTC()
	r.Processed = deref(processed)
	r.ProcessedEventID = deref(pid)
	r.Data = json.RawMessage(data)
	if errs != nil {
		if err := json.Unmarshal([]byte(*errs), &r.ProcessingErrors); err != nil {
			return nil, fmt.Errorf("sqlite: raw event %d: decode processing_errors: %w", id, err)
		}
	}
	return &r, nil
}

// query builds a WHERE clause.
type query struct {
	conds []string
	args  []any
}

func (q *query) where(cond string, args ...any) {
	q.conds = append(q.conds, cond)
	q.args = append(q.args, args...)
}

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

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Events lists processed events matching q, newest first by (occurred_at,
// id), one page at a time.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (store.EventPage, error) {
	var w query
	if len(q.Severities) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(q.Severities)), ", ")
		args := make([]any, len(q.Severities))
		for i, v := range q.Severities {
			args[i] = string(v)
		}
		w.where("severity IN ("+marks+")", args...)
	}
	if !q.Since.IsZero() {
		w.where("occurred_at >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		w.where("occurred_at < ?", micros(q.Until))
	}
	if q.Host != "" {
		w.where("source_host = ?", store.CleanText(q.Host, 0))
	}
	if q.Service != "" {
		w.where("source_service = ?", store.CleanText(q.Service, 0))
	}
	if q.EventType != "" {
		w.where("event_type = ?", store.CleanText(q.EventType, 0))
	}
	if q.Source != "" {
		w.where("source_system = ?", store.CleanText(q.Source, 0))
	}
	if q.CorrelationID != "" {
		w.where("correlation_id = ?", store.CorrelationKey(q.CorrelationID))
	}
	if text := store.CleanText(q.Text, 0); text != "" {
		if isASCII(text) {
			// LIKE folds ASCII case, which is all an ASCII needle needs.
			p := "%" + escapeLike(text) + "%"
			w.where(`(title LIKE ? ESCAPE '\' OR description LIKE ? ESCAPE '\')`, p, p)
		} else {
			n := strings.ToLower(text)
			w.where("(reflex_icontains(title, ?) OR reflex_icontains(description, ?))", n, n)
		}
	}
	if !q.BeforeTime.IsZero() {
		bt := micros(q.BeforeTime)
		w.where("occurred_at <= ? AND (occurred_at < ? OR id < ?)", bt, bt, q.BeforeID)
	}
	limit := q.PageSize()
	evs, err := s.queryEvents(ctx, `SELECT `+eventColumns+` FROM processed_events`+w.clause()+
		` ORDER BY occurred_at DESC, id DESC LIMIT ?`, append(w.args, limit+1)...)
	if err != nil {
		return store.EventPage{}, fmt.Errorf("sqlite: events: %w", err)
	}
	return store.NewEventPage(evs, limit), nil
}

func (s *Store) queryEvents(ctx context.Context, q string, args ...any) ([]event.Event, error) {
	rs, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []event.Event
	for rs.Next() {
		e, err := scanEvent(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rs.Err()
}

// Correlations returns the rows involving processed event id: its own group
// (by its correlation_id), the groups it is the primary event of, and the
// causal group of its parent that lists it.
func (s *Store) Correlations(ctx context.Context, id int64) ([]event.Correlation, error) {
	e, err := s.processedByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: correlations of %d: %w", id, err)
	}
	var corr, parent any
	if e.CorrelationID != "" {
		corr = e.CorrelationID
	}
	if e.ParentEventID != 0 {
		parent = e.ParentEventID
	}
	rs, err := s.r.QueryContext(ctx, `SELECT id, correlation_id, correlation_type, primary_event_id,
			related_event_ids, correlation_score, correlation_reason, created_at
		FROM event_correlations
		WHERE correlation_id = ?1
		   OR primary_event_id = ?2
		   OR (primary_event_id = ?3 AND EXISTS (SELECT 1 FROM json_each(related_event_ids) WHERE value = ?2))
		ORDER BY id`, corr, e.ID, parent)
	if err != nil {
		return nil, fmt.Errorf("sqlite: correlations of %d: %w", id, err)
	}
	defer rs.Close()
	out := []event.Correlation{}
	for rs.Next() {
		var (
			c                event.Correlation
			typ              string
			primary, created *int64
			related, reason  *string
			score            *float64
		)
		if err := rs.Scan(&c.ID, &c.CorrelationID, &typ, &primary, &related, &score, &reason, &created); err != nil {
			return nil, fmt.Errorf("sqlite: correlations of %d: %w", id, err)
		}
		c.Type = event.CorrelationType(typ)
		c.PrimaryEventID, c.Score, c.Reason, c.CreatedAt = deref(primary), deref(score), deref(reason), fromMicros(created)
		if related != nil {
			if err := json.Unmarshal([]byte(*related), &c.RelatedEventIDs); err != nil {
				return nil, fmt.Errorf("sqlite: correlations of %d: decode related_event_ids: %w", id, err)
			}
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: correlations of %d: %w", id, err)
	}
	return out, nil
}

const microsPerHour = 3600 * 1000000

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
		// The hour's first microsecond, floored also before 1970.
		key = fmt.Sprintf("(occurred_at - (((occurred_at %% %[1]d) + %[1]d) %% %[1]d))", microsPerHour)
	default:
		return nil, fmt.Errorf("sqlite: analytics: unknown group by %q", q.GroupBy)
	}
	if q.GroupBy == store.ByHour {
		order = "1"
	} else {
		order = "2 DESC, 1"
	}
	var w query
	if !q.Since.IsZero() {
		w.where("occurred_at >= ?", micros(q.Since))
	}
	if !q.Until.IsZero() {
		w.where("occurred_at < ?", micros(q.Until))
	}
	// key and order come from a switch over GroupBy, never from input.
	query := `SELECT ` + key + `, count(*), COALESCE(sum(occurrence_count), 0) FROM processed_events` + //nolint:gosec // see above
		w.clause() + ` GROUP BY 1 ORDER BY ` + order
	rs, err := s.r.QueryContext(ctx, query, w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: analytics: %w", err)
	}
	defer rs.Close()
	out := []store.Bucket{}
	for rs.Next() {
		var (
			b    store.Bucket
			hour int64
			err  error
		)
		if q.GroupBy == store.ByHour {
			err = rs.Scan(&hour, &b.Count, &b.Occurrences)
			b.Key = time.UnixMicro(hour).UTC().Format(time.RFC3339)
		} else {
			err = rs.Scan(&b.Key, &b.Count, &b.Occurrences)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: analytics: %w", err)
		}
		out = append(out, b)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: analytics: %w", err)
	}
	return out, nil
}

// recentSlack covers the gap between the time in an event's id and its
// received_at/last_seen_at.
const recentSlack = time.Minute

// RecentEvents returns processed events last seen at or after since, oldest
// first (by last_seen_at, id), at most limit (no limit when limit <= 0).
// Events received since then are found by id range (the rowid), older ones
// seen again by the partial index on repeated events' last_seen_at.
func (s *Store) RecentEvents(ctx context.Context, since time.Time, limit int) ([]event.Event, error) {
	idMin := event.IDAt(store.CleanTime(since).Add(-recentSlack))
	sm := micros(since)
	q := `SELECT ` + eventColumns + ` FROM (
			SELECT * FROM processed_events WHERE id >= ?1 AND last_seen_at >= ?2
			UNION ALL
			SELECT * FROM processed_events WHERE id < ?1 AND occurrence_count > 1 AND last_seen_at >= ?2
		) ORDER BY last_seen_at, id`
	args := []any{idMin, sm}
	if limit > 0 {
		q += ` LIMIT ?3`
		args = append(args, limit)
	}
	evs, err := s.queryEvents(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recent events: %w", err)
	}
	return evs, nil
}
