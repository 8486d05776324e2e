package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type patternPage struct {
	Patterns []struct {
		ID          int64          `json:"id"`
		PatternType string         `json:"pattern_type"`
		PatternName string         `json:"pattern_name"`
		Count       int64          `json:"count"`
		FirstSeen   time.Time      `json:"first_seen"`
		LastSeen    time.Time      `json:"last_seen"`
		Definition  map[string]any `json:"pattern_definition"`
	} `json:"patterns"`
}

func (ts *testServer) template(id int64) map[string]any {
	ts.t.Helper()
	ev := ts.waitEvent(id)
	tm, ok := ev["event_data"].(map[string]any)["template"].(map[string]any)
	require.True(ts.t, ok, "event %d has no event_data.template: %v", id, ev)
	return tm
}

// waitEventType polls GET /api/v1/events?event_type= until n events of
// the type are stored.
func (ts *testServer) waitEventType(typ string, n int) []map[string]any {
	ts.t.Helper()
	var page struct {
		Events []map[string]any `json:"events"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		page.Events = nil
		require.Equal(ts.t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events?hours=24&event_type="+typ, "", &page))
		if len(page.Events) >= n {
			return page.Events
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.t.Fatalf("%d %s events were not stored within 20s (%d were)", n, typ, len(page.Events))
	return nil
}

func TestTemplatesEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.TemplatesLearning = 0 // every template new on a host is an event
	ts := start(t, cfg)

	post := func(host, msg string) int64 {
		ids := ts.post(fmt.Sprintf(`{"source":"app","event_type":"log","severity":"low","host":%q,"message":%q}`, host, msg))
		require.Len(t, ids, 1)
		return ids[0]
	}
	a := post("web-01", "connection from 10.0.0.1 closed by peer")
	b := post("web-01", "connection from 10.0.0.2 closed by peer")
	c := post("db-01", "checkpoint complete: wrote 112 buffers")
	ta, tb, tc := ts.template(a), ts.template(b), ts.template(c)
	require.Equal(t, "connection from <*> closed by peer", ta["text"])
	require.Equal(t, ta["id"], tb["id"])
	require.NotEqual(t, ta["id"], tc["id"])

	var page patternPage
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/patterns?type=template", "", &page))
	require.Len(t, page.Patterns, 2)
	byID := map[float64]int{}
	for i, p := range page.Patterns {
		require.Equal(t, "template", p.PatternType)
		require.False(t, p.FirstSeen.IsZero())
		require.False(t, p.LastSeen.Before(p.FirstSeen))
		byID[float64(p.ID)] = i
	}
	conn := page.Patterns[byID[ta["id"].(float64)]]
	require.Equal(t, "connection from <*> closed by peer", conn.PatternName)
	require.Equal(t, "connection from 10.0.0.1 closed by peer", conn.Definition["example"])
	page = patternPage{}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/patterns?host=db-01", "", &page))
	require.Len(t, page.Patterns, 1)
	require.EqualValues(t, tc["id"], page.Patterns[0].ID)

	// Each template new on its host raised a new_log_pattern event, which
	// is stored like any other (and not mined itself).
	news := ts.waitEventType("new_log_pattern", 2)
	hosts := map[string]map[string]any{}
	for _, ev := range news {
		require.Equal(t, "reflex", ev["source_type"])
		data := ev["event_data"].(map[string]any)
		require.NotContains(t, data, "template")
		hosts[ev["source_host"].(string)] = data["metadata"].(map[string]any)
	}
	require.EqualValues(t, ta["id"], hosts["web-01"]["template_id"])
	require.Equal(t, "connection from <*> closed by peer", hosts["web-01"]["template"])
	require.EqualValues(t, tc["id"], hosts["db-01"]["template_id"])

	// A restart keeps the ids, and the counts flushed at shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, ts.srv.Shutdown(ctx))
	ts = start(t, cfg)
	page = patternPage{}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/patterns", "", &page))
	require.Len(t, page.Patterns, 2)
	for _, p := range page.Patterns {
		if float64(p.ID) == ta["id"] {
			require.EqualValues(t, 2, p.Count)
		}
	}
	d := post("web-01", "connection from 10.0.0.3 closed by peer")
	require.Equal(t, ta["id"], ts.template(d)["id"])
	e := post("db-01", "checkpoint complete: wrote 7 buffers")
	require.Equal(t, tc["id"], ts.template(e)["id"])
	f := post("db-01", "replication slot standby_1 is inactive")
	require.EqualValues(t, 3, ts.template(f)["id"], "a new template takes the next id")
	ts.waitEventType("new_log_pattern", 3) // db-01's new template, nothing else
}

func TestTemplatesOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.Templates = false
	ts := start(t, cfg)
	ids := ts.post(`{"source":"app","event_type":"log","host":"web-01","message":"connection from 10.0.0.1 closed"}`)
	ev := ts.waitEvent(ids[0])
	require.NotContains(t, ev["event_data"], "template")
	var page patternPage
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/patterns", "", &page))
	require.Empty(t, page.Patterns)
}

func TestSequencePatternsEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	ts := start(t, cfg)
	post := func(host, typ, msg string) int64 {
		ids := ts.post(fmt.Sprintf(`{"source":"app","event_type":%q,"severity":"low","host":%q,"message":%q}`, typ, host, msg))
		require.Len(t, ids, 1)
		return ids[0]
	}

	// A pattern made by hand links at once: a deploy, then errors on the
	// same host within 10 minutes.
	var created map[string]any
	require.Equal(t, http.StatusCreated, ts.do(http.MethodPost, ts.events+"/api/v1/patterns",
		`{"pattern_name":"deploy then errors","pattern_type":"sequence","pattern_definition":{"before":{"event_type":"deploy"},"after":{"event_type":"error_rate"},"within_seconds":600}}`, &created))
	dep := post("app-01", "deploy", "deployed version alpha of checkout")
	ts.waitEvent(dep)
	errEv := post("app-01", "error_rate", "5xx rate above threshold on checkout")
	ts.waitEvent(errEv)
	post("app-02", "error_rate", "5xx rate above threshold on search") // no deploy there
	var cor struct {
		Correlations []map[string]any `json:"correlations"`
	}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, fmt.Sprintf("%s/api/v1/events/%d/correlations", ts.events, dep), "", &cor))
	var linked map[string]any
	for _, c := range cor.Correlations {
		if c["correlation_type"] == "pattern_based" {
			linked = c
		}
	}
	require.NotNil(t, linked, "%v", cor.Correlations)
	require.Equal(t, []any{float64(errEv)}, linked["related_event_ids"])
	require.Contains(t, linked["correlation_reason"], fmt.Sprintf("sequence pattern %v", created["id"]))

	// Disabled, it links no more.
	require.Equal(t, http.StatusOK, ts.do(http.MethodPut, fmt.Sprintf("%s/api/v1/patterns/%v", ts.events, created["id"]), `{"active":false}`, nil))
	dep2 := post("app-03", "deploy", "deployed version beta of cart")
	ts.waitEvent(dep2)
	ts.waitEvent(post("app-03", "error_rate", "5xx rate above threshold on cart"))
	cor.Correlations = nil
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, fmt.Sprintf("%s/api/v1/events/%d/correlations", ts.events, dep2), "", &cor))
	for _, c := range cor.Correlations {
		require.NotEqual(t, "pattern_based", c["correlation_type"])
	}

	// Learned: a backup's start is followed by its end, 25 times.
	words := []string{"ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay", "kiwi", "lark", "mole",
		"newt", "owl", "pig", "quail", "rat", "seal", "toad", "urchin", "vole", "wasp", "yak", "zebu"}
	var last int64
	for _, w := range words {
		post("db-01", "log", "backup started for volume "+w)
		last = post("db-01", "log", "backup finished for volume "+w)
	}
	ts.waitEvent(last)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, ts.srv.Shutdown(ctx)) // the drain flushes the learner
	ts = start(t, cfg)
	var page struct {
		Patterns []struct {
			ID         int64          `json:"id"`
			Name       string         `json:"pattern_name"`
			Definition map[string]any `json:"pattern_definition"`
			Active     bool           `json:"active"`
		} `json:"patterns"`
	}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/patterns?type=sequence", "", &page))
	var learned bool
	for _, p := range page.Patterns {
		if p.Name == `"backup started for volume <*>" → "backup finished for volume <*>"` {
			learned = true
			require.True(t, p.Active)
			require.Equal(t, true, p.Definition["learned"])
			require.GreaterOrEqual(t, p.Definition["support"], 20.0, "the first volumes were templates of their own until the word folded")
		}
	}
	require.True(t, learned, "%+v", page.Patterns)
	// And it links after the restart: the learner's counts were rebuilt
	// from the stored events.
	start2 := post("db-01", "log", "backup started for volume zorro")
	ts.waitEvent(start2)
	ts.waitEvent(post("db-01", "log", "backup finished for volume zorro"))
	cor.Correlations = nil
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, fmt.Sprintf("%s/api/v1/events/%d/correlations", ts.events, start2), "", &cor))
	var found bool
	for _, c := range cor.Correlations {
		found = found || c["correlation_type"] == "pattern_based"
	}
	require.True(t, found, "%v", cor.Correlations)
}
