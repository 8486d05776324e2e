package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/store"
)

// run is one execution in flight: its state, which only its goroutine
// (and the goroutines of a parallel group it waits for) change, under mu.
type run struct {
	o      *Orchestrator
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}

	id int64

	mu          sync.Mutex
	x           store.Execution
	ended       bool
	stopping    bool // stopped at an approval: the goroutine only finishes
	escalated   bool
	cancelledBy string
}

// newRunLocked registers a run of x.
func (o *Orchestrator) newRunLocked(x store.Execution) *run {
	ctx, cancel := context.WithCancelCause(o.base)
	// The run owns its copy: the caller returns x (Start, Resume) to
	// an API handler that encodes it while the run changes its steps.
	r := &run{o: o, id: x.ID, ctx: ctx, cancel: cancel, done: make(chan struct{}), x: clone(x)}
	o.runs[x.ID] = r
	o.m.running.Inc()
	return r
}

// cancelBy cancels the run on by's behalf.
func (r *run) cancelBy(by string) {
	r.mu.Lock()
	if r.cancelledBy == "" {
		r.cancelledBy = by
	}
	r.mu.Unlock()
	r.cancel(errCancelled)
}

// snapshot is a copy of the run's execution.
func (r *run) snapshot() store.Execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	return clone(r.x)
}

// ref names a step of the execution: one of its plan (Steps) or of its
// rollback (Rollback).
type ref struct {
	rollback bool
	i        int
}

func (f ref) in(x *store.Execution) *store.StepState {
	if f.rollback {
		return &x.Rollback[f.i]
	}
	return &x.Steps[f.i]
}

// subject is the step's audit subject.
func (f ref) subject(r *run, name string) string {
	if f.rollback {
		return fmt.Sprintf("execution:%d/rollback:%s", r.id, name)
	}
	return subject(r.id, name)
}

// action is the audit action of the step's start and end.
func (f ref) action() audit.Action {
	if f.rollback {
		return audit.ActionRollback
	}
	return audit.ActionExecutionStep
}

// step is a copy of the step f.
func (r *run) step(f ref) store.StepState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return *f.in(&r.x)
}

// update changes the execution with f and persists it; subscribers see
// the new state. The write goes on when the run is cancelled.
func (r *run) update(f func(x *store.Execution)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.x)
	return r.saveLocked()
}

func (r *run) saveLocked() error {
	if err := r.storeLocked(); err != nil {
		return err
	}
	r.publishLocked()
	return nil
}

// storeLocked writes the execution to the store.
func (r *run) storeLocked() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), storeTimeout)
	defer cancel()
	stored, err := r.o.store.UpdateExecution(ctx, r.x)
	if err != nil {
		r.o.log.Error("cannot store execution", "err", err, "execution_id", r.x.ID)
		return fmt.Errorf("orchestrator: store execution %d: %w", r.x.ID, err)
	}
	r.x.UpdatedAt = stored.UpdatedAt
	return nil
}

func (r *run) publish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishLocked()
}

func (r *run) publishLocked() { r.o.publish(clone(r.x), r.ended) }

// escalate hands the execution to a human, once per run for refusals
// (force for what must always escalate), and audits it.
func (r *run) escalate(reason string, force bool) {
	r.mu.Lock()
	if r.escalated && !force {
		r.mu.Unlock()
		return
	}
	r.escalated = true
	x := clone(r.x)
	r.mu.Unlock()
	ctx := context.WithoutCancel(r.ctx)
	r.o.appendAudit(ctx, audit.ActorSystem, audit.ActionEscalation, subject(x.ID, ""), map[string]any{"reason": reason})
	r.o.escalator.Escalate(ctx, x, reason)
}

// auditCtx is the context of the run's audit records: they are written
// also after a cancellation.
func (r *run) auditCtx() context.Context { return context.WithoutCancel(r.ctx) }

// execute runs the plan from the group of step from (0 for a new
// execution, the resumed step's index after an approval).
func (o *Orchestrator) execute(r *run, from int) {
	defer o.finish(r)
	now := o.now()
	first := r.snapshot().StartedAt == nil
	if err := r.update(func(x *store.Execution) {
		x.Status = store.ExecRunning
		if x.StartedAt == nil {
			x.StartedAt = &now
		}
	}); err != nil {
		o.end(r, store.ExecFailed, "cannot store the execution: "+err.Error(), false)
		return
	}
	x := r.snapshot()
	if first {
		o.appendAudit(r.auditCtx(), x.RequestedBy, audit.ActionExecution, subject(x.ID, ""), map[string]any{
			"event": "started", "dry_run": x.DryRun, "rollback_on_failure": x.RollbackOnFailure, "steps": len(x.Steps),
		})
	}
	if x.DryRun {
		o.dryRun(r)
		return
	}
	n := len(x.Steps)
	for i := groupStart(x.Steps, from); i < n; {
		j := groupEnd(x.Steps, i)
		o.runGroup(r, i, j)
		if o.stopped(r) {
			return
		}
		x = r.snapshot()
		failed, rollback := "", false
		waiting := false
		for k := i; k < j; k++ {
			s := x.Steps[k]
			switch s.Status {
			case store.StepFailed:
				switch s.OnFailure {
				case actions.OnFailureContinue:
				case actions.OnFailureRollback:
					failed, rollback = s.Name, true
				default:
					if failed == "" {
						failed = s.Name
					}
				}
			case store.StepWaitingApproval:
				waiting = true
			}
		}
		if failed != "" {
			why := fmt.Sprintf("step %q failed", failed)
			if e := x.Steps[indexOf(x.Steps, failed)].Error; e != "" {
				why += ": " + e
			}
			_ = r.update(func(x *store.Execution) { markRest(x, store.StepSkipped, "not run: "+why) })
			if (rollback || x.RollbackOnFailure) && hasSucceeded(x) {
				o.rollback(r, why)
				return
			}
			o.end(r, store.ExecFailed, why, false)
			return
		}
		if waiting {
			o.wait(r)
			return
		}
		i = j
	}
	o.end(r, store.ExecCompleted, "", false)
}

// stopped ends a run whose context was cancelled (Cancel, shutdown) and
// says so.
func (o *Orchestrator) stopped(r *run) bool {
	if r.ctx.Err() == nil {
		return false
	}
	r.mu.Lock()
	by := r.cancelledBy
	r.mu.Unlock()
	if errors.Is(context.Cause(r.ctx), errShutdown) {
		why := "interrupted: " + errShutdown.Error()
		_ = r.update(func(x *store.Execution) { markRest(x, store.StepCancelled, "not run: "+why) })
		o.end(r, store.ExecFailed, why, true)
		return true
	}
	why := "cancelled by " + actorOr(by)
	_ = r.update(func(x *store.Execution) { markRest(x, store.StepCancelled, "not run: "+why) })
	o.appendAudit(r.auditCtx(), by, audit.ActionExecution, subject(r.id, ""), map[string]any{"event": "cancelled"})
	o.end(r, store.ExecCancelled, why, false)
	return true
}

// wait leaves the execution pending on its approval: the run's
// goroutine ends, the subscriptions stay.
func (o *Orchestrator) wait(r *run) {
	_ = r.update(func(x *store.Execution) {
		x.Status = store.ExecPending
		r.stopping = true // before anyone sees it pending (update holds r.mu)
	})
}

// end ends the execution with status; when escalate, it is escalated
// with why as the reason. Subscribers get the final state last (also
// when the store cannot take it), and their channels close.
func (o *Orchestrator) end(r *run, status, why string, escalate bool) {
	now := o.now()
	r.mu.Lock()
	r.x.Status, r.x.FinishedAt = status, &now
	r.x.Error = clipError(why)
	r.x.Outcome = outcome(r.x)
	_ = r.storeLocked()
	x := clone(r.x)
	r.mu.Unlock()
	o.m.executions.WithLabelValues(status).Inc()
	o.appendAudit(r.auditCtx(), audit.ActorSystem, audit.ActionExecution, subject(x.ID, ""), map[string]any{
		"event": "ended", "status": status, "outcome": x.Outcome, "error": x.Error,
	})
	if escalate {
		r.escalate(why, true)
	}
	o.log.Info("execution ended", "execution_id", x.ID, "status", status)
	if o.ended != nil {
		o.ended(r.auditCtx(), x)
	}
	r.mu.Lock()
	r.ended = true
	r.publishLocked()
	r.mu.Unlock()
}

// finish unregisters the run. Subscriptions of an ended execution are
// closed by its last publish.
func (o *Orchestrator) finish(r *run) {
	o.mu.Lock()
	delete(o.runs, r.id)
	o.mu.Unlock()
	o.m.running.Dec()
	r.cancel(nil)
	close(r.done)
}

// runGroup runs the pending steps in [i, j): one at a time, or each in
// a goroutine of its own for a group of several.
func (o *Orchestrator) runGroup(r *run, i, j int) {
	var pending []int
	for k := i; k < j; k++ {
		if r.step(ref{i: k}).Status == store.StepPending {
			pending = append(pending, k)
		}
	}
	if len(pending) == 1 {
		o.runStep(r, pending[0])
		return
	}
	var wg sync.WaitGroup
	for _, k := range pending {
		wg.Go(func() { o.runStep(r, k) })
	}
	wg.Wait()
}

// runStep runs step i of the plan: resolve, render, admit, audit,
// persist running, execute (with retries), persist the result.
func (o *Orchestrator) runStep(r *run, i int) {
	f := ref{i: i}
	ctx := r.ctx
	if ctx.Err() != nil {
		return // stopped marks it
	}
	s := r.step(f)
	d, ex, err := o.resolve(ctx, s.Step)
	if err != nil {
		o.stepEnded(r, f, store.StepFailed, "refused: "+err.Error(), nil)
		r.escalate(fmt.Sprintf("step %q refused: %v", s.Name, err), false)
		return
	}
	if s.ApprovalID == nil { // approved parameters run as they were approved
		params, err := render(s.Parameters, r.data())
		if err != nil {
			o.stepEnded(r, f, store.StepFailed, "not run: "+err.Error(), nil)
			return
		}
		s.Parameters = params
	}
	s.ActionID, s.ActionName, s.Rollback = d.ID, d.Name, d.Rollback
	if s.RiskLevel == "" {
		s.RiskLevel = d.RiskLevel
	}
	if d.ApprovalRequired {
		s.ApprovalRequired = true
	}
	// The rendered values are stored before anyone is asked: an approval
	// binds to them.
	if err := r.update(func(x *store.Execution) { x.Steps[i].Step = s.Step }); err != nil {
		o.stepEnded(r, f, store.StepFailed, "not run: "+err.Error(), nil)
		return
	}
	o.admitAndRun(r, f, d, ex)
}

// admitAndRun asks the Guard about step f and runs it when admitted.
func (o *Orchestrator) admitAndRun(r *run, f ref, d actions.Definition, ex executor.Executor) {
	ctx := r.ctx
	s := r.step(f)
	adm, err := o.guard.Admit(ctx, r.snapshot(), s)
	if err != nil {
		if ctx.Err() != nil {
			o.stepEnded(r, f, store.StepCancelled, "not run: "+context.Cause(ctx).Error(), nil)
			return
		}
		o.refused(r, f, "the safety controller failed: "+err.Error())
		return
	}
	release := func(outcome string) {
		if adm.Release != nil {
			adm.Release(outcome)
			adm.Release = nil
		}
	}
	if s.ApprovalRequired && s.ApprovalID == nil && !adm.NeedsApproval && adm.Refused == "" && !f.rollback {
		// The action or the plan says so, whatever the Guard allows.
		adm.NeedsApproval = true
		if adm.Reason == "" {
			adm.Reason = "the action or the template requires approval"
		}
	}
	switch {
	case adm.Refused != "":
		release(store.StepFailed)
		o.refused(r, f, adm.Refused)
		return
	case adm.NeedsApproval && f.rollback:
		release(store.StepFailed)
		o.refused(r, f, "a rollback step cannot wait for approval")
		return
	case adm.NeedsApproval:
		release(store.StepCancelled)
		o.requestApproval(r, f.i, adm.Reason)
		return
	case !adm.Run:
		release(store.StepFailed)
		o.refused(r, f, "the safety controller did not admit the step")
		return
	}
	status, why, res := o.attempts(r, f, d, ex)
	o.stepEnded(r, f, status, why, res)
	release(status)
}

// refused fails step f with the reason, audited and escalated.
func (o *Orchestrator) refused(r *run, f ref, reason string) {
	s := r.step(f)
	o.appendAudit(r.auditCtx(), audit.ActorSystem, audit.ActionRefusal, f.subject(r, s.Name), map[string]any{
		"action": s.ActionName, "reason": reason, "parameters": s.Parameters,
	})
	o.stepEnded(r, f, store.StepFailed, "refused: "+reason, nil)
	r.escalate(fmt.Sprintf("step %q refused: %s", s.Name, reason), false)
}

// requestApproval makes step i wait for an approval.
func (o *Orchestrator) requestApproval(r *run, i int, reason string) {
	f := ref{i: i}
	if o.approvals == nil {
		o.stepEnded(r, f, store.StepFailed, "needs approval, and no approval service is configured", nil)
		return
	}
	r.mu.Lock()
	st := &r.x.Steps[i]
	st.Status = store.StepWaitingApproval
	st.ApprovalRequired = true
	if reason != "" {
		st.ApprovalReason = reason
	}
	x, s := clone(r.x), *st
	x.Status = store.ExecPending
	r.mu.Unlock()
	id, err := o.approvals.Request(r.ctx, x, s)
	if err != nil {
		o.stepEnded(r, f, store.StepFailed, "cannot request approval: "+err.Error(), nil)
		return
	}
	_ = r.update(func(x *store.Execution) { x.Steps[i].ApprovalID = &id })
	o.m.steps.WithLabelValues(store.StepWaitingApproval).Inc()
}

// data is the template data of the run as it is now.
func (r *run) data() map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return baseData(r.x)
}

// resolve looks up a step's action and makes its executor.
func (o *Orchestrator) resolve(ctx context.Context, s store.Step) (actions.Definition, executor.Executor, error) {
	var d actions.Definition
	var err error
	switch {
	case s.ActionID > 0:
		d, err = o.actions.Action(ctx, s.ActionID)
	case s.ActionName != "":
		d, err = o.actions.ActionByName(ctx, s.ActionName)
	default:
		d = NotificationDefinition(s)
	}
	switch {
	case isNotFound(err):
		return d, nil, fmt.Errorf("%s does not exist", describe(s))
	case err != nil:
		return d, nil, fmt.Errorf("%s: cannot look it up: %w", describe(s), err)
	case !d.Enabled:
		return d, nil, fmt.Errorf("%s is disabled", describe(s))
	}
	ex, err := o.executors(d)
	if err != nil {
		return d, nil, fmt.Errorf("%s: no executor: %w", describe(s), err)
	}
	return d, ex, nil
}

// attempts runs step f until it succeeds, fails for good, or runs out of
// retries, and returns its final status, error and last result.
func (o *Orchestrator) attempts(r *run, f ref, d actions.Definition, ex executor.Executor) (string, string, *executor.Result) {
	ctx := r.ctx
	s := r.step(f)
	data := withParams(r.data(), s.Parameters)
	actor := r.snapshot().RequestedBy
	for attempt := s.Attempts + 1; ; attempt++ {
		if ctx.Err() != nil {
			return store.StepCancelled, "not run: " + context.Cause(ctx).Error(), nil
		}
		// Fail closed: no record, no run.
		if _, err := o.audit.Append(ctx, audit.Entry{
			Actor: actorOr(actor), Action: f.action(), Subject: f.subject(r, s.Name),
			Parameters: map[string]any{
				"event": "started", "action": d.Name, "action_id": d.ID, "attempt": attempt,
				"parameters": s.Parameters, "approval_id": s.ApprovalID,
			},
		}); err != nil {
			r.escalate(fmt.Sprintf("step %q refused: the audit log cannot be written", s.Name), false)
			return store.StepFailed, "refused: the audit log cannot be written: " + errText(err), nil
		}
		started := o.now()
		if err := r.update(func(x *store.Execution) {
			st := f.in(x)
			st.Status, st.Attempts, st.Error = store.StepRunning, attempt, ""
			if st.StartedAt == nil {
				st.StartedAt = &started
			}
		}); err != nil {
			return store.StepFailed, "not run: " + err.Error(), nil
		}
		res, err := ex.Execute(ctx, executor.Request{
			ExecutionID: r.id, Step: s.Name, Data: data, Timeout: timeout(s.Step),
		})
		o.m.duration.Observe(o.now().Sub(started).Seconds())
		if err == nil && o.validator != nil && d.SuccessCriteria != nil {
			ok, detail, verr := o.validator.Validate(ctx, d, data, res)
			switch {
			case verr != nil:
				err = fmt.Errorf("success criteria: %w", verr)
				r.setValidation(f, "error: "+errText(verr))
			case !ok:
				err = fmt.Errorf("success criteria not met: %s", detail)
				r.setValidation(f, "failed: "+detail)
			default:
				r.setValidation(f, "passed: "+detail)
			}
		}
		if err == nil {
			return store.StepSucceeded, "", &res
		}
		if ctx.Err() != nil {
			return store.StepCancelled, errText(err), &res
		}
		if !executor.Retryable(err) || attempt > s.Retries {
			return store.StepFailed, errText(err), &res
		}
		wait := o.backoff(attempt)
		why := fmt.Sprintf("attempt %d failed (retryable), retrying in %s: %v", attempt, wait, err)
		_ = r.update(func(x *store.Execution) {
			st := f.in(x)
			st.Status, st.Error = store.StepPending, clipError(why)
			setResult(st, &res)
		})
		o.appendAudit(r.auditCtx(), actor, f.action(), f.subject(r, s.Name), map[string]any{
			"event": "attempt_failed", "attempt": attempt, "exit_code": res.ExitCode, "error": errText(err),
		})
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func (r *run) setValidation(f ref, v string) {
	r.mu.Lock()
	f.in(&r.x).Validation = clipError(v)
	r.mu.Unlock()
}

// backoff is the wait after attempt (1-based): BackoffBase·2^(attempt-1),
// at most MaxBackoff.
func (o *Orchestrator) backoff(attempt int) time.Duration {
	d := o.backoffBase
	for k := 1; k < attempt && d < MaxBackoff; k++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// setResult stores a run's result in a step, bounded.
func setResult(st *store.StepState, res *executor.Result) {
	if res == nil {
		return
	}
	code := res.ExitCode
	st.ExitCode = &code
	out, cut := clip(string(res.Output), MaxOutput)
	st.Output, st.Truncated = out, cut || res.Truncated
	st.Outputs = boundOutputs(res.Outputs)
}

// stepEnded records the end of step f: status, error, result; persisted,
// audited, counted.
func (o *Orchestrator) stepEnded(r *run, f ref, status, why string, res *executor.Result) {
	now := o.now()
	var s store.StepState
	_ = r.update(func(x *store.Execution) {
		st := f.in(x)
		st.Status, st.Error, st.FinishedAt = status, clipError(why), &now
		setResult(st, res)
		s = *st
	})
	o.m.steps.WithLabelValues(status).Inc()
	o.appendAudit(r.auditCtx(), audit.ActorSystem, f.action(), f.subject(r, s.Name), map[string]any{
		"event": "ended", "status": status, "attempts": s.Attempts, "exit_code": s.ExitCode, "error": s.Error,
	})
}

func indexOf(steps []store.StepState, name string) int {
	for i, s := range steps {
		if s.Name == name {
			return i
		}
	}
	return 0
}
