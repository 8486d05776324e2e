package server

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the MariaDB peer's driver
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// dbEvents lists the stored events of source (a database's name) and
// eventType, newest first.
func (ts *testServer) dbEvents(source, eventType string) []map[string]any {
	ts.t.Helper()
	var out struct {
		Events []map[string]any `json:"events"`
	}
	q := url.Values{"source": {source}, "event_type": {eventType}, "limit": {"100"}}
	code := ts.do(http.MethodGet, ts.events+"/api/v1/events?"+q.Encode(), "", &out)
	require.Equal(ts.t, http.StatusOK, code)
	return out.Events
}

// waitAlert polls until an event of source and eventType with alert
// status (firing or resolved) is stored, and returns it.
func (ts *testServer) waitAlert(source, eventType, status string) map[string]any {
	ts.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range ts.dbEvents(source, eventType) {
			data, _ := ev["event_data"].(map[string]any)
			alert, _ := data["alert"].(map[string]any)
			if alert["status"] == status {
				return ev
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.t.Fatalf("no %s event %s of %s within 30s; events: %v", status, eventType, source, ts.dbEvents(source, ""))
	return nil
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// TestDBChecksPostgresEndToEnd: against the PostgreSQL server, a NOTIFY
// becomes an event, a lock wait raises blocked_locks and a long
// transaction long_transactions, both resolved once the holder commits.
func TestDBChecksPostgresEndToEnd(t *testing.T) {
	pgURL := testutil.PostgresURL(t)
	ctx := context.Background()
	setup, err := pgx.Connect(ctx, pgURL)
	require.NoError(t, err)
	defer setup.Close(ctx)
	_, err = setup.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)`)
	require.NoError(t, err)

	cfg := testConfig(t)
	cfg.DBChecks = writeFile(t, "db-checks.yml", fmt.Sprintf(`
databases:
  - name: test-pg
    driver: postgres
    dsn_file: %s
    host: db-01
checks:
  - {name: pg_blocked, database: test-pg, builtin: blocked_locks, interval: 1s, timeout: 5s, severity: high}
  - {name: pg_long_tx, database: test-pg, builtin: long_transactions, threshold: 1, interval: 1s, timeout: 5s}
listen:
  - {database: test-pg, channel: reflex_test, event_type: pg_notify}
`, writeFile(t, "pg.dsn", pgURL+"\n")))
	ts := start(t, cfg)

	// The NOTIFY, once the listener listens (a notification before that
	// reaches no one).
	require.Eventually(t, func() bool {
		var n int
		err := setup.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'reflex-dbcheck-listen' AND query LIKE 'LISTEN%'`).Scan(&n)
		return err == nil && n == 1
	}, 20*time.Second, 50*time.Millisecond)
	_, err = setup.Exec(ctx, `SELECT pg_notify('reflex_test', '{"title":"disk full","severity":"high","host":"db-01"}')`)
	require.NoError(t, err)
	var notified map[string]any
	require.Eventually(t, func() bool {
		evs := ts.dbEvents("test-pg", "pg_notify")
		if len(evs) == 1 {
			notified = evs[0]
		}
		return notified != nil
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "disk full", notified["title"])
	require.Equal(t, "high", notified["severity"])
	require.Equal(t, "db-01", notified["source_host"])
	require.Equal(t, "database", notified["source_type"])

	// A lock wait: the holder updates the row in an open transaction,
	// the waiter's update of it blocks.
	holder, err := pgx.Connect(ctx, pgURL)
	require.NoError(t, err)
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `UPDATE t SET v = 1 WHERE id = 1`)
	require.NoError(t, err)
	waiter, err := pgx.Connect(ctx, pgURL)
	require.NoError(t, err)
	defer waiter.Close(ctx)
	waited := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, `UPDATE t SET v = 2 WHERE id = 1`)
		waited <- err
	}()

	blocked := ts.waitAlert("test-pg", "pg_blocked", "firing")
	require.Equal(t, "high", blocked["severity"])
	require.Equal(t, "db-01", blocked["source_host"])
	data := blocked["event_data"].(map[string]any)
	require.Equal(t, "blocked_locks", data["builtin"])
	require.Equal(t, "test-pg/pg_blocked", data["alert"].(map[string]any)["key"])
	rows := data["rows"].([]any)
	require.NotEmpty(t, rows)
	require.Contains(t, rows[0].(map[string]any)["query"], "UPDATE t SET v = 2")
	long := ts.waitAlert("test-pg", "pg_long_tx", "firing")
	require.Equal(t, "medium", long["severity"])

	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-waited)
	resolved := ts.waitAlert("test-pg", "pg_blocked", "resolved")
	require.Equal(t, "info", resolved["severity"])
	ts.waitAlert("test-pg", "pg_long_tx", "resolved")
	require.Len(t, ts.dbEvents("test-pg", "pg_blocked"), 2, "raised once, resolved once")
	require.Empty(t, ts.dbEvents("test-pg", "check_failed"))
}

// TestDBChecksMariaDBEndToEnd: against the MariaDB server, a query check
// raises and resolves, the connections builtin with a low threshold
// raises, slow_queries sees a slow query, and replication_lag raises
// nothing on a server that is no replica.
func TestDBChecksMariaDBEndToEnd(t *testing.T) {
	dsn := testutil.MySQLDSN(t)
	ctx := context.Background()
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE TABLE t (id int PRIMARY KEY)`)
	require.NoError(t, err)

	t.Setenv("REFLEX_TEST_DBCHECK_MY_DSN", dsn)
	cfg := testConfig(t)
	cfg.DBChecks = writeFile(t, "db-checks.yml", `
databases:
  - {name: test-my, driver: mysql, dsn_env: REFLEX_TEST_DBCHECK_MY_DSN}
checks:
  - name: my_rows
    database: test-my
    query: SELECT COUNT(*) FROM t
    condition: value > 0
    interval: 1s
    severity: high
    summary: "{{.Value}} rows in t"
  - {name: my_conns, database: test-my, builtin: connections, threshold: 0.001, interval: 1s}
  - {name: my_slow, database: test-my, builtin: slow_queries, interval: 1s}
  - {name: my_lag, database: test-my, builtin: replication_lag, interval: 1s}
`)
	ts := start(t, cfg)

	conns := ts.waitAlert("test-my", "my_conns", "firing")
	require.Equal(t, "127.0.0.1", conns["source_host"])
	require.Equal(t, "mysql", conns["source_service"])
	require.Greater(t, conns["event_data"].(map[string]any)["value"], 0.0)

	_, err = db.ExecContext(ctx, `INSERT INTO t VALUES (1), (2)`)
	require.NoError(t, err)
	fired := ts.waitAlert("test-my", "my_rows", "firing")
	require.Equal(t, "2 rows in t", fired["title"])
	require.Equal(t, "high", fired["severity"])
	_, err = db.ExecContext(ctx, `DELETE FROM t`)
	require.NoError(t, err)
	resolved := ts.waitAlert("test-my", "my_rows", "resolved")
	require.Equal(t, "Resolved: 0 rows in t", resolved["title"])
	require.Equal(t, "info", resolved["severity"])

	// A query slower than the session's long_query_time counts in
	// Slow_queries (whether or not the slow log is on).
	c, err := db.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExecContext(ctx, `SET SESSION long_query_time = 0`)
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for len(ts.dbEvents("test-my", "my_slow")) == 0 && time.Now().Before(deadline) {
		_, err = c.ExecContext(ctx, `SELECT SLEEP(0.01)`)
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond)
	}
	ts.waitAlert("test-my", "my_slow", "firing")

	require.Empty(t, ts.dbEvents("test-my", "my_lag"), "no replica, no event")
	require.Empty(t, ts.dbEvents("test-my", "check_failed"))
	require.Len(t, ts.dbEvents("test-my", "my_rows"), 2, "raised once, resolved once")
}
