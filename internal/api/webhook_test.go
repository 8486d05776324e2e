package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/intake"
)

// seedPayload is the webhook example of the specification
// (/work/shared/seed/architecture.md).
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

func ev(host, msg string) string {
	return fmt.Sprintf(`{"source":"mon","severity":"high","host":%q,"message":%q}`, host, msg)
}

func TestWebhookAccepted(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		ctype        string
		wantIDs      []int64
		wantIndexes  []int
		wantRejected []Reject
		wantSources  []string
	}{
		{
			name: "seed payload", body: seedPayload, ctype: "application/json",
			wantIDs: []int64{1001}, wantSources: []string{"monitoring_system_name"},
		},
		{
			name: "no content type is JSON", body: seedPayload,
			wantIDs: []int64{1001}, wantSources: []string{"monitoring_system_name"},
		},
		{
			name: "array", body: "[" + ev("a", "one") + "," + ev("b", "two") + "," + ev("c", "three") + "]",
			ctype: "application/json; charset=utf-8", wantIDs: []int64{1001, 1002, 1003}, wantSources: []string{"mon", "mon", "mon"},
		},
		{
			name: "ndjson", body: ev("a", "one") + "\n" + ev("b", "two") + "\n",
			ctype: "application/x-ndjson", wantIDs: []int64{1001, 1002}, wantSources: []string{"mon", "mon"},
		},
		{
			name:  "partial batch",
			body:  "[" + ev("a", "one") + `,{"host":"b"},` + ev("c", "three") + `,{"message":"x","severity":"loud"}]`,
			ctype: "application/json", wantIDs: []int64{1001, 1002}, wantIndexes: []int{0, 2},
			wantRejected: []Reject{{Index: 1, Field: "message"}, {Index: 3, Field: "severity"}},
			wantSources:  []string{"mon", "mon"},
		},
		{
			name:  "partial ndjson, first rejected",
			body:  `{"severity":"critical"}` + "\n" + ev("a", "one") + "\n",
			ctype: "application/x-ndjson", wantIDs: []int64{1001}, wantIndexes: []int{1},
			wantRejected: []Reject{{Index: 0, Field: "message"}}, wantSources: []string{"mon"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: tt.body, ctype: tt.ctype})
			require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
			var resp WebhookResponse
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
			require.Equal(t, len(tt.wantIDs), resp.Accepted)
			require.Equal(t, tt.wantIDs, resp.IDs)
			require.Equal(t, tt.wantIndexes, resp.Indexes)
			require.Len(t, resp.Rejected, len(tt.wantRejected))
			for i, want := range tt.wantRejected {
				require.Equal(t, want.Index, resp.Rejected[i].Index)
				require.Equal(t, want.Field, resp.Rejected[i].Field)
				require.NotEmpty(t, resp.Rejected[i].Reason)
			}
			if tt.wantIndexes == nil {
				require.NotContains(t, w.Body.String(), "indexes")
				require.NotContains(t, w.Body.String(), "rejected")
			}

			require.Equal(t, event.SourceWebhook, e.submit.source)
			require.Len(t, e.submit.items, len(tt.wantSources))
			for i, src := range tt.wantSources {
				require.Equal(t, src, e.submit.items[i].SourceSystem)
				require.True(t, json.Valid(e.submit.items[i].Data))
			}

			received := metricSum(t, e.reg, "reflex_events_received_total", map[string]string{"source_type": "webhook"})
			require.Equal(t, float64(len(tt.wantIDs)+len(tt.wantRejected)), received)
			rejected := metricSum(t, e.reg, "reflex_events_rejected_total", map[string]string{"source_type": "webhook", "reason": "invalid"})
			require.Equal(t, float64(len(tt.wantRejected)), rejected)
		})
	}
}

func TestWebhookSeedItem(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: seedPayload, ctype: "application/json"})
	require.Equal(t, http.StatusAccepted, w.Code)
	require.JSONEq(t, `{"accepted":1,"ids":[1001]}`, w.Body.String())
	require.Len(t, e.submit.items, 1)
	require.Equal(t, event.Critical, e.submit.items[0].Severity)
	require.JSONEq(t, seedPayload, string(e.submit.items[0].Data))
}

func TestWebhookRejected(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		ctype      string
		status     int
		field      string
		contains   string
		nRejected  int
		reason     string // of reflex_events_rejected_total
		maxBody    int64
		chunked    bool
		reasonWant float64
	}{
		{name: "missing message", body: `{"severity":"critical","host":"h"}`, ctype: "application/json",
			status: http.StatusBadRequest, field: "message", contains: "message", nRejected: 1, reason: "invalid", reasonWant: 1},
		{name: "unknown severity", body: `{"severity":"apocalyptic","message":"m"}`, ctype: "application/json",
			status: http.StatusBadRequest, field: "severity", contains: "severity", nRejected: 1, reason: "invalid", reasonWant: 1},
		{name: "bad timestamp", body: `{"message":"m","timestamp":"yesterday"}`, ctype: "application/json",
			status: http.StatusBadRequest, field: "timestamp", contains: "timestamp", nRejected: 1, reason: "invalid", reasonWant: 1},
		{name: "every event of a batch", body: `[{"host":"a"},{"host":"b"}]`, ctype: "application/json",
			status: http.StatusBadRequest, contains: "all 2 events were rejected", nRejected: 2, reason: "invalid", reasonWant: 2},
		{name: "not json", body: `CPU is high`, ctype: "application/json",
			status: http.StatusBadRequest, reason: "malformed", reasonWant: 1},
		{name: "truncated json", body: `{"message":"m"`, ctype: "application/json",
			status: http.StatusBadRequest, reason: "malformed", reasonWant: 1},
		{name: "empty body", body: ``, ctype: "application/json",
			status: http.StatusBadRequest, reason: "malformed", reasonWant: 1},
		{name: "empty array", body: `[]`, ctype: "application/json",
			status: http.StatusBadRequest, reason: "malformed", reasonWant: 1},
		{name: "text/plain", body: seedPayload, ctype: "text/plain",
			status: http.StatusUnsupportedMediaType, field: "Content-Type", reason: "unsupported_media_type", reasonWant: 1},
		{name: "form", body: "a=b", ctype: "application/x-www-form-urlencoded",
			status: http.StatusUnsupportedMediaType, field: "Content-Type", reason: "unsupported_media_type", reasonWant: 1},
		{name: "too large", body: "[" + strings.Repeat(ev("a", "x")+",", 10) + ev("a", "x") + "]", ctype: "application/json",
			status: http.StatusRequestEntityTooLarge, contains: "larger than 200 bytes", maxBody: 200, reason: "too_large", reasonWant: 1},
		{name: "too large, chunked", body: "[" + strings.Repeat(ev("a", "x")+",", 10) + ev("a", "x") + "]", ctype: "application/json",
			status: http.StatusRequestEntityTooLarge, contains: "larger than 200 bytes", maxBody: 200, chunked: true, reason: "too_large", reasonWant: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *EventsOptions) { o.MaxBodyBytes = tt.maxBody })
			var w *httptest.ResponseRecorder
			if tt.chunked {
				r := httptest.NewRequest(http.MethodPost, "/api/v1/events/webhook", io.MultiReader(strings.NewReader(tt.body)))
				r.ContentLength = -1
				r.Header.Set("Authorization", "Bearer "+e.keys["writer"])
				r.Header.Set("Content-Type", tt.ctype)
				w = httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
			} else {
				w = e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: tt.body, ctype: tt.ctype})
			}
			m := requireError(t, w, tt.status, tt.field, tt.contains)
			rejected, _ := m["rejected"].([]any)
			require.Len(t, rejected, tt.nRejected)
			require.Zero(t, e.submit.calls, "nothing was submitted")
			require.Equal(t, tt.reasonWant, metricSum(t, e.reg, "reflex_events_rejected_total",
				map[string]string{"source_type": "webhook", "reason": tt.reason}))
		})
	}
}

func TestWebhookDefaultLimitIsOneMiB(t *testing.T) {
	e := newEnv(t)
	big := `{"message":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: big, ctype: "application/json"})
	requireError(t, w, http.StatusRequestEntityTooLarge, "", "1048576")
}

func TestWebhookSubmitErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		retryAfter string
		logged     bool
	}{
		{"busy", intake.ErrBusy, http.StatusTooManyRequests, "1", false},
		{"busy wrapped", fmt.Errorf("intake: submit: %w", intake.ErrBusy), http.StatusTooManyRequests, "1", false},
		{"log full", fmt.Errorf("intake: 1 of 1 envelopes not stored: %w", bus.ErrFull), http.StatusServiceUnavailable, "5", true},
		{"log unavailable", fmt.Errorf("intake: 2 of 2 envelopes not stored: %w", errors.Join(bus.ErrUnavailable, bus.ErrUnavailable)), http.StatusServiceUnavailable, "5", true},
		{"unknown failure", errors.New("something else"), http.StatusServiceUnavailable, "5", true},
		{"event larger than a log message", fmt.Errorf("intake: publish: %w", bus.ErrTooLarge), http.StatusRequestEntityTooLarge, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.submit.err = tt.err
			w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: seedPayload, ctype: "application/json"})
			requireError(t, w, tt.status, "", "")
			require.Equal(t, tt.retryAfter, w.Header().Get("Retry-After"))
			require.Equal(t, tt.logged, strings.Contains(e.logs.String(), "level=WARN") || strings.Contains(e.logs.String(), "level=ERROR"))
		})
	}
}

func TestWebhookItemError(t *testing.T) {
	e := newEnv(t)
	e.submit.err = &intake.ItemError{Index: 0, Err: errors.New("data is not a JSON value")}
	w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: seedPayload, ctype: "application/json"})
	requireError(t, w, http.StatusBadRequest, "", "event 0")
}

func TestWebhookClientGone(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Nothing is written (499 is not an HTTP status, issue 5 §1.7): the
	// connection is closed, the way net/http does for ErrAbortHandler.
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: seedPayload, ctype: "application/json", ctx: ctx})
		t.Errorf("answered %d", w.Code)
	})
	require.NotContains(t, e.logs.String(), "level=ERROR")
	require.NotContains(t, e.logs.String(), "level=WARN")
	require.Equal(t, 1.0, metricSum(t, e.reg, "reflex_http_requests_total", map[string]string{"code": "499"}))
}

func TestWebhookCustomDecoder(t *testing.T) {
	var gotOpts webhook.Options
	var gotType string
	e := newEnv(t, func(o *EventsOptions) {
		o.Webhook = webhook.Options{MaxEvents: 7}
		o.Decode = func(contentType string, body []byte, opts webhook.Options) ([]intake.Item, []webhook.Reject, error) {
			gotOpts, gotType = opts, contentType
			if bytes.Equal(body, []byte("boom")) {
				return nil, nil, fmt.Errorf("%w: boom", webhook.ErrBadRequest)
			}
			return []intake.Item{{SourceSystem: "x", Severity: event.Low, Data: []byte(`{}`)}}, nil, nil
		}
	})
	w := e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: "anything", ctype: "application/vnd.custom"})
	require.Equal(t, http.StatusAccepted, w.Code)
	require.Equal(t, 7, gotOpts.MaxEvents)
	require.Equal(t, "application/vnd.custom", gotType)

	w = e.do(req{method: http.MethodPost, path: "/api/v1/events/webhook", key: "writer", body: "boom"})
	requireError(t, w, http.StatusBadRequest, "", "boom")
}

func TestAcceptedIndexes(t *testing.T) {
	tests := []struct {
		n       int
		rejects []int
		want    []int
	}{
		{3, nil, []int{0, 1, 2}},
		{2, []int{1}, []int{0, 2}},
		{1, []int{0, 1, 3}, []int{2}},
		{2, []int{0, 0}, []int{1, 2}},
		{0, []int{0}, []int{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n, tt.rejects), func(t *testing.T) {
			var rj []Reject
			for _, i := range tt.rejects {
				rj = append(rj, Reject{Index: i})
			}
			require.Equal(t, tt.want, acceptedIndexes(tt.n, rj))
		})
	}
}
