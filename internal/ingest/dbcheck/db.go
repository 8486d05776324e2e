package dbcheck

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Bounds of a result.
const (
	// MaxRows is the most rows of a result that are read (and counted):
	// rows is at most MaxRows.
	MaxRows = 1000
	// SampleRows is how many of them an event carries.
	SampleRows = 5
	// maxCellBytes bounds one text value of a sampled row.
	maxCellBytes = 256
)

// Result is what one run of a query returned.
type Result struct {
	// Value is the first column of the first row as a number; nil when
	// there is no row, the value is NULL or it is not a number.
	Value *float64
	// Rows is the number of rows, up to MaxRows.
	Rows int
	// Sample are the first SampleRows rows, by column name, with values
	// made fit for JSON (numbers, strings, booleans, null).
	Sample []map[string]any
}

// querier runs a query on one database. It is safe for concurrent use.
type querier interface {
	query(ctx context.Context, q string) (*Result, error)
	close()
}

// pgDB is a PostgreSQL database, through a small pgx pool.
type pgDB struct{ pool *pgxpool.Pool }

func openPostgres(dsn string, maxConns int) (*pgDB, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = int32(min(maxConns, 100)) //nolint:gosec // bounded above
	pc.MinConns = 0
	pc.MaxConnIdleTime = 5 * time.Minute
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "reflex-dbcheck"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc) // connects lazily
	if err != nil {
		return nil, err
	}
	return &pgDB{pool: pool}, nil
}

func (d *pgDB) query(ctx context.Context, q string) (*Result, error) {
	rows, err := d.pool.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = f.Name
	}
	res := &Result{}
	for rows.Next() {
		if res.Rows == MaxRows {
			break
		}
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		res.add(cols, vals)
	}
	return res, rows.Err()
}

func (d *pgDB) close() { d.pool.Close() }

// sqlDB is a MySQL or MariaDB database, through database/sql.
type sqlDB struct{ db *sql.DB }

func openMySQL(dsn string, maxConns int) (*sqlDB, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if mc.Timeout == 0 {
		mc.Timeout = DefaultTimeout
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn) // connects lazily
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &sqlDB{db: db}, nil
}

func (d *sqlDB) query(ctx context.Context, q string) (*Result, error) {
	rows, err := d.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	res := &Result{}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if res.Rows == MaxRows {
			break
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		res.add(cols, vals)
	}
	return res, rows.Err()
}

func (d *sqlDB) close() { _ = d.db.Close() }

// add counts a row, takes its value if it is the first and samples it.
func (r *Result) add(cols []string, vals []any) {
	if r.Rows == 0 && len(vals) > 0 {
		if f, ok := number(vals[0]); ok {
			r.Value = &f
		}
	}
	r.Rows++
	if len(r.Sample) < SampleRows {
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			if i < len(vals) {
				row[c] = jsonValue(vals[i], 0)
			}
		}
		r.Sample = append(r.Sample, row)
	}
}

// number reads a database value as a finite number.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case int64:
		f = float64(x)
	case int32:
		f = float64(x)
	case int16:
		f = float64(x)
	case int8:
		f = float64(x)
	case int:
		f = float64(x)
	case uint64:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint16:
		f = float64(x)
	case uint8:
		f = float64(x)
	case uint:
		f = float64(x)
	case float64:
		f = x
	case float32:
		f = float64(x)
	case bool:
		if x {
			f = 1
		}
	case pgtype.Numeric:
		fv, err := x.Float64Value()
		if err != nil || !fv.Valid {
			return 0, false
		}
		f = fv.Float64
	case *big.Int:
		f, _ = new(big.Float).SetInt(x).Float64()
	case []byte:
		return parseNumber(string(x))
	case string:
		return parseNumber(x)
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// jsonValue makes a database value fit for event_data: numbers stay
// numbers (finite ones), text is cut to maxCellBytes, times are RFC 3339,
// and anything else is its text.
func jsonValue(v any, depth int) any {
	switch x := v.(type) {
	case nil, bool, string, []byte:
		if b, ok := x.([]byte); ok {
			if !utf8.Valid(b) {
				return cut(base64.StdEncoding.EncodeToString(b))
			}
			return cut(string(b))
		}
		if s, ok := x.(string); ok {
			return cut(s)
		}
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return x.Seconds()
	case pgtype.Interval:
		if !x.Valid {
			return nil
		}
		us := x.Microseconds + int64(x.Days)*86400e6 + int64(x.Months)*30*86400e6
		return float64(us) / 1e6
	case netip.Prefix, netip.Addr:
		return fmt.Sprint(x)
	case []any:
		if depth > 2 {
			return cut(fmt.Sprint(x))
		}
		out := make([]any, 0, min(len(x), SampleRows*4))
		for i, e := range x {
			if i == cap(out) {
				break
			}
			out = append(out, jsonValue(e, depth+1))
		}
		return out
	}
	if f, ok := number(v); ok {
		return f
	}
	return cut(fmt.Sprint(v))
}

func cut(s string) string { return cutText(s, maxCellBytes) }
