package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/pipeline"
)

func TestCheckLanes(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	lim := LaneLimits{Stall: 2 * time.Minute, Failing: time.Minute}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	lane := func(f func(s *laneState)) laneState {
		s := laneState{RunnerStatus: pipeline.RunnerStatus{Lane: "hi", Running: true}}
		f(&s)
		return s
	}
	waiting := func(n uint64) pendingFunc {
		return func(context.Context, string) (uint64, error) { return n, nil }
	}
	for _, c := range []struct {
		name    string
		now     time.Time
		lane    laneState
		pending pendingFunc
		want    string // "" means ready
	}{
		{"just started, not polled yet", at(time.Second), lane(func(*laneState) {}), waiting(5), ""},
		{"not yet running", at(time.Second), lane(func(s *laneState) { s.Running = false }), waiting(0), ""},
		{"idle for an hour with nothing waiting", at(time.Hour), lane(func(s *laneState) { s.LastPoll = at(time.Minute) }), waiting(0), ""},
		{"idle with messages waiting, under the bound", at(119 * time.Second), lane(func(*laneState) {}), waiting(3), ""},
		{"stalled with messages waiting", at(3 * time.Minute), lane(func(s *laneState) { s.LastPoll = at(time.Minute) }),
			waiting(7), "pipeline: lane hi stalled: no batch taken for 2m0s with 7 messages waiting"},
		{"backlog unknown", at(3 * time.Minute), lane(func(*laneState) {}),
			func(context.Context, string) (uint64, error) { return 0, errors.New("no responders") },
			"pipeline: lane hi stalled: no batch taken for 3m0s, and its backlog is unknown: no responders"},
		{"recent progress", at(10 * time.Minute), lane(func(s *laneState) { s.LastProgress = at(9 * time.Minute) }), waiting(100), ""},
		{"failing briefly", at(10 * time.Minute), lane(func(s *laneState) {
			s.LastPoll, s.LastProgress, s.Failing, s.Err = at(9*time.Minute), at(9*time.Minute+30*time.Second), true, "store: disk full"
		}), waiting(10), ""},
		{"keeps failing", at(10 * time.Minute), lane(func(s *laneState) {
			s.LastPoll, s.LastProgress, s.Failing, s.Err = at(9*time.Minute), at(8*time.Minute), true, "store: disk full"
		}), waiting(10), "pipeline: lane hi failing: no batch stored for 2m0s: store: disk full"},
		{"failing since the start", at(90 * time.Second), lane(func(s *laneState) { s.Failing, s.Err = true, "store: locked" }),
			waiting(1), "pipeline: lane hi failing: no batch stored for 1m30s: store: locked"},
		{"stopped", at(time.Minute), lane(func(s *laneState) { s.Running, s.Exited = false, true }), waiting(0), "pipeline: lane hi stopped"},
		{"stopped with an error", at(time.Minute), lane(func(s *laneState) { s.Running, s.Exited, s.ExitErr = false, true, errors.New("bus: closed") }),
			waiting(0), "pipeline: lane hi stopped: bus: closed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkLanes(context.Background(), c.now, t0, []laneState{c.lane}, c.pending, lim)
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, c.want)
		})
	}
}

func TestCheckLanesNamesEveryBadLane(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	lanes := []laneState{
		{RunnerStatus: pipeline.RunnerStatus{Lane: "hi"}, Exited: true},
		{RunnerStatus: pipeline.RunnerStatus{Lane: "lo", Running: true}},
	}
	pending := func(_ context.Context, lane string) (uint64, error) {
		require.Equal(t, "lo", lane)
		return 1, nil
	}
	err := checkLanes(context.Background(), t0.Add(DefaultLaneStall), t0, lanes, pending, LaneLimits{})
	require.EqualError(t, err, "pipeline: lane hi stopped; lane lo stalled: no batch taken for 2m0s with 1 messages waiting")
}
