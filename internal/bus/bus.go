// Package bus is reflex's intake log: a NATS JetStream stream with two lanes,
// one for critical and high events and one for the rest, each read by its own
// durable pull consumer. Each lane is split into partitions by host
// (event.PartitionOf): the subjects are <prefix>.hi.<p> and <prefix>.lo.<p>,
// and a lane's consumer reads all of its partitions, as well as the
// unpartitioned <prefix>.hi / <prefix>.lo of earlier releases. By default the NATS server runs embedded in the
// process with its file store in the data directory and an fsync before every
// acknowledgement; given a URL, the bus uses an external JetStream instead.
// The same code path serves both.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
)

// Lane is one of the two subjects of the intake stream. Each lane has its own
// consumer, so critical events never wait behind a backlog of low ones.
type Lane string

// The lanes.
const (
	// LaneHi carries critical and high events.
	LaneHi Lane = "hi"
	// LaneLo carries medium, low and info events.
	LaneLo Lane = "lo"
)

// Lanes lists both lanes, the critical one first.
var Lanes = []Lane{LaneHi, LaneLo}

// Valid reports whether l is LaneHi or LaneLo.
func (l Lane) Valid() bool { return l == LaneHi || l == LaneLo }

// Errors of the bus. Publish and Consume wrap them; test with errors.Is.
var (
	// ErrFull means the stream has no room left (its MaxBytes or MaxMsgs,
	// or the server's storage, is exhausted). Intake answers 503.
	ErrFull = errors.New("bus: intake log full")
	// ErrUnavailable means the log did not answer: no responders, a
	// timeout, or a lost connection. Intake answers 503.
	ErrUnavailable = errors.New("bus: intake log unavailable")
	// ErrClosed means the bus or the consumer has been closed.
	ErrClosed = errors.New("bus: closed")
	// ErrBadLane means a lane other than LaneHi or LaneLo was given.
	ErrBadLane = errors.New("bus: unknown lane")
	// ErrBadPartition means a partition outside [0, Partitions) was given.
	ErrBadPartition = errors.New("bus: partition out of range")
)

// Defaults of Options.
const (
	DefaultStream        = "REFLEX_INTAKE"
	DefaultSubjectPrefix = "reflex.intake"
	DefaultMaxBytes      = int64(1 << 30)
	DefaultAckWait       = 60 * time.Second
	DefaultMaxAckPending = 1024
	DefaultDuplicates    = 2 * time.Minute
	DefaultPartitions    = event.DefaultPartitions
)

// Options configure Open. The zero value, plus a DataDir, runs an embedded
// server with the defaults below.
type Options struct {
	// URL of an external NATS server with JetStream. Empty runs the
	// embedded server.
	URL string
	// DataDir is the embedded server's store directory, for example
	// <data-dir>/nats. Required when URL is empty; unused otherwise.
	DataDir string
	// ListenAddr, for the embedded server only, is a host:port on which it
	// also accepts NATS clients (port 0 picks a free port). Empty means no
	// TCP listener at all: the bus talks to it in-process.
	ListenAddr string
	// Token, for the embedded server only, is the token NATS clients must
	// present; it is required with ListenAddr (nothing listens without
	// authentication). An external server's credentials go in URL
	// (nats://user:password@host or nats://token@host).
	Token string
	// MaxPayload, for the embedded server only, is the largest message it
	// accepts, in bytes (zero: NATS's default, 1 MiB). An external
	// server's limit is its max_payload; MaxPayload reports either.
	MaxPayload int32
	// Stream is the JetStream stream name (default "REFLEX_INTAKE").
	Stream string
	// SubjectPrefix is the subject prefix of the lanes (default
	// "reflex.intake"): the stream holds <prefix>.hi.<p> and
	// <prefix>.lo.<p> for each partition p, and the unpartitioned
	// <prefix>.hi and <prefix>.lo that releases before partitions wrote
	// (still consumed, never written).
	SubjectPrefix string
	// Partitions is the number of partitions of each lane (default
	// event.DefaultPartitions). Publishers derive an event's partition
	// from its host with event.PartitionOf(host, Partitions); consumers
	// read every partition whatever the count, so changing it needs no
	// migration (a host's events then move to another partition, so do it
	// while the log is empty).
	Partitions int
	// MaxBytes bounds the stream's size (default 1 GiB). When it is
	// reached, Publish fails with ErrFull until consumers catch up.
	MaxBytes int64
	// MaxMsgs bounds the stream's message count (0: unlimited).
	MaxMsgs int64
	// Replicas is the stream's replica count. Zero keeps the count of an
	// existing stream and creates a new one with 1. Use 3 on a cluster
	// that spans failure domains.
	Replicas int
	// AckWait is how long a delivered message may stay unacknowledged
	// before it is redelivered (default 60s).
	AckWait time.Duration
	// MaxAckPending bounds the delivered but unacknowledged messages of
	// each lane's consumer (default 1024).
	MaxAckPending int
	// ConnectTimeout bounds the connection and the start of the embedded
	// server (default 10s).
	ConnectTimeout time.Duration
	// Logger receives the bus's and the embedded server's logs (nil: none).
	Logger *slog.Logger
	// Registerer registers the bus's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Partitions <= 0 {
		o.Partitions = DefaultPartitions
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxMsgs <= 0 {
		o.MaxMsgs = -1
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Bus is an open intake log. It is safe for concurrent use.
type Bus struct {
	opts   Options
	log    *slog.Logger
	srv    *server.Server // nil with an external server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	cons   map[Lane]jetstream.Consumer
	met    *metrics

	mu        sync.Mutex
	consumers map[*Consumer]struct{} // open consumers, closed by Close

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Open starts the embedded server (or connects to opts.URL), creates or
// updates the stream and its two durable consumers, and returns the bus.
func Open(ctx context.Context, opts Options) (*Bus, error) {
	opts.setDefaults()
	b := &Bus{
		opts:      opts,
		log:       opts.Logger.With("component", "bus"),
		consumers: make(map[*Consumer]struct{}),
		closed:    make(chan struct{}),
	}
	if err := b.connect(ctx); err != nil {
		b.shutdown()
		return nil, err
	}
	if err := b.setup(ctx); err != nil {
		b.shutdown()
		return nil, err
	}
	met, err := newMetrics(b, opts.Registerer)
	if err != nil {
		b.shutdown()
		return nil, err
	}
	b.met = met
	return b, nil
}

func (b *Bus) connect(ctx context.Context) error {
	nopts := []nats.Option{
		nats.Name("reflex"),
		nats.Timeout(b.opts.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Warn("NATS async error", "subject", subj, "err", err)
		}),
	}
	url := b.opts.URL
	if url == "" {
		srv, err := startEmbedded(b.opts, b.log)
		if err != nil {
			return err
		}
		b.srv = srv
		nopts = append(nopts, nats.InProcessServer(srv))
		if b.opts.Token != "" {
			nopts = append(nopts, nats.Token(b.opts.Token))
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: connect: %w", err)
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		where := "the embedded server"
		if url != "" {
			where = RedactURL(url)
		}
		return fmt.Errorf("bus: connect to NATS at %s: %w: %w", where, ErrUnavailable, err)
	}
	b.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxAsyncPending))
	if err != nil {
		return fmt.Errorf("bus: jetstream: %w", err)
	}
	b.js = js
	return nil
}

// RedactURL returns a NATS server URL (or a comma-separated list of them)
// with any credentials replaced by "<redacted>", for logs and errors.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		u = strings.TrimSpace(u)
		at := strings.LastIndex(u, "@")
		scheme := strings.Index(u, "://")
		switch {
		case at >= 0 && scheme >= 0 && at > scheme:
			parts[i] = u[:scheme+3] + "<redacted>" + u[at:]
		case at >= 0 && scheme < 0:
			parts[i] = "<redacted>" + u[at:]
		default:
			parts[i] = u
		}
	}
	return strings.Join(parts, ",")
}

// subject returns the subject of partition p of a lane.
func (b *Bus) subject(l Lane, p int) string {
	return b.opts.SubjectPrefix + "." + string(l) + "." + strconv.Itoa(p)
}

// laneSubjects returns the subjects a lane's consumer reads: the lane of
// releases before partitions, and every partition.
func (b *Bus) laneSubjects(l Lane) []string {
	base := b.opts.SubjectPrefix + "." + string(l)
	return []string{base, base + ".*"}
}

// Partitions is the number of partitions of each lane.
func (b *Bus) Partitions() int { return b.opts.Partitions }

// PartitionOf returns the partition of host's events:
// event.PartitionOf(host, b.Partitions()).
func (b *Bus) PartitionOf(host string) int { return event.PartitionOf(host, b.opts.Partitions) }

// consumerName returns the durable consumer name of a lane.
func consumerName(l Lane) string { return "pipeline-" + string(l) }

func (b *Bus) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ConnectTimeout)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:        b.opts.Stream,
		Description: "reflex intake log",
		Subjects:    append(b.laneSubjects(LaneHi), b.laneSubjects(LaneLo)...),
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    b.opts.MaxBytes,
		MaxMsgs:     b.opts.MaxMsgs,
		MaxAge:      0,
		Replicas:    b.opts.Replicas,
		Duplicates:  DefaultDuplicates,
		// The default persist mode: a write is flushed (and, embedded,
		// fsynced) before the publish is acknowledged.
		PersistMode: jetstream.DefaultPersistMode,
	}
	st, err := b.createStream(ctx, cfg)
	if err != nil {
		return err
	}
	b.stream = st
	b.cons = make(map[Lane]jetstream.Consumer, 2)
	for _, l := range Lanes {
		if b.srv != nil {
			if err := b.resetPending(ctx, l); err != nil {
				return err
			}
		}
		c, err := b.ensureConsumer(ctx, l)
		if err != nil {
			return err
		}
		b.cons[l] = c
	}
	b.log.Info("intake log open", "stream", cfg.Name, "embedded", b.srv != nil,
		"sync_always", b.srv != nil, "max_bytes", cfg.MaxBytes, "partitions", b.opts.Partitions)
	return nil
}

// ensureConsumer creates or updates the durable consumer of a lane. It
// filters both the lane's subject of releases before partitions and the
// wildcard of its partitions (multiple filter subjects, NATS 2.10 and
// later). A consumer with other filters (the previous release's) is
// deleted and created again: the stream is a work queue, so the new one
// is delivered everything not yet acknowledged. On a NATS server before
// 2.10 it filters the partitions only, and refuses to start while the old
// subject still holds messages, which that server could not deliver.
func (b *Bus) ensureConsumer(ctx context.Context, l Lane) (jetstream.Consumer, error) {
	subjects := b.laneSubjects(l)
	cfg := jetstream.ConsumerConfig{
		Durable:        consumerName(l),
		Description:    "reflex pipeline, " + string(l) + " lane, all partitions",
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        b.opts.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  b.opts.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
	}
	single := cfg
	single.FilterSubjects = nil
	single.FilterSubject = subjects[1]

	if !b.multiFilter() {
		info, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subjects[0]))
		if err != nil {
			return nil, fmt.Errorf("bus: stream %s: %w", b.opts.Stream, classify(err))
		}
		if n := info.State.Subjects[subjects[0]]; n > 0 {
			return nil, fmt.Errorf("bus: %d messages remain on %s, which NATS %s (before 2.10, no multiple filter subjects) cannot deliver beside the partitions: upgrade NATS, or let the previous reflex release drain the intake log first",
				n, subjects[0], b.nc.ConnectedServerVersion())
		}
		cfg = single
	}
	if c, err := b.stream.Consumer(ctx, consumerName(l)); err == nil {
		have := c.CachedInfo().Config
		if !slices.Equal(have.FilterSubjects, cfg.FilterSubjects) || have.FilterSubject != cfg.FilterSubject {
			b.log.Info("moving the intake consumer to the partitioned subjects", "lane", string(l))
			if err := b.stream.DeleteConsumer(ctx, consumerName(l)); err != nil {
				return nil, fmt.Errorf("bus: replace consumer %s: %w", consumerName(l), classify(err))
			}
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("bus: consumer %s: %w", consumerName(l), classify(err))
	}
	c, err := b.stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: create consumer %s: %w", consumerName(l), classify(err))
	}
	return c, nil
}

// multiFilter reports whether the server supports consumers with multiple
// filter subjects (NATS 2.10 and later).
func (b *Bus) multiFilter() bool {
	var major, minor int
	if _, err := fmt.Sscanf(b.nc.ConnectedServerVersion(), "%d.%d", &major, &minor); err != nil {
		return true // an unknown version: assume a current one
	}
	return major > 2 || (major == 2 && minor >= 10)
}

// resetPending makes the messages that an earlier run of the embedded
// server left delivered but unacknowledged (it was killed, or stopped while
// they were in flight) available at once instead of after AckWait. The
// embedded server has no other consumer than this process, so it drops and
// recreates the lane's consumer: the stream is a work queue, so what
// remains in it is exactly what was never acknowledged. With an external
// server other instances may be working on those messages; they wait for
// AckWait there.
func (b *Bus) resetPending(ctx context.Context, l Lane) error {
	c, err := b.stream.Consumer(ctx, consumerName(l))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bus: consumer %s: %w", consumerName(l), classify(err))
	}
	info := c.CachedInfo()
	if info == nil || info.NumAckPending == 0 {
		return nil
	}
	b.log.Info("redelivering intake messages left unacknowledged by the last run",
		"lane", string(l), "messages", info.NumAckPending)
	if err := b.stream.DeleteConsumer(ctx, consumerName(l)); err != nil {
		return fmt.Errorf("bus: reset consumer %s: %w", consumerName(l), classify(err))
	}
	return nil
}

// Embedded reports whether the bus runs its own NATS server.
func (b *Bus) Embedded() bool { return b.srv != nil }

// ClientURL is the URL NATS clients can use to reach the bus: the external
// server's URL, or the embedded server's listener ("" when it has none).
func (b *Bus) ClientURL() string {
	if b.srv == nil {
		return b.opts.URL
	}
	if b.opts.ListenAddr == "" {
		return ""
	}
	return b.srv.ClientURL()
}

// MaxPayload is the largest message the server accepts, in bytes.
func (b *Bus) MaxPayload() int64 { return b.nc.MaxPayload() }

// Stream is the name of the intake stream.
func (b *Bus) Stream() string { return b.opts.Stream }

// Ready reports whether the bus is connected and, when embedded, its server
// is running with JetStream.
func (b *Bus) Ready() bool {
	select {
	case <-b.closed:
		return false
	default:
	}
	if b.nc == nil || !b.nc.IsConnected() {
		return false
	}
	if b.srv != nil && (!b.srv.Running() || !b.srv.JetStreamEnabled()) {
		return false
	}
	return true
}

// Pending returns the depth of a lane: the messages its consumer has not
// yet been delivered plus those delivered and not yet acknowledged.
func (b *Bus) Pending(ctx context.Context, lane Lane) (uint64, error) {
	c, ok := b.cons[lane]
	if !ok {
		return 0, fmt.Errorf("bus: pending: %w %q", ErrBadLane, lane)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: pending %s: %w", lane, classify(err))
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// Close closes the Consumers still open (see Consumer.Close), drains the
// connection (pending acknowledgements are flushed), then shuts the
// embedded server down and waits for it. It is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		open := make([]*Consumer, 0, len(b.consumers))
		for c := range b.consumers {
			open = append(open, c)
		}
		b.mu.Unlock()
		for _, c := range open {
			_ = c.Close()
		}
		close(b.closed)
		if b.met != nil {
			b.met.unregister()
		}
		if b.nc != nil && !b.nc.IsClosed() {
			done := make(chan struct{})
			b.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
			if err := b.nc.Drain(); err != nil {
				b.nc.Close()
			} else {
				select {
				case <-done:
				case <-time.After(b.opts.ConnectTimeout):
					b.nc.Close()
					b.closeErr = fmt.Errorf("bus: close: drain timed out")
				}
			}
		}
		b.shutdown()
	})
	return b.closeErr
}

// shutdown closes the connection and stops the embedded server without
// draining.
func (b *Bus) shutdown() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}
