package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// What the streams beside the intake log (the processed events, the
// decision requests) share: how they are created on the bus's server,
// bound from another process, and read by a durable pull consumer.

// createStream creates or updates the stream of cfg, within the bus's
// ConnectTimeout. A cfg.Replicas of 0 keeps the replica count of an
// existing stream and gives a new one 1.
func (b *Bus) createStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.ConnectTimeout)
	defer cancel()
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
		st, err := b.js.Stream(ctx, cfg.Name)
		switch {
		case err == nil:
			cfg.Replicas = max(1, st.CachedInfo().Config.Replicas)
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return nil, fmt.Errorf("bus: stream %s: %w", cfg.Name, classify(err))
		}
	}
	st, err := b.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: create stream %s: %w", cfg.Name, classify(err))
	}
	return st, nil
}

// streamConn is a stream bound on a NATS connection: the Bus's, or one of
// its own from dialStream (owned), which closeConn closes.
type streamConn struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	owned  bool
}

// closeConn closes the connection if it is the streamConn's own.
func (s *streamConn) closeConn() {
	if s.owned {
		s.nc.Close()
	}
}

// info returns the stream's current state.
func (s *streamConn) info(ctx context.Context) (*jetstream.StreamInfo, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("bus: stream %s: %w", s.stream.CachedInfo().Config.Name, classify(err))
	}
	return info, nil
}

// dialConfig names the server dialStream connects to and the stream it
// binds there.
type dialConfig struct {
	url, token string
	timeout    time.Duration // default 10s
	log        *slog.Logger
	stream     string
	// notFound is the error, wrapped, when the stream does not exist.
	notFound error
}

// dialStream connects to a NATS server and binds an existing stream, for a
// component in another process than the one that created it.
func dialStream(ctx context.Context, d dialConfig) (streamConn, error) {
	if d.timeout <= 0 {
		d.timeout = 10 * time.Second
	}
	nopts := []nats.Option{
		nats.Name("reflex-downstream"),
		nats.Timeout(d.timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				d.log.Warn("disconnected from NATS", "err", err)
			}
		}),
	}
	if d.token != "" {
		nopts = append(nopts, nats.Token(d.token))
	}
	nc, err := nats.Connect(d.url, nopts...)
	if err != nil {
		return streamConn{}, fmt.Errorf("bus: connect to NATS: %w: %w", ErrUnavailable, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxAsyncPending))
	if err != nil {
		nc.Close()
		return streamConn{}, fmt.Errorf("bus: jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	st, err := js.Stream(ctx, d.stream)
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return streamConn{}, fmt.Errorf("bus: %w: %s", d.notFound, d.stream)
		}
		return streamConn{}, fmt.Errorf("bus: stream %s: %w", d.stream, classify(err))
	}
	return streamConn{nc: nc, js: js, stream: st, owned: true}, nil
}

// consumerConfig returns the configuration of a durable pull consumer
// named name, with explicit acknowledgement, delivering all that the
// stream holds; what names the stream in errors ("processed",
// "decisions"). ackWait and maxAckPending must be positive; a maxDeliver
// of 0 is unbounded. The caller sets the filter subjects.
func consumerConfig(what, name, description string, ackWait time.Duration, maxAckPending, maxDeliver int) (jetstream.ConsumerConfig, error) {
	if name == "" || strings.ContainsAny(name, " .*>") {
		return jetstream.ConsumerConfig{}, fmt.Errorf("bus: %s consumer name %q must be non-empty without spaces, '.', '*' or '>'", what, name)
	}
	if maxDeliver <= 0 {
		maxDeliver = -1
	}
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}, nil
}

// durable is a durable pull consumer that is created again when it was
// deleted under it. fetch must not be called concurrently; pending may
// be called from any goroutine.
type durable struct {
	what   string // the stream, in errors: "processed", "decisions"
	stream jetstream.Stream
	cfg    jetstream.ConsumerConfig

	mu   sync.Mutex
	cons jetstream.Consumer
}

// newDurable creates or updates the consumer of cfg on st.
func newDurable(ctx context.Context, what string, st jetstream.Stream, cfg jetstream.ConsumerConfig) (*durable, error) {
	d := &durable{what: what, stream: st, cfg: cfg}
	if err := d.ensure(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *durable) ensure(ctx context.Context) error {
	cons, err := d.stream.CreateOrUpdateConsumer(ctx, d.cfg)
	if err != nil {
		return fmt.Errorf("bus: create %s consumer %s: %w", d.what, d.cfg.Durable, classify(err))
	}
	d.mu.Lock()
	d.cons = cons
	d.mu.Unlock()
	return nil
}

func (d *durable) consumer() jetstream.Consumer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cons
}

// fetch waits up to wait (or until ctx's deadline, if sooner) for
// messages and returns at most n of them (none when wait passed without
// any). If the consumer was deleted meanwhile, it is created again and the
// fetch repeated.
func (d *durable) fetch(ctx context.Context, n int, wait time.Duration) ([]Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := d.fetchOnce(ctx, n, wait)
	if consumerGone(err) {
		if eerr := d.ensure(ctx); eerr != nil {
			return nil, errors.Join(fmt.Errorf("bus: fetch %s: %w", d.what, classify(err)), eerr)
		}
		out, err = d.fetchOnce(ctx, n, wait)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: fetch %s: %w", d.what, classify(err))
	}
	return out, nil
}

func (d *durable) fetchOnce(ctx context.Context, n int, wait time.Duration) ([]Msg, error) {
	if dl, ok := ctx.Deadline(); ok {
		wait = max(time.Millisecond, min(wait, time.Until(dl)))
	}
	opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(wait)}
	if hb := min(5*time.Second, wait/2); hb >= minFetchHeartbeat {
		opts = append(opts, jetstream.FetchHeartbeat(hb))
	}
	batch, err := d.consumer().Fetch(max(1, n), opts...)
	if err != nil {
		return nil, err
	}
	var out []Msg
	for m := range batch.Messages() {
		out = append(out, toMsg("", m))
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// minFetchHeartbeat is the shortest heartbeat a fetch asks for (half its
// wait, at most 5s: the fetch fails after two heartbeats' silence, so a
// live consumer's end of wait comes first); shorter fetches ask for none.
const minFetchHeartbeat = 100 * time.Millisecond

// consumerGone reports whether err from a fetch says that the consumer may
// no longer exist. A pull request to a deleted consumer is answered with
// no responders (as it would be with JetStream down, when creating the
// consumer again fails too) or, by servers before 2.10, not at all: the
// fetch's heartbeats then stop.
func consumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat)
}

// pending is the consumer's backlog: messages not yet delivered plus those
// delivered and not yet acknowledged.
func (d *durable) pending(ctx context.Context) (uint64, error) {
	info, err := d.consumer().Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: %s consumer %s: %w", d.what, d.cfg.Durable, classify(err))
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}
