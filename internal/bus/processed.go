package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reflex-ops/reflex/internal/event"
)

// Defaults of ProcessedOptions.
const (
	DefaultProcessedStream        = "REFLEX_PROCESSED"
	DefaultProcessedSubjectPrefix = "reflex.processed"
	DefaultProcessedMaxBytes      = int64(1 << 30)
	// DefaultProcessedAckWait is how long a delivered processed message may
	// stay unacknowledged before it is delivered again.
	DefaultProcessedAckWait = 60 * time.Second
	// DefaultProcessedMaxAckPending bounds the delivered but
	// unacknowledged messages of one downstream consumer.
	DefaultProcessedMaxAckPending = 256
)

// partitionsKey is the stream metadata key that records the partition
// count, so that consumers in other processes learn it from the stream.
const partitionsKey = "reflex_partitions"

// ErrNoProcessedStream means the processed stream does not exist yet: the
// events service creates it at start.
var ErrNoProcessedStream = errors.New("bus: processed stream not found")

// ProcessedOptions configure the processed-event stream. The zero value
// gives the defaults.
type ProcessedOptions struct {
	// Stream is the stream's name (default "REFLEX_PROCESSED").
	Stream string
	// SubjectPrefix is the prefix of its subjects (default
	// "reflex.processed"): partition p is <prefix>.<p>.
	SubjectPrefix string
	// Partitions is the number of partitions, hosts mapped to them by
	// event.PartitionOf (default event.DefaultPartitions).
	Partitions int
	// MaxBytes bounds the stream (default 1 GiB). The stream keeps a
	// message until every consumer has acknowledged it; when the slowest
	// consumer's backlog reaches MaxBytes, publishes fail with ErrFull.
	MaxBytes int64
	// Replicas is the replica count (0: keep an existing stream's, 1 for
	// a new one).
	Replicas int
	// Logger receives logs (nil: the bus's logger, or none).
	Logger *slog.Logger
}

func (o *ProcessedOptions) setDefaults() {
	if o.Stream == "" {
		o.Stream = DefaultProcessedStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultProcessedSubjectPrefix
	}
	if o.Partitions <= 0 {
		o.Partitions = event.DefaultPartitions
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultProcessedMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Processed is the stream of processed events: what the pipeline stored,
// for the components after the store (trigger rules, the intelligence
// layer, the autonomous service). It is safe for concurrent use.
type Processed struct {
	streamConn // its own connection from DialProcessed, else the Bus's
	opts       ProcessedOptions
	log        *slog.Logger
}

// OpenProcessed creates or updates the processed stream on the bus's NATS
// server and returns it. The stream uses interest retention (a message is
// deleted once every consumer that existed when it was stored has
// acknowledged it; with no consumer at all it is not kept), DiscardNew at
// MaxBytes (a full stream refuses publishes rather than dropping what a
// consumer has not seen), and the intake log's duplicate window. Embedded,
// its writes are fsynced like the intake log's.
func (b *Bus) OpenProcessed(ctx context.Context, opts ProcessedOptions) (*Processed, error) {
	if opts.Logger == nil {
		opts.Logger = b.opts.Logger
	}
	opts.setDefaults()
	cfg := jetstream.StreamConfig{
		Name:        opts.Stream,
		Description: "reflex processed events; " + partitionsKey + "=" + strconv.Itoa(opts.Partitions),
		Subjects:    []string{opts.SubjectPrefix + ".*"},
		Retention:   jetstream.InterestPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    opts.MaxBytes,
		MaxMsgs:     -1,
		Replicas:    opts.Replicas,
		Duplicates:  DefaultDuplicates,
		Metadata:    map[string]string{partitionsKey: strconv.Itoa(opts.Partitions)},
	}
	st, err := b.createStream(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &Processed{streamConn: streamConn{nc: b.nc, js: b.js, stream: st}, opts: opts, log: opts.Logger.With("component", "processed-stream")}
	p.log.Info("processed stream open", "stream", cfg.Name, "subjects", cfg.Subjects[0],
		"partitions", opts.Partitions, "max_bytes", cfg.MaxBytes)
	return p, nil
}

// DialOptions configure DialProcessed.
type DialOptions struct {
	// URL of the NATS server (for the embedded server, its --nats-listen
	// address). Required.
	URL string
	// Token is the NATS token, if the server requires one.
	Token string
	// Stream and SubjectPrefix name the processed stream (defaults as in
	// ProcessedOptions).
	Stream, SubjectPrefix string
	// ConnectTimeout bounds the connection (default 10s).
	ConnectTimeout time.Duration
	// Logger receives logs (nil: none).
	Logger *slog.Logger
}

// DialProcessed connects to a NATS server and binds the processed stream
// that the events service created there (ErrNoProcessedStream if it does
// not exist yet), for a downstream component in another process. The
// partition count is read from the stream. Close closes the connection.
func DialProcessed(ctx context.Context, opts DialOptions) (*Processed, error) {
	po := ProcessedOptions{Stream: opts.Stream, SubjectPrefix: opts.SubjectPrefix, Logger: opts.Logger}
	po.setDefaults()
	log := po.Logger.With("component", "processed-stream")
	sc, err := dialStream(ctx, dialConfig{url: opts.URL, token: opts.Token, timeout: opts.ConnectTimeout,
		log: log, stream: po.Stream, notFound: ErrNoProcessedStream})
	if err != nil {
		return nil, err
	}
	if n := streamPartitions(sc.stream.CachedInfo().Config); n > 0 {
		po.Partitions = n
	}
	return &Processed{streamConn: sc, opts: po, log: log}, nil
}

// streamPartitions reads the partition count the events service recorded
// in the stream's metadata, or in its description for servers before 2.10
// (which have no metadata); 0 if neither has it.
func streamPartitions(cfg jetstream.StreamConfig) int {
	if n, err := strconv.Atoi(cfg.Metadata[partitionsKey]); err == nil && n > 0 {
		return n
	}
	if _, v, ok := strings.Cut(cfg.Description, partitionsKey+"="); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// Close closes the connection of a Processed from DialProcessed; for one
// from OpenProcessed it does nothing (the Bus owns the connection).
func (p *Processed) Close() error {
	p.closeConn()
	return nil
}

// Stream is the stream's name.
func (p *Processed) Stream() string { return p.opts.Stream }

// Partitions is the number of partitions.
func (p *Processed) Partitions() int { return p.opts.Partitions }

// Subject is the subject of partition n.
func (p *Processed) Subject(n int) string { return p.opts.SubjectPrefix + "." + strconv.Itoa(n) }

// MaxPayload is the largest message the server accepts, in bytes.
func (p *Processed) MaxPayload() int64 { return p.nc.MaxPayload() }

// Ready reports whether the connection is up.
func (p *Processed) Ready() bool { return p.nc != nil && p.nc.IsConnected() }

// ProcessedMessage is one message to publish on the processed stream.
type ProcessedMessage struct {
	// Partition is the message's partition, 0 <= Partition < Partitions().
	Partition int
	// MsgID is the message's identity: a message published again with the
	// same id within the duplicate window (2 minutes) is dropped by the
	// stream.
	MsgID string
	Data  []byte
}

// Publish publishes msgs with asynchronous JetStream publishes and waits
// for every acknowledgement (embedded: after an fsync; several messages
// share one). It returns nil when all were stored (or were duplicates), or
// a *BatchError naming the failed ones, wrapping ErrFull, ErrUnavailable or
// ErrTooLarge; they may be published again with the same ids. dups counts
// the messages the stream acknowledged as duplicates.
func (p *Processed) Publish(ctx context.Context, msgs []ProcessedMessage) (dups int, err error) {
	out := make([]asyncMsg, len(msgs))
	for i, msg := range msgs {
		out[i] = asyncMsg{msgID: msg.MsgID, data: msg.Data}
		if msg.Partition < 0 || msg.Partition >= p.opts.Partitions {
			out[i].refused = fmt.Errorf("bus: publish processed: partition %d out of [0, %d)", msg.Partition, p.opts.Partitions)
			continue
		}
		out[i].subject = p.Subject(msg.Partition)
	}
	return publishAsync(ctx, p.js, p.opts.Stream, out, func(i int, err error) error {
		return fmt.Errorf("bus: publish processed %d: %w", msgs[i].Partition, err)
	})
}

// ProcessedConsumerOptions configure a durable consumer of the processed
// stream.
type ProcessedConsumerOptions struct {
	// Name is the durable consumer's name: one per downstream component
	// ("rules", "incidents", ...). Required; letters, digits, '-' and '_'.
	Name string
	// Partitions limits the consumer to these partitions (nil: all).
	Partitions []int
	// AckWait is how long a delivered message may stay unacknowledged
	// before it is delivered again (default 60s).
	AckWait time.Duration
	// MaxAckPending bounds the delivered but unacknowledged messages
	// (default 256).
	MaxAckPending int
	// MaxDeliver bounds deliveries of a message (0: unbounded).
	MaxDeliver int
}

// ProcessedConsumer is a durable pull consumer of the processed stream.
// Fetch must not be called concurrently; Pending may be called from any
// goroutine.
type ProcessedConsumer struct {
	d *durable
}

// Consumer creates or updates the durable consumer opts.Name and returns
// it. A new consumer starts with the messages stored from then on (the
// stream keeps only what some consumer still needs); an existing one
// resumes where it left off.
func (p *Processed) Consumer(ctx context.Context, opts ProcessedConsumerOptions) (*ProcessedConsumer, error) {
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultProcessedAckWait
	}
	if opts.MaxAckPending <= 0 {
		opts.MaxAckPending = DefaultProcessedMaxAckPending
	}
	cfg, err := consumerConfig("processed", opts.Name, "reflex downstream component "+opts.Name,
		opts.AckWait, opts.MaxAckPending, opts.MaxDeliver)
	if err != nil {
		return nil, err
	}
	if len(opts.Partitions) == 0 {
		cfg.FilterSubject = p.opts.SubjectPrefix + ".*"
	} else {
		for _, n := range opts.Partitions {
			if n < 0 || n >= p.opts.Partitions {
				return nil, fmt.Errorf("bus: processed consumer %s: partition %d out of [0, %d)", opts.Name, n, p.opts.Partitions)
			}
			cfg.FilterSubjects = append(cfg.FilterSubjects, p.Subject(n))
		}
	}
	d, err := newDurable(ctx, "processed", p.stream, cfg)
	if err != nil {
		return nil, err
	}
	return &ProcessedConsumer{d: d}, nil
}

// Fetch waits up to wait for messages and returns at most n of them (none
// when wait passed without any). Each must be acknowledged (Ack), given
// back (Nak) or terminated (Term). If the durable consumer was deleted
// meanwhile, it is created again.
func (c *ProcessedConsumer) Fetch(ctx context.Context, n int, wait time.Duration) ([]Msg, error) {
	return c.d.fetch(ctx, n, wait)
}

// Pending is the consumer's backlog: messages not yet delivered plus those
// delivered and not yet acknowledged.
func (c *ProcessedConsumer) Pending(ctx context.Context) (uint64, error) {
	return c.d.pending(ctx)
}

// Info returns the stream's current state.
func (p *Processed) Info(ctx context.Context) (*jetstream.StreamInfo, error) {
	return p.info(ctx)
}
