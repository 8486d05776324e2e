package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

var (
	rawColumns = []string{"id", "source_system", "source_type", "raw_data", "received_at",
		"processed", "processing_errors", "processed_event_id"}
	processedColumns = []string{"id", "raw_event_id", "event_type", "severity", "source_host",
		"source_service", "title", "description", "event_data", "tags", "occurred_at",
		"processed_at", "correlation_id", "parent_event_id", "source_system", "source_type",
		"received_at", "fingerprint", "occurrence_count", "last_seen_at", "priority"}
)

var (
	insertRawSQL = fmt.Sprintf(`INSERT INTO events.raw_events (%s) VALUES (%s) ON CONFLICT DO NOTHING`,
		strings.Join(rawColumns, ", "), placeholders(len(rawColumns)))
	insertProcessedSQL = fmt.Sprintf(`INSERT INTO events.processed_events (%s) VALUES (%s) ON CONFLICT DO NOTHING`,
		strings.Join(processedColumns, ", "), placeholders(len(processedColumns)))
)

const (
	// repeatSQL locates the partition with occurred_at; repeatAnySQL is
	// the fallback for an OccurredAt that does not match the stored one.
	// GREATEST keeps both columns monotonic when lanes race.
	repeatSQL = `UPDATE events.processed_events
		SET occurrence_count = GREATEST(occurrence_count, $1), last_seen_at = GREATEST(last_seen_at, $2)
		WHERE id = $3 AND occurred_at = $4`
	repeatAnySQL = `UPDATE events.processed_events
		SET occurrence_count = GREATEST(occurrence_count, $1), last_seen_at = GREATEST(last_seen_at, $2)
		WHERE id = $3`
	upsertCorrelationSQL = `INSERT INTO events.event_correlations (` + `correlation_id, correlation_type,
		primary_event_id, related_event_ids, correlation_score, correlation_reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (correlation_id) DO UPDATE SET
			correlation_type = EXCLUDED.correlation_type,
			primary_event_id = EXCLUDED.primary_event_id,
			related_event_ids = EXCLUDED.related_event_ids,
			correlation_score = EXCLUDED.correlation_score,
			correlation_reason = EXCLUDED.correlation_reason
		WHERE coalesce(cardinality(events.event_correlations.related_event_ids), 0) <= coalesce(cardinality(EXCLUDED.related_event_ids), 0)`
)

func placeholders(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", i)
	}
	return b.String()
}

// rows is a batch converted to column values once, reused by retries.
type rows struct {
	raw, processed [][]any
	rawDays        map[int64]struct{}
	processedDays  map[int64]struct{}
	repeats        []store.Repeat
	correlations   [][]any
}

func (s *Store) convert(b *store.Batch) (*rows, error) {
	now := s.now().UTC()
	r := &rows{
		raw:           make([][]any, len(b.Raw)),
		processed:     make([][]any, len(b.New)),
		rawDays:       map[int64]struct{}{},
		processedDays: map[int64]struct{}{},
	}
	for i := range b.Raw {
		e := &b.Raw[i]
		recv := e.ReceivedAt
		if recv.IsZero() {
			recv = event.TimeOfID(e.ID)
		}
		recv = store.CleanTime(recv)
		r.rawDays[dayOf(recv)] = struct{}{}
		var pid any
		if e.ProcessedEventID != 0 {
			pid = e.ProcessedEventID
		}
		r.raw[i] = []any{e.ID, store.CleanText(e.SourceSystem, store.MaxSourceSystem),
			store.CleanText(string(e.SourceType), store.MaxSourceType), store.CleanJSON(e.Data), recv,
			e.Processed, cleanStrings(e.ProcessingErrors), pid}
	}
	for i := range b.New {
		e := &b.New[i]
		occ := occurredAt(e)
		r.processedDays[dayOf(occ)] = struct{}{}
		data, err := eventJSON(e)
		if err != nil {
			return nil, fmt.Errorf("postgres: encode event_data of event %d: %w", e.ID, err)
		}
		proc := e.ProcessedAt
		if proc.IsZero() {
			proc = now
		}
		last := e.LastSeenAt
		if last.IsZero() {
			last = e.ReceivedAt
		}
		count := e.OccurrenceCount
		if count < 1 {
			count = 1
		}
		r.processed[i] = []any{e.ID, nullID(e.RawEventID), store.CleanText(e.EventType, store.MaxEventType),
			store.CleanText(string(e.Severity), store.MaxSeverity), nullText(e.SourceHost, store.MaxHost),
			nullText(e.SourceService, store.MaxService), store.CleanText(e.Title, store.MaxTitle),
			nullText(e.Description, 0), data, cleanTags(e.Tags), occ, store.CleanTime(proc),
			correlationUUID(e.CorrelationID), nullID(e.ParentEventID),
			nullText(e.SourceSystem, store.MaxSourceSystem), nullText(string(e.SourceType), store.MaxSourceType),
			nullTime(e.ReceivedAt), nullText(e.Fingerprint, store.MaxFingerprint), int32(min(count, 1<<31-1)),
			nullTime(last), int16(max(min(e.Priority, 32767), -32768))}
	}
	// A stable order of row locks across concurrent batches avoids
	// deadlocks between lanes updating the same rows.
	r.repeats = slices.Clone(b.Repeats)
	slices.SortFunc(r.repeats, func(a, b store.Repeat) int { return cmpInt64(a.EventID, b.EventID) })
	cs := slices.Clone(b.Correlations)
	slices.SortStableFunc(cs, func(a, b event.Correlation) int {
		return strings.Compare(store.CorrelationKey(a.CorrelationID), store.CorrelationKey(b.CorrelationID))
	})
	for _, c := range cs {
		created := c.CreatedAt
		if created.IsZero() {
			created = now
		}
		var related any
		if c.RelatedEventIDs != nil {
			related = c.RelatedEventIDs
		}
		r.correlations = append(r.correlations, []any{correlationUUID(c.CorrelationID),
			store.CleanText(string(c.Type), store.MaxCorrelationType), nullID(c.PrimaryEventID), related,
			store.CleanScore(c.Score), nullText(c.Reason, 0), store.CleanTime(created)})
	}
	return r, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// occurredAt is the stored occurred_at of e: the partition key cannot be
// NULL, so an event without one takes its receipt time.
func occurredAt(e *event.Event) time.Time {
	switch {
	case !e.OccurredAt.IsZero():
		return store.CleanTime(e.OccurredAt)
	case !e.ReceivedAt.IsZero():
		return store.CleanTime(e.ReceivedAt)
	}
	return store.CleanTime(event.TimeOfID(e.ID))
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func correlationUUID(s string) any {
	if s == "" {
		return nil
	}
	return store.CorrelationKey(s)
}

// WriteBatch stores b in one transaction: raw and processed events with
// COPY, repeats and correlation upserts in one pipelined round trip. The
// daily partitions the batch writes into are created first if needed. A
// replay of rows already stored is harmless: the COPY's unique violation
// makes it retry with INSERT ... ON CONFLICT DO NOTHING.
func (s *Store) WriteBatch(ctx context.Context, b *store.Batch) error {
	if b == nil || len(b.Raw)+len(b.New)+len(b.Repeats)+len(b.Correlations) == 0 {
		return nil
	}
	r, err := s.convert(b)
	if err != nil {
		return err
	}
	copyRows := true
	for attempt := 0; ; attempt++ {
		if err := s.ensure(ctx, rawTable, r.rawDays); err != nil {
			return err
		}
		if err := s.ensure(ctx, processedTable, r.processedDays); err != nil {
			return err
		}
		if attempt == 0 {
			// Keep the days ahead created in the background of normal
			// traffic, rather than at midnight.
			if err := s.ensureAhead(ctx); err != nil {
				return err
			}
		}
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.write(ctx, tx, r, copyRows) })
		if err == nil {
			return nil
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || attempt >= 4 || ctx.Err() != nil {
			return fmt.Errorf("postgres: write batch: %w", err)
		}
		switch pe.Code {
		case "23505": // unique_violation: a replay; insert row by row, skipping stored rows
			if !copyRows {
				return fmt.Errorf("postgres: write batch: %w", err)
			}
			copyRows = false
		case "23514": // check_violation: no partition for a row (dropped meanwhile)
			s.parts.reset()
		case "40P01", "40001": // deadlock, serialization failure
		default:
			return fmt.Errorf("postgres: write batch: %w", err)
		}
		s.log.Debug("retrying batch", "attempt", attempt+1, "code", pe.Code, "err", err)
	}
}

func (s *Store) write(ctx context.Context, tx pgx.Tx, r *rows, copyRows bool) error {
	pb := &pgx.Batch{}
	if copyRows {
		if len(r.raw) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events", rawTable}, rawColumns, pgx.CopyFromRows(r.raw)); err != nil {
				return fmt.Errorf("copy raw_events: %w", err)
			}
		}
		if len(r.processed) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events", processedTable}, processedColumns, pgx.CopyFromRows(r.processed)); err != nil {
				return fmt.Errorf("copy processed_events: %w", err)
			}
		}
	} else {
		for _, row := range r.raw {
			pb.Queue(insertRawSQL, row...)
		}
		for _, row := range r.processed {
			pb.Queue(insertProcessedSQL, row...)
		}
	}
	firstRepeat := pb.Len()
	for _, rp := range r.repeats {
		pb.Queue(repeatSQL, int32(min(max(rp.OccurrenceCount, 1), 1<<31-1)), nullTime(rp.LastSeenAt), rp.EventID, store.CleanTime(rp.OccurredAt))
	}
	for _, c := range r.correlations {
		pb.Queue(upsertCorrelationSQL, c...)
	}
	if pb.Len() == 0 {
		return nil
	}
	res := tx.SendBatch(ctx, pb)
	var missed []store.Repeat
	for i := 0; i < pb.Len(); i++ {
		tag, err := res.Exec()
		if err != nil {
			_ = res.Close()
			return err
		}
		if i >= firstRepeat && i < firstRepeat+len(r.repeats) && tag.RowsAffected() == 0 {
			missed = append(missed, r.repeats[i-firstRepeat])
		}
	}
	if err := res.Close(); err != nil {
		return err
	}
	// A repeat whose OccurredAt did not find the row: look in every
	// partition. Rare (the row's time differs from the repeat's).
	for _, rp := range missed {
		tag, err := tx.Exec(ctx, repeatAnySQL, int32(min(max(rp.OccurrenceCount, 1), 1<<31-1)), nullTime(rp.LastSeenAt), rp.EventID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			s.log.Debug("repeat of a missing event", "event_id", rp.EventID)
		}
	}
	return nil
}

// rawIDSlack bounds how far a raw event's received_at may be from the time
// in its id (they are set together at intake): StoredRawIDs searches the
// partitions of that range only.
const rawIDSlack = 24 * time.Hour

// StoredRawIDs returns which of ids have a raw_events row. The received_at
// range derived from the ids (event.TimeOfID, widened by a day each way)
// lets PostgreSQL search only the partitions that can hold them.
func (s *Store) StoredRawIDs(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	lo, hi := ids[0], ids[0]
	for _, id := range ids {
		lo, hi = min(lo, id), max(hi, id)
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM events.raw_events
		WHERE id = ANY($1) AND received_at >= $2 AND received_at < $3`,
		ids, store.CleanTime(event.TimeOfID(lo).Add(-rawIDSlack)), store.CleanTime(event.TimeOfID(hi).Add(rawIDSlack)))
	if err != nil {
		return nil, fmt.Errorf("postgres: stored raw ids: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("postgres: stored raw ids: %w", err)
	}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}
