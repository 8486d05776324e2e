package webhook

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchBody is a webhook array of n seed-like events.
func benchBody(n int) []byte {
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = map[string]any{
			"source":     "prometheus",
			"event_type": "threshold_breach",
			"severity":   []string{"critical", "warning", "info", "error"}[i%4],
			"host":       fmt.Sprintf("web-server-%03d", i%50),
			"service":    "nginx",
			"message":    fmt.Sprintf("CPU usage exceeded 95%% (%d)", i),
			"timestamp":  "2026-11-01T10:30:00.123Z",
			"metadata":   map[string]any{"cpu_usage": 97.5, "threshold": 95.0, "duration": "5m"},
			"tags":       []string{"prod", "web"},
		}
	}
	b, err := json.Marshal(events)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecode decodes a 100-event array, the load generator's batch.
func BenchmarkDecode(b *testing.B) {
	const n = 100
	body := benchBody(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		items, rejects, err := Decode("application/json", body, Options{})
		if err != nil || len(items) != n || len(rejects) != 0 {
			b.Fatalf("decode: %d items, %d rejects, %v", len(items), len(rejects), err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}
