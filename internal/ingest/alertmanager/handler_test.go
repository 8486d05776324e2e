package alertmanager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/intake"
)

// fakeSubmitter records submissions (a unit test's stand-in for the
// intake; the server's end-to-end test uses the real one).
type fakeSubmitter struct {
	err   error
	items []intake.Item
}

func (f *fakeSubmitter) Submit(_ context.Context, src event.SourceType, items []intake.Item) ([]int64, error) {
	if f.err != nil {
		return nil, f.err
	}
	if src != event.SourceAlertmanager {
		panic("source " + src)
	}
	f.items = append(f.items, items...)
	ids := make([]int64, len(items))
	for i := range ids {
		ids[i] = int64(100 + i)
	}
	return ids, nil
}

func newTestHandler(t *testing.T, sub Submitter, maxBody int64) (*Handler, *ingest.Metrics) {
	t.Helper()
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	h, err := NewHandler(HandlerOptions{
		Adapter: "alertmanager", Source: event.SourceAlertmanager, Submit: sub, Metrics: m, MaxBodyBytes: maxBody,
		Decode: func(body []byte, maxEventBytes int) ([]intake.Item, int, error) {
			return Decode(body, Options{MaxEventBytes: maxEventBytes})
		},
	})
	require.NoError(t, err)
	return h, m
}

func TestHandler(t *testing.T) {
	firing, err := os.ReadFile("testdata/golden/am025_firing.payload.json")
	require.NoError(t, err)
	group, err := os.ReadFile("testdata/golden/group_three_alerts.payload.json")
	require.NoError(t, err)
	cases := []struct {
		name        string
		body        string
		contentType string
		maxBody     int64
		submitErr   error
		status      int
		field       string
		accepted    float64
		rejected    map[string]float64
	}{
		{name: "firing", body: string(firing), contentType: "application/json", status: http.StatusAccepted, accepted: 1},
		{name: "group", body: string(group), status: http.StatusAccepted, accepted: 3},
		{name: "bad field", body: strings.Replace(string(firing), `"severity":"critical"`, `"severity":7`, 1), status: http.StatusBadRequest,
			field: "alerts[0].labels.severity", rejected: map[string]float64{ReasonInvalid: 1}},
		{name: "not json", body: `{"alerts": [`, status: http.StatusBadRequest, rejected: map[string]float64{ReasonParse: 1}},
		{name: "media type", body: string(firing), contentType: "text/plain", status: http.StatusUnsupportedMediaType,
			field: "Content-Type", rejected: map[string]float64{ReasonMediaType: 1}},
		{name: "body too large", body: string(group), maxBody: 512, status: http.StatusRequestEntityTooLarge,
			rejected: map[string]float64{ReasonTooLarge: 1}},
		{name: "intake full", body: string(group), submitErr: bus.ErrFull, status: http.StatusServiceUnavailable,
			rejected: map[string]float64{ReasonUnavailable: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := &fakeSubmitter{err: tc.submitErr}
			h, m := newTestHandler(t, sub, tc.maxBody)
			req := httptest.NewRequest(http.MethodPost, "/api/v1/events/alertmanager", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.status == http.StatusAccepted {
				var resp Response
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
				require.Equal(t, int(tc.accepted), resp.Accepted)
				require.Len(t, resp.IDs, resp.Accepted)
			} else {
				var eb ErrorBody
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb))
				require.NotEmpty(t, eb.Error)
				require.Equal(t, tc.field, eb.Field)
			}
			if tc.status == http.StatusServiceUnavailable {
				require.Equal(t, "5", rec.Header().Get("Retry-After"))
			}
			require.Equal(t, tc.accepted, testutil.ToFloat64(m.Accepted.WithLabelValues("alertmanager", Listener)))
			var rejected float64
			for reason, n := range tc.rejected {
				require.Equal(t, n, testutil.ToFloat64(m.Rejected.WithLabelValues("alertmanager", Listener, reason)), reason)
				rejected += n
			}
			received := testutil.ToFloat64(m.Received.WithLabelValues("alertmanager", Listener))
			require.Equal(t, tc.accepted+rejected, received)
		})
	}
}

func TestHandlerAlertTooLargeForIntake(t *testing.T) {
	body, err := os.ReadFile("testdata/golden/am025_firing.payload.json")
	require.NoError(t, err)
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	sub := &fakeSubmitter{}
	h, err := NewHandler(HandlerOptions{Source: event.SourceAlertmanager, Submit: sub, Metrics: m, MaxEventBytes: 100,
		Decode: func(body []byte, maxEventBytes int) ([]intake.Item, int, error) {
			return Decode(body, Options{MaxEventBytes: maxEventBytes})
		}})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body))))
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	require.Contains(t, rec.Body.String(), "alerts[0] is")
	require.Empty(t, sub.items)
}

func TestHostAndKey(t *testing.T) {
	for in, want := range map[string]string{
		"web-01:9100": "web-01", "web-01": "web-01", "[2001:db8::1]:9100": "2001:db8::1", "2001:db8::1": "2001:db8::1",
		"https://shop.example.com:8443/healthz": "shop.example.com", "10.0.0.1:80": "10.0.0.1", "[::1]": "::1",
	} {
		require.Equal(t, want, Host(map[string]string{"instance": in}), in)
	}
	require.Equal(t, "n1", Host(map[string]string{"node": "n1", "pod": "p"}))
	require.Equal(t, "api", Service(map[string]string{"job": "kube", "service": "api"}))
	a := map[string]string{"alertname": "X", "b": "1"}
	require.Equal(t, Key("", a), Key("", map[string]string{"b": "1", "alertname": "X"}))
	require.NotEqual(t, Key("", a), Key("", map[string]string{"alertname": "X", "b": "2"}))
	require.NotEqual(t, Key("", map[string]string{"a": "x\x00b"}), Key("", map[string]string{"a": "x", "b": ""}))
	require.Equal(t, "ab12", Key("ab12", a))
	require.LessOrEqual(t, len(Key(strings.Repeat("f", 500), a)), event.MaxAlertKeyLen)
}

func TestBasicPassword(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.SetBasicAuth("grafana", "rfx_key")
	require.Equal(t, "rfx_key", BasicPassword(r))
	r.Header.Set("Authorization", "Bearer x")
	require.Empty(t, BasicPassword(r))
}
