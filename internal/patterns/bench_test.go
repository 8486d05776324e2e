package patterns

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/store"
)

// nopStore stores nothing.
type nopStore struct{}

func (nopStore) CreatePattern(_ context.Context, p store.EventPattern) (store.EventPattern, error) {
	return p, nil
}
func (nopStore) Patterns(context.Context, store.PatternQuery) ([]store.EventPattern, error) {
	return nil, nil
}
func (nopStore) RecentEvents(context.Context, time.Time, int) ([]event.Event, error) { return nil, nil }

// BenchmarkProcess runs the learner over batches of 1,000 events of 1,000
// hosts, six templates, a host's events 1 s apart, so that each event
// meets a full window.
func BenchmarkProcess(b *testing.B) {
	l, err := New(context.Background(), Options{Store: nopStore{}, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	evs := make([]*event.Event, 1000)
	hosts := make([]string, len(evs))
	for j := range hosts {
		hosts[j] = fmt.Sprintf("host-%04d", j)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(time.Second)
		for j := range evs {
			evs[j] = &event.Event{ID: int64(i*1000 + j + 1), SourceType: event.SourceWebhook, SourceHost: hosts[j],
				ReceivedAt: at, Template: &event.Template{ID: int64(1 + (i+j)%6)}}
		}
		if err := l.Process(ctx, &pipeline.Batch{Now: at, Events: evs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
