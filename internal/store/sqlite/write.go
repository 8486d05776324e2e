package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Columns of the inserts, in the order convert produces their values.
var (
	rawColumns = []string{"id", "source_system", "source_type", "received_at", "processed",
		"processing_errors", "processed_event_id", "raw_data"}
	processedColumns = []string{"id", "raw_event_id", "event_type", "severity", "source_host",
		"source_service", "occurred_at", "processed_at", "correlation_id", "parent_event_id",
		"source_system", "source_type", "received_at", "fingerprint", "occurrence_count",
		"last_seen_at", "priority", "title", "tags", "description", "event_data"}
)

// insertChunk is how many rows one multi-row INSERT carries: fewer
// statement executions per batch, well below SQLite's 32,766 parameters.
const insertChunk = 32

// insertSQL is an INSERT OR IGNORE (a replayed row is skipped) of n rows.
func insertSQL(table string, cols []string, n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	return "INSERT OR IGNORE INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

const (
	// repeatSQL keeps both columns monotonic when batches race.
	repeatSQL = `UPDATE processed_events SET
		occurrence_count = max(occurrence_count, ?1),
		last_seen_at = CASE WHEN ?2 IS NULL OR (last_seen_at IS NOT NULL AND last_seen_at >= ?2)
			THEN last_seen_at ELSE ?2 END
		WHERE id = ?3`
	upsertCorrelationSQL = `INSERT INTO event_correlations (correlation_id, correlation_type,
		primary_event_id, related_event_ids, correlation_score, correlation_reason, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (correlation_id) DO UPDATE SET
			correlation_type = excluded.correlation_type,
			primary_event_id = excluded.primary_event_id,
			related_event_ids = excluded.related_event_ids,
			correlation_score = excluded.correlation_score,
			correlation_reason = excluded.correlation_reason
		WHERE coalesce(json_array_length(event_correlations.related_event_ids), 0) <= coalesce(json_array_length(excluded.related_event_ids), 0)`
)

// writeStmts are the statements of WriteBatch, prepared once on the writer
// connection.
type writeStmts struct {
	mu                                    sync.Mutex
	raw, processed, repeat, upsertCorrels *sql.Stmt
	rawMany, processedMany                *sql.Stmt // insertChunk rows
}

func (s *Store) prepare(ctx context.Context) error {
	st := &s.stmts
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.raw != nil {
		return nil
	}
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var p *sql.Stmt
		p, err = s.w.PrepareContext(ctx, q)
		return p
	}
	raw, processed := prep(insertSQL("raw_events", rawColumns, 1)), prep(insertSQL("processed_events", processedColumns, 1))
	rawMany := prep(insertSQL("raw_events", rawColumns, insertChunk))
	processedMany := prep(insertSQL("processed_events", processedColumns, insertChunk))
	repeat, upsert := prep(repeatSQL), prep(upsertCorrelationSQL)
	if err != nil {
		for _, p := range []*sql.Stmt{raw, processed, repeat, upsert, rawMany, processedMany} {
			if p != nil {
				p.Close()
			}
		}
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	st.raw, st.processed, st.repeat, st.upsertCorrels = raw, processed, repeat, upsert
	st.rawMany, st.processedMany = rawMany, processedMany
	return nil
}

func (st *writeStmts) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, p := range []*sql.Stmt{st.raw, st.processed, st.repeat, st.upsertCorrels, st.rawMany, st.processedMany} {
		if p != nil {
			p.Close()
		}
	}
	st.raw = nil
}

// rows is a batch converted to column values, outside the writer.
type rows struct {
	raw, processed, repeats, correlations [][]any
}

func (r *rows) size() int {
	return len(r.raw) + len(r.processed) + len(r.repeats) + len(r.correlations)
}

func (s *Store) convert(b *store.Batch) (*rows, error) {
	now := s.now()
	r := &rows{raw: make([][]any, len(b.Raw)), processed: make([][]any, len(b.New))}
	for i := range b.Raw {
		e := &b.Raw[i]
		recv := e.ReceivedAt
		if recv.IsZero() {
			recv = event.TimeOfID(e.ID)
		}
		errs, err := stringsJSON(e.ProcessingErrors)
		if err != nil {
			return nil, fmt.Errorf("sqlite: encode processing_errors of raw event %d: %w", e.ID, err)
		}
		r.raw[i] = []any{e.ID, store.CleanText(e.SourceSystem, store.MaxSourceSystem),
			store.CleanText(string(e.SourceType), store.MaxSourceType), micros(recv), e.Processed, errs,
			nullID(e.ProcessedEventID), string(store.CleanJSON(e.Data))}
	}
	for i := range b.New {
		e := &b.New[i]
		data, err := eventJSON(e)
		if err != nil {
			return nil, fmt.Errorf("sqlite: encode event_data of event %d: %w", e.ID, err)
		}
		tags, err := tagsJSON(e.Tags)
		if err != nil {
			return nil, fmt.Errorf("sqlite: encode tags of event %d: %w", e.ID, err)
		}
		proc := e.ProcessedAt
		if proc.IsZero() {
			proc = now
		}
		last := e.LastSeenAt
		if last.IsZero() {
			last = e.ReceivedAt
		}
		r.processed[i] = []any{e.ID, nullID(e.RawEventID), store.CleanText(e.EventType, store.MaxEventType),
			store.CleanText(string(e.Severity), store.MaxSeverity), nullText(e.SourceHost, store.MaxHost),
			nullText(e.SourceService, store.MaxService), micros(occurredAt(e)), micros(proc),
			correlationUUID(e.CorrelationID), nullID(e.ParentEventID),
			nullText(e.SourceSystem, store.MaxSourceSystem), nullText(string(e.SourceType), store.MaxSourceType),
			nullMicros(e.ReceivedAt), nullText(e.Fingerprint, store.MaxFingerprint),
			min(max(e.OccurrenceCount, 1), 1<<31-1), nullMicros(last), max(min(e.Priority, 32767), -32768),
			store.CleanText(e.Title, store.MaxTitle), tags, nullText(e.Description, 0), data}
	}
	for _, rp := range b.Repeats {
		r.repeats = append(r.repeats, []any{min(max(rp.OccurrenceCount, 1), 1<<31-1), nullMicros(rp.LastSeenAt), rp.EventID})
	}
	for _, c := range b.Correlations {
		created := c.CreatedAt
		if created.IsZero() {
			created = now
		}
		var related any
		if c.RelatedEventIDs != nil {
			related = jsonInts(c.RelatedEventIDs)
		}
		r.correlations = append(r.correlations, []any{store.CorrelationKey(c.CorrelationID),
			store.CleanText(string(c.Type), store.MaxCorrelationType), nullID(c.PrimaryEventID), related,
			store.CleanScore(c.Score), nullText(c.Reason, 0), micros(created)})
	}
	return r, nil
}

// jsonInts encodes ids as a JSON array.
func jsonInts(ids []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// occurredAt is the stored occurred_at of e (NOT NULL): an event without
// one takes its receipt time, as in PostgreSQL.
func occurredAt(e *event.Event) time.Time {
	switch {
	case !e.OccurredAt.IsZero():
		return e.OccurredAt
	case !e.ReceivedAt.IsZero():
		return e.ReceivedAt
	}
	return event.TimeOfID(e.ID)
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

// Group commit. Every SQLite commit costs an fsync and rewrites each index
// page it touched, so the writer commits the batches that queued up while
// it was busy in one transaction, up to maxGroupRows rows. If that
// transaction fails, it writes them one by one, so that one bad batch fails
// alone.
const maxGroupRows = 20000

// Request states.
const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

type writeReq struct {
	rows   *rows
	urgent bool
	state  atomic.Int32
	done   chan error
}

var errClosed = errors.New("sqlite: store is closed")

// WriteBatch stores b in one transaction (possibly shared with batches of
// other goroutines: each is all or nothing). INSERT OR IGNORE makes a
// replay of stored raw and processed events harmless. It returns once the
// transaction is durable (synchronous=FULL).
func (s *Store) WriteBatch(ctx context.Context, b *store.Batch) error {
	if b == nil || len(b.Raw)+len(b.New)+len(b.Repeats)+len(b.Correlations) == 0 {
		return nil
	}
	r, err := s.convert(b)
	if err != nil {
		return err
	}
	req := &writeReq{rows: r, urgent: b.Urgent, done: make(chan error, 1)}
	queue := s.queue
	if b.Urgent {
		queue = s.urgent
	}
	select {
	case <-s.quit:
		return errClosed
	case <-ctx.Done():
		return fmt.Errorf("sqlite: write batch: %w", ctx.Err())
	case queue <- req:
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqQueued, reqCancelled) {
			return fmt.Errorf("sqlite: write batch: %w", ctx.Err())
		}
		// Already being written: its outcome is the answer.
		return <-req.done
	case <-s.stopped:
		if req.state.CompareAndSwap(reqQueued, reqCancelled) {
			return errClosed
		}
		return <-req.done
	}
}

// writer is the goroutine that owns the write connection.
func (s *Store) writer() {
	defer close(s.stopped)
	for {
		group, ok := nextGroup(s.quit, s.urgent, s.queue)
		if !ok {
			s.drain()
			return
		}
		if len(group) == 0 {
			continue
		}
		err := s.commit(group)
		if err != nil && len(group) > 1 {
			s.log.Debug("group commit failed, writing batches one by one", "batches", len(group), "err", err)
			for _, r := range group {
				r.done <- s.commit([]*writeReq{r})
			}
			continue
		}
		for _, r := range group {
			r.done <- err
		}
	}
}

// nextGroup waits for the next request and returns it with the requests
// that queued up behind it, up to maxGroupRows rows; ok is false once quit
// is closed. Urgent requests go first, and an urgent group takes only
// urgent requests: a critical event never waits for a large commit that
// starts after it arrived. A normal group takes urgent requests that queued
// meanwhile too, since they would otherwise wait for it. Requests cancelled
// by their callers are skipped.
func nextGroup(quit <-chan struct{}, urgent, queue <-chan *writeReq) (group []*writeReq, ok bool) {
	var first *writeReq
	select {
	case first = <-urgent:
	default:
		select {
		case <-quit:
			return nil, false
		case first = <-urgent:
		case first = <-queue:
		}
	}
	n := 0
	take := func(r *writeReq) {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			group = append(group, r)
			n += r.rows.size()
		}
	}
	take(first)
	normal := queue
	if first.urgent {
		normal = nil // a nil channel is never ready
	}
	for n < maxGroupRows {
		select {
		case r := <-urgent:
			take(r)
		case r := <-normal:
			take(r)
		default:
			return group, true
		}
	}
	return group, true
}

// drain answers the requests still queued at Close.
func (s *Store) drain() {
	for {
		select {
		case r := <-s.queue:
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.done <- errClosed
			}
		case r := <-s.urgent:
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.done <- errClosed
			}
		default:
			return
		}
	}
}

// commit writes the rows of group in one transaction.
func (s *Store) commit(group []*writeReq) error {
	// Not the callers' contexts: the group is shared, and a caller that
	// gives up waits for the outcome anyway.
	ctx := context.Background()
	if err := s.prepare(ctx); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: write batch: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	exec := func(stmt *sql.Stmt, what string, rs [][]any) error {
		if len(rs) == 0 {
			return nil
		}
		st := tx.StmtContext(ctx, stmt) //nolint:sqlclosecheck // closed with the transaction
		for _, row := range rs {
			if _, err := st.ExecContext(ctx, row...); err != nil {
				return fmt.Errorf("sqlite: write batch: %s: %w", what, err)
			}
		}
		return nil
	}
	// insert writes rows insertChunk at a time, the rest one by one.
	var args []any
	insert := func(many, one *sql.Stmt, what string, rs [][]any) error {
		if len(rs) >= insertChunk {
			st := tx.StmtContext(ctx, many) //nolint:sqlclosecheck // closed with the transaction
			for len(rs) >= insertChunk {
				args = args[:0]
				for _, row := range rs[:insertChunk] {
					args = append(args, row...)
				}
				if _, err := st.ExecContext(ctx, args...); err != nil {
					return fmt.Errorf("sqlite: write batch: %s: %w", what, err)
				}
				rs = rs[insertChunk:]
			}
		}
		return exec(one, what, rs)
	}
	for _, r := range group {
		if err := insert(s.stmts.rawMany, s.stmts.raw, "insert raw_events", r.rows.raw); err != nil {
			return err
		}
		if err := insert(s.stmts.processedMany, s.stmts.processed, "insert processed_events", r.rows.processed); err != nil {
			return err
		}
		if err := exec(s.stmts.repeat, "update repeats", r.rows.repeats); err != nil {
			return err
		}
		if err := exec(s.stmts.upsertCorrels, "upsert event_correlations", r.rows.correlations); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: write batch: commit: %w", err)
	}
	return nil
}

// StoredRawIDs returns which of ids have a raw_events row.
func (s *Store) StoredRawIDs(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list := jsonInts(slices.Compact(slices.Sorted(slices.Values(ids))))
	rs, err := s.r.QueryContext(ctx, `SELECT id FROM raw_events WHERE id IN (SELECT value FROM json_each(?))`, list)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stored raw ids: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: stored raw ids: %w", err)
		}
		out[id] = true
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: stored raw ids: %w", err)
	}
	return out, nil
}
