package metrics

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/normalize"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestNormalizeGolden maps each testdata/golden/<case>.notice (an intake
// item's Data as the store submits it) to the event beside it in
// <case>.json, after normalize.Clean.
func TestNormalizeGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.notice")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	received := time.Date(2026, 3, 2, 10, 5, 1, 0, time.UTC)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".notice")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			var buf bytes.Buffer
			require.NoError(t, json.Compact(&buf, data))
			raw := &event.Raw{ID: event.IDAt(received), SourceSystem: "metrics", SourceType: event.SourceMetrics, Data: buf.Bytes(), ReceivedAt: received}
			d, err := Normalizer{}.Normalize(raw)
			require.NoError(t, err)
			normalize.Clean(d, raw, received.Add(time.Millisecond), 90*24*time.Hour, time.Hour)
			got, err := json.MarshalIndent(d.Event, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".notice") + ".json"
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o600))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

func TestNormalizeErrors(t *testing.T) {
	for _, data := range []string{`{`, `{"name":"x"}`, `{"name":"x","key":"k","status":"pending"}`} {
		_, err := Normalizer{}.Normalize(&event.Raw{Data: json.RawMessage(data)})
		require.Error(t, err, data)
	}
}

// TestNoticeRoundTrip checks that what the store submits is what the
// normalizer reads.
func TestNoticeRoundTrip(t *testing.T) {
	s, rec, clk := newStore(t, strings.Replace(rulesYAML, "for: 5m", "for: 0s", 1), Options{})
	clk.set(t0)
	_, err := s.Append([]Series{load("web-01:9100", "node", t0, 7)})
	require.NoError(t, err)
	rec.wait(t, 1)
	rec.mu.Lock()
	it := rec.items[0]
	rec.mu.Unlock()
	require.Equal(t, "metrics", it.SourceSystem)
	require.Equal(t, "web-01", it.Host)
	require.Equal(t, event.High, it.Severity)
	d, err := Normalizer{}.Normalize(&event.Raw{SourceSystem: it.SourceSystem, Data: it.Data})
	require.NoError(t, err)
	require.Equal(t, "HighLoad", d.Event.EventType)
	require.Equal(t, event.AlertFiring, d.Event.Alert.Status)
	require.Equal(t, t0, d.Timestamp)
}
