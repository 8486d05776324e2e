package dbcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var testEnv = env(map[string]string{
	"PG_DSN": "postgres://reflex:secret@DB-01.example:5432/app?sslmode=disable",
	"MY_DSN": "reflex:secret@tcp(db-02:3306)/shop",
})

func TestExample(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yml")
	require.NoError(t, err)
	c, err := Parse(data, testEnv)
	require.NoError(t, err)
	require.Len(t, c.Checks, 9)
	require.Equal(t, "db-01", c.Databases[0].Host)
	require.Equal(t, "db-02", c.Databases[1].Host, "the DSN's host")
	byName := map[string]*Check{}
	for i := range c.Checks {
		byName[c.Checks[i].Name] = &c.Checks[i]
	}
	require.Equal(t, "value >= 0.8", byName["pg_connections"].cond.String())
	require.Equal(t, "rows >= 1", byName["pg_blocked"].cond.String())
	require.Equal(t, "rows > 0", byName["pg_long_tx"].cond.String(), "the threshold is in the query; any row holds")
	require.Equal(t, "value >= 0.9", byName["my_connections"].cond.String())
	require.Equal(t, event.High, byName["orders_backlog"].severity)
	require.Equal(t, event.Medium, byName["my_lag"].severity)
	require.Equal(t, DefaultInterval, byName["my_lag"].Interval)
	require.Equal(t, DefaultTimeout, byName["my_lag"].Timeout)
	require.Equal(t, time.Hour, byName["pg_growth"].Interval)
	require.Equal(t, "app_alert", c.Listen[0].EventType)
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "pg.dsn")
	require.NoError(t, os.WriteFile(dsnFile, []byte("  host=/var/run/postgresql dbname=app user=reflex\n"), 0o600))
	c, err := Parse([]byte(`
databases: [{name: pg, driver: postgres, dsn_file: `+dsnFile+`}]
checks: [{name: c, database: pg, query: SELECT 1, condition: value == 1}]
listen: [{database: pg, channel: jobs}]
`), testEnv)
	require.NoError(t, err)
	require.Equal(t, DefaultMaxConcurrent, c.MaxConcurrent)
	d := c.Databases[0]
	require.Equal(t, "host=/var/run/postgresql dbname=app user=reflex", d.dsn)
	require.Equal(t, "localhost", d.Host, "a Unix socket's host")
	require.Equal(t, DefaultMaxConns, d.MaxConns)
	k := c.Checks[0]
	require.Equal(t, DefaultInterval, k.Interval)
	require.Equal(t, DefaultTimeout, k.Timeout)
	require.Equal(t, DefaultSeverity, k.severity)
	l := c.Listen[0]
	require.Equal(t, "jobs", l.EventType, "the channel")
	require.Equal(t, DefaultNotifySeverity, l.severity)
}

func TestConfigErrors(t *testing.T) {
	const db = "databases: [{name: pg, driver: postgres, dsn_env: PG_DSN}, {name: my, driver: mysql, dsn_env: MY_DSN}]\n"
	for _, c := range []struct{ yaml, want string }{
		{"", "no checks"},
		{"bogus: 1", "field bogus not found"},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1, bogus: 2}]", "field bogus not found"},
		{db + "checks: [{name: c, database: nope, query: SELECT 1, condition: value > 1}]", `database "nope" is not in databases`},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1}, {name: c, database: pg, query: SELECT 1, condition: value > 1}]", `"c" is named twice`},
		{db + "checks: [{name: 'a b', database: pg, query: SELECT 1, condition: value > 1}]", "want 1 to 63 letters"},
		{db + "checks: [{name: c, database: pg, query: SELECT 1}]", "give query and condition, or builtin"},
		{db + "checks: [{name: c, database: pg, builtin: connections, condition: value > 1}]", "takes threshold, not query or condition"},
		{db + "checks: [{name: c, database: pg, builtin: slow_queries}]", `builtin "slow_queries": no such check for postgres`},
		{db + "checks: [{name: c, database: my, builtin: blocked_locks}]", `no such check for mysql`},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1, threshold: 3}]", "threshold is for builtin checks"},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value >> 1}]", "condition"},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1, severity: loud}]", `severity "loud"`},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1, interval: 1ms}]", "interval 1ms: at least"},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1, interval: soon}]", "soon"},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1, summary: '{{.Nope}}'}]", "summary"},
		{db + "checks: [{name: c, database: pg, query: SELECT 1, condition: value > 1, summary: '{{'}]", "summary"},
		{db + "listen: [{database: my, channel: x}]", "LISTEN is PostgreSQL's"},
		{db + "listen: [{database: pg, channel: ''}]", "want 1 to 63 bytes"},
		{db + "listen: [{database: pg, channel: x}, {database: pg, channel: x}]", "listed twice"},
		{"databases: [{name: pg, driver: oracle, dsn_env: PG_DSN}]\nlisten: [{database: pg, channel: x}]", `driver "oracle"`},
		{"databases: [{name: pg, driver: postgres}]\nlisten: [{database: pg, channel: x}]", "give one of dsn_file and dsn_env"},
		{"databases: [{name: pg, driver: postgres, dsn_env: NOPE}]\nlisten: [{database: pg, channel: x}]", "NOPE is not set"},
		{"databases: [{name: pg, driver: postgres, dsn_file: /nonexistent/pg.dsn}]\nlisten: [{database: pg, channel: x}]", "no such file"},
		{"databases: [{name: pg, driver: postgres, dsn_env: PG_DSN}, {name: pg, driver: postgres, dsn_env: PG_DSN}]\nlisten: [{database: pg, channel: x}]", "named twice"},
		{"max_concurrent: -1\n" + db + "listen: [{database: pg, channel: x}]", "max_concurrent"},
	} {
		_, err := Parse([]byte(c.yaml), testEnv)
		require.Error(t, err, c.yaml)
		require.ErrorIs(t, err, ErrConfig, c.yaml)
		require.Contains(t, err.Error(), c.want, c.yaml)
		require.NotContains(t, err.Error(), "secret", "no DSN in an error")
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "db.yml")
	require.NoError(t, os.WriteFile(p, []byte("databases: [{name: pg, driver: postgres, dsn_env: REFLEX_TEST_DBCHECK_UNSET}]\nlisten: [{database: pg, channel: x}]"), 0o600))
	_, err := Load(p)
	require.ErrorIs(t, err, ErrConfig)
	require.True(t, strings.HasPrefix(err.Error(), p+": "), err.Error())
	_, err = Load(filepath.Join(t.TempDir(), "missing.yml"))
	require.ErrorIs(t, err, ErrConfig)
}
