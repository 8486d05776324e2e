package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
)

// EnvelopeVersion is the Version of the envelopes Submit writes.
const EnvelopeVersion = 1

// Defaults of Options.
const (
	DefaultMaxInFlight         = 64
	DefaultMaxEventsPerMessage = event.MaxBlock
	DefaultMaxMessageBytes     = 512 << 10
	DefaultPublishAttempts     = 3
)

// Errors of Submit. Publish failures wrap bus.ErrFull or bus.ErrUnavailable
// as the bus reported them.
var (
	// ErrBusy means MaxInFlight submissions are already waiting for the
	// log: the caller should answer 429 with Retry-After.
	ErrBusy = errors.New("intake: busy")
	// ErrInvalidItem means an item's Data is not a JSON value; it is
	// wrapped in an *ItemError naming the item.
	ErrInvalidItem = errors.New("intake: invalid item")
)

// ItemError names the item Submit refused.
type ItemError struct {
	Index int
	Err   error
}

// Error says which item and why.
func (e *ItemError) Error() string { return fmt.Sprintf("intake: item %d: %v", e.Index, e.Err) }

// Unwrap returns ErrInvalidItem.
func (e *ItemError) Unwrap() error { return ErrInvalidItem }

// Publisher appends messages to the intake log and returns once the log
// has stored them, in order; a second publish with the same MsgID is
// stored once. It returns nil, or a *bus.BatchError naming the messages
// that were not stored. *bus.Bus implements it.
type Publisher interface {
	PublishBatch(ctx context.Context, msgs []bus.Message) error
}

var _ Publisher = (*bus.Bus)(nil)

// EnvelopeHeadroom is the room an intake log message needs beside the data
// it carries: the envelope's own fields (ids, time, source type, per-item
// source and severity, escaping), at most.
const EnvelopeHeadroom = 4 << 10

// Options configure New. Bus and IDs are required; the rest have defaults.
type Options struct {
	// Bus is the intake log.
	Bus Publisher
	// IDs allocates event ids.
	IDs *event.IDGen
	// Now is the clock of received_at (default time.Now).
	Now func() time.Time
	// Partitions is the number of partitions of each lane; an envelope
	// holds the events of one partition (event.PartitionOf of each item's
	// Host). Zero takes the Bus's Partitions() when it has the method,
	// else event.DefaultPartitions.
	Partitions int
	// MaxInFlight bounds concurrent Submit calls (default 64); beyond it
	// Submit fails at once with ErrBusy.
	MaxInFlight int
	// MaxEventsPerMessage bounds the events of one envelope (default and
	// maximum event.MaxBlock, 256: one envelope is one block of ids).
	MaxEventsPerMessage int
	// MaxMessageBytes bounds the encoded size of one envelope (default 512
	// KiB), below the server's max_payload (1 MiB by default); an item
	// larger than this travels alone.
	MaxMessageBytes int
	// PublishAttempts is how many times a failed publish is tried in all,
	// with the same message id, within the caller's deadline (default 3).
	// A full log (bus.ErrFull) is not retried.
	PublishAttempts int
	// RetryWait is the wait before the first retry, doubled after each
	// (default 50ms).
	RetryWait time.Duration
	// Logger receives intake's logs (nil: none).
	Logger *slog.Logger
	// Registerer registers intake's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Intake puts accepted events on the intake log. It is safe for concurrent
// use.
type Intake struct {
	opts Options
	log  *slog.Logger
	sem  chan struct{}
	met  *metrics
	via  *Submitter // see Coalesce
}

// Coalesce makes Submit put its items through a Submitter made with opts
// (blocking mode), so that concurrent requests share envelopes, instead of
// publishing each request's envelopes itself. A request larger than the
// Submitter's whole buffer is still published on its own. Call it before the first
// Submit; Close the returned Submitter at shutdown.
func (in *Intake) Coalesce(opts SubmitterOptions) (*Submitter, error) {
	opts.Mode = Blocking
	s, err := in.NewSubmitter(opts)
	if err != nil {
		return nil, err
	}
	in.via = s
	return s, nil
}

// New returns an Intake.
func New(opts Options) (*Intake, error) {
	if opts.Bus == nil {
		return nil, errors.New("intake: Options.Bus is required")
	}
	if opts.IDs == nil {
		return nil, errors.New("intake: Options.IDs is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Partitions <= 0 {
		opts.Partitions = event.DefaultPartitions
		if p, ok := opts.Bus.(interface{ Partitions() int }); ok && p.Partitions() > 0 {
			opts.Partitions = p.Partitions()
		}
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxEventsPerMessage <= 0 {
		opts.MaxEventsPerMessage = DefaultMaxEventsPerMessage
	}
	opts.MaxEventsPerMessage = min(opts.MaxEventsPerMessage, event.MaxBlock)
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	// Envelopes that coalesce many requests must fit the log's messages,
	// or one refusal would fail every request in them (an external NATS
	// may take less than the default).
	if mp, ok := opts.Bus.(interface{ MaxPayload() int64 }); ok && mp.MaxPayload() > 0 {
		opts.MaxMessageBytes = int(min(int64(opts.MaxMessageBytes), max(mp.MaxPayload()-EnvelopeHeadroom, 1)))
	}
	if opts.PublishAttempts <= 0 {
		opts.PublishAttempts = DefaultPublishAttempts
	}
	if opts.RetryWait <= 0 {
		opts.RetryWait = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Intake{
		opts: opts,
		log:  opts.Logger.With("component", "intake"),
		sem:  make(chan struct{}, opts.MaxInFlight),
		met:  met,
	}, nil
}

// LaneOf is the lane of an event of severity s: critical and high events
// travel in bus.LaneHi, the rest in bus.LaneLo.
func LaneOf(s event.Severity) bus.Lane {
	if s.Urgent() {
		return bus.LaneHi
	}
	return bus.LaneLo
}

// envelope is one message of the log.
type envelope struct {
	lane      bus.Lane
	partition int
	src       event.SourceType // Submitter
	reason    string           // Submitter: why it was cut
	baseID    int64
	items     []Item
	idx       []int // Submit: indexes of items in the submitted slice
	size      int   // upper bound of the encoded size
	data      []byte
	done      bool // stored
	err       error
}

// Submit puts items, accepted from source type src, on the intake log and
// returns their event ids in input order once the log has stored all of
// them. Items are split by lane (Item.Severity) and partition (Item.Host),
// packed into envelopes of at most MaxEventsPerMessage events and
// MaxMessageBytes bytes, each with consecutive ids. The two lanes are
// published concurrently, the critical one first; within a lane the
// envelopes are published in order (asynchronously, on one connection), so
// that the log keeps the request's order for each host (the pipeline
// processes a host's events in log order). Each Item.Data must be a JSON
// value (ErrInvalidItem otherwise, before anything is published).
//
// A publish that fails is tried again with the same message id, so the log
// stores it once, up to PublishAttempts times within ctx (a retried
// envelope may land after later ones of its partition). If one still fails
// Submit returns its error (wrapping bus.ErrFull or bus.ErrUnavailable) and
// no ids; the envelopes that did succeed are stored and will be processed,
// so a client that retries the whole request may submit those events twice
// (at-least-once; deduplication folds such repeats within its window).
// Submit fails at once with ErrBusy when MaxInFlight calls are running.
//
// A request is already a batch, so Submit publishes at once; sources that
// submit an event or a few at a time use a Submitter instead, which
// coalesces many callers' events into envelopes.
func (in *Intake) Submit(ctx context.Context, src event.SourceType, items []Item) ([]int64, error) {
	if len(items) == 0 {
		return nil, nil
	}
	select {
	case in.sem <- struct{}{}:
	default:
		in.met.busy.Inc()
		return nil, ErrBusy
	}
	in.met.inflight.Inc()
	defer func() {
		<-in.sem
		in.met.inflight.Dec()
	}()

	if err := validate(items); err != nil {
		return nil, err
	}
	if in.via != nil && in.via.takes(items) {
		start := time.Now()
		ids, err := in.via.Submit(ctx, src, items)
		in.met.publishSeconds.Observe(time.Since(start).Seconds())
		return ids, err
	}

	now := in.opts.Now().UTC()
	envs := in.pack(items)
	ids := make([]int64, len(items))
	for _, e := range envs {
		e.baseID = in.opts.IDs.Next(len(e.items))
		for k, i := range e.idx {
			ids[i] = e.baseID + int64(k)
		}
		e.data = encode(e.baseID, now, src, e.items)
	}

	start := time.Now()
	in.publishLanes(ctx, envs)
	in.met.publishSeconds.Observe(time.Since(start).Seconds())

	var errs []error
	published := 0
	for _, e := range envs {
		switch {
		case e.err != nil:
			errs = append(errs, e.err)
		case e.done:
			published++
			in.met.accepted(src, e.lane, len(e.items))
			in.met.envelope(e.lane, reasonRequest, len(e.items))
		}
	}
	if len(errs) > 0 {
		in.log.Warn("intake publish failed", "envelopes", len(envs), "failed", len(errs), "err", errs[0])
		return nil, fmt.Errorf("intake: %d of %d envelopes not stored: %w", len(envs)-published, len(envs), errors.Join(errs...))
	}
	return ids, nil
}

// validate checks that every item's Data is a JSON value.
func validate(items []Item) error {
	for i := range items {
		if !json.Valid(items[i].Data) {
			return &ItemError{Index: i, Err: errors.New("data is not a JSON value")}
		}
	}
	return nil
}

// publishLanes publishes envs, each lane on its own goroutine (the
// critical one started first), and sets each envelope's done or err.
func (in *Intake) publishLanes(ctx context.Context, envs []*envelope) {
	var wg sync.WaitGroup
	for _, lane := range bus.Lanes {
		var mine []*envelope
		for _, e := range envs {
			if e.lane == lane {
				mine = append(mine, e)
			}
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.publish(ctx, mine)
		}()
	}
	wg.Wait()
}

// publish publishes envs in order and sets each one's done or err,
// retrying those that failed with the same message ids.
func (in *Intake) publish(ctx context.Context, envs []*envelope) {
	wait := in.opts.RetryWait
	pending := envs
	for attempt := 1; ; attempt++ {
		msgs := make([]bus.Message, len(pending))
		for i, e := range pending {
			msgs[i] = bus.Message{Lane: e.lane, Partition: e.partition, MsgID: strconv.FormatInt(e.baseID, 10), Data: e.data}
		}
		err := in.opts.Bus.PublishBatch(ctx, msgs)
		var be *bus.BatchError
		if err != nil && (!errors.As(err, &be) || len(be.Errs) != len(msgs)) {
			be = &bus.BatchError{Errs: make([]error, len(msgs))}
			for i := range be.Errs {
				be.Errs[i] = err
			}
		}
		var retry []*envelope
		for i, e := range pending {
			if err == nil || be.Errs[i] == nil {
				e.done, e.err = true, nil
				continue
			}
			perr := be.Errs[i]
			e.err = fmt.Errorf("intake: publish %s envelope %s: %w", e.lane, msgs[i].MsgID, perr)
			if !errors.Is(perr, bus.ErrFull) && !errors.Is(perr, bus.ErrTooLarge) && !errors.Is(perr, bus.ErrBadPartition) {
				retry = append(retry, e)
			}
		}
		if len(retry) == 0 || attempt >= in.opts.PublishAttempts || ctx.Err() != nil {
			return
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return
		}
		in.met.retries.Add(float64(len(retry)))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
		pending = retry
	}
}

// pack splits items into envelopes by lane and partition, critical lane
// first, each within the event and byte bounds.
func (in *Intake) pack(items []Item) []*envelope {
	var envs []*envelope
	for _, lane := range bus.Lanes {
		cur := make(map[int]*envelope) // by partition
		for i := range items {
			if LaneOf(items[i].Severity) != lane {
				continue
			}
			p := event.PartitionOf(items[i].Host, in.opts.Partitions)
			n := itemSize(&items[i])
			e := cur[p]
			if e == nil || !in.fits(e, n) {
				e = &envelope{lane: lane, partition: p, size: envelopeOverhead}
				cur[p] = e
				envs = append(envs, e)
			}
			e.items = append(e.items, items[i])
			e.idx = append(e.idx, i)
			e.size += n
		}
	}
	return envs
}

// fits reports whether an item of n bytes may join e: e has room for one
// more event and the bytes (an item larger than MaxMessageBytes travels
// alone).
func (in *Intake) fits(e *envelope, n int) bool {
	if len(e.items) >= in.opts.MaxEventsPerMessage {
		return false
	}
	return len(e.items) == 0 || e.size+n <= in.opts.MaxMessageBytes
}
