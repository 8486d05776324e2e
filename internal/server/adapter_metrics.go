package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/ingest/influx"
	"github.com/reflex-ops/reflex/internal/ingest/promwrite"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/metrics"
)

// startMetrics starts the metrics path when --metric-rules names a file:
// the series store with its rules and checks, and the routes of Prometheus
// remote write and the InfluxDB line protocol (404 without the flag).
func (s *Server) startMetrics(context.Context) ([]api.Route, error) {
	if s.cfg.MetricRules == "" {
		return nil, nil
	}
	cfg, err := metrics.LoadConfig(s.cfg.MetricRules)
	if err != nil {
		return nil, fmt.Errorf("server: metric-rules: %w", err)
	}
	env := s.ingestEnv("metrics")
	im, err := ingest.NewMetrics(env.Registerer)
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	sub, err := env.Intake.NewSubmitter(intake.SubmitterOptions{Mode: intake.Blocking})
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	o := metrics.Options{
		Config:     cfg,
		MaxSeries:  s.cfg.MetricMaxSeries,
		Submitter:  sub,
		Now:        env.Now,
		Logger:     env.Logger,
		Registerer: env.Registerer,
	}
	if s.anomaly != nil {
		o.Observer = s.anomaly
	}
	store, err := metrics.New(o)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("server: metrics: %w", err), sub.Close(context.Background()))
	}
	pw, err := promwrite.New(promwrite.Options{Sink: store, Metrics: im, Logger: env.Logger})
	if err != nil {
		return nil, err
	}
	lp, err := influx.New(influx.Options{Sink: store, Metrics: im, Now: env.Now, Logger: env.Logger})
	if err != nil {
		return nil, err
	}
	store.Start()
	s.stops.push("metrics", func(ctx context.Context) error {
		return errors.Join(store.Stop(ctx), sub.Close(ctx))
	})
	return []api.Route{
		{Pattern: "POST /api/v1/metrics/write", Handler: pw},
		{Pattern: "POST /api/v1/metrics/influx", Handler: lp, Credentials: influx.Credentials},
		{Pattern: "POST /write", Handler: lp, Credentials: influx.Credentials},
		{Pattern: "POST /api/v2/write", Handler: lp, Credentials: influx.Credentials},
	}, nil
}
