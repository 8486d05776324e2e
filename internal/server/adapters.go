package server

import (
	"context"

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/ingest/alertmanager"
	"github.com/reflex-ops/reflex/internal/ingest/dbcheck"
	"github.com/reflex-ops/reflex/internal/ingest/email"
	"github.com/reflex-ops/reflex/internal/ingest/grafana"
	"github.com/reflex-ops/reflex/internal/ingest/snmp"
	"github.com/reflex-ops/reflex/internal/ingest/syslog"
	"github.com/reflex-ops/reflex/internal/ingest/webhook"
	"github.com/reflex-ops/reflex/internal/metrics"
	"github.com/reflex-ops/reflex/internal/normalize"
)

// normalizers are the normalizers of every adapter, by source type.
func (s *Server) normalizers() map[event.SourceType]normalize.Normalizer {
	return map[event.SourceType]normalize.Normalizer{
		event.SourceWebhook:      webhook.Normalizer{},
		event.SourceReflex:       webhook.Normalizer{}, // derived events are webhook payloads
		event.SourceDB:           dbcheck.Normalizer{},
		event.SourceMetrics:      metrics.Normalizer{},
		event.SourceAlertmanager: alertmanager.Normalizer{},
		event.SourceGrafana:      grafana.Normalizer{},
		event.SourceSNMP:         snmp.Normalizer{},
		event.SourceEmail:        email.Normalizer{},
		event.SourceSyslog:       syslog.Normalizer{},
	}
}

// ingestEnv is what each adapter is started with.
func (s *Server) ingestEnv(component string) ingest.Env {
	return ingest.Env{
		Intake:        s.intake,
		MaxEventBytes: api.MaxEventBytes(s.bus.MaxPayload()),
		Logger:        s.log.With("component", component),
		Registerer:    s.reg,
		Now:           s.now,
	}
}

// startAdapters starts the configured listeners and pollers (each in a
// file of its own: adapter_*.go), after the pipeline, each pushing its
// stop, so that they stop before the pipeline drains. It returns the
// routes of the HTTP adapters, which the events service serves.
func (s *Server) startAdapters(ctx context.Context) ([]api.Route, error) {
	var routes []api.Route
	for _, start := range []func(context.Context) ([]api.Route, error){
		s.startSyslog,
		s.startSNMP,
		s.startSMTP,
		s.startAlerts,
		s.startMetrics,
		s.startDBChecks,
	} {
		r, err := start(ctx)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r...)
	}
	return routes, nil
}
