package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestEventJSONGolden serves events read from stored event_data rows
// (testdata/event_data_stored.jsonl, as the stores kept them before the
// stage results became typed fields of the event) and compares the answers
// of GET /api/v1/events and GET /api/v1/events/{id}?include=raw with golden
// files written by the code before that change: the API's JSON is
// unchanged, byte for byte.
func TestEventJSONGolden(t *testing.T) {
	rows, err := os.ReadFile(filepath.Join("testdata", "event_data_stored.jsonl"))
	require.NoError(t, err)
	e := newEnv(t)
	for i, row := range bytes.Split(bytes.TrimSpace(rows), []byte("\n")) {
		id := int64(100 + i)
		at := testNow.Add(-time.Hour - time.Duration(i)*time.Second)
		ev := event.Event{ID: id, RawEventID: id, EventType: "threshold_breach", Severity: event.Critical,
			SourceSystem: "mon", SourceType: event.SourceWebhook, SourceHost: "web-server-01", SourceService: "nginx",
			Title: "CPU <95%> & rising", Tags: []string{"env:production", "escalated"},
			OccurredAt: at, ReceivedAt: at, ProcessedAt: at.Add(time.Millisecond), LastSeenAt: at,
			CorrelationID: "00000000-0000-8000-8002-7265666c6578", ParentEventID: 1, Fingerprint: "fce60d6bede3b44",
			OccurrenceCount: 2, Priority: 88}
		require.NoError(t, ev.UnmarshalData(row), "row %d", i)
		e.store.events[id] = ev
		e.store.raws[id] = event.Raw{ID: id, SourceSystem: "mon", SourceType: event.SourceWebhook,
			Data: json.RawMessage(`{"message":"CPU <95%> & rising"}`), ReceivedAt: at, Processed: true, ProcessedEventID: id}
	}
	for name, path := range map[string]string{
		"events_list.golden.json":   "/api/v1/events?limit=10",
		"event_detail.golden.json":  "/api/v1/events/101?include=raw",
		"event_without.golden.json": "/api/v1/events/103",
	} {
		t.Run(name, func(t *testing.T) {
			w := e.do(req{method: http.MethodGet, path: path, key: "reader"})
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			file := filepath.Join("testdata", name)
			if *update {
				require.NoError(t, os.WriteFile(file, w.Body.Bytes(), 0o644))
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "run go test -update to create the golden file")
			require.Equal(t, string(want), w.Body.String())
		})
	}
}
