package processed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// fakeSink records what was published and drops repeated message ids.
type fakeSink struct {
	mu    sync.Mutex
	parts int
	max   int64
	msgs  []bus.ProcessedMessage
	ids   map[string]bool
	fail  error
}

func newSink(parts int) *fakeSink {
	return &fakeSink{parts: parts, max: 1 << 20, ids: map[string]bool{}}
}

func (s *fakeSink) Partitions() int   { return s.parts }
func (s *fakeSink) MaxPayload() int64 { return s.max }
func (s *fakeSink) Publish(_ context.Context, msgs []bus.ProcessedMessage) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	dups := 0
	for _, m := range msgs {
		if s.ids[m.MsgID] {
			dups++
			continue
		}
		s.ids[m.MsgID] = true
		s.msgs = append(s.msgs, m)
	}
	return dups, nil
}

// records decodes everything published, checking each message's
// partition against its records' hosts.
func (s *fakeSink) records(t *testing.T) []Record {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, m := range s.msgs {
		part, recs, err := Decode(m.Data)
		require.NoError(t, err)
		require.Equal(t, m.Partition, part)
		for _, r := range recs {
			if r.Event != nil {
				require.Equal(t, part, event.PartitionOf(r.Event.SourceHost, s.parts), "record of host %s in partition %d", r.Event.SourceHost, part)
			}
		}
		out = append(out, recs...)
	}
	return out
}

// fakeReader serves events and raw events from maps, counting reads.
type fakeReader struct {
	mu     sync.Mutex
	raws   map[int64]event.Raw
	events map[int64]event.Event
	reads  int
}

func (f *fakeReader) RawEvent(_ context.Context, id int64) (*event.Raw, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	r, ok := f.raws[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &r, nil
}

func (f *fakeReader) Event(_ context.Context, id int64) (*event.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	e, ok := f.events[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &e, nil
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ev(id int64, host string) event.Event {
	return event.Event{ID: id, RawEventID: id, EventType: "threshold_breach", Severity: event.Critical,
		SourceSystem: "mon", SourceType: event.SourceWebhook, SourceHost: host, Title: "CPU at 97%",
		Data: map[string]any{"metadata": map[string]any{"cpu_usage": 97.5}}, OccurredAt: t0, ReceivedAt: t0,
		ProcessedAt: t0, OccurrenceCount: 1, LastSeenAt: t0, Tags: []string{"cpu"}}
}

func raw(id, pid int64) event.Raw {
	return event.Raw{ID: id, SourceSystem: "mon", SourceType: event.SourceWebhook, Data: []byte(`{}`),
		ReceivedAt: t0.Add(time.Duration(id) * time.Millisecond), Processed: true, ProcessedEventID: pid}
}

func newPub(t *testing.T, s Sink, r Reader, reg prometheus.Registerer) *Publisher {
	t.Helper()
	p, err := NewPublisher(PublisherOptions{Sink: s, Store: r, Registerer: reg})
	require.NoError(t, err)
	return p
}

func byRaw(recs []Record) map[int64]Record {
	out := map[int64]Record{}
	for _, r := range recs {
		out[r.RawEventID] = r
	}
	return out
}

func TestStoredPublishesNewAndRepeats(t *testing.T) {
	sink := newSink(16)
	old := ev(50, "db-01") // stored by an earlier batch, count 3 before this batch
	old.OccurrenceCount = 3
	rd := &fakeReader{events: map[int64]event.Event{50: old}}
	reg := prometheus.NewRegistry()
	p := newPub(t, sink, rd, reg)

	a := ev(100, "web-01")
	a.OccurrenceCount, a.LastSeenAt = 2, t0.Add(103*time.Millisecond) // 103 folded into it
	b := ev(101, "web-02")
	sb := &store.Batch{
		Raw:     []event.Raw{raw(100, 100), raw(101, 101), raw(102, 50), raw(103, 100), raw(104, 50), raw(105, 0)},
		New:     []event.Event{a, b},
		Repeats: []store.Repeat{{EventID: 50, OccurredAt: t0, OccurrenceCount: 5, LastSeenAt: t0.Add(104 * time.Millisecond)}},
	}
	require.NoError(t, p.Stored(context.Background(), sb))
	recs := byRaw(sink.records(t))
	require.Len(t, recs, 5, "one record per raw event with a processed event; the rate-limited 105 has none")

	require.Equal(t, KindNew, recs[100].Kind)
	require.Equal(t, int64(100), recs[100].EventID)
	require.Equal(t, 1, recs[100].OccurrenceCount)
	require.Equal(t, KindRepeat, recs[103].Kind)
	require.Equal(t, int64(100), recs[103].EventID)
	require.Equal(t, 2, recs[103].OccurrenceCount)
	require.Equal(t, a.LastSeenAt, recs[103].LastSeenAt)

	require.Equal(t, KindRepeat, recs[102].Kind)
	require.Equal(t, int64(50), recs[102].EventID)
	require.Equal(t, 4, recs[102].OccurrenceCount)
	require.Equal(t, 5, recs[104].OccurrenceCount)
	require.Equal(t, t0.Add(104*time.Millisecond), recs[104].LastSeenAt)

	// Enough of the event for a rule: fields, metadata, tags, and the
	// record's count on the event.
	e := recs[104].Event
	require.NotNil(t, e)
	require.Equal(t, "db-01", e.SourceHost)
	require.Equal(t, event.Critical, e.Severity)
	require.Equal(t, 97.5, e.Data["metadata"].(map[string]any)["cpu_usage"])
	require.Equal(t, []string{"cpu"}, e.Tags)
	require.Equal(t, 5, e.OccurrenceCount)
	require.Equal(t, 1, rd.reads, "event 50 read from the store once")

	// Packed by partition: one message per partition of the batch.
	parts := map[int]bool{}
	for _, h := range []string{"web-01", "web-02", "db-01"} {
		parts[event.PartitionOf(h, 16)] = true
	}
	require.Len(t, sink.msgs, len(parts))
	require.Equal(t, 5.0, counterValue(t, p.met.records.WithLabelValues("new", "false"))+counterValue(t, p.met.records.WithLabelValues("repeat", "false")))

	// The same batch again (a retry): same message ids, dropped.
	require.NoError(t, p.Stored(context.Background(), sb))
	require.Len(t, sink.msgs, len(parts))
	require.Equal(t, float64(len(parts)), counterValue(t, p.met.duplicates))

	// A later repeat of 100 comes from the cache, not the store.
	reads := rd.reads
	require.NoError(t, p.Stored(context.Background(), &store.Batch{
		Raw:     []event.Raw{raw(200, 100)},
		Repeats: []store.Repeat{{EventID: 100, OccurrenceCount: 3, LastSeenAt: t0.Add(time.Second)}},
	}))
	require.Equal(t, reads, rd.reads)
	r := byRaw(sink.records(t))[200]
	require.Equal(t, "web-01", r.Event.SourceHost)
	require.Equal(t, 3, r.OccurrenceCount)
}

func TestStoredFailureIsReturned(t *testing.T) {
	sink := newSink(4)
	sink.fail = fmt.Errorf("x: %w", bus.ErrFull)
	p := newPub(t, sink, &fakeReader{}, nil)
	e := ev(1, "h")
	err := p.Stored(context.Background(), &store.Batch{Raw: []event.Raw{raw(1, 1)}, New: []event.Event{e}})
	require.ErrorIs(t, err, bus.ErrFull)
	require.Equal(t, 1.0, counterValue(t, p.met.failures.WithLabelValues("full")))
	sink.fail = nil
	require.NoError(t, p.Stored(context.Background(), &store.Batch{Raw: []event.Raw{raw(1, 1)}, New: []event.Event{e}}))
}

func TestReplayedRepublishesFromTheStore(t *testing.T) {
	a := ev(100, "web-01")
	a.OccurrenceCount, a.LastSeenAt = 4, t0.Add(time.Minute)
	rd := &fakeReader{
		raws:   map[int64]event.Raw{100: raw(100, 100), 101: raw(101, 100), 102: raw(102, 0)},
		events: map[int64]event.Event{100: a},
	}
	sink := newSink(16)
	p := newPub(t, sink, rd, nil)
	require.NoError(t, p.Replayed(context.Background(), []int64{100, 101, 102, 103}))
	recs := byRaw(sink.records(t))
	require.Len(t, recs, 2, "102 has no processed event, 103 is gone")
	require.Equal(t, KindNew, recs[100].Kind)
	require.Equal(t, KindRepeat, recs[101].Kind)
	require.True(t, recs[101].Replayed)
	require.Equal(t, 4, recs[101].OccurrenceCount)
	require.Equal(t, a.LastSeenAt, recs[101].LastSeenAt)
	require.Equal(t, 2.0, counterValue(t, p.met.republished))

	// The records of the replay match those Stored would have published
	// for the same raw events: same message id, dropped as a duplicate.
	sink2 := newSink(16)
	p2 := newPub(t, sink2, rd, nil)
	require.NoError(t, p2.Stored(context.Background(), &store.Batch{Raw: []event.Raw{raw(100, 100), raw(101, 100), raw(102, 0)}, New: []event.Event{a}}))
	require.Equal(t, sink.msgs[0].MsgID, sink2.msgs[0].MsgID)

	rd.raws[104] = raw(104, 100)
	rd.events = nil
	err := p.Replayed(context.Background(), []int64{104})
	require.NoError(t, err, "an event gone from the store is published without it")
	require.Nil(t, byRaw(sink.records(t))[104].Event)

	bad := &fakeReaderErr{}
	p3 := newPub(t, newSink(1), bad, nil)
	require.Error(t, p3.Replayed(context.Background(), []int64{1}))
}

type fakeReaderErr struct{}

func (fakeReaderErr) RawEvent(context.Context, int64) (*event.Raw, error) {
	return nil, errors.New("db down")
}
func (fakeReaderErr) Event(context.Context, int64) (*event.Event, error) {
	return nil, errors.New("db down")
}

func TestPackSplitsAndTruncates(t *testing.T) {
	sink := newSink(1)
	p, err := NewPublisher(PublisherOptions{Sink: sink, Store: &fakeReader{}, MaxMessageBytes: 8192})
	require.NoError(t, err)
	var sb store.Batch
	for i := int64(1); i <= 40; i++ {
		e := ev(i, "h")
		sb.New = append(sb.New, e)
		sb.Raw = append(sb.Raw, raw(i, i))
	}
	big := ev(41, "h")
	big.Data = map[string]any{"blob": strings.Repeat("x", 20000)}
	sb.New = append(sb.New, big)
	sb.Raw = append(sb.Raw, raw(41, 41))
	require.NoError(t, p.Stored(context.Background(), &sb))
	require.Greater(t, len(sink.msgs), 1, "split into several messages")
	for _, m := range sink.msgs {
		require.LessOrEqual(t, len(m.Data), 8192)
	}
	recs := byRaw(sink.records(t))
	require.Len(t, recs, 41)
	require.True(t, recs[41].Truncated)
	require.Empty(t, recs[41].Event.Data)
	require.Equal(t, "h", recs[41].Event.SourceHost)
	require.False(t, recs[40].Truncated)
}

func TestCrashHookRunsBeforePublishing(t *testing.T) {
	sink := newSink(1)
	called := 0
	p, err := NewPublisher(PublisherOptions{Sink: sink, Store: &fakeReader{}, BeforePublish: func() {
		called++
		require.Empty(t, sink.msgs)
	}})
	require.NoError(t, err)
	require.NoError(t, p.Stored(context.Background(), &store.Batch{Raw: []event.Raw{raw(1, 1)}, New: []event.Event{ev(1, "h")}}))
	require.Equal(t, 1, called)
	require.Len(t, sink.msgs, 1)
}

func TestDecodeRejectsCorrupt(t *testing.T) {
	for _, in := range []string{`x`, `{"v":3,"records":[]}`, `{"v":0}`,
		`{"v":2,"records":[{"kind":"new","raw_event_id":0,"event_id":1}]}`,
		`{"v":2,"records":[{"kind":"new","raw_event_id":1,"event_id":1,"event":{"id":"x"}}]}`,
		`{"v":2,"records":[{"kind":"new","raw_event_id":1,"event_id":1,"event":{"id":1,"scoring":[]}}]}`, `{"v":1,"records":[{"kind":"new","raw_event_id":0,"event_id":1}]}`,
		`{"v":1,"records":[{"kind":"other","raw_event_id":1,"event_id":1}]}`, `{"v":1,"records":[{"kind":"new","raw_event_id":1,"event_id":1,"event":{"id":"x"}}]}`} {
		_, _, err := Decode([]byte(in))
		require.ErrorIs(t, err, ErrCorrupt, in)
	}
}

func TestCacheBound(t *testing.T) {
	c := newCache(1000)
	for i := int64(0); i < 100; i++ {
		c.put(i, "h", make([]byte, 100))
	}
	require.LessOrEqual(t, c.bytes, 1000)
	require.Less(t, c.len(), 10)
	_, _, ok := c.get(99)
	require.True(t, ok)
	_, _, ok = c.get(0)
	require.False(t, ok)
	// Recently used entries stay.
	c.get(95)
	for i := int64(100); i < 104; i++ {
		c.put(i, "h", make([]byte, 100))
	}
	_, _, ok = c.get(95)
	require.True(t, ok)
	c.put(500, "h", make([]byte, 5000)) // larger than the bound: not kept
	_, _, ok = c.get(500)
	require.False(t, ok)
}

func TestRecent(t *testing.T) {
	r := NewRecent(3)
	r.Mark(1, 2, 3)
	require.True(t, r.Seen(1))
	r.Mark(4)
	require.False(t, r.Seen(1), "the oldest is forgotten")
	require.Equal(t, 3, r.Len())
	got := r.Unseen([]Record{{RawEventID: 2}, {RawEventID: 5}, {RawEventID: 5}, {RawEventID: 6}})
	require.Equal(t, []Record{{RawEventID: 5}, {RawEventID: 6}}, got)
	require.False(t, r.Seen(5), "Unseen does not mark")
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {10, time.Minute}, {1000, time.Minute}} {
		require.Equal(t, c.want, Backoff(c.n, time.Second, time.Minute), "n=%d", c.n)
	}
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var d dto.Metric
	require.NoError(t, (<-ch).Write(&d))
	return d.GetCounter().GetValue()
}

func TestAppendRecordMatchesJSON(t *testing.T) {
	e := ev(7, "h")
	evb, err := encodeEvent(&e, true)
	require.NoError(t, err)
	for _, r := range []Record{
		{Kind: KindNew, RawEventID: 7, EventID: 7, OccurrenceCount: 1, LastSeenAt: t0.Add(123456789)},
		{Kind: KindRepeat, RawEventID: 9, EventID: 7, OccurrenceCount: 3, LastSeenAt: t0, Replayed: true, Truncated: true},
	} {
		got := appendRecord(nil, &r, evb)
		want, err := json.Marshal(wireRecord{Record: r, Event: evb})
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(got))
	}
	// event_data spliced in decodes as MarshalData wrote it.
	var back map[string]any
	require.NoError(t, json.Unmarshal(evb, &back))
	require.Equal(t, 97.5, back["event_data"].(map[string]any)["metadata"].(map[string]any)["cpu_usage"])
}

// unreadableReader answers ErrUnreadable for the events in bad, as a store
// does for a row whose event_data cannot be decoded.
type unreadableReader struct {
	*fakeReader
	bad map[int64]bool
}

func (u unreadableReader) Event(ctx context.Context, id int64) (*event.Event, error) {
	if u.bad[id] {
		return nil, fmt.Errorf("sqlstore: event %d: %w", id, store.ErrUnreadable)
	}
	return u.fakeReader.Event(ctx, id)
}

// An unreadable stored event must not stall the lane: Replayed, and a
// repeat of it in a later batch, publish its records without the event
// instead of failing (and so being retried forever).
func TestUnreadableEventDoesNotStallThePublisher(t *testing.T) {
	rd := unreadableReader{
		fakeReader: &fakeReader{
			raws:   map[int64]event.Raw{200: raw(200, 200), 201: raw(201, 200)},
			events: map[int64]event.Event{},
		},
		bad: map[int64]bool{200: true},
	}
	sink := newSink(16)
	p := newPub(t, sink, rd, nil)
	require.NoError(t, p.Replayed(context.Background(), []int64{200, 201}))
	recs := byRaw(sink.records(t))
	require.Len(t, recs, 2)
	require.Nil(t, recs[200].Event)
	require.Equal(t, KindNew, recs[200].Kind)
	require.Equal(t, KindRepeat, recs[201].Kind)

	// A repeat, in a new batch, of the unreadable event stored earlier.
	rep := raw(202, 200)
	require.NoError(t, p.Stored(context.Background(), &store.Batch{Raw: []event.Raw{rep},
		Repeats: []store.Repeat{{EventID: 200, OccurrenceCount: 3, LastSeenAt: t0}}}))
	got := byRaw(sink.records(t))[202]
	require.Equal(t, KindRepeat, got.Kind)
	require.Equal(t, int64(200), got.EventID)
}
