package orchestrator

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/promutil"
	"github.com/reflex-ops/reflex/internal/store"
)

// metrics are the orchestrator's metrics. The gauge moves by increments,
// so that orchestrators sharing a registry add up.
type metrics struct {
	executions *prometheus.CounterVec
	steps      *prometheus.CounterVec
	duration   prometheus.Histogram
	running    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_orchestrator_executions_total",
			Help: "Executions that ended, by final status.",
		}, []string{"status"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_orchestrator_steps_total",
			Help: "Steps (and rollback steps) that ended or began waiting for approval, by status.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reflex_orchestrator_step_duration_seconds",
			Help:    "Duration of one attempt of a step's executor.",
			Buckets: []float64{0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600},
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reflex_orchestrator_executions_running",
			Help: "Executions in flight (running, not pending on an approval).",
		}),
	}
	if err := errors.Join(promutil.Register(reg, &m.executions), promutil.Register(reg, &m.steps),
		promutil.Register(reg, &m.duration), promutil.Register(reg, &m.running)); err != nil {
		return nil, fmt.Errorf("orchestrator: %w", err)
	}
	for _, s := range []string{store.ExecCompleted, store.ExecFailed, store.ExecRolledBack, store.ExecRollbackFailed, store.ExecCancelled} {
		m.executions.WithLabelValues(s)
	}
	for _, s := range []string{store.StepSucceeded, store.StepFailed, store.StepSkipped, store.StepCancelled, store.StepUnknown, store.StepWaitingApproval} {
		m.steps.WithLabelValues(s)
	}
	return m, nil
}
