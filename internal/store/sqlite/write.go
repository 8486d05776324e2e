package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlstore"
)

// insertChunk is how many rows one multi-row INSERT carries: fewer
// statement executions per batch, well below SQLite's 32,766 parameters.
const insertChunk = 32

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
	d := sqlstore.SQLite
	raw := prep(d.InsertSQL(sqlstore.RawTable, sqlstore.RawColumns, 1))
	processed := prep(d.InsertSQL(sqlstore.ProcessedTable, sqlstore.ProcessedColumns, 1))
	rawMany := prep(d.InsertSQL(sqlstore.RawTable, sqlstore.RawColumns, insertChunk))
	processedMany := prep(d.InsertSQL(sqlstore.ProcessedTable, sqlstore.ProcessedColumns, insertChunk))
	// One table, no partitions: the update need not match occurred_at.
	repeat, upsert := prep(sqlstore.RepeatSQL(d, false)), prep(sqlstore.UpsertCorrelationSQL(d))
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
	rows   *sqlstore.Encoded
	urgent bool
	state  atomic.Int32
	done   chan error
}

var errClosed = errors.New("sqlite: store is closed")

// WriteBatch stores b in one transaction (possibly shared with batches of
// other goroutines: each is all or nothing). ON CONFLICT DO NOTHING makes a
// replay of stored raw and processed events harmless. It returns once the
// transaction is durable (synchronous=FULL).
func (s *Store) WriteBatch(ctx context.Context, b *store.Batch) error {
	if b == nil || len(b.Raw)+len(b.New)+len(b.Repeats)+len(b.Correlations) == 0 {
		return nil
	}
	r, err := sqlstore.Encode(sqlstore.SQLite, b, s.now())
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
			n += r.rows.Size()
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
	// exec runs stmt once per row, with the first args values of each
	// (all when args is 0).
	exec := func(stmt *sql.Stmt, what string, rs [][]any, args int) error {
		if len(rs) == 0 {
			return nil
		}
		st := tx.StmtContext(ctx, stmt) //nolint:sqlclosecheck // closed with the transaction
		for _, row := range rs {
			if args > 0 {
				row = row[:args]
			}
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
		return exec(one, what, rs, 0)
	}
	for _, r := range group {
		if err := insert(s.stmts.rawMany, s.stmts.raw, "insert raw_events", r.rows.Raw); err != nil {
			return err
		}
		if err := insert(s.stmts.processedMany, s.stmts.processed, "insert processed_events", r.rows.Processed); err != nil {
			return err
		}
		if err := exec(s.stmts.repeat, "update repeats", r.rows.Repeats, 3); err != nil {
			return err
		}
		if err := exec(s.stmts.upsertCorrels, "upsert event_correlations", r.rows.Correlations, 0); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: write batch: commit: %w", err)
	}
	return nil
}
