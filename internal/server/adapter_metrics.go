package server

import (
	"context"

	"github.com/reflex-ops/reflex/internal/api"
)

// startMetrics is replaced by the adapter's wiring (issue 9, in progress).
func (s *Server) startMetrics(context.Context) ([]api.Route, error) { return nil, nil }
