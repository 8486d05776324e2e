package audit_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/postgres"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
	"github.com/reflex-ops/reflex/internal/testutil"
)

var (
	_ audit.Store = (*sqlite.Store)(nil)
	_ audit.Store = (*postgres.Store)(nil)
)

// backend is a real database holding a log, with a way to change its
// table behind the store's back, as someone with rights on the database
// would: the append-only triggers are bypassed, the HMAC is not.
type backend struct {
	name  string
	store store.Store
	// tamper runs statements on the table, written with {t} for its name.
	tamper func(t *testing.T, stmts ...string)
	// table is the table's name in the dialect.
	table string
	// micro is the SQL that moves a time column by one microsecond.
	micro string
}

// backends opens an empty, migrated SQLite and, when
// REFLEX_TEST_DATABASE_URL is set, PostgreSQL database, and runs fn on
// each.
func backends(t *testing.T, fn func(t *testing.T, b *backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t, filepath.Join(t.TempDir(), "reflex.db"))) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t, testutil.PostgresURL(t))) })
}

func openSQLite(t *testing.T, path string) *backend {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	return &backend{
		name: "sqlite", store: s, table: "audit_log", micro: "recorded_at = recorded_at + 1",
		tamper: func(t *testing.T, stmts ...string) {
			t.Helper()
			db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
			require.NoError(t, err)
			defer db.Close()
			for _, q := range append([]string{"DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"}, stmts...) {
				_, err := db.ExecContext(t.Context(), strings.ReplaceAll(q, "{t}", "audit_log"))
				require.NoError(t, err, q)
			}
		},
	}
}

func openPostgres(t *testing.T, url string) *backend {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Options{URL: url})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	return &backend{
		name: "postgres", store: s, table: "autonomous.audit_log", micro: "recorded_at = recorded_at + interval '1 microsecond'",
		tamper: func(t *testing.T, stmts ...string) {
			t.Helper()
			err := pgx.BeginFunc(t.Context(), s.Pool(), func(tx pgx.Tx) error {
				// A superuser's way around the triggers.
				if _, err := tx.Exec(t.Context(), "SET LOCAL session_replication_role = replica"); err != nil {
					return err
				}
				for _, q := range stmts {
					if _, err := tx.Exec(t.Context(), strings.ReplaceAll(q, "{t}", "autonomous.audit_log")); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(t, err)
		},
	}
}

// testKey is a fixed key; otherKey another.
var (
	testKey  = mustKey("0123456789abcdef0123456789abcdef")
	otherKey = mustKey("fedcba9876543210fedcba9876543210")
)

func mustKey(s string) audit.Key {
	k, err := audit.NewKey([]byte(s))
	if err != nil {
		panic(err)
	}
	return k
}

// clock is a fake clock that moves one second at each reading.
type clock struct{ t time.Time }

func (c *clock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func newLog(t *testing.T, s audit.Store, k audit.Key) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Options{Store: s, Key: k, Now: newClock().now})
	require.NoError(t, err)
	return l
}

// fill appends n records and returns them.
func fill(t *testing.T, l *audit.Log, n int) []audit.Record {
	t.Helper()
	var out []audit.Record
	for i := range n {
		r, err := l.Append(context.Background(), audit.Entry{
			Actor: "system", Action: audit.ActionExecutionStep,
			Subject:    "execution:7/step:" + string(rune('a'+i%26)),
			Parameters: map[string]any{"i": i, "host": "web-01"},
		})
		require.NoError(t, err)
		out = append(out, r)
	}
	return out
}
