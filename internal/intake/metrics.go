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
	envelopes      *prometheus.CounterVec
	envelopeEvents prometheus.Histogram
	submitted      *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	pending        *prometheus.GaugeVec
}

// Reasons an envelope was cut (the reason label of
// reflex_intake_envelopes_total).
const (
	reasonRequest = "request" // Intake.Submit: one request's events
	reasonEvents  = "events"  // Submitter: MaxEventsPerMessage reached
	reasonBytes   = "bytes"   // Submitter: MaxMessageBytes reached
	reasonLinger  = "linger"  // Submitter: Linger passed since the first event
	reasonBusy    = "busy"    // Submitter: filled while the lane's publisher was busy
	reasonClose   = "close"   // Submitter: closing
)

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
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_intake_envelopes_total",
			Help: "Envelopes stored in the intake log, by lane and by why they were cut: request (one request), events or bytes (full), linger, busy (filled during the previous write), close.",
		}, []string{"lane", "reason"}),
		envelopeEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reflex_intake_envelope_events",
			Help:    "Events per envelope stored in the intake log.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_intake_submitted_total",
			Help: "Events taken by a submitter (blocking or dropping mode), before they are durable.",
		}, []string{"source_type", "mode"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_intake_dropped_total",
			Help: "Events a dropping submitter refused because its buffer was full.",
		}, []string{"source_type"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reflex_intake_submitter_pending_events",
			Help: "Events a submitter holds that are not yet durable, by mode.",
		}, []string{"mode"}),
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
	if err = promutil.Register(reg, &m.envelopes); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.envelopeEvents); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.submitted); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.dropped); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.pending); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) accepted(src event.SourceType, lane bus.Lane, n int) {
	m.acceptedTotal.WithLabelValues(string(src), string(lane)).Add(float64(n))
}

func (m *metrics) envelope(lane bus.Lane, reason string, n int) {
	m.envelopes.WithLabelValues(string(lane), reason).Inc()
	m.envelopeEvents.Observe(float64(n))
}
