package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultStopGrace is how long each stop still gets once the shutdown
// deadline has passed (see stack.stop).
const DefaultStopGrace = time.Second

// stopFunc stops one component. It should return once the component has
// stopped or ctx is done, whichever comes first.
type stopFunc func(ctx context.Context) error

// stack holds the stop functions of the components that started, in the
// order they started (Caddy's and Alertmanager's run groups are the idea):
// each component pushes its stop as soon as it is running, so that a
// failure later in the start, or a shutdown, stops exactly what runs, in
// reverse order.
type stack struct {
	log   *slog.Logger
	grace time.Duration // per stop once the deadline has passed

	mu    sync.Mutex
	items []stopItem
}

type stopItem struct {
	name string
	stop stopFunc
}

func newStack(log *slog.Logger, grace time.Duration) *stack {
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	return &stack{log: log, grace: grace}
}

// push registers the stop of a component that just started.
func (s *stack) push(name string, stop stopFunc) {
	s.mu.Lock()
	s.items = append(s.items, stopItem{name, stop})
	s.mu.Unlock()
}

// pushClose registers a stop that takes no context.
func (s *stack) pushClose(name string, closeFn func() error) {
	s.push(name, func(context.Context) error { return closeFn() })
}

// stop pops every stop function and runs it, the last pushed first, one at
// a time. Each runs until it returns or ctx is done; a stop still running
// at ctx's deadline is abandoned (its goroutine is left to finish) and
// reported, and the stops after it still run, each with its own grace
// period, so that storage is closed even when the pipeline hangs. stop
// returns the errors of all stops.
func (s *stack) stop(ctx context.Context) error {
	s.mu.Lock()
	items := s.items
	s.items = nil
	s.mu.Unlock()
	var errs []error
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if ctx.Err() != nil {
			sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.grace)
		}
		if err := runStop(sctx, it.stop); err != nil {
			s.log.Error("stop failed", "component", it.name, "err", err)
			errs = append(errs, fmt.Errorf("server: stop %s: %w", it.name, err))
		} else {
			s.log.Debug("stopped", "component", it.name)
		}
		cancel()
	}
	return errors.Join(errs...)
}

// runStop runs stop in its own goroutine and waits for it or for ctx.
func runStop(ctx context.Context, stop stopFunc) error {
	done := make(chan error, 1)
	go func() { done <- stop(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("did not stop in time: %w", ctx.Err())
	}
}
