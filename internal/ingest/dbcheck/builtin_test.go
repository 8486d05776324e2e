package dbcheck

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// TestBuiltinsRun runs every built-in check against the real PostgreSQL
// and MariaDB servers: each query is valid there and has a value or rows
// as its condition expects. (The end-to-end tests of internal/server see
// them raise and resolve.)
func TestBuiltinsRun(t *testing.T) {
	servers := map[string]func(testing.TB) string{DriverPostgres: testutil.PostgresURL, DriverMySQL: testutil.MySQLDSN}
	for _, driver := range []string{DriverPostgres, DriverMySQL} {
		t.Run(driver, func(t *testing.T) {
			dsn := servers[driver](t)
			var (
				q   querier
				err error
			)
			if driver == DriverMySQL {
				q, err = openMySQL(dsn, 2)
			} else {
				q, err = openPostgres(dsn, 2)
			}
			require.NoError(t, err)
			defer q.close()
			for _, b := range builtins {
				if b.driver != driver {
					continue
				}
				t.Run(b.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					res, err := b.run(ctx, q, b.threshold)
					require.NoError(t, err)
					cond, err := ParseCondition(b.condition(b.threshold))
					require.NoError(t, err)
					if !b.delta { // a growth check's reading is no growth
						require.False(t, cond.Holds(res.Value, res.Rows), "an idle test database raises nothing: %+v", res)
					}
					if b.name != "replication_lag" && !b.rows && !b.inQuery {
						require.NotNil(t, res.Value, "%s measures a value", b.name)
					}
				})
			}
		})
	}
}

// TestQueryValues: values of the common column types become numbers,
// text and times in a sample, and the first column is the value.
func TestQueryValues(t *testing.T) {
	pg, err := openPostgres(testutil.PostgresURL(t), 1)
	require.NoError(t, err)
	defer pg.close()
	ctx := context.Background()
	res, err := pg.query(ctx, `SELECT 2.5::numeric AS n, 7::int8 AS i, 'x'::text AS s, NULL::text AS z, true AS b,
		'2026-03-01T12:00:00Z'::timestamptz AS ts, ARRAY[1,2]::int4[] AS a, interval '90 seconds' AS iv, repeat('é', 300) AS long
		FROM generate_series(1, 7)`)
	require.NoError(t, err)
	require.Equal(t, 2.5, *res.Value)
	require.Equal(t, 7, res.Rows)
	require.Len(t, res.Sample, SampleRows)
	row := res.Sample[0]
	require.Equal(t, 2.5, row["n"])
	require.Equal(t, 7.0, row["i"])
	require.Equal(t, "x", row["s"])
	require.Nil(t, row["z"])
	require.Equal(t, true, row["b"])
	require.Equal(t, "2026-03-01T12:00:00Z", row["ts"])
	require.Equal(t, []any{1.0, 2.0}, row["a"])
	require.Equal(t, 90.0, row["iv"])
	require.LessOrEqual(t, len(row["long"].(string)), maxCellBytes+len("…"))

	my, err := openMySQL(testutil.MySQLDSN(t), 1)
	require.NoError(t, err)
	defer my.close()
	res, err = my.query(ctx, `SELECT 41.5 AS n, 'x' AS s, NULL AS z`)
	require.NoError(t, err)
	require.Equal(t, 41.5, *res.Value)
	require.Equal(t, 1, res.Rows)
	require.Equal(t, "x", res.Sample[0]["s"])
	require.Nil(t, res.Sample[0]["z"])
	res, err = my.query(ctx, `SELECT 'not a number'`)
	require.NoError(t, err)
	require.Nil(t, res.Value)
}
