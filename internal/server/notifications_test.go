package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/notify/receiver"
)

const hookSecret = "whsec-server-test-0123456789"

// hook is a local webhook receiver: each request's body and signature.
type hook struct {
	srv  *httptest.Server
	reqs chan hookReq
}

type hookReq struct {
	body      []byte
	signature string
}

func newHook(t *testing.T) *hook {
	t.Helper()
	h := &hook{reqs: make(chan hookReq, 16)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.reqs <- hookReq{body: b, signature: r.Header.Get("X-Reflex-Signature")}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// policyFile writes a policy whose one receiver is the webhook at url.
func policyFile(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notifications.yaml")
	doc := fmt.Sprintf(`receivers:
  - name: ops
    webhook: {url: %q, secret: %q}
route:
  receiver: ops
  group_by: [rule, source_host]
  group_wait: 50ms
  group_interval: 1m
`, url+"/reflex", hookSecret)
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	return path
}

func testAlert(now time.Time) notify.Alert {
	return notify.Alert{
		RuleID: 1, RuleName: "High CPU Alert", EventID: 42, SourceHost: "web-server-01",
		Severity: "critical", Title: "CPU usage exceeded 95%", FiredAt: now,
		Labels: map[string]string{"rule": "High CPU Alert", "rule_id": "1", "source_host": "web-server-01", "severity": "critical"},
	}
}

type notificationList struct {
	Notifications []struct {
		Receiver string  `json:"receiver"`
		Status   string  `json:"status"`
		Error    string  `json:"error"`
		Alerts   int     `json:"alerts"`
		EventIDs []int64 `json:"event_ids"`
	} `json:"notifications"`
}

// waitRecord polls GET /api/v1/notifications until a record with status
// shows (the record is written right after the attempt returns).
func (ts *testServer) waitRecord(status string) notificationList {
	ts.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var l notificationList
		require.Equal(ts.t, http.StatusOK, ts.do("GET", ts.events+"/api/v1/notifications?status="+status, "", &l))
		if len(l.Notifications) > 0 || time.Now().After(deadline) {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNotificationDeliveredThroughTheAllowedGuard(t *testing.T) {
	h := newHook(t)
	cfg := testConfig(t)
	cfg.NotificationsFile = policyFile(t, h.srv.URL)
	cfg.OutboundAllow = "127.0.0.1/32"
	ts := start(t, cfg)

	// The policy is served redacted.
	resp := ts.raw("GET", "/api/v1/notifications/policy")
	require.Contains(t, resp, `"receiver":"ops"`)
	require.NotContains(t, resp, hookSecret)

	ts.srv.Notifier().Dispatch(testAlert(time.Now()))
	var got hookReq
	select {
	case got = <-h.reqs:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook did not arrive")
	}
	require.NoError(t, receiver.Verify(hookSecret, got.signature, got.body, time.Now(), time.Minute))
	require.Error(t, receiver.Verify("another-secret-0123456789", got.signature, got.body, time.Now(), time.Minute))
	require.Contains(t, string(got.body), `"rule_name":"High CPU Alert"`)
	require.Contains(t, string(got.body), `"status":"firing"`)

	l := ts.waitRecord(notify.StatusSent)
	require.Len(t, l.Notifications, 1)
	require.Equal(t, "ops", l.Notifications[0].Receiver)
	require.Equal(t, []int64{42}, l.Notifications[0].EventIDs)
}

func TestNotificationRefusedWithoutAllow(t *testing.T) {
	h := newHook(t)
	cfg := testConfig(t)
	cfg.NotificationsFile = policyFile(t, h.srv.URL)
	ts := start(t, cfg)

	ts.srv.Notifier().Dispatch(testAlert(time.Now()))
	l := ts.waitRecord(notify.StatusRefused)
	require.Len(t, l.Notifications, 1)
	require.Contains(t, l.Notifications[0].Error, "loopback")
	require.NotContains(t, l.Notifications[0].Error, "/reflex")
	select {
	case <-h.reqs:
		t.Fatal("a refused delivery reached the webhook")
	default:
	}
}

func TestNotificationPolicyPersistsAndSilences(t *testing.T) {
	h := newHook(t)
	cfg := testConfig(t)
	cfg.OutboundAllow = "127.0.0.1"
	ts := start(t, cfg)
	require.Equal(t, http.StatusNotFound, ts.do("GET", ts.events+"/api/v1/notifications/policy", "", nil))

	// A PUT replaces the policy in use: an alert goes out at once.
	data, err := os.ReadFile(policyFile(t, h.srv.URL))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, ts.put("/api/v1/notifications/policy", "application/yaml", string(data)))

	// A silence on the host keeps its alerts from the webhook; they are
	// recorded silenced.
	ends := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var sil struct {
		ID int64 `json:"id"`
	}
	require.Equal(t, http.StatusCreated, ts.do("POST", ts.events+"/api/v1/silences",
		`{"matchers": {"source_host": "web-server-01"}, "ends_at": "`+ends+`", "comment": "maintenance"}`, &sil))
	ts.srv.Notifier().Dispatch(testAlert(time.Now()))
	l := ts.waitRecord(notify.StatusSilenced)
	require.Len(t, l.Notifications, 1)
	require.Equal(t, 1, l.Notifications[0].Alerts)

	other := testAlert(time.Now())
	other.EventID, other.SourceHost, other.Labels["source_host"] = 43, "web-server-02", "web-server-02"
	ts.srv.Notifier().Dispatch(other)
	select {
	case got := <-h.reqs:
		require.NoError(t, receiver.Verify(hookSecret, got.signature, got.body, time.Now(), time.Minute))
		require.Contains(t, string(got.body), `"source_host":"web-server-02"`)
		require.NotContains(t, string(got.body), `"web-server-01"`)
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook did not arrive")
	}

	// After a restart on the same data dir the stored policy is used.
	require.NoError(t, ts.srv.Shutdown(t.Context()))
	ts2 := start(t, cfg)
	resp := ts2.raw("GET", "/api/v1/notifications/policy")
	require.Contains(t, resp, `"receiver":"ops"`)
	require.NotContains(t, resp, hookSecret)
	require.NotNil(t, ts2.srv.Notifier().(*notify.Dispatcher).Policy())
}

func (ts *testServer) raw(method, path string) string {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.events+path, nil)
	require.NoError(ts.t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	require.Equal(ts.t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

func (ts *testServer) put(path, ctype, body string) int {
	ts.t.Helper()
	req, err := http.NewRequest("PUT", ts.events+path, strings.NewReader(body))
	require.NoError(ts.t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
