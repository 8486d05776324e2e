package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
)

func TestNewRequires(t *testing.T) {
	b := openSQLite(t, filepath.Join(t.TempDir(), "reflex.db"))
	_, err := audit.New(audit.Options{Key: testKey})
	require.ErrorContains(t, err, "Store is required")
	_, err = audit.New(audit.Options{Store: b.store})
	require.ErrorContains(t, err, "Key is required")
}

func TestAppendRefusesInvalid(t *testing.T) {
	b := openSQLite(t, filepath.Join(t.TempDir(), "reflex.db"))
	reg := prometheus.NewRegistry()
	l, err := audit.New(audit.Options{Store: b.store, Key: testKey, Registerer: reg})
	require.NoError(t, err)
	for name, e := range map[string]audit.Entry{
		"no action":        {Actor: "system", Subject: "x"},
		"bad action":       {Actor: "system", Action: "Approve!", Subject: "x"},
		"no actor":         {Action: audit.ActionPause, Subject: "automation"},
		"actor only a NUL": {Actor: "\x00", Action: audit.ActionPause, Subject: "automation"},
		"parameters":       {Actor: "system", Action: audit.ActionPause, Parameters: []string{"not", "an", "object"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := l.Append(t.Context(), e)
			require.ErrorIs(t, err, audit.ErrInvalid)
		})
	}
	rs, err := b.store.AuditRecords(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Empty(t, rs)
	require.Equal(t, 5.0, promtest.ToFloat64(failuresOf(t, reg)))
}

func failuresOf(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "reflex_audit_append_failures_total",
		Help: "Appends to the audit log that failed; the action they recorded was refused."})
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	require.ErrorAs(t, err, &are)
	return are.ExistingCollector
}

func TestAppendCleansAndCuts(t *testing.T) {
	b := openSQLite(t, filepath.Join(t.TempDir(), "reflex.db"))
	l := newLog(t, b.store, testKey)
	long := make([]rune, audit.MaxSubject+10)
	for i := range long {
		long[i] = '\u00e9'
	}
	r, err := l.Append(t.Context(), audit.Entry{Actor: "ops\x00\xff", Action: audit.ActionOverride, Subject: string(long)})
	require.NoError(t, err)
	require.Equal(t, "ops\uFFFD", r.Actor)
	require.Len(t, []rune(r.Subject), audit.MaxSubject)
	rep, err := l.Verify(t.Context())
	require.NoError(t, err)
	require.True(t, rep.OK(), "stored as hashed: %s", rep)
}

func TestMetrics(t *testing.T) {
	b := openSQLite(t, filepath.Join(t.TempDir(), "reflex.db"))
	reg := prometheus.NewRegistry()
	l, err := audit.New(audit.Options{Store: b.store, Key: testKey, Registerer: reg})
	require.NoError(t, err)
	// A second Log on the same registry shares the metrics.
	l2, err := audit.New(audit.Options{Store: b.store, Key: testKey, Registerer: reg})
	require.NoError(t, err)
	for _, e := range []audit.Entry{
		{Actor: "system", Action: audit.ActionDecision, Subject: "decision:1"},
		{Actor: "system", Action: audit.ActionDecision, Subject: "decision:2"},
		{Actor: "system", Action: "custom_thing", Subject: "x"},
	} {
		_, err := l.Append(t.Context(), e)
		require.NoError(t, err)
	}
	_, err = l2.Append(t.Context(), audit.Entry{Actor: "key-ops", Action: audit.ActionPause, Subject: "automation"})
	require.NoError(t, err)
	require.NoError(t, b.store.Close())
	_, err = l.Append(t.Context(), audit.Entry{Actor: "system", Action: audit.ActionDecision, Subject: "decision:3"})
	require.Error(t, err, "a closed store fails the append")

	want := `
# HELP reflex_audit_append_failures_total Appends to the audit log that failed; the action they recorded was refused.
# TYPE reflex_audit_append_failures_total counter
reflex_audit_append_failures_total 1
# HELP reflex_audit_records_total Records appended to the audit log, by action ("other" for an action that is not one of reflex's).
# TYPE reflex_audit_records_total counter
reflex_audit_records_total{action="decision"} 2
reflex_audit_records_total{action="other"} 1
reflex_audit_records_total{action="pause"} 1
`
	require.NoError(t, promtest.GatherAndCompare(reg, strings.NewReader(want)))
}

// memStore is an in-memory audit.Store, for the tests of the Log's own
// behaviour (the stores have theirs).
type memStore struct {
	mu      sync.Mutex
	records []audit.Record
	entered chan struct{} // when not nil, AppendAudit reports here
	release chan struct{} // and waits for this to close
}

func (m *memStore) AppendAudit(_ context.Context, build func(*audit.Record) (audit.Record, error)) (audit.Record, error) {
	if m.entered != nil {
		m.entered <- struct{}{}
		<-m.release
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var last *audit.Record
	if n := len(m.records); n > 0 {
		last = &m.records[n-1]
	}
	r, err := build(last)
	if err != nil {
		return r, err
	}
	m.records = append(m.records, r)
	return r, nil
}

func (m *memStore) AuditRecords(_ context.Context, after int64, limit int) ([]audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Record
	for _, r := range m.records {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) ListAudit(context.Context, audit.Query) ([]audit.Record, error) {
	// List is tested on the real stores (backend_test.go); these tests
	// never list.
	return nil, errors.New("memStore: ListAudit is not used by these tests")
}

// TestAppendSerialized: an append waits for the one in progress, and
// gives up when its context ends.
func TestAppendSerialized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &memStore{entered: make(chan struct{}, 4), release: make(chan struct{})}
		l := newLog(t, m, testKey)
		first := make(chan error, 1)
		go func() {
			_, err := l.Append(context.Background(), audit.Entry{Actor: "system", Action: audit.ActionPause, Subject: "automation"})
			first <- err
		}()
		<-m.entered // the first holds the log

		ctx, cancel := context.WithCancel(context.Background())
		second := make(chan error, 1)
		go func() {
			_, err := l.Append(ctx, audit.Entry{Actor: "system", Action: audit.ActionResume, Subject: "automation"})
			second <- err
		}()
		synctest.Wait() // every goroutine is blocked
		require.Empty(t, m.entered, "a second append reached the store while the first was in progress")
		require.Empty(t, second, "the second append returned early")
		cancel()
		require.ErrorIs(t, <-second, context.Canceled)
		close(m.release)
		require.NoError(t, <-first)
		require.Len(t, m.records, 1)
		require.Equal(t, audit.ActionPause, m.records[0].Action)
	})
}

func TestConcurrentAppends(t *testing.T) {
	backends(t, func(t *testing.T, b *backend) {
		// Three Logs stand for three processes; each has its own lock, the
		// store serializes them.
		var logs []*audit.Log
		for range 3 {
			logs = append(logs, newLog(t, b.store, testKey))
		}
		const goroutines, each = 9, 15
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					_, err := logs[g%3].Append(context.Background(), audit.Entry{Actor: "system", Action: audit.ActionExecutionStep,
						Subject: fmt.Sprintf("execution:%d/step:%d", g, i)})
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		rs, err := b.store.AuditRecords(t.Context(), 0, 1000)
		require.NoError(t, err)
		require.Len(t, rs, goroutines*each)
		for i, r := range rs {
			require.Equal(t, int64(i+1), r.Seq, "no gaps")
		}
		rep, err := logs[0].Verify(t.Context())
		require.NoError(t, err)
		require.True(t, rep.OK(), rep.String())
		require.Equal(t, goroutines*each, rep.Records)
	})
}

func TestList(t *testing.T) {
	b := openSQLite(t, filepath.Join(t.TempDir(), "reflex.db"))
	c := newClock()
	l, err := audit.New(audit.Options{Store: b.store, Key: testKey, Now: c.now})
	require.NoError(t, err)
	ctx := t.Context()
	for i := range 25 {
		actor := "system"
		if i%5 == 0 {
			actor = "key-ops"
		}
		_, err := l.Append(ctx, audit.Entry{Actor: actor, Action: audit.ActionExecutionStep,
			Subject: fmt.Sprintf("execution:%d/step:s%d", i%3, i)})
		require.NoError(t, err)
	}

	// Pages of 10, newest first, until the cursor runs out.
	var seqs []int64
	f := audit.Filter{Limit: 10}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 4)
		p, err := l.List(ctx, f)
		require.NoError(t, err)
		for _, r := range p.Records {
			seqs = append(seqs, r.Seq)
		}
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	require.Len(t, seqs, 25)
	for i, s := range seqs {
		require.Equal(t, int64(25-i), s)
	}

	p, err := l.List(ctx, audit.Filter{Actor: "key-ops", Subject: "execution:0"})
	require.NoError(t, err)
	require.Len(t, p.Records, 2) // i = 0 and 15 (5, 10 and 20 are in executions 2, 1, 2)
	require.Empty(t, p.Next)
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	p, err = l.List(ctx, audit.Filter{Since: start.Add(3 * time.Second), Until: start.Add(5 * time.Second)})
	require.NoError(t, err)
	require.Len(t, p.Records, 2)
	require.Equal(t, []int64{4, 3}, []int64{p.Records[0].Seq, p.Records[1].Seq})
	p, err = l.List(ctx, audit.Filter{Limit: 5000})
	require.NoError(t, err)
	require.Len(t, p.Records, 25)

	for name, f := range map[string]audit.Filter{
		"cursor":          {Cursor: "abc"},
		"cursor zero":     {Cursor: "0"},
		"until first":     {Since: start.Add(time.Hour), Until: start},
		"action":          {Action: "Bad Action"},
		"cursor negative": {Cursor: "-5"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := l.List(ctx, f)
			require.ErrorIs(t, err, audit.ErrBadFilter)
		})
	}

	// A row written by hand with parameters that are not JSON still lists
	// (as a JSON string), and fails verification.
	b.tamper(t, `UPDATE {t} SET parameters = '{"i":' WHERE seq = 25`)
	p, err = l.List(ctx, audit.Filter{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, `"{\"i\":"`, string(p.Records[0].Parameters))
	_, err = json.Marshal(p)
	require.NoError(t, err)
	rep, err := l.Verify(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(25), rep.FirstBad.Seq)
}
