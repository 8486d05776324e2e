package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/autonomous"
)

// AutonomousOptions configure the handler of the Autonomous Response
// Service (NewAutonomous). Auth is required; each part without its store
// is not served (its paths are 404).
type AutonomousOptions struct {
	// Auth authenticates every /api/ request. Required.
	Auth *auth.Authenticator
	// Actions holds the action definitions of /api/v1/autonomous/actions.
	Actions ActionStore
	// Validators check the executors of definitions, by executor type
	// (the types this server runs).
	Validators actions.Validators
	// Audit, when set, records every change of an action definition
	// before it is made (a change it cannot record is refused).
	Audit *audit.Log
	// Service, when set, serves the decision, execution, approval,
	// feedback, kill switch, metrics and audit endpoints.
	Service *autonomous.Service
	// Ops, when set, answers GET /healthz, /readyz and /metrics.
	Ops http.Handler
	// Logger receives the request log and server-side failures; nil
	// discards.
	Logger *slog.Logger
	// Registerer receives the HTTP metrics; nil means do not register.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// autonomousAPI holds the handlers of the Autonomous Response Service.
type autonomousAPI struct {
	audit  *audit.Log
	auth   *auth.Authenticator
	logger *slog.Logger
	now    func() time.Time
}

// NewAutonomous returns the handler of the Autonomous Response Service:
// its API under /api/v1/autonomous/, and the operational endpoints.
func NewAutonomous(opts AutonomousOptions) (http.Handler, error) {
	if opts.Auth == nil {
		return nil, errors.New("api: new autonomous: Options.Auth is required")
	}
	s := &autonomousAPI{auth: opts.Auth, logger: opts.Logger, now: opts.Now}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	hm, err := newHTTPMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("api: new autonomous: %w", err)
	}
	rt := newRouter("autonomous", s.logger, hm, s.now)
	rt.ops = opts.Ops
	s.audit = opts.Audit
	s.actionRoutes(rt.mux, opts.Actions, opts.Validators)
	s.serviceRoutes(rt.mux, opts.Service)
	return rt, nil
}

func (s *autonomousAPI) with(scope string, h handlerFunc) http.Handler {
	return authenticated(s.auth, s.unavailable, scope, h)
}

func (s *autonomousAPI) unavailable(w http.ResponseWriter, r *http.Request, err error, what string) {
	unavailable(s.logger, w, r, err, what)
}
