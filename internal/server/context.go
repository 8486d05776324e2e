package server

import (
	"github.com/reflex-ops/reflex/internal/contextual"
)

// newContext builds the context analyzer of GET /api/v1/context over the
// store and the pipeline's asset inventory, with the configured business
// hours. Its rate falls back to the store (events of the host in the last
// 5 minutes against the same 5 minutes of the previous 7 days) and it
// lists no incidents until the anomaly detector (Options.Rate) and the
// incident store (Options.OpenIncidents) are wired here.
func (s *Server) newContext() (*contextual.Analyzer, error) {
	o := contextual.Options{
		Store:  s.store,
		Assets: s.proc.inventory,
		Logger: s.log.With("component", "context"),
	}
	cal, err := s.cfg.Calendar() // Validate checked it
	if err != nil {
		return nil, err
	}
	if cal.String() != "" {
		o.Calendar = cal
	}
	return contextual.New(o)
}

// Context is the context analyzer of the Event Processing Service, for
// the decision engine to call in process: Context(ctx, host, now) and
// Maintenance(ctx, target, now). Nil when that service does not run (or
// before Start).
func (s *Server) Context() *contextual.Analyzer {
	return s.contextual
}
