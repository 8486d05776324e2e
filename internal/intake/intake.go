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

// Publisher appends a message to a lane of the intake log and returns once
// the log has stored it; a second publish with the same msgID is stored once.
// *bus.Bus implements it.
type Publisher interface {
	Publish(ctx context.Context, lane bus.Lane, msgID string, data []byte) error
}

var _ Publisher = (*bus.Bus)(nil)

// Options configure New. Bus and IDs are required; the rest have defaults.
type Options struct {
	// Bus is the intake log.
	Bus Publisher
	// IDs allocates event ids.
	IDs *event.IDGen
	// Now is the clock of received_at (default time.Now).
	Now func() time.Time
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

// envelope is one message Submit publishes.
type envelope struct {
	lane   bus.Lane
	baseID int64
	idx    []int // indexes into the submitted items
	data   []byte
	done   bool // stored
	err    error
}

// Submit puts items, accepted from source type src, on the intake log and
// returns their event ids in input order once the log has stored all of
// them. Items are split by lane (Item.Severity), packed into envelopes of at
// most MaxEventsPerMessage events and MaxMessageBytes bytes, each with
// consecutive ids. The two lanes are published concurrently, the critical
// one first; within a lane the envelopes go one after the other, so that
// the log keeps the request's order (the pipeline processes a host's events
// in log order). Each Item.Data must be a JSON value (ErrInvalidItem otherwise, before
// anything is published).
//
// A publish that fails is tried again with the same message id, so the log
// stores it once, up to PublishAttempts times within ctx. If one still fails
// Submit returns its error (wrapping bus.ErrFull or bus.ErrUnavailable) and
// no ids, and publishes no further envelope of that lane; the envelopes that
// did succeed are stored and will be processed,
// so a client that retries the whole request may submit those events twice
// (at-least-once; deduplication folds such repeats within its window).
// Submit fails at once with ErrBusy when MaxInFlight calls are running.
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

	for i := range items {
		if !json.Valid(items[i].Data) {
			return nil, &ItemError{Index: i, Err: errors.New("data is not a JSON value")}
		}
	}

	now := in.opts.Now().UTC()
	envs := in.pack(items)
	ids := make([]int64, len(items))
	for _, e := range envs {
		e.baseID = in.opts.IDs.Next(len(e.idx))
		for k, i := range e.idx {
			ids[i] = e.baseID + int64(k)
		}
		e.data = encode(e.baseID, now, src, items, e.idx)
	}

	// The lanes are published concurrently, the critical one started
	// first; within a lane one envelope after the other, so that the log
	// holds a host's events in the order of the request.
	start := time.Now()
	var wg sync.WaitGroup
	for _, lane := range bus.Lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range envs {
				if e.lane != lane {
					continue
				}
				in.publish(ctx, e)
				if e.err != nil {
					return // the rest stay unpublished; Submit fails
				}
			}
		}()
	}
	wg.Wait()
	in.met.publishSeconds.Observe(time.Since(start).Seconds())

	var errs []error
	published := 0
	for _, e := range envs {
		switch {
		case e.err != nil:
			errs = append(errs, e.err)
		case e.done:
			published++
			in.met.accepted(src, e.lane, len(e.idx))
		}
	}
	if len(errs) > 0 {
		in.log.Warn("intake publish failed", "envelopes", len(envs), "failed", len(errs), "err", errs[0])
		return nil, fmt.Errorf("intake: %d of %d envelopes not stored: %w", len(envs)-published, len(envs), errors.Join(errs...))
	}
	return ids, nil
}

// publish publishes e, retrying with the same message id.
func (in *Intake) publish(ctx context.Context, e *envelope) {
	msgID := strconv.FormatInt(e.baseID, 10)
	wait := in.opts.RetryWait
	for attempt := 1; ; attempt++ {
		err := in.opts.Bus.Publish(ctx, e.lane, msgID, e.data)
		if err == nil {
			e.err = nil
			e.done = true
			return
		}
		e.err = fmt.Errorf("intake: publish %s envelope %s: %w", e.lane, msgID, err)
		if attempt >= in.opts.PublishAttempts || errors.Is(err, bus.ErrFull) || errors.Is(err, bus.ErrTooLarge) || ctx.Err() != nil {
			return
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return
		}
		in.met.retries.Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
	}
}

// pack splits items into envelopes by lane, critical lane first, each within
// the event and byte bounds.
func (in *Intake) pack(items []Item) []*envelope {
	var envs []*envelope
	for _, lane := range bus.Lanes {
		var cur *envelope
		size := 0
		for i := range items {
			if LaneOf(items[i].Severity) != lane {
				continue
			}
			n := itemSize(&items[i])
			if cur == nil || len(cur.idx) >= in.opts.MaxEventsPerMessage || (len(cur.idx) > 0 && size+n > in.opts.MaxMessageBytes) {
				cur = &envelope{lane: lane}
				envs = append(envs, cur)
				size = envelopeOverhead
			}
			cur.idx = append(cur.idx, i)
			size += n
		}
	}
	return envs
}
