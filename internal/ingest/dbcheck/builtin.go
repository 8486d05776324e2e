package dbcheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// builtin is a check reflex knows: its query (or queries), its threshold
// and how the threshold makes its condition.
type builtin struct {
	name   string
	driver string
	// threshold is the default threshold.
	threshold float64
	// rows: the condition is "rows >= threshold" (the query lists what
	// is wrong); else "value >= threshold".
	rows bool
	// inQuery: the threshold is the query's (%s in it), which lists what
	// is wrong; the condition is "rows > 0".
	inQuery bool
	// delta: the value is the growth of what run returns since the
	// previous run (a counter, a size); the first run only remembers it.
	delta bool
	run   func(ctx context.Context, q querier, threshold float64) (*Result, error)
}

// condition is the builtin's condition for threshold t.
func (b *builtin) condition(t float64) string {
	if b.inQuery {
		return "rows > 0"
	}
	if b.rows {
		return "rows >= " + formatNumber(t)
	}
	return "value >= " + formatNumber(t)
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// sqlCheck is a builtin that is one query; %s in it is the threshold.
func sqlCheck(query string) func(context.Context, querier, float64) (*Result, error) {
	return func(ctx context.Context, q querier, t float64) (*Result, error) {
		if strings.Contains(query, "%s") {
			return q.query(ctx, fmt.Sprintf(query, formatNumber(t)))
		}
		return q.query(ctx, query)
	}
}

// builtins are the built-in checks, by driver and name.
var builtins = []*builtin{
	// PostgreSQL. Each looks at the DSN's database, except connections
	// and replication_lag, which are the server's.
	{
		name: "connections", driver: DriverPostgres, threshold: 0.9,
		run: sqlCheck(`SELECT sum(numbackends)::float8 / current_setting('max_connections')::float8 AS ratio,
			sum(numbackends) AS backends, current_setting('max_connections')::int AS max_connections
			FROM pg_stat_database`),
	},
	{
		name: "replication_lag", driver: DriverPostgres, threshold: 30,
		run: sqlCheck(`SELECT (CASE WHEN pg_is_in_recovery()
				THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
				ELSE COALESCE((SELECT max(EXTRACT(EPOCH FROM replay_lag)) FROM pg_stat_replication), 0)
			END)::float8 AS lag_seconds,
			pg_is_in_recovery() AS standby,
			(SELECT count(*) FROM pg_stat_replication) AS replicas`),
	},
	{
		name: "long_transactions", driver: DriverPostgres, threshold: 300, inQuery: true,
		run: sqlCheck(`SELECT EXTRACT(EPOCH FROM now() - xact_start)::float8 AS age_seconds,
			pid, usename, application_name, state, left(query, 200) AS query
			FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend'
			AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
			AND xact_start <= now() - make_interval(secs => %s)
			ORDER BY xact_start`),
	},
	{
		name: "blocked_locks", driver: DriverPostgres, threshold: 1, rows: true,
		run: sqlCheck(`SELECT EXTRACT(EPOCH FROM now() - COALESCE(state_change, query_start))::float8 AS waiting_seconds,
			pid, pg_blocking_pids(pid) AS blocked_by, usename, wait_event_type, wait_event, left(query, 200) AS query
			FROM pg_stat_activity
			WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0
			ORDER BY COALESCE(state_change, query_start)`),
	},
	{
		name: "database_size_growth", driver: DriverPostgres, threshold: 1 << 30, delta: true,
		run: sqlCheck(`SELECT pg_database_size(current_database())::float8 AS size_bytes`),
	},

	// MySQL and MariaDB.
	{name: "connections", driver: DriverMySQL, threshold: 0.9, run: mysqlConnections},
	{name: "replication_lag", driver: DriverMySQL, threshold: 30, run: mysqlReplicationLag},
	{name: "slow_queries", driver: DriverMySQL, threshold: 1, delta: true, run: mysqlStatus("Slow_queries")},
}

func findBuiltin(driver, name string) *builtin {
	for _, b := range builtins {
		if b.driver == driver && b.name == name {
			return b
		}
	}
	return nil
}

func builtinNames(driver string) []string {
	var out []string
	for _, b := range builtins {
		if b.driver == driver {
			out = append(out, b.name)
		}
	}
	sort.Strings(out)
	return out
}

// statusVariable reads a global status variable (SHOW GLOBAL STATUS).
func statusVariable(ctx context.Context, q querier, name string) (float64, error) {
	res, err := q.query(ctx, "SHOW GLOBAL STATUS LIKE '"+name+"'")
	if err != nil {
		return 0, err
	}
	if len(res.Sample) == 0 {
		return 0, fmt.Errorf("no status variable %s", name)
	}
	f, ok := number(res.Sample[0]["Value"])
	if !ok {
		return 0, fmt.Errorf("status variable %s is not a number", name)
	}
	return f, nil
}

// mysqlStatus is a check of a status counter's value.
func mysqlStatus(name string) func(context.Context, querier, float64) (*Result, error) {
	return func(ctx context.Context, q querier, _ float64) (*Result, error) {
		f, err := statusVariable(ctx, q, name)
		if err != nil {
			return nil, err
		}
		return &Result{Value: &f, Rows: 1, Sample: []map[string]any{{strings.ToLower(name): f}}}, nil
	}
}

// mysqlConnections is Threads_connected / max_connections.
func mysqlConnections(ctx context.Context, q querier, _ float64) (*Result, error) {
	threads, err := statusVariable(ctx, q, "Threads_connected")
	if err != nil {
		return nil, err
	}
	res, err := q.query(ctx, "SELECT @@max_connections")
	if err != nil {
		return nil, err
	}
	if res.Value == nil || *res.Value <= 0 {
		return nil, errors.New("max_connections is not a positive number")
	}
	maxConns := *res.Value
	ratio := threads / maxConns
	return &Result{Value: &ratio, Rows: 1, Sample: []map[string]any{{
		"ratio": ratio, "threads_connected": threads, "max_connections": maxConns,
	}}}, nil
}

// replicaColumns are the columns of SHOW REPLICA STATUS an event keeps.
var replicaColumns = []string{
	"Connection_name", "Channel_Name", "Source_Host", "Master_Host", "Source_Port", "Master_Port",
	"Replica_IO_Running", "Slave_IO_Running", "Replica_SQL_Running", "Slave_SQL_Running",
	"Seconds_Behind_Source", "Seconds_Behind_Master", "Last_Error", "Last_IO_Error", "Last_SQL_Error",
}

// mysqlReplicationLag reads Seconds_Behind_Source of SHOW REPLICA STATUS
// (MySQL 8.0.22, MariaDB 10.5.1 and later), or Seconds_Behind_Master of
// SHOW SLAVE STATUS on older servers. A server that is no replica has no
// value (no event).
func mysqlReplicationLag(ctx context.Context, q querier, _ float64) (*Result, error) {
	res, err := q.query(ctx, "SHOW REPLICA STATUS")
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1064 { // syntax error: an older server
		res, err = q.query(ctx, "SHOW SLAVE STATUS")
	}
	if err != nil {
		return nil, err
	}
	out := &Result{Rows: res.Rows}
	for i, row := range res.Sample {
		keep := map[string]any{}
		for _, c := range replicaColumns {
			if v, ok := row[c]; ok {
				keep[c] = v
			}
		}
		out.Sample = append(out.Sample, keep)
		if i > 0 {
			continue
		}
		for _, c := range []string{"Seconds_Behind_Source", "Seconds_Behind_Master"} {
			if f, ok := number(row[c]); ok {
				out.Value = &f
				break
			}
		}
	}
	return out, nil
}
