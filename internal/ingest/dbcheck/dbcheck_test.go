package dbcheck

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
)

// fakeDB answers each query with the next of its results.
type fakeDB struct {
	mu      sync.Mutex
	results []*Result
	errs    []error
}

func (f *fakeDB) push(r *Result, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, r)
	f.errs = append(f.errs, err)
}

func (f *fakeDB) query(context.Context, string) (*Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.results[0], f.errs[0]
	f.results, f.errs = f.results[1:], f.errs[1:]
	return r, err
}

func (f *fakeDB) close() {}

// sink collects the adapter's submissions.
type sink struct {
	mu    sync.Mutex
	items []intake.Item
	fail  error
}

func (s *sink) submit(_ context.Context, it intake.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.items = append(s.items, it)
	return nil
}

func (s *sink) take(t *testing.T) []*Payload {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Payload
	for _, it := range s.items {
		p, err := ParsePayload(it.Data)
		require.NoError(t, err)
		out = append(out, p)
	}
	s.items = nil
	return out
}

// DSNs of servers that are not there (port 1), with passwords.
const (
	testDSN   = "postgres://reflex:s3cr3t-Passw0rd@127.0.0.1:1/app?sslmode=disable&connect_timeout=2"
	testMyDSN = "reflex:s3cr3t-Passw0rd@tcp(127.0.0.1:1)/app?timeout=2s"
)

// syncBuffer is a log that a test reads while goroutines write it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testAdapter(t *testing.T, yaml string, logs *syncBuffer) (*Adapter, *sink, *prometheus.Registry) {
	t.Helper()
	cfg, err := Parse([]byte(yaml), func(name string) string {
		if strings.HasPrefix(name, "MY") {
			return testMyDSN
		}
		return testDSN
	})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, err := newAdapter(cfg, ingest.Env{Registerer: reg, Logger: log, MaxEventBytes: 1 << 20, Now: func() time.Time {
		now = now.Add(time.Second)
		return now
	}})
	require.NoError(t, err)
	s := &sink{}
	a.submit = s.submit
	return a, s, reg
}

const stateYAML = `
databases:
  - {name: main-pg, driver: postgres, dsn_env: PG_DSN, host: DB-01}
checks:
  - name: backlog
    database: main-pg
    query: SELECT count(*) FROM orders
    condition: value > 100
    severity: high
    summary: "{{.Value}} orders waiting on {{.Database}}"
`

// TestStateMachine: a check raises once while its condition holds,
// resolves once when it clears, and a failing check raises and resolves
// its own check_failed event without touching the condition's state.
func TestStateMachine(t *testing.T) {
	a, s, reg := testAdapter(t, stateYAML, nil)
	db := &fakeDB{}
	a.dbs["main-pg"] = db
	k := &a.cfg.Checks[0]
	st := &checkState{}
	run := func(r *Result, err error) []*Payload {
		db.push(r, err)
		a.runOnce(context.Background(), k, st)
		return s.take(t)
	}

	require.Empty(t, run(&Result{Value: ptr(5), Rows: 1}, nil), "clear: nothing")
	got := run(&Result{Value: ptr(150), Rows: 1, Sample: []map[string]any{{"count": 150.0}}}, nil)
	require.Len(t, got, 1)
	require.Equal(t, KindCheck, got[0].Kind)
	require.Equal(t, "firing", got[0].Status)
	require.Equal(t, "high", got[0].Severity)
	require.Equal(t, "150 orders waiting on main-pg", got[0].Title)
	require.Equal(t, "db-01", got[0].Host)
	require.Equal(t, 150.0, *got[0].Value)
	firedAt := got[0].At
	require.Empty(t, run(&Result{Value: ptr(170), Rows: 1}, nil), "still holds: nothing")

	// A failure raises check_failed once and keeps the condition's state.
	got = run(nil, errors.New("connection refused"))
	require.Len(t, got, 1)
	require.Equal(t, KindCheckFailed, got[0].Kind)
	require.Equal(t, "firing", got[0].Status)
	require.Equal(t, "connection refused", got[0].Error)
	require.Empty(t, run(nil, errors.New("connection refused")), "still failing: nothing")
	got = run(&Result{Value: ptr(180), Rows: 1}, nil)
	require.Len(t, got, 1, "runs again: check_failed resolves, the condition still holds")
	require.Equal(t, KindCheckFailed, got[0].Kind)
	require.Equal(t, "resolved", got[0].Status)
	require.Equal(t, "info", got[0].Severity)

	got = run(&Result{Value: ptr(10), Rows: 1}, nil)
	require.Len(t, got, 1)
	require.Equal(t, "resolved", got[0].Status)
	require.Equal(t, "info", got[0].Severity)
	require.Equal(t, "Resolved: 10 orders waiting on main-pg", got[0].Title)
	require.Equal(t, firedAt, *got[0].Since, "a resolution says when its alert began")
	require.Empty(t, run(&Result{Value: ptr(10), Rows: 1}, nil))
	require.Empty(t, run(&Result{Rows: 0}, nil), "no value: the condition does not hold")

	// A change of state that is not submitted is tried again.
	s.fail = intake.ErrClosed
	require.Empty(t, run(&Result{Value: ptr(500), Rows: 1}, nil))
	s.fail = nil
	got = run(&Result{Value: ptr(500), Rows: 1}, nil)
	require.Len(t, got, 1)
	require.Equal(t, "firing", got[0].Status)

	require.Equal(t, 2.0, testutil.ToFloat64(a.runs.WithLabelValues("backlog", OutcomeError)))
	require.Equal(t, 5.0, testutil.ToFloat64(a.runs.WithLabelValues("backlog", OutcomeHolds)))
	require.Equal(t, 5.0, testutil.ToFloat64(a.metrics.Accepted.WithLabelValues("database", "check")))
	require.Equal(t, 1.0, testutil.ToFloat64(a.metrics.Dropped.WithLabelValues("database", "check", "intake")))
	n, err := testutil.GatherAndCount(reg, "reflex_dbcheck_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// TestGrowth: a growth builtin compares each reading with the previous
// one; the first only remembers.
func TestGrowth(t *testing.T) {
	a, s, _ := testAdapter(t, `
databases: [{name: pg, driver: postgres, dsn_env: X}]
checks: [{name: growth, database: pg, builtin: database_size_growth, threshold: 1000}]
`, nil)
	db := &fakeDB{}
	a.dbs["pg"] = db
	k, st := &a.cfg.Checks[0], &checkState{}
	for _, size := range []float64{10_000, 10_500, 12_000, 12_100, 11_000} {
		db.push(&Result{Value: ptr(size), Rows: 1}, nil)
		a.runOnce(context.Background(), k, st)
	}
	got := s.take(t)
	require.Len(t, got, 2)
	require.Equal(t, "firing", got[0].Status)
	require.Equal(t, 1500.0, *got[0].Value)
	require.Equal(t, "value >= 1000", got[0].Condition)
	require.Equal(t, "resolved", got[1].Status)
	require.Equal(t, 100.0, *got[1].Value)
	require.Equal(t, 1.0, testutil.ToFloat64(a.runs.WithLabelValues("growth", OutcomeBaseline)))
}

// TestRedaction: the DSN's password reaches no error, log or event, from
// an unreachable server (connect error) or a DSN that does not parse.
func TestRedaction(t *testing.T) {
	const password = "s3cr3t-Passw0rd"
	var logs syncBuffer
	a, s, _ := testAdapter(t, `
databases:
  - {name: pg, driver: postgres, dsn_env: PG_DSN}
  - {name: my, driver: mysql, dsn_env: MY_DSN}
checks:
  - {name: pg_conns, database: pg, builtin: connections, timeout: 5s}
  - {name: my_conns, database: my, builtin: connections, timeout: 5s}
listen:
  - {database: pg, channel: alerts}
`, &logs)
	require.NoError(t, a.openDBs())
	pg := a.dbs["pg"]
	defer pg.close()
	defer a.closeDBs()
	for i := range a.cfg.Checks {
		a.runOnce(context.Background(), &a.cfg.Checks[i], &checkState{})
	}
	got := s.take(t)
	require.Len(t, got, 2)
	for _, p := range got {
		require.Equal(t, KindCheckFailed, p.Kind)
		t.Log(p.Error)
		require.NotEmpty(t, p.Error)
		require.NotContains(t, p.Error, password)
		require.NotContains(t, p.Title, password)
	}
	// A driver whose message quotes the DSN.
	a.dbs["pg"] = &fakeDB{results: []*Result{nil}, errs: []error{errors.New("cannot parse `" + testDSN + "`: password " + password + " rejected")}}
	a.runOnce(context.Background(), &a.cfg.Checks[0], &checkState{})
	got = s.take(t)
	require.Len(t, got, 1)
	require.Equal(t, "cannot parse `xxxxx`: password xxxxx rejected", got[0].Error)

	// The listener's connection error, logged once.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.listen(ctx, a.cfg.Listen[0].db, []*Listen{&a.cfg.Listen[0]}); close(done) }()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "listener disconnected") }, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	out := logs.String()
	require.Contains(t, out, "database check failing")
	require.NotContains(t, out, password)

	// Errors of DSNs that do not parse, and a password in a driver's
	// message, are redacted too.
	for _, dsn := range []string{
		"postgres://reflex:" + password + "@[::1/app",
		"host=db port=notaport user=reflex password=" + password,
	} {
		_, err := Parse([]byte("databases: [{name: pg, driver: postgres, dsn_env: X}]\nchecks: [{name: c, database: pg, builtin: connections}]"),
			func(string) string { return dsn })
		require.Error(t, err)
		require.NotContains(t, err.Error(), password)
	}
	_, err := Parse([]byte("databases: [{name: my, driver: mysql, dsn_env: X}]\nchecks: [{name: c, database: my, builtin: connections}]"),
		func(string) string { return "reflex:" + password + "@tcp(127.0.0.1:1)/app?badparam=%zz" })
	require.Error(t, err)
	require.NotContains(t, err.Error(), password)
	r := newRedactor("postgres://u:p%40ss@h/db", "p@ss")
	require.Equal(t, "auth failed for xxxxx and xxxxx and xxxxx", r.text("auth failed for p@ss and p%40ss and postgres://u:p%40ss@h/db"))
}
