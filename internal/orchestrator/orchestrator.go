// Package orchestrator runs the executions of the Autonomous Response
// Service: a plan's steps in order (adjacent steps of one group in
// parallel), each asked of the safety controller (Guard) first, audited
// before it starts, persisted as running before its executor starts and
// with its result after it ended, retried with backoff when its executor
// says the failure is retryable, and followed by the rollback of the
// completed steps when the execution fails and asked for it. A step that
// needs a human's approval stops the execution (pending) until Resume
// or Reject; Cancel kills what runs. Recover, at start, settles what a
// previous process left running: a step that was running has an unknown
// outcome, is marked so and escalated, and is never run again. Subscribe
// streams an execution's states as they change.
//
// The state of an execution is its store.Execution: the orchestrator
// keeps no other record, so that what the store holds is what happened.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/store"
)

// Store is where executions are kept: the execution methods of
// store.AutonomousStore. Implementations are safe for concurrent use.
type Store interface {
	InsertExecution(ctx context.Context, x store.Execution) (store.Execution, error)
	Execution(ctx context.Context, id int64) (store.Execution, error)
	Executions(ctx context.Context, q store.ExecutionQuery) ([]store.Execution, error)
	UpdateExecution(ctx context.Context, x store.Execution) (store.Execution, error)
}

// Actions looks action definitions up (store.ActionStore's methods).
// Both return an error wrapping store.ErrNotFound for an unknown one.
type Actions interface {
	Action(ctx context.Context, id int64) (actions.Definition, error)
	ActionByName(ctx context.Context, name string) (actions.Definition, error)
}

// Executors makes the executor of a definition: the service maps the
// executor types (command, ssh, http, notification) to their packages.
// A notification step of a plan (Type notification, Channels set, no
// action) is run with the definition NotificationDefinition makes.
type Executors func(d actions.Definition) (executor.Executor, error)

// Guard is the safety controller the service plugs in. Admit is asked
// before each step starts, forward and rollback, with the step's
// parameters already rendered (s.Parameters are the exact values that
// will run). A step resuming after an approval comes with s.ApprovalID
// set: the Guard counts that approval, and answering NeedsApproval again
// makes the step wait for another one. Admit is called concurrently for
// the steps of a parallel group.
type Guard interface {
	Admit(ctx context.Context, x store.Execution, s store.StepState) (Admission, error)
}

// Admission is the Guard's answer. Refused wins over NeedsApproval, which
// wins over Run; an answer with none of them set refuses the step.
type Admission struct {
	// Run says the step may run now.
	Run bool
	// NeedsApproval says a human must approve first: the step becomes
	// waiting_approval, Approvals.Request is called, and the execution
	// stops, pending, until Resume or Reject.
	NeedsApproval bool
	// Reason says why approval is needed (stored as the step's
	// ApprovalReason).
	Reason string
	// Refused, when not empty, says why the step must not run (a
	// resource refusal, the kill switch, a hold, a breaker): the step
	// fails with this reason, and the execution escalates.
	Refused string
	// Release, when set, is called once when the step ended, with the
	// step's final status (succeeded, failed, cancelled): the resource
	// lease's release.
	Release func(outcome string)
}

// Approvals asks for a human's approval of a step: it stores the
// approval request (for x.ID and s.Name, with s.Parameters, which the
// approval binds to) and notifies, and returns the approval's id.
type Approvals interface {
	Request(ctx context.Context, x store.Execution, s store.StepState) (approvalID int64, err error)
}

// Validator checks a definition's success criteria after its step ran
// successfully by its executor's account (it is called only for
// definitions with SuccessCriteria). data is what the step rendered from
// (params included). ok false fails the step with detail as the reason;
// an error fails it too. Validate runs within the step, bounded by its
// context: a criterion that waits (no new event within N minutes) holds
// the execution that long.
type Validator interface {
	Validate(ctx context.Context, d actions.Definition, data map[string]any, res executor.Result) (ok bool, detail string, err error)
}

// Escalator hands an execution to a human at once: a failed rollback, a
// step whose outcome is unknown after a restart, a refusal.
// Implementations return quickly (they queue a notification).
type Escalator interface {
	Escalate(ctx context.Context, x store.Execution, reason string)
}

// Auditor is the audit log (*audit.Log). When Append fails, what it was
// about to record is not done (fail closed).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// Defaults and bounds.
const (
	// DefaultMaxRunning is the number of executions in flight unless
	// Options say otherwise.
	DefaultMaxRunning = 16
	// DefaultBackoffBase is the first retry's wait; the k-th retry
	// waits BackoffBase·2^(k-1), at most MaxBackoff.
	DefaultBackoffBase = time.Second
	// MaxBackoff caps the wait between two attempts of a step.
	MaxBackoff = time.Minute
	// MaxOutput bounds a step's stored Output, in bytes (Truncated says
	// when it was cut).
	MaxOutput = 64 << 10
	// MaxOutputValue bounds each stored named output, in bytes, and
	// MaxOutputs their number per step (the first by name are kept).
	MaxOutputValue = 16 << 10
	MaxOutputs     = 64
	// MaxError bounds a step's or an execution's Error, in bytes.
	MaxError = 4 << 10
	// DefaultMaxSubscribers bounds the subscriptions open at once.
	DefaultMaxSubscribers = 1024
	// storeTimeout bounds one write of an execution: writes go on when
	// the execution is cancelled, so that its end is recorded.
	storeTimeout = 30 * time.Second
)

// Errors of the orchestrator.
var (
	// ErrBusy: MaxRunning executions are in flight; try again later.
	ErrBusy = errors.New("orchestrator: too many executions in flight")
	// ErrClosed: Close was called.
	ErrClosed = errors.New("orchestrator: closed")
	// ErrInvalid: the execution given to Start cannot run as given; the
	// message names the problem.
	ErrInvalid = errors.New("orchestrator: invalid execution")
	// ErrNotWaiting: the execution is not waiting for that approval.
	ErrNotWaiting = errors.New("orchestrator: execution is not waiting for this approval")
	// ErrEnded: the execution has already ended.
	ErrEnded = errors.New("orchestrator: execution has ended")
)

// Why a run's context was cancelled.
var (
	errCancelled = errors.New("execution cancelled")
	errShutdown  = errors.New("the server shut down")
)

// Options are an Orchestrator's dependencies. Store, Actions, Executors,
// Guard, Escalator and Audit are required; the zero value of every other
// field is a safe default.
type Options struct {
	Store     Store
	Actions   Actions
	Executors Executors
	Guard     Guard
	// Approvals may be nil: a step that needs approval then fails ("no
	// approval service").
	Approvals Approvals
	// Validator may be nil: a step's success is its executor's.
	Validator Validator
	Escalator Escalator
	Audit     Auditor
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the metrics (nil: none registered).
	Registerer prometheus.Registerer
	// Now is the clock of the timings (default time.Now).
	Now func() time.Time
	// MaxRunning bounds the executions in flight (running, not pending
	// on an approval); beyond it Start and Resume answer ErrBusy.
	// Default DefaultMaxRunning.
	MaxRunning int
	// MaxSubscribers bounds the open subscriptions (default
	// DefaultMaxSubscribers); beyond it Subscribe answers a closed
	// channel.
	MaxSubscribers int
	// Ended, when set, is called once with each execution that ended
	// (completed, failed, rolled back, rollback failed, cancelled), after
	// its end was stored: the service records the outcome and keeps its
	// other tables in step. It is called synchronously and must not call
	// the Orchestrator.
	Ended func(ctx context.Context, x store.Execution)
	// BackoffBase is the wait before the first retry (default
	// DefaultBackoffBase), doubled for each further one, at most
	// MaxBackoff.
	BackoffBase time.Duration
}

// Orchestrator runs executions. It is safe for concurrent use. Every
// execution in flight has a goroutine that Close waits for.
type Orchestrator struct {
	store       Store
	actions     Actions
	executors   Executors
	guard       Guard
	approvals   Approvals
	validator   Validator
	escalator   Escalator
	audit       Auditor
	log         *slog.Logger
	now         func() time.Time
	maxRunning  int
	maxSubs     int
	backoffBase time.Duration
	ended       func(ctx context.Context, x store.Execution)
	m           *metrics

	base     context.Context
	shutdown context.CancelCauseFunc

	mu     sync.Mutex
	runs   map[int64]*run
	closed bool
	wg     sync.WaitGroup

	subsMu sync.Mutex
	subs   map[int64]map[*sub]struct{}
	nsubs  int
}

// New returns an Orchestrator built from o.
func New(o Options) (*Orchestrator, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("orchestrator: a store is required")
	case o.Actions == nil:
		return nil, errors.New("orchestrator: action definitions are required")
	case o.Executors == nil:
		return nil, errors.New("orchestrator: executors are required")
	case o.Guard == nil:
		return nil, errors.New("orchestrator: a guard (the safety controller) is required")
	case o.Escalator == nil:
		return nil, errors.New("orchestrator: an escalator is required")
	case o.Audit == nil:
		return nil, errors.New("orchestrator: an audit log is required")
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	orc := &Orchestrator{
		store: o.Store, actions: o.Actions, executors: o.Executors, guard: o.Guard,
		approvals: o.Approvals, validator: o.Validator, escalator: o.Escalator, audit: o.Audit,
		log: o.Logger, now: o.Now, maxRunning: o.MaxRunning, maxSubs: o.MaxSubscribers,
		backoffBase: o.BackoffBase, ended: o.Ended, m: m,
		runs: map[int64]*run{}, subs: map[int64]map[*sub]struct{}{},
	}
	if orc.log == nil {
		orc.log = slog.New(slog.DiscardHandler)
	}
	orc.log = orc.log.With("component", "orchestrator")
	if orc.now == nil {
		orc.now = time.Now
	}
	if orc.maxRunning <= 0 {
		orc.maxRunning = DefaultMaxRunning
	}
	if orc.maxSubs <= 0 {
		orc.maxSubs = DefaultMaxSubscribers
	}
	if orc.backoffBase <= 0 {
		orc.backoffBase = DefaultBackoffBase
	}
	orc.base, orc.shutdown = context.WithCancelCause(context.Background())
	return orc, nil
}

// Start validates x's plan (x.Steps: names unique, groups adjacent,
// timeouts, retries, on_failure; each step names an action by ActionID
// or ActionName, or is a notification step with Channels), stores it as
// pending (every step pending, results cleared; DecisionID, TemplateID,
// RuleExecutionID, RequestedBy, DryRun, RollbackOnFailure and Data as
// given) and runs it in the background. It returns the stored execution
// (with its ID) at once. A step's Parameters are templates rendered when
// the step is reached, except for a step given with ApprovalID set: it
// was approved with exactly these values, which run as they are. Errors:
// ErrInvalid (naming the problem), ErrBusy, ErrClosed, the store's.
func (o *Orchestrator) Start(ctx context.Context, x store.Execution) (store.Execution, error) {
	if err := preparePlan(&x); err != nil {
		return store.Execution{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.admitRunLocked(); err != nil {
		return store.Execution{}, err
	}
	x.CreatedAt, x.UpdatedAt = time.Time{}, time.Time{}
	stored, err := o.store.InsertExecution(ctx, x)
	if err != nil {
		return store.Execution{}, fmt.Errorf("orchestrator: store execution: %w", err)
	}
	r := o.newRunLocked(stored)
	o.wg.Go(func() { o.execute(r, 0) })
	return stored, nil
}

// admitRunLocked says whether one more execution may be in flight.
func (o *Orchestrator) admitRunLocked() error {
	switch {
	case o.closed:
		return ErrClosed
	case len(o.runs) >= o.maxRunning:
		return ErrBusy
	}
	return nil
}

// Resume continues the execution id whose step waits for approvalID,
// which a human approved (the API's execute with a valid approval token
// calls it): the step runs with the parameters it was approved with, as
// by asks (by is audited). ErrNotWaiting when the execution is not
// waiting for that approval, ErrBusy and ErrClosed as for Start.
func (o *Orchestrator) Resume(ctx context.Context, id, approvalID int64, by string) (store.Execution, error) {
	if err := o.lockSettled(ctx, id); err != nil {
		return store.Execution{}, err
	}
	defer o.mu.Unlock()
	x, i, err := o.waitingLocked(ctx, id, approvalID)
	if err != nil {
		return x, err
	}
	if err := o.admitRunLocked(); err != nil {
		return x, err
	}
	x.Steps[i].Status = store.StepPending
	x.Steps[i].Error = ""
	x.Status = store.ExecRunning
	o.appendAudit(ctx, by, audit.ActionExecution, subject(id, ""), map[string]any{
		"event": "resumed", "step": x.Steps[i].Name, "approval_id": approvalID,
	})
	stored, err := o.store.UpdateExecution(ctx, x)
	if err != nil {
		return x, fmt.Errorf("orchestrator: resume execution %d: %w", id, err)
	}
	r := o.newRunLocked(stored)
	r.publish()
	o.wg.Go(func() { o.execute(r, i) })
	return stored, nil
}

// Reject ends the execution id whose step waits for approvalID, which a
// human rejected: that step and the steps after it are cancelled and
// the execution ends cancelled; when it asked for rollback_on_failure,
// the steps it completed are rolled back first (ending rolled_back or
// rollback_failed). It returns the execution as it is when Reject
// returns (a rollback goes on in the background).
func (o *Orchestrator) Reject(ctx context.Context, id, approvalID int64, by, reason string) (store.Execution, error) {
	if err := o.lockSettled(ctx, id); err != nil {
		return store.Execution{}, err
	}
	defer o.mu.Unlock()
	x, i, err := o.waitingLocked(ctx, id, approvalID)
	if err != nil {
		return x, err
	}
	why := fmt.Sprintf("approval %d rejected by %s", approvalID, by)
	if reason != "" {
		why += ": " + reason
	}
	x.Steps[i].Status = store.StepCancelled
	x.Steps[i].Error = clipError(why)
	markRest(&x, store.StepCancelled, "not run: "+why)
	o.appendAudit(ctx, by, audit.ActionExecution, subject(id, ""), map[string]any{
		"event": "rejected", "step": x.Steps[i].Name, "approval_id": approvalID, "reason": reason,
	})
	if x.RollbackOnFailure && hasSucceeded(x) {
		if err := o.admitRunLocked(); err != nil {
			return x, err
		}
		x.Status = store.ExecRunning
		stored, err := o.store.UpdateExecution(ctx, x)
		if err != nil {
			return x, fmt.Errorf("orchestrator: reject execution %d: %w", id, err)
		}
		r := o.newRunLocked(stored)
		r.publish()
		o.wg.Go(func() { o.rollbackAndEnd(r, why) })
		return stored, nil
	}
	return o.endStoredLocked(ctx, x, store.ExecCancelled, why)
}

// lockSettled locks o.mu once execution id's goroutine, when it has
// stopped at an approval, is gone; it returns unlocked with ctx's error.
func (o *Orchestrator) lockSettled(ctx context.Context, id int64) error {
	for {
		o.mu.Lock()
		r := o.runs[id]
		if r == nil {
			return nil
		}
		r.mu.Lock()
		stopping := r.stopping
		r.mu.Unlock()
		if !stopping {
			return nil
		}
		o.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("orchestrator: execution %d: %w", id, context.Cause(ctx))
		}
	}
}

// waitingLocked loads the execution id and finds its step waiting for
// approvalID.
func (o *Orchestrator) waitingLocked(ctx context.Context, id, approvalID int64) (store.Execution, int, error) {
	if _, running := o.runs[id]; running {
		return store.Execution{}, -1, fmt.Errorf("%w: execution %d is running", ErrNotWaiting, id)
	}
	x, err := o.store.Execution(ctx, id)
	if err != nil {
		return store.Execution{}, -1, fmt.Errorf("orchestrator: execution %d: %w", id, err)
	}
	if x.Status != store.ExecPending {
		return x, -1, fmt.Errorf("%w: execution %d is %s", ErrNotWaiting, id, x.Status)
	}
	for i, s := range x.Steps {
		if s.Status == store.StepWaitingApproval && s.ApprovalID != nil && *s.ApprovalID == approvalID {
			return x, i, nil
		}
	}
	return x, -1, fmt.Errorf("%w: execution %d has no step waiting for approval %d", ErrNotWaiting, id, approvalID)
}

// Cancel ends the execution id: a running one has its running steps
// killed (their process groups) and the steps after them cancelled, and
// Cancel waits for that until ctx ends; a pending one (waiting for an
// approval) is cancelled at once. No rollback runs. ErrEnded for an
// execution that has already ended.
func (o *Orchestrator) Cancel(ctx context.Context, id int64, by string) (store.Execution, error) {
	for {
		o.mu.Lock()
		r, ok := o.runs[id]
		if !ok {
			break
		}
		r.cancelBy(by)
		o.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return r.snapshot(), fmt.Errorf("orchestrator: cancel execution %d: %w", id, context.Cause(ctx))
		}
		if x := r.snapshot(); ended(x.Status) {
			return x, nil
		}
		// It stopped at an approval as it was cancelled: cancel it stored.
	}
	defer o.mu.Unlock()
	x, err := o.store.Execution(ctx, id)
	if err != nil {
		return store.Execution{}, fmt.Errorf("orchestrator: execution %d: %w", id, err)
	}
	if ended(x.Status) {
		return x, fmt.Errorf("%w: execution %d is %s", ErrEnded, id, x.Status)
	}
	why := "cancelled by " + by
	markRest(&x, store.StepCancelled, "not run: "+why)
	o.appendAudit(ctx, by, audit.ActionExecution, subject(id, ""), map[string]any{"event": "cancelled"})
	return o.endStoredLocked(ctx, x, store.ExecCancelled, why)
}

// endStoredLocked ends an execution that no goroutine runs.
func (o *Orchestrator) endStoredLocked(ctx context.Context, x store.Execution, status, why string) (store.Execution, error) {
	now := o.now()
	x.Status, x.Error, x.FinishedAt = status, clipError(why), &now
	x.Outcome = outcome(x)
	stored, err := o.store.UpdateExecution(ctx, x)
	if err != nil {
		return x, fmt.Errorf("orchestrator: end execution %d: %w", x.ID, err)
	}
	o.m.executions.WithLabelValues(status).Inc()
	o.publish(stored, true)
	if o.ended != nil {
		o.ended(context.WithoutCancel(ctx), clone(stored))
	}
	return stored, nil
}

// Close stops taking work (Start and Resume answer ErrClosed) and waits
// for the executions in flight to end. When ctx ends first, their
// running steps are killed and they end failed ("the server shut down")
// and escalated; Close then waits for that and returns ctx's error.
// Executions pending on an approval stay pending.
func (o *Orchestrator) Close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	select {
	case <-done:
		o.shutdown(errShutdown)
		return nil
	case <-ctx.Done():
	}
	o.shutdown(errShutdown)
	<-done // bounded: executors end their work when their context ends
	return fmt.Errorf("orchestrator: close: %w", ctx.Err())
}

// appendAudit records e, logging a failure: for records after the fact
// (an end, a cancellation), where refusing is no longer possible.
func (o *Orchestrator) appendAudit(ctx context.Context, actor string, a audit.Action, subj string, params map[string]any) {
	if _, err := o.audit.Append(ctx, audit.Entry{Actor: actorOr(actor), Action: a, Subject: subj, Parameters: params}); err != nil {
		o.log.Error("audit append failed", "err", err, "action", string(a), "subject", subj)
	}
}

func actorOr(a string) string {
	if a == "" {
		return audit.ActorSystem
	}
	return a
}

// subject is the audit subject of an execution, or of one of its steps.
func subject(id int64, step string) string {
	s := fmt.Sprintf("execution:%d", id)
	if step != "" {
		s += "/step:" + step
	}
	return s
}

// ended says whether an execution status is final.
func ended(status string) bool {
	switch status {
	case store.ExecCompleted, store.ExecFailed, store.ExecRolledBack, store.ExecRollbackFailed, store.ExecCancelled:
		return true
	}
	return false
}
