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
