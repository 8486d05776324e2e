package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/reflex-ops/reflex/internal/store/sqlstore"
)

// pgxDB adapts a pgx pool or transaction to sqlstore.DB.
type pgxDB struct {
	q interface {
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	}
}

var _ sqlstore.DB = pgxDB{}

// pgxBegin is sqlstore.Options.Begin on pool: fn runs in a transaction.
func pgxBegin(pool *pgxpool.Pool) func(ctx context.Context, fn func(tx sqlstore.DB) error) error {
	return func(ctx context.Context, fn func(tx sqlstore.DB) error) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(pgxDB{tx}) })
	}
}

func (p pgxDB) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return p.q.Query(ctx, q, args...) //nolint:sqlclosecheck // an adapter: its caller closes the rows
}

func (p pgxDB) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return p.q.QueryRow(ctx, q, args...)
}

func (p pgxDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
