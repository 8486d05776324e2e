package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// peer runs a real program for a test, its output kept for the failure
// message, and stops it by its PID at the test's end.
func peer(t *testing.T, path string, args ...string) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(path), out.String())
		}
	})
	return &out
}

// waitEvents polls GET /api/v1/events?query until an event satisfies ok.
func (ts *testServer) waitEvents(query string, what string, ok func(ev map[string]any) bool) map[string]any {
	ts.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var list struct {
			Events []map[string]any `json:"events"`
		}
		if ts.do(http.MethodGet, ts.events+"/api/v1/events?"+query, "", &list) == http.StatusOK {
			for _, ev := range list.Events {
				if ok(ev) {
					return ev
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.t.Fatalf("no event %s (GET /api/v1/events?%s) within 30s", what, query)
	return nil
}

// eventOf returns the event of GET /api/v1/events/{id}'s answer (the
// event itself, or under "event").
func eventOf(detail map[string]any) map[string]any {
	if ev, ok := detail["event"].(map[string]any); ok {
		return ev
	}
	return detail
}

// incidentOf likewise returns the incident of GET /api/v1/incidents/{id}.
func incidentOf(detail map[string]any) map[string]any {
	if inc, ok := detail["incident"].(map[string]any); ok {
		return inc
	}
	return detail
}

// alertOf returns event_data.alert of an event as the API shows it.
func alertOf(ev map[string]any) map[string]any {
	data, _ := ev["event_data"].(map[string]any)
	a, _ := data["alert"].(map[string]any)
	return a
}

// TestAlertmanagerEndToEnd runs a real Prometheus, whose alerting rule
// fires on a metric the test serves, and a real Alertmanager, whose
// webhook receiver posts to reflex with a bearer key from a file; the
// firing event and then, once the test clears the metric, the resolution
// are read back through the API.
func TestAlertmanagerEndToEnd(t *testing.T) {
	amPath := testutil.Program(t, "prometheus-alertmanager", "prometheus-alertmanager")
	promPath := testutil.Program(t, "prometheus", "prometheus")
	ts := start(t, testConfig(t))
	_, key := ts.createKey("alertmanager", "events:write")

	var up atomic.Int64
	up.Store(1)
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE test_up gauge\ntest_up{instance=\"web-01:9100\"} %d\n", up.Load())
	}))
	t.Cleanup(metrics.Close)
	target, err := url.Parse(metrics.URL)
	require.NoError(t, err)

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	keyFile := write("reflex.key", key+"\n")
	amAddr, promAddr := freeAddr(t), freeAddr(t)
	amConfig := write("alertmanager.yml", fmt.Sprintf(`global:
  resolve_timeout: 5s
route:
  receiver: reflex
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: reflex
    webhook_configs:
      - url: %s/api/v1/events/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
`, ts.events, keyFile))
	rules := write("rules.yml", `groups:
  - name: reflex-test
    rules:
      - alert: TestUp
        expr: test_up == 1
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.instance }} reports test_up 1"
          description: "test_up has been 1 on {{ $labels.instance }}."
`)
	promConfig := write("prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: web
    honor_labels: true
    static_configs:
      - targets: [%q]
`, rules, amAddr, target.Host))

	peer(t, amPath, "--config.file="+amConfig, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	peer(t, promPath, "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "prom"),
		"--web.listen-address="+promAddr, "--rules.alert.resend-delay=1s")

	const query = "source=alertmanager&event_type=TestUp&limit=50"
	firing := ts.waitEvents(query, "firing", func(ev map[string]any) bool {
		a := alertOf(ev)
		return a != nil && a["status"] == "firing"
	})
	require.Equal(t, "critical", firing["severity"])
	require.Equal(t, "web-01", firing["source_host"])
	require.Equal(t, "web", firing["source_service"])
	require.Equal(t, "alertmanager", firing["source_type"])
	require.Equal(t, "web-01:9100 reports test_up 1", firing["title"])
	data := firing["event_data"].(map[string]any)
	require.Equal(t, map[string]any{"alertname": "TestUp", "instance": "web-01:9100", "job": "web", "severity": "critical"}, data["labels"])
	require.Equal(t, "reflex", data["receiver"])
	fingerprint, _ := data["fingerprint"].(string)
	require.NotEmpty(t, fingerprint)
	require.Equal(t, fingerprint, alertOf(firing)["key"])
	require.NotEmpty(t, alertOf(firing)["starts_at"])

	up.Store(0) // the rule stops firing: Prometheus resolves, Alertmanager notifies
	resolved := ts.waitEvents(query, "resolved", func(ev map[string]any) bool {
		a := alertOf(ev)
		return a != nil && a["status"] == "resolved"
	})
	require.Equal(t, "info", resolved["severity"])
	require.Equal(t, "web-01", resolved["source_host"])
	require.Equal(t, fingerprint, alertOf(resolved)["key"])
	require.Equal(t, alertOf(firing)["starts_at"], alertOf(resolved)["starts_at"])
	require.NotEmpty(t, alertOf(resolved)["ends_at"])
	require.Contains(t, resolved["tags"], "resolved")

	// The core resolves the firing event and, its last alert resolved,
	// the incident the firing opened.
	firingURL := fmt.Sprintf("%s/api/v1/events/%d", ts.events, int64(firing["id"].(float64)))
	var detail map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		detail = nil
		if ts.do(http.MethodGet, firingURL, "", &detail) == http.StatusOK && eventOf(detail)["resolved_at"] != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ev := eventOf(detail)
	require.NotNil(t, ev["resolved_at"], "the firing event's resolved_at: %v", detail)
	incidentID, ok := ev["incident_id"].(float64)
	require.True(t, ok, "the critical firing opened an incident: %v", ev["incident_id"])
	var inc map[string]any
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		inc = nil
		if ts.do(http.MethodGet, fmt.Sprintf("%s/api/v1/incidents/%d", ts.events, int64(incidentID)), "", &inc) == http.StatusOK && incidentOf(inc)["status"] == "resolved" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, "resolved", incidentOf(inc)["status"], "incident %v", inc)
	require.NotNil(t, incidentOf(inc)["resolved_at"])

	var metricsText string
	resp, err := http.Get(ts.events + "/metrics")
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	metricsText = b.String()
	require.Regexp(t, `reflex_ingest_accepted_total\{adapter="alertmanager",listener="http"\} [2-9]`, metricsText)
}

// TestAlertWebhooksThroughServer posts Grafana's documented payloads (unified
// and legacy, with basic authentication, as the legacy notifier sends it)
// and a refused one to the running server.
func TestAlertWebhooksThroughServer(t *testing.T) {
	ts := start(t, testConfig(t))
	_, key := ts.createKey("grafana", "events:write")
	_, readKey := ts.createKey("reader", "events:read")
	post := func(path, file string, auth func(r *http.Request)) (int, string) {
		body, err := os.ReadFile(file)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, ts.events+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	bearer := func(k string) func(r *http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+k) }
	}
	const golden = "../ingest/grafana/testdata/golden/"
	code, body := post("/api/v1/events/grafana", golden+"unified_documented.payload.json", bearer(key))
	require.Equal(t, http.StatusAccepted, code, body)
	require.Contains(t, body, `"accepted":2`)
	code, body = post("/api/v1/events/grafana", golden+"legacy_documented.payload.json", func(r *http.Request) { r.SetBasicAuth("grafana", key) })
	require.Equal(t, http.StatusAccepted, code, body)

	code, body = post("/api/v1/events/grafana", golden+"legacy_bad_state.payload.json", bearer(key))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `"field":"state"`)
	code, _ = post("/api/v1/events/grafana", golden+"unified_documented.payload.json", func(*http.Request) {})
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = post("/api/v1/events/alertmanager", golden+"unified_documented.payload.json", bearer(readKey))
	require.Equal(t, http.StatusForbidden, code)

	ev := ts.waitEvents("source=grafana&event_type="+url.QueryEscape("High CPU usage"), "unified", func(map[string]any) bool { return true })
	require.Equal(t, "bc97ff14869b13e3", alertOf(ev)["key"])
	ev = ts.waitEvents("source=grafana&event_type="+url.QueryEscape("Panel Title alert"), "legacy", func(map[string]any) bool { return true })
	require.Equal(t, "grafana-legacy/org=1/rule=1", alertOf(ev)["key"])
}
