package processed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Fetcher hands out messages of the processed stream.
// *bus.ProcessedConsumer implements it.
type Fetcher interface {
	Fetch(ctx context.Context, n int, wait time.Duration) ([]bus.Msg, error)
}

var _ Fetcher = (*bus.ProcessedConsumer)(nil)

// Handler handles a batch of records. It is called from the Consumer's Run
// goroutine, one batch at a time. Returning nil acknowledges the batch;
// an error has it delivered again after a backoff, unless it wraps
// ErrPermanent. The same record may be handed over again (see the package
// doc): the handler's effects must be idempotent by (consumer,
// Record.Key()). The records and their events may be shared with other
// consumers (ConsumerOptions.Shared): a handler must not modify them.
type Handler func(ctx context.Context, recs []Record) error

// ErrPermanent marks a handler error that retrying cannot fix: the batch
// is terminated (never delivered again), logged and counted.
var ErrPermanent = errors.New("processed: permanent failure")

// Permanent wraps err in ErrPermanent.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Defaults of ConsumerOptions.
const (
	DefaultBatchMessages = 16
	DefaultWait          = time.Second
	DefaultRetryFirst    = time.Second
	DefaultRetryMax      = time.Minute
)

// ConsumerOptions configure a Consumer. Name is required.
type ConsumerOptions struct {
	// Name is the component's name: the durable consumer's name, and a
	// label of the metrics.
	Name string
	// Partitions limits the consumer to these partitions (nil: all).
	Partitions []int
	// BatchMessages is how many stream messages (each holding many
	// records) one batch takes at most (default 16).
	BatchMessages int
	// Wait is how long a fetch waits for the first message (default 1s).
	Wait time.Duration
	// MaxAckPending bounds the messages delivered and not yet
	// acknowledged, retries waiting for redelivery included (default
	// bus.DefaultProcessedMaxAckPending).
	MaxAckPending int
	// AckWait is how long a batch may be in the handler before its
	// messages are delivered again (default bus.DefaultProcessedAckWait).
	AckWait time.Duration
	// RetryMin and RetryMax bound the redelivery backoff after a handler
	// error: RetryMin doubled per earlier delivery (defaults 1s and 1m).
	RetryMin, RetryMax time.Duration
	// Shared, if set, decodes each message once for all the consumers of
	// the process that share it (see SharedDecoder).
	Shared *SharedDecoder
	// Recent, if above 0, skips records among the last Recent keys that
	// the handler handled successfully (see Recent).
	Recent int
	// Logger receives logs (nil: none).
	Logger *slog.Logger
	// Registerer registers the metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Consumer reads the processed stream for one component.
type Consumer struct {
	opts   ConsumerOptions
	f      Fetcher
	log    *slog.Logger
	recent *Recent
	met    consumerMetrics
}

// Consume creates (or resumes) the durable consumer opts.Name on src and
// returns a Consumer reading it. Run it with Run.
func Consume(ctx context.Context, src *bus.Processed, opts ConsumerOptions) (*Consumer, error) {
	if opts.Name == "" {
		return nil, errors.New("processed: ConsumerOptions.Name is required")
	}
	pc, err := src.Consumer(ctx, bus.ProcessedConsumerOptions{
		Name: opts.Name, Partitions: opts.Partitions, AckWait: opts.AckWait, MaxAckPending: opts.MaxAckPending,
	})
	if err != nil {
		return nil, err
	}
	return NewConsumer(pc, opts)
}

// NewConsumer returns a Consumer reading from f.
func NewConsumer(f Fetcher, opts ConsumerOptions) (*Consumer, error) {
	if f == nil {
		return nil, errors.New("processed: a Fetcher is required")
	}
	if opts.Name == "" {
		return nil, errors.New("processed: ConsumerOptions.Name is required")
	}
	if opts.BatchMessages <= 0 {
		opts.BatchMessages = DefaultBatchMessages
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultWait
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryFirst
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(DefaultRetryMax, opts.RetryMin)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	met, err := newConsumerMetrics(opts.Registerer, opts.Name)
	if err != nil {
		return nil, err
	}
	c := &Consumer{opts: opts, f: f, log: opts.Logger.With("component", "processed-consumer", "consumer", opts.Name), met: met}
	if opts.Recent > 0 {
		c.recent = NewRecent(opts.Recent)
	}
	return c, nil
}

// Run fetches batches and hands them to h until ctx ends; it then returns
// nil. A batch in the handler when ctx ends is finished (h gets a context
// that is not canceled) and acknowledged.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	wait := c.opts.RetryMin
	for ctx.Err() == nil {
		msgs, err := c.f.Fetch(ctx, c.opts.BatchMessages, c.opts.Wait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.met.fetchErrors.Inc()
			c.log.Warn("fetch from the processed stream failed; retrying", "retry_in", wait, "err", err)
			if !sleep(ctx, wait) {
				break
			}
			wait = min(2*wait, c.opts.RetryMax)
			continue
		}
		wait = c.opts.RetryMin
		if len(msgs) > 0 {
			c.handle(context.WithoutCancel(ctx), msgs, h)
		}
	}
	return nil
}

// Backoff is the redelivery delay of a batch whose messages were
// delivered n times: min, doubled for each earlier delivery, at most max.
func Backoff(n uint64, minDelay, maxDelay time.Duration) time.Duration {
	d := minDelay
	for i := uint64(1); i < n && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

// decode decodes m, through the shared decoder when there is one.
func (c *Consumer) decode(m *bus.Msg) ([]Record, error) {
	if c.opts.Shared != nil {
		return c.opts.Shared.Decode(m.MsgID, m.Data)
	}
	_, rs, err := Decode(m.Data)
	return rs, err
}

func (c *Consumer) handle(ctx context.Context, msgs []bus.Msg, h Handler) {
	var recs []Record
	live := msgs[:0:0]
	for i := range msgs {
		rs, err := c.decode(&msgs[i])
		if err != nil {
			c.met.corrupt.Inc()
			c.log.Error("terminating a processed stream message that cannot be decoded", "msg_id", msgs[i].MsgID, "bytes", len(msgs[i].Data), "err", err)
			if err := msgs[i].Term(); err != nil {
				c.log.Warn("terminate message", "msg_id", msgs[i].MsgID, "err", err)
			}
			continue
		}
		recs = append(recs, rs...)
		live = append(live, msgs[i])
	}
	if len(live) == 0 {
		return
	}
	fresh := recs
	if c.recent != nil {
		fresh = c.recent.Unseen(recs)
		c.met.skipped.Add(float64(len(recs) - len(fresh)))
	}
	var err error
	if len(fresh) > 0 {
		err = c.call(ctx, h, fresh)
	}
	switch {
	case err == nil:
		if c.recent != nil {
			keys := make([]int64, len(fresh))
			for i := range fresh {
				keys[i] = fresh[i].Key()
			}
			c.recent.Mark(keys...)
		}
		c.met.records.Add(float64(len(fresh)))
		for i := range live {
			if err := live[i].Ack(); err != nil {
				c.log.Warn("ack processed message; it will be delivered again", "msg_id", live[i].MsgID, "err", err)
			}
		}
	case errors.Is(err, ErrPermanent):
		c.met.failures.WithLabelValues("permanent").Inc()
		c.log.Error("handler failed permanently; batch terminated", "messages", len(live), "records", len(fresh), "err", err)
		for i := range live {
			if err := live[i].Term(); err != nil {
				c.log.Warn("terminate processed message", "msg_id", live[i].MsgID, "err", err)
			}
		}
	default:
		c.met.failures.WithLabelValues("retry").Inc()
		var n uint64
		for i := range live {
			n = max(n, live[i].NumDelivered)
		}
		delay := Backoff(n, c.opts.RetryMin, c.opts.RetryMax)
		c.log.Error("handler failed; batch will be delivered again", "messages", len(live), "records", len(fresh), "redeliver_in", delay, "err", err)
		for i := range live {
			if err := live[i].Nak(delay); err != nil {
				c.log.Warn("nak processed message", "msg_id", live[i].MsgID, "err", err)
			}
		}
	}
}

// call runs h, turning a panic into an error (retried like one).
func (c *Consumer) call(ctx context.Context, h Handler, recs []Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("processed: handler panicked: %v", p)
		}
	}()
	return h(ctx, recs)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type consumerMetrics struct {
	records, skipped, corrupt, fetchErrors prometheus.Counter
	failures                               *prometheus.CounterVec
}

func newConsumerMetrics(reg prometheus.Registerer, name string) (consumerMetrics, error) {
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_processed_consumed_records_total",
		Help: "Processed-stream records handled successfully, by consumer.",
	}, []string{"consumer"})
	skipped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_processed_skipped_records_total",
		Help: "Processed-stream records skipped as recently handled (duplicates), by consumer.",
	}, []string{"consumer"})
	corrupt := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_processed_corrupt_messages_total",
		Help: "Processed-stream messages that could not be decoded and were terminated, by consumer.",
	}, []string{"consumer"})
	fetch := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_processed_fetch_failures_total",
		Help: "Failed fetches from the processed stream, by consumer.",
	}, []string{"consumer"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_processed_handler_failures_total",
		Help: "Batches whose handler failed, by consumer and outcome (retry: delivered again after a backoff; permanent: terminated).",
	}, []string{"consumer", "outcome"})
	for _, v := range []**prometheus.CounterVec{&records, &skipped, &corrupt, &fetch, &failures} {
		if err := promutil.Register(reg, v); err != nil {
			return consumerMetrics{}, fmt.Errorf("processed: %w", err)
		}
	}
	return consumerMetrics{
		records: records.WithLabelValues(name), skipped: skipped.WithLabelValues(name),
		corrupt: corrupt.WithLabelValues(name), fetchErrors: fetch.WithLabelValues(name),
		failures: failures.MustCurryWith(prometheus.Labels{"consumer": name}),
	}, nil
}
