package patterns

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// testStore is the SQLite store with the warm-up's events given by the
// test.
type testStore struct {
	*sqlite.Store
	recent []event.Event
}

func (s *testStore) RecentEvents(context.Context, time.Time, int) ([]event.Event, error) {
	return s.recent, nil
}

type env struct {
	t     *testing.T
	st    *testStore
	l     *Learner
	now   time.Time
	id    int64
	opts  Options
	links []event.Correlation
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	t.Cleanup(func() { s.Close() })
	e := &env{t: t, st: &testStore{Store: s}, now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	e.opts = Options{Store: e.st, MinSupport: 5, MinHours: 3, Window: 5 * time.Minute, FlushInterval: 1000 * time.Hour, WarmLimit: 1}
	if mod != nil {
		mod(&e.opts)
	}
	e.restart()
	return e
}

func (e *env) restart() {
	e.t.Helper()
	var err error
	e.opts.Now = func() time.Time { return e.now }
	e.l, err = New(e.t.Context(), e.opts)
	require.NoError(e.t, err)
}

// ev is an event of template tmpl (event type typ when tmpl is 0) on host
// received at the env's clock.
func (e *env) ev(host string, tmpl int64, typ string) *event.Event {
	e.id++
	ev := &event.Event{ID: e.id, SourceType: event.SourceWebhook, SourceHost: host, EventType: typ, ReceivedAt: e.now}
	if tmpl > 0 {
		ev.Template = &event.Template{ID: tmpl, Text: "template text " + string(rune('a'+tmpl))}
	}
	return ev
}

func (e *env) process(evs ...*event.Event) *pipeline.Batch {
	e.t.Helper()
	b := &pipeline.Batch{Now: e.now, Events: evs}
	require.NoError(e.t, e.l.Process(context.Background(), b))
	e.links = b.Correlations
	return b
}

// story posts n times A then, 10 s later, B on host, 10 minutes apart.
func (e *env) story(host string, n int) {
	for range n {
		e.process(e.ev(host, 1, "log"))
		e.now = e.now.Add(10 * time.Second)
		e.process(e.ev(host, 2, "log"))
		e.now = e.now.Add(10 * time.Minute)
	}
}

func (e *env) patterns(typ string) []store.EventPattern {
	e.t.Helper()
	ps, err := e.st.Patterns(e.t.Context(), store.PatternQuery{Type: typ})
	require.NoError(e.t, err)
	return ps
}

func TestLearnsAndLinksASequence(t *testing.T) {
	e := newEnv(t, nil)
	e.story("db-01", 4)
	require.NoError(t, e.l.Flush(t.Context()))
	require.Empty(t, e.patterns(store.PatternSequence), "4 cases are below the support of 5")
	conf, n := e.l.Precedes(1, 2)
	require.Equal(t, 1.0, conf)
	require.Equal(t, 4, n)

	e.story("db-01", 2)
	require.NoError(t, e.l.Flush(t.Context()))
	seqs := e.patterns(store.PatternSequence)
	require.Len(t, seqs, 1, "only A → B: B is never followed by A within the window")
	require.True(t, seqs[0].Active)
	require.InDelta(t, 0.8, seqs[0].ConfidenceThreshold, 1e-9)
	d, err := ParseSequence(seqs[0].Definition)
	require.NoError(t, err)
	require.Equal(t, SequenceDefinition{Before: Item{TemplateID: 1}, After: Item{TemplateID: 2}, WithinSeconds: 300, Learned: true,
		Support: 6, Confidence: 1, BeforeText: "template text b", AfterText: "template text c"}, d)
	require.Equal(t, `"template text b" → "template text c"`, seqs[0].Name)
	conf, n = e.l.Precedes(2, 1)
	require.Zero(t, conf)
	require.Zero(t, n)

	// The pattern links what follows it: A, then B twice within the window.
	a := e.ev("db-01", 1, "log")
	e.process(a)
	require.Empty(t, e.links)
	e.now = e.now.Add(30 * time.Second)
	b1 := e.ev("db-01", 2, "log")
	other := e.ev("web-01", 2, "log") // another host: not linked
	e.process(b1, other)
	require.Len(t, e.links, 1)
	row := e.links[0]
	require.Equal(t, event.CorrelationPatternBased, row.Type)
	require.Equal(t, a.ID, row.PrimaryEventID)
	require.Equal(t, []int64{b1.ID}, row.RelatedEventIDs)
	require.Equal(t, SequenceCorrelationID(seqs[0].ID, a.ID), row.CorrelationID)
	require.InDelta(t, 1.0, row.Score, 1e-9)
	require.Contains(t, row.Reason, "is followed by")
	e.now = e.now.Add(time.Minute)
	b2 := e.ev("db-01", 2, "log")
	e.process(b2)
	require.Len(t, e.links, 1)
	require.Equal(t, row.CorrelationID, e.links[0].CorrelationID, "the same row grows")
	require.Equal(t, []int64{b1.ID, b2.ID}, e.links[0].RelatedEventIDs)

	// Past the window, B begins nothing.
	e.now = e.now.Add(10 * time.Minute)
	e.process(e.ev("db-01", 2, "log"))
	require.Empty(t, e.links)

	// Disabled by hand, it links nothing.
	seqs[0].Active = false
	_, err = e.st.UpdatePattern(t.Context(), seqs[0])
	require.NoError(t, err)
	require.NoError(t, e.l.Reload(t.Context()))
	e.process(e.ev("db-01", 1, "log"))
	e.now = e.now.Add(10 * time.Second)
	e.process(e.ev("db-01", 2, "log"))
	require.Empty(t, e.links)
	require.NoError(t, e.l.Flush(t.Context()))
	require.Len(t, e.patterns(store.PatternSequence), 1, "a disabled pattern is not learned again")
}

func TestUndo(t *testing.T) {
	e := newEnv(t, nil)
	e.story("db-01", 5)
	require.NoError(t, e.l.Flush(t.Context()))
	conf, n := e.l.Precedes(1, 2)
	a := e.ev("db-01", 1, "log")
	e.process(a)
	e.now = e.now.Add(10 * time.Second)
	b := e.process(e.ev("db-01", 2, "log"))
	require.Len(t, b.Correlations, 1)
	b.Abort()
	c2, n2 := e.l.Precedes(1, 2)
	require.Equal(t, n, n2, "B's batch was not stored")
	require.Less(t, c2, conf, "A's batch was: one more A")
	// The redelivered B is counted and linked once.
	e.process(e.ev("db-01", 2, "log"))
	_, n3 := e.l.Precedes(1, 2)
	require.Equal(t, n+1, n3)
	require.Len(t, e.links, 1)
	require.Len(t, e.links[0].RelatedEventIDs, 1)
}

func TestHandMadePatternAndEventTypes(t *testing.T) {
	e := newEnv(t, nil)
	def, err := json.Marshal(SequenceDefinition{Before: Item{EventType: "deploy"}, After: Item{EventType: "error_rate"}, WithinSeconds: 60})
	require.NoError(t, err)
	p, err := e.st.CreatePattern(t.Context(), store.EventPattern{Name: "deploy then errors", Type: store.PatternSequence, Definition: def, ConfidenceThreshold: 0.5, Active: true})
	require.NoError(t, err)
	require.NoError(t, e.l.Reload(t.Context()))
	dep := e.ev("app-01", 0, "deploy")
	e.process(dep)
	e.now = e.now.Add(30 * time.Second)
	e.process(e.ev("app-01", 0, "error_rate"))
	require.Len(t, e.links, 1, "a hand-made pattern links without history")
	require.Equal(t, SequenceCorrelationID(p.ID, dep.ID), e.links[0].CorrelationID)
	e.now = e.now.Add(2 * time.Minute)
	e.process(e.ev("app-01", 0, "error_rate"))
	require.Empty(t, e.links, "outside its own window of 60 s")
}

func TestFrequency(t *testing.T) {
	e := newEnv(t, nil)
	for h := range 5 {
		for range 2 + h%2 { // 2, 3, 2, 3, 2 events per hour
			e.process(e.ev("web-01", 7, "log"))
			e.now = e.now.Add(time.Minute)
		}
		e.now = e.now.Truncate(time.Hour).Add(time.Hour)
	}
	require.NoError(t, e.l.Flush(t.Context()))
	fs := e.patterns(store.PatternFrequency)
	require.Len(t, fs, 1)
	var d FrequencyDefinition
	require.NoError(t, json.Unmarshal(fs[0].Definition, &d))
	require.Equal(t, Item{TemplateID: 7}, d.Item)
	require.EqualValues(t, 4, d.Hours, "the hour being counted is not closed yet")
	require.InDelta(t, 2.5, d.Mean, 1e-9)
	require.InDelta(t, 0.577, d.StdDev, 1e-3)
	require.NoError(t, e.l.Flush(t.Context()))
	require.Len(t, e.patterns(store.PatternFrequency), 1, "stored once")
}

func TestWarmAtStart(t *testing.T) {
	e := newEnv(t, nil)
	var evs []event.Event
	for range 6 {
		evs = append(evs, *e.ev("db-01", 1, "log"))
		e.now = e.now.Add(10 * time.Second)
		evs = append(evs, *e.ev("db-01", 2, "log"))
		e.now = e.now.Add(10 * time.Minute)
	}
	// Stored events come back in any order of receipt.
	evs[0], evs[3] = evs[3], evs[0]
	e.st.recent = evs
	e.opts.WarmLimit = 0
	e.restart()
	conf, n := e.l.Precedes(1, 2)
	require.Equal(t, 1.0, conf)
	require.Equal(t, 6, n)
}

func TestBounds(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxPairs, o.MaxHosts, o.PerHost, o.MaxItems = 3, 2, 4, 5 })
	for i := range 20 {
		host := []string{"a", "b", "c"}[i%3]
		e.process(e.ev(host, int64(1+i%7), "log"))
		e.now = e.now.Add(time.Second)
	}
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	require.LessOrEqual(t, len(e.l.pairs), 3)
	require.LessOrEqual(t, len(e.l.hosts), 2)
	require.LessOrEqual(t, len(e.l.items), 5)
	for _, w := range e.l.hosts {
		require.LessOrEqual(t, len(w.occs), 4)
	}
}

func TestParseSequence(t *testing.T) {
	for _, bad := range []string{
		`[]`, `{}`, `{"before":{"template_id":1}}`, `{"before":{"template_id":-1},"after":{"template_id":2}}`,
		`{"before":{"template_id":1},"after":{"template_id":1}}`, `{"before":{"event_type":"a"},"after":{"event_type":"b"},"within_seconds":100000}`,
	} {
		_, err := ParseSequence([]byte(bad))
		require.Error(t, err, bad)
	}
	d, err := ParseSequence([]byte(`{"before":{"event_type":"deploy"},"after":{"template_id":3}}`))
	require.NoError(t, err)
	require.Equal(t, Item{EventType: "deploy"}, d.Before)
}
