package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/pipeline"
)

// Defaults of LaneLimits.
const (
	DefaultLaneStall   = 2 * time.Minute
	DefaultLaneFailing = time.Minute
)

// LaneLimits bound what readiness tolerates of the pipeline's lanes. The
// zero value is the defaults.
type LaneLimits struct {
	// Stall: a lane that has messages waiting and has neither taken a
	// batch nor stored one for this long is stalled (default 2m; an idle
	// lane, with nothing waiting, is not). Keep it above the intake log's
	// AckWait, the longest a healthy batch is given.
	Stall time.Duration
	// Failing: a lane whose batch has kept failing (the store or the
	// downstream returns errors; the runner retries with backoff) since
	// its last stored batch for this long is not ready (default 1m).
	Failing time.Duration
}

func (l LaneLimits) withDefaults() LaneLimits {
	if l.Stall <= 0 {
		l.Stall = DefaultLaneStall
	}
	if l.Failing <= 0 {
		l.Failing = DefaultLaneFailing
	}
	return l
}

// laneState is what readiness knows of one lane's runner.
type laneState struct {
	pipeline.RunnerStatus
	// Exited is set once the runner's Run has returned; ExitErr is its
	// error (nil for a stop).
	Exited  bool
	ExitErr error
}

// pendingFunc returns the number of messages waiting in a lane (delivered
// or not, unacknowledged).
type pendingFunc func(ctx context.Context, lane string) (uint64, error)

// checkLanes returns nil if every lane works, else an error naming each
// lane that does not and why. started is when processing started: a lane
// that has not polled yet is measured from it.
func checkLanes(ctx context.Context, now, started time.Time, lanes []laneState, pending pendingFunc, lim LaneLimits) error {
	lim = lim.withDefaults()
	var bad []string
	for _, l := range lanes {
		if why := laneProblem(ctx, now, started, l, pending, lim); why != "" {
			bad = append(bad, fmt.Sprintf("lane %s %s", l.Lane, why))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return errors.New("pipeline: " + strings.Join(bad, "; "))
}

func laneProblem(ctx context.Context, now, started time.Time, l laneState, pending pendingFunc, lim LaneLimits) string {
	if l.Exited {
		if l.ExitErr != nil {
			return "stopped: " + l.ExitErr.Error()
		}
		return "stopped"
	}
	progress := latest(started, l.LastProgress)
	if l.Failing && now.Sub(progress) >= lim.Failing {
		return fmt.Sprintf("failing: no batch stored for %s: %s", now.Sub(progress).Round(time.Second), l.Err)
	}
	active := latest(progress, l.LastPoll)
	if idle := now.Sub(active); idle >= lim.Stall {
		n, err := pending(ctx, l.Lane)
		switch {
		case err != nil:
			return fmt.Sprintf("stalled: no batch taken for %s, and its backlog is unknown: %v", idle.Round(time.Second), err)
		case n > 0:
			return fmt.Sprintf("stalled: no batch taken for %s with %d messages waiting", idle.Round(time.Second), n)
		}
	}
	return ""
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
