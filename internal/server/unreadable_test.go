package server

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
	"github.com/reflex-ops/reflex/internal/store/storetest"
)

// A stored event whose data cannot be read back (issue 5, defect 1.1)
// neither stops the server from starting (it warms its state from recent
// events) nor breaks the list; its own lookup answers 422 and the metric
// counts it.
func TestStartsWithAnUnreadableEvent(t *testing.T) {
	cfg := testConfig(t)
	path := filepath.Join(cfg.DataDir, "reflex.db")
	now := time.Now().UTC().Truncate(time.Millisecond)
	id := event.IDAt(now) + 1

	st, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	require.NoError(t, err)
	require.NoError(t, st.Migrate(t.Context()))
	require.NoError(t, st.WriteBatch(t.Context(), &store.Batch{
		Raw: []event.Raw{{ID: id, SourceSystem: "probe", SourceType: event.SourceWebhook,
			Data: []byte(`{"message":"poison"}`), ReceivedAt: now, Processed: true, ProcessedEventID: id}},
		New: []event.Event{{ID: id, RawEventID: id, EventType: "probe", Severity: event.Info, SourceHost: "web-01",
			Title: "poison", OccurredAt: now, ReceivedAt: now, LastSeenAt: now, OccurrenceCount: 1,
			Data: map[string]any{"message": "poison"}}},
	}))
	require.NoError(t, st.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `UPDATE processed_events SET event_data = ? WHERE id = ?`, storetest.PoisonData, id)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	ts := start(t, cfg)

	var list struct {
		Events     []map[string]any `json:"events"`
		Unreadable []int64          `json:"unreadable"`
	}
	require.Equal(t, http.StatusOK, ts.do(http.MethodGet, ts.events+"/api/v1/events", "", &list))
	require.Equal(t, []int64{id}, list.Unreadable)
	require.Empty(t, list.Events)

	var e struct {
		Error string `json:"error"`
	}
	require.Equal(t, http.StatusUnprocessableEntity, ts.do(http.MethodGet, fmt.Sprintf("%s/api/v1/events/%d", ts.events, id), "", &e))
	require.Contains(t, e.Error, fmt.Sprint(id))

	resp, err := http.Get(ts.events + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), `reflex_store_unreadable_rows_total{table="processed_events"}`)
}
