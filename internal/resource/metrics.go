package resource

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
)

// metrics are the manager's metrics. Gauges move by increments, so that
// managers sharing a registry add up.
type metrics struct {
	refusals *prometheus.CounterVec
	inUse    *prometheus.GaugeVec
	open     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_resource_refusals_total",
			Help: "Leases the resource manager refused, by reason (the refusal code).",
		}, []string{"reason"}),
		inUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reflex_resource_in_use",
			Help: "Leases held, by kind of step (diagnostic, remediation, notification).",
		}, []string{"kind"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_resource_breakers_open",
			Help: "Templates whose circuit breaker is open or half-open.",
		}),
	}
	if err := errors.Join(promutil.Register(reg, &m.refusals), promutil.Register(reg, &m.inUse), promutil.Register(reg, &m.open)); err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	for _, c := range Codes {
		m.refusals.WithLabelValues(string(c))
	}
	for _, k := range []Kind{Diagnostic, Remediation, Notification} {
		m.inUse.WithLabelValues(string(k))
	}
	return m, nil
}
