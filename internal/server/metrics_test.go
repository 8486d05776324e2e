package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// freePort answers a port on 127.0.0.1 nothing listens on (for a peer
// that cannot listen on :0 and report its port).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// alertEvents answers the events of event type name as (host, status)
// pairs, oldest first.
func (ts *testServer) alertEvents(name string) []string {
	ts.t.Helper()
	var list struct {
		Events []struct {
			Host     string         `json:"source_host"`
			Severity string         `json:"severity"`
			Data     map[string]any `json:"event_data"`
		} `json:"events"`
	}
	require.Equal(ts.t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events?hours=1&event_type="+name, "", &list))
	var out []string
	for i := len(list.Events) - 1; i >= 0; i-- {
		e := list.Events[i]
		alert, _ := e.Data["alert"].(map[string]any)
		out = append(out, fmt.Sprintf("%s %v %s", e.Host, alert["status"], e.Severity))
	}
	return out
}

// waitAlerts polls until the events of name are want.
func (ts *testServer) waitAlerts(name string, want ...string) {
	ts.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got = ts.alertEvents(name); fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.t.Fatalf("events of %s: %q, want %q", name, got, want)
}

// TestMetricsPrometheusRemoteWrite runs a real Prometheus that scrapes
// node_load1 of web-01 every second from a target the test controls and
// remote-writes to reflex, and checks that a metric rule (node_load1 > 4
// for 2s) and a metric check (the query node_load1 > 4 against that
// Prometheus) raise an event for web-01 and resolve it.
func TestMetricsPrometheusRemoteWrite(t *testing.T) {
	promBin := testutil.Program(t, "prometheus", "prometheus")
	dir := t.TempDir()

	var load atomic.Value
	load.Store("1")
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1{instance=\"web-01:9100\"} %s\n", load.Load())
	}))
	defer target.Close()

	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	rules := filepath.Join(dir, "metric-rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(fmt.Sprintf(`
rules:
  - name: HighLoad
    metric: node_load1
    op: ">"
    threshold: 4
    for: 2s
    severity: high
    summary: "load {{value}} on {{host}}"
checks:
  - name: HighLoadCheck
    prometheus: http://%s
    query: node_load1 > 4
    every: 1s
    timeout: 1s
    for: 1s
    severity: medium
`, promAddr)), 0o600))
	cfg := testConfig(t)
	cfg.MetricRules = rules
	ts := start(t, cfg)

	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte(testToken), 0o600))
	promCfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(promCfg, []byte(fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    honor_labels: true
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s/api/v1/metrics/write
    authorization:
      credentials_file: %s
    queue_config:
      batch_send_deadline: 1s
`, strings.TrimPrefix(target.URL, "http://"), ts.events, token)), 0o600))
	var promLog bytes.Buffer
	cmd := exec.Command(promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn") // #nosec G204 -- the test's own arguments
	cmd.Stdout, cmd.Stderr = &promLog, &promLog
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", promLog.String())
		}
	})

	// Samples arrive: the store holds the series, no alert yet.
	require.Eventually(t, func() bool {
		return metricValue(t, ts.events, `reflex_ingest_accepted_total{adapter="promwrite",listener="http"}`) > 0
	}, 30*time.Second, 100*time.Millisecond, "no remote write reached reflex:\n%s", &promLog)
	require.Empty(t, ts.alertEvents("HighLoad"))

	load.Store("7")
	ts.waitAlerts("HighLoad", "web-01 firing high")
	ts.waitAlerts("HighLoadCheck", "web-01 firing medium")
	load.Store("1")
	ts.waitAlerts("HighLoad", "web-01 firing high", "web-01 resolved info")
	ts.waitAlerts("HighLoadCheck", "web-01 firing medium", "web-01 resolved info")
	require.Positive(t, metricValue(t, ts.events, `reflex_metric_series`))
	require.Positive(t, metricValue(t, ts.events, `reflex_metric_check_runs_total{check="HighLoadCheck",outcome="ok"}`))
}

// metricValue answers the value of the sample line of /metrics that starts
// with series (0 when absent).
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			_, err := fmt.Sscan(rest, &v)
			require.NoError(t, err)
			return v
		}
	}
	return 0
}

// TestMetricsInfluxLineProtocol posts Telegraf-style line protocol to the
// three InfluxDB endpoints, with the key as InfluxDB clients send it, and
// checks that a metric rule over <measurement>_<field> raises and
// resolves an event; without --metric-rules the endpoints are 404.
func TestMetricsInfluxLineProtocol(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "metric-rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`
rules:
  - {name: DiskFull, metric: disk_used_percent, labels: {path: /}, op: ">=", threshold: 90, host_label: host, severity: critical}
`), 0o600))
	cfg := testConfig(t)
	cfg.MetricRules = rules
	ts := start(t, cfg)
	send := func(path, body string, auth func(r *http.Request)) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, ts.events+path, strings.NewReader(body))
		require.NoError(t, err)
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now().Unix()
	line := func(pct int, at int64) string {
		return fmt.Sprintf("disk,fstype=ext4,host=db-01,path=/ used_percent=%d,free=1024i %d\n", pct, at)
	}
	require.Equal(t, http.StatusUnauthorized, send("/write?precision=s", line(95, now), func(*http.Request) {}))
	require.Equal(t, http.StatusNoContent, send("/write?db=telegraf&precision=s&u=telegraf&p="+testToken, line(50, now-2), func(*http.Request) {}))
	require.Equal(t, http.StatusNoContent, send("/api/v2/write?org=o&bucket=b&precision=s", line(95, now-1), func(r *http.Request) {
		r.Header.Set("Authorization", "Token "+testToken)
	}))
	ts.waitAlerts("DiskFull", "db-01 firing critical")
	require.Equal(t, http.StatusNoContent, send("/api/v1/metrics/influx?precision=s", line(40, now), func(r *http.Request) {
		r.SetBasicAuth("telegraf", testToken)
	}))
	ts.waitAlerts("DiskFull", "db-01 firing critical", "db-01 resolved info")

	off := start(t, testConfig(t))
	require.Equal(t, http.StatusNotFound, off.do(http.MethodPost, off.events+"/api/v1/metrics/write", "x", nil))
}
