package server

import (
	"context"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/incident"
	"github.com/reflex-ops/reflex/internal/processed"
)

// incidentBatchMessages is how many processed-stream messages the
// incident engine takes per batch (one store transaction).
const incidentBatchMessages = 8

// startIncidents loads the incident engine and runs it on the processed
// stream as the durable consumer "incidents", with its stop pushed on the
// stack. It runs after newProcessing (the engine reads the asset
// inventory) and before the pipeline starts, so that its consumer exists
// before the first event is published.
func (s *Server) startIncidents(ctx context.Context) error {
	// Root-cause ranking asks the sequence learner which template
	// historically precedes which (none with --sequences=false).
	var precedence incident.Precedence
	if s.proc.patterns != nil {
		precedence = s.proc.patterns
	}
	eng, err := incident.New(ctx, incident.Options{
		Precedence:    precedence,
		Store:         s.store,
		Graph:         s.proc.inventory,
		MinSeverity:   event.Severity(s.cfg.IncidentMinSeverity),
		Window:        time.Duration(s.cfg.IncidentWindow),
		GroupWait:     time.Duration(s.cfg.IncidentGroupWait),
		GroupInterval: time.Duration(s.cfg.IncidentGroupInterval),
		ResolveAfter:  time.Duration(s.cfg.IncidentResolveAfter),
		GroupBy:       s.cfg.IncidentLabels(),
		Logger:        s.log,
		Registerer:    s.reg,
		Now:           s.now,
	})
	if err != nil {
		return fmt.Errorf("server: incident engine: %w", err)
	}
	cons, err := processed.Consume(ctx, s.processed.stream, processed.ConsumerOptions{
		Shared:        s.processed.shared,
		Name:          incident.ConsumerName,
		BatchMessages: incidentBatchMessages,
		Recent:        recentRecords,
		Logger:        s.log,
		Registerer:    s.reg,
	})
	if err != nil {
		return fmt.Errorf("server: incident engine: %w", err)
	}
	s.runDownstream("incident engine", cons, eng.Handle, eng.Run, nil)
	s.incidents = eng
	return nil
}
