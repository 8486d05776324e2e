package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/store"
)

func TestNewEventsRequiresDependencies(t *testing.T) {
	e := newEnv(t)
	full := EventsOptions{Store: e.store, Auth: e.auth, Submit: e.submit}
	tests := []struct {
		name string
		mod  func(*EventsOptions)
		ok   bool
	}{
		{"complete", func(*EventsOptions) {}, true},
		{"no store", func(o *EventsOptions) { o.Store = nil }, false},
		{"no auth", func(o *EventsOptions) { o.Auth = nil }, false},
		{"no submitter", func(o *EventsOptions) { o.Submit = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := full
			tt.mod(&o)
			h, err := NewEvents(o)
			if tt.ok {
				require.NoError(t, err)
				require.NotNil(t, h)
			} else {
				require.Error(t, err)
			}
		})
	}
}

func TestNewEventsTwiceOnOneRegistry(t *testing.T) {
	e := newEnv(t)
	_, err := NewEvents(EventsOptions{Store: e.store, Auth: e.auth, Submit: e.submit, Registerer: e.reg})
	require.NoError(t, err, "metrics already registered are reused")

	// A collector of the same name and another shape is an error.
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "reflex_http_requests_total", Help: "x"}))
	_, err = NewEvents(EventsOptions{Store: e.store, Auth: e.auth, Submit: e.submit, Registerer: reg})
	require.Error(t, err)
}

func TestOps(t *testing.T) {
	notReady := errors.New("store not connected")
	var readyErr error
	reg := prometheus.NewRegistry()
	h := NewOps(OpsOptions{Ready: func() error { return readyErr }, Gatherer: reg, Registerer: reg, Service: "autonomous"})

	get := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}

	w := get(http.MethodGet, "/healthz")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "ok\n", w.Body.String())

	w = get(http.MethodGet, "/readyz")
	require.Equal(t, http.StatusOK, w.Code)

	readyErr = notReady
	w = get(http.MethodGet, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "store not connected")

	w = get(http.MethodHead, "/healthz")
	require.Equal(t, http.StatusOK, w.Code)

	w = get(http.MethodGet, "/metrics")
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), `reflex_http_requests_total{code="200",handler="GET /healthz",service="autonomous"} 2`)
	require.Contains(t, w.Body.String(), `reflex_http_requests_total{code="503",handler="GET /readyz",service="autonomous"} 1`)
	require.Contains(t, w.Body.String(), `reflex_http_request_duration_seconds_bucket`)

	requireError(t, get(http.MethodGet, "/api/v1/events"), http.StatusNotFound, "", "no such endpoint")
	w = get(http.MethodPost, "/healthz")
	requireError(t, w, http.StatusMethodNotAllowed, "", "not allowed")
	require.Contains(t, w.Header().Get("Allow"), "GET")

	// Zero options: no /metrics, always ready.
	h = NewOps(OpsOptions{})
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	require.Equal(t, http.StatusOK, w.Code)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusNotFound, w.Code)
}

func TestEventsServesOpsUnauthenticated(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		t.Run(path, func(t *testing.T) {
			w := e.do(req{method: http.MethodGet, path: path})
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		})
	}
	// Without Ops, those paths are 404.
	e = newEnv(t, func(o *EventsOptions) { o.Ops = nil })
	requireError(t, e.do(req{method: http.MethodGet, path: "/healthz"}), http.StatusNotFound, "", "")
}

// routes lists every API route with its scope and a valid request.
var routes = []struct {
	method, path, scope, body string
}{
	{http.MethodPost, "/api/v1/events/webhook", auth.ScopeEventsWrite, seedPayload},
	{http.MethodGet, "/api/v1/events", auth.ScopeEventsRead, ""},
	{http.MethodGet, "/api/v1/events/analytics", auth.ScopeEventsRead, ""},
	{http.MethodGet, "/api/v1/events/1", auth.ScopeEventsRead, ""},
	{http.MethodGet, "/api/v1/events/1/correlations", auth.ScopeEventsRead, ""},
	{http.MethodGet, "/api/v1/assets", auth.ScopeEventsRead, ""},
	{http.MethodGet, "/api/v1/assets/web-01", auth.ScopeEventsRead, ""},
	{http.MethodPut, "/api/v1/assets/web-01", auth.ScopeAdmin, `{"criticality":"high"}`},
	{http.MethodDelete, "/api/v1/assets/web-01", auth.ScopeAdmin, ""},
	{http.MethodPost, "/api/v1/keys", auth.ScopeAdmin, `{"name":"x","scopes":["events:read"]}`},
	{http.MethodGet, "/api/v1/keys", auth.ScopeAdmin, ""},
	{http.MethodDelete, "/api/v1/keys/000000000000", auth.ScopeAdmin, ""},
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t)
	revoked, k, err := e.auth.CreateKey(context.Background(), "gone", []string{auth.ScopeAdmin})
	require.NoError(t, err)
	require.NoError(t, e.auth.RevokeKey(context.Background(), k.ID))

	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			tests := []struct {
				name      string
				key       string
				header    string
				challenge string
			}{
				{name: "no key", challenge: `Bearer realm="reflex"`},
				{name: "unknown key", key: "token:rfx_0123456789ab_" + strings.Repeat("0", 64), challenge: `Bearer realm="reflex", error="invalid_token"`},
				{name: "garbage key", key: "token:letmein", challenge: `Bearer realm="reflex", error="invalid_token"`},
				{name: "revoked key", key: "token:" + revoked, challenge: `Bearer realm="reflex", error="invalid_token"`},
				{name: "basic auth", header: "Basic YWRtaW46YWRtaW4=", challenge: `Bearer realm="reflex", error="invalid_token"`},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := req{method: rt.method, path: rt.path, key: tt.key, body: rt.body, ctype: "application/json"}
					if tt.header != "" {
						r.headers = map[string]string{"Authorization": tt.header}
					}
					w := e.do(r)
					requireError(t, w, http.StatusUnauthorized, "", "")
					require.Equal(t, tt.challenge, w.Header().Get("WWW-Authenticate"))
				})
			}
		})
	}
	require.Zero(t, e.submit.calls, "nothing was submitted without a key")
}

func TestScopes(t *testing.T) {
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			for _, role := range []string{"admin", "reader", "writer", "rules", "token:" + adminToken} {
				t.Run(role, func(t *testing.T) {
					e := newEnv(t)
					w := e.do(req{method: rt.method, path: rt.path, key: role, body: rt.body, ctype: "application/json"})
					allowed := role == "admin" || role == "token:"+adminToken ||
						role == "reader" && rt.scope == auth.ScopeEventsRead ||
						role == "writer" && rt.scope == auth.ScopeEventsWrite
					if !allowed {
						m := requireError(t, w, http.StatusForbidden, "", rt.scope)
						require.Equal(t, rt.scope, m["scope"])
						return
					}
					require.NotEqual(t, http.StatusUnauthorized, w.Code, w.Body.String())
					require.NotEqual(t, http.StatusForbidden, w.Code, w.Body.String())
				})
			}
		})
	}
}

func TestAuthStoreFailure(t *testing.T) {
	e := newEnv(t)
	// A key the Authenticator has not cached: its lookup reaches the store.
	failing := &failingKeys{memStore: e.store}
	a, err := auth.New(auth.Options{Store: failing})
	require.NoError(t, err)
	h, err := NewEvents(EventsOptions{Store: e.store, Auth: a, Submit: e.submit})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/events", nil)
	r.Header.Set("Authorization", "Bearer "+e.keys["reader"])
	h.ServeHTTP(w, r)
	requireError(t, w, http.StatusServiceUnavailable, "", "")
	require.Equal(t, "5", w.Header().Get("Retry-After"))
}

type failingKeys struct{ *memStore }

func (failingKeys) Key(context.Context, string) (store.APIKey, error) {
	return store.APIKey{}, errors.New("database is locked")
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		method string
		path   string
		status int
		allow  string
	}{
		{"unknown api path", http.MethodGet, "/api/v1/nope", http.StatusNotFound, ""},
		{"root", http.MethodGet, "/", http.StatusNotFound, ""},
		{"v2", http.MethodGet, "/api/v2/events", http.StatusNotFound, ""},
		{"delete events", http.MethodDelete, "/api/v1/events", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"get webhook", http.MethodGet, "/api/v1/events/webhook", http.StatusMethodNotAllowed, "POST"},
		{"post event", http.MethodPost, "/api/v1/events/5", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"patch asset", http.MethodPatch, "/api/v1/assets/web-01", http.StatusMethodNotAllowed, "DELETE, GET, HEAD, PUT"},
		{"put keys", http.MethodPut, "/api/v1/keys", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{method: tt.method, path: tt.path, key: "admin"})
			requireError(t, w, tt.status, "", "")
			require.Equal(t, tt.allow, w.Header().Get("Allow"))
		})
	}
	// The mux's redirect of an unclean path passes through.
	w := e.do(req{method: http.MethodGet, path: "/api/v1//events", key: "admin"})
	require.Equal(t, http.StatusTemporaryRedirect, w.Code)
	require.Equal(t, "/api/v1/events", w.Header().Get("Location"))
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t)
	e.store.panicMsg = "boom"
	w := e.do(req{method: http.MethodGet, path: "/api/v1/events", key: "reader"})
	requireError(t, w, http.StatusInternalServerError, "", "internal error")
	require.Contains(t, e.logs.String(), "panic in HTTP handler")
	require.Equal(t, 1.0, metricSum(t, e.reg, "reflex_http_panics_total", nil))

	// The handler keeps serving.
	e.store.panicMsg = ""
	w = e.do(req{method: http.MethodGet, path: "/api/v1/events", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
}

func TestAbortHandlerPanicPropagates(t *testing.T) {
	m, err := newHTTPMetrics(nil)
	require.NoError(t, err)
	rt := newRouter("t", slog.New(slog.DiscardHandler), m, testClock)
	rt.mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		rt.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/abort", nil))
	})
}

func TestRequestLogAndMetrics(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: http.MethodGet, path: "/api/v1/events?host=web-01", key: "reader"})
	require.Equal(t, http.StatusOK, w.Code)
	e.do(req{method: http.MethodGet, path: "/api/v1/events"})

	logs := e.logs.String()
	require.Contains(t, logs, "http request")
	require.Contains(t, logs, "method=GET path=/api/v1/events status=200")
	require.Contains(t, logs, "status=401")
	require.NotContains(t, logs, e.keys["reader"][17:], "the key's secret is never logged")
	require.NotContains(t, logs, "Bearer")

	require.Equal(t, 1.0, metricSum(t, e.reg, "reflex_http_requests_total",
		map[string]string{"service": "events", "handler": "GET /api/v1/events", "code": "200"}))
	require.Equal(t, 1.0, metricSum(t, e.reg, "reflex_http_requests_total",
		map[string]string{"service": "events", "handler": "GET /api/v1/events", "code": "401"}))
	require.Equal(t, 2.0, metricSum(t, e.reg, "reflex_http_requests_total", nil))
}

func TestDebugLogOff(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, func(o *EventsOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	e.do(req{method: http.MethodGet, path: "/api/v1/events", key: "reader"})
	require.Empty(t, buf.String())
}

// metricSum sums the values of the metric family name (a counter or a
// gauge) over the series whose labels include labels.
func metricSum(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func testClock() time.Time { return testNow }
