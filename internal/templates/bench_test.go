package templates

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/store"
)

// memStore is a TemplateStore in memory, for the benchmark: what the
// stage costs without the database.
type memStore struct {
	pairs map[pairKey]bool
}

func (m *memStore) PutTemplates(context.Context, []store.LogTemplate) error { return nil }
func (m *memStore) AllTemplates(context.Context) ([]store.LogTemplate, error) {
	return nil, nil
}
func (m *memStore) AddTemplateHosts(_ context.Context, ps []store.TemplateHost) ([]store.TemplateHost, error) {
	var out []store.TemplateHost
	for _, p := range ps {
		if k := (pairKey{p.Host, p.TemplateID}); !m.pairs[k] {
			m.pairs[k] = true
			out = append(out, p)
		}
	}
	return out, nil
}
func (m *memStore) HostsFirstSeen(context.Context, []string) (map[string]time.Time, error) {
	return nil, nil
}

// BenchmarkProcess runs the stage over batches of 1,000 events shaped as
// reflex loadgen's (1,000 hosts, six event types, a unique word each),
// warm: every (host, template) pair already known.
func BenchmarkProcess(b *testing.B) {
	st, err := New(context.Background(), Options{Store: &memStore{pairs: map[pairKey]bool{}}})
	if err != nil {
		b.Fatal(err)
	}
	types := []string{"cpu_high", "memory_high", "disk_full", "service_down", "latency_high", "error_rate"}
	batch := func(seq int) []*event.Event {
		evs := make([]*event.Event, 1000)
		for i := range evs {
			host := i % 1000
			evs[i] = &event.Event{ID: int64(seq*1000 + i + 1), SourceType: event.SourceWebhook, SourceHost: fmt.Sprintf("host-%04d", host), OccurrenceCount: 1,
				Message: fmt.Sprintf("%s on host-%04d: value %d above threshold (%s)", types[host%6], host, 90+i%10, fmt.Sprintf("w%dx", seq*1000+i))}
			evs[i].Message = evs[i].Message[:len(evs[i].Message)-1] + "q)"
		}
		return evs
	}
	now := time.Now()
	ctx := context.Background()
	if err := st.Process(ctx, &pipeline.Batch{Now: now, Events: batch(0)}); err != nil {
		b.Fatal(err)
	}
	batches := make([][]*event.Event, 8)
	for i := range batches {
		batches[i] = batch(i + 1)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs := batches[i%len(batches)]
		for _, e := range evs {
			e.Template = nil
		}
		if err := st.Process(ctx, &pipeline.Batch{Now: now, Events: evs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
