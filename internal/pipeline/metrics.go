package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// runnerMetrics are a runner's metrics. Runners of several lanes that share
// a Registerer share the collectors; lane-labelled series are curried to
// the runner's lane.
type runnerMetrics struct {
	processedTotal *prometheus.CounterVec
	stage          *prometheus.HistogramVec
	latency        prometheus.Observer
	storeSize      prometheus.Histogram
	storeDuration  prometheus.Histogram
	failures       *prometheus.CounterVec
	corrupt        *prometheus.CounterVec
	replayed       prometheus.Counter
	poison         *prometheus.CounterVec
}

func newRunnerMetrics(reg prometheus.Registerer, lane string) (*runnerMetrics, error) {
	processed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_events_processed_total",
		Help: "Raw events processed and stored by the pipeline, by source type.",
	}, []string{"source_type"})
	stage := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "reflex_stage_duration_seconds",
		Help:    "Time per batch of each pipeline step: normalize, the partitioned stages, store (retries included).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 0.1ms .. ~13s
	}, []string{"stage"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "reflex_intake_to_processed_seconds",
		Help: "Time from an event's acceptance at intake to its batch being stored, by lane.",
		// 48 buckets from 1ms to 60s (ratio ~1.26): fine enough to read a p99
		// off within about a quarter of its value, as the load generator does.
		Buckets: prometheus.ExponentialBucketsRange(0.001, 60, 48),
	}, []string{"lane"})
	size := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "reflex_store_batch_size",
		Help:    "Raw events per stored batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 17), // 1 .. 65536
	})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "reflex_store_batch_duration_seconds",
		Help:    "Time of one successful store write of a batch.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. ~16s
	})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_pipeline_batch_failures_total",
		Help: "Failed attempts at a batch, by lane and step (stored_ids, store, downstream, or the stage that failed: normalize, enrich, dedup ...).",
	}, []string{"lane", "step"})
	corrupt := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_pipeline_corrupt_messages_total",
		Help: "Intake log messages that were not valid envelopes, by lane and action (stored as a raw event with an error, or terminated).",
	}, []string{"lane", "action"})
	replayed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_pipeline_replayed_events_total",
		Help: "Raw events delivered again after they had been stored, skipped, by lane.",
	}, []string{"lane"})

	poison := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_pipeline_poison_events_total",
		Help: "Raw events a stage failed on for good (a permanent error or a panic, or a retryable error past the delivery bound), stored unprocessed with the error, by lane and stage.",
	}, []string{"lane", "stage"})

	if reg != nil {
		var err error
		if err = promutil.Register(reg, &processed); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &stage); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &latency); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &size); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &dur); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &failures); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &corrupt); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &replayed); err != nil {
			return nil, err
		}
		if err = promutil.Register(reg, &poison); err != nil {
			return nil, err
		}
	}
	l := prometheus.Labels{"lane": lane}
	return &runnerMetrics{
		processedTotal: processed,
		stage:          stage,
		latency:        latency.With(l),
		storeSize:      size,
		storeDuration:  dur,
		failures:       failures.MustCurryWith(l),
		corrupt:        corrupt.MustCurryWith(l),
		replayed:       replayed.With(l),
		poison:         poison.MustCurryWith(l),
	}, nil
}

func (m *runnerMetrics) processed(src event.SourceType, n int) {
	m.processedTotal.WithLabelValues(string(src)).Add(float64(n))
}
