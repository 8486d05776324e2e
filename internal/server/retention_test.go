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

	"github.com/reflex-ops/reflex/internal/config"
	"github.com/reflex-ops/reflex/internal/store"
)

// retentionStore records the cut-offs of EnforceRetention,
// PruneNotifications, PruneMaintenance and PruneIncidents; its other
// methods are not used by the retention loop.
type retentionStore struct {
	store.Store
	mu        sync.Mutex
	cuts      []time.Time
	pruned    []time.Time
	ended     []time.Time // PruneMaintenance
	incidents []time.Time
	err       error
}

func (s *retentionStore) PruneIncidents(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents = append(s.incidents, before)
	return 1, s.err
}

func (s *retentionStore) PruneMaintenance(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = append(s.ended, before)
	return 1, s.err
}

func (s *retentionStore) PruneNotifications(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruned = append(s.pruned, before)
	return 1, s.err
}

func (s *retentionStore) EnforceRetention(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts = append(s.cuts, before)
	return 1, s.err
}

func (s *retentionStore) calls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.cuts...)
}

func TestRetentionRunsAtStartThenHourly(t *testing.T) {
	for _, failing := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			cfg := config.Default()
			cfg.Retention = config.Duration(24 * time.Hour)
			st := &retentionStore{}
			if failing {
				st.err = errors.New("database is locked") // a failure does not stop the schedule
			}
			s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), now: time.Now, store: st,
				stops: newStack(slog.New(slog.DiscardHandler), 0)}
			start := time.Now()
			s.startRetention()

			synctest.Wait()
			require.Equal(t, []time.Time{start.Add(-24 * time.Hour)}, st.calls(), "at start")

			time.Sleep(59 * time.Minute)
			synctest.Wait()
			require.Len(t, st.calls(), 1, "not before the hour")

			time.Sleep(time.Minute)
			synctest.Wait()
			require.Equal(t, []time.Time{start.Add(-24 * time.Hour), start.Add(-23 * time.Hour)}, st.calls())

			time.Sleep(2 * time.Hour)
			synctest.Wait()
			require.Len(t, st.calls(), 4)
			st.mu.Lock()
			require.Equal(t, st.cuts, st.pruned, "notification records follow the events' retention")
			require.Equal(t, st.cuts, st.ended, "ended maintenance windows too")
			require.Equal(t, st.cuts, st.incidents, "resolved incidents follow the events' retention")
			st.mu.Unlock()

			// The shutdown stops it: no more runs.
			require.NoError(t, s.stops.stop(context.Background()))
			time.Sleep(5 * time.Hour)
			synctest.Wait()
			require.Len(t, st.calls(), 4)
		})
	}
}
