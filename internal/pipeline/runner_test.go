package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/store"
)

// memStore is an in-memory Store for the tests over a real bus. It fails
// the test's expectations loudly: a raw event written twice is recorded in
// dups. (The synctest tests use pipelinetest.Store.)
type memStore struct {
	mu        sync.Mutex
	raw       map[int64]event.Raw
	processed map[int64]event.Event
	batches   int
	dups      []int64
}

func newMemStore() *memStore {
	return &memStore{raw: map[int64]event.Raw{}, processed: map[int64]event.Event{}}
}

func (s *memStore) WriteBatch(_ context.Context, b *store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range b.Raw {
		if _, ok := s.raw[r.ID]; ok {
			s.dups = append(s.dups, r.ID)
		}
		s.raw[r.ID] = r
	}
	for _, e := range b.New {
		s.processed[e.ID] = e
	}
	s.batches++
	return nil
}

func (s *memStore) StoredRawIDs(_ context.Context, ids []int64) (map[int64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]bool{}
	for _, id := range ids {
		if _, ok := s.raw[id]; ok {
			out[id] = true
		}
	}
	return out, nil
}

func (s *memStore) has(ids []int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.raw[id]; !ok {
			return false
		}
	}
	return true
}

// payload is the test's webhook body.
type payload struct {
	Host     string `json:"host"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// normalizer is a minimal Normalize stage: it reads payload, and rejects
// a message of "reject".
type normalizer struct {
	mu    sync.Mutex
	calls map[int64]int
}

func (n *normalizer) Process(_ context.Context, b *Batch) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.calls == nil {
		n.calls = map[int64]int{}
	}
	for _, r := range b.Raw {
		n.calls[r.ID]++
		var p payload
		if err := json.Unmarshal(r.Data, &p); err != nil || p.Message == "reject" {
			b.SetOutcome(r.ID, Outcome{Error: "cannot normalize"})
			continue
		}
		sev, _ := event.ParseSeverity(p.Severity)
		b.Events = append(b.Events, &event.Event{
			ID: r.ID, RawEventID: r.ID, SourceHost: p.Host, Title: p.Message, Severity: sev,
			SourceSystem: r.SourceSystem, SourceType: r.SourceType, OccurredAt: r.ReceivedAt,
			ReceivedAt: r.ReceivedAt, ProcessedAt: b.Now, OccurrenceCount: 1,
		})
	}
	return nil
}

func (n *normalizer) count(id int64) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[id]
}

// recorder is a partitioned stage that records the order in which it sees
// each host's events, checks that a sub-batch holds exactly its events' raw
// events, and drops events titled "drop".
type recorder struct {
	mu      sync.Mutex
	byHost  map[string][]int64
	err     error // returned once, then cleared
	calls   int
	badPart []string
}

func (s *recorder) Process(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		err := s.err
		s.err = nil
		return err
	}
	if s.byHost == nil {
		s.byHost = map[string][]int64{}
	}
	if len(b.Raw) != len(b.Events) {
		s.badPart = append(s.badPart, fmt.Sprintf("%d raws for %d events", len(b.Raw), len(b.Events)))
	}
	out := b.Events[:0]
	for i, e := range b.Events {
		if i < len(b.Raw) && b.Raw[i].ID != e.RawEventID {
			s.badPart = append(s.badPart, fmt.Sprintf("raw %d beside event %d", b.Raw[i].ID, e.RawEventID))
		}
		s.byHost[e.SourceHost] = append(s.byHost[e.SourceHost], e.ID)
		if e.Title == "drop" {
			b.SetOutcome(e.RawEventID, Outcome{Error: "rate_limited"})
			continue
		}
		out = append(out, e)
	}
	b.Events = out
	return nil
}

type rig struct {
	bus    *bus.Bus
	intake *intake.Intake
	store  *memStore
	norm   *normalizer
	rec    *recorder
	reg    *prometheus.Registry
}

func newRig(t *testing.T, maxEvents int) *rig {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	in, err := intake.New(intake.Options{Bus: b, IDs: event.NewIDGen(1, nil), MaxEventsPerMessage: maxEvents})
	require.NoError(t, err)
	return &rig{bus: b, intake: in, store: newMemStore(), norm: &normalizer{}, rec: &recorder{}, reg: prometheus.NewRegistry()}
}

// start runs a runner on lane until the test ends; stop cancels it and
// returns Run's error.
func (r *rig) start(t *testing.T, lane bus.Lane, co bus.ConsumeOptions, mod func(*RunnerOptions)) (stop func() error) {
	t.Helper()
	c, err := r.bus.Consume(context.Background(), lane, co)
	require.NoError(t, err)
	opts := RunnerOptions{
		Consumer: c, Lane: string(lane), Normalize: r.norm, Stages: r.rec, Workers: 4,
		Store: r.store, Registerer: r.reg, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond,
		Pipeline: testPipeline,
	}
	if mod != nil {
		mod(&opts)
	}
	runner, err := NewRunner(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			require.NoError(t, c.Close())
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func items(hosts []string, n int, sev event.Severity, msg func(i int) string) []intake.Item {
	out := make([]intake.Item, n)
	for i := range out {
		m := "event " + strconv.Itoa(i)
		if msg != nil {
			m = msg(i)
		}
		data, _ := json.Marshal(payload{Host: hosts[i%len(hosts)], Message: m, Severity: string(sev)})
		out[i] = intake.Item{SourceSystem: "test", Severity: sev, Data: data}
	}
	return out
}

func submit(t *testing.T, r *rig, it []intake.Item) []int64 {
	t.Helper()
	ids, err := r.intake.Submit(context.Background(), event.SourceWebhook, it)
	require.NoError(t, err)
	return ids
}

func waitStored(t *testing.T, r *rig, ids []int64) {
	t.Helper()
	require.Eventually(t, func() bool { return r.store.has(ids) }, 20*time.Second, 5*time.Millisecond)
}

func waitDrained(t *testing.T, b *bus.Bus, lanes ...bus.Lane) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, l := range lanes {
			n, err := b.Pending(context.Background(), l)
			if err != nil || n != 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 5*time.Millisecond, "every message acknowledged")
}

func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.Write(&d))
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	return d.Gauge.GetValue()
}

func TestRunnerStoresEachEventOnce(t *testing.T) {
	r := newRig(t, 7)
	var stored []event.Event
	var mu sync.Mutex
	locks := NewPartitionLocks(4)
	down := &recordingDownstream{stored: func(evs []event.Event) {
		mu.Lock()
		stored = append(stored, evs...)
		mu.Unlock()
	}}
	for _, lane := range bus.Lanes {
		r.start(t, lane, bus.ConsumeOptions{MaxBatch: 3}, func(o *RunnerOptions) {
			o.Locks, o.Workers, o.Downstream = locks, 0, down
		})
	}
	hosts := []string{"web-01", "web-02", "db-01", "cache-01", "lb-01"}
	var all []int64
	for i := 0; i < 10; i++ {
		sev := event.Info
		if i%3 == 0 {
			sev = event.Critical
		}
		all = append(all, submit(t, r, items(hosts, 23, sev, func(j int) string {
			switch j {
			case 5:
				return "reject"
			case 6:
				return "drop"
			}
			return "event " + strconv.Itoa(j)
		}))...)
	}
	waitStored(t, r, all)
	waitDrained(t, r.bus, bus.Lanes...)

	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	require.Empty(t, r.store.dups, "no raw event stored twice")
	require.Len(t, r.store.raw, len(all))
	require.Empty(t, r.rec.badPart)
	for _, id := range all {
		raw := r.store.raw[id]
		require.True(t, raw.Processed)
		var p payload
		require.NoError(t, json.Unmarshal(raw.Data, &p))
		switch p.Message {
		case "reject":
			require.Equal(t, []string{"cannot normalize"}, raw.ProcessingErrors)
			require.Zero(t, raw.ProcessedEventID)
		case "drop":
			require.Equal(t, []string{"rate_limited"}, raw.ProcessingErrors)
			require.NotContains(t, r.store.processed, id)
		default:
			require.Empty(t, raw.ProcessingErrors)
			require.Equal(t, id, raw.ProcessedEventID)
			require.Equal(t, p.Host, r.store.processed[id].SourceHost)
		}
	}
	mu.Lock()
	require.Len(t, stored, len(r.store.processed), "Downstream saw every new event once")
	mu.Unlock()
	for _, id := range all {
		require.Equal(t, 1, r.norm.count(id), "raw event %d normalized once", id)
	}

	m, err := newRunnerMetrics(r.reg, "lo")
	require.NoError(t, err)
	require.InDelta(t, float64(len(all)), metricValue(t, m.processedTotal.WithLabelValues("webhook")), 0)
	require.Positive(t, metricValue(t, m.latency.(prometheus.Metric)))
}

func TestRunnerKeepsHostOrder(t *testing.T) {
	r := newRig(t, 7)
	r.start(t, bus.LaneLo, bus.ConsumeOptions{MaxBatch: 4}, nil)
	hosts := []string{"a", "b", "c", "d", "e", "f"}
	var all []int64
	for i := 0; i < 20; i++ {
		all = append(all, submit(t, r, items(hosts, 31, event.Low, nil))...)
	}
	waitStored(t, r, all)

	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	total := 0
	for host, ids := range r.rec.byHost {
		total += len(ids)
		for i := 1; i < len(ids); i++ {
			require.Less(t, ids[i-1], ids[i], "host %s: events in intake order", host)
		}
	}
	require.Equal(t, len(all), total)
	require.Empty(t, r.rec.badPart)
}

func TestRunnerSkipsReplays(t *testing.T) {
	r := newRig(t, 100)
	reg := r.reg
	r.start(t, bus.LaneLo, bus.ConsumeOptions{MaxBatch: 8, Linger: 50 * time.Millisecond}, nil)
	ctx := context.Background()

	// An envelope whose first two events are already stored (a batch that
	// was stored but not acknowledged before a crash).
	env := intake.Envelope{Version: 1, BaseID: event.NewIDGen(9, nil).Next(4), ReceivedAt: time.Now(), SourceType: event.SourceWebhook}
	for i := 0; i < 4; i++ {
		data, _ := json.Marshal(payload{Host: "h", Message: "m" + strconv.Itoa(i), Severity: "low"})
		env.Events = append(env.Events, intake.Item{SourceSystem: "test", Severity: event.Low, Data: data})
	}
	raws := env.Raw()
	require.NoError(t, r.store.WriteBatch(ctx, &store.Batch{Raw: raws[:2]}))
	data, err := json.Marshal(env)
	require.NoError(t, err)

	// The same envelope three times under different message ids (published
	// again after the duplicate window), two of them in one batch.
	msgs := []bus.Message{
		{Lane: bus.LaneLo, MsgID: strconv.FormatInt(env.BaseID, 10), Data: data},
		{Lane: bus.LaneLo, MsgID: "again-1", Data: data},
	}
	require.NoError(t, r.bus.PublishBatch(ctx, msgs))
	var ids []int64
	for _, rw := range raws {
		ids = append(ids, rw.ID)
	}
	waitStored(t, r, ids)
	waitDrained(t, r.bus, bus.LaneLo)
	require.NoError(t, r.bus.Publish(ctx, bus.LaneLo, "again-2", data))
	m, err := newRunnerMetrics(reg, "lo")
	require.NoError(t, err)
	// 2 stored before, then 4 for each of "again-1" and "again-2".
	require.Eventually(t, func() bool { return metricValue(t, m.replayed) == 10 }, 20*time.Second, 5*time.Millisecond)
	waitDrained(t, r.bus, bus.LaneLo)

	r.store.mu.Lock()
	require.Empty(t, r.store.dups)
	require.Len(t, r.store.raw, 4)
	r.store.mu.Unlock()
	for _, rw := range raws {
		require.LessOrEqual(t, r.norm.count(rw.ID), 1, "raw %d processed at most once", rw.ID)
	}
	require.Zero(t, r.norm.count(raws[0].ID), "stored before: skipped")
}

// The runner's tests of retries, redelivery, poison and drain run in a
// synctest bubble over a fake intake log: see poison_test.go.

func TestRunnerCorruptMessages(t *testing.T) {
	r := newRig(t, 50)
	r.start(t, bus.LaneLo, bus.ConsumeOptions{}, nil)
	ctx := context.Background()
	id := event.NewIDGen(2, nil).Next(1)
	msgID := strconv.FormatInt(id, 10)
	require.NoError(t, r.bus.Publish(ctx, bus.LaneLo, msgID, []byte("\x00not json \xff")))
	require.NoError(t, r.bus.Publish(ctx, bus.LaneLo, "no-id", []byte("{broken")))
	require.NoError(t, r.bus.Publish(ctx, bus.LaneLo, strconv.FormatInt(id+1000, 10), []byte(`{"v":99,"base_id":5,"events":[]}`)))
	waitStored(t, r, []int64{id, id + 1000})
	waitDrained(t, r.bus, bus.LaneLo)

	r.store.mu.Lock()
	raw := r.store.raw[id]
	require.Len(t, r.store.raw, 2)
	r.store.mu.Unlock()
	require.Equal(t, SourceUnknown, raw.SourceType)
	require.True(t, raw.Processed)
	require.Len(t, raw.ProcessingErrors, 1)
	require.Contains(t, raw.ProcessingErrors[0], "corrupt intake message")
	var kept string
	require.NoError(t, json.Unmarshal(raw.Data, &kept), "the bytes are kept as a JSON string")
	require.Contains(t, kept, "not json")

	m, err := newRunnerMetrics(r.reg, "lo")
	require.NoError(t, err)
	require.InDelta(t, 2, metricValue(t, m.corrupt.WithLabelValues("stored")), 0)
	require.InDelta(t, 1, metricValue(t, m.corrupt.WithLabelValues("terminated")), 0)
}

func TestRunnerStopsWhenConsumerCloses(t *testing.T) {
	r := newRig(t, 50)
	c, err := r.bus.Consume(context.Background(), bus.LaneHi, bus.ConsumeOptions{})
	require.NoError(t, err)
	runner, err := NewRunner(RunnerOptions{Consumer: c, Normalize: r.norm, Store: r.store})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.ErrorIs(t, runner.Run(context.Background()), bus.ErrClosed)
}

func TestNewRunnerValidates(t *testing.T) {
	c := fakeConsumer{}
	tests := []struct {
		name string
		opts RunnerOptions
	}{
		{"no consumer", RunnerOptions{Normalize: &normalizer{}, Store: newMemStore()}},
		{"no normalize", RunnerOptions{Consumer: c, Store: newMemStore()}},
		{"no store", RunnerOptions{Consumer: c, Normalize: &normalizer{}}},
		{"workers disagree with locks", RunnerOptions{Consumer: c, Normalize: &normalizer{}, Store: newMemStore(), Workers: 3, Locks: NewPartitionLocks(4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRunner(tt.opts)
			require.Error(t, err)
		})
	}
}

type fakeConsumer struct{}

func (fakeConsumer) Next(ctx context.Context) ([]bus.Msg, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestSplitAndMerge(t *testing.T) {
	hosts := []string{"a", "b", "c", "d", "e", "f", "g"}
	b := &Batch{Now: time.Unix(0, 0)}
	for i := 0; i < 21; i++ {
		id := int64(100 + i)
		b.Raw = append(b.Raw, event.Raw{ID: id})
		if i == 20 {
			b.SetOutcome(id, Outcome{Error: "cannot normalize"}) // no event
			continue
		}
		b.Events = append(b.Events, &event.Event{ID: id, RawEventID: id, SourceHost: hosts[i%len(hosts)]})
	}
	r := &Runner{workers: 3}
	parts := r.split(b)
	seen := map[int64]bool{}
	for _, p := range parts {
		require.Len(t, p.b.Raw, len(p.b.Events))
		for i, e := range p.b.Events {
			require.Equal(t, p.partition, Partition(e.SourceHost, 3))
			require.Equal(t, e.RawEventID, p.b.Raw[i].ID)
			if i > 0 {
				require.Less(t, p.b.Events[i-1].ID, e.ID)
			}
			seen[e.ID] = true
		}
		require.Nil(t, p.b.Outcomes)
		require.Empty(t, p.b.Repeats)
	}
	require.Len(t, seen, 20)

	// Parts report the same shared rows at different stages of growth.
	parts[0].b.Repeats = []store.Repeat{{EventID: 1, OccurrenceCount: 5}}
	parts[0].b.Correlations = []event.Correlation{{CorrelationID: "x", RelatedEventIDs: []int64{1, 2, 3}}}
	parts[0].b.SetOutcome(101, Outcome{ProcessedEventID: 1})
	parts[1].b.Repeats = []store.Repeat{{EventID: 1, OccurrenceCount: 3}, {EventID: 2, OccurrenceCount: 2}}
	parts[1].b.Correlations = []event.Correlation{{CorrelationID: "x", RelatedEventIDs: []int64{1}}, {CorrelationID: "y"}}
	merge(b, parts)
	require.Len(t, b.Events, 20)
	for i := 1; i < len(b.Events); i++ {
		require.Less(t, b.Events[i-1].RawEventID, b.Events[i].RawEventID)
	}
	require.Equal(t, []store.Repeat{{EventID: 1, OccurrenceCount: 5}, {EventID: 2, OccurrenceCount: 2}}, b.Repeats)
	require.Len(t, b.Correlations, 2)
	require.Equal(t, []int64{1, 2, 3}, b.Correlations[0].RelatedEventIDs)
	require.Equal(t, Outcome{ProcessedEventID: 1}, b.Outcomes[101])
	require.Equal(t, Outcome{Error: "cannot normalize"}, b.Outcomes[120])
}

// recordingDownstream passes the new events of each stored batch to stored.
type recordingDownstream struct {
	stored func([]event.Event)
}

func (d *recordingDownstream) Stored(_ context.Context, b *store.Batch) error {
	d.stored(b.New)
	return nil
}

func (d *recordingDownstream) Replayed(context.Context, []int64) error { return nil }
