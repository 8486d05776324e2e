package processed

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// benchBatch is a store batch like the load generator's: n raw events over
// 1,000 hosts, a tenth of them repeats of events of earlier batches.
func benchBatch(base int64, n int) *store.Batch {
	sb := &store.Batch{}
	for i := 0; i < n; i++ {
		id := base + int64(i)
		if i%10 == 9 {
			sb.Raw = append(sb.Raw, raw(id, int64(i%1000)+1))
			sb.Repeats = append(sb.Repeats, store.Repeat{EventID: int64(i%1000) + 1, OccurrenceCount: 2, LastSeenAt: t0})
			continue
		}
		e := ev(id, fmt.Sprintf("host-%03d", i%1000))
		e.Description = "CPU usage exceeded 95% on the host for five minutes"
		e.Data = map[string]any{"metadata": map[string]any{"cpu_usage": 97.5, "threshold": 95.0, "duration": "5m"},
			"asset": map[string]any{"criticality": "high", "team": "web"}}
		sb.New = append(sb.New, e)
		sb.Raw = append(sb.Raw, raw(id, id))
	}
	return sb
}

type nopSink struct{}

func (nopSink) Partitions() int   { return event.DefaultPartitions }
func (nopSink) MaxPayload() int64 { return 1 << 20 }
func (nopSink) Publish(context.Context, []bus.ProcessedMessage) (int, error) {
	return 0, nil
}

// BenchmarkStoredEncode measures the publisher's CPU work per batch of
// 1,000 events (records, encoding, packing), without the publish itself.
func BenchmarkStoredEncode(b *testing.B) {
	rd := &fakeReader{events: map[int64]event.Event{}}
	for i := int64(1); i <= 1000; i++ {
		rd.events[i] = ev(i, fmt.Sprintf("host-%03d", i-1))
	}
	p, err := NewPublisher(PublisherOptions{Sink: nopSink{}, Store: rd})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := p.Stored(ctx, benchBatch(int64(10000+i*1000), 1000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

// BenchmarkStoredEmbedded publishes batches of 1,000 events on the
// embedded server (fsync on every write), with one consumer's durable so
// that messages are kept.
func BenchmarkStoredEmbedded(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bs, err := bus.Open(ctx, bus.Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	ps, err := bs.OpenProcessed(ctx, bus.ProcessedOptions{MaxBytes: 8 << 30})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ps.Consumer(ctx, bus.ProcessedConsumerOptions{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	rd := &fakeReader{events: map[int64]event.Event{}}
	for i := int64(1); i <= 1000; i++ {
		rd.events[i] = ev(i, fmt.Sprintf("host-%03d", i-1))
	}
	p, err := NewPublisher(PublisherOptions{Sink: ps, Store: rd})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if err := p.Stored(ctx, benchBatch(int64(10000+i*1000), 1000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}
