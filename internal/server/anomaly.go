package server

import (
	"context"
	"fmt"
	"time"

	"github.com/reflex-ops/reflex/internal/anomaly/monitor"
	"github.com/reflex-ops/reflex/internal/processed"
)

// startAnomaly runs the anomaly monitor on the processed stream, with its
// stop pushed on the stack. Like startRules it runs after openProcessed
// and before the pipeline starts, so that its durable consumer exists
// before the first event is published.
func (s *Server) startAnomaly(ctx context.Context) error {
	mon, err := monitor.New(monitor.Options{
		Sink:       s.derived,
		Interval:   time.Duration(s.cfg.AnomalyInterval),
		Threshold:  s.cfg.AnomalyThreshold,
		MaxSeries:  s.cfg.AnomalyMaxSeries,
		Now:        s.now,
		Logger:     s.log.With("component", "anomaly"),
		Registerer: s.reg,
	})
	if err != nil {
		return fmt.Errorf("server: anomaly monitor: %w", err)
	}
	cons, err := processed.Consume(ctx, s.processed.stream, processed.ConsumerOptions{
		Shared:     s.processed.shared,
		Name:       monitor.ConsumerName,
		Recent:     recentRecords,
		Logger:     s.log,
		Registerer: s.reg,
	})
	if err != nil {
		return fmt.Errorf("server: anomaly monitor: %w", err)
	}
	s.runDownstream("anomaly monitor", cons, mon.Handle, mon.Run, nil)
	s.anomaly = mon
	return nil
}

// Anomaly answers the anomaly monitor of the events service (nil when the
// service does not run), for the context analyzer.
func (s *Server) Anomaly() *monitor.Monitor { return s.anomaly }
