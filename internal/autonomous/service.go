// Package autonomous is the Autonomous Response Service: it takes the
// decision requests that the rules engine queues (one per firing of a
// trigger rule) and the analyze requests of its API, decides with the
// decision engine (internal/engine) whether to investigate, automate,
// escalate or ignore, passes what it would run through the safety
// controller (the policy and kill switch of internal/policy, the blast
// radius of internal/impact, the resource manager of internal/resource,
// the approval gate of internal/approval), runs it with the orchestrator
// (internal/orchestrator), judges the result (internal/validate), and
// learns from outcomes and feedback (internal/learning). Everything it
// decides and does is written to the audit log first (internal/audit):
// when the audit log cannot be written, nothing runs.
//
// This package is the glue: each part is its own package with its own
// tests; the story across them is tested end to end in internal/server.
package autonomous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/approval"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/engine"
	"github.com/reflex-ops/reflex/internal/impact"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/orchestrator"
	"github.com/reflex-ops/reflex/internal/policy"
	"github.com/reflex-ops/reflex/internal/resource"
	"github.com/reflex-ops/reflex/internal/store"
)

// Store is what the service reads and writes.
type Store interface {
	store.EventStore
	store.AssetStore
	store.RuleStore
	store.IncidentStore
	store.ActionStore
	store.AutonomousStore
}

// Notifier hands an escalation to the notification router.
type Notifier interface {
	Dispatch(a notify.Alert)
}

// Options configure a Service. Store, Engine, Audit, Policy, Switch, Gate,
// Learning and Resources are required.
type Options struct {
	Store    Store
	Engine   engine.Engine
	Context  *contextual.Analyzer // nil: decisions are made without the analyzer's context
	Impact   *impact.Analyzer     // nil: no blast radius
	Audit    *audit.Log
	Policy   func() policy.Policy
	Switch   *policy.Switch
	Gate     *approval.Gate
	Learning *learning.Estimator
	// Resources is the resource manager every step is admitted by.
	Resources *resource.Manager
	// Notifier receives escalations; nil: they are logged and audited
	// only.
	Notifier Notifier
	Logger   *slog.Logger
	// Registerer receives the service's metrics; nil: not registered.
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Service is the Autonomous Response Service. Its methods are safe for
// concurrent use.
type Service struct {
	o    Options
	log  *slog.Logger
	now  func() time.Time
	orch *orchestrator.Orchestrator
	met  *metrics

	// mu serializes the decisions of one incident (one decision per
	// incident) and the learning updates of one decision.
	mu sync.Mutex
	// unpersisted says a pause took effect here but could not be
	// stored: the switch is not read again until a pause or resume is.
	unpersisted atomic.Bool
}

// New returns a Service. Its orchestrator is attached with Attach (the
// orchestrator needs the service as its guard, approver and escalator).
func New(o Options) (*Service, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("autonomous: Options.Store is required")
	case o.Engine == nil:
		return nil, errors.New("autonomous: Options.Engine is required")
	case o.Audit == nil:
		return nil, errors.New("autonomous: Options.Audit is required")
	case o.Policy == nil || o.Switch == nil:
		return nil, errors.New("autonomous: Options.Policy and Options.Switch are required")
	case o.Gate == nil:
		return nil, errors.New("autonomous: Options.Gate is required")
	case o.Learning == nil:
		return nil, errors.New("autonomous: Options.Learning is required")
	case o.Resources == nil:
		return nil, errors.New("autonomous: Options.Resources is required")
	}
	s := &Service{o: o, log: o.Logger, now: o.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.met, err = newMetrics(o.Registerer, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Attach gives the service its orchestrator. It must be called once,
// before Start.
func (s *Service) Attach(o *orchestrator.Orchestrator) { s.orch = o }

// Start restores what the service learned (replaying the learning data)
// and recovers the executions a previous run left running.
func (s *Service) Start(ctx context.Context) error {
	if s.orch == nil {
		return errors.New("autonomous: start: no orchestrator attached")
	}
	if err := s.replayLearning(ctx); err != nil {
		return err
	}
	if err := s.restoreResources(ctx); err != nil {
		return err
	}
	n, err := s.orch.Recover(ctx)
	if err != nil {
		return fmt.Errorf("autonomous: recover executions: %w", err)
	}
	if n > 0 {
		s.log.Warn("executions left running by the previous run were ended as failed (their running step's outcome is unknown) and escalated", "executions", n)
	}
	return nil
}

// audit appends e; an error means the caller must not act (fail closed).
func (s *Service) audit(ctx context.Context, e audit.Entry) error {
	if _, err := s.o.Audit.Append(ctx, e); err != nil {
		s.met.auditFailures.Inc()
		s.log.Error("audit log write failed: refusing to act", "action", e.Action, "subject", e.Subject, "err", err)
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}

// Errors the API maps to statuses.
var (
	// ErrAudit: the audit log could not be written, so nothing was done
	// (503).
	ErrAudit = errors.New("autonomous: the audit log cannot be written")
	// ErrInvalid: the request is wrong (400); the message says how.
	ErrInvalid = errors.New("autonomous: invalid request")
	// ErrApprovalRequired: the action needs a valid approval token
	// (403).
	ErrApprovalRequired = errors.New("autonomous: approval required")
	// ErrPaused: automation is paused (409 for execute without a token).
	ErrPaused = errors.New("autonomous: automation is paused")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Pause stops all new automation (the kill switch); decisions are still
// made and recorded. A kill switch must work when things are broken: the
// pause takes effect even when the audit log cannot be written (nothing
// runs then anyway), and the failure to record it is logged.
func (s *Service) Pause(ctx context.Context, by, reason string) (policy.State, error) {
	if err := s.o.Switch.Pause(ctx, by, reason); err != nil {
		// Paused here, not in the database: reading the switch again
		// must not undo it.
		s.unpersisted.Store(true)
		return s.o.Switch.State(), err
	}
	s.unpersisted.Store(false)
	s.log.Warn("automation paused", "by", by, "reason", reason)
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: audit.ActionPause, Subject: "automation", Parameters: map[string]any{"reason": reason}}); err != nil {
		s.log.Error("the pause took effect but is not in the audit log", "by", by, "err", err)
	}
	return s.o.Switch.State(), nil
}

// Resume lets automation run again.
func (s *Service) Resume(ctx context.Context, by string) (policy.State, error) {
	if err := s.audit(ctx, audit.Entry{Actor: by, Action: audit.ActionResume, Subject: "automation"}); err != nil {
		return policy.State{}, err
	}
	if err := s.o.Switch.Resume(ctx, by); err != nil {
		return policy.State{}, err
	}
	s.unpersisted.Store(false)
	s.log.Info("automation resumed", "by", by)
	return s.o.Switch.State(), nil
}

// reloadSwitch reads the kill switch again, so that a pause served by
// another process sharing the database holds here too. When the store
// cannot say, the state known stands.
func (s *Service) reloadSwitch(ctx context.Context) {
	if s.unpersisted.Load() {
		return
	}
	if err := s.o.Switch.Reload(ctx); err != nil {
		s.log.Warn("could not read the kill switch: its last known state stands", "err", err)
	}
}

// State is the kill switch's state.
func (s *Service) State() policy.State { return s.o.Switch.State() }

// Decisions lists decisions (GET /decisions).
func (s *Service) Decisions(ctx context.Context, q store.DecisionQuery) ([]store.Decision, error) {
	return s.o.Store.Decisions(ctx, q)
}

// Decision returns one decision.
func (s *Service) Decision(ctx context.Context, id int64) (store.Decision, error) {
	return s.o.Store.Decision(ctx, id)
}

// Audit is the audit log (GET /api/v1/audit).
func (s *Service) Audit() *audit.Log { return s.o.Audit }

// resourceKey is the setting that holds the resource manager's state.
const resourceKey = "resource_state"

// restoreResources loads the resource manager's state (rolling rates,
// budgets, breakers, remediation loops) as the last run saved it.
func (s *Service) restoreResources(ctx context.Context) error {
	raw, err := s.o.Store.Setting(ctx, resourceKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("autonomous: resource state: %w", err)
	}
	var snap resource.Snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		s.log.Warn("resource state unreadable: starting with empty windows and closed breakers", "err", err)
		return nil
	}
	if err := s.o.Resources.Restore(snap); err != nil {
		s.log.Warn("resource state refused: starting with empty windows and closed breakers", "err", err)
	}
	return nil
}

// SaveResources stores the resource manager's state, so that a restart
// neither lifts the budgets nor closes the breakers. The server calls it
// periodically and at stop.
func (s *Service) SaveResources(ctx context.Context) {
	b, err := json.Marshal(s.o.Resources.Snapshot())
	if err == nil {
		err = s.o.Store.PutSetting(ctx, resourceKey, b)
	}
	if err != nil {
		s.log.Warn("could not save the resource manager's state", "err", err)
	}
}

// PolicyLoaded audits the policy the server starts with when it differs
// from the one stored before (a policy change through the policy file).
func (s *Service) PolicyLoaded(ctx context.Context, before, now policy.Policy, source string) error {
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(now)
	if string(b1) == string(b2) {
		return nil
	}
	return s.audit(ctx, audit.Entry{Actor: audit.ActorSystem, Action: audit.ActionPolicyChange, Subject: "policy",
		Parameters: map[string]any{"source": source, "policy": json.RawMessage(b2), "previous": json.RawMessage(b1)}})
}
