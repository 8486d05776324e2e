package processed

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// fullEvent has every typed result set, Data beside them, and characters
// that JSON encoders like to escape.
func fullEvent(id int64) event.Event {
	e := ev(id, "db-01")
	e.SourceService = "postgres"
	e.Description = "disk <full> & \"quoted\""
	e.CorrelationID, e.Fingerprint, e.ParentEventID = "c-1", "f-1", 3
	e.Asset = &event.Asset{Criticality: "high", Dependencies: []string{"san-1"}, Team: "dba"}
	e.Scoring = &event.Scoring{Priority: 90, Severity: event.Critical, SourceSeverity: event.High,
		Factors: []event.ScoringFactor{{Factor: "source_severity", Reason: "source severity high", Weight: 60}}}
	e.Template = &event.Template{ID: 7, Text: "disk <*> full on <*>"}
	starts := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	e.Alert = &event.Alert{Key: "DiskFull/instance=db-01", Status: event.AlertFiring, StartsAt: &starts}
	e.Data = map[string]any{"metadata": map[string]any{"cpu_usage": 97.5, "note": "<b>"}, "labels": []any{"a", "b"}}
	return e
}

func publishOne(t *testing.T, e event.Event) []Record {
	t.Helper()
	sink := newSink(1)
	p := newPub(t, sink, &fakeReader{}, nil)
	require.NoError(t, p.Stored(context.Background(), &store.Batch{Raw: []event.Raw{raw(e.ID, e.ID)}, New: []event.Event{e}}))
	require.Len(t, sink.msgs, 1)
	require.Contains(t, string(sink.msgs[0].Data), `"v":2`)
	_, recs, err := Decode(sink.msgs[0].Data)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	return recs
}

func TestWireRoundTrip(t *testing.T) {
	e := fullEvent(11)
	recs := publishOne(t, e)
	require.Equal(t, &e, recs[0].Event)

	// A typed key whose stored value does not fit its type stays in Data,
	// as UnmarshalData keeps it, and goes through the stream as it is.
	odd := ev(12, "db-02")
	odd.Data = map[string]any{"scoring": "not an object", "template": map[string]any{"id": "x"}}
	recs = publishOne(t, odd)
	require.Equal(t, &odd, recs[0].Event)
	require.Nil(t, recs[0].Event.Scoring)
}

// TestWireCarriesEveryTypedResult fails when the event package gains a
// typed result that wireEvent does not carry beside Data.
func TestWireCarriesEveryTypedResult(t *testing.T) {
	carried := []string{"alert", "asset", "scoring", "template"}
	keys := event.TypedDataKeys()
	slices.Sort(keys)
	require.Equal(t, carried, keys, "add the new typed result to processed.wireEvent, encodeEvent and Decode")

	// And each is carried: an event with all of them survives.
	e := fullEvent(13)
	doc, err := e.MarshalData()
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc, &m))
	for _, k := range keys {
		require.Contains(t, m, k, "fullEvent must set every typed result")
	}
	require.Equal(t, &e, publishOne(t, e)[0].Event)
}

// TestDecodeVersion1 reads a message a reflex before version 2 wrote
// (event_data as MarshalData lays it out, typed results inside), as one
// still in the stream after an upgrade.
func TestDecodeVersion1(t *testing.T) {
	e := fullEvent(21)
	doc, err := e.MarshalData()
	require.NoError(t, err)
	cols, err := json.Marshal(columns(&e))
	require.NoError(t, err)
	evJSON := strings.TrimSuffix(string(cols), "}") + `,"event_data":` + string(doc) + `}`
	msg := `{"v":1,"partition":4,"records":[{"kind":"new","raw_event_id":21,"event_id":21,"occurrence_count":1,` +
		`"last_seen_at":"` + e.LastSeenAt.Format("2006-01-02T15:04:05.999999999Z07:00") + `","event":` + evJSON + `},` +
		`{"kind":"repeat","raw_event_id":22,"event_id":21,"occurrence_count":2,"last_seen_at":"` +
		e.LastSeenAt.Format("2006-01-02T15:04:05.999999999Z07:00") + `"}]}`
	part, recs, err := Decode([]byte(msg))
	require.NoError(t, err)
	require.Equal(t, 4, part)
	require.Len(t, recs, 2)
	require.Equal(t, &e, recs[0].Event)
	require.Equal(t, KindRepeat, recs[1].Kind)
	require.Nil(t, recs[1].Event)
}

// decodeStd decodes a version 2 message with encoding/json, as Decode did
// before it used goccy/go-json.
func decodeStd(t *testing.T, data []byte) message {
	t.Helper()
	var m message
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// FuzzDecodeMatchesEncodingJSON holds Decode's JSON library to
// encoding/json's results on what Publisher writes: an event with any
// event_data document and any text in its fields.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	f.Add(`{"metadata":{"cpu_usage":97.5,"note":"<b>"},"labels":["a","b"]}`, "CPU at 97%", "db-01", "disk <*> full")
	f.Add(`{"n":1e300,"m":-0.0,"s":"\u2028\ud83d\ude00","nested":{"a":[null,true,{"b":[]}]}}`, "\x00\xff", "", "")
	f.Add(`{"scoring":"not an object","asset":{"x":1}}`, "t", "h", "<*> x")
	f.Add(`{}`, "", "h", "")
	f.Fuzz(func(t *testing.T, data, title, host, tmpl string) {
		var doc map[string]any
		if json.Unmarshal([]byte(data), &doc) != nil {
			return
		}
		e := fullEvent(31)
		e.Data, e.Title, e.SourceHost = doc, title, host
		e.Template.Text = tmpl
		sink := newSink(1)
		p, err := NewPublisher(PublisherOptions{Sink: sink, Store: &fakeReader{}})
		require.NoError(t, err)
		require.NoError(t, p.Stored(context.Background(), &store.Batch{Raw: []event.Raw{raw(e.ID, e.ID)}, New: []event.Event{e}}))
		for _, msg := range sink.msgs {
			want := decodeStd(t, msg.Data)
			var got message
			require.NoError(t, gojson.Unmarshal(msg.Data, &got))
			require.Equal(t, want, got)
			_, recs, err := Decode(msg.Data)
			require.NoError(t, err)
			for _, r := range recs {
				if r.Event != nil && !r.Truncated {
					require.Equal(t, want.Records[0].Event.Data, r.Event.Data)
				}
			}
		}
	})
}
