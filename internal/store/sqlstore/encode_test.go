package sqlstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// The event_data column comes from Batch.Data when the batch carries it
// (encoded once for the store and the processed stream), and from the
// event itself otherwise.
func TestEncodeUsesTheBatchsEventData(t *testing.T) {
	now := time.Now().UTC()
	e := event.Event{ID: 1, EventType: "t", Severity: event.Low, Title: "x", OccurredAt: now,
		Data: map[string]any{"metadata": map[string]any{"v": 1}}}
	own, err := e.MarshalData()
	require.NoError(t, err)
	col := len(ProcessedColumns) - 1
	require.Equal(t, "event_data", ProcessedColumns[col])

	b := &store.Batch{New: []event.Event{e}}
	r, err := Encode(SQLite, b, now)
	require.NoError(t, err)
	require.Equal(t, string(own), r.Processed[0][col], "no Data: the event's own encoding")

	require.NoError(t, b.EncodeData())
	require.Equal(t, []json.RawMessage{own}, b.Data)
	b.Data[0] = json.RawMessage(`{"metadata":{"v":2}}`)
	r, err = Encode(SQLite, b, now)
	require.NoError(t, err)
	require.Equal(t, `{"metadata":{"v":2}}`, r.Processed[0][col], "Data is used as it is")

	b.New = append(b.New, e) // Data no longer has one entry per event
	got, err := b.EventData(1)
	require.NoError(t, err)
	require.JSONEq(t, string(own), string(got))
}
