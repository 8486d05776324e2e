// Package noise holds the noise filter stages of the pipeline: Dedup folds
// repeats of an event (same fingerprint within a window) into the event
// kept for them, and RateLimiter caps the events each source system may
// send with a token bucket. Both keep bounded, sharded state that is safe
// for concurrent use by the pipeline's partitions and lanes.
//
// Run RateLimiter before Dedup (give NewRateLimiter the Dedup so that
// repeats cost no tokens): an event dropped by the rate limiter after
// Dedup had kept it would leave Dedup folding repeats into an event that
// is never stored.
package noise

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
)

// Defaults of Options.
const (
	DefaultWindow  = 5 * time.Minute
	DefaultMaxKeys = 100_000
)

// Options configures Dedup and RateLimiter. The zero value is valid:
// a 5-minute deduplication window, no rate limit.
type Options struct {
	// Window is the deduplication window, measured from the batch time
	// (pipeline.Batch.Now) at which the kept event was first seen;
	// DefaultWindow if zero or negative.
	Window time.Duration
	// Rate is the sustained number of events per second each source
	// system may send; 0 (or negative) disables rate limiting.
	Rate float64
	// Burst is the size of each source's token bucket: how many events a
	// source may send at once after being quiet. If zero or negative, one
	// second's worth (ceil(Rate), at least 1).
	Burst int
	// MaxKeys caps the state of each stage: fingerprints for Dedup, source
	// systems for RateLimiter; DefaultMaxKeys if zero or negative. When full,
	// the oldest entry is evicted.
	MaxKeys int
	// Registerer registers the stages' metrics; nil does not register.
	Registerer prometheus.Registerer
}

func (o Options) window() time.Duration {
	if o.Window <= 0 {
		return DefaultWindow
	}
	return o.Window
}

func (o Options) maxKeys() int {
	if o.MaxKeys <= 0 {
		return DefaultMaxKeys
	}
	return o.MaxKeys
}

func (o Options) burst() float64 {
	if o.Burst > 0 {
		return float64(o.Burst)
	}
	return math.Max(1, math.Ceil(o.Rate))
}

// Metric label values of the stage label.
const (
	stageDedup     = "dedup"
	stageRateLimit = "rate_limit"
)

// stageMetrics are the metrics every stage of the package has.
type stageMetrics struct {
	events    *prometheus.CounterVec // deduplicated or rate limited, by source_type
	evictions *prometheus.CounterVec // by reason
}

func newStageMetrics(reg prometheus.Registerer, stage, eventsName, eventsHelp string, size func() float64) (stageMetrics, error) {
	m := stageMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: eventsName, Help: eventsHelp}, []string{"source_type"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "reflex_noise_state_evictions_total",
			Help:        "Keys evicted from the noise filter's state, by stage and reason (expired, capacity).",
			ConstLabels: prometheus.Labels{"stage": stage},
		}, []string{"reason"}),
	}
	keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "reflex_noise_state_keys",
		Help:        "Keys in the noise filter's state, by stage: fingerprints for dedup, source systems for rate_limit.",
		ConstLabels: prometheus.Labels{"stage": stage},
	}, size)
	if err := promutil.Register(reg, &m.events); err != nil {
		return m, err
	}
	if err := promutil.Register(reg, &m.evictions); err != nil {
		return m, err
	}
	if err := promutil.Register(reg, &keys); err != nil {
		return m, err
	}
	return m, nil
}
