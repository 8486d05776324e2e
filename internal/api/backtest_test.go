package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/rules/cond"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// backtestBase is 08:00 of the test day; testNow is 10:00.
var backtestBase = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// storedEvent is one processed event of the backtest seed.
type storedEvent struct {
	min       int // minutes after backtestBase
	host      string
	eventType string
	sev       event.Severity
	cpu       float64
	count     int // occurrence_count; 0 means 1
	lastMin   int // last_seen_at, minutes after backtestBase
}

// seedBacktest stores the events through WriteBatch, one raw event each.
func seedBacktest(t *testing.T, st *sqlite.Store, evs []storedEvent) {
	t.Helper()
	b := &store.Batch{}
	for i, se := range evs {
		at := backtestBase.Add(time.Duration(se.min) * time.Minute)
		id := event.IDAt(at) + int64(i)
		count, last := 1, at
		if se.count > 1 {
			count, last = se.count, backtestBase.Add(time.Duration(se.lastMin)*time.Minute)
		}
		b.Raw = append(b.Raw, event.Raw{ID: id, SourceSystem: "prometheus", SourceType: event.SourceWebhook,
			Data: []byte(`{}`), ReceivedAt: at, Processed: true, ProcessedEventID: id})
		b.New = append(b.New, event.Event{
			ID: id, RawEventID: id, EventType: se.eventType, Severity: se.sev, SourceSystem: "prometheus",
			SourceType: event.SourceWebhook, SourceHost: se.host, Title: "CPU",
			Data:       map[string]any{"metadata": map[string]any{"cpu_usage": se.cpu}},
			OccurredAt: at, ReceivedAt: at, ProcessedAt: at, OccurrenceCount: count, LastSeenAt: last,
		})
	}
	require.NoError(t, st.WriteBatch(t.Context(), b))
}

var backtestSeed = []storedEvent{
	{min: -1, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95}, // before since
	{min: 0, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95},
	{min: 5, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 50},      // cpu too low
	{min: 6, host: "web-01", eventType: "service_down", sev: event.High, cpu: 95},          // other type
	{min: 7, host: "web-01", eventType: "threshold_breach", sev: event.Low, cpu: 95},       // severity
	{min: 10, host: "web-01", eventType: "threshold_breach", sev: event.Critical, cpu: 99}, //
	{min: 15, host: "db-01", eventType: "threshold_breach", sev: event.High, cpu: 91, count: 3, lastMin: 40},
	{min: 20, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95},
	{min: 30, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95},
	{min: 50, host: "db-01", eventType: "threshold_breach", sev: event.High, cpu: 95},
	{min: 59, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95},
	{min: 60, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95},
	{min: 65, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95},
	{min: 120, host: "web-01", eventType: "threshold_breach", sev: event.High, cpu: 95}, // at until: out
}

// at is the time minutes after backtestBase, as RFC 3339.
func at(minutes int) string {
	return backtestBase.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339)
}

func TestBacktest(t *testing.T) {
	_, st := newRulesEnv(t)
	e := newEnv(t, func(o *EventsOptions) { o.Rules, o.Store = st, st })
	seedBacktest(t, st, backtestSeed)
	seed := createRule(t, e, seedRule)
	two := createRule(t, e, `{"name": "Any two", "conditions": {"event_type": "threshold_breach"}, "severity_threshold": "high",
		"time_window_minutes": 5, "min_count": 2, "group_by": [], "max_triggers_per_hour": 10}`)
	before, err := st.TriggerRules(t.Context(), nil)
	require.NoError(t, err)

	path := func(id int64) string { return fmt.Sprintf("/api/v1/rules/triggers/%d/test", id) }
	body := fmt.Sprintf(`{"since": %q, "until": %q}`, at(0), at(120))

	// web-01 fires at 0, 10, 20; 30 and 59 are the 4th and 5th within an
	// hour; 60 is an hour after 0; 65 sees 10, 20 and 60. db-01 fires at
	// 15 and twice at 40 (its two repeats), and 50 is its 4th.
	w := e.do(req{method: http.MethodPost, path: path(seed), key: "reader", body: body})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, fmt.Sprintf(`{"events": 12, "matched": 9, "occurrences": 11, "firings": 7, "suppressed": 4,
		"first_firing_at": %q, "last_firing_at": %q, "truncated": false}`, at(0), at(60)), w.Body.String())

	// One group, two within 5 minutes: 0+5, 10+15, 40+40 (db-01's
	// repeats), 59+60. The low event is not read (severity_threshold).
	w = e.do(req{method: http.MethodPost, path: path(two), key: "reader", body: body})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, fmt.Sprintf(`{"events": 11, "matched": 10, "occurrences": 12, "firings": 4, "suppressed": 0,
		"first_firing_at": %q, "last_firing_at": %q, "truncated": false}`, at(5), at(60)), w.Body.String())

	// until defaults to now (10:00), so the event at 10:00 stays out.
	w = e.do(req{method: http.MethodPost, path: path(seed), key: "reader", body: fmt.Sprintf(`{"since": %q}`, at(0))})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"events":12,`)

	// An empty range.
	w = e.do(req{method: http.MethodPost, path: path(seed), key: "reader", body: fmt.Sprintf(`{"since": %q, "until": %q}`, at(200), at(300))})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"events": 0, "matched": 0, "occurrences": 0, "firings": 0, "suppressed": 0,
		"first_firing_at": null, "last_firing_at": null, "truncated": false}`, w.Body.String())

	after, err := st.TriggerRules(t.Context(), nil)
	require.NoError(t, err)
	require.Equal(t, before, after, "no state change")
	xs, err := st.RuleExecutions(t.Context(), store.RuleExecutionQuery{})
	require.NoError(t, err)
	require.Empty(t, xs, "no firing")
	require.Zero(t, e.submit.calls, "nothing submitted")
}

func TestBacktestValidation(t *testing.T) {
	_, st := newRulesEnv(t)
	e := newEnv(t, func(o *EventsOptions) { o.Rules, o.Store = st, st })
	id := createRule(t, e, seedRule)
	path := fmt.Sprintf("/api/v1/rules/triggers/%d/test", id)
	for _, tt := range []struct {
		name, body, field, msg string
	}{
		{"until only", `{"until": "2026-11-27T00:00:00Z"}`, "since", "since: required for a backtest"},
		{"null since", `{"since": null, "until": "2026-11-27T00:00:00Z"}`, "since", "since: required for a backtest"},
		{"since not a time", `{"since": "yesterday"}`, "since", "since: must be an RFC 3339 time"},
		{"since a number", `{"since": 1764201600}`, "since", "since: must be an RFC 3339 time"},
		{"until not a time", `{"since": "2026-11-26T00:00:00Z", "until": "soon"}`, "until", "until: must be an RFC 3339 time"},
		{"equal", `{"since": "2026-11-26T00:00:00Z", "until": "2026-11-26T00:00:00Z"}`, "until", "until: must be after since"},
		{"reversed", `{"since": "2026-11-27T00:00:00Z", "until": "2026-11-26T00:00:00Z"}`, "until", "until: must be after since"},
		{"since in the future", `{"since": "2026-11-27T11:00:00Z"}`, "until", "until: must be after since"},
		{"too long", `{"since": "2026-10-01T00:00:00Z", "until": "2026-11-01T00:00:01Z"}`, "since",
			"since: the range from since to until is longer than 31 days"},
		{"with an event", `{"since": "2026-11-26T00:00:00Z", "event": {}}`, "event", "not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{method: http.MethodPost, path: path, key: "reader", body: tt.body})
			m := requireError(t, w, http.StatusBadRequest, tt.field, tt.msg)
			require.Equal(t, tt.field, m["field"])
		})
	}
	t.Run("31 days is allowed", func(t *testing.T) {
		w := e.do(req{method: http.MethodPost, path: path, key: "reader", body: `{"since": "2026-10-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}`})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	})
	t.Run("needs events:read", func(t *testing.T) {
		w := e.do(req{method: http.MethodPost, path: path, key: "writer", body: `{"since": "2026-11-26T00:00:00Z"}`})
		require.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
	})
}

func TestBacktestTruncated(t *testing.T) {
	_, st := newRulesEnv(t)
	seedBacktest(t, st, backtestSeed)
	s := &eventsAPI{store: st, logger: slog.New(slog.DiscardHandler)}
	m, err := cond.Compile([]byte(`{"event_type": "threshold_breach", "metadata.cpu_usage": {"$gt": 90}}`))
	require.NoError(t, err)
	rule := store.TriggerRule{ID: 1, MinCount: 1, GroupBy: []string{"source_host"}, MaxTriggersPerHour: 3}
	since, until := backtestBase, backtestBase.Add(2*time.Hour)

	res, err := s.backtest(t.Context(), rule, m, since, until, backtestLimits{events: 12, occurrences: 100})
	require.NoError(t, err)
	require.False(t, res.Truncated, "exactly the bound")
	require.EqualValues(t, 12, res.Events)

	res, err = s.backtest(t.Context(), rule, m, since, until, backtestLimits{events: 3, occurrences: 100})
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.EqualValues(t, 3, res.Events)
	require.EqualValues(t, 1, res.Matched)

	// The occurrence bound: 0, 7 (the low one: no threshold here), 10,
	// 15 and 20 (web-01's 4th within the hour); 30 is cut.
	res, err = s.backtest(t.Context(), rule, m, since, until, backtestLimits{events: 100, occurrences: 5})
	require.NoError(t, err)
	require.True(t, res.Truncated)
	require.EqualValues(t, 5, res.Occurrences)
	require.EqualValues(t, 4, res.Firings)
	require.EqualValues(t, 1, res.Suppressed)
	require.EqualValues(t, 5, res.Matched)
	require.EqualValues(t, 7, res.Events, "the cut event is not evaluated")
}
