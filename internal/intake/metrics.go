package intake

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/bus"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/promutil"
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
	if err = promutil.Register(reg, &m.acceptedTotal); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.publishSeconds); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.inflight); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.busy); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.retries); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) accepted(src event.SourceType, lane bus.Lane, n int) {
	m.acceptedTotal.WithLabelValues(string(src), string(lane)).Add(float64(n))
}
