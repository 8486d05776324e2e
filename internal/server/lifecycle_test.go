package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder records the order in which stops run.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) stop(name string, err error) stopFunc {
	return func(context.Context) error {
		r.mu.Lock()
		r.ran = append(r.ran, name)
		r.mu.Unlock()
		return err
	}
}

func (r *recorder) order() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

func TestStackStopsInReverseAndReportsEveryError(t *testing.T) {
	var r recorder
	st := newStack(slog.New(slog.DiscardHandler), 0)
	errBus := errors.New("bus failed")
	errStore := errors.New("store failed")
	st.push("store", r.stop("store", errStore))
	st.push("bus", r.stop("bus", errBus))
	st.push("pipeline", r.stop("pipeline", nil))
	st.push("listener", r.stop("listener", nil))

	err := st.stop(context.Background())
	require.Equal(t, []string{"listener", "pipeline", "bus", "store"}, r.order())
	require.ErrorIs(t, err, errBus)
	require.ErrorIs(t, err, errStore)
	require.Contains(t, err.Error(), "stop bus")

	// A second stop has nothing left to run.
	require.NoError(t, st.stop(context.Background()))
	require.Len(t, r.order(), 4)
}

func TestStackCutsAHangingStopAndRunsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r recorder
		st := newStack(slog.New(slog.DiscardHandler), 2*time.Second)
		release := make(chan struct{})
		defer close(release)
		var lateCtxErr error
		st.push("store", func(ctx context.Context) error {
			// Runs after the deadline, with its own grace period.
			lateCtxErr = ctx.Err()
			return r.stop("store", nil)(ctx)
		})
		st.push("bus", func(ctx context.Context) error {
			_ = r.stop("bus", nil)(ctx)
			<-ctx.Done() // hangs until its grace period ends
			return ctx.Err()
		})
		st.push("pipeline", func(context.Context) error {
			<-release // ignores its context: hangs for good
			return nil
		})
		st.push("listener", r.stop("listener", nil))

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		begin := time.Now()
		err := st.stop(ctx)
		took := time.Since(begin)

		require.Equal(t, []string{"listener", "bus", "store"}, r.order())
		require.ErrorContains(t, err, "stop pipeline: did not stop in time")
		require.ErrorContains(t, err, "stop bus: did not stop in time")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, lateCtxErr, "a stop after the deadline gets a live context")
		// The deadline (30s), then the bus's grace (2s).
		require.Equal(t, 32*time.Second, took)
	})
}

func TestDrainTimeoutFollowsShutdownTimeout(t *testing.T) {
	for _, c := range []struct{ grace, drain time.Duration }{
		{30 * time.Second, 25 * time.Second},
		{8 * time.Second, 6 * time.Second},
		{2 * time.Minute, 115 * time.Second},
	} {
		require.Equal(t, c.drain, drainTimeout(c.grace), c.grace)
	}
}

func TestServerStopsInOrder(t *testing.T) {
	cfg := testConfig(t)
	cfg.PprofAddr = "127.0.0.1:0"
	ts := start(t, cfg)
	st := ts.srv.stops
	st.mu.Lock()
	var order []string // the order Shutdown runs them in
	for i := len(st.items) - 1; i >= 0; i-- {
		order = append(order, st.items[i].name)
	}
	st.mu.Unlock()
	require.Equal(t, []string{
		"autonomous service", "decision requests", "approval expiry", "orchestrator", "resource state", "pprof service", "events service",
		"grafana", "alertmanager", // the alert webhooks' submitters, once the events service no longer serves them
		"retention", "intake submitter", "pipeline", "incident engine", "anomaly monitor", "rules engine", "derived events submitter", "notifications", "intake log", "store",
		"pprof listener", "autonomous listener", "events listener", "data dir lock",
	}, order)
}
