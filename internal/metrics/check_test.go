package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

// fakeProm answers /api/v1/query with the body the test sets.
type fakeProm struct {
	mu      sync.Mutex
	code    int
	body    string
	queries []string
}

func (f *fakeProm) set(code int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code, f.body = code, body
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != "/api/v1/query" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	f.queries = append(f.queries, r.FormValue("query"))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.code)
	fmt.Fprint(w, f.body)
}

func vector(samples ...string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
}

func upSample(instance, v string) string {
	return `{"metric":{"__name__":"up","instance":"` + instance + `","job":"node"},"value":[1772445600.5,"` + v + `"]}`
}

func TestCheckRaisesAndResolves(t *testing.T) {
	prom := &fakeProm{}
	prom.set(200, vector(upSample("db-01:9100", "0")))
	srv := httptest.NewServer(prom)
	defer srv.Close()
	yml := fmt.Sprintf(`
checks:
  - name: TargetDown
    prometheus: %s/
    query: up == 0
    every: 1h
    for: 1m
    severity: critical
`, srv.URL)
	s, rec, clk := newStore(t, yml, Options{})
	k := s.checks[0]
	ctx := context.Background()
	k.run(ctx) // the loop runs it too, at start: both see the same answer
	clk.set(t0.Add(30 * time.Second))
	k.run(ctx)
	require.Empty(t, rec.notices(t))
	clk.set(t0.Add(time.Minute))
	k.run(ctx)
	n := rec.wait(t, 1)[0]
	require.Equal(t, KindCheck, n.Kind)
	require.Equal(t, "TargetDown", n.Name)
	require.Equal(t, event.AlertFiring, n.Status)
	require.Equal(t, event.Critical, n.Severity)
	require.Equal(t, "db-01", n.Host)
	require.Equal(t, "up == 0", n.Query)
	require.Equal(t, 0.0, n.Value)
	require.Equal(t, "TargetDown/__name__=up,instance=db-01:9100,job=node", n.Key)
	require.Equal(t, `TargetDown: up{instance="db-01:9100",job="node"} = 0`, n.Summary)

	// A failing server keeps the alert as it is.
	prom.set(503, `{"status":"error","errorType":"unavailable","error":"tsdb not ready"}`)
	clk.set(t0.Add(2 * time.Minute))
	k.run(ctx)
	k.run(ctx)
	require.Len(t, rec.notices(t), 1)
	require.GreaterOrEqual(t, testutil.ToFloat64(s.met.checkRuns.WithLabelValues("TargetDown", "error")), 2.0)

	// The series leaves the result: resolved.
	prom.set(200, vector())
	clk.set(t0.Add(3 * time.Minute))
	k.run(ctx)
	r := rec.wait(t, 2)[1]
	require.Equal(t, event.AlertResolved, r.Status)
	require.Equal(t, ReasonStopped, r.Reason)
	require.Equal(t, n.Key, r.Key)
	require.Empty(t, k.states)
}

func TestCheckThresholdAndScalar(t *testing.T) {
	prom := &fakeProm{}
	prom.set(200, `{"status":"success","data":{"resultType":"scalar","result":[1772445600,"12"]}}`)
	srv := httptest.NewServer(prom)
	defer srv.Close()
	yml := fmt.Sprintf(`
checks:
  - name: QueueDepth
    prometheus: %s
    query: scalar(sum(queue_depth))
    every: 1h
    op: ">="
    threshold: 10
`, srv.URL)
	s, rec, clk := newStore(t, yml, Options{})
	k := s.checks[0]
	k.run(context.Background())
	n := rec.wait(t, 1)[0]
	require.Equal(t, "QueueDepth/", n.Key)
	require.Equal(t, "QueueDepth: result = 12 >= 10", n.Summary)
	prom.set(200, `{"status":"success","data":{"resultType":"scalar","result":[1772445600,"3"]}}`)
	clk.set(t0.Add(time.Minute))
	k.run(context.Background())
	r := rec.wait(t, 2)[1]
	require.Equal(t, event.AlertResolved, r.Status)
	require.Equal(t, ReasonCleared, r.Reason)
}

func TestParseQueryResponse(t *testing.T) {
	for name, tc := range map[string]struct {
		code int
		body string
		want string // error substring, "" for none
	}{
		"vector":     {200, vector(upSample("a", "1")), ""},
		"matrix":     {200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, `"matrix" is not a vector`},
		"bad value":  {200, vector(`{"metric":{},"value":[1,"x"]}`), "sample value"},
		"value type": {200, vector(`{"metric":{},"value":[1,2]}`), "not a string"},
		"error":      {400, `{"status":"error","errorType":"bad_data","error":"parse error"}`, "HTTP 400: bad_data: parse error"},
		"html":       {502, `<html>`, "HTTP 502"},
		"garbage":    {200, `{`, "decode response"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseQueryResponse(tc.code, []byte(tc.body))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCheckNoRedirect(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("followed a redirect") }))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/api/v1/query", http.StatusFound))
	defer srv.Close()
	s, _, _ := newStore(t, fmt.Sprintf("checks: [{name: c, prometheus: %q, query: up, every: 1h}]", srv.URL), Options{})
	_, err := s.checks[0].query(context.Background())
	require.ErrorContains(t, err, "HTTP 302")
}
