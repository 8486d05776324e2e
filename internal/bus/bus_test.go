package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/testutil"
)

// mode is where a test's bus runs: embedded, or on the external server of
// REFLEX_TEST_NATS_URL.
type mode struct {
	name string
	// opts returns the options of a bus for this test; with the external
	// server, a stream and subject prefix of its own, deleted at cleanup.
	opts func(t *testing.T) Options
}

var modes = []mode{
	{name: "embedded", opts: func(t *testing.T) Options {
		return Options{DataDir: t.TempDir()}
	}},
	{name: "external", opts: func(t *testing.T) Options {
		url := testutil.NATSURL(t)
		o := Options{
			URL:           url,
			Stream:        testutil.RandomName("REFLEX_T_"),
			SubjectPrefix: testutil.RandomName("reflex.t."),
			MaxBytes:      256 << 20,
		}
		t.Cleanup(func() { deleteStream(t, url, o.Stream) })
		return o
	}},
}

func deleteStream(t *testing.T, url, name string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connect to delete stream %s: %v", name, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("jetstream: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("delete stream %s: %v", name, err)
	}
}

func openBus(t *testing.T, o Options) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := Open(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

func consume(t *testing.T, b *Bus, lane Lane, o ConsumeOptions) *Consumer {
	t.Helper()
	c, err := b.Consume(context.Background(), lane, o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// collect reads from c until it has n messages or the timeout passes.
func collect(t *testing.T, c *Consumer, n int, timeout time.Duration) []Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []Msg
	for len(out) < n {
		msgs, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, msgs...)
	}
	return out
}

// requirePending waits until the lane's depth is want: the server updates a
// consumer's pending count shortly after the publish is acknowledged.
func requirePending(t *testing.T, b *Bus, lane Lane, want uint64) {
	t.Helper()
	var n uint64
	var err error
	require.Eventually(t, func() bool {
		n, err = b.Pending(context.Background(), lane)
		return err == nil && n == want
	}, 10*time.Second, 5*time.Millisecond, "pending %d (err %v), want %d", n, err, want)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPublishConsumeAck(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b := openBus(t, m.opts(t))
			ctx := ctxT(t)
			require.True(t, b.Ready())
			for i := 1; i <= 3; i++ {
				require.NoError(t, b.Publish(ctx, LaneLo, strconv.Itoa(i), []byte(fmt.Sprintf(`{"n":%d}`, i))))
			}
			requirePending(t, b, LaneLo, 3)

			c := consume(t, b, LaneLo, ConsumeOptions{MaxBatch: 10})
			msgs := collect(t, c, 3, 10*time.Second)
			require.Len(t, msgs, 3)
			for i, msg := range msgs {
				require.Equal(t, strconv.Itoa(i+1), msg.MsgID)
				require.Equal(t, fmt.Sprintf(`{"n":%d}`, i+1), string(msg.Data))
				require.Equal(t, LaneLo, msg.Lane)
				require.EqualValues(t, 1, msg.NumDelivered)
				require.NoError(t, msg.Ack())
			}
			require.Eventually(t, func() bool {
				n, err := b.Pending(ctx, LaneLo)
				return err == nil && n == 0
			}, 10*time.Second, 20*time.Millisecond, "acknowledged messages leave the work queue")
			info, err := b.stream.Info(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 0, info.State.Msgs)
		})
	}
}

func TestBatchLimits(t *testing.T) {
	b := openBus(t, Options{DataDir: t.TempDir()})
	ctx := ctxT(t)
	msgs := make([]Message, 25)
	for i := range msgs {
		msgs[i] = Message{Lane: LaneLo, MsgID: strconv.Itoa(i), Data: []byte("x")}
	}
	require.NoError(t, b.PublishBatch(ctx, msgs))
	c := consume(t, b, LaneLo, ConsumeOptions{MaxBatch: 10, Linger: time.Second})
	got := collect(t, c, 25, 10*time.Second)
	require.Len(t, got, 25)
	for i, m := range got {
		require.Equal(t, strconv.Itoa(i), m.MsgID, "stream order")
		require.NoError(t, m.Ack())
	}

	t.Run("one message does not wait for a full batch", func(t *testing.T) {
		require.NoError(t, b.Publish(ctx, LaneLo, "single", []byte("x")))
		got := collect(t, c, 1, 10*time.Second)
		require.Len(t, got, 1)
		require.NoError(t, got[0].Ack())
	})
	t.Run("a batch never exceeds MaxBatch", func(t *testing.T) {
		msgs := make([]Message, 30)
		for i := range msgs {
			msgs[i] = Message{Lane: LaneLo, MsgID: "b" + strconv.Itoa(i), Data: []byte("x")}
		}
		require.NoError(t, b.PublishBatch(ctx, msgs))
		n := 0
		for n < 30 {
			got, err := c.Next(ctx)
			require.NoError(t, err)
			require.LessOrEqual(t, len(got), 10)
			for _, m := range got {
				require.NoError(t, m.Ack())
			}
			n += len(got)
		}
	})
}

func TestLanesIndependent(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			o := m.opts(t)
			o.MaxAckPending = 64
			b := openBus(t, o)
			ctx := ctxT(t)
			const backlog = 10000
			msgs := make([]Message, backlog)
			for i := range msgs {
				msgs[i] = Message{Lane: LaneLo, MsgID: "lo-" + strconv.Itoa(i), Data: []byte(`{"severity":"info"}`)}
			}
			require.NoError(t, b.PublishBatch(ctx, msgs))
			require.NoError(t, b.Publish(ctx, LaneHi, "hi-1", []byte(`{"severity":"critical"}`)))

			// The low lane is being read (its buffer full, nothing acked)
			// while the critical message is taken.
			lo := consume(t, b, LaneLo, ConsumeOptions{MaxBatch: 8})
			loMsgs := collect(t, lo, 1, 10*time.Second)
			require.Equal(t, LaneLo, loMsgs[0].Lane)

			hi := consume(t, b, LaneHi, ConsumeOptions{})
			got := collect(t, hi, 1, 10*time.Second)
			require.Len(t, got, 1)
			require.Equal(t, "hi-1", got[0].MsgID)
			require.NoError(t, got[0].Ack())

			requirePending(t, b, LaneLo, backlog) // the low backlog is still waiting
		})
	}
}

func TestDeduplicatesByMsgID(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			o := m.opts(t)
			o.Registerer = reg
			b := openBus(t, o)
			ctx := ctxT(t)
			require.NoError(t, b.Publish(ctx, LaneHi, "42", []byte("first")))
			require.NoError(t, b.Publish(ctx, LaneHi, "42", []byte("again")))
			require.NoError(t, b.PublishBatch(ctx, []Message{{Lane: LaneHi, MsgID: "42", Data: []byte("batch")}}))
			requirePending(t, b, LaneHi, 1)
			require.InDelta(t, 2, value(t, b.met.duplicates), 0)

			c := consume(t, b, LaneHi, ConsumeOptions{})
			got := collect(t, c, 1, 10*time.Second)
			require.Equal(t, "first", string(got[0].Data))
			require.NoError(t, got[0].Ack())
		})
	}
}

func TestRedelivery(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			o := m.opts(t)
			o.AckWait = 300 * time.Millisecond
			b := openBus(t, o)
			ctx := ctxT(t)
			require.NoError(t, b.Publish(ctx, LaneLo, "1", []byte("x")))
			c := consume(t, b, LaneLo, ConsumeOptions{})

			t.Run("not acknowledged", func(t *testing.T) {
				got := collect(t, c, 1, 10*time.Second)
				require.EqualValues(t, 1, got[0].NumDelivered)
				// No ack: delivered again after AckWait.
				again := collect(t, c, 1, 10*time.Second)
				require.Equal(t, "1", again[0].MsgID)
				require.EqualValues(t, 2, again[0].NumDelivered)
			})
			t.Run("nak", func(t *testing.T) {
				got := collect(t, c, 1, 10*time.Second)
				require.NoError(t, got[0].Nak(0))
				again := collect(t, c, 1, 10*time.Second)
				require.Equal(t, "1", again[0].MsgID)
				require.Greater(t, again[0].NumDelivered, got[0].NumDelivered)
				require.NoError(t, again[0].Ack())
			})
			t.Run("term", func(t *testing.T) {
				require.NoError(t, b.Publish(ctx, LaneLo, "2", []byte("poison")))
				got := collect(t, c, 1, 10*time.Second)
				require.Equal(t, "2", got[0].MsgID)
				require.NoError(t, got[0].Term())
				require.Eventually(t, func() bool {
					n, err := b.Pending(ctx, LaneLo)
					return err == nil && n == 0
				}, 10*time.Second, 20*time.Millisecond)
			})
		})
	}
}

func TestStreamFull(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			o := m.opts(t)
			o.MaxBytes = 64 << 10
			o.Registerer = reg
			b := openBus(t, o)
			ctx := ctxT(t)
			data := make([]byte, 1024)
			var err error
			published := 0
			for i := 0; i < 200 && err == nil; i++ {
				err = b.Publish(ctx, LaneLo, strconv.Itoa(i), data)
				if err == nil {
					published++
				}
			}
			require.Error(t, err, "a 64 KiB stream takes fewer than 200 KiB messages")
			require.ErrorIs(t, err, ErrFull)
			require.Greater(t, published, 10)
			require.InDelta(t, 1, value(t, b.met.publishErrors.WithLabelValues("full")), 0)

			berr := b.PublishBatch(ctx, []Message{{Lane: LaneHi, MsgID: "batch", Data: data}})
			require.ErrorIs(t, berr, ErrFull)
			var be *BatchError
			require.ErrorAs(t, berr, &be)
			require.Len(t, be.Errs, 1)

			// Consuming frees room: the stream is a work queue.
			c := consume(t, b, LaneLo, ConsumeOptions{MaxBatch: 16})
			for _, msg := range collect(t, c, 16, 10*time.Second) {
				require.NoError(t, msg.Ack())
			}
			require.Eventually(t, func() bool {
				return b.Publish(ctx, LaneHi, "after", data) == nil
			}, 10*time.Second, 50*time.Millisecond)
		})
	}
}

func TestBadLane(t *testing.T) {
	b := openBus(t, Options{DataDir: t.TempDir()})
	ctx := ctxT(t)
	require.ErrorIs(t, b.Publish(ctx, Lane("mid"), "1", nil), ErrBadLane)
	_, err := b.Consume(ctx, Lane("mid"), ConsumeOptions{})
	require.ErrorIs(t, err, ErrBadLane)
	_, err = b.Pending(ctx, Lane("mid"))
	require.ErrorIs(t, err, ErrBadLane)
}

func TestOpenErrors(t *testing.T) {
	ctx := ctxT(t)
	tests := []struct {
		name string
		opts Options
	}{
		{"embedded without a data dir", Options{}},
		{"bad listen address", Options{DataDir: t.TempDir(), ListenAddr: "nope", Token: "0123456789abcdef"}},
		{"listener without a token", Options{DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0"}},
		{"unreachable server", Options{URL: "nats://127.0.0.1:1", ConnectTimeout: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(ctx, tt.opts)
			require.Error(t, err)
			require.Nil(t, b)
		})
	}
}

func TestEmbeddedSyncsEveryWrite(t *testing.T) {
	b := openBus(t, Options{DataDir: t.TempDir()})
	require.True(t, b.Embedded())
	require.NotNil(t, b.srv)
	cfg := b.srv.JetStreamConfig()
	require.NotNil(t, cfg)
	require.True(t, cfg.SyncAlways, "the embedded server fsyncs before it acknowledges")
	require.Empty(t, b.ClientURL(), "no TCP listener unless asked")
	info, err := b.stream.Info(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, jetstream.DefaultPersistMode, info.Config.PersistMode)
	require.Equal(t, jetstream.WorkQueuePolicy, info.Config.Retention)
	require.Equal(t, jetstream.DiscardNew, info.Config.Discard)
	require.Equal(t, DefaultDuplicates, info.Config.Duplicates)
}

func TestEmbeddedListener(t *testing.T) {
	const token = "0123456789abcdef-secret"
	b := openBus(t, Options{DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0", Token: token})
	url := b.ClientURL()
	require.NotEmpty(t, url)
	_, err := nats.Connect(url)
	require.Error(t, err, "the listener requires the token")
	_, err = nats.Connect(url, nats.Token("wrong-token-0123456789"))
	require.Error(t, err)
	nc, err := nats.Connect(url, nats.Token(token))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.Publish(ctxT(t), DefaultSubjectPrefix+".hi", []byte("from outside"))
	require.NoError(t, err)
	requirePending(t, b, LaneHi, 1)
}

func TestConsumerClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testConsumerClose(t, m) })
	}
}

func testConsumerClose(t *testing.T, m mode) {
	b := openBus(t, m.opts(t))
	ctx := ctxT(t)
	msgs := make([]Message, 10)
	for i := range msgs {
		msgs[i] = Message{Lane: LaneLo, MsgID: strconv.Itoa(i), Data: []byte("x")}
	}
	require.NoError(t, b.PublishBatch(ctx, msgs))

	c, err := b.Consume(ctx, LaneLo, ConsumeOptions{MaxBatch: 1})
	require.NoError(t, err)
	got := collect(t, c, 1, 10*time.Second)
	require.NoError(t, got[0].Ack())
	start := time.Now()
	require.NoError(t, c.Close())
	t.Logf("close took %s", time.Since(start))
	require.NoError(t, c.Close(), "idempotent")
	_, err = c.Next(ctx)
	require.ErrorIs(t, err, ErrClosed)

	// The messages the first consumer had pulled ahead were given back:
	// a new consumer gets them long before AckWait (60s).
	c2 := consume(t, b, LaneLo, ConsumeOptions{MaxBatch: 100})
	rest := collect(t, c2, 9, 10*time.Second)
	require.Len(t, rest, 9)
	for _, msg := range rest {
		require.NoError(t, msg.Ack())
	}
}

func TestNextHonoursContext(t *testing.T) {
	b := openBus(t, Options{DataDir: t.TempDir()})
	c := consume(t, b, LaneHi, ConsumeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestCloseIdempotentAndNotReady(t *testing.T) {
	b, err := Open(ctxT(t), Options{DataDir: t.TempDir()})
	require.NoError(t, err)
	c, err := b.Consume(ctxT(t), LaneHi, ConsumeOptions{})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	require.False(t, b.Ready())
	require.ErrorIs(t, b.Publish(ctxT(t), LaneHi, "1", nil), ErrUnavailable)
}

func TestQueueDepthMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := openBus(t, Options{DataDir: t.TempDir(), Registerer: reg})
	ctx := ctxT(t)
	require.NoError(t, b.Publish(ctx, LaneHi, "1", []byte("x")))
	require.NoError(t, b.Publish(ctx, LaneLo, "2", []byte("x")))
	require.NoError(t, b.Publish(ctx, LaneLo, "3", []byte("x")))
	require.Eventually(t, func() bool {
		depth := gathered(t, reg, "reflex_intake_queue_depth")
		return depth["hi"] == 1 && depth["lo"] == 2 && len(depth) == 2
	}, 10*time.Second, 10*time.Millisecond)
}

func TestBusCloseClosesConsumers(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(ctxT(t), Options{DataDir: dir})
	require.NoError(t, err)
	ctx := ctxT(t)
	msgs := make([]Message, 10)
	for i := range msgs {
		msgs[i] = Message{Lane: LaneLo, MsgID: strconv.Itoa(i), Data: []byte("x")}
	}
	require.NoError(t, b.PublishBatch(ctx, msgs))
	c, err := b.Consume(ctx, LaneLo, ConsumeOptions{MaxBatch: 1})
	require.NoError(t, err)
	got := collect(t, c, 1, 10*time.Second)
	require.NoError(t, got[0].Ack())
	require.NoError(t, b.Close()) // the consumer is still open
	_, err = c.Next(ctx)
	require.ErrorIs(t, err, ErrClosed)
	_, err = b.Consume(ctx, LaneLo, ConsumeOptions{})
	require.ErrorIs(t, err, ErrClosed)

	// The messages pulled ahead were given back before the server
	// stopped: after a restart they come at once, not after AckWait.
	b2 := openBus(t, Options{DataDir: dir})
	c2 := consume(t, b2, LaneLo, ConsumeOptions{MaxBatch: 100})
	rest := collect(t, c2, 9, 10*time.Second)
	require.Len(t, rest, 9)
}

func TestConsumerRecreatedAfterDeletion(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b := openBus(t, m.opts(t))
			ctx := ctxT(t)
			c := consume(t, b, LaneHi, ConsumeOptions{})
			require.NoError(t, b.Publish(ctx, LaneHi, "before", []byte("x")))
			got := collect(t, c, 1, 10*time.Second)
			require.NoError(t, got[0].Ack())

			// Someone deletes the durable consumer under the bus.
			require.NoError(t, b.stream.DeleteConsumer(ctx, consumerName(LaneHi)))
			require.NoError(t, b.Publish(ctx, LaneHi, "after", []byte("y")))
			// "before" may come again if the deletion overtook its ack.
			for seen := false; !seen; {
				for _, m := range collect(t, c, 1, 20*time.Second) {
					require.Contains(t, []string{"before", "after"}, m.MsgID)
					seen = seen || m.MsgID == "after"
					require.NoError(t, m.Ack())
				}
			}
		})
	}
}

// A batch also ends at MaxBytes: 100-byte messages with MaxBytes 350 come
// four at a time (the message that crosses the bound is included), never
// the 50 MaxBatch allows.
func TestBatchEndsAtMaxBytes(t *testing.T) {
	b := openBus(t, Options{DataDir: t.TempDir()})
	ctx := ctxT(t)
	msgs := make([]Message, 20)
	for i := range msgs {
		msgs[i] = Message{Lane: LaneLo, MsgID: "m" + strconv.Itoa(i), Data: bytes.Repeat([]byte("x"), 100)}
	}
	require.NoError(t, b.PublishBatch(ctx, msgs))
	c := consume(t, b, LaneLo, ConsumeOptions{MaxBatch: 50, MaxBytes: 350, Linger: time.Second})
	n := 0
	for n < len(msgs) {
		got, err := c.Next(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), 4)
		if n+len(got) < len(msgs) {
			// Every batch but a last partial one is full by bytes: the
			// linger of a second never ran out (the messages were there).
			require.Len(t, got, 4)
		}
		for _, m := range got {
			require.NoError(t, m.Ack())
		}
		n += len(got)
	}
	require.Equal(t, len(msgs), n)
}
