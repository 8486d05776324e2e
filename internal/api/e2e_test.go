package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// storeSubmitter stands in for intake and the pipeline: it turns each item
// into a raw and a processed event at once (occurred_at is the receipt
// time, as the pipeline does for an old timestamp such as the seed's) and
// writes them to the store, with a time-based correlation per host.
type storeSubmitter struct {
	st  store.Store
	ids *event.IDGen
}

func (s *storeSubmitter) Submit(ctx context.Context, src event.SourceType, items []intake.Item) ([]int64, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	base := s.ids.Next(len(items))
	b := &store.Batch{}
	ids := make([]int64, len(items))
	byHost := map[string][]int64{}
	for i, it := range items {
		id := base + int64(i)
		ids[i] = id
		var p struct {
			EventType string         `json:"event_type"`
			Host      string         `json:"host"`
			Service   string         `json:"service"`
			Message   string         `json:"message"`
			Metadata  map[string]any `json:"metadata"`
		}
		if err := json.Unmarshal(it.Data, &p); err != nil {
			return nil, err
		}
		b.Raw = append(b.Raw, event.Raw{ID: id, SourceSystem: it.SourceSystem, SourceType: src, Data: it.Data,
			ReceivedAt: now, Processed: true, ProcessedEventID: id})
		e := event.Event{ID: id, RawEventID: id, EventType: p.EventType, Severity: it.Severity,
			SourceSystem: it.SourceSystem, SourceType: src, SourceHost: p.Host, SourceService: p.Service,
			Title: p.Message, Data: map[string]any{"metadata": p.Metadata}, OccurredAt: now, ReceivedAt: now,
			ProcessedAt: now, OccurrenceCount: 1, LastSeenAt: now, Priority: 50}
		e.Fingerprint = event.Fingerprint(&e)
		byHost[p.Host] = append(byHost[p.Host], id)
		b.New = append(b.New, e)
	}
	for host, hostIDs := range byHost {
		cid := fmt.Sprintf("00000000-0000-4000-8000-%012x", hostIDs[0]&0xffffffffffff)
		b.Correlations = append(b.Correlations, event.Correlation{CorrelationID: cid, Type: event.CorrelationTimeBased,
			PrimaryEventID: hostIDs[0], RelatedEventIDs: hostIDs, Score: 0.5, Reason: "same host " + host, CreatedAt: now})
	}
	if err := s.st.WriteBatch(ctx, b); err != nil {
		return nil, err
	}
	return ids, nil
}

// TestEndToEndSQLite runs the handler over HTTP against the real SQLite
// store, Authenticator and webhook decoder.
func TestEndToEndSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx))

	a, err := auth.New(auth.Options{Store: st})
	require.NoError(t, err)
	adminKey, created, err := a.Bootstrap(ctx)
	require.NoError(t, err)
	require.True(t, created)

	reg := prometheus.NewRegistry()
	cache := &fakeCache{}
	h, err := NewEvents(EventsOptions{
		Store:      st,
		Auth:       a,
		Submit:     &storeSubmitter{st: st, ids: event.NewIDGen(1, nil)},
		Assets:     cache,
		Registerer: reg,
		Ops:        NewOps(OpsOptions{Ready: func() error { return st.Ping(ctx) }, Gatherer: reg, Registerer: reg, Service: "events"}),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	call := func(method, path, key, ctype, body string) (int, http.Header, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
		require.NoError(t, err)
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		resp, err := srv.Client().Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, b
	}

	// Keys: the bootstrap admin creates a writer and a reader.
	newKey := func(name string, scopes ...string) string {
		body, _ := json.Marshal(KeyRequest{Name: name, Scopes: scopes})
		code, _, b := call(http.MethodPost, "/api/v1/keys", adminKey, "application/json", string(body))
		require.Equal(t, http.StatusCreated, code, string(b))
		var ck CreatedKey
		require.NoError(t, json.Unmarshal(b, &ck))
		return ck.Key
	}
	writer := newKey("monitoring", auth.ScopeEventsWrite)
	reader := newKey("dashboard", auth.ScopeEventsRead)

	// The seed's payload is accepted.
	code, _, b := call(http.MethodPost, "/api/v1/events/webhook", writer, "application/json", seedPayload)
	require.Equal(t, http.StatusAccepted, code, string(b))
	var accepted WebhookResponse
	require.NoError(t, json.Unmarshal(b, &accepted))
	require.Equal(t, 1, accepted.Accepted)
	require.Len(t, accepted.IDs, 1)
	id := accepted.IDs[0]

	// And found with the seed's query.
	code, _, b = call(http.MethodGet, "/api/v1/events?severity=critical&hours=24&host=web-server-01", reader, "", "")
	require.Equal(t, http.StatusOK, code, string(b))
	var list EventList
	require.NoError(t, json.Unmarshal(b, &list))
	require.Equal(t, 1, list.Count)
	require.Equal(t, id, list.Events[0].ID)
	require.Equal(t, "nginx", list.Events[0].SourceService)
	require.Empty(t, list.NextCursor)

	code, _, b = call(http.MethodGet, fmt.Sprintf("/api/v1/events/%d?include=raw", id), reader, "", "")
	require.Equal(t, http.StatusOK, code, string(b))
	var detail EventDetail
	require.NoError(t, json.Unmarshal(b, &detail))
	require.Equal(t, id, detail.ID)
	require.Equal(t, "CPU usage exceeded 95%", detail.Title)
	require.NotNil(t, detail.RawEvent)
	require.JSONEq(t, seedPayload, string(detail.RawEvent.Data))

	code, _, b = call(http.MethodGet, fmt.Sprintf("/api/v1/events/%d/correlations", id), reader, "", "")
	require.Equal(t, http.StatusOK, code, string(b))
	var corrs CorrelationList
	require.NoError(t, json.Unmarshal(b, &corrs))
	require.Equal(t, id, corrs.EventID)
	require.Len(t, corrs.Correlations, 1)
	require.Equal(t, event.CorrelationTimeBased, corrs.Correlations[0].Type)

	code, _, b = call(http.MethodGet, "/api/v1/events/analytics?timerange=24h&groupby=severity", reader, "", "")
	require.Equal(t, http.StatusOK, code, string(b))
	var an Analytics
	require.NoError(t, json.Unmarshal(b, &an))
	require.Equal(t, int64(1), an.Total)
	require.Equal(t, []store.Bucket{{Key: "critical", Count: 1, Occurrences: 1}}, an.Buckets)

	code, _, _ = call(http.MethodGet, fmt.Sprintf("/api/v1/events/%d", id+1000), reader, "", "")
	require.Equal(t, http.StatusNotFound, code)

	// A partial NDJSON batch, then cursor pagination over everything.
	var nd strings.Builder
	for i := range 6 {
		fmt.Fprintf(&nd, `{"source":"mon","severity":"low","host":"web-server-01","message":"disk %d"}`+"\n", i)
		if i == 2 {
			nd.WriteString(`{"source":"mon","host":"web-server-01"}` + "\n")
		}
	}
	code, _, b = call(http.MethodPost, "/api/v1/events/webhook", writer, "application/x-ndjson", nd.String())
	require.Equal(t, http.StatusAccepted, code, string(b))
	require.NoError(t, json.Unmarshal(b, &accepted))
	require.Equal(t, 6, accepted.Accepted)
	require.Equal(t, []int{0, 1, 2, 4, 5, 6}, accepted.Indexes)
	require.Equal(t, 3, accepted.Rejected[0].Index)
	require.Equal(t, "message", accepted.Rejected[0].Field)

	var seen []int64
	path := "/api/v1/events?host=web-server-01&limit=3"
	for range 10 {
		code, _, b = call(http.MethodGet, path, reader, "", "")
		require.Equal(t, http.StatusOK, code, string(b))
		list = EventList{}
		require.NoError(t, json.Unmarshal(b, &list))
		for _, e := range list.Events {
			seen = append(seen, e.ID)
		}

		if list.NextCursor == "" {
			break
		}
		path = "/api/v1/events?host=web-server-01&limit=3&cursor=" + url.QueryEscape(list.NextCursor)
	}
	require.Len(t, seen, 7)
	for i := 1; i < len(seen); i++ {
		require.Less(t, seen[i], seen[i-1], "newest first, no repeats")
	}

	// Assets through the real store, and the cache follows.
	code, _, b = call(http.MethodPut, "/api/v1/assets/web-server-01", adminKey, "application/json",
		`{"environment":"production","criticality":"critical","dependencies":["db-01"]}`)
	require.Equal(t, http.StatusCreated, code, string(b))
	code, _, b = call(http.MethodGet, "/api/v1/assets/web-server-01", reader, "", "")
	require.Equal(t, http.StatusOK, code, string(b))
	var asset store.Asset
	require.NoError(t, json.Unmarshal(b, &asset))
	require.Equal(t, "critical", asset.Criticality)
	require.Equal(t, []string{"db-01"}, asset.Dependencies)
	require.Contains(t, cache.assets, "web-server-01")
	code, _, _ = call(http.MethodDelete, "/api/v1/assets/web-server-01", adminKey, "", "")
	require.Equal(t, http.StatusNoContent, code)
	code, _, _ = call(http.MethodDelete, "/api/v1/assets/web-server-01", adminKey, "", "")
	require.Equal(t, http.StatusNotFound, code)

	// Revoking the writer's key locks it out at once.
	code, _, _ = call(http.MethodDelete, "/api/v1/keys/"+writer[4:16], adminKey, "", "")
	require.Equal(t, http.StatusNoContent, code)
	code, hdr, _ := call(http.MethodPost, "/api/v1/events/webhook", writer, "application/json", seedPayload)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")

	// Operational endpoints need no key.
	code, _, _ = call(http.MethodGet, "/readyz", "", "", "")
	require.Equal(t, http.StatusOK, code)
	code, _, b = call(http.MethodGet, "/metrics", "", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), `reflex_events_received_total{source_type="webhook"} 8`)
	require.Contains(t, string(b), `reflex_events_rejected_total{reason="invalid",source_type="webhook"} 1`)
}
