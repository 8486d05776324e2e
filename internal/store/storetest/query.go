package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

func testCorrelationReplace(t *testing.T, e *env) {
	a := mk(e.base, "web-01", event.High, "a")
	b := mk(e.base.Add(time.Second), "web-01", event.High, "b")
	c := mk(e.base.Add(2*time.Second), "web-01", event.High, "c")
	const cid = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
	for _, p := range []*pair{&a, &b, &c} {
		p.ev.CorrelationID = cid
	}
	first := event.Correlation{CorrelationID: cid, Type: event.CorrelationTimeBased, PrimaryEventID: a.ev.ID,
		RelatedEventIDs: []int64{a.ev.ID, b.ev.ID}, Score: 0.5, Reason: "2 events on web-01 within 5m", CreatedAt: e.base}
	bt := batch(a, b)
	bt.Correlations = []event.Correlation{first}
	e.write(t, bt)

	cs, err := e.s.Correlations(e.ctx, a.ev.ID)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.NotZero(t, cs[0].ID)
	id := cs[0].ID
	cs[0].ID = 0
	require.Equal(t, first, cs[0])

	grown := first
	grown.RelatedEventIDs = []int64{a.ev.ID, b.ev.ID, c.ev.ID}
	grown.Score = 0.75
	grown.Reason = "3 events on web-01 within 5m"
	grown.CreatedAt = e.base.Add(time.Minute) // a replacement keeps the row's creation time
	bt = batch(c)
	bt.Correlations = []event.Correlation{grown}
	e.write(t, bt)

	for _, p := range []pair{a, b, c} {
		cs, err = e.s.Correlations(e.ctx, p.ev.ID)
		require.NoError(t, err)
		require.Len(t, cs, 1)
		require.Equal(t, id, cs[0].ID)
		want := grown
		want.ID, want.CreatedAt = id, first.CreatedAt
		require.Equal(t, want, cs[0])
	}

	// The two pipeline lanes may commit the states of one group out of
	// order: a stale, smaller row never replaces a larger one.
	d := mk(e.base.Add(3*time.Second), "web-01", event.Low, "d")
	d.ev.CorrelationID = cid
	bt = batch(d)
	bt.Correlations = []event.Correlation{first}
	e.write(t, bt)
	cs, err = e.s.Correlations(e.ctx, a.ev.ID)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, grown.RelatedEventIDs, cs[0].RelatedEventIDs, "the stale row did not shrink the group")
}

func testCorrelationGroups(t *testing.T, e *env) {
	const (
		webGroup = "aaaaaaaa-0000-4000-8000-000000000001"
		dbGroup  = "aaaaaaaa-0000-4000-8000-000000000002"
		causal   = "aaaaaaaa-0000-4000-8000-000000000003"
		other    = "aaaaaaaa-0000-4000-8000-000000000004"
	)
	parent := mk(e.base, "db-01", event.Critical, "database down")
	parent.ev.CorrelationID = dbGroup
	child := mk(e.base.Add(time.Second), "web-01", event.High, "502 from upstream")
	child.ev.CorrelationID, child.ev.ParentEventID = webGroup, parent.ev.ID
	sibling := mk(e.base.Add(2*time.Second), "web-01", event.Medium, "latency high")
	sibling.ev.CorrelationID = webGroup
	child2 := mk(e.base.Add(3*time.Second), "web-02", event.High, "502 from upstream")
	child2.ev.ParentEventID = parent.ev.ID
	loner := mk(e.base.Add(4*time.Second), "web-09", event.Low, "unrelated")
	stranger := mk(e.base.Add(5*time.Second), "web-08", event.Low, "in another causal group")
	stranger.ev.ParentEventID = parent.ev.ID

	corr := map[string]event.Correlation{
		webGroup: {CorrelationID: webGroup, Type: event.CorrelationTimeBased, PrimaryEventID: child.ev.ID,
			RelatedEventIDs: []int64{child.ev.ID, sibling.ev.ID}, Score: 0.6, Reason: "2 events on web-01 within 5m", CreatedAt: e.base},
		dbGroup: {CorrelationID: dbGroup, Type: event.CorrelationTimeBased, PrimaryEventID: parent.ev.ID,
			RelatedEventIDs: []int64{parent.ev.ID}, Score: 0.1, Reason: "1 event on db-01", CreatedAt: e.base},
		causal: {CorrelationID: causal, Type: event.CorrelationCausal, PrimaryEventID: parent.ev.ID,
			RelatedEventIDs: []int64{child.ev.ID, child2.ev.ID}, Score: 0.9, Reason: "web-01, web-02 depend on db-01", CreatedAt: e.base},
		other: {CorrelationID: other, Type: event.CorrelationTimeBased, PrimaryEventID: loner.ev.ID,
			RelatedEventIDs: []int64{loner.ev.ID}, Score: 0.1, Reason: "unrelated", CreatedAt: e.base},
	}
	bt := batch(parent, child, sibling, child2, loner, stranger)
	for _, c := range corr {
		bt.Correlations = append(bt.Correlations, c)
	}
	e.write(t, bt)

	cases := []struct {
		name    string
		id      int64
		want    []string
		missing bool
	}{
		{"child: its time group and the causal group naming it", child.ev.ID, []string{webGroup, causal}, false},
		{"sibling: its time group", sibling.ev.ID, []string{webGroup}, false},
		{"parent: its time group and the causal group it leads", parent.ev.ID, []string{dbGroup, causal}, false},
		{"child without a time group", child2.ev.ID, []string{causal}, false},
		{"a parent's group that does not list it", stranger.ev.ID, nil, false},
		{"an event that does not exist", idAt(e.base), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.s.Correlations(e.ctx, c.id)
			if c.missing {
				require.ErrorIs(t, err, store.ErrNotFound)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, got)
			var names []string
			for _, g := range got {
				names = append(names, g.CorrelationID)
				want := corr[g.CorrelationID]
				want.ID = g.ID
				require.Equal(t, want, g)
			}
			slices.Sort(names)
			require.Equal(t, c.want, names)
		})
	}
}

// dataset writes the events the query tests filter, and returns them by
// name. T is e.base.
func dataset(t *testing.T, e *env) map[string]pair {
	type spec struct {
		name, host, svc, typ, src string
		sev                       event.Severity
		title, desc, corr         string
		ago                       time.Duration
		count                     int
	}
	const corrX = "c0ffee00-0000-4000-8000-00000000000a"
	specs := []spec{
		{"e1", "web-01", "nginx", "threshold_breach", "nagios", event.Critical, "CPU usage exceeded 95%", "", corrX, 50 * time.Minute, 3},
		{"e2", "web-01", "nginx", "log", "syslog", event.Low, "GET /index 200", "", corrX, 40 * time.Minute, 1},
		{"e3", "web-02", "api", "threshold_breach", "prometheus", event.High, "disk 100% full", "", "", 30 * time.Minute, 1},
		{"e4", "db-01", "postgres", "replication_lag", "prometheus", event.Medium, "cpu_high on db", "Replication lag 5s", "", 20 * time.Minute, 2},
		{"e5", "db-01", "postgres", "replication_lag", "prometheus", event.Info, "cpuXhigh probe", "", "", 10 * time.Minute, 1},
		{"e6", "", "", "heartbeat", "custom", event.Info, "Überhitzung Sensor 東京", "ОШИБКА датчика", "", 5 * time.Minute, 1},
		{"e7", "web-02", "api", "threshold_breach", "nagios", event.Critical, "Memory 50% used", "", "", 2 * time.Hour, 1},
	}
	out := map[string]pair{}
	var ps []pair
	for _, s := range specs {
		at := e.base.Add(-s.ago)
		p := mk(at, s.host, s.sev, s.title)
		p.raw.SourceSystem, p.ev.SourceSystem = s.src, s.src
		p.ev.SourceService, p.ev.EventType = s.svc, s.typ
		p.ev.Description, p.ev.CorrelationID, p.ev.OccurrenceCount = s.desc, s.corr, s.count
		out[s.name] = p
		ps = append(ps, p)
	}
	e.write(t, batch(ps...))
	return out
}

func testEventFilters(t *testing.T, e *env) {
	d := dataset(t, e)
	T := e.base
	cases := []struct {
		name string
		q    store.EventQuery
		want []string
	}{
		{"no filter: newest first", store.EventQuery{}, []string{"e6", "e5", "e4", "e3", "e2", "e1", "e7"}},
		{"one severity", store.EventQuery{Severities: []event.Severity{event.Critical}}, []string{"e1", "e7"}},
		{"severities", store.EventQuery{Severities: []event.Severity{event.Critical, event.High}}, []string{"e3", "e1", "e7"}},
		{"since is inclusive", store.EventQuery{Since: T.Add(-30 * time.Minute)}, []string{"e6", "e5", "e4", "e3"}},
		{"until is exclusive", store.EventQuery{Until: T.Add(-30 * time.Minute)}, []string{"e2", "e1", "e7"}},
		{"since and until", store.EventQuery{Since: T.Add(-40 * time.Minute), Until: T.Add(-20 * time.Minute)}, []string{"e3", "e2"}},
		{"host", store.EventQuery{Host: "web-01"}, []string{"e2", "e1"}},
		{"host unknown", store.EventQuery{Host: "nope"}, nil},
		{"service", store.EventQuery{Service: "postgres"}, []string{"e5", "e4"}},
		{"event type", store.EventQuery{EventType: "replication_lag"}, []string{"e5", "e4"}},
		{"source", store.EventQuery{Source: "prometheus"}, []string{"e5", "e4", "e3"}},
		{"correlation id", store.EventQuery{CorrelationID: "c0ffee00-0000-4000-8000-00000000000a"}, []string{"e2", "e1"}},
		{"correlation id in capitals", store.EventQuery{CorrelationID: "C0FFEE00-0000-4000-8000-00000000000A"}, []string{"e2", "e1"}},
		{"text, any case", store.EventQuery{Text: "cpu"}, []string{"e5", "e4", "e1"}},
		{"text with _ is literal", store.EventQuery{Text: "cpu_high"}, []string{"e4"}},
		{"text with % is literal", store.EventQuery{Text: "100%"}, []string{"e3"}},
		{"text that is only %", store.EventQuery{Text: "%"}, []string{"e3", "e1", "e7"}},
		{"text with a backslash", store.EventQuery{Text: `\`}, nil},
		{"text in the description", store.EventQuery{Text: "replication LAG"}, []string{"e4"}},
		{"unicode text, other case", store.EventQuery{Text: "überhitzung"}, []string{"e6"}},
		{"unicode text in the description", store.EventQuery{Text: "ошибка"}, []string{"e6"}},
		{"CJK text", store.EventQuery{Text: "東京"}, []string{"e6"}},
		{"host and severity", store.EventQuery{Host: "web-02", Severities: []event.Severity{event.Critical}}, []string{"e7"}},
		{"host and text", store.EventQuery{Host: "db-01", Text: "CPU"}, []string{"e5", "e4"}},
		{"everything", store.EventQuery{Severities: []event.Severity{event.Medium}, Since: T.Add(-time.Hour), Until: T,
			Host: "db-01", Service: "postgres", EventType: "replication_lag", Source: "prometheus", Text: "lag"}, []string{"e4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page, err := e.s.Events(e.ctx, c.q)
			require.NoError(t, err)
			require.False(t, page.More)
			var want []int64
			for _, n := range c.want {
				want = append(want, d[n].ev.ID)
			}
			require.Equal(t, want, nilIfEmpty(ids(page.Events)))
		})
	}
	t.Run("events come back whole", func(t *testing.T) {
		page, err := e.s.Events(e.ctx, store.EventQuery{Host: "db-01", Text: "cpu_high"})
		require.NoError(t, err)
		require.Len(t, page.Events, 1)
		requireEvent(t, d["e4"].ev, &page.Events[0])
	})
}

func nilIfEmpty(s []int64) []int64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testPagination(t *testing.T, e *env) {
	at := e.base.Add(-time.Minute)
	var ps []pair
	for i := range 7 {
		p := mk(e.base, "web-01", event.Info, fmt.Sprintf("same time %d", i))
		p.ev.OccurredAt = at // same occurred_at, ids differ
		ps = append(ps, p)
	}
	older := mk(e.base, "web-01", event.Info, "older")
	older.ev.OccurredAt = at.Add(-time.Microsecond)
	newer := mk(e.base, "web-01", event.Info, "newer")
	newer.ev.OccurredAt = at.Add(time.Microsecond)
	e.write(t, batch(append(ps, older, newer)...))

	want := []int64{newer.ev.ID}
	same := idsOf(ps...)
	slices.Sort(same)
	slices.Reverse(same)
	want = append(want, same...)
	want = append(want, older.ev.ID)

	var got []int64
	q := store.EventQuery{Limit: 3}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "pagination does not end")
		page, err := e.s.Events(e.ctx, q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Events), 3)
		got = append(got, ids(page.Events)...)
		if !page.More {
			break
		}
		last := page.Events[len(page.Events)-1]
		q.BeforeTime, q.BeforeID = last.OccurredAt, last.ID
	}
	require.Equal(t, want, got)

	t.Run("cursor with filters", func(t *testing.T) {
		page, err := e.s.Events(e.ctx, store.EventQuery{Host: "web-01", BeforeTime: at, BeforeID: same[2], Limit: 100})
		require.NoError(t, err)
		require.Equal(t, append(slices.Clone(same[3:]), older.ev.ID), ids(page.Events))
	})
	t.Run("cursor without an id", func(t *testing.T) {
		page, err := e.s.Events(e.ctx, store.EventQuery{BeforeTime: at})
		require.NoError(t, err)
		require.Equal(t, []int64{older.ev.ID}, ids(page.Events))
	})
}

func testLimit(t *testing.T, e *env) {
	var ps []pair
	for i := range 1001 {
		ps = append(ps, mk(e.base.Add(-time.Duration(i)*time.Millisecond), fmt.Sprintf("host-%d", i%10), event.Low, "many"))
	}
	e.write(t, batch(ps...))
	cases := []struct {
		name     string
		limit    int
		wantLen  int
		wantMore bool
	}{
		{"zero means 100", 0, 100, true},
		{"negative means 100", -1, 100, true},
		{"one", 1, 1, true},
		{"exactly all", 1001, 1000, true}, // capped
		{"above the cap", 5000, 1000, true},
		{"the cap", 1000, 1000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page, err := e.s.Events(e.ctx, store.EventQuery{Limit: c.limit})
			require.NoError(t, err)
			require.Len(t, page.Events, c.wantLen)
			require.Equal(t, c.wantMore, page.More)
			require.Equal(t, ps[0].ev.ID, page.Events[0].ID)
		})
	}
	t.Run("last page", func(t *testing.T) {
		page, err := e.s.Events(e.ctx, store.EventQuery{Host: "host-3", Limit: 101})
		require.NoError(t, err)
		require.Len(t, page.Events, 100)
		require.False(t, page.More)
	})
}

func testAnalytics(t *testing.T, e *env) {
	d := dataset(t, e)
	T := e.base
	// Hours of the dataset, counted the same way the stores must.
	hours := map[string]store.Bucket{}
	for _, p := range d {
		k := p.ev.OccurredAt.UTC().Truncate(time.Hour).Format(time.RFC3339)
		b := hours[k]
		b.Key, b.Count, b.Occurrences = k, b.Count+1, b.Occurrences+int64(p.ev.OccurrenceCount)
		hours[k] = b
	}
	var byHour []store.Bucket
	for _, b := range hours {
		byHour = append(byHour, b)
	}
	slices.SortFunc(byHour, func(a, b store.Bucket) int { return strings.Compare(a.Key, b.Key) })

	cases := []struct {
		name string
		q    store.AnalyticsQuery
		want []store.Bucket
	}{
		{"severity", store.AnalyticsQuery{GroupBy: store.BySeverity}, []store.Bucket{
			bk("critical", 2, 4), bk("info", 2, 2), bk("high", 1, 1), bk("low", 1, 1), bk("medium", 1, 2)}},
		{"host", store.AnalyticsQuery{GroupBy: store.ByHost}, []store.Bucket{
			bk("db-01", 2, 3), bk("web-01", 2, 4), bk("web-02", 2, 2), bk("", 1, 1)}},
		{"service", store.AnalyticsQuery{GroupBy: store.ByService}, []store.Bucket{
			bk("api", 2, 2), bk("nginx", 2, 4), bk("postgres", 2, 3), bk("", 1, 1)}},
		{"event type", store.AnalyticsQuery{GroupBy: store.ByEventType}, []store.Bucket{
			bk("threshold_breach", 3, 5), bk("replication_lag", 2, 3), bk("heartbeat", 1, 1), bk("log", 1, 1)}},
		{"source", store.AnalyticsQuery{GroupBy: store.BySource}, []store.Bucket{
			bk("prometheus", 3, 4), bk("nagios", 2, 4), bk("custom", 1, 1), bk("syslog", 1, 1)}},
		{"hour", store.AnalyticsQuery{GroupBy: store.ByHour}, byHour},
		{"severity since, until", store.AnalyticsQuery{GroupBy: store.BySeverity, Since: T.Add(-40 * time.Minute), Until: T.Add(-10 * time.Minute)},
			[]store.Bucket{bk("high", 1, 1), bk("low", 1, 1), bk("medium", 1, 2)}},
		{"empty range", store.AnalyticsQuery{GroupBy: store.ByHost, Since: T.Add(time.Hour)}, []store.Bucket{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.s.Analytics(e.ctx, c.q)
			require.NoError(t, err)
			require.NotNil(t, got)
			// Order: by key for hours; by count descending, then key.
			require.Equal(t, c.want, got)
		})
	}
	t.Run("hour keys are RFC 3339 UTC hours", func(t *testing.T) {
		got, err := e.s.Analytics(e.ctx, store.AnalyticsQuery{GroupBy: store.ByHour})
		require.NoError(t, err)
		for _, b := range got {
			ts, err := time.Parse(time.RFC3339, b.Key)
			require.NoError(t, err)
			require.Equal(t, ts.Truncate(time.Hour), ts)
			require.True(t, strings.HasSuffix(b.Key, ":00:00Z"), b.Key)
		}
	})
	t.Run("unknown dimension", func(t *testing.T) {
		_, err := e.s.Analytics(e.ctx, store.AnalyticsQuery{GroupBy: "color"})
		require.Error(t, err)
	})
}

func testRecentEvents(t *testing.T, e *env) {
	T := e.base
	since := T.Add(-5 * time.Minute)
	before := mk(T.Add(-10*time.Minute), "web-01", event.Low, "seen before the window")
	b := mk(T.Add(-3*time.Minute), "web-01", event.Low, "received in the window")
	c := mk(T.Add(-time.Hour), "web-02", event.Low, "old, repeated in the window")
	d := mk(T.Add(-2*time.Minute), "web-03", event.Low, "received in the window, later")
	f := mk(T.Add(-time.Hour), "web-04", event.Low, "old")
	g := mk(T.Add(-30*time.Second), "web-05", event.Low, "future occurred_at")
	g.ev.OccurredAt = T.Add(48 * time.Hour)
	h := mk(T.Add(-20*time.Second), "web-06", event.Low, "occurred long ago")
	h.ev.OccurredAt = T.Add(-30 * 24 * time.Hour)
	e.write(t, batch(before, b, c, d, f, g, h))
	e.write(t, &store.Batch{Repeats: []store.Repeat{{EventID: c.ev.ID, OccurredAt: c.ev.OccurredAt, OccurrenceCount: 5, LastSeenAt: T.Add(-time.Minute)}}})

	all := []int64{b.ev.ID, d.ev.ID, c.ev.ID, g.ev.ID, h.ev.ID}
	cases := []struct {
		name  string
		limit int
		want  []int64
	}{
		{"all, oldest first", 100, all},
		{"limited", 2, all[:2]},
		{"no limit", 0, all},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			got, err := e.s.RecentEvents(e.ctx, since, cs.limit)
			require.NoError(t, err)
			require.Equal(t, cs.want, ids(got))
		})
	}
	got, err := e.s.RecentEvents(e.ctx, since, 10)
	require.NoError(t, err)
	require.Equal(t, 5, got[2].OccurrenceCount)
	requireEvent(t, b.ev, &got[0])

	none, err := e.s.RecentEvents(e.ctx, T.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, none)
}

func bk(key string, count, occurrences int64) store.Bucket {
	return store.Bucket{Key: key, Count: count, Occurrences: occurrences}
}

func testOldestFirst(t *testing.T, e *env) {
	at := e.base.Add(-time.Minute)
	var ps []pair
	for i := range 5 {
		p := mk(e.base, "web-01", event.Info, fmt.Sprintf("same time %d", i))
		p.ev.OccurredAt = at
		ps = append(ps, p)
	}
	older := mk(e.base, "web-01", event.Info, "older")
	older.ev.OccurredAt = at.Add(-time.Microsecond)
	newer := mk(e.base, "web-01", event.Info, "newer")
	newer.ev.OccurredAt = at.Add(time.Microsecond)
	outside := mk(e.base, "web-01", event.Info, "outside")
	outside.ev.OccurredAt = at.Add(time.Hour)
	other := mk(e.base, "db-01", event.Info, "other host")
	other.ev.OccurredAt = at
	e.write(t, batch(append(ps, newer, older, outside, other)...))

	same := idsOf(ps...)
	slices.Sort(same)
	want := append(append([]int64{older.ev.ID}, same...), newer.ev.ID)

	var got []int64
	q := store.EventQuery{OldestFirst: true, Host: "web-01", Since: at.Add(-time.Second), Until: at.Add(time.Second), Limit: 2,
		BeforeTime: at.Add(-time.Hour) /* ignored oldest first */}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "pagination does not end")
		page, err := e.s.Events(e.ctx, q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Events), 2)
		got = append(got, ids(page.Events)...)
		if !page.More {
			break
		}
		require.Equal(t, got[len(got)-1], page.NextID)
		q.AfterTime, q.AfterID = page.NextTime, page.NextID
	}
	require.Equal(t, want, got)

	atCursor := append(slices.Clone(same), other.ev.ID)
	slices.Sort(atCursor)
	page, err := e.s.Events(e.ctx, store.EventQuery{OldestFirst: true, AfterTime: at, AfterID: atCursor[1], Limit: 100})
	require.NoError(t, err)
	require.Equal(t, append(append(slices.Clone(atCursor[2:]), newer.ev.ID), outside.ev.ID), ids(page.Events),
		"the cursor without filters")
	require.False(t, page.More)
}
