package server

import (
	"context"

	"github.com/reflex-ops/reflex/internal/api"
	"github.com/reflex-ops/reflex/internal/auth"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/ingest"
	"github.com/reflex-ops/reflex/internal/ingest/alertmanager"
	"github.com/reflex-ops/reflex/internal/ingest/grafana"
	"github.com/reflex-ops/reflex/internal/intake"
)

// startAlerts serves the alert webhooks on the events service, behind its
// authentication (scope events:write; a bearer token, or the password of
// HTTP basic authentication for senders that can do no other):
// POST /api/v1/events/alertmanager (Alertmanager's webhook_configs) and
// POST /api/v1/events/grafana (a Grafana webhook contact point, unified
// or legacy alerting). Each answers once every alert of a body is durable.
func (s *Server) startAlerts(context.Context) ([]api.Route, error) {
	adapters := []struct {
		name    string
		pattern string
		source  event.SourceType
		decode  alertmanager.DecodeFunc
	}{
		{"alertmanager", "POST /api/v1/events/alertmanager", event.SourceAlertmanager,
			func(body []byte, maxEventBytes int) ([]intake.Item, int, error) {
				return alertmanager.Decode(body, alertmanager.Options{MaxEventBytes: maxEventBytes})
			}},
		{"grafana", "POST /api/v1/events/grafana", event.SourceGrafana, grafana.Decode},
	}
	var routes []api.Route
	for _, a := range adapters {
		env := s.ingestEnv(a.name)
		met, err := ingest.NewMetrics(env.Registerer)
		if err != nil {
			return nil, err
		}
		sub, err := env.Intake.NewSubmitter(intake.SubmitterOptions{Mode: intake.Blocking})
		if err != nil {
			return nil, err
		}
		s.stops.push(a.name, sub.Close)
		h, err := alertmanager.NewHandler(alertmanager.HandlerOptions{
			Adapter:       a.name,
			Source:        a.source,
			Decode:        a.decode,
			Submit:        sub,
			Metrics:       met,
			MaxBodyBytes:  int64(s.cfg.MaxBodyBytes),
			MaxEventBytes: env.MaxEventBytes,
			Logger:        env.Logger,
		})
		if err != nil {
			return nil, err
		}
		routes = append(routes, api.Route{Pattern: a.pattern, Scope: auth.ScopeEventsWrite, Handler: h, Credentials: alertmanager.BasicPassword})
	}
	return routes, nil
}
