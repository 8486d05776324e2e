package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg           prometheus.Registerer
	registered    []prometheus.Collector
	publishErrors *prometheus.CounterVec
	duplicates    prometheus.Counter
}

func newMetrics(b *Bus, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_bus_publish_failures_total",
			Help: "Intake log publishes that failed, by reason (full, unavailable, too_large, canceled, other).",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_bus_publish_duplicates_total",
			Help: "Intake log publishes acknowledged as duplicates of an earlier message with the same id.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.publishErrors, err = register(m, m.publishErrors); err != nil {
		return nil, err
	}
	if m.duplicates, err = register(m, m.duplicates); err != nil {
		return nil, err
	}
	depth := &depthCollector{b: b, desc: prometheus.NewDesc(
		"reflex_intake_queue_depth",
		"Intake log messages per lane not yet processed: undelivered plus delivered and unacknowledged.",
		[]string{"lane"}, nil)}
	if _, err := register(m, prometheus.Collector(depth)); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same descriptors (a second Bus on one registry).
func register[C prometheus.Collector](m *metrics, c C) (C, error) {
	if err := m.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(C); ok {
				return ex, nil
			}
		}
		return c, fmt.Errorf("bus: register metrics: %w", err)
	}
	m.registered = append(m.registered, c)
	return c, nil
}

func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

func (m *metrics) publishFailed(err error) {
	reason := "other"
	switch {
	case errors.Is(err, ErrFull):
		reason = "full"
	case errors.Is(err, ErrUnavailable):
		reason = "unavailable"
	case errors.Is(err, ErrTooLarge):
		reason = "too_large"
	case errors.Is(err, context.Canceled):
		reason = "canceled"
	}
	m.publishErrors.WithLabelValues(reason).Inc()
}

// depthCollector reads each lane's consumer depth at scrape time.
type depthCollector struct {
	b    *Bus
	desc *prometheus.Desc
}

func (d *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, l := range Lanes {
		n, err := d.b.Pending(ctx, l)
		if err != nil {
			d.b.log.Debug("queue depth unavailable", "lane", string(l), "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(n), string(l))
	}
}
