package monitor

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/derived"
	"github.com/reflex-ops/reflex/internal/processed"
)

// BenchmarkHandle counts records of 1,000 hosts, 10 services and 5 event
// types, each with a metadata number, one second apart: the monitor's
// cost per record on the processed stream, intervals closing included.
func BenchmarkHandle(b *testing.B) {
	m, err := New(Options{Sink: derived.Discard, Now: func() time.Time { return t0.Add(1000 * time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 100
	recs := make([]processed.Record, batch)
	hosts := make([]string, 1000)
	for i := range hosts {
		hosts[i] = "host-" + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for range b.N / batch {
		for k := range recs {
			n++
			r := rec(int64(n), t0.Add(time.Duration(n)*10*time.Millisecond), hosts[n%len(hosts)], map[string]any{"cpu_usage": json.Number(strconv.Itoa(n % 97))})
			r.Event.SourceService = "svc-" + strconv.Itoa(n%10)
			r.Event.EventType = "type-" + strconv.Itoa(n%5)
			recs[k] = r
		}
		if err := m.Handle(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
