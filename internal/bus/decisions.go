package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of DecisionsOptions and DecisionsConsumerOptions.
const (
	DefaultDecisionsStream = "REFLEX_DECISIONS"
	// DefaultDecisionsSubject is the stream's one subject: the requests.
	DefaultDecisionsSubject  = "reflex.decisions"
	DefaultDecisionsMaxBytes = int64(256 << 20)
	DefaultDecisionsMaxAge   = 7 * 24 * time.Hour
	// DefaultDecisionsAckWait is how long a delivered request may stay
	// unacknowledged before it is delivered again.
	DefaultDecisionsAckWait = 60 * time.Second
	// DefaultDecisionsMaxAckPending bounds the delivered but
	// unacknowledged requests.
	DefaultDecisionsMaxAckPending = 256
)

// ErrNoDecisionsStream means the decisions stream does not exist yet: the
// service that publishes decision requests creates it at start.
var ErrNoDecisionsStream = errors.New("bus: decisions stream not found")

// DecisionsOptions configure the stream of decision requests. The zero
// value gives the defaults.
type DecisionsOptions struct {
	// Stream is the stream's name (default "REFLEX_DECISIONS").
	Stream string
	// Subject is its one subject (default "reflex.decisions"), without
	// wildcards.
	Subject string
	// MaxBytes bounds the stream (default 256 MiB). When it is reached,
	// the oldest requests are dropped to make room: publishing never
	// fails because nobody consumes.
	MaxBytes int64
	// MaxAge is how long a request waits at most (default 7 days); older
	// ones are dropped. Below 2 minutes it also shortens the duplicate
	// window, which cannot exceed it.
	MaxAge time.Duration
	// Replicas is the replica count (0: keep an existing stream's, 1 for
	// a new one).
	Replicas int
	// Logger receives logs (nil: the bus's logger, or none).
	Logger *slog.Logger
}

func (o *DecisionsOptions) setDefaults() {
	if o.Stream == "" {
		o.Stream = DefaultDecisionsStream
	}
	if o.Subject == "" {
		o.Subject = DefaultDecisionsSubject
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultDecisionsMaxBytes
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultDecisionsMaxAge
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Decisions is the stream of decision requests: the rules engine publishes
// one per rule firing, and the Autonomous Response Service takes them. It
// is safe for concurrent use.
type Decisions struct {
	streamConn // its own connection from DialDecisions, else the Bus's
	opts       DecisionsOptions
	log        *slog.Logger
}

// OpenDecisions creates or updates the decisions stream on the bus's NATS
// server and returns it. The stream is a work queue (a request is deleted
// once the consumer acknowledges it, and waits until then, also while no
// consumer exists yet), bounded by MaxBytes and MaxAge with DiscardOld (a
// full stream drops its oldest requests rather than refuse new ones, so a
// missing consumer never stalls the rules engine), with the intake log's
// duplicate window. Embedded, its writes are fsynced like the intake
// log's.
func (b *Bus) OpenDecisions(ctx context.Context, opts DecisionsOptions) (*Decisions, error) {
	if opts.Logger == nil {
		opts.Logger = b.opts.Logger
	}
	opts.setDefaults()
	if strings.ContainsAny(opts.Subject, " *>") {
		return nil, fmt.Errorf("bus: decisions subject %q must be without spaces, '*' or '>'", opts.Subject)
	}
	cfg := jetstream.StreamConfig{
		Name:        opts.Stream,
		Description: "reflex decision requests, for the Autonomous Response Service",
		Subjects:    []string{opts.Subject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    opts.MaxBytes,
		MaxAge:      opts.MaxAge,
		MaxMsgs:     -1,
		Replicas:    opts.Replicas,
		// The server refuses a duplicate window longer than MaxAge.
		Duplicates: min(DefaultDuplicates, opts.MaxAge),
	}
	st, err := b.createStream(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d := &Decisions{streamConn: streamConn{nc: b.nc, js: b.js, stream: st}, opts: opts, log: opts.Logger.With("component", "decisions-stream")}
	d.log.Info("decisions stream open", "stream", cfg.Name, "subject", cfg.Subjects[0],
		"max_bytes", cfg.MaxBytes, "max_age", cfg.MaxAge)
	return d, nil
}

// DialDecisionsOptions configure DialDecisions.
type DialDecisionsOptions struct {
	// URL of the NATS server (for the embedded server, its --nats-listen
	// address). Required.
	URL string
	// Token is the NATS token, if the server requires one.
	Token string
	// Stream names the decisions stream (default "REFLEX_DECISIONS"). Its
	// subject is read from the stream.
	Stream string
	// ConnectTimeout bounds the connection (default 10s).
	ConnectTimeout time.Duration
	// Logger receives logs (nil: none).
	Logger *slog.Logger
}

// DialDecisions connects to a NATS server and binds the decisions stream
// that another process created there (ErrNoDecisionsStream if it does not
// exist yet), to publish or consume decision requests from this one. The
// subject and limits are read from the stream. Close closes the
// connection.
func DialDecisions(ctx context.Context, opts DialDecisionsOptions) (*Decisions, error) {
	do := DecisionsOptions{Stream: opts.Stream, Logger: opts.Logger}
	do.setDefaults()
	log := do.Logger.With("component", "decisions-stream")
	sc, err := dialStream(ctx, dialConfig{url: opts.URL, token: opts.Token, timeout: opts.ConnectTimeout,
		log: log, stream: do.Stream, notFound: ErrNoDecisionsStream})
	if err != nil {
		return nil, err
	}
	cfg := sc.stream.CachedInfo().Config
	if len(cfg.Subjects) != 1 || cfg.Retention != jetstream.WorkQueuePolicy {
		sc.closeConn()
		return nil, fmt.Errorf("bus: stream %s is not a decisions stream (subjects %v, retention %s)", do.Stream, cfg.Subjects, cfg.Retention)
	}
	do.Subject, do.MaxBytes, do.MaxAge, do.Replicas = cfg.Subjects[0], cfg.MaxBytes, cfg.MaxAge, cfg.Replicas
	return &Decisions{streamConn: sc, opts: do, log: log}, nil
}

// Close closes the connection of a Decisions from DialDecisions; for one
// from OpenDecisions it does nothing (the Bus owns the connection).
func (d *Decisions) Close() error {
	d.closeConn()
	return nil
}

// Stream is the stream's name.
func (d *Decisions) Stream() string { return d.opts.Stream }

// Subject is the stream's subject.
func (d *Decisions) Subject() string { return d.opts.Subject }

// MaxPayload is the largest message the connection's server takes.
func (d *Decisions) MaxPayload() int64 { return d.nc.MaxPayload() }

// DecisionMessage is one decision request to publish.
type DecisionMessage struct {
	// MsgID is the request's identity (the rule firing's), required: a
	// request published again with the same id within the duplicate
	// window (2 minutes) is dropped by the stream.
	MsgID string
	Data  []byte
}

// Publish publishes msgs with asynchronous JetStream publishes and waits
// for every acknowledgement (embedded: after an fsync; several messages
// share one). It returns nil when all were stored (or were duplicates), or
// a *BatchError naming the failed ones, wrapping ErrUnavailable or
// ErrTooLarge (or ErrFull when the server itself is out of storage; the
// stream's own limits drop old requests instead); they may be published
// again with the same ids. dups counts the messages the stream
// acknowledged as duplicates.
func (d *Decisions) Publish(ctx context.Context, msgs []DecisionMessage) (dups int, err error) {
	out := make([]asyncMsg, len(msgs))
	for i, msg := range msgs {
		out[i] = asyncMsg{subject: d.opts.Subject, msgID: msg.MsgID, data: msg.Data}
		if msg.MsgID == "" {
			out[i].refused = fmt.Errorf("bus: publish decision %d of %d: no MsgID", i+1, len(msgs))
		}
	}
	return publishAsync(ctx, d.js, d.opts.Stream, out, func(i int, err error) error {
		return fmt.Errorf("bus: publish decision %s: %w", msgs[i].MsgID, err)
	})
}

// DecisionsConsumerOptions configure the durable consumer of the
// decisions stream.
type DecisionsConsumerOptions struct {
	// Name is the durable consumer's name. Required; letters, digits, '-'
	// and '_'. A work queue admits one consumer: every instance of the
	// consuming service uses the same name and shares the requests.
	Name string
	// AckWait is how long a delivered request may stay unacknowledged
	// before it is delivered again (default 60s).
	AckWait time.Duration
	// MaxAckPending bounds the delivered but unacknowledged requests
	// (default 256).
	MaxAckPending int
	// MaxDeliver bounds deliveries of a request (0: unbounded).
	MaxDeliver int
}

// DecisionsConsumer is the durable pull consumer of the decisions stream.
// Fetch must not be called concurrently; Pending may be called from any
// goroutine.
type DecisionsConsumer struct {
	d *durable
}

// Consumer creates or updates the durable consumer opts.Name and returns
// it. A new consumer is delivered every request the stream holds, those
// published before it existed included; an existing one resumes where it
// left off. The stream admits no second consumer under another name.
func (d *Decisions) Consumer(ctx context.Context, opts DecisionsConsumerOptions) (*DecisionsConsumer, error) {
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultDecisionsAckWait
	}
	if opts.MaxAckPending <= 0 {
		opts.MaxAckPending = DefaultDecisionsMaxAckPending
	}
	cfg, err := consumerConfig("decisions", opts.Name, "reflex decision requests, taken by "+opts.Name,
		opts.AckWait, opts.MaxAckPending, opts.MaxDeliver)
	if err != nil {
		return nil, err
	}
	cfg.FilterSubject = d.opts.Subject
	dur, err := newDurable(ctx, "decisions", d.stream, cfg)
	if err != nil {
		return nil, err
	}
	return &DecisionsConsumer{d: dur}, nil
}

// Fetch waits up to wait for requests and returns at most n of them (none
// when wait passed without any). Each must be acknowledged (Ack: the
// stream deletes it), given back (Nak) or terminated (Term). If the
// durable consumer was deleted meanwhile, it is created again.
func (c *DecisionsConsumer) Fetch(ctx context.Context, n int, wait time.Duration) ([]Msg, error) {
	return c.d.fetch(ctx, n, wait)
}

// Pending is the consumer's backlog: requests not yet delivered plus those
// delivered and not yet acknowledged.
func (c *DecisionsConsumer) Pending(ctx context.Context) (uint64, error) {
	return c.d.pending(ctx)
}

// Info returns the stream's current state.
func (d *Decisions) Info(ctx context.Context) (*jetstream.StreamInfo, error) {
	return d.info(ctx)
}
