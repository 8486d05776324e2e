package server

import (
	"context"
	"fmt"

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/ingest/dbcheck"
)

// startDBChecks starts the database checks and LISTEN channels of the
// db-checks file, when one is configured.
func (s *Server) startDBChecks(context.Context) ([]api.Route, error) {
	if s.cfg.DBChecks == "" {
		return nil, nil
	}
	cfg, err := dbcheck.Load(s.cfg.DBChecks)
	if err != nil {
		return nil, fmt.Errorf("db-checks: %w", err)
	}
	a, err := dbcheck.New(cfg, s.ingestEnv("dbcheck"))
	if err != nil {
		return nil, fmt.Errorf("db-checks: %w", err)
	}
	a.Start()
	s.stops.push("database checks", a.Stop)
	return nil, nil
}
