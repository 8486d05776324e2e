// Package postgres is the PostgreSQL implementation of store.Store: the
// seed's schemas events, rules and autonomous, raw and processed events in
// daily range partitions, batches written with COPY. It uses pgx and a
// pgxpool connection pool.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// Options configures Open. The zero value of every field but URL is a safe
// default.
type Options struct {
	// URL is the PostgreSQL connection URL (required), for example
	// postgres://reflex@db:5432/reflex?sslmode=verify-full. pgx pool
	// settings such as pool_max_conns may be given in it.
	URL string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. It decides which daily
	// partitions are created ahead and stamps rows whose time is unset.
	Now func() time.Time
	// PartitionDaysAhead is how many days after today get their partitions
	// created ahead of need (default 3). Partitions for any other day are
	// created when a batch first writes into it.
	PartitionDaysAhead int
	// Registerer receives the store's metrics
	// (reflex_store_unreadable_rows_total); nil means do not register.
	Registerer prometheus.Registerer
}

// Store is the PostgreSQL store. It is safe for concurrent use. Its queries
// are the shared ones of sqlstore; what is its own is COPY, the daily
// partitions, retention and migrations.
type Store struct {
	*sqlstore.Queries

	pool   *pgxpool.Pool
	log    *slog.Logger
	now    func() time.Time
	ahead  int
	parts  *partitions
	closed sync.Once
}

// Open connects to PostgreSQL and checks that it answers. It does not
// change the schema: call Migrate for that (it is safe at every start).
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errors.New("postgres: Options.URL is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PartitionDaysAhead <= 0 {
		o.PartitionDaysAhead = 3
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	// Every session works in UTC so that date_trunc and day boundaries do
	// not depend on the server's time zone.
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	log := o.Logger.With("component", "store", "store", "postgres")
	q, err := sqlstore.New(sqlstore.Postgres, pgxDB{pool}, pgxDB{pool},
		sqlstore.Options{Logger: log, Registerer: o.Registerer, Now: o.Now, Begin: pgxBegin(pool)})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{
		Queries: q,
		pool:    pool,
		log:     log,
		now:     o.Now,
		ahead:   o.PartitionDaysAhead,
		parts:   newPartitions(),
	}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// If the schema exists already, make sure the coming days have their
	// partitions now rather than in the first batch.
	var migrated bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('events.raw_events') IS NOT NULL`).Scan(&migrated); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: check schema: %w", err)
	}
	if migrated {
		if err := s.ensureAhead(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Pool returns the connection pool, for components that keep their own
// tables in the same database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool. It is idempotent.
func (s *Store) Close() error {
	s.closed.Do(s.pool.Close)
	return nil
}
