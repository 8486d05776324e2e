package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/testutil"
)

const testToken = "test-admin-token-0123456789abcdef"

// seedPayload is the webhook example of the seed specification.
const seedPayload = `{
  "source": "monitoring_system_name",
  "event_type": "threshold_breach",
  "severity": "critical",
  "host": "web-server-01",
  "service": "nginx",
  "message": "CPU usage exceeded 95%",
  "timestamp": "2024-12-20T10:30:00Z",
  "metadata": {
    "cpu_usage": 97.5,
    "threshold": 95.0,
    "duration": "5m"
  }
}`

type testServer struct {
	t          *testing.T
	srv        *Server
	events     string
	autonomous string
}

func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.EventsAddr = "127.0.0.1:0"
	cfg.AutonomousAddr = "127.0.0.1:0"
	cfg.AdminToken = testToken
	return cfg
}

func start(t *testing.T, cfg config.Config) *testServer {
	t.Helper()
	return startWith(t, Options{Config: cfg})
}

// startWith starts a server with opts (Stderr discarded).
func startWith(t *testing.T, opts Options) *testServer {
	t.Helper()
	opts.Stderr = io.Discard
	srv, err := New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	require.NoError(t, srv.Ready())
	ts := &testServer{t: t, srv: srv}
	if a := srv.EventsAddr(); a != nil {
		ts.events = "http://" + a.String()
	}
	if a := srv.AutonomousAddr(); a != nil {
		ts.autonomous = "http://" + a.String()
	}
	return ts
}

func (ts *testServer) do(method, url, body string, out any) int {
	ts.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(ts.t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	if out != nil && len(data) > 0 {
		require.NoError(ts.t, json.Unmarshal(data, out), string(data))
	}
	return resp.StatusCode
}

type accepted struct {
	Accepted int     `json:"accepted"`
	IDs      []int64 `json:"ids"`
}

func (ts *testServer) post(body string) []int64 {
	ts.t.Helper()
	var a accepted
	code := ts.do(http.MethodPost, ts.events+"/api/v1/events/webhook", body, &a)
	require.Equal(ts.t, http.StatusAccepted, code)
	return a.IDs
}

// waitEvent polls GET /api/v1/events/{id} until the event is processed.
func (ts *testServer) waitEvent(id int64) map[string]any {
	ts.t.Helper()
	var ev map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ev = nil
		if ts.do(http.MethodGet, fmt.Sprintf("%s/api/v1/events/%d", ts.events, id), "", &ev) == http.StatusOK {
			return ev
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.t.Fatalf("event %d was not processed within 20s", id)
	return nil
}

func TestEmbeddedEndToEnd(t *testing.T) {
	ts := start(t, testConfig(t))
	runEndToEnd(t, ts)
}

func TestPostgresAndExternalNATSEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.DatabaseURL = testutil.PostgresURL(t)
	cfg.NATSURL = testutil.NATSURL(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	cfg.NATSStream = "REFLEX_TEST_" + suffix
	cfg.NATSSubject = "reflex.test." + suffix
	t.Cleanup(func() {
		deleteStream(t, cfg.NATSURL, cfg.NATSStream)
		deleteStream(t, cfg.NATSURL, "KV_"+bus.LeaseBucket(cfg.NATSStream))
	})
	cfg.ProcessedStream, cfg.ProcessedSubject = "REFLEX_TEST_P_"+suffix, "reflex.testp."+suffix
	t.Cleanup(func() { deleteStream(t, cfg.NATSURL, cfg.ProcessedStream) })
	cfg.DecisionsStream, cfg.DecisionsSubject = "REFLEX_TEST_D_"+suffix, "reflex.testd."+suffix
	t.Cleanup(func() { deleteStream(t, cfg.NATSURL, cfg.DecisionsStream) })
	h := newHook(t)
	cfg.NotificationsFile = policyFile(t, h.srv.URL)
	cfg.OutboundAllow = "127.0.0.1/32"
	ts := startWith(t, Options{Config: cfg, HoldDecisionRequests: true})
	runEndToEnd(t, ts)
	runProcessed(t, ts)
	runRuleStory(t, ts, h)

	// The seed's schemas and tables exist in PostgreSQL.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_schema || '.' || table_name FROM information_schema.tables
		WHERE table_schema IN ('events','rules','autonomous') AND table_name NOT LIKE '%\_p20%' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, want := range []string{
		"events.raw_events", "events.processed_events", "events.event_correlations", "events.event_patterns",
		"rules.trigger_rules", "rules.response_templates", "rules.rule_executions",
		"autonomous.action_definitions", "autonomous.decision_log", "autonomous.learning_data",
	} {
		require.Contains(t, tables, want)
	}
}

func runEndToEnd(t *testing.T, ts *testServer) {
	// Health, readiness and metrics need no key, on both services.
	for _, base := range []string{ts.events, ts.autonomous} {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(base + path)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, base+path)
		}
	}
	// The API does.
	resp, err := http.Post(ts.events+"/api/v1/events/webhook", "application/json", strings.NewReader(seedPayload))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The seed's payload is accepted, processed and found.
	ids := ts.post(seedPayload)
	require.Len(t, ids, 1)
	ev := ts.waitEvent(ids[0])
	require.Equal(t, "critical", ev["severity"])
	require.Equal(t, "web-server-01", ev["source_host"])
	require.Equal(t, "nginx", ev["source_service"])
	require.Equal(t, "threshold_breach", ev["event_type"])
	data := ev["event_data"].(map[string]any)
	require.Equal(t, 97.5, data["metadata"].(map[string]any)["cpu_usage"])
	require.Contains(t, ev["tags"], "timestamp_adjusted", "the seed's 2024 timestamp is beyond retention")
	require.NotEmpty(t, ev["correlation_id"])

	var page struct {
		Events []map[string]any `json:"events"`
	}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events?severity=critical&hours=24&host=web-server-01", "", &page))
	require.Len(t, page.Events, 1)
	require.EqualValues(t, ids[0], page.Events[0]["id"])

	// A repeat is folded into the first event.
	rep := ts.post(seedPayload)
	require.Len(t, rep, 1)
	require.NotEqual(t, ids[0], rep[0])
	deadline := time.Now().Add(20 * time.Second)
	for {
		ev = ts.waitEvent(rep[0])
		if ev["occurrence_count"] == 2.0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.EqualValues(t, ids[0], ev["id"], "the repeat resolves to the kept event")
	require.EqualValues(t, 2, ev["occurrence_count"])

	// Another event on the host joins its time-based correlation.
	other := ts.post(`{"source":"nagios","event_type":"service_down","severity":"high","host":"web-server-01","service":"nginx","message":"nginx is not answering"}`)
	oev := ts.waitEvent(other[0])
	require.Equal(t, ev["correlation_id"], oev["correlation_id"])
	var cor struct {
		Correlations []map[string]any `json:"correlations"`
	}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, fmt.Sprintf("%s/api/v1/events/%d/correlations", ts.events, ids[0]), "", &cor))
	require.NotEmpty(t, cor.Correlations)
	require.Equal(t, "time_based", cor.Correlations[0]["correlation_type"])

	// Causal correlation through the asset inventory.
	require.Equal(t, http.StatusCreated, ts.do(http.MethodPut, ts.events+"/api/v1/assets/app-01",
		`{"environment":"production","criticality":"high","team":"payments","dependencies":["db-01"]}`, nil))
	crit := ts.post(`{"source":"zabbix","event_type":"service_down","severity":"critical","host":"db-01","service":"postgres","message":"postgres is down"}`)
	ts.waitEvent(crit[0])
	child := ts.post(`{"source":"zabbix","event_type":"error_rate","severity":"medium","host":"app-01","service":"api","message":"5xx rate above 5%"}`)
	cev := ts.waitEvent(child[0])
	require.EqualValues(t, crit[0], cev["parent_event_id"])
	require.Contains(t, cev["tags"], "env:production")
	require.Contains(t, cev["event_data"].(map[string]any), "scoring")

	// Analytics counts them.
	var an struct {
		Buckets []struct {
			Key   string `json:"key"`
			Count int64  `json:"count"`
		} `json:"buckets"`
	}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events/analytics?timerange=24h&groupby=severity", "", &an))
	counts := map[string]int64{}
	for _, b := range an.Buckets {
		counts[b.Key] = b.Count
	}
	require.EqualValues(t, 2, counts["critical"], "%v", an.Buckets)

	// Bad input gets a 4xx naming the problem.
	var e map[string]any
	require.Equal(t, http.StatusBadRequest, ts.do(http.MethodPost, ts.events+"/api/v1/events/webhook", `{"severity":"critical","host":"x"}`, &e))
	require.Contains(t, fmt.Sprint(e), "message")
	big := bytes.Repeat([]byte("x"), 2<<20)
	require.Equal(t, http.StatusRequestEntityTooLarge, ts.do(http.MethodPost, ts.events+"/api/v1/events/webhook", `{"message":"`+string(big)+`"}`, nil))
}

func TestShutdownIsIdempotent(t *testing.T) {
	srv, err := New(Options{Config: testConfig(t), Stderr: io.Discard})
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	ctx := context.Background()
	require.NoError(t, srv.Shutdown(ctx))
	require.NoError(t, srv.Shutdown(ctx))
	require.Error(t, srv.Ready())
}

func TestGeneratedAdminKey(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminToken = ""
	var out bytes.Buffer
	srv, err := New(Options{Config: cfg, Stderr: &out})
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	key := srv.AdminKey()
	require.NotEmpty(t, key)
	require.Contains(t, out.String(), key, "printed once")
	require.NoError(t, srv.Shutdown(context.Background()))

	// The second start finds the stored key and prints nothing.
	out.Reset()
	srv, err = New(Options{Config: cfg, Stderr: &out})
	require.NoError(t, err)
	require.NoError(t, srv.Start(context.Background()))
	defer srv.Shutdown(context.Background())
	require.Empty(t, srv.AdminKey())
	require.NotContains(t, out.String(), "rfx_")

	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.EventsAddr().String()+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestServicesSplit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Services = "autonomous"
	ts := start(t, cfg)
	require.Nil(t, ts.srv.EventsAddr())
	resp, err := http.Get(ts.autonomous + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// deleteStream deletes a stream of the test's on the external NATS, if it
// exists.
func deleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("delete stream %s: %v", stream, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("delete stream %s: %v", stream, err)
	}
}
