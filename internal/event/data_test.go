package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// typedSamples has, for each typed result, an event with every field of
// that result set.
var typedSamples = map[string]func(e *Event){
	DataAsset: func(e *Event) {
		e.Asset = &Asset{Criticality: "critical", Dependencies: []string{"db-01", "cache-01"}, Environment: "production",
			Owner: "alice@example.com", Service: "nginx", Team: "web & ops"}
	},
	DataScoring: func(e *Event) {
		e.Scoring = &Scoring{Priority: 88, Severity: Critical, SourceSeverity: High, Factors: []ScoringFactor{
			{Factor: "source_severity", Reason: "source severity high", Weight: 65},
			{Factor: "asset_criticality", Reason: "asset <web> is critical", Weight: 15},
		}}
	},
	DataAlert: func(e *Event) {
		at, end := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 3, 5, 0, 0, time.UTC)
		e.Alert = &Alert{Key: "HighLoad/instance=web-01:9100", Status: AlertResolved, StartsAt: &at, EndsAt: &end}
	},
	DataTemplate: func(e *Event) {
		e.Template = &Template{ID: 42, Text: "connection from <*> closed & <reset>"}
	},
}

// asMaps is e as the stages left it before their results were typed: each
// typed result a map[string]any in Data, and the typed fields nil.
func asMaps(t *testing.T, e Event) Event {
	t.Helper()
	out := e
	out.Asset, out.Scoring, out.Template, out.Alert = nil, nil, nil, nil
	out.Data = make(map[string]any)
	for k, v := range e.Data {
		out.Data[k] = v
	}
	for _, f := range dataFields {
		v, ok := f.encode(&e)
		if !ok {
			continue
		}
		b, err := json.Marshal(v)
		require.NoError(t, err)
		var m any
		require.NoError(t, json.Unmarshal(b, &m))
		out.Data[f.key] = m
	}
	return out
}

// plainEvent is Event without its methods: how encoding/json wrote an
// event before Event had a MarshalJSON.
type plainEvent Event

func sampleEvent() Event {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	e := Event{ID: 7, RawEventID: 7, EventType: "threshold_breach", Severity: Critical, SourceSystem: "mon",
		SourceType: SourceWebhook, SourceHost: "web-01", Title: "CPU <95%> & rising", Tags: []string{"escalated"},
		OccurredAt: at, ReceivedAt: at, ProcessedAt: at, LastSeenAt: at, OccurrenceCount: 2, Priority: 88,
		Data: map[string]any{"metadata": map[string]any{"cpu": json.Number("97.5"), "note": "<b> & \u2028"}, "message": "m"}}
	for _, set := range typedSamples {
		set(&e)
	}
	return e
}

// TestTypedSamples makes sure every typed result has a sample, so that the
// tests below cover a result added later.
func TestTypedSamples(t *testing.T) {
	require.Len(t, typedSamples, len(dataFields))
	for _, f := range dataFields {
		require.Contains(t, typedSamples, f.key)
		var e Event
		typedSamples[f.key](&e)
		_, ok := f.encode(&e)
		require.True(t, ok, f.key)
	}
}

// TestMarshalDataAsMaps: a typed result is encoded to the same bytes as
// the map[string]any it replaced (keys in the same order), alone and with
// other data.
func TestMarshalDataAsMaps(t *testing.T) {
	for key, set := range typedSamples {
		t.Run(key, func(t *testing.T) {
			var e Event
			set(&e)
			want, err := json.Marshal(asMaps(t, e).Data)
			require.NoError(t, err)
			got, err := e.MarshalData()
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
	e := sampleEvent()
	want, err := json.Marshal(asMaps(t, e).Data)
	require.NoError(t, err)
	got, err := e.MarshalData()
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	require.NotContains(t, e.Data, DataAsset, "MarshalData does not change the event")
}

// TestMarshalJSONAsBefore: the JSON of an event (the API's answers) is the
// same as encoding/json wrote for the event with its results in Data, with
// and without HTML escaping, alone, by pointer and in a slice.
func TestMarshalJSONAsBefore(t *testing.T) {
	e := sampleEvent()
	old := plainEvent(asMaps(t, e))
	encode := func(v any, escape bool) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escape)
		require.NoError(t, enc.Encode(v))
		return buf.String()
	}
	for _, escape := range []bool{true, false} {
		want := encode(old, escape)
		require.Equal(t, want, encode(e, escape))
		require.Equal(t, want, encode(&e, escape))
		require.Equal(t, "["+strings.TrimSuffix(want, "\n")+"]\n", encode([]Event{e}, escape))
		require.Equal(t, "["+strings.TrimSuffix(want, "\n")+"]\n", encode([]*Event{&e}, escape))
	}
	require.Contains(t, encode(e, false), `"title":"CPU <95%> & rising"`)
	require.Contains(t, encode(e, true), `"title":"CPU \u003c95%\u003e \u0026 rising"`)
	want, err := json.MarshalIndent(old, "", "  ")
	require.NoError(t, err)
	got, err := json.MarshalIndent(e, "", "  ")
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	// Without typed results and without data.
	bare := Event{ID: 1, Title: "bare"}
	require.Equal(t, encode(plainEvent(bare), true), encode(bare, true))
	require.NotContains(t, encode(bare, true), "event_data")
}

// TestEventJSONRoundTrip: UnmarshalJSON puts the results back into their
// fields.
func TestEventJSONRoundTrip(t *testing.T) {
	e := sampleEvent()
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var got Event
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, e.Asset, got.Asset)
	require.Equal(t, e.Scoring, got.Scoring)
	require.NotContains(t, got.Data, DataAsset)
	require.NotContains(t, got.Data, DataScoring)
	require.Equal(t, "m", got.Data["message"])
	require.Equal(t, 97.5, got.Data["metadata"].(map[string]any)["cpu"], "numbers read back as float64")
	again, err := json.Marshal(got)
	require.NoError(t, err)
	require.Equal(t, string(b), string(again))

	var list []Event
	require.NoError(t, json.Unmarshal([]byte("["+string(b)+`,{"id":2}]`), &list))
	require.Len(t, list, 2)
	require.Equal(t, e.Scoring, list[0].Scoring)
	require.Nil(t, list[1].Scoring)
	require.Nil(t, list[1].Data)

	require.Error(t, json.Unmarshal([]byte(`{"id":3,"event_data":[1]}`), &got))
	require.Error(t, json.Unmarshal([]byte(`{"id":"x"}`), &got))
}

// TestUnmarshalDataStoredRows reads event_data rows as the stores kept them
// before the results were typed (testdata/event_data_stored.jsonl, written
// by that code): the results land in their fields, and MarshalData writes
// the same bytes again.
func TestUnmarshalDataStoredRows(t *testing.T) {
	rows, err := os.ReadFile(filepath.Join("testdata", "event_data_stored.jsonl"))
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSpace(rows), []byte("\n"))
	require.Len(t, lines, 5)
	for i, row := range lines {
		var e Event
		require.NoError(t, e.UnmarshalData(row), "row %d", i)
		require.NotNil(t, e.Scoring, "row %d", i)
		require.NotContains(t, e.Data, DataAsset)
		require.NotContains(t, e.Data, DataScoring)
		got, err := e.MarshalData()
		require.NoError(t, err)
		require.Equal(t, oldRoundTrip(t, row), string(got), "row %d", i)
		if !bytes.Contains(row, []byte(`"big"`)) {
			require.Equal(t, string(row), string(got), "row %d", i)
		}
	}

	var e Event
	require.NoError(t, e.UnmarshalData(lines[1]))
	require.Equal(t, &Asset{Criticality: "critical", Dependencies: []string{"db-01", "cache-01"}, Environment: "production",
		Owner: "alice@example.com", Service: "nginx", Team: "web & ops"}, e.Asset)
	require.Equal(t, 88, e.Scoring.Priority)
	require.Equal(t, Critical, e.Scoring.Severity)
	require.Equal(t, High, e.Scoring.SourceSeverity)
	require.Len(t, e.Scoring.Factors, 4)
	require.Equal(t, ScoringFactor{Factor: "occurrences", Reason: "occurred 2 times within the deduplication window", Weight: 3}, e.Scoring.Factors[2])
	require.Equal(t, "CPU <95%> & rising", e.Data["message"])

	// The same row as PostgreSQL's jsonb gives it back: other key order,
	// spaces. The results are the same; MarshalData writes the compact form.
	var pg Event
	require.NoError(t, pg.UnmarshalData([]byte(`{"asset": {"team": "web & ops", "owner": "alice@example.com", "service": "nginx", "criticality": "critical", "environment": "production", "dependencies": ["db-01", "cache-01"]}, "scoring": {"factors": [{"factor": "source_severity", "reason": "source severity high", "weight": 65}, {"factor": "asset_criticality", "reason": "asset web-server-01 is critical", "weight": 15}, {"factor": "occurrences", "reason": "occurred 2 times within the deduplication window", "weight": 3}, {"factor": "correlation", "reason": "dependent of open critical event 1 on a host this asset depends on", "weight": 5}], "priority": 88, "severity": "critical", "source_severity": "high"}, "message": "CPU <95%> & rising", "metadata": {"big": 12345678901234567890, "note": "<b>über</b> & \u2028 ✓", "nested": [true, null, "x"], "cpu_usage": 97.5, "threshold": 95}}`)))
	require.Equal(t, e, pg)
	got, err := pg.MarshalData()
	require.NoError(t, err)
	require.Equal(t, oldRoundTrip(t, lines[1]), string(got))
}

// oldRoundTrip is what the code before typed results wrote for row after
// reading it: the same bytes, but for numbers that float64 does not hold
// exactly (12345678901234567890 reads as 12345678901234567000).
func oldRoundTrip(t *testing.T, row []byte) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(row, &m))
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

// TestUnmarshalDataForeign: values under a typed key that the stages did
// not write (another shape, null, unknown keys) stay in Data as they are,
// so that nothing stored is lost and the row still reads.
func TestUnmarshalDataForeign(t *testing.T) {
	tests := []struct {
		name string
		row  string
	}{
		{"asset a string", `{"asset":"db"}`},
		{"asset null", `{"asset":null}`},
		{"asset an array", `{"asset":["db"]}`},
		{"criticality a number", `{"asset":{"criticality":5}}`},
		{"dependencies not strings", `{"asset":{"dependencies":["a",3]}}`},
		{"unknown key", `{"asset":{"criticality":"high","region":"eu"}}`},
		{"scoring of another shape", `{"scoring":{"priority":87.5,"reasons":["source severity critical"]}}`},
		{"factors not a list", `{"scoring":{"factors":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Event{ID: 9}
			require.NoError(t, e.UnmarshalData([]byte(tt.row)))
			require.Nil(t, e.Asset)
			require.Nil(t, e.Scoring)
			require.Len(t, e.Data, 1)
			got, err := e.MarshalData()
			require.NoError(t, err)
			require.Equal(t, tt.row, string(got))
		})
	}
	// A typed result that is set replaces a Data value under its key.
	e := Event{Data: map[string]any{DataAsset: "old", "x": 1.0}, Asset: &Asset{Team: "web"}}
	got, err := e.MarshalData()
	require.NoError(t, err)
	require.Equal(t, `{"asset":{"team":"web"},"x":1}`, string(got))
}

func TestUnmarshalDataEmpty(t *testing.T) {
	for _, row := range []string{``, `null`, `{}`} {
		var e Event
		require.NoError(t, e.UnmarshalData([]byte(row)), row)
		require.Nil(t, e.Data)
		require.Nil(t, e.Asset)
		require.Nil(t, e.Scoring)
		got, err := e.MarshalData()
		require.NoError(t, err)
		require.Nil(t, got)
	}
}

func TestUnmarshalDataErrors(t *testing.T) {
	tests := []struct {
		name, row string
		want      string
	}{
		{"not JSON", `{"a":`, `event: decode event_data of event 42: not a JSON object: unexpected end of JSON input`},
		{"array", `[1,2]`, `event: decode event_data of event 42: not a JSON object: json: cannot unmarshal array`},
		{"string", `"x"`, `event: decode event_data of event 42: not a JSON object: json: cannot unmarshal string`},
		{"trailing garbage", `{} x`, `event: decode event_data of event 42: not a JSON object: invalid character 'x'`},
		{"number out of range", `{"metadata":{"v":1e309}}`, `event: decode event_data of event 42: key "metadata": json: cannot unmarshal number 1e309`},
		{"the first bad key", `{"z":1e999,"b":-1e400,"asset":{"x":1e309}}`, `event: decode event_data of event 42: key "asset": json: cannot unmarshal number 1e309`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Event{ID: 42}
			err := e.UnmarshalData([]byte(tt.row))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
		})
	}
	e := Event{ID: 42}
	var typeErr *json.UnmarshalTypeError
	require.True(t, errors.As(e.UnmarshalData([]byte(`{"m":1e309}`)), &typeErr), "the json error is wrapped")

	bad := Event{ID: 43, Data: map[string]any{"v": func() {}}}
	_, err := bad.MarshalData()
	require.ErrorContains(t, err, "event: encode event_data of event 43: json: unsupported type")
}

// FuzzUnmarshalData: UnmarshalData never panics, and what it reads
// MarshalData writes and reads back, after which the encoding is stable.
// The seed corpus (testdata/fuzz/FuzzUnmarshalData) holds the stored rows
// of testdata/event_data_stored.jsonl, a PostgreSQL rendering, foreign
// shapes under the typed keys and rows that do not decode.
func FuzzUnmarshalData(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if e.UnmarshalData(b) != nil {
			return
		}
		data, err := e.MarshalData()
		require.NoError(t, err)
		var again Event
		require.NoError(t, again.UnmarshalData(data))
		data2, err := again.MarshalData()
		require.NoError(t, err)
		require.Equal(t, string(data), string(data2))
		require.Equal(t, e.Asset == nil, again.Asset == nil)
		require.Equal(t, e.Scoring == nil, again.Scoring == nil)
		require.Equal(t, len(e.Data), len(again.Data))
	})
}

// BenchmarkMarshalData compares the encoding of an event's data with typed
// results (typed) and with the same results as maps in Data (maps, as
// before they were typed).
func BenchmarkMarshalData(b *testing.B) {
	t := &testing.T{}
	typed := sampleEvent()
	maps := asMaps(t, typed)
	for name, e := range map[string]*Event{"typed": &typed, "maps": &maps} {
		b.Run("marshal/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.MarshalData(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	data, err := typed.MarshalData()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e Event
			if err := e.UnmarshalData(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal/as-map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
