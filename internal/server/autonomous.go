package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/approval"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/autonomous"
	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/engine"
	"github.com/reflex-ops/reflex/internal/engine/llm"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/executor/command"
	httpexec "github.com/reflex-ops/reflex/internal/executor/http"
	notifyexec "github.com/reflex-ops/reflex/internal/executor/notify"
	"github.com/reflex-ops/reflex/internal/executor/ssh"
	"github.com/reflex-ops/reflex/internal/impact"
	"github.com/reflex-ops/reflex/internal/learning"
	"github.com/reflex-ops/reflex/internal/notify"
	"github.com/reflex-ops/reflex/internal/orchestrator"
	"github.com/reflex-ops/reflex/internal/outbound"
	"github.com/reflex-ops/reflex/internal/policy"
	"github.com/reflex-ops/reflex/internal/resource"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/validate"
)

// decisionsConsumer is the durable consumer of the decisions stream that
// the Autonomous Response Service reads: one name, shared by its
// instances.
const decisionsConsumer = "autonomous"

// ExecutorValidators are the executor types this build runs, each with
// the check of its configuration that action definitions go through.
func ExecutorValidators() actions.Validators {
	return actions.Validators{
		command.Type:    func(s executor.Spec) error { _, err := command.Parse(s); return err },
		httpexec.Type:   func(s executor.Spec) error { _, err := httpexec.Parse(s); return err },
		ssh.Type:        func(s executor.Spec) error { _, err := ssh.Parse(s); return err },
		notifyexec.Type: func(s executor.Spec) error { _, err := notifyexec.Parse(s); return err },
	}
}

// autonomousOut is the running Autonomous Response Service.
type autonomousOut struct {
	svc   *autonomous.Service
	audit *audit.Log
}

// startAutonomous builds the service's parts over the store, recovers
// what a previous run left, and takes decision requests from the stream:
// the in-process one when the events service runs here, else the external
// NATS's.
func (s *Server) startAutonomous(ctx context.Context) error {
	log := s.log.With("component", "autonomous")
	key, err := s.auditKey()
	if err != nil {
		return err
	}
	al, err := audit.New(audit.Options{Store: s.store, Key: key, Now: s.now, Logger: log, Registerer: s.reg})
	if err != nil {
		return fmt.Errorf("server: audit log: %w", err)
	}
	if s.notify == nil {
		if err := s.startNotifications(ctx); err != nil {
			return err
		}
	}
	pol, polBefore, err := s.startPolicyOfAutomation(ctx)
	if err != nil {
		return err
	}
	sw, err := policy.NewSwitch(ctx, s.store)
	if err != nil {
		return fmt.Errorf("server: kill switch: %w", err)
	}
	gate, err := approval.New(approval.Options{Store: s.store, TTL: time.Duration(pol.ApprovalTTL), Now: s.now, Registerer: s.reg})
	if err != nil {
		return fmt.Errorf("server: approvals: %w", err)
	}
	est, err := learning.New(learning.Options{Now: s.now, Logger: log})
	if err != nil {
		return fmt.Errorf("server: learning: %w", err)
	}
	res, err := resource.New(resource.Options{Limits: pol.Limits.Resource(), Now: s.now, Logger: log, Registerer: s.reg})
	if err != nil {
		return fmt.Errorf("server: resource manager: %w", err)
	}
	eng, err := s.decisionEngine()
	if err != nil {
		return err
	}
	ctxa := s.contextual
	if ctxa == nil {
		if ctxa, err = contextual.New(contextual.Options{Store: s.store, Assets: storeAssets{s.store}, Logger: log}); err != nil {
			return fmt.Errorf("server: context analyzer: %w", err)
		}
	}
	imp, err := impact.New(impact.Options{Assets: s.store})
	if err != nil {
		return fmt.Errorf("server: impact analyzer: %w", err)
	}
	val, err := validate.New(validate.Options{Client: s.notify.guard.HTTPClient(30 * time.Second), Events: s.store, Now: s.now, Logger: log})
	if err != nil {
		return fmt.Errorf("server: result validator: %w", err)
	}
	svc, err := autonomous.New(autonomous.Options{
		Store: s.store, Engine: eng, Context: ctxa, Impact: imp, Audit: al,
		Policy: func() policy.Policy { return pol }, Switch: sw, Gate: gate, Learning: est, Resources: res,
		Notifier: s.Notifier(), Logger: log, Registerer: s.reg, Now: s.now,
	})
	if err != nil {
		return fmt.Errorf("server: autonomous: %w", err)
	}
	orch, err := orchestrator.New(orchestrator.Options{
		Store: s.store, Actions: s.store, Executors: s.executors(s.notify.guard),
		Guard: svc, Approvals: svc, Escalator: svc, Validator: stepValidator{val}, Audit: al,
		Ended: svc.Ended, Logger: log, Registerer: s.reg, Now: s.now,
	})
	if err != nil {
		return fmt.Errorf("server: orchestrator: %w", err)
	}
	svc.Attach(orch)
	if err := svc.PolicyLoaded(ctx, polBefore, pol, "--autonomous-policy "+s.cfg.AutonomousPolicy); err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	s.stops.push("resource state", func(ctx context.Context) error { svc.SaveResources(ctx); return nil }) // after the orchestrator stopped
	s.stops.push("orchestrator", orch.Close)
	s.startApprovalExpiry(svc)

	s.auto = &autonomousOut{svc: svc, audit: al}
	if s.opts.HoldDecisionRequests {
		return nil
	}
	dec := s.decisionsStream()
	if dec == nil {
		if s.cfg.NATSURL == "" {
			log.Warn("the autonomous service runs without the events service and without --nats-url: it takes no decision requests of trigger rules, only POST /api/v1/autonomous/analyze")
			return nil
		}
		d, err := bus.DialDecisions(ctx, bus.DialDecisionsOptions{URL: s.cfg.NATSURL, Token: s.cfg.NATSToken,
			Stream: s.cfg.DecisionsStream, Logger: log})
		if errors.Is(err, bus.ErrNoDecisionsStream) {
			return fmt.Errorf("server: the decisions stream %s does not exist on %s yet: start the events service (--services events) first", s.cfg.DecisionsStream, s.cfg.NATSURL)
		}
		if err != nil {
			return fmt.Errorf("server: decisions stream at %s: %w", s.cfg.NATSURL, err)
		}
		s.stops.pushClose("decisions stream", d.Close)
		dec = d
	}
	cons, err := dec.Consumer(ctx, bus.DecisionsConsumerOptions{Name: decisionsConsumer})
	if err != nil {
		return fmt.Errorf("server: decisions consumer: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = svc.Consume(runCtx, cons)
	}()
	s.stops.push("decision requests", func(ctx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return nil
}

// approvalExpiry is how often approvals past their expiry are expired
// and the resource manager's state is saved.
const approvalExpiry = time.Minute

// startApprovalExpiry expires unanswered approvals and saves the resource
// manager's state periodically.
func (s *Server) startApprovalExpiry(svc *autonomous.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(approvalExpiry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				svc.ExpireApprovals(ctx)
				svc.SaveResources(ctx)
			}
		}
	}()
	s.stops.push("approval expiry", func(context.Context) error {
		cancel()
		<-done
		return nil
	})
}

// decisionsStream is the in-process decisions stream (nil when the
// events service does not run here).
func (s *Server) decisionsStream() *bus.Decisions {
	if s.rules == nil {
		return nil
	}
	return s.rules.decisions
}

// auditKey loads the audit log's key: --audit-key-file, or audit.key in
// the data dir (created at the first start).
func (s *Server) auditKey() (audit.Key, error) {
	if f := s.cfg.AuditKeyFile; f != "" {
		k, err := audit.LoadKey(f)
		if err != nil {
			return audit.Key{}, fmt.Errorf("server: audit-key-file: %w", err)
		}
		return k, nil
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o750); err != nil {
		return audit.Key{}, fmt.Errorf("server: data dir: %w", err)
	}
	k, err := audit.LoadOrCreateKey(s.cfg.DataDir)
	if err != nil {
		return audit.Key{}, fmt.Errorf("server: audit key: %w", err)
	}
	return k, nil
}

// startPolicyOfAutomation returns the automation policy: the
// --autonomous-policy file (stored, replacing the stored one), else the
// stored one, else the defaults; and the one stored before.
func (s *Server) startPolicyOfAutomation(ctx context.Context) (now, before policy.Policy, err error) {
	before, err = policy.LoadPolicy(ctx, s.store, policy.Default())
	if err != nil {
		return now, before, err
	}
	f := s.cfg.AutonomousPolicy
	if f == "" {
		return before, before, nil
	}
	b, err := os.ReadFile(f) //nolint:gosec // the operator's --autonomous-policy
	if err != nil {
		return now, before, fmt.Errorf("server: autonomous-policy: %w", err)
	}
	if now, err = policy.Parse(b); err != nil {
		return now, before, fmt.Errorf("server: autonomous-policy %s: %w", f, err)
	}
	if err := policy.SavePolicy(ctx, s.store, now); err != nil {
		return now, before, err
	}
	return now, before, nil
}

// decisionEngine is the built-in engine, behind the LLM backend when
// --ai-url is set.
func (s *Server) decisionEngine() (engine.Engine, error) {
	b, err := engine.NewBuiltin(engine.BuiltinOptions{})
	if err != nil {
		return nil, fmt.Errorf("server: decision engine: %w", err)
	}
	if s.cfg.AIURL == "" {
		return b, nil
	}
	var key string
	if f := s.cfg.AIKeyFile; f != "" {
		raw, err := os.ReadFile(f) //nolint:gosec // the operator's --ai-key-file
		if err != nil {
			return nil, fmt.Errorf("server: ai-key-file: %w", err)
		}
		key = strings.TrimSpace(string(raw))
	}
	l, err := llm.New(llm.Options{URL: s.cfg.AIURL, Model: s.cfg.AIModel, APIKey: key, Timeout: time.Duration(s.cfg.AITimeout),
		Fallback: b, Logger: s.log.With("component", "llm"), Registerer: s.reg})
	if err != nil {
		return nil, fmt.Errorf("server: ai-url: %w", err)
	}
	return l, nil
}

// executors makes the executor of an action definition by its type.
func (s *Server) executors(guard *outbound.Guard) orchestrator.Executors {
	l := s.log.With("component", "executor")
	return func(d actions.Definition) (executor.Executor, error) {
		spec, err := executor.ParseSpec(d.Executor)
		if err != nil {
			return nil, err
		}
		switch spec.Type {
		case command.Type:
			cfg, err := command.Parse(spec)
			if err != nil {
				return nil, err
			}
			return command.New(cfg, command.Options{Logger: l, Now: s.now})
		case ssh.Type:
			cfg, err := ssh.Parse(spec)
			if err != nil {
				return nil, err
			}
			return ssh.New(cfg, ssh.Options{Logger: l, Now: s.now})
		case httpexec.Type:
			cfg, err := httpexec.Parse(spec)
			if err != nil {
				return nil, err
			}
			return httpexec.New(cfg, httpexec.Options{Guard: guard, Logger: l, Now: s.now})
		case notifyexec.Type:
			cfg, err := notifyexec.Parse(spec)
			if err != nil {
				return nil, err
			}
			return notifyexec.New(cfg, notifyexec.Options{Receivers: s.receivers(), Guard: guard, Now: s.now, Logger: l})
		}
		return nil, fmt.Errorf("%w: executor type %q is not one this build runs", executor.ErrInvalid, spec.Type)
	}
}

// receivers are the receivers of the notification policy in use, for
// notification steps.
func (s *Server) receivers() notifyexec.Receivers {
	return notifyexec.ReceiversFunc(func(name string) (notify.Receiver, bool) {
		p := s.notify.d.Policy()
		if p == nil {
			return notify.Receiver{}, false
		}
		return p.Receiver(name)
	})
}

// stepValidator is the orchestrator's validator: the result validator's
// immediate criteria.
type stepValidator struct{ v *validate.Validator }

func (sv stepValidator) Validate(ctx context.Context, d actions.Definition, data map[string]any, res executor.Result) (bool, string, error) {
	if d.SuccessCriteria == nil {
		return true, "", nil
	}
	v, err := sv.v.Validate(ctx, d, data, res)
	if err != nil {
		return false, "", err
	}
	if !v.OK || v.Quiet == nil {
		return v.OK, checks(v), nil
	}
	// no_new_event_minutes: the step waits for its quiet window (and
	// validate.WatchGrace for the events received just before its end
	// to be stored), then looks for a new event of the pattern.
	wait := time.Until(v.Quiet.Due) + quietGrace
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, "stopped before the quiet check was due", ctx.Err()
	case <-t.C:
	}
	ok, detail, err := sv.v.CheckQuiet(ctx, *v.Quiet)
	if err != nil {
		return false, "", err
	}
	return ok, checks(v) + "; " + detail, nil
}

// checks lists a verdict's checks ("exit_code: exit status 0, want 0"),
// which the orchestrator prefixes with passed or failed.
func checks(v validate.Verdict) string {
	parts := make([]string, 0, len(v.Checks))
	for _, c := range v.Checks {
		parts = append(parts, c.Name+": "+c.Detail)
	}
	return strings.Join(parts, "; ")
}

// quietGrace is how long after a quiet window ends it is checked.
const quietGrace = 30 * time.Second

// storeAssets is the asset inventory read from the store, for a context
// analyzer of the autonomous service running without the events service.
type storeAssets struct{ st store.AssetStore }

func (a storeAssets) Get(host string) (store.Asset, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	as, err := a.st.Asset(ctx, host)
	return as, err == nil
}

// autonomousHandler is the handler of the Autonomous Response Service's
// address: its API and the operational endpoints.
func (s *Server) autonomousHandler() (http.Handler, error) {
	o := api.AutonomousOptions{
		Auth:       s.auth,
		Actions:    s.store,
		Validators: ExecutorValidators(),
		Ops:        api.NewOps(api.OpsOptions{Ready: s.Ready, Gatherer: s.reg, Service: "autonomous", Logger: s.log, Registerer: s.reg}),
		Logger:     s.log.With("component", "api", "service", "autonomous"),
		Registerer: s.reg,
		Now:        s.now,
	}
	if s.auto != nil {
		o.Service, o.Audit = s.auto.svc, s.auto.audit
	}
	h, err := api.NewAutonomous(o)
	if err != nil {
		return nil, fmt.Errorf("server: autonomous api: %w", err)
	}
	return h, nil
}
