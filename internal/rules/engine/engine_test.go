package engine

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/decision"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// testStore is a real SQLite store whose failures a test can switch on.
type testStore struct {
	*sqlite.Store
	mu       sync.Mutex
	failNext error                  // the next RecordFirings fails with it
	events   map[int64]*event.Event // what Event answers (the test writes no events)
}

func (s *testStore) Event(_ context.Context, id int64) (*event.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev, ok := s.events[id]; ok {
		cp := *ev
		return &cp, nil
	}
	return nil, store.ErrNotFound
}

func (s *testStore) RecordFirings(ctx context.Context, b store.FiringBatch) ([]store.RuleExecution, error) {
	s.mu.Lock()
	err := s.failNext
	s.failNext = nil
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.Store.RecordFirings(ctx, b)
}

func openStore(t *testing.T, dir string) *testStore {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, "reflex.db")})
	require.NoError(t, err)
	require.NoError(t, st.Migrate(context.Background()))
	t.Cleanup(func() { _ = st.Close() })
	return &testStore{Store: st}
}

// queue is a decisions stream in memory that drops a message id it holds
// already, as the JetStream duplicate window does.
type queue struct {
	mu       sync.Mutex
	ids      map[string]bool
	reqs     []*decision.Request
	dups     int // messages dropped as duplicates
	failNext error
}

func (q *queue) MaxPayload() int64 { return 1 << 20 }

func (q *queue) Publish(_ context.Context, msgs []bus.DecisionMessage) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.failNext; err != nil {
		q.failNext = nil
		return 0, err
	}
	if q.ids == nil {
		q.ids = map[string]bool{}
	}
	dups := 0
	for _, m := range msgs {
		if q.ids[m.MsgID] {
			dups++
			continue
		}
		reqs, err := decision.Unpack(m.Data)
		if err != nil {
			return 0, err
		}
		q.ids[m.MsgID] = true
		q.reqs = append(q.reqs, reqs...)
	}
	q.dups += dups
	return dups, nil
}

func (q *queue) requests() []*decision.Request {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*decision.Request(nil), q.reqs...)
}

type alerts struct {
	mu  sync.Mutex
	got []notify.Alert
}

func (a *alerts) Dispatch(al notify.Alert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, al)
}

func (a *alerts) all() []notify.Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]notify.Alert(nil), a.got...)
}

type env struct {
	t   *testing.T
	dir string
	st  *testStore
	q   *queue
	al  *alerts
	reg *prometheus.Registry
	e   *Engine
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	v := &env{t: t, dir: dir, st: openStore(t, dir), q: &queue{}, al: &alerts{}}
	v.start()
	return v
}

// start (re)creates the engine on the env's store, as a restart does.
func (v *env) start() {
	v.t.Helper()
	v.reg = prometheus.NewRegistry()
	e, err := New(context.Background(), Options{Store: v.st, Decisions: v.q, Notifier: v.al, Registerer: v.reg,
		Now: func() time.Time { return t0.Add(time.Hour) }})
	require.NoError(v.t, err)
	v.e = e
}

func (v *env) rule(r store.TriggerRule) store.TriggerRule {
	v.t.Helper()
	if r.Name == "" {
		r.Name = "rule " + v.t.Name()
	}
	if r.GroupBy == nil {
		r.GroupBy = []string{"source_host"}
	}
	if r.MinCount == 0 {
		r.MinCount = 1
	}
	r.Active = true
	got, err := v.st.CreateTriggerRule(context.Background(), r)
	require.NoError(v.t, err)
	require.NoError(v.t, v.e.Reload(context.Background()))
	return got
}

func (v *env) handle(recs ...processed.Record) error {
	return v.e.Handle(context.Background(), recs)
}

func (v *env) executions(ruleID int64) []store.RuleExecution {
	v.t.Helper()
	xs, err := v.st.RuleExecutions(context.Background(), store.RuleExecutionQuery{RuleID: ruleID})
	require.NoError(v.t, err)
	return xs
}

// cpu is a new event (and its record) of host with the given CPU usage,
// minutes after t0.
func cpu(id int64, host string, usage float64, minutes float64) processed.Record {
	at := t0.Add(time.Duration(minutes * float64(time.Minute)))
	ev := &event.Event{
		ID: id, RawEventID: id, EventType: "threshold_breach", Severity: event.High, SourceSystem: "prometheus",
		SourceHost: host, SourceService: "node", Title: "CPU usage high", OccurredAt: at, LastSeenAt: at,
		OccurrenceCount: 1, Data: map[string]any{"metadata": map[string]any{"cpu_usage": usage}},
	}
	return processed.Record{Kind: processed.KindNew, RawEventID: id, EventID: id, OccurrenceCount: 1, LastSeenAt: at, Event: ev}
}

// repeat is a repeat (raw event raw) folded into the event of r, minutes
// after t0.
func repeat(r processed.Record, raw int64, n int, minutes float64) processed.Record {
	at := t0.Add(time.Duration(minutes * float64(time.Minute)))
	ev := *r.Event
	ev.OccurrenceCount, ev.LastSeenAt = n, at
	return processed.Record{Kind: processed.KindRepeat, RawEventID: raw, EventID: r.EventID, OccurrenceCount: n, LastSeenAt: at, Event: &ev}
}

// highCPU is the seed's "High CPU Alert".
func highCPU() store.TriggerRule {
	return store.TriggerRule{
		Name:               "High CPU Alert",
		Conditions:         json.RawMessage(`{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}}`),
		TimeWindowMinutes:  5,
		MaxTriggersPerHour: 3,
	}
}

func TestSeedRuleFires(t *testing.T) {
	v := newEnv(t)
	rule := v.rule(highCPU())
	tmpl, err := v.st.CreateResponseTemplate(context.Background(), store.ResponseTemplate{
		Name: "CPU Investigation Playbook", Type: "investigation", TriggerRuleID: rule.ID, Active: true,
		Definition: json.RawMessage(`{"actions": [{"type": "diagnostic", "script": "check_processes"}]}`),
	})
	require.NoError(t, err)
	require.NoError(t, v.e.Reload(context.Background()))

	require.NoError(t, v.handle(cpu(1, "web-01", 50, 0), cpu(2, "web-01", 95.5, 1)))
	xs := v.executions(rule.ID)
	require.Len(t, xs, 1, "only the event above 90 fires")
	x := xs[0]
	require.Equal(t, "pending", x.Status)
	require.Equal(t, int64(2), x.TriggeringEventID)
	require.Equal(t, int64(2), x.TriggeringRawEventID)
	require.Equal(t, tmpl.ID, *x.ResponseTemplateID, "the rule's only template")

	reqs := v.q.requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, x.ID, r.ExecutionID)
	require.Equal(t, rule.ID, r.RuleID)
	require.Equal(t, "High CPU Alert", r.RuleName)
	require.Equal(t, int64(2), r.Event.ID)
	require.Equal(t, "web-01", r.Event.SourceHost)
	require.Len(t, r.Templates, 1)
	require.Equal(t, "CPU Investigation Playbook", r.Templates[0].Name)
	require.NotNil(t, r.Correlations)

	al := v.al.all()
	require.Len(t, al, 1)
	require.Equal(t, notify.Alert{
		RuleID: rule.ID, RuleName: "High CPU Alert", EventID: 2, SourceHost: "web-01", Severity: "high",
		Title: "CPU usage high", FiredAt: t0.Add(time.Minute),
		Labels: map[string]string{"rule": "High CPU Alert", "rule_id": itoa(rule.ID), "source_host": "web-01",
			"severity": "high", "event_type": "threshold_breach", "source": "prometheus", "service": "node",
			"execution_id": itoa(x.ID)},
	}, al[0])

	got, err := v.st.TriggerRule(context.Background(), rule.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Firings)
	require.Equal(t, 1.0, testutil.ToFloat64(v.e.met.firings.WithLabelValues("fired")))
	require.Equal(t, 2.0, testutil.ToFloat64(v.e.met.records))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestMinCountWindowAndGroups(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MinCount, r.MaxTriggersPerHour = 3, 10
	rule := v.rule(r)
	require.NoError(t, v.handle(
		cpu(1, "a", 95, 0), cpu(2, "b", 95, 0.5), cpu(3, "a", 95, 1),
		cpu(4, "b", 95, 6), // b's first is more than 5 minutes before: b holds 2
		cpu(5, "a", 95, 4), // a's third within 5 minutes: fires
	))
	xs := v.executions(rule.ID)
	require.Len(t, xs, 1)
	require.Equal(t, int64(5), xs[0].TriggeringRawEventID)
	require.Equal(t, 3, v.q.requests()[0].Occurrences)
	// a's window starts afresh after its firing; b's completes with 4, 7
	// and 8.
	require.NoError(t, v.handle(cpu(6, "a", 95, 4.5), cpu(7, "b", 95, 7), cpu(8, "b", 95, 8)))
	xs = v.executions(rule.ID)
	require.Len(t, xs, 2)
	require.Equal(t, int64(8), xs[0].TriggeringRawEventID)
}

func TestRepeatCountsAsOccurrence(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MinCount = 2
	rule := v.rule(r)
	first := cpu(1, "a", 95, 0)
	require.NoError(t, v.handle(first))
	require.Empty(t, v.executions(rule.ID))
	require.NoError(t, v.handle(repeat(first, 11, 2, 2)))
	xs := v.executions(rule.ID)
	require.Len(t, xs, 1)
	require.Equal(t, int64(1), xs[0].TriggeringEventID, "the processed event")
	require.Equal(t, int64(11), xs[0].TriggeringRawEventID, "the repeat that completed the window")
	require.Equal(t, t0.Add(2*time.Minute), v.q.requests()[0].FiredAt, "a repeat happens at its last_seen_at")
}

func TestResolutionsAreNoOccurrences(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MinCount = 2
	rule := v.rule(r)
	res := cpu(2, "a", 95, 1)
	res.Event.Alert = &event.Alert{Key: "cpu/a", Status: event.AlertResolved}
	require.NoError(t, v.handle(cpu(1, "a", 95, 0), res))
	require.Empty(t, v.executions(rule.ID), "the resolution of an alert does not count toward its rule")
	require.NoError(t, v.handle(cpu(3, "a", 95, 2)))
	require.Len(t, v.executions(rule.ID), 1)
}

func TestThrottleSuppressesAndCounts(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MaxTriggersPerHour = 2
	rule := v.rule(r)
	require.NoError(t, v.handle(cpu(1, "a", 95, 0), cpu(2, "a", 95, 1), cpu(3, "a", 95, 2), cpu(4, "b", 95, 2)))
	require.Len(t, v.executions(rule.ID), 3, "two for a, one for b")
	got, err := v.st.TriggerRule(context.Background(), rule.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3), got.Firings)
	require.Equal(t, int64(1), got.SuppressedFirings, "counted in the rule's answer")
	require.Equal(t, 1.0, testutil.ToFloat64(v.e.met.firings.WithLabelValues("suppressed")))
	require.Len(t, v.al.all(), 3, "a suppressed firing sends nothing")
	// An hour after the first firing, a may fire again.
	require.NoError(t, v.handle(cpu(5, "a", 95, 60)))
	require.Len(t, v.executions(rule.ID), 4)
}

func TestSeverityThresholdAndInactive(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.Conditions = json.RawMessage(`{"event_type": "threshold_breach"}`)
	r.SeverityThreshold = "critical"
	rule := v.rule(r)
	require.NoError(t, v.handle(cpu(1, "a", 95, 0)))
	require.Empty(t, v.executions(rule.ID), "high is below critical")
	crit := cpu(2, "a", 95, 1)
	crit.Event.Severity = event.Critical
	require.NoError(t, v.handle(crit))
	require.Len(t, v.executions(rule.ID), 1)

	rule.Active = false
	_, err := v.st.UpdateTriggerRule(context.Background(), rule)
	require.NoError(t, err)
	require.NoError(t, v.e.Reload(context.Background()))
	crit2 := cpu(3, "a", 95, 30)
	crit2.Event.Severity = event.Critical
	require.NoError(t, v.handle(crit2))
	require.Len(t, v.executions(rule.ID), 1, "an inactive rule does not fire")
	require.Equal(t, 0.0, testutil.ToFloat64(v.e.met.active))
}

func TestRedeliveryFiresOnce(t *testing.T) {
	v := newEnv(t)
	rule := v.rule(highCPU())
	recs := []processed.Record{cpu(1, "a", 95, 0), cpu(2, "b", 95, 0)}
	require.NoError(t, v.handle(recs...))
	require.NoError(t, v.handle(recs...))
	require.Len(t, v.executions(rule.ID), 2)
	require.Len(t, v.q.requests(), 2)
	require.Equal(t, 1, v.q.dups, "the requests were published again under the same message id")
	require.Len(t, v.al.all(), 4, "dispatched again: the router drops what its group holds")
	got, err := v.st.TriggerRule(context.Background(), rule.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Firings, "not counted twice")
}

// TestCrashAfterCommit: the batch's transaction committed, then queueing
// failed (as a crash would leave it): the redelivered batch queues the
// stored firing, once.
func TestPublishFailureAfterCommit(t *testing.T) {
	v := newEnv(t)
	rule := v.rule(highCPU())
	v.q.failNext = errors.New("stream unavailable")
	rec := cpu(1, "a", 95, 0)
	require.Error(t, v.handle(rec))
	require.Len(t, v.executions(rule.ID), 1, "the execution was committed")
	require.Empty(t, v.q.requests())
	require.Empty(t, v.al.all(), "nothing dispatched before the request is queued")

	// After a restart the window state comes from the store: same outcome.
	v.start()
	require.NoError(t, v.handle(rec))
	require.Len(t, v.executions(rule.ID), 1)
	require.Len(t, v.q.requests(), 1)
	require.Equal(t, v.executions(rule.ID)[0].ID, v.q.requests()[0].ExecutionID)
	require.Len(t, v.al.all(), 1)
	require.Equal(t, 1.0, testutil.ToFloat64(v.e.met.reannounced))
}

// TestStoreFailureRollsBackWindows: when the transaction fails, the
// windows in memory go back to the stored ones, so that the redelivered
// batch fires instead of finding its occurrences counted.
func TestStoreFailureRollsBackWindows(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MinCount = 2
	rule := v.rule(r)
	require.NoError(t, v.handle(cpu(1, "a", 95, 0)))
	v.st.failNext = errors.New("disk full")
	batch := []processed.Record{cpu(2, "a", 95, 1)}
	require.Error(t, v.handle(batch...))
	require.Empty(t, v.executions(rule.ID))
	require.NoError(t, v.handle(batch...))
	require.Len(t, v.executions(rule.ID), 1)
	require.Len(t, v.q.requests(), 1)
}

func TestWindowsContinueAcrossRestart(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MinCount, r.MaxTriggersPerHour = 3, 1
	rule := v.rule(r)
	require.NoError(t, v.handle(cpu(1, "a", 95, 0), cpu(2, "a", 95, 1)))
	require.Empty(t, v.executions(rule.ID))

	v.start() // a restart inside the window
	require.NoError(t, v.handle(cpu(3, "a", 95, 2)))
	require.Len(t, v.executions(rule.ID), 1, "the window held two occurrences before the restart")

	v.start() // the throttle continues too
	require.NoError(t, v.handle(cpu(4, "a", 95, 3), cpu(5, "a", 95, 3.5), cpu(6, "a", 95, 4)))
	require.Len(t, v.executions(rule.ID), 1)
	got, err := v.st.TriggerRule(context.Background(), rule.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), got.SuppressedFirings)
}

func TestChangedRuleStartsAfresh(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MinCount = 2
	rule := v.rule(r)
	require.NoError(t, v.handle(cpu(1, "a", 95, 0)))
	ws, err := v.st.RuleWindows(context.Background())
	require.NoError(t, err)
	require.Len(t, ws, 1)

	// A change of the description keeps the window.
	rule.Description = "edited"
	_, err = v.st.UpdateTriggerRule(context.Background(), rule)
	require.NoError(t, err)
	require.NoError(t, v.e.Reload(context.Background()))
	_, ok := v.e.state.Key(rule.ID, ws[0].GroupKey)
	require.True(t, ok)

	// A change of min_count forgets it, in memory and in the store.
	rule.MinCount = 3
	_, err = v.st.UpdateTriggerRule(context.Background(), rule)
	require.NoError(t, err)
	require.NoError(t, v.e.Reload(context.Background()))
	_, ok = v.e.state.Key(rule.ID, ws[0].GroupKey)
	require.False(t, ok)
	require.NoError(t, v.handle(cpu(2, "b", 50, 1))) // matches nothing; the forget is still written
	ws, err = v.st.RuleWindows(context.Background())
	require.NoError(t, err)
	require.Empty(t, ws)
	require.NoError(t, v.handle(cpu(3, "a", 95, 1), cpu(4, "a", 95, 2)))
	require.Empty(t, v.executions(rule.ID), "two of three: the first no longer counts")
}

func TestTruncatedRecordReadsTheStore(t *testing.T) {
	v := newEnv(t)
	rule := v.rule(highCPU())
	rec := cpu(1, "a", 95, 0)
	rec.Event, rec.Truncated = nil, true
	require.NoError(t, v.handle(rec), "an event the store does not have is skipped")
	require.Empty(t, v.executions(rule.ID))
	require.Equal(t, 1.0, testutil.ToFloat64(v.e.met.missing))

	full := cpu(2, "a", 95, 1)
	stored := *full.Event
	stored.OccurrenceCount = 7 // the store's count is later than the record's
	v.st.events = map[int64]*event.Event{2: &stored}
	full.Event, full.Truncated = nil, true
	require.NoError(t, v.handle(full))
	xs := v.executions(rule.ID)
	require.Len(t, xs, 1)
	require.Equal(t, 1, v.q.requests()[0].Event.OccurrenceCount, "the record's own count")
}

// TestSuppressionsOnlyWaitForTheNextWrite: a batch that only suppressed
// firings writes nothing; its counts go with the next write or Flush.
func TestSuppressionsOnlyWaitForTheNextWrite(t *testing.T) {
	v := newEnv(t)
	r := highCPU()
	r.MaxTriggersPerHour = 1
	rule := v.rule(r)
	suppressed := func() int64 {
		t.Helper()
		got, err := v.st.TriggerRule(context.Background(), rule.ID)
		require.NoError(t, err)
		return got.SuppressedFirings
	}
	require.NoError(t, v.handle(cpu(1, "a", 95, 0))) // fires: a write
	require.NoError(t, v.handle(cpu(2, "a", 95, 1)))
	require.NoError(t, v.handle(cpu(3, "a", 95, 2)))
	require.Zero(t, suppressed(), "not written yet")
	require.Equal(t, 2.0, testutil.ToFloat64(v.e.met.firings.WithLabelValues("suppressed")), "counted at once")

	require.NoError(t, v.handle(cpu(4, "b", 95, 2))) // fires: the counts go with it
	require.Equal(t, int64(2), suppressed())

	require.NoError(t, v.handle(cpu(5, "a", 95, 3)))
	require.Equal(t, int64(2), suppressed())
	require.NoError(t, v.e.Flush(context.Background()))
	require.Equal(t, int64(3), suppressed())
	require.NoError(t, v.e.Flush(context.Background()), "nothing to write")
	require.Equal(t, int64(3), suppressed())
}
