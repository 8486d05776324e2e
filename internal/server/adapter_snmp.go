package server

import (
	"context"

	"github.com/reflex-ops/reflex/internal/api"
)

// startSNMP is replaced by the adapter's wiring (issue 9, in progress).
func (s *Server) startSNMP(context.Context) ([]api.Route, error) { return nil, nil }
