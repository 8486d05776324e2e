package webhook

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzDecode checks that Decode never panics and keeps its contract on any
// input: every event is either accepted or rejected, accepted data is valid,
// storable JSON that Parse reads back the same way and whose event data
// round-trips through MarshalData and UnmarshalData, and whole-body failures
// wrap one of the three sentinels.
func FuzzDecode(f *testing.F) {
	f.Add("application/json", []byte(`{"source":"monitoring_system_name","event_type":"threshold_breach","severity":"critical","host":"web-server-01","service":"nginx","message":"CPU usage exceeded 95%","timestamp":"2024-12-20T10:30:00Z","metadata":{"cpu_usage":97.5,"threshold":95.0,"duration":"5m"}}`))
	f.Add("application/x-ndjson", []byte("{\"message\":\"a\"}\n\n{\"message\":\"b\",\"severity\":3}\n"))
	f.Add("", []byte(`[{"message":"a"},1,{"message":""}]`))
	f.Add("application/json", []byte(`[`))
	f.Add("application/json", []byte(`[{"message":"a","metadata":{"v":1e308}},{"message":"b","metadata":{"v":[1e309]}}]`))
	const maxEvents, maxEventBytes = 50, 4096
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		items, rejects, err := Decode(contentType, body, Options{MaxEvents: maxEvents, MaxEventBytes: maxEventBytes})
		if err != nil {
			n := 0
			for _, s := range []error{ErrBadRequest, ErrUnsupportedMediaType, ErrEventTooLarge} {
				if errors.Is(err, s) {
					n++
				}
			}
			require.Equal(t, 1, n, "err wraps exactly one sentinel: %v", err)
			require.Nil(t, items)
			require.Nil(t, rejects)
			require.True(t, utf8.ValidString(err.Error()) || !utf8.Valid(body) || !utf8.ValidString(contentType))
			return
		}
		total := len(items) + len(rejects)
		require.Positive(t, total)
		require.LessOrEqual(t, total, maxEvents)
		seen := make(map[int]bool)
		for _, r := range rejects {
			require.GreaterOrEqual(t, r.Index, 0)
			require.Less(t, r.Index, total)
			require.False(t, seen[r.Index], "one reject per event")
			seen[r.Index] = true
			require.NotEmpty(t, r.Reason)
			require.True(t, utf8.ValidString(r.Field), "field %q", r.Field)
		}
		for _, it := range items {
			require.True(t, json.Valid(it.Data))
			require.LessOrEqual(t, len(it.Data), maxEventBytes)
			require.True(t, utf8.Valid(it.Data))
			require.Nil(t, checkStorable(it.Data))
			require.True(t, it.Severity.Valid())
			require.NotEmpty(t, it.SourceSystem)
			p, err := Parse(it.Data)
			require.NoError(t, err)
			require.Equal(t, it.Severity, p.Severity)
			require.Equal(t, it.SourceSystem, p.Source)
			// The store can keep it and read it back (issue 5 §1.1).
			requireDataRoundTrip(t, it.Data)
			require.NotEmpty(t, p.Message)
			require.LessOrEqual(t, utf8.RuneCountInString(p.Host), MaxHostLen)
			require.LessOrEqual(t, utf8.RuneCountInString(p.Title), MaxTitleLen)
			// The wire form Payload writes parses back to the same event.
			b, err := json.Marshal(p)
			require.NoError(t, err)
			q, err := Parse(b)
			require.NoError(t, err)
			require.Equal(t, p.Severity, q.Severity)
			require.Equal(t, p.Message, q.Message)
			require.True(t, p.Timestamp.Equal(q.Timestamp))
			require.Equal(t, p.Tags, q.Tags)
		}
	})
}
