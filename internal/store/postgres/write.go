package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlstore"
)

var (
	insertRawSQL       = sqlstore.Postgres.InsertSQL("events."+rawTable, sqlstore.RawColumns, 1)
	insertProcessedSQL = sqlstore.Postgres.InsertSQL("events."+processedTable, sqlstore.ProcessedColumns, 1)
	// repeatSQL locates the partition with occurred_at; repeatAnySQL is
	// the fallback for an OccurredAt that does not match the stored one.
	repeatSQL            = sqlstore.RepeatSQL(sqlstore.Postgres, true)
	repeatAnySQL         = sqlstore.RepeatSQL(sqlstore.Postgres, false)
	upsertCorrelationSQL = sqlstore.UpsertCorrelationSQL(sqlstore.Postgres)
)

// rows is a batch encoded once (sqlstore.Encode), with the days of the
// partitions it writes into; reused by retries.
type rows struct {
	*sqlstore.Encoded
	rawDays       map[int64]struct{}
	processedDays map[int64]struct{}
}

func (s *Store) convert(b *store.Batch) (*rows, error) {
	enc, err := sqlstore.Encode(sqlstore.Postgres, b, s.now().UTC())
	if err != nil {
		return nil, err
	}
	r := &rows{Encoded: enc, rawDays: map[int64]struct{}{}, processedDays: map[int64]struct{}{}}
	for _, row := range enc.Raw {
		r.rawDays[dayOf(row[sqlstore.RawReceivedAt].(time.Time))] = struct{}{}
	}
	for _, row := range enc.Processed {
		r.processedDays[dayOf(row[sqlstore.ProcessedOccurredAt].(time.Time))] = struct{}{}
	}
	return r, nil
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
		if len(r.Raw) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events", rawTable}, sqlstore.RawColumns, pgx.CopyFromRows(r.Raw)); err != nil {
				return fmt.Errorf("copy raw_events: %w", err)
			}
		}
		if len(r.Processed) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events", processedTable}, sqlstore.ProcessedColumns, pgx.CopyFromRows(r.Processed)); err != nil {
				return fmt.Errorf("copy processed_events: %w", err)
			}
		}
	} else {
		for _, row := range r.Raw {
			pb.Queue(insertRawSQL, row...)
		}
		for _, row := range r.Processed {
			pb.Queue(insertProcessedSQL, row...)
		}
	}
	firstRepeat := pb.Len()
	for _, rp := range r.Repeats {
		pb.Queue(repeatSQL, rp...)
	}
	for _, c := range r.Correlations {
		pb.Queue(upsertCorrelationSQL, c...)
	}
	if pb.Len() == 0 {
		return nil
	}
	res := tx.SendBatch(ctx, pb)
	var missed [][]any
	for i := 0; i < pb.Len(); i++ {
		tag, err := res.Exec()
		if err != nil {
			_ = res.Close()
			return err
		}
		if i >= firstRepeat && i < firstRepeat+len(r.Repeats) && tag.RowsAffected() == 0 {
			missed = append(missed, r.Repeats[i-firstRepeat])
		}
	}
	if err := res.Close(); err != nil {
		return err
	}
	// A repeat whose OccurredAt did not find the row: look in every
	// partition. Rare (the row's time differs from the repeat's).
	for _, rp := range missed {
		tag, err := tx.Exec(ctx, repeatAnySQL, rp[:3]...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			s.log.Debug("repeat of a missing event", "event_id", rp[2])
		}
	}
	return nil
}
