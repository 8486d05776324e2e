package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
)

// httpMetrics are the metrics every service's router records. NewEvents
// and NewOps may register them on the same registry: the second use reuses
// the collectors the first registered.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_http_requests_total",
			Help: "HTTP requests answered, by service, route pattern and status code.",
		}, []string{"service", "handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reflex_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by service and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "handler"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_http_panics_total",
			Help: "Panics recovered in HTTP handlers (answered with 500); should stay 0.",
		}, []string{"service"}),
	}
	var err error
	if err = promutil.Register(reg, &m.requests); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.duration); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.panics); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *httpMetrics) observe(service, handler string, code int, d time.Duration) {
	m.requests.WithLabelValues(service, handler, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(service, handler).Observe(d.Seconds())
}

// Reasons of reflex_events_rejected_total: a bounded set.
const (
	rejectInvalid          = "invalid"                // an event failed validation
	rejectTooLarge         = "too_large"              // the body exceeded the limit (counted per request)
	rejectUnsupportedMedia = "unsupported_media_type" // unknown Content-Type (per request)
	rejectMalformed        = "malformed"              // the body is not JSON/NDJSON (per request)
)

// intakeMetrics count webhook events.
type intakeMetrics struct {
	received *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newIntakeMetrics(reg prometheus.Registerer) (*intakeMetrics, error) {
	m := &intakeMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_events_received_total",
			Help: "Events received by the HTTP intake (valid or not), by source type.",
		}, []string{"source_type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_events_rejected_total",
			Help: "Events rejected by the HTTP intake, by source type and reason; " +
				"for too_large, unsupported_media_type and malformed the whole request counts once.",
		}, []string{"source_type", "reason"}),
	}
	var err error
	if err = promutil.Register(reg, &m.received); err != nil {
		return nil, err
	}
	if err = promutil.Register(reg, &m.rejected); err != nil {
		return nil, err
	}
	return m, nil
}
