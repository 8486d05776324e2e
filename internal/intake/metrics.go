package intake

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
)

type metrics struct {
	acceptedTotal  *prometheus.CounterVec
	publishSeconds prometheus.Histogram
	inflight       prometheus.Gauge
	busy           prometheus.Counter
	retries        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		acceptedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_events_accepted_total",
			Help: "Events stored in the intake log, by source type and lane.",
		}, []string{"source_type", "lane"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reflex_intake_publish_seconds",
			Help:    "Time from the start of a submission's publishes to the last acknowledgement from the intake log.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_intake_inflight",
			Help: "Submissions waiting for the intake log.",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_intake_busy_total",
			Help: "Submissions refused because MaxInFlight submissions were running.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_intake_publish_retries_total",
			Help: "Envelope publishes tried again after a failure.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.acceptedTotal, err = register(reg, m.acceptedTotal); err != nil {
		return nil, err
	}
	if m.publishSeconds, err = register(reg, m.publishSeconds); err != nil {
		return nil, err
	}
	if m.inflight, err = register(reg, m.inflight); err != nil {
		return nil, err
	}
	if m.busy, err = register(reg, m.busy); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name, so that several intakes (one per adapter) share the metrics.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(C); ok {
				return ex, nil
			}
		}
		return c, fmt.Errorf("intake: register metrics: %w", err)
	}
	return c, nil
}

func (m *metrics) accepted(src event.SourceType, lane bus.Lane, n int) {
	m.acceptedTotal.WithLabelValues(string(src), string(lane)).Add(float64(n))
}
