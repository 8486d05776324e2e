package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
)

// Mode is what a Submitter does with a submission while its buffer is
// full.
type Mode int

// The modes.
const (
	// Blocking makes the caller wait for room (bounded by its context):
	// for stream sources, where a reader that waits stops reading and the
	// sender feels TCP backpressure.
	Blocking Mode = iota
	// Dropping refuses the submission at once with ErrDropped and counts
	// its events in reflex_intake_dropped_total: for datagram sources,
	// whose reader must never stall.
	Dropping
)

// String names the mode, as in the metrics' mode label.
func (m Mode) String() string {
	if m == Dropping {
		return "dropping"
	}
	return "blocking"
}

// Defaults of SubmitterOptions.
const (
	DefaultLinger           = 2 * time.Millisecond
	DefaultMaxPendingEvents = 16384
	DefaultMaxPendingBytes  = 32 << 20
	DefaultPublishTimeout   = 10 * time.Second
)

// Errors of a Submitter.
var (
	// ErrDropped means a dropping submitter's buffer was full: the events
	// were not taken (and were counted as dropped).
	ErrDropped = errors.New("intake: submitter full: events dropped")
	// ErrClosed means the submitter is closed.
	ErrClosed = errors.New("intake: submitter closed")
	// ErrTooLarge means one submission holds more events or bytes than
	// the submitter may buffer in all.
	ErrTooLarge = errors.New("intake: submission larger than the submitter's buffer")
)

// SubmitterOptions configure NewSubmitter. The zero value is a blocking
// submitter with the defaults.
type SubmitterOptions struct {
	// Mode is what a submission does while the buffer is full (default
	// Blocking).
	Mode Mode
	// Linger is the longest an event waits for company before its
	// envelope is published (default 2ms). An envelope that is full
	// (MaxEventsPerMessage events or MaxMessageBytes bytes) is published
	// at once.
	Linger time.Duration
	// MaxPendingEvents bounds the events taken and not yet durable
	// (default 16384).
	MaxPendingEvents int
	// MaxPendingBytes bounds their bytes (default 32 MiB).
	MaxPendingBytes int
	// PublishTimeout bounds one publish of a lane's envelopes, retries
	// included (default 10s).
	PublishTimeout time.Duration
}

// Submitter takes events from many callers, an event or a few at a time,
// and coalesces them into envelopes (one per source type, lane and
// partition, up to MaxEventsPerMessage events and MaxMessageBytes bytes,
// cut when full or Linger after its first event), so that one event per
// syslog line or SNMP datagram does not cost one intake log write (an
// fsync) each. Each lane has one publisher goroutine that publishes the
// envelopes cut so far in order, together, and then tells every caller
// whose events they hold; a host's events reach the log in the order they
// were submitted. Everything it holds is bounded by MaxPendingEvents and
// MaxPendingBytes. It is safe for concurrent use; Close it to publish what
// it holds and stop.
type Submitter struct {
	in     *Intake
	opts   SubmitterOptions
	log    *slog.Logger
	room   *room
	cancel context.CancelFunc
	ctx    context.Context

	mu      sync.Mutex
	closed  bool
	buffers map[bufKey]*buffer
	queues  map[bus.Lane][]*envelope  // cut, waiting for the publisher
	refs    map[*envelope][]reference // who waits for each queued envelope
	kick    map[bus.Lane]chan struct{}
	busy    map[bus.Lane]bool // the lane's publisher is publishing
	wg      sync.WaitGroup
}

// bufKey identifies the envelope being filled.
type bufKey struct {
	src       event.SourceType
	lane      bus.Lane
	partition int
}

// buffer is an envelope being filled.
type buffer struct {
	env      *envelope
	refs     []reference
	received time.Time
	timer    *time.Timer
	gen      uint64 // counts cuts, so that a stale timer does nothing
}

// reference ties an event of an envelope to its submission.
type reference struct {
	sub   *submission
	index int // in the submission
	bytes int // weight taken from the room
}

// submission is one Submit or Enqueue call.
type submission struct {
	mu   sync.Mutex
	left int
	ids  []int64
	err  error
	done func([]int64, error)
}

// NewSubmitter returns a Submitter that publishes through in (its bus, ids,
// clock, envelope bounds, retries and metrics).
func (in *Intake) NewSubmitter(opts SubmitterOptions) (*Submitter, error) {
	if opts.Mode != Blocking && opts.Mode != Dropping {
		return nil, fmt.Errorf("intake: unknown submitter mode %d", opts.Mode)
	}
	if opts.Linger <= 0 {
		opts.Linger = DefaultLinger
	}
	if opts.MaxPendingEvents <= 0 {
		opts.MaxPendingEvents = DefaultMaxPendingEvents
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Submitter{
		in:      in,
		opts:    opts,
		log:     in.log.With("submitter", opts.Mode.String()),
		room:    newRoom(opts.MaxPendingEvents, opts.MaxPendingBytes),
		ctx:     ctx,
		cancel:  cancel,
		buffers: make(map[bufKey]*buffer),
		queues:  make(map[bus.Lane][]*envelope),
		refs:    make(map[*envelope][]reference),
		kick:    make(map[bus.Lane]chan struct{}),
		busy:    make(map[bus.Lane]bool),
	}
	for _, l := range bus.Lanes {
		s.kick[l] = make(chan struct{}, 1)
	}
	for _, l := range bus.Lanes {
		s.wg.Add(1)
		go s.publisher(l)
	}
	return s, nil
}

// Submit takes items from source type src and returns their event ids, in
// input order, once the log has stored all of them, or the error of the
// first envelope that was not stored (wrapping bus.ErrFull or
// bus.ErrUnavailable). While the buffer is full a blocking submitter waits
// for room until ctx ends; a dropping one fails at once with ErrDropped.
// If ctx ends after the items were taken, Submit returns ctx's error, and
// the items may still be stored. Each Item.Data must be a JSON value
// (ErrInvalidItem).
func (s *Submitter) Submit(ctx context.Context, src event.SourceType, items []Item) ([]int64, error) {
	type result struct {
		ids []int64
		err error
	}
	ch := make(chan result, 1)
	if err := s.Enqueue(ctx, src, items, func(ids []int64, err error) { ch <- result{ids, err} }); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, nil
	}
	select {
	case r := <-ch:
		return r.ids, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("intake: waiting for the log: %w", ctx.Err())
	}
}

// Enqueue takes items from source type src and returns once they are
// buffered; done, if not nil, is called once with their ids (in input
// order) when the log has stored all of them, or with the error, from the
// submitter's goroutine (it must not block for long). Room is as for
// Submit: a blocking submitter waits for it until ctx ends, a dropping one
// fails at once with ErrDropped. When Enqueue returns an error, done is
// not called.
func (s *Submitter) Enqueue(ctx context.Context, src event.SourceType, items []Item, done func([]int64, error)) error {
	if len(items) == 0 {
		return nil
	}
	if err := validate(items); err != nil {
		return err
	}
	weights := make([]int, len(items))
	total := 0
	for i := range items {
		weights[i] = itemSize(&items[i])
		total += weights[i]
	}
	if len(items) > s.opts.MaxPendingEvents || total > s.opts.MaxPendingBytes {
		return fmt.Errorf("%w: %d events, %d bytes", ErrTooLarge, len(items), total)
	}
	if s.opts.Mode == Dropping {
		if !s.room.tryTake(len(items), total) {
			s.in.met.dropped.WithLabelValues(string(src)).Add(float64(len(items)))
			return ErrDropped
		}
	} else if err := s.room.take(ctx, len(items), total); err != nil {
		return fmt.Errorf("intake: waiting for room: %w", err)
	}

	sub := &submission{left: len(items), ids: make([]int64, len(items)), done: done}
	now := s.in.opts.Now().UTC()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.room.give(len(items), total)
		return ErrClosed
	}
	for i := range items {
		s.add(bufKey{src, LaneOf(items[i].Severity), event.PartitionOf(items[i].Host, s.in.opts.Partitions)},
			&items[i], reference{sub: sub, index: i, bytes: weights[i]}, now)
	}
	s.mu.Unlock()
	s.in.met.submitted.WithLabelValues(string(src), s.opts.Mode.String()).Add(float64(len(items)))
	s.in.met.pending.WithLabelValues(s.opts.Mode.String()).Add(float64(len(items)))
	return nil
}

// takes reports whether items fit in the buffer at all (see ErrTooLarge).
func (s *Submitter) takes(items []Item) bool {
	total := 0
	for i := range items {
		total += itemSize(&items[i])
	}
	return len(items) <= s.opts.MaxPendingEvents && total <= s.opts.MaxPendingBytes
}

// add puts one item into the buffer of k, cutting the buffer when it is
// full. s.mu is held.
func (s *Submitter) add(k bufKey, it *Item, ref reference, now time.Time) {
	b := s.buffers[k]
	if b == nil {
		b = &buffer{}
		s.buffers[k] = b
	}
	n := itemSize(it)
	if b.env != nil && !s.in.fits(b.env, n) {
		reason := reasonBytes
		if len(b.env.items) >= s.in.opts.MaxEventsPerMessage {
			reason = reasonEvents
		}
		s.cut(k, b, reason)
	}
	if b.env == nil {
		b.env = &envelope{lane: k.lane, partition: k.partition, size: envelopeOverhead}
		b.received = now
		gen := b.gen
		b.timer = time.AfterFunc(s.opts.Linger, func() { s.linger(k, gen) })
	}
	b.env.items = append(b.env.items, *it)
	b.env.size += n
	b.refs = append(b.refs, ref)
	if len(b.env.items) >= s.in.opts.MaxEventsPerMessage {
		s.cut(k, b, reasonEvents)
	}
}

// linger cuts the buffer of k when its linger has passed, unless it was
// cut since (gen). While the lane's publisher is busy it leaves the
// buffer to fill: the publisher cuts it when it is done (group commit).
func (s *Submitter) linger(k bufKey, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buffers[k]; b != nil && b.gen == gen && b.env != nil && !s.busy[k.lane] {
		s.cut(k, b, reasonLinger)
	}
}

// cut closes the envelope of b (ids, encoding) and queues it for its
// lane's publisher. s.mu is held.
func (s *Submitter) cut(k bufKey, b *buffer, reason string) {
	e := b.env
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.gen++
	b.env = nil
	e.baseID = s.in.opts.IDs.Next(len(e.items))
	e.data = encode(e.baseID, b.received, k.src, e.items)
	e.items = nil // encoded; let the bytes go
	e.src = k.src
	e.reason = reason
	s.refs[e] = b.refs
	b.refs = nil
	s.queues[k.lane] = append(s.queues[k.lane], e)
	select {
	case s.kick[k.lane] <- struct{}{}:
	default:
	}
}

// publisher publishes the queued envelopes of a lane, all that are queued
// at a time, until the submitter is closed and its queue is empty. When a
// publish is done it cuts every buffer of the lane that holds events: they
// filled while it was busy, so under load envelopes grow with the time one
// write takes instead of staying at what arrives in one linger.
func (s *Submitter) publisher(lane bus.Lane) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.queues[lane]) == 0 && !s.closed {
			s.mu.Unlock()
			select {
			case <-s.kick[lane]:
			case <-s.ctx.Done():
			}
			s.mu.Lock()
		}
		envs := s.queues[lane]
		s.queues[lane] = nil
		if len(envs) == 0 { // closed and drained
			s.mu.Unlock()
			return
		}
		s.busy[lane] = true
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(s.ctx, s.opts.PublishTimeout)
		s.in.publish(ctx, envs)
		cancel()
		for _, e := range envs {
			s.resolve(e)
		}

		s.mu.Lock()
		s.busy[lane] = false
		for k, b := range s.buffers {
			if k.lane == lane && b.env != nil {
				s.cut(k, b, reasonBusy)
			}
		}
		s.mu.Unlock()
	}
}

// resolve tells the submissions of e's events how it went.
func (s *Submitter) resolve(e *envelope) {
	s.mu.Lock()
	refs := s.refs[e]
	delete(s.refs, e)
	s.mu.Unlock()
	if e.done {
		s.in.met.envelope(e.lane, e.reason, len(refs))
		s.in.met.accepted(e.src, e.lane, len(refs))
	} else {
		s.log.Warn("intake publish failed", "lane", string(e.lane), "events", len(refs), "err", e.err)
	}
	bytes := 0
	for k, r := range refs {
		bytes += r.bytes
		r.sub.resolve(r.index, e.baseID+int64(k), e.err)
	}
	s.room.give(len(refs), bytes)
	s.in.met.pending.WithLabelValues(s.opts.Mode.String()).Sub(float64(len(refs)))
}

// resolve records the fate of one event of the submission and, once every
// event's is known, calls done.
func (sub *submission) resolve(index int, id int64, err error) {
	sub.mu.Lock()
	sub.ids[index] = id
	if err != nil && sub.err == nil {
		sub.err = err
	}
	sub.left--
	last := sub.left == 0
	sub.mu.Unlock()
	if !last || sub.done == nil {
		return
	}
	if sub.err != nil {
		sub.done(nil, sub.err)
		return
	}
	sub.done(sub.ids, nil)
}

// Close publishes what the submitter holds, waits for it to be stored (or
// for ctx to end), and stops. Submissions after Close fail with ErrClosed.
// It is idempotent.
func (s *Submitter) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for k, b := range s.buffers {
			if b.env != nil {
				s.cut(k, b, reasonClose)
			}
		}
		for _, ch := range s.kick {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancel() // the publishes in flight fail; their callers are told
		<-done
		return fmt.Errorf("intake: close submitter: %w", ctx.Err())
	}
}

// room bounds what a Submitter holds: events and bytes taken and not yet
// given back. Waiters are served in order.
type room struct {
	mu       sync.Mutex
	events   int
	bytes    int
	maxEv    int
	maxBytes int
	waiters  []*waiter
}

type waiter struct {
	events, bytes int
	ready         chan struct{}
}

func newRoom(maxEvents, maxBytes int) *room {
	return &room{maxEv: maxEvents, maxBytes: maxBytes}
}

func (r *room) fitsLocked(events, bytes int) bool {
	return r.events+events <= r.maxEv && r.bytes+bytes <= r.maxBytes
}

// tryTake takes the room if it is free now and nobody waits.
func (r *room) tryTake(events, bytes int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.waiters) > 0 || !r.fitsLocked(events, bytes) {
		return false
	}
	r.events += events
	r.bytes += bytes
	return true
}

// take waits for the room until ctx ends.
func (r *room) take(ctx context.Context, events, bytes int) error {
	r.mu.Lock()
	if len(r.waiters) == 0 && r.fitsLocked(events, bytes) {
		r.events += events
		r.bytes += bytes
		r.mu.Unlock()
		return nil
	}
	w := &waiter{events: events, bytes: bytes, ready: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: hand it back.
			r.mu.Unlock()
			r.give(events, bytes)
		default:
			for i, x := range r.waiters {
				if x == w {
					r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
					break
				}
			}
			r.grantLocked()
			r.mu.Unlock()
		}
		return ctx.Err()
	}
}

// give returns room and wakes the waiters it lets in.
func (r *room) give(events, bytes int) {
	r.mu.Lock()
	r.events -= events
	r.bytes -= bytes
	r.grantLocked()
	r.mu.Unlock()
}

func (r *room) grantLocked() {
	for len(r.waiters) > 0 {
		w := r.waiters[0]
		if !r.fitsLocked(w.events, w.bytes) {
			return
		}
		r.events += w.events
		r.bytes += w.bytes
		r.waiters = r.waiters[1:]
		close(w.ready)
	}
}
