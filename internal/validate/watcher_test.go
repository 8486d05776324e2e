package validate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/store"
)

// fakeClock is a Clock that moves when the test says.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	made   chan struct{}
}

type fakeTimer struct {
	c             *fakeClock
	at            time.Time
	ch            chan time.Time
	stopped, done bool
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, made: make(chan struct{}, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.fire()
	c.mu.Unlock()
	select {
	case c.made <- struct{}{}:
	default:
	}
	return t
}

// fire sends on the timers due; c.mu is held.
func (c *fakeClock) fire() {
	live := c.timers[:0]
	for _, t := range c.timers {
		if t.stopped || t.done {
			continue
		}
		if !t.at.After(c.now) {
			t.done = true
			t.ch <- c.now
			continue
		}
		live = append(live, t)
	}
	c.timers = live
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fire()
}

// AdvanceTo moves the clock to at.
func (c *fakeClock) AdvanceTo(at time.Time) { c.Advance(at.Sub(c.Now())) }

// waitTimer waits until a timer set for at is live: the watcher waits for
// that time.
func (c *fakeClock) waitTimer(t *testing.T, at time.Time) {
	t.Helper()
	for {
		c.mu.Lock()
		for _, tm := range c.timers {
			if !tm.stopped && !tm.done && tm.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		select {
		case <-c.made:
		case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
			t.Fatalf("the watcher set no timer for %s", at)
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.done
	t.stopped = true
	return was
}

// fakeEvents answers no events, or fails while failures > 0.
type fakeEvents struct {
	failures atomic.Int64
	calls    atomic.Int64
	repeatOf map[int64]time.Time // event id -> its last_seen_at
}

var errStore = errors.New("database is locked")

func (f *fakeEvents) Events(context.Context, store.EventQuery) (store.EventPage, error) {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return store.EventPage{}, errStore
	}
	return store.EventPage{}, nil
}

func (f *fakeEvents) EventsByID(_ context.Context, ids []int64) ([]event.Event, error) {
	var out []event.Event
	for _, id := range ids {
		if at, ok := f.repeatOf[id]; ok {
			out = append(out, event.Event{ID: id, LastSeenAt: at, OccurrenceCount: 2})
		}
	}
	return out, nil
}

type result struct {
	id     int64
	ok     bool
	detail string
}

type watcherEnv struct {
	clock   *fakeClock
	events  *fakeEvents
	w       *Watcher
	results chan result
	base    time.Time
}

func startWatcher(t *testing.T, opts WatcherOptions) *watcherEnv {
	t.Helper()
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	e := &watcherEnv{clock: newFakeClock(base), events: &fakeEvents{repeatOf: map[int64]time.Time{}}, results: make(chan result, 16), base: base}
	v := newValidator(t, Options{Events: e.events, Now: e.clock.Now})
	opts.Validator = v
	opts.Clock = e.clock
	opts.OnResult = func(_ context.Context, id int64, ok bool, detail string) { e.results <- result{id, ok, detail} }
	w, err := NewWatcher(opts)
	require.NoError(t, err)
	e.w = w
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return e
}

func (e *watcherEnv) check(minutes int, host string, eventID int64) QuietCheck {
	return QuietCheck{Host: host, Match: Match{EventType: "cpu"}, EventID: eventID, From: e.base, Due: e.base.Add(time.Duration(minutes) * time.Minute)}
}

func (e *watcherEnv) next(t *testing.T) result {
	t.Helper()
	select {
	case r := <-e.results:
		return r
	case <-time.After(10 * time.Second): // a deadlock guard
		t.Fatal("no result")
	}
	return result{}
}

func (e *watcherEnv) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-e.results:
		t.Fatalf("unexpected result %+v", r)
	default:
	}
}

func TestWatcherChecksWhenDue(t *testing.T) {
	e := startWatcher(t, WatcherOptions{Grace: 30 * time.Second})
	e.events.repeatOf[2] = e.base.Add(3 * time.Minute)
	later, sooner := e.check(20, "web-01", 1), e.check(10, "web-02", 2)
	require.NoError(t, e.w.Add(1, later))
	require.NoError(t, e.w.Add(2, sooner))
	require.Equal(t, 2, e.w.Pending())

	e.clock.waitTimer(t, sooner.Due.Add(30*time.Second))
	e.clock.AdvanceTo(sooner.Due.Add(29 * time.Second))
	e.none(t)
	e.clock.AdvanceTo(sooner.Due.Add(30 * time.Second))
	r := e.next(t)
	require.Equal(t, int64(2), r.id)
	require.False(t, r.ok)
	require.Contains(t, r.detail, "event 2 repeated at 2026-03-02T10:03:00Z")
	e.none(t)

	e.clock.waitTimer(t, later.Due.Add(30*time.Second))
	e.clock.AdvanceTo(later.Due.Add(time.Hour)) // late (a paused process): checked at once
	r = e.next(t)
	require.Equal(t, result{1, true, `no new event (event type "cpu") on web-01 within 20m0s of the action`}, r)
	require.Equal(t, 0, e.w.Pending())
}

func TestWatcherBound(t *testing.T) {
	e := startWatcher(t, WatcherOptions{Max: 2})
	require.NoError(t, e.w.Add(1, e.check(10, "a", 0)))
	require.NoError(t, e.w.Add(2, e.check(10, "b", 0)))
	require.ErrorIs(t, e.w.Add(3, e.check(1, "c", 0)), ErrFull)
	// Re-adding a pending id (the service at start) replaces it.
	require.NoError(t, e.w.Add(2, e.check(5, "b", 0)))
	require.Equal(t, 2, e.w.Pending())
	e.clock.waitTimer(t, e.base.Add(5*time.Minute+DefaultGrace))
	e.clock.AdvanceTo(e.base.Add(5*time.Minute + DefaultGrace))
	r := e.next(t)
	require.Equal(t, int64(2), r.id)
	require.Contains(t, r.detail, "within 5m0s")
	require.NoError(t, e.w.Add(3, e.check(1, "c", 0)))
}

func TestWatcherRemove(t *testing.T) {
	e := startWatcher(t, WatcherOptions{Grace: time.Second})
	require.NoError(t, e.w.Add(1, e.check(10, "a", 0)))
	require.NoError(t, e.w.Add(2, e.check(20, "b", 0)))
	require.True(t, e.w.Remove(1))
	require.False(t, e.w.Remove(1))
	e.clock.waitTimer(t, e.base.Add(20*time.Minute+time.Second))
	e.clock.AdvanceTo(e.base.Add(20*time.Minute + time.Second))
	require.Equal(t, int64(2), e.next(t).id)
	e.none(t)
}

func TestWatcherRetriesStoreFailures(t *testing.T) {
	e := startWatcher(t, WatcherOptions{Grace: time.Second, RetryEvery: time.Minute, MaxAttempts: 3})
	e.events.failures.Store(2)
	q := e.check(10, "a", 0)
	require.NoError(t, e.w.Add(1, q))
	at := q.Due.Add(time.Second)
	for range 2 { // two failures, each retried a minute later
		e.clock.waitTimer(t, at)
		e.clock.AdvanceTo(at)
		at = at.Add(time.Minute)
	}
	e.clock.waitTimer(t, at)
	e.none(t)
	e.clock.AdvanceTo(at)
	r := e.next(t)
	require.True(t, r.ok, r.detail)
	require.Equal(t, int64(3), e.events.calls.Load())
}

func TestWatcherGivesUp(t *testing.T) {
	e := startWatcher(t, WatcherOptions{Grace: time.Second, RetryEvery: time.Minute, MaxAttempts: 2})
	e.events.failures.Store(100)
	q := e.check(10, "a", 0)
	require.NoError(t, e.w.Add(7, q))
	at := q.Due.Add(time.Second)
	e.clock.waitTimer(t, at)
	e.clock.AdvanceTo(at)
	e.clock.waitTimer(t, at.Add(time.Minute))
	e.clock.AdvanceTo(at.Add(time.Minute))
	r := e.next(t)
	require.Equal(t, int64(7), r.id)
	require.False(t, r.ok)
	require.Contains(t, r.detail, "not checked: validate: quiet check: read events of a: database is locked")
	require.Equal(t, 0, e.w.Pending())
}

func TestWatcherRunsOnce(t *testing.T) {
	e := startWatcher(t, WatcherOptions{})
	require.NoError(t, e.w.Add(1, e.check(10, "a", 0)))
	e.clock.waitTimer(t, e.base.Add(10*time.Minute+DefaultGrace)) // Run is running
	require.Error(t, e.w.Run(t.Context()))
}

func TestNewWatcherRequires(t *testing.T) {
	v := newValidator(t, Options{})
	_, err := NewWatcher(WatcherOptions{OnResult: func(context.Context, int64, bool, string) {}})
	require.ErrorContains(t, err, "Validator is required")
	_, err = NewWatcher(WatcherOptions{Validator: v})
	require.ErrorContains(t, err, "OnResult is required")
	_, err = NewWatcher(WatcherOptions{Validator: v, OnResult: func(context.Context, int64, bool, string) {}, Max: -1})
	require.Error(t, err)
}
