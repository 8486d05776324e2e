package validate

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Watcher.
const (
	// DefaultMaxPending is WatcherOptions.Max's default.
	DefaultMaxPending = 10_000
	// DefaultGrace is WatcherOptions.Grace's default.
	DefaultGrace = 30 * time.Second
	// DefaultRetryEvery is WatcherOptions.RetryEvery's default.
	DefaultRetryEvery = time.Minute
	// DefaultMaxAttempts is WatcherOptions.MaxAttempts's default.
	DefaultMaxAttempts = 5
)

// ErrFull is the refusal of Add when Max checks are pending. A refused
// check is not scheduled: the caller records the step's validation as
// failed ("not checked") or tries again later.
var ErrFull = errors.New("validate: too many quiet checks pending")

// Clock is the time of a Watcher. Implementations are safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is one timer of a Clock.
type Timer interface {
	// C is the channel the timer's time is sent on.
	C() <-chan time.Time
	// Stop stops the timer; it reports whether it stopped it before it
	// fired.
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// WatcherOptions configure a Watcher. Validator and OnResult are
// required.
type WatcherOptions struct {
	// Validator answers the checks (CheckQuiet).
	Validator *Validator
	// Max bounds the checks pending: Add refuses one more with ErrFull
	// (a check answered early would be a wrong "quiet"). Default
	// DefaultMaxPending.
	Max int
	// OnResult receives each check's answer, from Run's goroutine, one
	// at a time: the id given to Add, whether the host stayed quiet, and
	// the detail (QuietSummary renders it for StepState.Validation). A
	// check that could not run after MaxAttempts is answered not ok,
	// with the error as its detail.
	OnResult func(ctx context.Context, id int64, ok bool, detail string)
	// Clock is the time the watcher waits on. Default: the real clock.
	// Give the Validator a Now of the same clock.
	Clock Clock
	// Grace is how long after Due a check runs, so that events received
	// just before Due are stored (through the pipeline) by then. Default
	// DefaultGrace.
	Grace time.Duration
	// RetryEvery is the wait before a check whose store read failed is
	// tried again; MaxAttempts how many tries it gets. Defaults
	// DefaultRetryEvery and DefaultMaxAttempts.
	RetryEvery  time.Duration
	MaxAttempts int
	// Logger receives the watcher's records. Default: discard.
	Logger *slog.Logger
}

// Watcher runs the quiet checks when they are due. Pending checks are
// kept in memory only: they are derivable from the executions (the
// step's event, its finish time, the action's criteria), and the service
// adds those of the executions still waiting on one when it starts. Add
// and Remove are safe for concurrent use with Run.
type Watcher struct {
	v          *Validator
	max        int
	onResult   func(ctx context.Context, id int64, ok bool, detail string)
	clock      Clock
	grace      time.Duration
	retryEvery time.Duration
	attempts   int
	log        *slog.Logger

	running atomic.Bool
	wake    chan struct{}

	mu      sync.Mutex
	pending map[int64]*item
	queue   queue
}

type item struct {
	id       int64
	q        QuietCheck
	at       time.Time // when to check
	attempts int
	index    int // in the queue; -1 when out
}

// NewWatcher returns a Watcher; Run runs it.
func NewWatcher(opts WatcherOptions) (*Watcher, error) {
	switch {
	case opts.Validator == nil:
		return nil, errors.New("validate: watcher: Validator is required")
	case opts.OnResult == nil:
		return nil, errors.New("validate: watcher: OnResult is required")
	case opts.Max < 0, opts.Grace < 0, opts.RetryEvery < 0, opts.MaxAttempts < 0:
		return nil, errors.New("validate: watcher: Max, Grace, RetryEvery and MaxAttempts must not be negative")
	}
	w := &Watcher{
		v:          opts.Validator,
		max:        or(opts.Max, DefaultMaxPending),
		onResult:   opts.OnResult,
		clock:      opts.Clock,
		grace:      or(opts.Grace, DefaultGrace),
		retryEvery: or(opts.RetryEvery, DefaultRetryEvery),
		attempts:   or(opts.MaxAttempts, DefaultMaxAttempts),
		log:        opts.Logger,
		wake:       make(chan struct{}, 1),
		pending:    map[int64]*item{},
	}
	if w.clock == nil {
		w.clock = realClock{}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("component", "validate")
	return w, nil
}

func or[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Add schedules q under id (an id of the caller's: the execution's, or
// a step's), to be checked Grace after q.Due. Adding an id that is
// pending replaces its check. It refuses with ErrFull when Max checks
// are pending.
func (w *Watcher) Add(id int64, q QuietCheck) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	at := q.Due.Add(w.grace)
	if it, ok := w.pending[id]; ok {
		it.q, it.at, it.attempts = q, at, 0
		if it.index >= 0 {
			heap.Fix(&w.queue, it.index)
		} else {
			heap.Push(&w.queue, it)
		}
	} else {
		if len(w.pending) >= w.max {
			return fmt.Errorf("%w: %d", ErrFull, w.max)
		}
		it := &item{id: id, q: q, at: at}
		w.pending[id] = it
		heap.Push(&w.queue, it)
	}
	w.poke()
	return nil
}

// Remove drops the check of id (its execution was cancelled); it
// reports whether one was pending.
func (w *Watcher) Remove(id int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	it, ok := w.pending[id]
	if !ok {
		return false
	}
	delete(w.pending, id)
	if it.index >= 0 {
		heap.Remove(&w.queue, it.index)
	}
	w.poke()
	return true
}

// Pending returns how many checks are pending.
func (w *Watcher) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run checks the pending checks as they come due, until ctx ends; then
// it returns nil, the checks not yet answered left pending. It is an
// error to run a Watcher twice at once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("validate: watcher is already running")
	}
	defer w.running.Store(false)
	for {
		w.runDue(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var (
			timer Timer
			fire  <-chan time.Time
		)
		w.mu.Lock()
		if len(w.queue) > 0 {
			timer = w.clock.NewTimer(w.queue[0].at.Sub(w.clock.Now()))
			fire = timer.C()
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// runDue answers the checks due now, earliest first.
func (w *Watcher) runDue(ctx context.Context) {
	for ctx.Err() == nil {
		now := w.clock.Now()
		w.mu.Lock()
		if len(w.queue) == 0 || w.queue[0].at.After(now) {
			w.mu.Unlock()
			return
		}
		it := heap.Pop(&w.queue).(*item)
		q := it.q
		w.mu.Unlock()

		ok, detail, err := w.v.CheckQuiet(ctx, q)
		if ctx.Err() != nil {
			w.requeue(it, q) // not answered: check it when run again
			return
		}
		if err != nil {
			if errors.Is(err, ErrNotDue) {
				// The validator's clock is behind the watcher's.
				w.retry(it, q, now.Add(w.retryEvery), false)
				continue
			}
			if !w.retry(it, q, now.Add(w.retryEvery), true) {
				w.log.ErrorContext(ctx, "quiet check could not run", "id", it.id, "host", q.Host, "err", err)
				w.answer(ctx, it, q, false, "not checked: "+err.Error())
			} else {
				w.log.WarnContext(ctx, "quiet check failed, trying again", "id", it.id, "host", q.Host, "err", err)
			}
			continue
		}
		w.answer(ctx, it, q, ok, detail)
	}
}

// requeue puts it back as it was, unless it was replaced or removed.
func (w *Watcher) requeue(it *item, q QuietCheck) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[it.id] == it && it.index < 0 && it.q == q {
		heap.Push(&w.queue, it)
	}
}

// retry schedules it again at at; counted says the try counts against
// MaxAttempts. It reports false when no try is left (it is then still
// pending, for answer to remove).
func (w *Watcher) retry(it *item, q QuietCheck, at time.Time, counted bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[it.id] != it || it.index >= 0 || it.q != q {
		return true // replaced or removed meanwhile: nothing to do here
	}
	if counted {
		it.attempts++
		if it.attempts >= w.attempts {
			return false
		}
	}
	it.at = at
	heap.Push(&w.queue, it)
	return true
}

// answer removes it and calls OnResult, unless it was replaced or
// removed while being checked.
func (w *Watcher) answer(ctx context.Context, it *item, q QuietCheck, ok bool, detail string) {
	w.mu.Lock()
	current := w.pending[it.id] == it && it.index < 0 && it.q == q
	if current {
		delete(w.pending, it.id)
	}
	w.mu.Unlock()
	if current {
		w.onResult(ctx, it.id, ok, detail)
	}
}

// queue is a min-heap of items by at.
type queue []*item

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *queue) Push(x any) {
	it := x.(*item)
	it.index = len(*q)
	*q = append(*q, it)
}

func (q *queue) Pop() any {
	old := *q
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	it.index = -1
	*q = old[:n-1]
	return it
}
