package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Default consume settings.
const (
	DefaultMaxBatch = 64
	// DefaultLingerHi is the critical lane's linger: short, so that a
	// critical event waits at most this long for company.
	DefaultLingerHi = 5 * time.Millisecond
	// DefaultLingerLo is the other lane's linger.
	DefaultLingerLo = 20 * time.Millisecond
	// defaultBufferBytes bounds the bytes one pull request asks for.
	defaultBufferBytes = 64 << 20
)

// ConsumeOptions configure Consume. The zero value is a safe default.
type ConsumeOptions struct {
	// MaxBatch is the most messages Next returns (default 64).
	MaxBatch int
	// MaxBytes, when set, also ends a batch once its messages' data adds
	// up to this many bytes (the message that crosses it is included), so
	// that a batch holds about as many events whether the envelopes are
	// large or small (they are small when intake is partitioned).
	MaxBytes int
	// Linger is how long Next waits for more messages once it has one
	// (default 5ms on LaneHi, 20ms on LaneLo).
	Linger time.Duration
	// Buffer is how many messages the consumer pulls ahead of Next
	// (default 2*MaxBatch). It must stay below the bus's MaxAckPending.
	Buffer int
}

// Msg is one delivered intake log message. Exactly one of Ack, Nak or Term
// should be called once the message is handled.
type Msg struct {
	// Data is the message body.
	Data []byte
	// MsgID is the message's Nats-Msg-Id header: the id it was published
	// with.
	MsgID string
	// Lane is the lane the message came from.
	Lane Lane
	// NumDelivered counts deliveries, this one included: above 1 it is a
	// redelivery.
	NumDelivered uint64

	m jetstream.Msg
}

// Ack acknowledges the message: the stream (a work queue) deletes it. The
// acknowledgement is not confirmed by the server (it is not a DoubleAck):
// if it is lost, the message is delivered again after AckWait, and the
// pipeline skips events that storage already holds, so a lost ack costs a
// redelivery, never a duplicate; confirming each ack would cost a round
// trip per message.
func (m *Msg) Ack() error {
	if m.m == nil {
		return nil
	}
	if err := m.m.Ack(); err != nil {
		return fmt.Errorf("bus: ack: %w", classify(err))
	}
	return nil
}

// Nak asks for redelivery after delay (0: at once).
func (m *Msg) Nak(delay time.Duration) error {
	if m.m == nil {
		return nil
	}
	var err error
	if delay > 0 {
		err = m.m.NakWithDelay(delay)
	} else {
		err = m.m.Nak()
	}
	if err != nil {
		return fmt.Errorf("bus: nak: %w", classify(err))
	}
	return nil
}

// InProgress resets the message's AckWait timer, for handling that takes
// long (a store that is down).
func (m *Msg) InProgress() error {
	if m.m == nil {
		return nil
	}
	if err := m.m.InProgress(); err != nil {
		return fmt.Errorf("bus: in progress: %w", classify(err))
	}
	return nil
}

// Term tells the server never to deliver the message again; the stream
// then deletes it. Only for a message that can never be handled; the
// caller logs why (a reason sent with the term is not understood by NATS
// servers before 2.10).
func (m *Msg) Term() error {
	if m.m == nil {
		return nil
	}
	if err := m.m.Term(); err != nil {
		return fmt.Errorf("bus: term: %w", classify(err))
	}
	return nil
}

// NewMsg returns a Msg that is not bound to the intake log, whose Ack, Nak,
// InProgress and Term do nothing; for tests of code that consumes Msgs.
func NewMsg(lane Lane, msgID string, data []byte) Msg {
	return Msg{Data: data, MsgID: msgID, Lane: lane, NumDelivered: 1}
}

// MsgOf wraps m as a Msg of lane, as Consumer.Next does; for tests of code
// that consumes Msgs with a fake jetstream.Msg that records Ack and Nak.
func MsgOf(lane Lane, m jetstream.Msg) Msg { return toMsg(lane, m) }

// Consumer reads one lane in batches. Next must not be called
// concurrently; Close may be called from any goroutine.
type Consumer struct {
	lane     Lane
	maxBatch int
	maxBytes int
	linger   time.Duration
	log      *slog.Logger
	cons     jetstream.Consumer
	pullOpts []jetstream.PullConsumeOpt

	ch        chan jetstream.Msg // bounded hand-off from the NATS handler to Next
	done      chan struct{}
	busClosed <-chan struct{}
	bus       *Bus

	mu        sync.Mutex
	cc        jetstream.ConsumeContext
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Consume starts reading a lane. Messages are pulled ahead of Next, at most
// opts.Buffer outstanding, into a bounded hand-off; a lane's messages are
// handed out in stream order (redeliveries aside). Close the Consumer
// before the Bus.
func (b *Bus) Consume(ctx context.Context, lane Lane, opts ConsumeOptions) (*Consumer, error) {
	cons, ok := b.cons[lane]
	if !ok {
		return nil, fmt.Errorf("bus: consume: %w %q", ErrBadLane, lane)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Linger <= 0 {
		opts.Linger = DefaultLingerLo
		if lane == LaneHi {
			opts.Linger = DefaultLingerHi
		}
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 2 * opts.MaxBatch
	}
	if opts.Buffer >= b.opts.MaxAckPending {
		opts.Buffer = max(1, b.opts.MaxAckPending/2)
	}
	c := &Consumer{
		lane:      lane,
		maxBatch:  opts.MaxBatch,
		maxBytes:  opts.MaxBytes,
		linger:    opts.Linger,
		log:       b.log.With("lane", string(lane)),
		cons:      cons,
		ch:        make(chan jetstream.Msg, opts.MaxBatch),
		done:      make(chan struct{}),
		busClosed: b.closed,
		bus:       b,
	}
	bufBytes := max(defaultBufferBytes, int(b.nc.MaxPayload())*2)
	c.pullOpts = []jetstream.PullConsumeOpt{
		jetstream.PullMaxMessagesWithBytesLimit(opts.Buffer, bufBytes),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				c.log.Debug("intake consumer: missed heartbeat", "err", err)
				return
			}
			c.log.Warn("intake consumer error", "err", err)
		}),
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: consume: %w", err)
	}
	b.mu.Lock()
	select {
	case <-b.closed:
		b.mu.Unlock()
		return nil, fmt.Errorf("bus: consume: %w", ErrClosed)
	default:
	}
	if err := c.start(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.consumers[c] = struct{}{}
	b.mu.Unlock()
	c.wg.Add(1)
	go c.supervise()
	return c, nil
}

func (c *Consumer) start() error {
	c.mu.Lock()
	cons := c.cons
	c.mu.Unlock()
	cc, err := cons.Consume(c.handle, c.pullOpts...)
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", c.lane, classify(err))
	}
	c.mu.Lock()
	c.cc = cc
	c.mu.Unlock()
	return nil
}

// handle runs on the NATS subscription's goroutine. It blocks while the
// hand-off is full, which stops further pulls: the buffer stays bounded.
func (c *Consumer) handle(m jetstream.Msg) {
	select {
	case c.ch <- m:
	case <-c.done:
		// Closing: give the message back at once rather than after
		// AckWait.
		c.giveBack(m)
	case <-c.busClosed:
	}
}

// giveBack returns a message that was pulled but not handed out, so that
// it is redelivered at once, also to the next process after a restart. It
// asks for a redelivery after a delay of 1ms and waits for the server's
// answer: unlike a plain Nak, a Nak with a delay is written to the
// consumer's stored state, and waiting for the answer means the server has
// applied it before the bus goes on to close.
func (c *Consumer) giveBack(m jetstream.Msg) {
	if m.Reply() == "" {
		return
	}
	if _, err := c.bus.nc.Request(m.Reply(), []byte(`-NAK {"delay":1000000}`), 2*time.Second); err != nil {
		c.log.Debug("give back intake message", "err", err)
	}
}

// supervise restarts consumption if the NATS client stops it on its own
// while the Consumer is open (the server deleted the consumer, say): it
// creates the durable consumer again and resumes, with a backoff that grows
// while restarts keep failing quickly.
func (c *Consumer) supervise() {
	defer c.wg.Done()
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	started := time.Now()
	for {
		c.mu.Lock()
		cc := c.cc
		c.mu.Unlock()
		select {
		case <-c.done:
			return
		case <-c.busClosed:
			return
		case <-cc.Closed():
		}
		if time.Since(started) > time.Minute {
			backoff = minBackoff
		}
		select {
		case <-c.done:
			return
		case <-c.busClosed:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
		c.log.Warn("intake consumer stopped; restarting")
		started = time.Now()
		if err := c.restart(); err != nil {
			c.log.Error("intake consumer restart failed", "err", err)
			c.mu.Lock()
			c.cc = closedConsumeContext{} // try again after the backoff
			c.mu.Unlock()
		}
	}
}

func (c *Consumer) restart() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.bus.opts.ConnectTimeout)
	defer cancel()
	cons, err := c.bus.ensureConsumer(ctx, c.lane)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cons = cons
	c.mu.Unlock()
	return c.start()
}

// Next blocks until at least one message is available, then collects more
// until it has MaxBatch or Linger has passed since the first. It returns
// ctx's error if ctx ends before any message arrives (messages collected
// before that are returned without error), and ErrClosed once the Consumer
// is closed.
func (c *Consumer) Next(ctx context.Context) ([]Msg, error) {
	var first jetstream.Msg
	select {
	case first = <-c.ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, ErrClosed
	case <-c.busClosed:
		return nil, ErrClosed
	}
	out := make([]Msg, 0, min(c.maxBatch, 64))
	size := 0
	add := func(m jetstream.Msg) {
		out = append(out, toMsg(c.lane, m))
		size += len(m.Data())
	}
	full := func() bool { return len(out) >= c.maxBatch || (c.maxBytes > 0 && size >= c.maxBytes) }
	add(first)
	if full() {
		return out, nil
	}
	// Take what is already there without arming a timer.
	for !full() {
		select {
		case m := <-c.ch:
			add(m)
			continue
		default:
		}
		break
	}
	if full() {
		return out, nil
	}
	t := time.NewTimer(c.linger)
	defer t.Stop()
	for !full() {
		select {
		case m := <-c.ch:
			add(m)
		case <-t.C:
			return out, nil
		case <-ctx.Done():
			return out, nil
		case <-c.done:
			return out, nil
		}
	}
	return out, nil
}

func toMsg(lane Lane, m jetstream.Msg) Msg {
	out := Msg{Data: m.Data(), Lane: lane, NumDelivered: 1, m: m}
	if h := m.Headers(); h != nil {
		out.MsgID = h.Get(jetstream.MsgIDHeader)
	}
	if md, err := m.Metadata(); err == nil {
		out.NumDelivered = md.NumDelivered
	}
	return out
}

// Close stops pulling, gives the messages pulled but not yet handed out
// back to the stream (Nak, so they are redelivered at once rather than
// after AckWait), and returns once consumption has stopped. Messages
// already returned by Next stay the caller's to Ack. It is idempotent;
// Bus.Close closes the Consumers left open.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		c.bus.mu.Lock()
		delete(c.bus.consumers, c)
		c.bus.mu.Unlock()
		close(c.done)
		c.wg.Wait()
		c.mu.Lock()
		cc := c.cc
		c.mu.Unlock()
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
			cc.Stop()
		}
		for {
			select {
			case m := <-c.ch:
				c.giveBack(m)
				continue
			default:
			}
			break
		}
	})
	return nil
}

// closedConsumeContext stands in for a consume context that could not be
// restarted.
type closedConsumeContext struct{}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (closedConsumeContext) Stop()                   {}
func (closedConsumeContext) Drain()                  {}
func (closedConsumeContext) Closed() <-chan struct{} { return closedCh }
