package processed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/pipeline"
	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// Sink is where the Publisher publishes. *bus.Processed implements it.
type Sink interface {
	// Partitions is the number of partitions.
	Partitions() int
	// MaxPayload is the largest message accepted, in bytes.
	MaxPayload() int64
	// Publish stores every message or returns an error; messages with an
	// id seen in the duplicate window are acknowledged and dropped.
	Publish(ctx context.Context, msgs []bus.ProcessedMessage) (dups int, err error)
}

var _ Sink = (*bus.Processed)(nil)

// Reader is what the Publisher reads from the store: the processed event a
// repeat was folded into when it is not in the Publisher's cache, and,
// after a crash, what redelivered raw events had stored. store.Store
// implements it. (Per-id reads: replays happen only after a crash or a
// lost acknowledgement; a batch read can replace them behind this
// interface.)
type Reader interface {
	RawEvent(ctx context.Context, id int64) (*event.Raw, error)
	Event(ctx context.Context, id int64) (*event.Event, error)
}

var _ Reader = store.Store(nil)

// Defaults of PublisherOptions.
const (
	DefaultCacheBytes      = 32 << 20
	DefaultMaxMessageBytes = 512 << 10
)

// PublisherOptions configure NewPublisher. Sink and Store are required.
type PublisherOptions struct {
	Sink  Sink
	Store Reader
	// CacheBytes bounds the cache of recently published events (their
	// encoded form), from which repeats of them are published without a
	// store read (default 32 MiB).
	CacheBytes int
	// MaxMessageBytes bounds one message (default 512 KiB, and at most
	// the server's MaxPayload); a partition's records beyond it go in
	// further messages.
	MaxMessageBytes int
	// BeforePublish, if set, is called by Stored after the store commit
	// and before anything is published. A test hook (see
	// REFLEX_TEST_CRASH_AFTER_COMMITS in the server).
	BeforePublish func()
	// Logger receives logs (nil: none).
	Logger *slog.Logger
	// Registerer registers the metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Publisher publishes what the pipeline stored on the processed stream. It
// implements pipeline.Downstream and is safe for concurrent use (one
// runner per lane calls it).
type Publisher struct {
	opts  PublisherOptions
	log   *slog.Logger
	cache *cache
	met   publisherMetrics
}

var _ pipeline.Downstream = (*Publisher)(nil)

// NewPublisher returns a Publisher.
func NewPublisher(opts PublisherOptions) (*Publisher, error) {
	if opts.Sink == nil {
		return nil, errors.New("processed: PublisherOptions.Sink is required")
	}
	if opts.Store == nil {
		return nil, errors.New("processed: PublisherOptions.Store is required")
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if mp := opts.Sink.MaxPayload(); mp > 0 && int64(opts.MaxMessageBytes) > mp-1024 {
		opts.MaxMessageBytes = int(max(4096, mp-1024))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	met, err := newPublisherMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Publisher{opts: opts, log: opts.Logger, cache: newCache(opts.CacheBytes), met: met}, nil
}

// item is a record on its way to a message.
type item struct {
	rec       Record
	host      string
	ev        []byte // the encoded event; nil when unknown
	partition int
}

// Stored publishes one record per raw event of b that became or was folded
// into a processed event (raw events without one, such as rate-limited
// ones, have none), grouped into one message per partition.
func (p *Publisher) Stored(ctx context.Context, b *store.Batch) error {
	if p.opts.BeforePublish != nil {
		p.opts.BeforePublish()
	}
	items, err := p.fromBatch(ctx, b)
	if err != nil {
		return err
	}
	return p.publish(ctx, items, false)
}

// Replayed republishes the records of raw events that a redelivery found
// already stored, reading them from the store: a crash (or a lost
// acknowledgement) between the commit and the acknowledgement may have
// kept them from being published. Their occurrence counts are the stored
// ones at this time.
func (p *Publisher) Replayed(ctx context.Context, rawIDs []int64) error {
	type stored struct {
		ev       []byte // nil: the store no longer has the event
		host     string
		count    int
		lastSeen time.Time
	}
	items := make([]item, 0, len(rawIDs))
	events := make(map[int64]stored)
	for _, id := range rawIDs {
		rw, err := p.opts.Store.RawEvent(ctx, id)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnreadable) {
			// Removed by retention since, or a row no reader can decode
			// (counted by the store): nothing to republish, and never a
			// reason to hold the lane.
			continue
		}
		if err != nil {
			return fmt.Errorf("processed: replay: %w", err)
		}
		pid := rw.ProcessedEventID
		if pid == 0 {
			continue
		}
		st, ok := events[pid]
		if !ok {
			e, err := p.opts.Store.Event(ctx, pid)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case errors.Is(err, store.ErrUnreadable):
				// Published without the event, as for one retention
				// removed: an unreadable row must not stall the lane.
				p.log.Warn("replay of an unreadable processed event; publishing it without the event", "event_id", pid)
			case err != nil:
				return fmt.Errorf("processed: replay: %w", err)
			default:
				ev, err := encodeEvent(e, true)
				if err != nil {
					return err
				}
				st = stored{ev: ev, host: e.SourceHost, count: e.OccurrenceCount, lastSeen: e.LastSeenAt}
			}
			events[pid] = st
		}
		it := item{rec: Record{Kind: KindRepeat, RawEventID: id, EventID: pid, Replayed: true,
			OccurrenceCount: st.count, LastSeenAt: st.lastSeen}, ev: st.ev, host: st.host}
		if pid == id {
			it.rec.Kind = KindNew
		}
		items = append(items, it)
	}
	if err := p.publish(ctx, items, true); err != nil {
		return err
	}
	p.met.republished.Add(float64(len(items)))
	return nil
}

// fromBatch makes the items of a stored batch, in raw id order.
func (p *Publisher) fromBatch(ctx context.Context, b *store.Batch) ([]item, error) {
	type target struct {
		ev        []byte
		host      string
		count     int
		lastSeen  time.Time
		occurs    []int // indexes into b.Raw
		newInside bool
	}
	targets := make(map[int64]*target, len(b.New))
	for i := range b.New {
		e := &b.New[i]
		ev, err := encodeEvent(e, true)
		if err != nil {
			return nil, err
		}
		p.cache.put(e.ID, e.SourceHost, ev)
		targets[e.ID] = &target{ev: ev, host: e.SourceHost, count: e.OccurrenceCount, lastSeen: e.LastSeenAt, newInside: true}
	}
	for _, r := range b.Repeats {
		t := targets[r.EventID]
		if t == nil {
			t = &target{}
			targets[r.EventID] = t
		}
		t.count, t.lastSeen = r.OccurrenceCount, r.LastSeenAt
	}
	n := 0
	for i := range b.Raw {
		pid := b.Raw[i].ProcessedEventID
		if pid == 0 {
			continue
		}
		t := targets[pid]
		if t == nil {
			// Folded into an event outside the batch without a repeat
			// row: not expected; publish what the store has.
			t = &target{count: -1}
			targets[pid] = t
		}
		t.occurs = append(t.occurs, i)
		n++
	}
	// Repeats of events stored by earlier batches: from the cache, else
	// from the store.
	for pid, t := range targets {
		if t.ev != nil || len(t.occurs) == 0 {
			continue
		}
		if ev, host, ok := p.cache.get(pid); ok {
			t.ev, t.host = ev, host
			p.met.cache.WithLabelValues("hit").Inc()
			continue
		}
		p.met.cache.WithLabelValues("miss").Inc()
		e, err := p.opts.Store.Event(ctx, pid)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnreadable) {
			p.log.Warn("repeat of a processed event the store no longer has or cannot read; publishing it without the event", "event_id", pid, "err", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("processed: read event %d: %w", pid, err)
		}
		if t.ev, err = encodeEvent(e, true); err != nil {
			return nil, err
		}
		t.host = e.SourceHost
		if t.count < 0 {
			t.count, t.lastSeen = e.OccurrenceCount, e.LastSeenAt
		}
		p.cache.put(pid, e.SourceHost, t.ev)
	}
	items := make([]item, 0, n)
	for pid, t := range targets {
		if len(t.occurs) == 0 {
			continue
		}
		slices.SortFunc(t.occurs, func(x, y int) int {
			return compareIDs(b.Raw[x].ID, b.Raw[y].ID, pid)
		})
		m := len(t.occurs)
		for k, i := range t.occurs {
			rw := &b.Raw[i]
			rec := Record{Kind: KindRepeat, RawEventID: rw.ID, EventID: pid,
				OccurrenceCount: max(1, t.count-(m-1-k)), LastSeenAt: t.lastSeen}
			if rw.ID == pid {
				rec.Kind = KindNew
			}
			if k < m-1 && !rw.ReceivedAt.IsZero() && rw.ReceivedAt.Before(t.lastSeen) {
				rec.LastSeenAt = rw.ReceivedAt
			}
			items = append(items, item{rec: rec, ev: t.ev, host: t.host})
		}
	}
	slices.SortFunc(items, func(x, y item) int { return compareIDs(x.rec.RawEventID, y.rec.RawEventID, 0) })
	return items, nil
}

// compareIDs orders raw ids ascending, first first.
func compareIDs(a, b, first int64) int {
	switch {
	case a == b:
		return 0
	case a == first:
		return -1
	case b == first:
		return 1
	case a < b:
		return -1
	}
	return 1
}

// publish packs items into messages per partition and publishes them.
func (p *Publisher) publish(ctx context.Context, items []item, replayed bool) error {
	if len(items) == 0 {
		return nil
	}
	msgs, kinds, err := p.pack(items)
	if err != nil {
		return err
	}
	dups, err := p.opts.Sink.Publish(ctx, msgs)
	if err != nil {
		p.met.failed(err)
		return fmt.Errorf("processed: publish: %w", err)
	}
	p.met.messages.Add(float64(len(msgs) - dups))
	p.met.duplicates.Add(float64(dups))
	for k, n := range kinds {
		p.met.records.WithLabelValues(string(k), strconv.FormatBool(replayed)).Add(float64(n))
	}
	return nil
}

// pack groups items by partition, in their order, and cuts each
// partition's records into messages of at most MaxMessageBytes. A
// message's id is derived from its partition and raw event ids, so that
// the same records published again (a retry, or a replay of the same
// batch) get the same id.
func (p *Publisher) pack(items []item) ([]bus.ProcessedMessage, map[Kind]int, error) {
	n := p.opts.Sink.Partitions()
	byPart := make(map[int][]int)
	var order []int
	for i := range items {
		it := &items[i]
		it.partition = event.PartitionOf(it.host, n)
		if _, ok := byPart[it.partition]; !ok {
			order = append(order, it.partition)
		}
		byPart[it.partition] = append(byPart[it.partition], i)
	}
	slices.Sort(order)
	kinds := make(map[Kind]int, 2)
	var msgs []bus.ProcessedMessage
	limit := p.opts.MaxMessageBytes
	var scratch []byte // the records of one partition, back to back
	var ends []int     // where each record ends in scratch
	for _, part := range order {
		head := `{"v":` + strconv.Itoa(Version) + `,"partition":` + strconv.Itoa(part) + `,"records":[`
		scratch, ends = scratch[:0], ends[:0]
		idx := byPart[part]
		for _, i := range idx {
			it := &items[i]
			start := len(scratch)
			scratch = appendRecord(scratch, &it.rec, it.ev)
			if len(head)+len(scratch)-start+2 > limit {
				// Too large even alone: leave event_data out.
				ev, err := withoutData(it.ev)
				if err != nil {
					return nil, nil, err
				}
				it.rec.Truncated = true
				scratch = appendRecord(scratch[:start], &it.rec, ev)
				p.met.truncated.Inc()
				p.log.Warn("processed record too large for a message; published without event_data",
					"event_id", it.rec.EventID, "raw_event_id", it.rec.RawEventID)
			}
			ends = append(ends, len(scratch))
			kinds[it.rec.Kind]++
		}
		// Cut into messages: as many records as fit in each.
		first, from := 0, 0
		for first < len(idx) {
			last, size := first, len(head)+2
			for last < len(idx) {
				rs := ends[last] - prevEnd(ends, last)
				if last > first && size+rs+1 > limit {
					break
				}
				if last > first {
					size++
				}
				size += rs
				last++
			}
			to := ends[last-1]
			buf := make([]byte, 0, len(head)+(to-from)+(last-first)+2)
			buf = append(buf, head...)
			ids := make([]int64, 0, last-first)
			for k := first; k < last; k++ {
				if k > first {
					buf = append(buf, ',')
				}
				buf = append(buf, scratch[prevEnd(ends, k):ends[k]]...)
				ids = append(ids, items[idx[k]].rec.RawEventID)
			}
			buf = append(buf, "]}"...)
			msgs = append(msgs, bus.ProcessedMessage{Partition: part, MsgID: msgID(part, ids), Data: buf})
			first, from = last, to
		}
	}
	return msgs, kinds, nil
}

func prevEnd(ends []int, k int) int {
	if k == 0 {
		return 0
	}
	return ends[k-1]
}

// withoutData re-encodes an encoded event without its event_data.
func withoutData(ev []byte) ([]byte, error) {
	if ev == nil {
		return nil, nil
	}
	var we wireEvent
	if err := json.Unmarshal(ev, &we); err != nil {
		return nil, fmt.Errorf("processed: re-encode event: %w", err)
	}
	e := we.event()
	return encodeEvent(e, false)
}

// msgID is "<partition>-<first raw id>-<count>-<hash of the raw ids>".
func msgID(partition int, ids []int64) string {
	h := fnv.New64a()
	var b [8]byte
	for _, id := range ids {
		for i := range 8 {
			b[i] = byte(id >> (8 * i))
		}
		h.Write(b[:])
	}
	return strconv.Itoa(partition) + "-" + strconv.FormatInt(ids[0], 10) + "-" +
		strconv.Itoa(len(ids)) + "-" + strconv.FormatUint(h.Sum64(), 16)
}

type publisherMetrics struct {
	records     *prometheus.CounterVec
	messages    prometheus.Counter
	duplicates  prometheus.Counter
	failures    *prometheus.CounterVec
	republished prometheus.Counter
	truncated   prometheus.Counter
	cache       *prometheus.CounterVec
}

func newPublisherMetrics(reg prometheus.Registerer) (publisherMetrics, error) {
	m := publisherMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_processed_published_records_total",
			Help: "Records published on the processed stream, by kind (new, repeat) and whether they were republished after a redelivery.",
		}, []string{"kind", "replayed"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_processed_published_messages_total",
			Help: "Messages stored on the processed stream (duplicates not counted).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_processed_publish_duplicates_total",
			Help: "Processed stream messages dropped by the stream as duplicates of an earlier message with the same id.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_processed_publish_failures_total",
			Help: "Failed publishes on the processed stream, by reason (full, unavailable, too_large, other); the pipeline retries them.",
		}, []string{"reason"}),
		republished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_processed_republished_records_total",
			Help: "Records republished from the store because their raw events were redelivered after being stored (a crash or lost ack between commit and acknowledgement).",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_processed_truncated_records_total",
			Help: "Records published without event_data because they would not fit in a message.",
		}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_processed_event_cache_total",
			Help: "Lookups of the event a repeat was folded into, by result (hit: from the publisher's cache; miss: read from the store).",
		}, []string{"result"}),
	}
	for _, c := range []any{&m.records, &m.messages, &m.duplicates, &m.failures, &m.republished, &m.truncated, &m.cache} {
		var err error
		switch c := c.(type) {
		case **prometheus.CounterVec:
			err = promutil.Register(reg, c)
		case *prometheus.Counter:
			err = promutil.Register(reg, c)
		}
		if err != nil {
			return m, fmt.Errorf("processed: %w", err)
		}
	}
	return m, nil
}

func (m *publisherMetrics) failed(err error) {
	reason := "other"
	switch {
	case errors.Is(err, bus.ErrFull):
		reason = "full"
	case errors.Is(err, bus.ErrUnavailable):
		reason = "unavailable"
	case errors.Is(err, bus.ErrTooLarge):
		reason = "too_large"
	case errors.Is(err, context.Canceled):
		reason = "canceled"
	}
	m.failures.WithLabelValues(reason).Inc()
}
