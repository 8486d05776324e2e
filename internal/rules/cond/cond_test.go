package cond

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

var occurred = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sample is an event as the pipeline hands it to the rules: the webhook's
// metadata with json.Number numbers, typed Asset and Scoring results.
func sample() *event.Event {
	return &event.Event{
		ID:            1,
		EventType:     "threshold_breach",
		Severity:      event.High,
		SourceSystem:  "prometheus",
		SourceType:    event.SourceWebhook,
		SourceHost:    "web-01",
		SourceService: "nginx",
		Title:         "CPU high on web-01",
		Description:   "cpu above threshold",
		Data: map[string]any{
			"metadata": map[string]any{
				"cpu_usage": json.Number("97.5"),
				"threshold": float64(90),
				"cores":     8,
				"load":      int64(-3),
				"small":     float32(0.5),
				"ratio":     "0.75",
				"notnum":    "97.5 %",
				"region":    "eu-west-1",
				"empty":     "",
				"flag":      true,
				"nothing":   nil,
				"since":     "2026-01-02T04:04:05+01:00",
				"at":        occurred.Add(time.Hour),
				"list":      []any{json.Number("1"), "two", nil, true},
				"names":     []string{"alpha", "beta"},
				"nested":    map[string]any{"deep": map[string]any{"x": "y", "n": json.Number("5")}},
				"labels":    map[string]string{"team": "web"},
			},
			"extra": map[string]any{"k": "v"},
		},
		Tags:            []string{"production", "web"},
		OccurredAt:      occurred,
		OccurrenceCount: 2,
		Priority:        75,
		CorrelationID:   "c-1",
		Asset:           &event.Asset{Criticality: "high", Team: "web", Dependencies: []string{"db-01", "cache-01"}},
		Scoring:         &event.Scoring{Priority: 75, Severity: event.High, SourceSeverity: event.Medium},
	}
}

func mustCompile(t testing.TB, doc string) *Matcher {
	t.Helper()
	m, err := Compile(json.RawMessage(doc))
	require.NoError(t, err, doc)
	return m
}

func TestMatch(t *testing.T) {
	cases := []struct {
		cond string
		want bool
	}{
		// The seed's rule.
		{`{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}}`, true},
		{`{"event_type": "threshold_breach", "severity": ["critical"], "metadata.cpu_usage": {"$gt": 90}}`, false},
		{`{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 97.5}}`, false},
		{`{}`, true},

		// Equality and $eq, $ne on top-level fields and aliases.
		{`{"event_type": "threshold_breach"}`, true},
		{`{"event_type": "Threshold_breach"}`, false},
		{`{"event_type": {"$eq": "threshold_breach"}}`, true},
		{`{"event_type": {"$ne": "threshold_breach"}}`, false},
		{`{"event_type": {"$ne": "heartbeat"}}`, true},
		{`{"source": "prometheus"}`, true},
		{`{"source_type": "webhook"}`, true},
		{`{"source_host": "web-01"}`, true},
		{`{"host": "web-01"}`, true},
		{`{"host": "web-02"}`, false},
		{`{"source_service": "nginx"}`, true},
		{`{"service": "nginx"}`, true},
		{`{"title": "CPU high on web-01"}`, true},
		{`{"description": "cpu above threshold"}`, true},
		{`{"correlation_id": "c-1"}`, true},
		{`{"occurrence_count": 2}`, true},
		{`{"occurrence_count": {"$gte": 2, "$lt": 3}}`, true},
		{`{"occurrence_count": {"$gt": 2}}`, false},
		{`{"priority": {"$gte": 75}}`, true},
		{`{"priority": {"$in": [10, 75]}}`, true},
		{`{"priority": {"$nin": [10, 75]}}`, false},
		{`{"priority": 75.0}`, true},

		// Membership: a list, $in, $nin.
		{`{"event_type": ["heartbeat", "threshold_breach"]}`, true},
		{`{"event_type": {"$in": ["heartbeat"]}}`, false},
		{`{"event_type": {"$in": []}}`, false},
		{`{"event_type": {"$nin": []}}`, true},
		{`{"event_type": {"$nin": ["heartbeat"]}}`, true},
		{`{"event_type": {"$nin": ["threshold_breach"]}}`, false},
		{`{"event_type": {"$in": ["a", "b", "c", "d", "e", "f", "g", "threshold_breach"]}}`, true}, // a set
		{`{"event_type": {"$in": ["a", "b", "c", "d", "e", "f", "g", "h"]}}`, false},
		{`{"metadata.cpu_usage": {"$in": ["a", "b", "c", "d", "e", "f", "g", "h", 97.5]}}`, true}, // a set and a number

		// Severities by rank.
		{`{"severity": "high"}`, true},
		{`{"severity": {"$gte": "high"}}`, true},
		{`{"severity": {"$gt": "high"}}`, false},
		{`{"severity": {"$gt": "medium"}}`, true},
		{`{"severity": {"$lte": "high"}}`, true},
		{`{"severity": {"$lt": "high"}}`, false},
		{`{"severity": {"$lt": "critical"}}`, true},
		{`{"severity": {"$gte": "info"}}`, true},
		{`{"severity": {"$ne": "high"}}`, false},
		{`{"severity": {"$nin": ["low", "info"]}}`, true},
		{`{"event_data.scoring.source_severity": {"$lt": "high"}}`, true},
		{`{"event_data.scoring.severity": {"$gte": "critical"}}`, false},

		// $exists.
		{`{"metadata.cpu_usage": {"$exists": true}}`, true},
		{`{"metadata.gpu_usage": {"$exists": true}}`, false},
		{`{"metadata.gpu_usage": {"$exists": false}}`, true},
		{`{"metadata.nothing": {"$exists": true}}`, true}, // null is present
		{`{"metadata.empty": {"$exists": true}}`, true},   // an empty string in event_data is present
		{`{"correlation_id": {"$exists": true}}`, true},
		{`{"metadata": {"$exists": true}}`, true},
		{`{"event_data": {"$exists": true}}`, true},
		{`{"tags": {"$exists": true}}`, true},

		// Missing fields: false but for $exists false, $ne, $nin and null.
		{`{"metadata.gpu_usage": {"$gt": 1}}`, false},
		{`{"metadata.gpu_usage": {"$lt": 1}}`, false},
		{`{"metadata.gpu_usage": 1}`, false},
		{`{"metadata.gpu_usage": {"$in": [1, 2]}}`, false},
		{`{"metadata.gpu_usage": {"$regex": "."}}`, false},
		{`{"metadata.gpu_usage": {"$contains": ""}}`, false},
		{`{"metadata.gpu_usage": {"$ne": 1}}`, true},
		{`{"metadata.gpu_usage": {"$nin": [1]}}`, true},
		{`{"metadata.gpu_usage": null}`, true},
		{`{"metadata.gpu_usage": {"$in": [1, null]}}`, true},
		{`{"metadata.gpu_usage": {"$nin": [1, null]}}`, false},
		{`{"metadata.gpu_usage": {"$ne": null}}`, false},
		{`{"metadata.nothing": null}`, true},
		{`{"metadata.nothing": {"$ne": null}}`, false},
		{`{"metadata.region": null}`, false},
		{`{"metadata.region": {"$ne": null}}`, true},
		{`{"metadata.gpu_usage": {"$not": {"$gt": 3}}}`, true},
		{`{"metadata.cpu_usage.x": {"$exists": true}}`, false}, // a path through a number
		{`{"metadata.region.x": {"$exists": false}}`, true},
		{`{"event_data.nowhere.x": {"$exists": false}}`, true},

		// Empty top-level strings count as missing.
		{`{"source_host": ""}`, false},
		{`{"description": {"$exists": false}}`, false},

		// Numbers of every Go type, json.Number and numeric strings.
		{`{"metadata.cpu_usage": 97.5}`, true},
		{`{"metadata.cpu_usage": {"$gte": 97.5, "$lte": 97.5}}`, true},
		{`{"metadata.threshold": 90}`, true},
		{`{"metadata.threshold": {"$lt": 90.5}}`, true},
		{`{"metadata.cores": {"$gt": 7}}`, true},
		{`{"metadata.cores": 8}`, true},
		{`{"metadata.load": {"$lt": 0}}`, true},
		{`{"metadata.small": 0.5}`, true},
		{`{"metadata.ratio": {"$gt": 0.5}}`, true},
		{`{"metadata.ratio": 0.75}`, true},
		{`{"metadata.ratio": "0.75"}`, true},
		{`{"metadata.notnum": {"$gt": 1}}`, false},
		{`{"metadata.region": {"$gt": 1}}`, false},
		{`{"metadata.flag": {"$gt": 0}}`, false},
		{`{"metadata.nested": {"$gt": 0}}`, false},
		{`{"metadata.cpu_usage": "97.5"}`, false}, // a string operand compares strings, json.Number is a number
		{`{"event_data.scoring.priority": {"$gte": 75}}`, true},
		{`{"event_data.nested.n": 5}`, false},
		{`{"metadata.nested.deep.n": {"$gt": 4}}`, true},

		// Booleans and other type mismatches.
		{`{"metadata.flag": true}`, true},
		{`{"metadata.flag": false}`, false},
		{`{"metadata.flag": {"$ne": false}}`, true},
		{`{"metadata.flag": "true"}`, false},
		{`{"metadata.flag": 1}`, false},
		{`{"metadata.region": true}`, false},
		{`{"metadata.region": {"$ne": 5}}`, true},
		{`{"metadata.nested": "x"}`, false},
		{`{"metadata.nested": {"$regex": "."}}`, false},
		{`{"metadata.labels": {"$exists": true}}`, true},
		{`{"metadata.labels.team": "web"}`, true},
		{`{"metadata.labels.team.x": {"$exists": true}}`, false},

		// Timestamps.
		{`{"occurred_at": {"$gte": "2026-01-02T03:04:05Z"}}`, true},
		{`{"occurred_at": {"$gt": "2026-01-02T03:04:05Z"}}`, false},
		{`{"occurred_at": {"$lt": "2026-01-02T04:04:05.5+01:00"}}`, true},
		{`{"occurred_at": "2026-01-02T05:04:05+02:00"}`, true},
		{`{"occurred_at": {"$in": ["2020-01-01T00:00:00Z", "2026-01-02T03:04:05.000Z"]}}`, true},
		{`{"metadata.since": "2026-01-02T03:04:05Z"}`, true}, // both sides parsed as times
		{`{"metadata.since": {"$gt": "2026-01-02T03:04:04Z"}}`, true},
		{`{"metadata.at": {"$gt": "2026-01-02T04:00:00Z"}}`, true},
		{`{"metadata.at": {"$lt": "2026-01-02T04:00:00Z"}}`, false},
		{`{"metadata.region": {"$gt": "2026-01-02T04:00:00Z"}}`, false},
		{`{"metadata.cpu_usage": {"$gt": "2026-01-02T04:00:00Z"}}`, false},

		// Strings: $regex, $contains, $startswith, $endswith.
		{`{"title": {"$regex": "^CPU high"}}`, true},
		{`{"title": {"$regex": "(?i)^cpu HIGH"}}`, true},
		{`{"title": {"$regex": "^high"}}`, false},
		{`{"title": {"$regex": "web-0[12]$"}}`, true},
		{`{"title": {"$contains": "high"}}`, true},
		{`{"title": {"$contains": "HIGH"}}`, false},
		{`{"title": {"$startswith": "CPU"}}`, true},
		{`{"title": {"$startswith": "high"}}`, false},
		{`{"title": {"$endswith": "web-01"}}`, true},
		{`{"title": {"$endswith": "CPU"}}`, false},
		{`{"severity": {"$regex": "^hi"}}`, true},
		{`{"metadata.region": {"$startswith": "eu-"}}`, true},
		{`{"metadata.cpu_usage": {"$regex": "97"}}`, false}, // a number is no string
		{`{"metadata.cpu_usage": {"$contains": "9"}}`, false},
		{`{"metadata.flag": {"$endswith": "e"}}`, false},

		// Tags and lists: an operator holds when it holds for an element.
		{`{"tags": "production"}`, true},
		{`{"tags": "prod"}`, false},
		{`{"tags": ["staging", "web"]}`, true},
		{`{"tags": ["staging", "dev"]}`, false},
		{`{"tags": {"$in": ["web"]}}`, true},
		{`{"tags": {"$nin": ["web"]}}`, false},
		{`{"tags": {"$nin": ["staging"]}}`, true},
		{`{"tags": {"$ne": "web"}}`, false},
		{`{"tags": {"$ne": "dev"}}`, true},
		{`{"tags": {"$contains": "prod"}}`, true},
		{`{"tags": {"$regex": "^w"}}`, true},
		{`{"tags": {"$startswith": "x"}}`, false},
		{`{"metadata.list": 1}`, true},
		{`{"metadata.list": "two"}`, true},
		{`{"metadata.list": null}`, true},
		{`{"metadata.list": true}`, true},
		{`{"metadata.list": {"$gt": 0.5}}`, true},
		{`{"metadata.list": {"$gt": 1}}`, false},
		{`{"metadata.list": {"$ne": "two"}}`, false},
		{`{"metadata.list": {"$nin": ["three"]}}`, true},
		{`{"metadata.names": {"$endswith": "ta"}}`, true},
		{`{"metadata.names": "gamma"}`, false},

		// event_data: the typed results and the rest of Data.
		{`{"event_data.asset.criticality": "high"}`, true},
		{`{"event_data.asset.criticality": {"$in": ["critical", "high"]}}`, true},
		{`{"event_data.asset.team": "web"}`, true},
		{`{"event_data.asset.owner": {"$exists": false}}`, true},
		{`{"event_data.asset.dependencies": "db-01"}`, true},
		{`{"event_data.asset.nope": {"$exists": false}}`, true},
		{`{"event_data.asset.team.x": {"$exists": false}}`, true},
		{`{"event_data.asset": {"$exists": true}}`, true},
		{`{"event_data.scoring.factors": {"$exists": true}}`, true},
		{`{"event_data.metadata.cpu_usage": {"$gt": 90}}`, true},
		{`{"event_data.extra.k": "v"}`, true},
		{`{"event_data.extra.k": "w"}`, false},

		// $and, $or, $not, nested.
		{`{"$and": [{"event_type": "threshold_breach"}, {"host": "web-01"}]}`, true},
		{`{"$and": [{"event_type": "threshold_breach"}, {"host": "web-02"}]}`, false},
		{`{"$or": [{"event_type": "heartbeat"}, {"host": "web-01"}]}`, true},
		{`{"$or": [{"event_type": "heartbeat"}, {"host": "web-02"}]}`, false},
		{`{"$not": {"event_type": "heartbeat"}}`, true},
		{`{"$not": {"event_type": "threshold_breach"}}`, false},
		{`{"$not": {"event_type": "threshold_breach", "host": "web-02"}}`, true},
		{`{"$not": {}}`, false},
		{`{"metadata.cpu_usage": {"$not": {"$gt": 95}}}`, false},
		{`{"metadata.cpu_usage": {"$not": {"$gt": 99}}}`, true},
		{`{"metadata.cpu_usage": {"$not": {"$gt": 90, "$lt": 95}}}`, true},
		{`{"metadata.cpu_usage": {"$not": {"$not": {"$gt": 95}}}}`, true},
		{`{"metadata.cpu_usage": {"$gt": 90, "$not": {"$gte": 98}}}`, true},
		{`{"$or": [{"$and": [{"severity": "critical"}, {"host": "web-01"}]}, {"$and": [{"severity": {"$gte": "high"}}, {"$not": {"tags": "staging"}}]}]}`, true},
		{`{"$or": [{"$and": [{"severity": "critical"}, {"host": "web-01"}]}, {"$and": [{"severity": {"$gte": "high"}}, {"$not": {"tags": "web"}}]}]}`, false},
		{`{"event_type": "threshold_breach", "$or": [{"metadata.cpu_usage": {"$gt": 99}}, {"metadata.region": {"$startswith": "eu"}}]}`, true},
		{`{"$and": [{"$or": [{"host": "a"}, {"host": "b"}]}, {"event_type": "threshold_breach"}]}`, false},
	}
	e := sample()
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			m := mustCompile(t, c.cond)
			require.Equal(t, c.want, m.Match(e), "Match")
			got, why := m.Explain(e)
			require.Equal(t, c.want, got, "Explain: %s", why)
			if !got {
				require.NotEmpty(t, why)
			}
		})
	}
}

// TestEventData reads event_data.asset and event_data.scoring from Data
// when the typed results are not set (as UnmarshalData leaves a value that
// does not fit them), and the typed results in place of Data values when
// they are, as MarshalData lays the document out.
func TestEventData(t *testing.T) {
	e := sample()
	e.Asset, e.Scoring = nil, nil
	e.Data["asset"] = map[string]any{"criticality": "low", "rack": "r1"}
	e.Data["scoring"] = map[string]any{"severity": "medium", "priority": float64(10)}

	require.True(t, mustCompile(t, `{"event_data.asset.criticality": "low"}`).Match(e))
	require.True(t, mustCompile(t, `{"event_data.asset.rack": "r1"}`).Match(e))
	require.True(t, mustCompile(t, `{"event_data.scoring.severity": {"$lt": "high"}}`).Match(e))
	require.True(t, mustCompile(t, `{"event_data.scoring.priority": 10}`).Match(e))

	e.Asset = &event.Asset{Criticality: "critical"}
	require.True(t, mustCompile(t, `{"event_data.asset.criticality": "critical"}`).Match(e))
	require.True(t, mustCompile(t, `{"event_data.asset.rack": {"$exists": false}}`).Match(e), "the typed result replaces the Data value")

	// The same answers from an event that went through the store's JSON.
	e = sample()
	b, err := e.MarshalData()
	require.NoError(t, err)
	back := *e
	back.Data, back.Asset, back.Scoring = nil, nil, nil
	require.NoError(t, back.UnmarshalData(b))
	for _, c := range []string{
		`{"event_data.asset.criticality": "high"}`,
		`{"event_data.asset.dependencies": "cache-01"}`,
		`{"event_data.scoring.source_severity": "medium"}`,
		`{"event_data.scoring.priority": {"$gt": 74}}`,
		`{"metadata.cpu_usage": {"$gt": 97}}`,
		`{"metadata.cores": 8}`,
		`{"metadata.list": "two"}`,
	} {
		m := mustCompile(t, c)
		require.True(t, m.Match(e), "typed: %s", c)
		require.True(t, m.Match(&back), "decoded: %s", c)
	}

	// No data at all.
	empty := &event.Event{EventType: "x", Severity: event.Info}
	require.True(t, mustCompile(t, `{"event_data": {"$exists": false}, "metadata.a": {"$ne": 1}}`).Match(empty))
	require.False(t, mustCompile(t, `{"tags": {"$exists": true}}`).Match(empty))
	require.False(t, mustCompile(t, `{"occurred_at": {"$lt": "2100-01-01T00:00:00Z"}}`).Match(empty))
	require.True(t, mustCompile(t, `{"occurred_at": null}`).Match(empty))
}

// TestUnknownSeverity: an event whose severity is not one of the five
// compares with no severity, as a missing one.
func TestUnknownSeverity(t *testing.T) {
	e := sample()
	e.Severity = "bogus"
	require.False(t, mustCompile(t, `{"severity": {"$lt": "critical"}}`).Match(e))
	require.False(t, mustCompile(t, `{"severity": {"$gte": "info"}}`).Match(e))
	require.True(t, mustCompile(t, `{"severity": {"$ne": "high"}}`).Match(e))
	e.Severity = ""
	require.True(t, mustCompile(t, `{"severity": {"$exists": false}}`).Match(e))
	require.False(t, mustCompile(t, `{"severity": {"$lte": "high"}}`).Match(e))
}

func TestExplain(t *testing.T) {
	cases := []struct{ cond, reason string }{
		{`{"metadata.cpu_usage": {"$gt": 98}}`, `metadata.cpu_usage: 97.5 is not > 98`},
		{`{"event_type": "threshold_breach", "metadata.cpu_usage": {"$gt": 90}, "host": "db-01"}`, `host: "web-01" is not "db-01"`},
		{`{"event_type": "heartbeat"}`, `event_type: "threshold_breach" is not "heartbeat"`},
		{`{"severity": ["critical", "low"]}`, `severity: "high" is not in ["critical", "low"]`},
		{`{"severity": {"$gte": "critical"}}`, `severity: "high" is not >= "critical"`},
		{`{"host": {"$ne": "web-01"}}`, `host: "web-01" is "web-01" ($ne)`},
		{`{"host": {"$nin": ["web-01"]}}`, `host: "web-01" is in ["web-01"] ($nin)`},
		{`{"metadata.gpu": {"$gt": 1}}`, `metadata.gpu: missing, want > 1`},
		{`{"metadata.gpu": {"$exists": true}}`, `metadata.gpu: missing`},
		{`{"metadata.region": {"$exists": false}}`, `metadata.region: exists ("eu-west-1"), want it missing`},
		{`{"metadata.region": null}`, `metadata.region: "eu-west-1" is not null`},
		{`{"metadata.gpu": {"$ne": null}}`, `metadata.gpu: missing, want != null`},
		{`{"title": {"$regex": "^disk"}}`, `title: "CPU high on web-01" does not match regex "^disk"`},
		{`{"title": {"$contains": "disk"}}`, `title: "CPU high on web-01" does not contain "disk"`},
		{`{"title": {"$startswith": "disk"}}`, `title: "CPU high on web-01" does not start with "disk"`},
		{`{"title": {"$endswith": "disk"}}`, `title: "CPU high on web-01" does not end with "disk"`},
		{`{"tags": "staging"}`, `tags: none of ["production", "web"] is "staging"`},
		{`{"tags": {"$ne": "web"}}`, `tags: an element of ["production", "web"] is "web" ($ne)`},
		{`{"metadata.flag": false}`, `metadata.flag: true is not false`},
		{`{"metadata.nested": 1}`, `metadata.nested: an object is not 1`},
		{`{"occurred_at": {"$lt": "2026-01-01T00:00:00Z"}}`, `occurred_at: 2026-01-02T03:04:05Z is not < "2026-01-01T00:00:00Z"`},
		{`{"$or": [{"host": "a"}, {"metadata.cpu_usage": {"$lt": 50}}]}`, `$or: none holds: host: "web-01" is not "a"; metadata.cpu_usage: 97.5 is not < 50`},
		{`{"$not": {"host": "web-01", "event_type": "threshold_breach"}}`, `$not: (host = "web-01" and event_type = "threshold_breach") holds`},
		{`{"metadata.cpu_usage": {"$not": {"$gt": 90}}}`, `$not: metadata.cpu_usage > 90 holds`},
		{`{"$and": [{"host": "web-01"}, {"$or": [{"severity": "low"}, {"tags": {"$in": ["x", "y"]}}]}]}`, `$or: none holds: severity: "high" is not "low"; tags: none of ["production", "web"] is in ["x", "y"]`},
	}
	e := sample()
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			ok, why := mustCompile(t, c.cond).Explain(e)
			require.False(t, ok)
			require.Equal(t, c.reason, why)
		})
	}
	ok, why := mustCompile(t, `{"host": "web-01"}`).Explain(e)
	require.True(t, ok)
	require.Equal(t, "all conditions hold", why)

	// The example of the rules test endpoint.
	e.Data["metadata"].(map[string]any)["cpu_usage"] = json.Number("85")
	_, why = mustCompile(t, `{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}}`).Explain(e)
	require.Equal(t, "metadata.cpu_usage: 85 is not > 90", why)
}

// TestOrder: cheap conditions on top-level fields run before paths into
// event_data, regular expressions last; among equals the document's order.
func TestOrder(t *testing.T) {
	m := mustCompile(t, `{"title": {"$regex": "x"}, "metadata.a": 1, "host": "h", "event_type": "t"}`)
	require.Equal(t, `(host = "h" and event_type = "t" and metadata.a = 1 and title matches regex "x")`, m.String())
}

func TestMatchNil(t *testing.T) {
	m := mustCompile(t, `{}`)
	require.False(t, m.Match(nil))
	ok, _ := m.Explain(nil)
	require.False(t, ok)
}

// TestMatchAllocs: the common shapes evaluate without allocating.
func TestMatchAllocs(t *testing.T) {
	e := sample()
	for _, c := range []string{
		`{"event_type": "threshold_breach", "severity": ["critical", "high"], "metadata.cpu_usage": {"$gt": 90}}`,
		`{"host": {"$regex": "^web-\\d+$"}, "tags": {"$in": ["production"]}}`,
		`{"$or": [{"event_data.asset.criticality": "high"}, {"metadata.list": {"$gt": 3}}], "occurred_at": {"$gte": "2026-01-01T00:00:00Z"}}`,
		`{"metadata.since": {"$gt": "2026-01-01T00:00:00Z"}, "metadata.ratio": {"$lt": 1}, "metadata.notnum": {"$ne": 3}}`,
	} {
		m := mustCompile(t, c)
		require.True(t, m.Match(e), c)
		require.Zero(t, testing.AllocsPerRun(100, func() { m.Match(e) }), c)
	}
}
