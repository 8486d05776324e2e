package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// fakeContext answers the context of any host, or err.
type fakeContext struct {
	host string
	at   time.Time
	err  error
}

func (f *fakeContext) Context(_ context.Context, host string, now time.Time) (contextual.Context, error) {
	f.host, f.at = host, now
	if f.err != nil {
		return contextual.Context{}, f.err
	}
	return contextual.Context{Host: host, At: now, BusinessHours: contextual.BusinessHours{Configured: true, Inside: true}}, nil
}

// historyEnv is an events handler whose events, history and maintenance
// windows are in a real SQLite store.
type historyEnv struct {
	*env
	st  store.Store
	ctx *fakeContext
}

func newHistoryEnv(t *testing.T) *historyEnv {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(context.Background()))
	he := &historyEnv{st: st, ctx: &fakeContext{}}
	he.env = newEnv(t, func(o *EventsOptions) {
		o.Store, o.History, o.Maintenance, o.Context = st, st, st, he.ctx
	})
	return he
}

var histSeq atomic.Int64

// write stores one event per time, of host and service, with the
// template id when not zero.
func (he *historyEnv) write(host, service string, template int64, times ...time.Time) {
	he.t.Helper()
	b := &store.Batch{}
	for _, at := range times {
		at = at.UTC().Truncate(time.Microsecond)
		id := event.IDAt(at) + histSeq.Add(1)%4096
		b.Raw = append(b.Raw, event.Raw{ID: id, SourceSystem: "app", SourceType: event.SourceWebhook, Data: []byte(`{}`), ReceivedAt: at, Processed: true, ProcessedEventID: id})
		e := event.Event{
			ID: id, RawEventID: id, EventType: "log", Severity: event.Low, SourceSystem: "app", SourceType: event.SourceWebhook,
			SourceHost: host, SourceService: service, Title: "x", OccurredAt: at, ReceivedAt: at, ProcessedAt: at, OccurrenceCount: 1, LastSeenAt: at,
		}
		if template != 0 {
			e.Data = map[string]any{"template": map[string]any{"id": template, "text": "user <*> logged in"}}
		}
		b.New = append(b.New, e)
	}
	require.NoError(he.t, he.st.WriteBatch(context.Background(), b))
}

func hours(from time.Time, counts ...int) []time.Time {
	var out []time.Time
	for h, n := range counts {
		for i := range n {
			out = append(out, from.Add(time.Duration(h)*time.Hour+time.Duration(i+1)*time.Second))
		}
	}
	return out
}

func TestAnalyticsBucketsTopAndTrend(t *testing.T) {
	e := newHistoryEnv(t)
	start := testNow.Add(-12 * time.Hour) // a whole hour
	e.write("web-01", "nginx", 0, hours(start, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)...)
	e.write("db-01", "postgres", 9, hours(start, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4)...)

	w := e.do(req{method: http.MethodGet, path: "/api/v1/events/analytics?timerange=12h&groupby=host&interval=1h&top=templates&limit=5", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var a Analytics
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &a))
	require.Equal(t, "12h", a.Timerange)
	require.Equal(t, int64(78+48), a.Total)
	require.Equal(t, []store.Bucket{{Key: "web-01", Count: 78, Occurrences: 78}, {Key: "db-01", Count: 48, Occurrences: 48}}, a.Buckets, "unchanged")
	require.Equal(t, "1h", a.Interval)

	require.NotNil(t, a.Overall)
	require.Len(t, a.Overall.Points, 12)
	require.Equal(t, int64(126), a.Overall.Count)
	require.Len(t, a.Series, 2)
	web := a.Series[0]
	require.Equal(t, "web-01", web.Key)
	require.Equal(t, int64(1), web.Points[0].Count)
	require.Equal(t, int64(12), web.Points[11].Count)
	require.True(t, web.Trend.Significant)
	require.Equal(t, "rising", web.Trend.Direction)
	require.InDelta(t, 1.0, web.Trend.Slope, 1e-9)
	db := a.Series[1]
	require.False(t, db.Trend.Significant)
	require.Equal(t, "stable", db.Trend.Direction)

	require.NotNil(t, a.Top)
	require.Equal(t, "templates", a.Top.By)
	require.Len(t, a.Top.Entries, 1)
	require.Equal(t, "9", a.Top.Entries[0].Key)
	require.Equal(t, "user <*> logged in", a.Top.Entries[0].Label)
	require.Equal(t, int64(48), a.Top.Entries[0].Count)
	require.Len(t, a.Top.Entries[0].Points, 12)

	// since/until, top without interval, limit.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/events/analytics?since=" + start.Add(6*time.Hour).Format(time.RFC3339) + "&until=" + testNow.Format(time.RFC3339) + "&top=hosts&limit=1", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	a = Analytics{}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &a))
	require.Equal(t, "6h", a.Timerange)
	require.Len(t, a.Top.Entries, 1)
	require.Equal(t, "web-01", a.Top.Entries[0].Key)
	require.Equal(t, int64(7+8+9+10+11+12), a.Top.Entries[0].Count)
	require.Nil(t, a.Top.Entries[0].Points)
	require.Empty(t, a.Interval)
	require.NotContains(t, w.Body.String(), `"series"`)

	// Without interval or top the answer is the one of before.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/events/analytics?timerange=12h", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	m := decodeBody(t, w)
	require.ElementsMatch(t, []string{"timerange", "groupby", "since", "until", "total", "buckets"}, keysOf(m))
}

func TestTopRules(t *testing.T) {
	e := newHistoryEnv(t)
	rule, err := e.st.CreateTriggerRule(context.Background(), store.TriggerRule{Name: "Disk full", Conditions: json.RawMessage(`{}`), Active: true})
	require.NoError(t, err)
	for i := range 3 {
		_, err := e.st.InsertRuleExecution(context.Background(), store.RuleExecution{TriggerRuleID: rule.ID, TriggeringEventID: int64(i + 1), TriggeringRawEventID: int64(i + 1), Status: "completed", StartedAt: testNow.Add(-time.Duration(i+1) * time.Minute)})
		require.NoError(t, err)
	}
	w := e.do(req{method: http.MethodGet, path: "/api/v1/events/analytics?top=rules", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var a Analytics
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &a))
	require.Len(t, a.Top.Entries, 1)
	require.Equal(t, "Disk full", a.Top.Entries[0].Label)
	require.Equal(t, int64(3), a.Top.Entries[0].Count)
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTrendsEndpoint(t *testing.T) {
	e := newHistoryEnv(t)
	day := 24 * time.Hour
	e.write("a", "nginx", 0, hours(testNow.Add(-2*day), 5)...) // previous period
	e.write("a", "nginx", 0, hours(testNow.Add(-day), 15)...)  // current
	e.write("b", "postgres", 0, hours(testNow.Add(-2*day), 4)...)
	e.write("b", "postgres", 0, hours(testNow.Add(-day), 4)...)

	w := e.do(req{method: http.MethodGet, path: "/api/v1/events/trends?groupby=service&timerange=24h", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var tr Trends
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	require.Equal(t, "service", tr.GroupBy)
	require.Equal(t, "24h", tr.Timerange)
	require.Equal(t, "1h", tr.Interval)
	require.Equal(t, testNow.Add(-day), tr.Since)
	require.Equal(t, testNow.Add(-2*day), tr.PreviousSince)
	require.Equal(t, 2, tr.Count)
	require.Equal(t, "nginx", tr.Groups[0].Key)
	require.Equal(t, int64(15), tr.Groups[0].Current)
	require.Equal(t, int64(5), tr.Groups[0].Previous)
	require.Equal(t, int64(10), tr.Groups[0].Change)
	require.InDelta(t, 200.0, *tr.Groups[0].ChangePercent, 1e-9)
	require.Equal(t, 24, tr.Groups[0].Trend.Points)
	require.Equal(t, "postgres", tr.Groups[1].Key)
	require.Equal(t, int64(0), tr.Groups[1].Change)

	// The default groupby is service, the default timerange 24h.
	w = e.do(req{method: http.MethodGet, path: "/api/v1/events/trends?limit=1&groupby=host", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &tr))
	require.Len(t, tr.Groups, 1)
	require.Equal(t, "a", tr.Groups[0].Key)
}

func TestHistoryBadParameters(t *testing.T) {
	e := newHistoryEnv(t)
	for _, c := range []struct{ path, field, contains string }{
		{"/api/v1/events/analytics?interval=2h", "interval", "5m, 1h or 1d"},
		{"/api/v1/events/analytics?interval=5m&timerange=30d", "interval", "buckets"},
		{"/api/v1/events/analytics?interval=1h&groupby=hour", "interval", "groupby=hour"},
		{"/api/v1/events/analytics?top=colors", "top", "templates"},
		{"/api/v1/events/analytics?top=hosts&limit=0", "limit", "1 to 100"},
		{"/api/v1/events/analytics?top=hosts&limit=101", "limit", "1 to 100"},
		{"/api/v1/events/analytics?limit=5", "limit", "neither"},
		{"/api/v1/events/analytics?since=2026-11-27T09:00:00Z&timerange=1h", "timerange", "not both"},
		{"/api/v1/events/analytics?since=yesterday", "since", "RFC 3339"},
		{"/api/v1/events/analytics?since=2026-11-27T11:00:00Z", "since", "before until"},
		{"/api/v1/events/analytics?until=2026-13-01T00:00:00Z", "until", "RFC 3339"},
		{"/api/v1/events/analytics?bucket=1h", "bucket", "unknown query parameter"},
		{"/api/v1/events/trends?groupby=hour", "groupby", "host, service"},
		{"/api/v1/events/trends?timerange=7x", "timerange", "duration"},
		{"/api/v1/events/trends?timerange=0h", "timerange", "duration"},
		{"/api/v1/events/trends?limit=1001", "limit", "1 to 1000"},
		{"/api/v1/events/trends?interval=5m&timerange=30d", "interval", "buckets"},
		{"/api/v1/events/trends?interval=1w", "interval", "5m, 1h or 1d"},
		{"/api/v1/events/trends?since=2026-11-27T09:00:00Z", "since", "unknown query parameter"},
		{"/api/v1/context", "host", "required"},
		{"/api/v1/context?host=%20", "host", "required"},
		{"/api/v1/context?host=a&host=b", "host", "more than once"},
		{"/api/v1/context?hostname=a", "hostname", "unknown query parameter"},
	} {
		t.Run(c.path, func(t *testing.T) {
			requireError(t, e.do(req{method: http.MethodGet, path: c.path, key: "reader"}), http.StatusBadRequest, c.field, c.contains)
		})
	}
}

func TestHistoryRoutesAbsentWithoutOptions(t *testing.T) {
	e := newEnv(t)
	requireError(t, e.do(req{method: http.MethodGet, path: "/api/v1/context?host=a", key: "reader"}), http.StatusNotFound, "", "")
	requireError(t, e.do(req{method: http.MethodGet, path: "/api/v1/maintenance", key: "reader"}), http.StatusNotFound, "", "")
	// Without History, trends is taken for an event id and interval is
	// an unknown parameter.
	requireError(t, e.do(req{method: http.MethodGet, path: "/api/v1/events/trends", key: "reader"}), http.StatusBadRequest, "id", "")
	requireError(t, e.do(req{method: http.MethodGet, path: "/api/v1/events/analytics?interval=1h", key: "reader"}), http.StatusBadRequest, "interval", "unknown query parameter")
}

func TestContextEndpoint(t *testing.T) {
	e := newHistoryEnv(t)
	w := e.do(req{method: http.MethodGet, path: "/api/v1/context?host=db-01", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	m := decodeBody(t, w)
	require.Equal(t, "db-01", m["host"])
	require.Equal(t, "db-01", e.ctx.host)
	require.True(t, testNow.Equal(e.ctx.at), "the handler's clock")
	require.Equal(t, true, m["business_hours"].(map[string]any)["inside"])

	e.ctx.err = errors.New("store down")
	w = e.do(req{method: http.MethodGet, path: "/api/v1/context?host=db-01", key: "reader"})
	requireError(t, w, http.StatusServiceUnavailable, "", "context")
	require.NotEmpty(t, w.Header().Get("Retry-After"))
}

func TestHistoryScopes(t *testing.T) {
	e := newHistoryEnv(t)
	for _, rt := range []struct{ method, path, scope, body string }{
		{http.MethodGet, "/api/v1/events/analytics?top=hosts", auth.ScopeEventsRead, ""},
		{http.MethodGet, "/api/v1/events/trends", auth.ScopeEventsRead, ""},
		{http.MethodGet, "/api/v1/context?host=a", auth.ScopeEventsRead, ""},
		{http.MethodGet, "/api/v1/maintenance", auth.ScopeEventsRead, ""},
		{http.MethodPost, "/api/v1/maintenance", auth.ScopeRulesWrite, `{"matchers": {"host": "a"}, "ends_at": "2026-11-27T11:00:00Z"}`},
		{http.MethodDelete, "/api/v1/maintenance/1", auth.ScopeRulesWrite, ""},
	} {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			requireError(t, e.do(req{method: rt.method, path: rt.path, body: rt.body}), http.StatusUnauthorized, "", "")
			for role, scope := range map[string]string{"reader": auth.ScopeEventsRead, "rules": auth.ScopeRulesWrite, "writer": auth.ScopeEventsWrite} {
				w := e.do(req{method: rt.method, path: rt.path, key: role, body: rt.body})
				if scope == rt.scope {
					require.Less(t, w.Code, 300, "%s: %s", role, w.Body.String())
					continue
				}
				m := requireError(t, w, http.StatusForbidden, "", rt.scope)
				require.Equal(t, rt.scope, m["scope"])
			}
		})
	}
}
