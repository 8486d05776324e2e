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

// decodeBenchMessages returns the messages the publisher makes of a batch
// of 1,000 events like a webhook's after the pipeline: metadata, the
// asset, the scoring factors and the log template in event_data.
func decodeBenchMessages(b *testing.B) [][]byte {
	b.Helper()
	sb := benchBatch(10000, 1000)
	for i := range sb.New {
		e := &sb.New[i]
		e.SourceService = "nginx"
		e.CorrelationID = "00015731-9de8-80b0-8500-7265666c6578"
		e.Fingerprint = "5a1604e440faa4fd"
		delete(e.Data, "asset")
		e.Asset = &event.Asset{Criticality: "high", Team: "web", Service: "nginx"}
		e.Scoring = &event.Scoring{Priority: 85, Severity: event.Critical, SourceSeverity: event.Critical,
			Factors: []event.ScoringFactor{
				{Factor: "source_severity", Reason: "source severity critical", Weight: 70},
				{Factor: "asset_criticality", Reason: "asset criticality high", Weight: 10},
				{Factor: "correlation", Reason: "one of several events on " + e.SourceHost + " within the correlation window", Weight: 5},
			}}
		e.Template = &event.Template{ID: 7, Text: "threshold_breach on host-<*>: value <*> above threshold (<*>)"}
	}
	sink := newSink(event.DefaultPartitions)
	rd := &fakeReader{events: map[int64]event.Event{}}
	for i := int64(1); i <= 1000; i++ {
		rd.events[i] = sb.New[0]
	}
	p, err := NewPublisher(PublisherOptions{Sink: sink, Store: rd})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Stored(context.Background(), sb); err != nil {
		b.Fatal(err)
	}
	var msgs [][]byte
	for _, m := range sink.msgs {
		msgs = append(msgs, m.Data)
	}
	return msgs
}

// BenchmarkDecode measures decoding the processed stream: what each
// downstream consumer (rules, anomaly monitor, incident engine) pays per
// event it reads.
func BenchmarkDecode(b *testing.B) {
	msgs := decodeBenchMessages(b)
	size := 0
	for _, m := range msgs {
		size += len(m)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, m := range msgs {
			_, recs, err := Decode(m)
			if err != nil {
				b.Fatal(err)
			}
			n += len(recs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
}
