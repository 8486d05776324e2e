package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DB is what the queries of this package need of a connection pool or a
// transaction: database/sql (SQLDB) and pgx (the postgres package's
// adapter) both provide it. Queries are written with ? placeholders; DB
// implementations receive them rebound by the Dialect.
type DB interface {
	Query(ctx context.Context, q string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) Row
	// Exec runs q and returns how many rows it changed.
	Exec(ctx context.Context, q string, args ...any) (int64, error)
}

// Row is one row of QueryRow; Scan returns an error wrapping
// sql.ErrNoRows when there is none.
type Row interface {
	Scan(dest ...any) error
}

// Rows is the result of Query. Close may be called more than once.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// SQLDB adapts a database/sql pool or transaction to DB.
type SQLDB struct{ DB SQLConn }

// SQLConn is what SQLDB needs: *sql.DB and *sql.Tx provide it.
type SQLConn interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// SQLBegin returns the Options.Begin of a database/sql pool: fn runs in a
// transaction of db, committed when fn returns nil and rolled back
// otherwise.
func SQLBegin(db *sql.DB) func(ctx context.Context, fn func(tx DB) error) error {
	return func(ctx context.Context, fn func(tx DB) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(SQLDB{DB: tx}); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
}

var _ DB = SQLDB{}

// Query runs a query that returns rows.
func (s SQLDB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	rs, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

// QueryRow runs a query that returns at most one row.
func (s SQLDB) QueryRow(ctx context.Context, q string, args ...any) Row {
	return s.DB.QueryRowContext(ctx, q, args...)
}

// Exec runs a statement and returns how many rows it changed.
func (s SQLDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.DB.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// Where builds a WHERE clause from conditions with ? placeholders.
type Where struct {
	conds []string
	args  []any
}

// Add adds a condition and the arguments of its placeholders.
func (w *Where) Add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// Clause is " WHERE c1 AND c2 ..." or "" without conditions.
func (w *Where) Clause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Args are the arguments of the conditions, in order.
func (w *Where) Args() []any { return w.args }

// timeDest scans a time column as either database stores it (unix
// microseconds, timestamptz); NULL is the zero time.
type timeDest struct{ p *time.Time }

func (t timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t.p = time.Time{}
	case int64:
		*t.p = time.UnixMicro(v).UTC()
	case time.Time:
		*t.p = v.UTC()
	default:
		return fmt.Errorf("time column: unexpected %T", src)
	}
	return nil
}

// Time is a scan destination for a time column (written by Dialect.Time
// or NullTime) of either dialect.
func Time(p *time.Time) any { return timeDest{p} }

// jsonDest scans a JSON text column into *p; NULL is the zero value. A
// value that does not decode sets *bad.
type jsonDest[T any] struct {
	p   *T
	bad *error
}

func (j jsonDest[T]) Scan(src any) error {
	var zero T
	*j.p = zero
	var err error
	switch v := src.(type) {
	case nil:
	case string:
		err = json.Unmarshal([]byte(v), j.p)
	case []byte:
		err = json.Unmarshal(v, j.p)
	default:
		err = fmt.Errorf("json column: unexpected %T", src)
	}
	if err != nil {
		*j.p = zero
		*j.bad = err
	}
	return nil
}
