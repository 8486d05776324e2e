package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// Workload makes batches that look like what the pipeline writes, for the
// write benchmarks: events of Hosts hosts with the seed's webhook payload as
// raw data and an enriched, scored event_data (about 0.8 KB per event in
// all); of each batch's raw events, 5% are repeats folded into an event of
// the previous batch, and 10% of the new events join a time-based
// correlation group whose row the batch upserts.
type Workload struct {
	// Hosts is the host cardinality (default 1,000).
	Hosts int
	// Now is the receipt time of the next batch; each batch advances it
	// by 50 ms. The zero value starts at the current time.
	Now time.Time

	rng    *rand.Rand
	prev   []event.Event
	groups map[string]*event.Correlation
	n      int
}

var (
	benchSeverities = []event.Severity{event.Info, event.Info, event.Low, event.Low, event.Medium, event.Medium, event.High, event.Critical}
	benchServices   = []string{"nginx", "postgres", "redis", "api", "kafka", "node-exporter"}
	benchTypes      = []string{"threshold_breach", "service_down", "log_error", "latency", "disk_usage"}
	benchSources    = []string{"prometheus", "nagios", "zabbix", "datadog"}
)

// Next returns a batch of size raw events.
func (w *Workload) Next(size int) *store.Batch {
	if w.rng == nil {
		w.rng = rand.New(rand.NewPCG(1, 2))
		w.groups = map[string]*event.Correlation{}
		if w.Hosts <= 0 {
			w.Hosts = 1000
		}
		if w.Now.IsZero() {
			w.Now = time.Now().UTC()
		}
	}
	now := w.Now.Truncate(time.Microsecond)
	w.Now = w.Now.Add(50 * time.Millisecond)
	base := idAt(now)
	b := &store.Batch{Raw: make([]event.Raw, 0, size), New: make([]event.Event, 0, size)}
	touched := map[string]bool{}
	var next []event.Event
	for i := range size {
		w.n++
		host := fmt.Sprintf("web-server-%04d", w.rng.IntN(w.Hosts))
		sev := benchSeverities[w.rng.IntN(len(benchSeverities))]
		svc := benchServices[w.rng.IntN(len(benchServices))]
		typ := benchTypes[w.rng.IntN(len(benchTypes))]
		src := benchSources[w.rng.IntN(len(benchSources))]
		cpu := 80 + w.rng.Float64()*20
		msg := fmt.Sprintf("CPU usage exceeded %.0f%% on %s", cpu, host)
		raw, _ := json.Marshal(map[string]any{
			"source": src, "event_type": typ, "severity": string(sev), "host": host, "service": svc,
			"message": msg, "timestamp": now.Add(-2 * time.Second).Format(time.RFC3339),
			"metadata": map[string]any{"cpu_usage": cpu, "threshold": 95.0, "duration": "5m"},
		})
		id := base + int64(i)
		r := event.Raw{ID: id, SourceSystem: src, SourceType: event.SourceWebhook, Data: raw, ReceivedAt: now, Processed: true}
		if len(w.prev) > 0 && w.rng.IntN(20) == 0 {
			kept := w.prev[w.rng.IntN(len(w.prev))]
			r.ProcessedEventID = kept.ID
			b.Raw = append(b.Raw, r)
			b.Repeats = append(b.Repeats, store.Repeat{EventID: kept.ID, OccurredAt: kept.OccurredAt, OccurrenceCount: 2, LastSeenAt: now})
			continue
		}
		r.ProcessedEventID = id
		b.Raw = append(b.Raw, r)
		e := event.Event{
			ID: id, RawEventID: id, EventType: typ, Severity: sev, SourceSystem: src,
			SourceType: event.SourceWebhook, SourceHost: host, SourceService: svc, Title: msg,
			Description: "CPU usage exceeded the threshold of 95% for 5m",
			Data: map[string]any{
				"metadata": map[string]any{"cpu_usage": cpu, "threshold": 95.0, "duration": "5m"},
				"asset": map[string]any{"environment": "production", "criticality": "high", "owner": "web-team",
					"team": "web", "service": svc, "dependencies": []string{"db-01", "cache-01"}},
				"scoring": map[string]any{"priority": 72, "reasons": []string{"source severity " + string(sev), "asset criticality high"}},
			},
			Tags:       []string{"env:production", "team:web", "criticality:high"},
			OccurredAt: now.Add(-2 * time.Second), ReceivedAt: now, ProcessedAt: now,
			OccurrenceCount: 1, LastSeenAt: now, Priority: 72,
		}
		e.Fingerprint = event.Fingerprint(&e)
		if w.rng.IntN(10) == 0 {
			g, ok := w.groups[host]
			if !ok || len(g.RelatedEventIDs) >= 20 {
				u, _ := uuid.NewV7()
				g = &event.Correlation{CorrelationID: u.String(), Type: event.CorrelationTimeBased,
					PrimaryEventID: id, Reason: "events on " + host + " within 5m", CreatedAt: now}
				w.groups[host] = g
			}
			g.RelatedEventIDs = append(g.RelatedEventIDs, id)
			g.Score = min(0.99, 0.2+0.1*float64(len(g.RelatedEventIDs)))
			e.CorrelationID = g.CorrelationID
			touched[host] = true
		}
		b.New = append(b.New, e)
		next = append(next, e)
	}
	for h := range touched {
		g := *w.groups[h]
		g.RelatedEventIDs = append([]int64(nil), g.RelatedEventIDs...)
		b.Correlations = append(b.Correlations, g)
	}
	// Repeats are per event: the latest total wins.
	seen := map[int64]int{}
	var reps []store.Repeat
	for _, r := range b.Repeats {
		if i, ok := seen[r.EventID]; ok {
			reps[i].OccurrenceCount++
			continue
		}
		seen[r.EventID] = len(reps)
		reps = append(reps, r)
	}
	b.Repeats = reps
	w.prev = next
	return b
}

// BenchWriteBatch measures s.WriteBatch with batches of 1,000 raw events
// over 1,000 hosts, from lanes goroutines at once, and reports events/s
// (raw events written per second). The batches are made before the clock
// starts.
func BenchWriteBatch(b *testing.B, s store.EventStore, lanes int) {
	const size = 1000
	ctx := context.Background()
	start := time.Now().UTC()
	work := make([][]*store.Batch, lanes)
	for i := range work {
		w := &Workload{Hosts: 1000, Now: start.Add(time.Duration(i) * time.Millisecond)}
		// Warm up: the first batches create partitions and caches.
		if err := s.WriteBatch(ctx, w.Next(size)); err != nil {
			b.Fatal(err)
		}
		for j := i; j < b.N; j += lanes {
			work[i] = append(work[i], w.Next(size))
		}
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, lanes)
	for _, batches := range work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, bt := range batches {
				if err := s.WriteBatch(ctx, bt); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}
