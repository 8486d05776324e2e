package incident

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/enrich"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	t     *testing.T
	ctx   context.Context
	store *sqlite.Store
	inv   *enrich.Inventory
	clock *clock
	eng   *Engine
	next  int64
	opts  Options
}

func newEnv(t *testing.T, opts Options, assets ...store.Asset) *env {
	t.Helper()
	ctx := t.Context()
	s, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(ctx))
	inv := enrich.NewInventory()
	for _, a := range assets {
		inv.Set(a)
	}
	c := &clock{t: t0.Add(time.Hour)}
	opts.Store, opts.Graph, opts.Now = s, inv, c.now
	e := &env{t: t, ctx: ctx, store: s, inv: inv, clock: c, next: event.IDAt(t0), opts: opts}
	e.restart()
	return e
}

// restart makes a new engine on the same store, as a server restart.
func (e *env) restart() {
	eng, err := New(e.ctx, e.opts)
	require.NoError(e.t, err)
	e.eng = eng
}

// ev makes an event of host at t0+at, stores it and returns it.
func (e *env) ev(host string, at time.Duration, sev event.Severity, typ, title string) event.Event {
	e.t.Helper()
	e.next += 1 << 12
	ts := t0.Add(at)
	ev := event.Event{ID: e.next, RawEventID: e.next, EventType: typ, Severity: sev, SourceSystem: "test",
		SourceType: event.SourceWebhook, SourceHost: host, Title: title, OccurredAt: ts, ReceivedAt: ts, ProcessedAt: ts,
		OccurrenceCount: 1, LastSeenAt: ts}
	if a, ok := e.inv.Get(host); ok {
		ev.Asset = &event.Asset{Criticality: a.Criticality, Dependencies: a.Dependencies}
	}
	raw := event.Raw{ID: ev.ID, SourceSystem: "test", SourceType: event.SourceWebhook, Data: []byte(`{}`), ReceivedAt: ts, Processed: true, ProcessedEventID: ev.ID}
	require.NoError(e.t, e.store.WriteBatch(e.ctx, &store.Batch{Raw: []event.Raw{raw}, New: []event.Event{ev}}))
	return ev
}

// handle hands the events to the engine as new-event records.
func (e *env) handle(evs ...event.Event) {
	e.t.Helper()
	recs := make([]processed.Record, len(evs))
	for i := range evs {
		ev := evs[i]
		recs[i] = processed.Record{Kind: processed.KindNew, RawEventID: ev.ID, EventID: ev.ID, OccurrenceCount: 1, LastSeenAt: ev.LastSeenAt, Event: &ev}
	}
	require.NoError(e.t, e.eng.Handle(e.ctx, recs))
}

func (e *env) incidents() []store.Incident {
	e.t.Helper()
	page, err := e.store.ListIncidents(e.ctx, store.IncidentQuery{Limit: 1000})
	require.NoError(e.t, err)
	return page.Incidents
}

func (e *env) incidentOf(id int64) int64 {
	e.t.Helper()
	of, err := e.store.IncidentsOfEvents(e.ctx, []int64{id})
	require.NoError(e.t, err)
	return of[id]
}

// The inventory of a small shop: a database, two applications on it, a
// load balancer in front of them, a synthetic check of the load balancer;
// and an unrelated cache with its own application.
var shop = []store.Asset{
	{Host: "db-01", Criticality: "critical"},
	{Host: "app-01", Criticality: "high", Dependencies: []string{"db-01"}},
	{Host: "app-02", Criticality: "high", Dependencies: []string{"db-01"}},
	{Host: "lb-01", Criticality: "high", Dependencies: []string{"app-01", "app-02"}},
	{Host: "synth-01", Criticality: "medium", Dependencies: []string{"lb-01"}},
	{Host: "cache-01", Criticality: "high"},
	{Host: "web-09", Criticality: "medium", Dependencies: []string{"cache-01"}},
}

func TestGroupsByDependencyGraphAndRanksTheUpstreamRoot(t *testing.T) {
	e := newEnv(t, Options{GroupWait: time.Second}, shop...)
	// The synthetic check fails first, the database reports last.
	synth := e.ev("synth-01", 0, event.High, "http_check", "checkout check failed")
	lb := e.ev("lb-01", 20*time.Second, event.High, "backend_down", "no healthy backends")
	app1 := e.ev("app-01", 30*time.Second, event.High, "app_error", "connection refused to db-01")
	app2 := e.ev("app-02", 35*time.Second, event.High, "app_error", "connection refused to db-01")
	db := e.ev("db-01", 60*time.Second, event.Critical, "db_down", "postgres not accepting connections")
	// Unrelated, at the same time.
	cache := e.ev("cache-01", 40*time.Second, event.High, "cache_down", "redis down")
	e.handle(synth, lb)
	e.handle(app1, cache, app2)
	e.handle(db)

	ins := e.incidents()
	require.Len(t, ins, 2, "the cache is not merged with the database's incident")
	id := e.incidentOf(db.ID)
	require.Equal(t, synth.ID, id, "the incident is named by the event that opened it")
	for _, ev := range []event.Event{synth, lb, app1, app2} {
		require.Equal(t, id, e.incidentOf(ev.ID))
	}
	require.Equal(t, cache.ID, e.incidentOf(cache.ID))

	in, err := e.store.Incident(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, db.ID, in.RootEventID, "the upstream database, not the earliest event, is the root")
	require.Equal(t, event.CorrelationCausal, in.CorrelationType)
	require.Equal(t, 5, in.EventCount)
	require.Equal(t, []string{"app-01", "app-02", "db-01", "lb-01", "synth-01"}, in.Hosts)
	require.Len(t, in.RootCauseRanking, 5)
	top := in.RootCauseRanking[0]
	require.Equal(t, db.ID, top.EventID)
	require.Contains(t, top.Reason, "4 of 4 other hosts depend on it and it depends on no failing host")
	require.Contains(t, top.Reason, "severity critical")
	var synthReason string
	for _, c := range in.RootCauseRanking {
		if c.EventID == synth.ID {
			synthReason = c.Reason
		}
		require.LessOrEqual(t, c.Score, top.Score)
	}
	require.Contains(t, synthReason, "earliest event")
	require.Contains(t, synthReason, "depends on a failing host")
	require.True(t, strings.HasPrefix(in.Title, "db-01: postgres not accepting connections"), in.Title)

	// Not announced yet: no parent links.
	got, err := e.store.Event(e.ctx, app1.ID)
	require.NoError(t, err)
	require.Zero(t, got.ParentEventID)
	require.Equal(t, event.NullID(id), got.IncidentID)
	e.clock.add(2 * time.Second)
	require.NoError(t, e.eng.Tick(e.ctx))
	for _, ev := range []event.Event{synth, lb, app1, app2} {
		got, err := e.store.Event(e.ctx, ev.ID)
		require.NoError(t, err)
		require.Equal(t, db.ID, got.ParentEventID, "after the group wait the root is the others' parent")
	}
	rows, err := e.store.Correlations(e.ctx, db.ID)
	require.NoError(t, err)
	var found bool
	for _, r := range rows {
		if r.CorrelationID == in.CorrelationID {
			found = true
			require.Equal(t, event.CorrelationCausal, r.Type)
			require.ElementsMatch(t, []int64{synth.ID, lb.ID, app1.ID, app2.ID}, r.RelatedEventIDs)
			require.Contains(t, r.Reason, "root cause ranking: 1. event")
		}
	}
	require.True(t, found, "the incident's correlation row")
}

func TestSiblingsMergeWhenTheirCommonUpstreamReports(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	app1 := e.ev("app-01", 0, event.High, "app_error", "connection refused")
	app2 := e.ev("app-02", time.Second, event.High, "app_error", "connection refused")
	e.handle(app1)
	e.handle(app2)
	require.Len(t, e.incidents(), 2, "siblings are not related until their dependency reports")
	db := e.ev("db-01", 2*time.Second, event.Critical, "db_down", "down")
	e.handle(db)
	ins := e.incidents()
	require.Len(t, ins, 1, "the database connects them: merged into the older")
	require.Equal(t, app1.ID, ins[0].ID)
	require.Equal(t, 3, ins[0].EventCount)
	require.Equal(t, db.ID, ins[0].RootEventID)
	require.Equal(t, app1.ID, e.incidentOf(app2.ID))
}

func TestSeverityFloorAndLowEventsJoinTheirHost(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	noise := e.ev("web-77", 0, event.Info, "heartbeat", "ok")
	low := e.ev("app-01", 0, event.Low, "app_log", "slow query")
	e.handle(noise, low)
	require.Empty(t, e.incidents(), "info and low events of healthy hosts open nothing")
	crit := e.ev("app-01", time.Minute, event.High, "app_error", "errors")
	after := e.ev("app-01", 2*time.Minute, event.Info, "app_log", "retrying")
	otherLow := e.ev("db-01", 2*time.Minute, event.Low, "db_log", "checkpoint")
	e.handle(crit, after, otherLow)
	require.Equal(t, crit.ID, e.incidentOf(after.ID), "a low event of a host in an incident joins it")
	require.Zero(t, e.incidentOf(otherLow.ID), "a low event does not join through the graph")
	require.Zero(t, e.incidentOf(low.ID), "handled before the incident opened")
}

func TestUnrelatedHostsAreNotMergedByTime(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	var evs []event.Event
	for i, h := range []string{"cache-01", "db-01", "web-77"} {
		evs = append(evs, e.ev(h, time.Duration(i)*time.Second, event.Critical, "down", h+" down"))
	}
	e.handle(evs...)
	require.Len(t, e.incidents(), 3)
	// Hosts outside the inventory with different labels stay apart too;
	// with the same labels they form one pattern_based incident.
	x := e.ev("vm-a", 0, event.High, "dns_error", "resolution of api.example failed")
	y := e.ev("vm-b", time.Second, event.High, "dns_error", "resolution of api.example failed")
	z := e.ev("vm-c", time.Second, event.High, "disk_full", "disk 98% full")
	e.handle(x, y, z)
	require.Equal(t, x.ID, e.incidentOf(y.ID))
	require.Equal(t, z.ID, e.incidentOf(z.ID))
	in, err := e.store.Incident(e.ctx, x.ID)
	require.NoError(t, err)
	require.Equal(t, event.CorrelationPatternBased, in.CorrelationType)
	// A same-labelled event far outside the window opens its own.
	late := e.ev("vm-d", time.Hour, event.High, "dns_error", "resolution of api.example failed")
	e.handle(late)
	require.Equal(t, late.ID, e.incidentOf(late.ID))
}

func TestResolvedAbsorbsNothingAndReopenIsExplicit(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	first := e.ev("db-01", 0, event.Critical, "db_down", "down")
	e.handle(first)
	in, err := e.eng.SetStatus(e.ctx, first.ID, store.IncidentAcknowledged)
	require.NoError(t, err)
	require.Equal(t, store.IncidentAcknowledged, in.Status)
	ackd := e.ev("app-01", time.Second, event.High, "app_error", "errors")
	e.handle(ackd)
	require.Equal(t, first.ID, e.incidentOf(ackd.ID), "an acknowledged incident still absorbs")

	_, err = e.eng.SetStatus(e.ctx, first.ID, store.IncidentResolved)
	require.NoError(t, err)
	_, err = e.eng.SetStatus(e.ctx, first.ID, store.IncidentAcknowledged)
	require.ErrorIs(t, err, ErrTransition)
	again := e.ev("db-01", 2*time.Second, event.Critical, "db_down", "down again")
	e.handle(again)
	require.Equal(t, again.ID, e.incidentOf(again.ID), "a resolved incident absorbs nothing: a new one opens")

	_, err = e.eng.SetStatus(e.ctx, again.ID, store.IncidentResolved)
	require.NoError(t, err)
	in, err = e.eng.SetStatus(e.ctx, first.ID, store.IncidentOpen)
	require.NoError(t, err)
	require.Equal(t, store.IncidentOpen, in.Status)
	require.True(t, in.ResolvedAt.IsZero())
	later := e.ev("app-02", 3*time.Second, event.High, "app_error", "errors")
	e.handle(later)
	require.Equal(t, first.ID, e.incidentOf(later.ID), "reopened, it absorbs again")
	_, err = e.eng.SetStatus(e.ctx, 12345, store.IncidentResolved)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestIdempotentUnderRedelivery(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	db := e.ev("db-01", 0, event.Critical, "db_down", "down")
	app := e.ev("app-01", time.Second, event.High, "app_error", "errors")
	e.handle(db, app)
	e.handle(db, app)
	e.handle(app, db, db)
	ins := e.incidents()
	require.Len(t, ins, 1)
	require.Equal(t, 2, ins[0].EventCount)
	// Redelivered after a restart too, and after it was resolved.
	e.restart()
	e.handle(db, app)
	require.Equal(t, 2, e.incidents()[0].EventCount)
	_, err := e.eng.SetStatus(e.ctx, db.ID, store.IncidentResolved)
	require.NoError(t, err)
	e.handle(db, app)
	require.Len(t, e.incidents(), 1, "a redelivered event of a resolved incident opens nothing")
}

func TestRestartRestoresOpenIncidents(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	db := e.ev("db-01", 0, event.Critical, "db_down", "down")
	e.handle(db)
	require.Equal(t, 1, e.eng.Open())
	e.restart()
	require.Equal(t, 1, e.eng.Open(), "open incidents are read back")
	app := e.ev("app-01", time.Minute, event.High, "app_error", "errors")
	e.handle(app)
	require.Equal(t, db.ID, e.incidentOf(app.ID), "a restored incident absorbs its dependents")
	in, err := e.store.Incident(e.ctx, db.ID)
	require.NoError(t, err)
	require.Equal(t, 2, in.EventCount)
	require.Equal(t, db.ID, in.RootEventID)
}

func TestQuietIncidentsResolveAndTeachTheRootHistory(t *testing.T) {
	e := newEnv(t, Options{ResolveAfter: 10 * time.Minute, Window: time.Minute})
	// Without an inventory: hosts group by labels, and the history of
	// which signature was the root decides between otherwise equal
	// candidates.
	for i := range 4 {
		at := time.Duration(i) * time.Hour
		a := e.ev("x-1", at, event.High, "probe", "probe failed")
		b := e.ev("y-2", at+time.Second, event.High, "probe", "probe failed")
		e.handle(a, b)
		e.clock.add(11 * time.Minute)
		require.NoError(t, e.eng.Tick(e.ctx))
	}
	for _, in := range e.incidents() {
		require.Equal(t, store.IncidentResolved, in.Status, "resolved after ResolveAfter without an event")
	}
	st := e.eng.learned["type:probe:probe failed"]
	require.NotNil(t, st)
	require.Equal(t, 4, st.seen)
	e.restart()
	require.Equal(t, 4, e.eng.learned["type:probe:probe failed"].seen, "the root history is rebuilt at start")
}

func TestMaxOpenIsABound(t *testing.T) {
	e := newEnv(t, Options{MaxOpen: 3})
	for i := range 6 {
		ev := e.ev("h"+string(rune('a'+i)), time.Duration(i)*time.Second, event.High, "t"+string(rune('a'+i)), "x")
		e.handle(ev)
		e.clock.add(time.Second)
	}
	require.LessOrEqual(t, e.eng.Open(), 3)
	open := 0
	for _, in := range e.incidents() {
		if in.Status != store.IncidentResolved {
			open++
		}
	}
	require.Equal(t, e.eng.Open(), open, "memory and store agree on what is open")
}

// precedes is a sequence learner that knows that template 1 precedes
// template 2.
type precedes struct{}

func (precedes) Precedes(before, after int64) (float64, int) {
	if before == 1 && after == 2 {
		return 0.95, 50
	}
	if before == 2 && after == 1 {
		return 0.05, 50
	}
	return 0, 0
}

func TestPrecedenceHookAndTemplates(t *testing.T) {
	e := newEnv(t, Options{Precedence: precedes{}, GroupBy: []string{"service"}})
	a := e.ev("vm-a", 0, event.High, "log", "timeout talking to queue")
	a.SourceService = "billing"
	a.Data = map[string]any{"template": map[string]any{"id": float64(2), "text": "timeout talking to <*>"}}
	b := e.ev("vm-b", 5*time.Second, event.High, "log", "queue broker down")
	b.SourceService = "billing"
	b.Data = map[string]any{"template": map[string]any{"id": float64(1), "text": "queue broker down"}}
	e.handle(a, b)
	in, err := e.store.Incident(e.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, 2, in.EventCount, "grouped by the service label")
	require.Equal(t, b.ID, in.RootEventID, "the learned sequence outweighs being earliest")
	require.Contains(t, in.RootCauseRanking[0].Reason, "learned to precede the others")
	require.Equal(t, "template:1", in.RootCauseRanking[0].Signature)
}

func TestOptionsAreChecked(t *testing.T) {
	_, err := New(t.Context(), Options{})
	require.Error(t, err)
	e := newEnv(t, Options{})
	o := e.opts
	o.GroupBy = []string{"colour"}
	_, err = New(e.ctx, o)
	require.ErrorContains(t, err, `unknown group_by label "colour"`)
	o = e.opts
	o.MinSeverity = "severe"
	_, err = New(e.ctx, o)
	require.Error(t, err)
}

func TestTemplateOfOption(t *testing.T) {
	e := newEnv(t, Options{TemplateOf: func(ev *event.Event) (int64, bool) {
		if ev.EventType == "log" {
			return 42, true
		}
		return 0, false
	}})
	a := e.ev("vm-a", 0, event.High, "log", "disk 91 full")
	b := e.ev("vm-b", time.Second, event.High, "log", "something else entirely")
	e.handle(a, b)
	in, err := e.store.Incident(e.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, 2, in.EventCount, "one template: one label group")
	require.Equal(t, "template:42", in.RootCauseRanking[0].Signature)
	sig, tmpl := e.eng.signature(&event.Event{EventType: "x", Title: "Took 1234 ms"})
	require.Equal(t, "type:x:took  ms", sig, "without a template: the type and the title without digits")
	require.Zero(t, tmpl)
	id, ok := DataTemplate(&event.Event{Data: map[string]any{"template": map[string]any{"id": float64(7), "text": "t"}}})
	require.True(t, ok)
	require.Equal(t, int64(7), id)
	// The template stage's typed result, as a stored event decodes it.
	var typed event.Event
	require.NoError(t, typed.UnmarshalData([]byte(`{"template":{"id":9,"text":"t <*>"}}`)))
	id, ok = DataTemplate(&typed)
	require.True(t, ok)
	require.Equal(t, int64(9), id)
}

func TestEventsWithoutAHostGroupByLabelsOnly(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	a := e.ev("", 0, event.High, "job_failed", "nightly export failed")
	b := e.ev("", time.Second, event.High, "quota", "api quota exceeded")
	c := e.ev("", 2*time.Second, event.High, "job_failed", "nightly export failed")
	e.handle(a, b, c)
	require.Equal(t, a.ID, e.incidentOf(c.ID), "the same labels")
	require.Equal(t, b.ID, e.incidentOf(b.ID), "no host is not a shared host")
}

func TestDerivedEventsWithoutHostOpenNothing(t *testing.T) {
	e := newEnv(t, Options{}, shop...)
	rate := e.ev("", 0, event.High, "anomaly", "Anomaly in rate:type:app_error")
	rate.SourceType = event.SourceReflex
	e.handle(rate)
	require.Empty(t, e.incidents(), "an anomaly of an event type's rate is a symptom, not an incident")

	metric := e.ev("db-01", time.Second, event.High, "anomaly", "Anomaly in metric:db-01:connections")
	metric.SourceType = event.SourceReflex
	e.handle(metric)
	ins := e.incidents()
	require.Len(t, ins, 1, "one about a host opens its incident as any event does")
	require.Equal(t, metric.ID, ins[0].RootEventID)
}
