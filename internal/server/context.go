package server

import (
	"context"
	"time"

	"github.com/reflex-ops/reflex/internal/contextual"
	"github.com/reflex-ops/reflex/internal/store"
)

// maxContextIncidents bounds the open incidents a context lists.
const maxContextIncidents = 50

// rateLearning is how long a host's event-rate series must have been
// scored before the context analyzer takes its expected range over the
// store's baseline.
const rateLearning = 24 * time.Hour

// newContext builds the context analyzer of GET /api/v1/context over the
// store and the pipeline's asset inventory, with the configured business
// hours. Its rate falls back to the store (events of the host in the last
// 5 minutes against the same 5 minutes of the previous 7 days) until the
// anomaly monitor's series of the host has learned for rateLearning.
func (s *Server) newContext() (*contextual.Analyzer, error) {
	o := contextual.Options{
		Store:  s.store,
		Assets: s.proc.inventory,
		Logger: s.log.With("component", "context"),
	}
	if mon := s.anomaly; mon != nil {
		o.Rate = func(host string) (contextual.RateState, bool) {
			r, ok := mon.Rate(host)
			if !ok || r.Interval <= 0 || time.Duration(r.Points)*r.Interval < rateLearning {
				return contextual.RateState{}, false // the store's 7-day baseline is better
			}
			return contextual.RateState{Interval: r.Interval, Current: r.Current, ExpectedLow: r.ExpectedLow,
				ExpectedHigh: r.ExpectedHigh, Score: r.Score, At: r.At}, true
		}
	}
	o.OpenIncidents = func(ctx context.Context, hosts []string) ([]contextual.IncidentRef, error) {
		page, err := s.store.ListIncidents(ctx, store.IncidentQuery{
			Status: []store.IncidentStatus{store.IncidentOpen, store.IncidentAcknowledged},
			Hosts:  hosts,
			Limit:  maxContextIncidents,
		})
		if err != nil {
			return nil, err
		}
		out := make([]contextual.IncidentRef, len(page.Incidents))
		for i, in := range page.Incidents {
			out[i] = contextual.IncidentRef{ID: in.ID, Title: in.Title, Status: string(in.Status), RootEventID: in.RootEventID,
				Hosts: in.Hosts, OpenedAt: in.OpenedAt, UpdatedAt: in.UpdatedAt}
		}
		return out, nil
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
