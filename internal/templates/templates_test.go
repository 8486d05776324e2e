package templates

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/derived"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// recorder is a derived.Sink that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []derived.Event
}

func (r *recorder) Emit(e derived.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return true
}

func (r *recorder) take() []derived.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(dir, "reflex.db")})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	return s
}

type env struct {
	t     *testing.T
	dir   string
	store *sqlite.Store
	sink  *recorder
	stage *Stage
	reg   *prometheus.Registry
	now   time.Time
	id    int64
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	e := &env{t: t, dir: t.TempDir(), sink: &recorder{}, now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	e.store = openStore(t, e.dir)
	t.Cleanup(func() { e.store.Close() })
	e.restart(mod)
	return e
}

// restart builds a new stage on the same store, as a restarted server does.
func (e *env) restart(mod func(*Options)) {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	opts := Options{Store: e.store, Sink: e.sink, Registerer: e.reg}
	if mod != nil {
		mod(&opts)
	}
	var err error
	e.stage, err = New(e.t.Context(), opts)
	require.NoError(e.t, err)
}

// ev is an event of host with log text msg.
func (e *env) ev(host, msg string) *event.Event {
	e.id++
	return &event.Event{ID: e.id, RawEventID: e.id, SourceType: event.SourceWebhook, SourceHost: host, SourceService: "api", Message: msg, OccurrenceCount: 1}
}

func (e *env) process(events ...*event.Event) *pipeline.Batch {
	e.t.Helper()
	b := &pipeline.Batch{Now: e.now, Events: events}
	require.NoError(e.t, e.stage.Process(context.Background(), b))
	return b
}

func (e *env) stored() map[int64]store.LogTemplate {
	e.t.Helper()
	all, err := e.store.AllTemplates(e.t.Context())
	require.NoError(e.t, err)
	out := map[int64]store.LogTemplate{}
	for _, t := range all {
		out[t.ID] = t
	}
	return out
}

func TestTemplatesAreSet(t *testing.T) {
	e := newEnv(t, nil)
	a := e.ev("web-01", "connection from 10.0.0.1 closed after 12 ms")
	b := e.ev("web-01", "connection from 10.0.0.2 closed after 340 ms")
	c := e.ev("web-01", "disk sda is full")
	derivedEv := e.ev("web-01", "new log pattern on web-01: disk sda is full")
	derivedEv.SourceType = event.SourceReflex
	noText := e.ev("web-01", "")
	e.process(a, b, c, derivedEv, noText)

	require.Equal(t, &event.Template{ID: 1, Text: "connection from <*> closed after <*> ms"}, a.Template)
	require.Equal(t, a.Template, b.Template)
	require.Equal(t, &event.Template{ID: 2, Text: "disk sda is full"}, c.Template)
	require.Nil(t, derivedEv.Template, "derived events are not mined")
	require.Nil(t, noText.Template, "nor events without log text")

	// The typed result lands in event_data.template.
	data, err := a.MarshalData()
	require.NoError(t, err)
	require.JSONEq(t, `{"template":{"id":1,"text":"connection from <*> closed after <*> ms"}}`, string(data))

	// New templates are stored before Process returns (before the batch
	// that carries their ids is stored), without waiting for a flush.
	st := e.stored()
	require.Len(t, st, 2)
	require.Equal(t, "connection from <*> closed after <*> ms", st[1].Text)
	require.Equal(t, "connection from 10.0.0.1 closed after 12 ms", st[1].Example)
	require.EqualValues(t, 2, testutil.ToFloat64(e.stage.m.created))
	require.EqualValues(t, 3, testutil.ToFloat64(e.stage.m.mined))
	require.EqualValues(t, 2, testutil.ToFloat64(e.stage.m.templates))
}

func TestTemplatesEvolveAndCount(t *testing.T) {
	e := newEnv(t, nil)
	first := e.ev("web-01", "session closed for peer host-alpha")
	e.process(first)
	require.Equal(t, "session closed for peer host-alpha", first.Template.Text)

	// A parameter discovered: the same template, its text evolved.
	second := e.ev("web-01", "session closed for peer host-beta")
	second.OccurrenceCount = 3 // two repeats folded into it in its batch
	e.process(second)
	require.EqualValues(t, 1, second.Template.ID)
	evolved := second.Template.Text
	require.NotEqual(t, first.Template.Text, evolved)
	require.Contains(t, evolved, "<*>")

	// A repeat that deduplication folds into an event of an earlier batch
	// counts for that event's template.
	b := &pipeline.Batch{Now: e.now}
	b.SetOutcome(999, pipeline.Outcome{ProcessedEventID: second.ID})
	b.SetOutcome(998, pipeline.Outcome{Error: "rate_limited"})
	b.Events = []*event.Event{e.ev("web-02", "something else entirely")}
	require.NoError(t, e.stage.Process(context.Background(), b))

	require.Equal(t, "session closed for peer host-alpha", e.stored()[1].Text, "counts and texts wait for the flush")
	e.now = e.now.Add(time.Minute)
	require.NoError(t, e.stage.Flush(t.Context()))
	got := e.stored()[1]
	require.Equal(t, evolved, got.Text)
	require.EqualValues(t, 1+3+1, got.Count)
	require.Equal(t, "session closed for peer host-alpha", got.Example, "the first message stays the example")

	// A batch that is not stored takes its counts back.
	b = &pipeline.Batch{Now: e.now, Events: []*event.Event{e.ev("web-01", "session closed for peer host-gamma")}}
	require.NoError(t, e.stage.Process(context.Background(), b))
	b.Abort()
	require.NoError(t, e.stage.Flush(t.Context()))
	require.EqualValues(t, 5, e.stored()[1].Count)
}

func TestFoldedTemplates(t *testing.T) {
	e := newEnv(t, nil)
	// Messages that differ in one word are templates of their own until
	// the word shows four values; then they fold into the oldest.
	var evs []*event.Event
	for _, w := range []string{"alice", "bob", "carol"} {
		ev := e.ev("web-01", "login refused for "+w)
		e.process(ev)
		evs = append(evs, ev)
	}
	require.Equal(t, []int64{1, 2, 3}, []int64{evs[0].Template.ID, evs[1].Template.ID, evs[2].Template.ID})
	dave := e.ev("web-01", "login refused for dave")
	e.process(dave)
	require.Equal(t, &event.Template{ID: 1, Text: "login refused for <*>"}, dave.Template, "the fourth value folds them")

	// The fold is stored at once: the folded templates name the live one,
	// which has their counts.
	st := e.stored()
	require.EqualValues(t, 4, st[1].Count)
	require.Equal(t, "login refused for <*>", st[1].Text)
	for _, id := range []int64{2, 3} {
		require.EqualValues(t, 1, st[id].FoldedInto, "template %d", id)
		require.Zero(t, st[id].Count)
	}

	// And survives a restart.
	e.restart(nil)
	erin := e.ev("web-01", "login refused for erin")
	e.process(erin)
	require.EqualValues(t, 1, erin.Template.ID)
}

func TestFlushEveryInterval(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.FlushInterval = time.Minute })
	e.process(e.ev("web-01", "job 1 done"))
	e.process(e.ev("web-01", "job 2 done"))
	require.EqualValues(t, 1, e.stored()[1].Count)
	e.now = e.now.Add(2 * time.Minute)
	e.process(e.ev("web-01", "job 3 done"))
	require.EqualValues(t, 3, e.stored()[1].Count, "flushed by the batch past the interval")
	require.True(t, e.now.Equal(e.stored()[1].LastSeen))
}

func TestIDsStableAcrossRestart(t *testing.T) {
	e := newEnv(t, nil)
	msgs := []string{
		"session opened for peer host-alpha", // 1
		"disk /dev/sda1 is 91% full",         // 2
		"request 4711 failed: timeout",       // 3
		"cache miss for key user:42",         // 4
		"worker 3 restarted after crash",     // 5
	}
	var events []*event.Event
	for _, m := range msgs {
		events = append(events, e.ev("web-01", m))
	}
	e.process(events...)
	// Evolve the first one: its text changes, its id stays.
	bob := e.ev("web-01", "session opened for peer host-beta")
	e.process(bob)
	require.EqualValues(t, 1, bob.Template.ID)
	require.Contains(t, bob.Template.Text, "<*>")
	require.NoError(t, e.stage.Flush(t.Context()))

	e.restart(nil)
	for i, m := range append(msgs, "session opened for peer host-gamma") {
		ev := e.ev("web-01", m)
		e.process(ev)
		want := int64(i + 1)
		if i == len(msgs) {
			want = 1
		}
		require.Equal(t, want, ev.Template.ID, "%q keeps its template id", m)
	}
	fresh := e.ev("web-01", "backup of volume data completed")
	e.process(fresh)
	require.EqualValues(t, 6, fresh.Template.ID, "new templates take the next ids")
	require.EqualValues(t, 6, testutil.ToFloat64(e.stage.m.templates))
}

func TestNewOnHost(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Learning = time.Hour })
	// A new host learns silently.
	e.process(e.ev("web-01", "service started"), e.ev("web-01", "listening on port 8080"))
	require.Empty(t, e.sink.take(), "web-01 is in its learning period")
	require.EqualValues(t, 2, testutil.ToFloat64(e.stage.m.newOnHost.WithLabelValues("learning")))

	// Past it, a template new to the host is an event; known ones are not.
	e.now = e.now.Add(61 * time.Minute)
	e.process(e.ev("web-01", "service started"), e.ev("web-01", "out of memory: killed process 912"), e.ev("web-01", "out of memory: killed process 913"))
	got := e.sink.take()
	require.Len(t, got, 1)
	require.Equal(t, derived.Event{
		Type: derived.TypeNewLogPattern, Severity: event.Info, Host: "web-01", Service: "api",
		Message:  "new log pattern on web-01: out of memory: killed process <*>",
		Metadata: map[string]any{"template_id": int64(3), "template": "out of memory: killed process <*>", "example": "out of memory: killed process 912"},
		At:       e.now,
	}, got[0])

	// A template known elsewhere is new on a host that never logged it,
	// but that host is new and learns first.
	e.process(e.ev("web-02", "service started"))
	require.Empty(t, e.sink.take())

	// After a restart the hosts' beginnings and pairs come from the store:
	// nothing known is new again, web-01 is not learning.
	e.restart(func(o *Options) { o.Learning = time.Hour })
	e.process(e.ev("web-01", "service started"), e.ev("web-01", "listening on port 8081"))
	require.Empty(t, e.sink.take())
	e.process(e.ev("web-01", "certificate expires in 3 days"))
	require.Len(t, e.sink.take(), 1)
	require.Empty(t, e.sink.take())

	// Without a host there is nothing to be new on.
	e.process(e.ev("", "a message of no host"))
	require.Empty(t, e.sink.take())
}

func TestNoLearningPeriod(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Learning = -1 })
	e.process(e.ev("web-01", "service started"), e.ev("db-01", "service started"))
	got := e.sink.take()
	require.Len(t, got, 2)
	require.ElementsMatch(t, []string{"web-01", "db-01"}, []string{got[0].Host, got[1].Host})
}

func TestBoundedCaches(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Learning = -1
		o.MaxHosts, o.MaxPairs, o.MaxRecent = 2, 3, 2
	})
	hosts := []string{"a", "b", "c", "d", "e"}
	for round := range 3 {
		for _, h := range hosts {
			e.process(e.ev(h, "service started"), e.ev(h, "service stopped"))
		}
		got := e.sink.take()
		if round == 0 {
			require.Len(t, got, 10, "each pair once")
		} else {
			require.Empty(t, got, "the store answers for pairs the caches forgot")
		}
		e.stage.mu.Lock()
		require.LessOrEqual(t, len(e.stage.hosts), 2)
		require.LessOrEqual(t, len(e.stage.pairs), 3)
		require.LessOrEqual(t, len(e.stage.recent), 2)
		e.stage.mu.Unlock()
	}
}

func TestConcurrentBatches(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Learning = -1 })
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				host := []string{"a", "b", "c", "d"}[w]
				ev := &event.Event{ID: int64(w*1000 + i + 1), SourceType: event.SourceWebhook, SourceHost: host, Message: fmt.Sprintf("task finished on worker-%d", i%5), OccurrenceCount: 1}
				b := &pipeline.Batch{Now: e.now, Events: []*event.Event{ev}}
				require.NoError(t, e.stage.Process(context.Background(), b))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, e.stage.Flush(t.Context()))
	var total int64
	for _, tm := range e.stored() {
		total += tm.Count
	}
	require.EqualValues(t, 200, total)
	require.Len(t, e.sink.take(), 4, "one template, new once on each of 4 hosts")
}

func TestNewNeedsStore(t *testing.T) {
	_, err := New(t.Context(), Options{})
	require.Error(t, err)
}
