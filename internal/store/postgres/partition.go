package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The partitioned tables and their partition column.
const (
	rawTable       = "raw_events"       // by received_at
	processedTable = "processed_events" // by occurred_at
)

// partitionLockKey serializes partition DDL across instances
// ("reflex-partitn").
const partitionLockKey int64 = 0x7265666c65787074

const secondsPerDay = 86400

// dayOf is the UTC day number of t (days since 1970-01-01).
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d--
	}
	return d
}

// dayStart is the first instant of day d, UTC.
func dayStart(d int64) time.Time { return time.Unix(d*secondsPerDay, 0).UTC() }

// partitionName is the name of the partition of table for day d, for
// example processed_events_p20261127.
func partitionName(table string, d int64) string {
	return table + "_p" + dayStart(d).Format("20060102")
}

// partitionDay parses a name made by partitionName.
func partitionDay(table, name string) (int64, bool) {
	suffix, ok := strings.CutPrefix(name, table+"_p")
	if !ok || len(suffix) != 8 {
		return 0, false
	}
	t, err := time.Parse("20060102", suffix)
	if err != nil {
		return 0, false
	}
	return dayOf(t), true
}

// partitions caches which daily partitions exist, so that a batch issues
// DDL only for a day it is the first to write into.
type partitions struct {
	mu     sync.Mutex
	known  map[string]map[int64]bool // table -> day -> exists
	loaded bool
	ddl    sync.Mutex // one creator at a time in this process
}

func newPartitions() *partitions {
	return &partitions{known: map[string]map[int64]bool{rawTable: {}, processedTable: {}}}
}

// missing returns the days of table that are not known to exist.
func (p *partitions) missing(table string, days map[int64]struct{}) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int64
	for d := range days {
		if !p.known[table][d] {
			out = append(out, d)
		}
	}
	return out
}

func (p *partitions) set(table string, d int64, exists bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if exists {
		p.known[table][d] = true
	} else {
		delete(p.known[table], d)
	}
}

func (p *partitions) isLoaded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loaded
}

func (p *partitions) setLoaded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loaded = true
}

// reset forgets every partition, so that the next batch reloads the list
// from the catalog (after an error that says a partition is missing).
func (p *partitions) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known = map[string]map[int64]bool{rawTable: {}, processedTable: {}}
	p.loaded = false
}

// listPartitions returns the day partitions of events.<table>.
func listPartitions(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, table string) (map[int64]string, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass`, "events."+table)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(names))
	for _, n := range names {
		if d, ok := partitionDay(table, n); ok {
			out[d] = n
		}
	}
	return out, nil
}

// ensure makes sure the partitions of table exist for every day in days.
func (s *Store) ensure(ctx context.Context, table string, days map[int64]struct{}) error {
	if len(s.parts.missing(table, days)) == 0 {
		return nil
	}
	s.parts.ddl.Lock()
	defer s.parts.ddl.Unlock()
	if !s.parts.isLoaded() {
		for _, t := range []string{rawTable, processedTable} {
			have, err := listPartitions(ctx, s.pool, t)
			if err != nil {
				return fmt.Errorf("postgres: list partitions: %w", err)
			}
			for d := range have {
				s.parts.set(t, d, true)
			}
		}
		s.parts.setLoaded()
	}
	need := s.parts.missing(table, days)
	if len(need) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, partitionLockKey); err != nil {
			return err
		}
		// Another instance may have created some meanwhile.
		have, err := listPartitions(ctx, tx, table)
		if err != nil {
			return err
		}
		for _, d := range need {
			if _, ok := have[d]; ok {
				continue
			}
			from, to := dayStart(d), dayStart(d+1)
			sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS events.%s PARTITION OF events.%s FOR VALUES FROM ('%s') TO ('%s')`,
				partitionName(table, d), table, from.Format(time.RFC3339), to.Format(time.RFC3339))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
			s.log.Debug("created partition", "table", table, "partition", partitionName(table, d))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: create partitions of %s: %w", table, err)
	}
	for _, d := range need {
		s.parts.set(table, d, true)
	}
	return nil
}

// ensureAhead creates the partitions of both tables from today to
// today+PartitionDaysAhead.
func (s *Store) ensureAhead(ctx context.Context) error {
	today := dayOf(s.now())
	days := make(map[int64]struct{}, s.ahead+1)
	for d := today; d <= today+int64(s.ahead); d++ {
		days[d] = struct{}{}
	}
	if err := s.ensure(ctx, rawTable, days); err != nil {
		return err
	}
	return s.ensure(ctx, processedTable, days)
}

// EnforceRetention drops the daily partitions of raw and processed events
// whose whole day is before before, and deletes the correlation rows
// created before it. It returns how many raw and processed events it
// removed: each partition is locked, counted and dropped in one
// transaction, so the count is exact.
func (s *Store) EnforceRetention(ctx context.Context, before time.Time) (int64, error) {
	s.parts.ddl.Lock()
	defer s.parts.ddl.Unlock()
	var total int64
	for _, table := range []string{rawTable, processedTable} {
		have, err := listPartitions(ctx, s.pool, table)
		if err != nil {
			return total, fmt.Errorf("postgres: retention: list partitions: %w", err)
		}
		for d, name := range have {
			if dayStart(d + 1).After(before) {
				continue
			}
			// Forget it first: a batch that still wants this day will
			// recreate it rather than fail.
			s.parts.set(table, d, false)
			n, err := s.dropPartition(ctx, name)
			if err != nil {
				return total, fmt.Errorf("postgres: retention: drop %s: %w", name, err)
			}
			total += n
			s.log.Info("dropped partition", "table", table, "partition", name, "rows", n)
		}
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM events.event_correlations WHERE created_at < $1`, before); err != nil {
		return total, fmt.Errorf("postgres: retention: delete correlations: %w", err)
	}
	return total, nil
}

// dropPartition drops the partition name of the events schema and returns
// how many rows it held. The partition is locked before it is counted, so
// that no row is written into it between the count and the drop. A batch
// writing into that day meanwhile waits for the drop and then recreates
// the partition; should it hold the parent's lock already, PostgreSQL
// detects the deadlock and the batch retries (WriteBatch retries 40P01). A
// partition that another instance dropped first counts 0.
func (s *Store) dropPartition(ctx context.Context, name string) (int64, error) {
	var n int64
	ident := "events." + pgx.Identifier{name}.Sanitize()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+ident+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DROP TABLE `+ident)
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return 0, nil
	}
	return n, err
}
