package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/store"
)

// Consumer hands out batches of intake log messages. *bus.Consumer
// implements it. Next is called from one goroutine at a time.
type Consumer interface {
	Next(ctx context.Context) ([]bus.Msg, error)
}

var _ Consumer = (*bus.Consumer)(nil)

// Store is what the runner needs of storage. store.Store implements it.
type Store interface {
	WriteBatch(ctx context.Context, b *store.Batch) error
	StoredRawIDs(ctx context.Context, ids []int64) (map[int64]bool, error)
}

var _ Store = store.Store(nil)

// Defaults of RunnerOptions.
const (
	DefaultRetryFirst   = time.Second
	DefaultRetryMax     = 30 * time.Second
	DefaultDrainTimeout = 30 * time.Second
	// DefaultMaxDeliveries is how many deliveries a batch that keeps
	// failing a stage with a retryable error gets before the runner
	// isolates the events that fail.
	DefaultMaxDeliveries = 5
)

// SourceUnknown is the source type of the raw event the runner stores for
// an intake message it cannot decode.
const SourceUnknown event.SourceType = "unknown"

// RunnerOptions configure NewRunner. Consumer, Normalize and Store are
// required.
type RunnerOptions struct {
	// Consumer is the lane's intake log consumer.
	Consumer Consumer
	// Lane names the lane in metrics and logs ("hi", "lo").
	Lane string
	// Urgent marks the critical lane's runner: its store batches are
	// store.Batch.Urgent, committed ahead of the other lane's.
	Urgent bool
	// Normalize runs over each whole batch first: it turns b.Raw into
	// b.Events (or records an Outcome for a raw event it rejects).
	Normalize Stage
	// Stages run after Normalize on sub-batches of disjoint hosts (one per
	// partition), concurrently: MultiStage{enrich, noise, correlate,
	// score}. Nil runs none.
	Stages Stage
	// Workers is the number of partitions (default runtime.GOMAXPROCS(0)).
	Workers int
	// Locks, when several runners (one per lane) share stages, makes them
	// process one partition at a time between them, so that a host's
	// events are never in two stages' hands at once. Its length sets
	// Workers. Nil: the runner's own.
	Locks *PartitionLocks
	// Store stores each batch.
	Store Store
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives the runner's logs (nil: none).
	Logger *slog.Logger
	// Registerer registers the runner's metrics (nil: not registered).
	// Runners of several lanes may share one.
	Registerer prometheus.Registerer
	// Downstream, if set, receives what each batch stored, after the store
	// commit and before the batch's intake messages are acknowledged, and
	// the ids of redelivered raw events that storage already had (a crash
	// or a lost ack between the commit and the acknowledgement). So every
	// stored event reaches it at least once; it must be idempotent.
	Downstream Downstream
	// RetryMin and RetryMax bound the exponential backoff between store
	// attempts (defaults 1s and 30s).
	RetryMin, RetryMax time.Duration
	// DrainTimeout bounds how long the batch in hand may take to finish
	// once Run's context ends (default 30s); a batch cut short is not
	// acknowledged and is redelivered later.
	DrainTimeout time.Duration
	// MaxDeliveries bounds the deliveries of a batch whose stages fail with
	// a retryable error (counted by the messages' NumDelivered; default
	// DefaultMaxDeliveries). At that delivery, or at once on a permanent
	// error, the runner isolates the events that fail (see Runner).
	MaxDeliveries int
	// Pipeline is how many batches may be past their stages at once, being
	// stored or acknowledged (0 or 1: one; the runner then takes the next
	// batch once the last is acknowledged). With more, the stages of the
	// next batch run while the earlier ones are stored and handed
	// downstream, and batches that wait for the store meanwhile are
	// stored in one transaction, of at most MaxMerge raw events.
	Pipeline int
	// MaxMerge bounds the raw events of batches merged into one store
	// transaction (default DefaultMaxMerge).
	MaxMerge int
}

// DefaultMaxMerge is the default of RunnerOptions.MaxMerge.
const DefaultMaxMerge = 4096

// Downstream is what comes after the store: the processed-event stream that
// trigger rules, the intelligence layer and the autonomous service consume.
// The runner calls it from its Run goroutine and retries an error with
// backoff, keeping the batch's messages unacknowledged meanwhile.
type Downstream interface {
	// Stored hands over a batch that was just committed.
	Stored(ctx context.Context, b *store.Batch) error
	// Replayed hands over the ids of raw events that were redelivered and
	// found already stored: what followed their commit may not have
	// happened, so it must be done (again).
	Replayed(ctx context.Context, rawIDs []int64) error
}

// Runner takes batches from one lane of the intake log, runs the stages
// over them and stores them.
//
// A batch whose stages fail with a retryable error is returned to the
// intake log and redelivered after a backoff that grows with its delivery
// count. At the MaxDeliveries-th delivery, or at once when the error is
// permanent (Permanent, a panic), the runner bisects the batch down to
// single events: the parts that pass are processed as usual, and each
// event that still fails on its own is a poison event, stored as its raw
// event with processed = false and processing_errors ["<stage>: <error>"],
// logged once and counted in reflex_pipeline_poison_events_total. Every
// raw event of a batch is stored before its messages are acknowledged. A
// failing store is never poison: the same batch is retried until it is
// stored or the runner stops.
//
// The stages' state changes for a batch that is not stored are undone
// (Batch.OnAbort), so a redelivered or bisected event is applied once.
type Runner struct {
	opts    RunnerOptions
	log     *slog.Logger
	workers int
	locks   *PartitionLocks
	met     *runnerMetrics
	status  status
}

// NewRunner returns a Runner.
func NewRunner(opts RunnerOptions) (*Runner, error) {
	if opts.Consumer == nil {
		return nil, errors.New("pipeline: RunnerOptions.Consumer is required")
	}
	if opts.Normalize == nil {
		return nil, errors.New("pipeline: RunnerOptions.Normalize is required")
	}
	if opts.Store == nil {
		return nil, errors.New("pipeline: RunnerOptions.Store is required")
	}
	if opts.Lane == "" {
		opts.Lane = "default"
	}
	if opts.Locks != nil {
		if opts.Workers > 0 && opts.Workers != opts.Locks.Len() {
			return nil, fmt.Errorf("pipeline: Workers %d differs from the %d partitions of Locks", opts.Workers, opts.Locks.Len())
		}
		opts.Workers = opts.Locks.Len()
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Locks == nil {
		opts.Locks = NewPartitionLocks(opts.Workers)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryFirst
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(DefaultRetryMax, opts.RetryMin)
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.MaxDeliveries <= 0 {
		opts.MaxDeliveries = DefaultMaxDeliveries
	}
	opts.Pipeline = max(opts.Pipeline, 1)
	if opts.MaxMerge <= 0 {
		opts.MaxMerge = DefaultMaxMerge
	}
	met, err := newRunnerMetrics(opts.Registerer, opts.Lane)
	if err != nil {
		return nil, err
	}
	return &Runner{
		opts:    opts,
		log:     opts.Logger,
		workers: opts.Workers,
		locks:   opts.Locks,
		met:     met,
	}, nil
}

// PartitionLocks serializes the processing of each partition among the
// runners that share it.
type PartitionLocks struct {
	mu []sync.Mutex
}

// NewPartitionLocks returns locks for n partitions (at least 1).
func NewPartitionLocks(n int) *PartitionLocks {
	return &PartitionLocks{mu: make([]sync.Mutex, max(1, n))}
}

// Len is the number of partitions.
func (l *PartitionLocks) Len() int { return len(l.mu) }

// Run processes batches until ctx ends, then finishes the batch in hand
// (within DrainTimeout) and returns nil. It returns an error only if the
// consumer fails for good (it was closed).
func (r *Runner) Run(ctx context.Context) error {
	r.status.update(func(s *RunnerStatus) { s.Running = true })
	defer r.status.update(func(s *RunnerStatus) { s.Running = false })
	if r.opts.Pipeline > 1 {
		return r.runPipelined(ctx)
	}
	return r.poll(ctx, func(msgs []bus.Msg) {
		bctx, done := r.batchContext(ctx)
		r.handle(bctx, msgs)
		done()
	})
}

// poll hands each batch the consumer returns to f until ctx ends (nil) or
// the consumer is closed (an error), backing off while reads fail.
func (r *Runner) poll(ctx context.Context, f func(msgs []bus.Msg)) error {
	wait := r.opts.RetryMin
	for {
		msgs, err := r.opts.Consumer.Next(ctx)
		r.status.update(func(s *RunnerStatus) { s.LastPoll = r.opts.Now() })
		if len(msgs) > 0 {
			f(msgs)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			wait = r.opts.RetryMin
			continue
		}
		if errors.Is(err, bus.ErrClosed) {
			return fmt.Errorf("pipeline: %s lane: %w", r.opts.Lane, err)
		}
		r.log.Error("intake log read failed", "err", err)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, r.opts.RetryMax)
	}
}

// runPipelined is Run with up to Pipeline batches past their stages: this
// goroutine fetches batches and runs their stages, one goroutine stores
// them (merging those that queued up meanwhile) and one hands them
// downstream and acknowledges them, each in intake order.
func (r *Runner) runPipelined(ctx context.Context) error {
	pctx, done := r.batchContext(ctx)
	defer done()
	var (
		toStore = make(chan *pending, r.opts.Pipeline-1)
		toAck   = make(chan []*pending, 1)
		slots   = make(chan struct{}, r.opts.Pipeline) // one per batch in its stages or past them
		stopped = make(chan struct{})
	)
	// The message ids in flight: a message that comes again while its
	// first delivery is in flight (its ack wait ran out, or intake
	// published it twice) waits for it, so that it is found stored.
	var (
		mu       sync.Mutex
		inFlight = map[string]int{}
	)
	track := func(msgs []bus.Msg, d int) (again bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if m.MsgID == "" {
				continue
			}
			switch n := inFlight[m.MsgID] + d; {
			case d == 0:
				again = again || n > 0
			case n > 0:
				inFlight[m.MsgID] = n
			default:
				delete(inFlight, m.MsgID)
			}
		}
		return again
	}
	release := func(group []*pending) {
		for _, p := range group {
			track(p.msgs, -1)
			<-slots
		}
	}
	go func() {
		defer close(toAck)
		for p := range toStore {
			group := []*pending{p}
			n := len(p.sb.Raw)
		more:
			for n < r.opts.MaxMerge {
				select {
				case q, ok := <-toStore:
					if !ok {
						break more
					}
					group = append(group, q)
					n += len(q.sb.Raw)
				default:
					break more
				}
			}
			sb, ok := r.storeAll(pctx, group)
			if !ok {
				// Given up at stop. The batches behind these ran their
				// stages on top of them: undo all, the newest first, once
				// the last has come (their slots freed meanwhile, so that
				// a batch in hand is not kept waiting for one).
				release(group)
				for q := range toStore {
					release([]*pending{q})
					group = append(group, q)
				}
				for i := len(group) - 1; i >= 0; i-- {
					group[i].b.Abort()
				}
				return
			}
			if len(group) > 1 {
				group[0].sb = sb
			}
			toAck <- group
		}
	}()
	go func() {
		defer close(stopped)
		for group := range toAck {
			r.deliver(pctx, group[0].sb, lives(group))
			release(group)
		}
	}()
	defer func() {
		close(toStore)
		<-stopped
	}()

	return r.poll(ctx, func(msgs []bus.Msg) {
		if track(msgs, 0) {
			// Wait until everything in flight is acknowledged.
			for range r.opts.Pipeline {
				slots <- struct{}{}
			}
			for range r.opts.Pipeline {
				<-slots
			}
		}
		slots <- struct{}{}
		if p := r.prepare(pctx, msgs); p != nil {
			p.msgs = msgs
			track(msgs, 1)
			toStore <- p
		} else {
			<-slots
		}
	})
}

// batchContext returns the context of one batch: it outlives ctx by at most
// DrainTimeout, so that a stop finishes the batch in hand.
func (r *Runner) batchContext(ctx context.Context) (context.Context, func()) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(r.opts.DrainTimeout, cancel)
		mu.Unlock()
	})
	return bctx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// handle processes one batch of messages and acknowledges them once it is
// stored. On failure it leaves them for redelivery.
func (r *Runner) handle(ctx context.Context, msgs []bus.Msg) {
	p := r.prepare(ctx, msgs)
	if p == nil {
		return
	}
	sb, ok := r.storeAll(ctx, []*pending{p})
	if !ok {
		p.b.Abort()
		return
	}
	r.deliver(ctx, sb, p.live)
}

// pending is a batch past its stages, to be stored and then acknowledged.
type pending struct {
	b    *Batch
	sb   *store.Batch
	live []bus.Msg // the messages to acknowledge once it is stored
	msgs []bus.Msg // all of the batch's messages (pipelined runs)
}

// prepare runs what comes before the store: it decodes msgs, skips what
// storage already has, and runs the stages. It returns nil when nothing is
// left to store: the messages were then acknowledged, or left for
// redelivery.
func (r *Runner) prepare(ctx context.Context, msgs []bus.Msg) *pending {
	raws, corrupt, live := r.decode(msgs)

	// Skip what storage already has: redeliveries after a crash or a lost
	// ack, and envelopes published twice.
	if len(raws)+len(corrupt) > 0 {
		ids := make([]int64, 0, len(raws)+len(corrupt))
		for _, rw := range raws {
			ids = append(ids, rw.ID)
		}
		for _, rw := range corrupt {
			ids = append(ids, rw.ID)
		}
		var stored map[int64]bool
		if !r.retry(ctx, "stored_ids", live, func() error {
			var err error
			stored, err = r.opts.Store.StoredRawIDs(ctx, ids)
			return err
		}) {
			return nil
		}
		if len(stored) > 0 {
			if r.opts.Downstream != nil {
				ids := make([]int64, 0, len(stored))
				for id := range stored {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				if !r.retry(ctx, "downstream", live, func() error {
					return r.opts.Downstream.Replayed(ctx, ids)
				}) {
					return nil
				}
			}
			before := len(raws) + len(corrupt)
			raws = slices.DeleteFunc(raws, func(rw event.Raw) bool { return stored[rw.ID] })
			corrupt = slices.DeleteFunc(corrupt, func(rw event.Raw) bool { return stored[rw.ID] })
			r.met.replayed.Add(float64(before - len(raws) - len(corrupt)))
		}
	}
	if len(raws)+len(corrupt) == 0 {
		r.ack(live)
		return nil
	}

	b, live, ok := r.processAll(ctx, live, raws)
	if !ok {
		return nil
	}
	for _, rw := range corrupt {
		// ToStore turns the outcome into the raw event's processing error.
		reason := rw.ProcessingErrors[0]
		rw.ProcessingErrors = nil
		b.Raw = append(b.Raw, rw)
		b.SetOutcome(rw.ID, Outcome{Error: reason})
	}
	sb := b.ToStore()
	sb.Urgent = r.opts.Urgent
	return &pending{b: b, sb: sb, live: live}
}

// storeAll stores the batches of ps in one transaction, retrying it: the
// stages' state has advanced, so they must not run over these events
// again. It reports false if it gave up at stop; the caller then undoes
// what the stages applied for them (Batch.Abort), so that the batches can
// be redelivered. It returns what it stored.
func (r *Runner) storeAll(ctx context.Context, ps []*pending) (*store.Batch, bool) {
	sb := ps[0].sb
	if len(ps) > 1 {
		sb = &store.Batch{Urgent: sb.Urgent}
		aligned := true
		for _, p := range ps {
			// Later batches after earlier ones: a repeat or a correlation
			// of a later batch may refer to an event of an earlier one.
			sb.Raw = append(sb.Raw, p.sb.Raw...)
			sb.New = append(sb.New, p.sb.New...)
			sb.Data = append(sb.Data, p.sb.Data...)
			sb.Repeats = append(sb.Repeats, p.sb.Repeats...)
			sb.Correlations = append(sb.Correlations, p.sb.Correlations...)
			if len(p.sb.Data) != len(p.sb.New) {
				aligned = false
			}
		}
		if !aligned {
			sb.Data = nil
		}
	}
	live := lives(ps)
	start := time.Now()
	if !r.retry(ctx, "store", live, func() error {
		t := time.Now()
		err := r.opts.Store.WriteBatch(ctx, sb)
		if err == nil {
			r.met.storeDuration.Observe(time.Since(t).Seconds())
		}
		return err
	}) {
		return nil, false
	}
	for _, p := range ps {
		p.b.aborts = nil // stored: the state is what the store holds
	}
	r.met.stage.WithLabelValues("store").Observe(time.Since(start).Seconds())
	r.met.storeSize.Observe(float64(len(sb.Raw)))

	now := r.opts.Now()
	bySource := make(map[event.SourceType]int, 1)
	for _, rw := range sb.Raw {
		bySource[rw.SourceType]++
		r.met.latency.Observe(max(0, now.Sub(event.TimeOfID(rw.ID)).Seconds()))
	}
	for src, n := range bySource {
		r.met.processed(src, n)
	}
	return sb, true
}

// lives returns the messages to acknowledge of ps, in order.
func lives(ps []*pending) []bus.Msg {
	if len(ps) == 1 {
		return ps[0].live
	}
	var live []bus.Msg
	for _, p := range ps {
		live = append(live, p.live...)
	}
	return live
}

// deliver hands a stored batch to Downstream and then acknowledges its
// messages. If it gives up at stop, the messages are redelivered later and
// found stored (Downstream.Replayed).
func (r *Runner) deliver(ctx context.Context, sb *store.Batch, live []bus.Msg) {
	if r.opts.Downstream != nil {
		if !r.retry(ctx, "downstream", live, func() error {
			return r.opts.Downstream.Stored(ctx, sb)
		}) {
			return
		}
	}
	r.ack(live)
}

// decode turns messages into raw events. A message that is not a valid
// envelope becomes one raw event holding its bytes and the error, under
// the envelope's base id (its message id), so that it is kept, visible and
// never redelivered forever; one without a usable message id is
// terminated. live is the messages to acknowledge once the batch is
// stored.
func (r *Runner) decode(msgs []bus.Msg) (raws, corrupt []event.Raw, live []bus.Msg) {
	seen := make(map[int64]bool)
	live = make([]bus.Msg, 0, len(msgs))
	for _, m := range msgs {
		var env intake.Envelope
		err := json.Unmarshal(m.Data, &env)
		switch {
		case err != nil:
		case env.Version < 0 || env.Version > intake.EnvelopeVersion:
			err = fmt.Errorf("unsupported envelope version %d", env.Version)
		case len(env.Events) > 0 && env.BaseID <= 0:
			err = fmt.Errorf("envelope without a base id")
		case len(env.Events) > event.MaxBlock:
			err = fmt.Errorf("envelope of %d events, more than %d", len(env.Events), event.MaxBlock)
		}
		if err != nil {
			id, perr := strconv.ParseInt(m.MsgID, 10, 64)
			if perr != nil || id <= 0 {
				r.log.Error("dropping an intake message that is not an envelope and has no event id",
					"msg_id", m.MsgID, "bytes", len(m.Data), "err", err)
				r.met.corrupt.WithLabelValues("terminated").Inc()
				if terr := m.Term(); terr != nil {
					r.log.Warn("terminate intake message", "msg_id", m.MsgID, "err", terr)
				}
				continue
			}
			r.log.Error("storing an intake message that is not an envelope as a raw event with an error",
				"event_id", id, "bytes", len(m.Data), "err", err)
			r.met.corrupt.WithLabelValues("stored").Inc()
			live = append(live, m)
			if seen[id] {
				r.met.replayed.Inc()
				continue
			}
			seen[id] = true
			data, _ := json.Marshal(string(m.Data)) // a JSON string; invalid UTF-8 replaced
			corrupt = append(corrupt, event.Raw{
				ID:               id,
				SourceSystem:     string(SourceUnknown),
				SourceType:       SourceUnknown,
				Data:             data,
				ReceivedAt:       event.TimeOfID(id),
				ProcessingErrors: []string{"corrupt intake message: " + err.Error()},
			})
			continue
		}
		live = append(live, m)
		for _, rw := range env.Raw() {
			if seen[rw.ID] {
				r.met.replayed.Inc() // the same envelope twice in one batch
				continue
			}
			seen[rw.ID] = true
			raws = append(raws, rw)
		}
	}
	return raws, corrupt, live
}

// runStages splits b by partition, runs the stages on the parts
// concurrently and merges the results into b.
func (r *Runner) runStages(ctx context.Context, b *Batch) error {
	parts := r.split(b)
	errs := make([]error, len(parts))
	run := func(i int) {
		p := parts[i]
		r.locks.mu[p.partition].Lock()
		defer r.locks.mu[p.partition].Unlock()
		errs[i] = runStage(ctx, StageName(r.opts.Stages), r.opts.Stages, p.b)
	}
	if len(parts) == 1 {
		run(0)
	} else {
		var wg sync.WaitGroup
		for i := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(i)
			}()
		}
		wg.Wait()
	}
	for _, p := range parts {
		// Undo under the partition's lock, like Process, so that this
		// lane's next batch of the same hosts waits for it. Each lane has
		// its own locks (the critical lane never waits for the other's
		// partitions); what the lanes share, the stages guard with their
		// own shard locks, and an undo is per event (docs/processing.md).
		if undo := p.b.aborts; len(undo) > 0 {
			mu := &r.locks.mu[p.partition]
			b.OnAbort(func() {
				mu.Lock()
				defer mu.Unlock()
				for i := len(undo) - 1; i >= 0; i-- {
					undo[i]()
				}
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	merge(b, parts)
	return nil
}

// processAll runs the stages over raws, the events of msgs. If they fail,
// it undoes what they applied, and either returns the messages to the
// intake log for a later delivery (a retryable error, fewer than
// MaxDeliveries deliveries) and reports false, or isolates the events that
// fail. After a retryable error, only the messages at their last delivery
// are isolated; the others are returned to the intake log. It returns the
// messages to acknowledge once the batch is stored. It reports false too
// if ctx ends first: the batch is then left for redelivery.
func (r *Runner) processAll(ctx context.Context, msgs []bus.Msg, raws []event.Raw) (*Batch, []bus.Msg, bool) {
	now := r.opts.Now()
	if len(raws) == 0 {
		return &Batch{Now: now}, msgs, true
	}
	b, err := r.attempt(ctx, now, raws)
	if err == nil {
		return b, msgs, true
	}
	b.Abort()
	step := stageOf(err)
	if step == "" {
		step = "stages"
	}
	if ctx.Err() != nil {
		r.log.Warn("batch abandoned at stop; it will be redelivered", "step", step, "err", err)
		return nil, nil, false
	}
	r.met.failures.WithLabelValues(step).Inc()
	last := uint64(r.opts.MaxDeliveries)
	var deliveries uint64
	for _, m := range msgs {
		deliveries = max(deliveries, m.NumDelivered)
	}
	retryable := IsRetryable(err)
	if retryable && deliveries < last {
		r.redeliver(msgs, step, deliveries, err)
		return nil, nil, false
	}
	if retryable {
		// Messages with deliveries left go back; their events are not
		// isolated on another message's last delivery.
		var again []bus.Msg
		msgs, again, raws = splitExhausted(msgs, raws, last)
		if len(again) > 0 {
			var n uint64
			for _, m := range again {
				n = max(n, m.NumDelivered)
			}
			r.redeliver(again, step, n, err)
		}
	}
	r.log.Warn("stage failed for good; isolating the events that fail",
		"step", step, "events", len(raws), "deliveries", deliveries, "retryable", retryable, "err", err)
	acc := &Batch{Now: now}
	r.isolate(ctx, acc, raws)
	if ctx.Err() != nil {
		acc.Abort()
		r.log.Warn("batch abandoned at stop; it will be redelivered", "step", step)
		return nil, nil, false
	}
	return acc, msgs, true
}

// splitExhausted divides msgs into those at their last delivery (or
// holding no event of raws) and the others, again, and keeps in raws the
// events of the former. It decodes the messages again: it runs only when a
// batch fails for good.
func splitExhausted(msgs []bus.Msg, raws []event.Raw, last uint64) (keep, again []bus.Msg, kept []event.Raw) {
	type span struct{ lo, hi int64 }
	var back []span
	for _, m := range msgs {
		var env struct {
			BaseID int64             `json:"base_id"`
			Events []json.RawMessage `json:"events"`
		}
		if m.NumDelivered >= last || json.Unmarshal(m.Data, &env) != nil || len(env.Events) == 0 {
			keep = append(keep, m)
			continue
		}
		again = append(again, m)
		back = append(back, span{env.BaseID, env.BaseID + int64(len(env.Events))})
	}
	if len(again) == 0 {
		return msgs, nil, raws
	}
	kept = make([]event.Raw, 0, len(raws))
	for _, rw := range raws {
		if !slices.ContainsFunc(back, func(s span) bool { return rw.ID >= s.lo && rw.ID < s.hi }) {
			kept = append(kept, rw)
		}
	}
	return keep, again, kept
}

// attempt runs Normalize and the stages over raws, in a new batch at now.
// On error the batch is returned too, for its undo functions.
func (r *Runner) attempt(ctx context.Context, now time.Time, raws []event.Raw) (*Batch, error) {
	b := &Batch{Now: now, Raw: raws[:len(raws):len(raws)]}
	start := time.Now()
	err := runStage(ctx, "normalize", r.opts.Normalize, b)
	r.met.stage.WithLabelValues("normalize").Observe(time.Since(start).Seconds())
	if err != nil || r.opts.Stages == nil || len(b.Events) == 0 {
		return b, err
	}
	start = time.Now()
	err = r.runStages(ctx, b)
	r.met.stage.WithLabelValues("stages").Observe(time.Since(start).Seconds())
	return b, err
}

// isolate bisects raws until the parts pass the stages, adding what they
// produce to acc, in intake order; a single event that still fails is a
// poison event, added to acc as unprocessed with its error. It returns
// early if ctx ends.
func (r *Runner) isolate(ctx context.Context, acc *Batch, raws []event.Raw) {
	if len(raws) == 0 {
		return
	}
	b, err := r.attempt(ctx, acc.Now, raws)
	if err == nil {
		acc.add(b)
		return
	}
	b.Abort()
	if ctx.Err() != nil {
		return
	}
	if len(raws) > 1 {
		mid := len(raws) / 2
		r.isolate(ctx, acc, raws[:mid:mid])
		r.isolate(ctx, acc, raws[mid:])
		return
	}
	rw := raws[0]
	stage := stageOf(err)
	if stage == "" {
		stage = "stages"
	}
	attrs := []any{"event_id", rw.ID, "source_system", rw.SourceSystem, "stage", stage, "err", err}
	if pe := (*PanicError)(nil); errors.As(err, &pe) {
		attrs = append(attrs, "stack", string(pe.Stack))
	}
	r.log.Error("poison event stored unprocessed", attrs...)
	r.met.poison.WithLabelValues(stage).Inc()
	r.status.update(func(s *RunnerStatus) { s.PoisonEvents++ })
	acc.Raw = append(acc.Raw, rw)
	acc.SetOutcome(rw.ID, Outcome{Error: err.Error(), Failed: true})
}

// add appends what part produced to b. A repeat of an event that b holds
// updates that event; rows of the same key are reduced by ToStore, the
// latest (most grown) winning.
func (b *Batch) add(part *Batch) {
	b.Raw = append(b.Raw, part.Raw...)
	at := make(map[int64]*event.Event, len(b.Events))
	for _, e := range b.Events {
		at[e.ID] = e
	}
	b.Events = append(b.Events, part.Events...)
	for id, o := range part.Outcomes {
		b.SetOutcome(id, o)
	}
	for _, rep := range part.Repeats {
		if e := at[rep.EventID]; e != nil {
			e.OccurrenceCount, e.LastSeenAt = rep.OccurrenceCount, rep.LastSeenAt
			continue
		}
		b.Repeats = append(b.Repeats, rep)
	}
	b.Correlations = append(b.Correlations, part.Correlations...)
	b.aborts = append(b.aborts, part.aborts...)
}

type part struct {
	partition int
	b         *Batch
}

// split divides the events of b among partitions by host. Each part holds
// its events and their raw events, in intake order, and nothing else.
func (r *Runner) split(b *Batch) []part {
	rawAt := make(map[int64]int, len(b.Raw))
	for i, rw := range b.Raw {
		rawAt[rw.ID] = i
	}
	byPartition := make([]*Batch, r.workers)
	var parts []part
	for _, e := range b.Events {
		p := Partition(e.SourceHost, r.workers)
		sb := byPartition[p]
		if sb == nil {
			sb = &Batch{Now: b.Now}
			byPartition[p] = sb
			parts = append(parts, part{partition: p, b: sb})
		}
		sb.Events = append(sb.Events, e)
		if i, ok := rawAt[e.RawEventID]; ok {
			sb.Raw = append(sb.Raw, b.Raw[i])
			delete(rawAt, e.RawEventID)
		}
	}
	return parts
}

// merge puts the parts' results back into b. Where parts report the same
// repeat or correlation row (state shared across hosts), the most advanced
// wins: occurrence counts and correlation groups only grow.
func merge(b *Batch, parts []part) {
	b.Events = b.Events[:0]
	repAt := make(map[int64]int, len(b.Repeats))
	for i, rep := range b.Repeats {
		repAt[rep.EventID] = i
	}
	for _, p := range parts {
		b.Events = append(b.Events, p.b.Events...)
		for id, o := range p.b.Outcomes {
			b.SetOutcome(id, o)
		}
		for _, rep := range p.b.Repeats {
			if i, ok := repAt[rep.EventID]; ok {
				if rep.OccurrenceCount >= b.Repeats[i].OccurrenceCount {
					b.Repeats[i] = rep
				}
				continue
			}
			repAt[rep.EventID] = len(b.Repeats)
			b.Repeats = append(b.Repeats, rep)
		}
	}
	if len(parts) > 1 {
		slices.SortStableFunc(b.Events, func(x, y *event.Event) int {
			switch {
			case x.RawEventID < y.RawEventID:
				return -1
			case x.RawEventID > y.RawEventID:
				return 1
			}
			return 0
		})
	}
	at := make(map[string]int, len(b.Correlations))
	for i, c := range b.Correlations {
		at[c.CorrelationID] = i
	}
	for _, p := range parts {
		for _, c := range p.b.Correlations {
			if i, ok := at[c.CorrelationID]; ok {
				if len(c.RelatedEventIDs) >= len(b.Correlations[i].RelatedEventIDs) {
					b.Correlations[i] = c
				}
				continue
			}
			at[c.CorrelationID] = len(b.Correlations)
			b.Correlations = append(b.Correlations, c)
		}
	}
}

// retry calls f until it succeeds, with exponential backoff between
// attempts, keeping msgs from being redelivered meanwhile. It reports
// false if ctx ended first; the messages are then left unacknowledged.
func (r *Runner) retry(ctx context.Context, what string, msgs []bus.Msg, f func() error) bool {
	wait := r.opts.RetryMin
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			if attempt > 1 {
				r.log.Info("batch succeeded after retries", "step", what, "attempts", attempt)
			}
			return true
		}
		if ctx.Err() != nil {
			r.log.Warn("batch abandoned at stop; it will be redelivered", "step", what, "err", err)
			return false
		}
		r.met.failures.WithLabelValues(what).Inc()
		r.status.update(func(s *RunnerStatus) { s.Failing, s.Err = true, what+": "+err.Error() })
		r.log.Error("batch failed; retrying", "step", what, "attempt", attempt, "retry_in", wait, "err", err)
		for i := range msgs {
			if err := msgs[i].InProgress(); err != nil {
				r.log.Warn("extend intake message ack deadline", "msg_id", msgs[i].MsgID, "err", err)
			}
		}
		if !sleep(ctx, wait) {
			r.log.Warn("batch abandoned at stop; it will be redelivered", "step", what)
			return false
		}
		wait = min(2*wait, r.opts.RetryMax)
	}
}

// redeliver gives the messages back for redelivery after a backoff that
// grows with their delivery count n: RetryMin, doubling per delivery, at
// most RetryMax.
func (r *Runner) redeliver(msgs []bus.Msg, stage string, n uint64, err error) {
	delay := RedeliveryDelay(n, r.opts.RetryMin, r.opts.RetryMax)
	r.status.update(func(s *RunnerStatus) { s.Failing, s.Err = true, err.Error() })
	r.log.Error("stage failed; batch returned to the intake log", "step", stage, "messages", len(msgs),
		"deliveries", n, "redeliver_in", delay, "err", err)
	for i := range msgs {
		if err := msgs[i].Nak(delay); err != nil {
			r.log.Warn("nak intake message", "msg_id", msgs[i].MsgID, "err", err)
		}
	}
}

// RedeliveryDelay is the delay before the next delivery of a batch that
// failed at its n-th delivery: lo, doubled for each delivery after the
// first, at most hi.
func RedeliveryDelay(n uint64, lo, hi time.Duration) time.Duration {
	delay := lo
	for i := uint64(1); i < n && delay < hi; i++ {
		delay *= 2
	}
	return min(delay, hi)
}

func (r *Runner) ack(msgs []bus.Msg) {
	r.status.update(func(s *RunnerStatus) { s.LastProgress, s.Failing, s.Err = r.opts.Now(), false, "" })
	for i := range msgs {
		if err := msgs[i].Ack(); err != nil {
			// The message comes back after AckWait and is skipped as
			// stored.
			r.log.Warn("ack intake message", "msg_id", msgs[i].MsgID, "err", err)
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
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
