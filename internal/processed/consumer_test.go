package processed

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/testutil"
)

type mode struct {
	name string
	open func(t *testing.T) (*bus.Bus, bus.ProcessedOptions)
}

var modes = []mode{
	{"embedded", func(t *testing.T) (*bus.Bus, bus.ProcessedOptions) {
		return openBus(t, bus.Options{DataDir: t.TempDir()}), bus.ProcessedOptions{Partitions: 4}
	}},
	{"external", func(t *testing.T) (*bus.Bus, bus.ProcessedOptions) {
		url := testutil.NATSURL(t)
		o := bus.Options{URL: url, Stream: testutil.RandomName("REFLEX_T_"), SubjectPrefix: testutil.RandomName("reflex.t."), MaxBytes: 64 << 20}
		po := bus.ProcessedOptions{Stream: testutil.RandomName("REFLEX_TP_"), SubjectPrefix: testutil.RandomName("reflex.tp."), Partitions: 4, MaxBytes: 64 << 20}
		t.Cleanup(func() { deleteStreams(t, url, o.Stream, po.Stream) })
		return openBus(t, o), po
	}},
}

func openBus(t *testing.T, o bus.Options) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

func deleteStreams(t *testing.T, url string, names ...string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connect: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range names {
		if err := js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", n, err)
		}
	}
}

// collector is a handler that records what it saw and can be told to
// fail.
type collector struct {
	mu    sync.Mutex
	seen  map[int64]int
	fails int // fail this many calls first
	perm  bool
	calls int
	got   chan struct{}
}

func newCollector() *collector {
	return &collector{seen: map[int64]int{}, got: make(chan struct{}, 1000)}
}

func (c *collector) handle(_ context.Context, recs []Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fails > 0 {
		c.fails--
		if c.perm {
			return Permanent(errors.New("cannot"))
		}
		return errors.New("transient")
	}
	for _, r := range recs {
		c.seen[r.Key()]++
	}
	c.got <- struct{}{}
	return nil
}

func (c *collector) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) }

func batchOf(ids ...int64) *store.Batch {
	sb := &store.Batch{}
	for _, id := range ids {
		sb.New = append(sb.New, ev(id, "host-"+string(rune('a'+id%7))))
		sb.Raw = append(sb.Raw, raw(id, id))
	}
	return sb
}

func waitFor(t *testing.T, c *collector, n int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for c.count() < n {
		select {
		case <-c.got:
		case <-timeout:
			t.Fatalf("saw %d of %d records", c.count(), n)
		}
	}
}

func TestPublishConsumeEndToEnd(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b, po := m.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ps, err := b.OpenProcessed(ctx, po)
			require.NoError(t, err)
			pub, err := NewPublisher(PublisherOptions{Sink: ps, Store: &fakeReader{}})
			require.NoError(t, err)

			// Interest retention: with no consumer, nothing is kept.
			require.NoError(t, pub.Stored(ctx, batchOf(1, 2, 3)))
			info, err := streamInfo(ctx, b, ps)
			require.NoError(t, err)
			require.Zero(t, info.State.Msgs, "no consumer: nothing retained")

			col := newCollector()
			col.fails = 1 // the first delivery fails: delivered again
			cons, err := Consume(ctx, ps, ConsumerOptions{Name: "test", RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond, Wait: 100 * time.Millisecond, Recent: 100})
			require.NoError(t, err)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error)
			go func() { done <- cons.Run(runCtx, col.handle) }()

			require.NoError(t, pub.Stored(ctx, batchOf(10, 11, 12, 13, 14, 15, 16)))
			waitFor(t, col, 7)
			// A republish of the same records: the stream drops it (same
			// message ids); a replay in a different grouping reaches the
			// consumer, whose Recent set skips it.
			require.NoError(t, pub.Stored(ctx, batchOf(10, 11, 12, 13, 14, 15, 16)))
			require.NoError(t, pub.Stored(ctx, batchOf(10, 11, 20)))
			waitFor(t, col, 8)
			stop()
			require.NoError(t, <-done)
			col.mu.Lock()
			for id, n := range col.seen {
				require.Equal(t, 1, n, "record %d handled once", id)
			}
			require.GreaterOrEqual(t, col.calls, 3, "a failed call, then the successes")
			col.mu.Unlock()

			// All acknowledged: the stream is empty again.
			require.Eventually(t, func() bool {
				info, err := streamInfo(ctx, b, ps)
				return err == nil && info.State.Msgs == 0
			}, 10*time.Second, 10*time.Millisecond)

			// A second process binds the stream by name and learns its
			// partitions; a consumer of a subset of partitions.
			if url := b.ClientURL(); url != "" {
				dp, err := bus.DialProcessed(ctx, bus.DialOptions{URL: url, Stream: ps.Stream(), SubjectPrefix: po.SubjectPrefix})
				require.NoError(t, err)
				require.Equal(t, 4, dp.Partitions())
				require.NoError(t, dp.Close())
			}
			_, err = ps.Consumer(ctx, bus.ProcessedConsumerOptions{Name: "sub", Partitions: []int{9}})
			require.Error(t, err, "partition out of range")
		})
	}
}

func TestPermanentFailureTerminates(t *testing.T) {
	b, po := modes[0].open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := b.OpenProcessed(ctx, po)
	require.NoError(t, err)
	pub, err := NewPublisher(PublisherOptions{Sink: ps, Store: &fakeReader{}})
	require.NoError(t, err)
	col := newCollector()
	col.fails, col.perm = 1, true
	cons, err := Consume(ctx, ps, ConsumerOptions{Name: "perm", Wait: 100 * time.Millisecond})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- cons.Run(runCtx, col.handle) }()
	require.NoError(t, pub.Stored(ctx, batchOf(1)))
	require.Eventually(t, func() bool { col.mu.Lock(); defer col.mu.Unlock(); return col.calls == 1 }, 30*time.Second, time.Millisecond)
	require.NoError(t, pub.Stored(ctx, batchOf(2)))
	waitFor(t, col, 1)
	stop()
	require.NoError(t, <-done)
	col.mu.Lock()
	defer col.mu.Unlock()
	require.Equal(t, map[int64]int{2: 1}, col.seen, "the terminated batch is not delivered again")
}

func TestFullStreamRefusesPublishes(t *testing.T) {
	b, _ := modes[0].open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := b.OpenProcessed(ctx, bus.ProcessedOptions{Partitions: 1, MaxBytes: 64 << 10})
	require.NoError(t, err)
	// An absent consumer: its durable exists, nothing reads it.
	_, err = ps.Consumer(ctx, bus.ProcessedConsumerOptions{Name: "absent"})
	require.NoError(t, err)
	pub, err := NewPublisher(PublisherOptions{Sink: ps, Store: &fakeReader{}})
	require.NoError(t, err)
	var perr error
	for i := int64(1); i < 1000 && perr == nil; i++ {
		perr = pub.Stored(ctx, batchOf(i*10, i*10+1, i*10+2))
	}
	require.ErrorIs(t, perr, bus.ErrFull, "a full stream blocks the pipeline rather than dropping records")
}

func streamInfo(ctx context.Context, b *bus.Bus, ps *bus.Processed) (*jetstream.StreamInfo, error) {
	_ = b
	return ps.Info(ctx)
}

func TestSubsetOfPartitions(t *testing.T) {
	b, po := modes[0].open(t) // several filter subjects need NATS 2.10+
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := b.OpenProcessed(ctx, po)
	require.NoError(t, err)
	pub, err := NewPublisher(PublisherOptions{Sink: ps, Store: &fakeReader{}})
	require.NoError(t, err)
	mine := event.PartitionOf("host-a", 4)
	col := newCollector()
	cons, err := Consume(ctx, ps, ConsumerOptions{Name: "subset", Partitions: []int{mine}, Wait: 100 * time.Millisecond})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- cons.Run(runCtx, col.handle) }()
	sb := batchOf(1, 2, 3, 4, 5, 6, 7) // hosts host-b .. host-h, host-a
	require.NoError(t, pub.Stored(ctx, sb))
	want := 0
	for _, e := range sb.New {
		if event.PartitionOf(e.SourceHost, 4) == mine {
			want++
		}
	}
	waitFor(t, col, want)
	stop()
	require.NoError(t, <-done)
	col.mu.Lock()
	defer col.mu.Unlock()
	for id := range col.seen {
		require.Equal(t, mine, event.PartitionOf("host-"+string(rune('a'+id%7)), 4), "record %d of another partition", id)
	}
	require.Len(t, col.seen, want)
}
