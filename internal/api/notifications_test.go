package api

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

const policySecret = "whsec-0123456789abcdef"

const policyYAML = `receivers:
  - name: ops
    webhook: {url: "https://hooks.example/reflex?token=tok-abcdef123456", secret: "` + policySecret + `"}
  - name: pager
    pagerduty: {routing_key: "rk-0123456789abcdef0123456789abcdef"}
route:
  receiver: ops
  group_by: [rule, source_host]
  group_wait: 30s
  routes:
    - matchers: {severity: [critical]}
      receiver: pager
`

const policyJSON = `{"receivers": [{"name": "ops", "webhook": {"url": "https://hooks.example/reflex", "secret": "` + policySecret + `"}}],
 "route": {"receiver": "ops", "group_wait": "10s"}}`

// notifyEnv is an events handler whose notification routes use a real
// SQLite store.
type notifyEnv struct {
	*env
	st       store.Store
	policies []*notify.Policy
	changed  int
}

func newNotifyEnv(t *testing.T) *notifyEnv {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(context.Background()))
	ne := &notifyEnv{st: st}
	ne.env = newEnv(t, func(o *EventsOptions) {
		o.Notifications = NotificationOptions{
			Store:           st,
			SetPolicy:       func(p *notify.Policy) { ne.policies = append(ne.policies, p) },
			SilencesChanged: func() { ne.changed++ },
		}
	})
	return ne
}

func TestNotificationRoutesAbsentWithoutStore(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "GET", path: "/api/v1/silences", key: "admin"})
	require.Equal(t, http.StatusNotFound, w.Code)
}

func TestPolicyPutAndGet(t *testing.T) {
	e := newNotifyEnv(t)

	// YAML.
	w := e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: policyYAML, ctype: "application/yaml"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NotContains(t, w.Body.String(), policySecret)
	require.NotContains(t, w.Body.String(), "tok-abcdef123456")
	require.NotContains(t, w.Body.String(), "rk-0123456789abcdef")
	require.Len(t, e.policies, 1, "given to the router")
	require.Equal(t, []string{"ops", "pager"}, e.policies[0].ReceiverNames())
	sp, err := e.st.Policy(context.Background())
	require.NoError(t, err)
	require.Equal(t, policyYAML, string(sp.Document), "stored as given")
	require.Equal(t, notify.MediaYAML, sp.MediaType)

	w = e.do(req{method: "GET", path: "/api/v1/notifications/policy", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := w.Body.String()
	for _, secret := range []string{policySecret, "tok-abcdef123456", "rk-0123456789abcdef0123456789abcdef"} {
		require.NotContains(t, body, secret)
	}
	var got struct {
		Receivers []struct {
			Name      string            `json:"name"`
			Webhook   map[string]string `json:"webhook"`
			PagerDuty map[string]string `json:"pagerduty"`
		} `json:"receivers"`
		Route map[string]any `json:"route"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Len(t, got.Receivers, 2)
	require.Equal(t, notify.SecretPlaceholder, got.Receivers[0].Webhook["secret"])
	require.Equal(t, "https://hooks.example/"+notify.SecretPlaceholder, got.Receivers[0].Webhook["url"])
	require.Equal(t, notify.SecretPlaceholder, got.Receivers[1].PagerDuty["routing_key"])
	require.Equal(t, "ops", got.Route["receiver"])

	// JSON replaces it.
	w = e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: policyJSON, ctype: "application/json; charset=utf-8"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	w = e.do(req{method: "GET", path: "/api/v1/notifications/policy", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), policySecret)
	require.NotContains(t, w.Body.String(), "pager")
	sp, err = e.st.Policy(context.Background())
	require.NoError(t, err)
	require.Equal(t, notify.MediaJSON, sp.MediaType)
	require.Len(t, e.policies, 2)

	// The redacted answer, put back, is refused: it would replace the
	// secrets with the placeholder.
	w = e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: w.Body.String()})
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.NotContains(t, w.Body.String(), policySecret)
	require.Len(t, e.policies, 2, "an invalid policy is not applied")
}

func TestPolicyErrors(t *testing.T) {
	e := newNotifyEnv(t)
	w := e.do(req{method: "GET", path: "/api/v1/notifications/policy", key: "reader"})
	requireError(t, w, http.StatusNotFound, "", "no notification policy")

	bad := strings.Replace(policyYAML, "receiver: pager", "receiver: pagr", 1)
	w = e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: bad, ctype: "application/yaml"})
	requireError(t, w, http.StatusBadRequest, "route.routes[0].receiver", `route.routes[0].receiver: unknown receiver "pagr"`)
	require.NotContains(t, w.Body.String(), policySecret)

	w = e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: `{"receivers": [], "route": {"receiver": "ops"}, "extra": 1}`})
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Contains(t, decodeBody(t, w)["error"], "extra")

	w = e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: policyJSON, ctype: "text/plain"})
	requireError(t, w, http.StatusUnsupportedMediaType, "Content-Type", "application/yaml")

	w = e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: ""})
	requireError(t, w, http.StatusBadRequest, "", "empty")

	w = e.do(req{method: "PUT", path: "/api/v1/notifications/policy", key: "rules", body: strings.Repeat(" ", notify.MaxPolicyBytes+1)})
	requireError(t, w, http.StatusRequestEntityTooLarge, "", "larger than")

	_, err := e.st.Policy(context.Background())
	require.ErrorIs(t, err, store.ErrNotFound, "nothing invalid was stored")
	require.Empty(t, e.policies)
}

func TestSilencesCreateListExpire(t *testing.T) {
	e := newNotifyEnv(t)
	ends := testNow.Add(2 * time.Hour).Format(time.RFC3339)
	w := e.do(req{method: "POST", path: "/api/v1/silences", key: "rules", body: `{"matchers": {"source_host": "db-01"},
		"starts_at": "` + testNow.Add(-time.Minute).Format(time.RFC3339) + `", "ends_at": "` + ends + `",
		"created_by": "alice", "comment": "maintenance"}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var created SilenceInfo
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &created))
	require.Positive(t, created.ID)
	require.Equal(t, SilenceActive, created.Status)
	require.Equal(t, "alice", created.CreatedBy)
	require.Equal(t, map[string]any{"source_host": "db-01"}, created.Matchers)
	require.Equal(t, 1, e.changed)

	// starts_at defaults to now; created_by to the key's name; a later start is pending.
	w = e.do(req{method: "POST", path: "/api/v1/silences", key: "rules", body: `{"matchers": {"rule": ["High CPU Alert"]}, "ends_at": "` + ends + `"}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var second SilenceInfo
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &second))
	require.True(t, second.StartsAt.Equal(testNow))
	require.Equal(t, "rules", second.CreatedBy)
	w = e.do(req{method: "POST", path: "/api/v1/silences", key: "rules", body: `{"matchers": {"severity": "low"},
		"starts_at": "` + testNow.Add(time.Hour).Format(time.RFC3339) + `", "ends_at": "` + ends + `"}`})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var third SilenceInfo
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &third))
	require.Equal(t, SilencePending, third.Status)

	list := func(query string) []SilenceInfo {
		t.Helper()
		w := e.do(req{method: "GET", path: "/api/v1/silences" + query, key: "reader"})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var l SilenceList
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &l))
		require.Equal(t, len(l.Silences), l.Count)
		return l.Silences
	}
	ids := func(ss []SilenceInfo) []int64 {
		out := []int64{}
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	require.Equal(t, []int64{third.ID, second.ID, created.ID}, ids(list("")))
	require.Equal(t, []int64{second.ID, created.ID}, ids(list("?status=active")))
	require.Equal(t, []int64{third.ID}, ids(list("?status=pending")))
	require.Empty(t, list("?status=expired"))

	w = e.do(req{method: "DELETE", path: "/api/v1/silences/" + itoa(created.ID), key: "rules"})
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, 4, e.changed)
	expired := list("?status=expired")
	require.Equal(t, []int64{created.ID}, ids(expired))
	require.True(t, expired[0].EndsAt.Equal(testNow))
	require.Equal(t, []int64{second.ID}, ids(list("?status=active")))
	w = e.do(req{method: "DELETE", path: "/api/v1/silences/" + itoa(created.ID), key: "rules"})
	require.Equal(t, http.StatusNoContent, w.Code, "expiring again succeeds")

	w = e.do(req{method: "DELETE", path: "/api/v1/silences/9999", key: "rules"})
	requireError(t, w, http.StatusNotFound, "", "no silence with id 9999")
	w = e.do(req{method: "DELETE", path: "/api/v1/silences/abc", key: "rules"})
	requireError(t, w, http.StatusBadRequest, "id", "positive integer")
	w = e.do(req{method: "GET", path: "/api/v1/silences?status=maybe", key: "reader"})
	requireError(t, w, http.StatusBadRequest, "status", "active, pending or expired")
}

func TestSilenceValidation(t *testing.T) {
	e := newNotifyEnv(t)
	ends := `"ends_at": "` + testNow.Add(time.Hour).Format(time.RFC3339) + `"`
	for name, c := range map[string]struct {
		body, field, contains string
	}{
		"no ends_at":    {`{"matchers": {"source_host": "db-01"}}`, "ends_at", "required"},
		"no matchers":   {`{` + ends + `}`, "matchers", "at least one"},
		"bad matcher":   {`{"matchers": {"source_host": {"x": 1}}, ` + ends + `}`, "matchers.source_host", ""},
		"matches all":   {`{"matchers": {"source_host": ""}, ` + ends + `}`, "matchers", "every alert"},
		"ends before":   {`{"matchers": {"source_host": "a"}, "starts_at": "2026-11-27T12:00:00Z", "ends_at": "2026-11-27T11:00:00Z"}`, "ends_at", "after starts_at"},
		"in the past":   {`{"matchers": {"source_host": "a"}, "starts_at": "2026-11-27T08:00:00Z", "ends_at": "2026-11-27T09:00:00Z"}`, "ends_at", "past"},
		"unknown field": {`{"matchers": {"source_host": "a"}, ` + ends + `, "id": 4}`, "id", "unknown field"},
		"bad time":      {`{"matchers": {"source_host": "a"}, "ends_at": "tomorrow"}`, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			w := e.do(req{method: "POST", path: "/api/v1/silences", key: "rules", body: c.body})
			requireError(t, w, http.StatusBadRequest, c.field, c.contains)
		})
	}
	list, err := e.st.Silences(context.Background(), store.SilenceQuery{})
	require.NoError(t, err)
	require.Empty(t, list)
	require.Zero(t, e.changed)
}

func TestNotificationsList(t *testing.T) {
	e := newNotifyEnv(t)
	ctx := context.Background()
	recs := []notify.Attempt{
		{Receiver: "ops", GroupKey: "g1", Status: notify.StatusFailed, Attempt: 1, Error: "webhook: 503", Alerts: 1, At: testNow.Add(-3 * time.Hour), EventIDs: []int64{7}, RuleIDs: []int64{1}},
		{Receiver: "ops", GroupKey: "g1", Status: notify.StatusSent, Attempt: 2, Alerts: 1, At: testNow.Add(-2 * time.Hour), EventIDs: []int64{7}, RuleIDs: []int64{1}},
		{Receiver: "pager", GroupKey: "g2", Status: notify.StatusRefused, Attempt: 1, Alerts: 1, At: testNow.Add(-time.Hour)},
		{Receiver: "ops", GroupKey: "g3", Status: notify.StatusSilenced, Alerts: 2, At: testNow},
	}
	for _, a := range recs {
		_, err := e.st.InsertNotification(ctx, a)
		require.NoError(t, err)
	}
	list := func(query string) []store.NotificationRecord {
		t.Helper()
		w := e.do(req{method: "GET", path: "/api/v1/notifications" + query, key: "reader"})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var l NotificationList
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &l))
		require.Equal(t, len(l.Notifications), l.Count)
		return l.Notifications
	}
	statuses := func(rs []store.NotificationRecord) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.Receiver+":"+r.Status)
		}
		return out
	}
	require.Equal(t, []string{"ops:silenced", "pager:refused", "ops:sent", "ops:failed"}, statuses(list("")))
	require.Equal(t, []string{"ops:silenced", "ops:sent", "ops:failed"}, statuses(list("?receiver=ops")))
	require.Equal(t, []string{"ops:sent"}, statuses(list("?receiver=ops&status=sent")))
	require.Equal(t, []string{"ops:silenced", "pager:refused"}, statuses(list("?since="+testNow.Add(-time.Hour).Format(time.RFC3339))))
	require.Equal(t, []string{"ops:silenced"}, statuses(list("?limit=1")))
	failed := list("?status=failed")
	require.Len(t, failed, 1)
	require.Equal(t, "webhook: 503", failed[0].Error)
	require.Equal(t, []int64{7}, failed[0].EventIDs)

	w := e.do(req{method: "GET", path: "/api/v1/notifications", key: "reader"})
	var raw struct {
		Notifications []map[string]any `json:"notifications"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	for _, k := range []string{"id", "receiver", "group_key", "status", "attempt", "alerts", "at", "event_ids", "rule_ids"} {
		require.Contains(t, raw.Notifications[0], k)
	}

	for q, field := range map[string]string{
		"?status=lost":  "status",
		"?since=today":  "since",
		"?limit=0":      "limit",
		"?limit=100000": "limit",
		"?host=a":       "host",
	} {
		w := e.do(req{method: "GET", path: "/api/v1/notifications" + q, key: "reader"})
		requireError(t, w, http.StatusBadRequest, field, "")
	}
}

func TestNotificationScopes(t *testing.T) {
	e := newNotifyEnv(t)
	sil := `{"matchers": {"source_host": "a"}, "ends_at": "` + testNow.Add(time.Hour).Format(time.RFC3339) + `"}`
	for _, c := range []struct {
		method, path, body, ctype, role, scope string
	}{
		{"PUT", "/api/v1/notifications/policy", policyYAML, "application/yaml", "reader", "rules:write"},
		{"PUT", "/api/v1/notifications/policy", policyYAML, "application/yaml", "writer", "rules:write"},
		{"POST", "/api/v1/silences", sil, "", "reader", "rules:write"},
		{"DELETE", "/api/v1/silences/1", "", "", "reader", "rules:write"},
		{"GET", "/api/v1/notifications/policy", "", "", "rules", "events:read"},
		{"GET", "/api/v1/silences", "", "", "writer", "events:read"},
		{"GET", "/api/v1/notifications", "", "", "rules", "events:read"},
	} {
		w := e.do(req{method: c.method, path: c.path, body: c.body, ctype: c.ctype, key: c.role})
		require.Equal(t, http.StatusForbidden, w.Code, "%s %s as %s: %s", c.method, c.path, c.role, w.Body.String())
		require.Equal(t, c.scope, decodeBody(t, w)["scope"])
		w = e.do(req{method: c.method, path: c.path, body: c.body, ctype: c.ctype})
		require.Equal(t, http.StatusUnauthorized, w.Code)
	}
	require.Empty(t, e.policies)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
