package pipeline

import (
	"sync"
	"time"
)

// RunnerStatus is what a runner reports about itself, for readiness.
type RunnerStatus struct {
	// Lane is the runner's lane.
	Lane string
	// Running is true from the start of Run until it returns.
	Running bool
	// LastPoll is when the runner last came back from the intake log,
	// with messages or without (the consumer's wait is bounded, so a
	// healthy idle runner polls regularly).
	LastPoll time.Time
	// LastProgress is when a batch was last stored (or skipped as
	// already stored) and acknowledged.
	LastProgress time.Time
	// Failing is set while the batch in hand keeps failing a step (a store
	// or downstream that is down), and from a batch returned to the intake
	// log after a stage failure until a batch is next acknowledged; Err is
	// that step's last error.
	Failing bool
	Err     string
	// PoisonEvents counts the events stored unprocessed because a stage
	// failed on them for good.
	PoisonEvents int64
}

// status holds a runner's RunnerStatus.
type status struct {
	mu sync.Mutex
	s  RunnerStatus
}

func (st *status) update(f func(s *RunnerStatus)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

func (st *status) get() RunnerStatus {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

// Status reports the runner's state. It is safe to call at any time from
// any goroutine.
func (r *Runner) Status() RunnerStatus {
	s := r.status.get()
	s.Lane = r.opts.Lane
	return s
}
