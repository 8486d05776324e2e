package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// retentionChunk is how many rows one retention transaction deletes, so
// that the writer is never held for long.
const retentionChunk = 5000

// EnforceRetention deletes raw events received and processed events that
// occurred before before, and correlation rows created before it, in
// transactions of at most 5,000 rows. It returns how many raw and processed
// events it deleted.
func (s *Store) EnforceRetention(ctx context.Context, before time.Time) (int64, error) {
	b := store.CleanTime(before).UnixMicro()
	var total int64

	// Raw events: ids follow receipt time, so walk the rowid range up to a
	// day past before (received_at and the id's time are set together).
	idBound := event.IDAt(store.CleanTime(before).Add(24 * time.Hour))
	var cursor int64 = -1 << 63
	for {
		var end *int64
		err := s.r.QueryRowContext(ctx, `SELECT max(id) FROM (SELECT id FROM raw_events
			WHERE id > ? AND id < ? ORDER BY id LIMIT ?)`, cursor, idBound, retentionChunk).Scan(&end)
		if err != nil {
			return total, fmt.Errorf("sqlite: retention: raw events: %w", err)
		}
		if end == nil {
			break
		}
		n, err := s.deleteChunk(ctx, `DELETE FROM raw_events WHERE id > ? AND id <= ? AND received_at < ?`, cursor, *end, b)
		if err != nil {
			return total, fmt.Errorf("sqlite: retention: raw events: %w", err)
		}
		total += n
		cursor = *end
	}

	// Processed events, through the occurred_at index.
	for {
		n, err := s.deleteChunk(ctx, `DELETE FROM processed_events WHERE id IN (
			SELECT id FROM processed_events WHERE occurred_at < ? ORDER BY occurred_at LIMIT ?)`, b, retentionChunk)
		if err != nil {
			return total, fmt.Errorf("sqlite: retention: processed events: %w", err)
		}
		total += n
		if n < retentionChunk {
			break
		}
	}

	// Correlations: rowid order is creation order, so old rows come first.
	for {
		n, err := s.deleteChunk(ctx, `DELETE FROM event_correlations WHERE id IN (
			SELECT id FROM event_correlations WHERE created_at < ? LIMIT ?)`, b, retentionChunk)
		if err != nil {
			return total, fmt.Errorf("sqlite: retention: correlations: %w", err)
		}
		if n < retentionChunk {
			break
		}
	}
	if total > 0 {
		s.log.Info("retention deleted events", "events", total, "before", before)
	}
	return total, nil
}

// deleteChunk runs one bounded delete in its own transaction.
func (s *Store) deleteChunk(ctx context.Context, q string, args ...any) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
