package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	records, matches, missing, reannounced prometheus.Counter
	storeFailures, publishFailures         prometheus.Counter
	reloadFailures, badWindows             prometheus.Counter
	firings                                *prometheus.CounterVec
	active, broken                         prometheus.Gauge
	batchSeconds                           prometheus.Histogram
	windowKeys, windowEvictions            prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, e *Engine) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_records_total",
			Help: "Processed-stream records (occurrences) the rules engine evaluated.",
		}),
		matches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_matches_total",
			Help: "Occurrences that matched a rule's conditions and severity threshold, one per rule.",
		}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_missing_events_total",
			Help: "Records skipped because their event was neither in the record nor in the store.",
		}),
		reannounced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_reannounced_total",
			Help: "Firings queued and dispatched again because their record was delivered again.",
		}),
		storeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_store_failures_total",
			Help: "Batches whose executions and windows could not be written; they are delivered again.",
		}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_decision_publish_failures_total",
			Help: "Batches whose decision requests could not be queued; they are delivered again.",
		}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_reload_failures_total",
			Help: "Failed reads of the trigger rules; the rules in use stay.",
		}),
		badWindows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reflex_rules_unreadable_windows_total",
			Help: "Stored rule windows that could not be read at start and started afresh.",
		}),
		firings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_rule_firings_total",
			Help: "Rule firings, by outcome: fired (an execution, a decision request and an alert) or suppressed (stopped by max_triggers_per_hour).",
		}, []string{"outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_rules_active",
			Help: "Active trigger rules the engine evaluates.",
		}),
		broken: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_rules_not_compiling",
			Help: "Active trigger rules whose stored conditions do not compile and are not evaluated.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reflex_rules_batch_seconds",
			Help:    "Time the rules engine took for a batch that matched a rule, writes and queueing included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
		windowKeys: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "reflex_rules_window_keys",
			Help: "Rule and group key pairs whose window and throttle the engine keeps in memory.",
		}, func() float64 { return float64(e.state.Len()) }),
		windowEvictions: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "reflex_rules_window_evictions_total",
			Help: "Rule and group key pairs evicted (least recently seen first) to keep the bound.",
		}, func() float64 { return float64(e.state.Evicted()) }),
	}
	m.firings.WithLabelValues("fired")
	m.firings.WithLabelValues("suppressed")
	for _, c := range []prometheus.Collector{m.records, m.matches, m.missing, m.reannounced, m.storeFailures,
		m.publishFailures, m.reloadFailures, m.badWindows, m.firings, m.active, m.broken, m.batchSeconds,
		m.windowKeys, m.windowEvictions} {
		if reg == nil {
			break
		}
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("engine: register metrics: %w", err)
		}
	}
	return m, nil
}
