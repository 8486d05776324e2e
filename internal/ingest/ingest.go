// Package ingest holds what reflex's adapters share. Each adapter lives in
// a package of its own under internal/ingest/ (webhook, syslog, snmp,
// email, alertmanager, grafana, promwrite, influx, dbcheck ...) and owns
// its transport, its decoding and its normalizer; the server starts the
// ones configured (internal/server/adapters.go) with an Env, after the
// pipeline, so that their listeners stop before it drains.
//
// Every adapter submits through the core's intake (durable, batched,
// bounded): a listener makes its own intake.Submitter, Blocking for a
// stream source (a TCP reader that waits stops reading, so the sender
// feels backpressure) and Dropping for a datagram source (counted in
// Metrics.Dropped), and acknowledges its peer only once Submit returned.
package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Env is what the server gives an adapter it starts.
type Env struct {
	// Intake is the intake log; an adapter makes its submitter with
	// Intake.NewSubmitter.
	Intake *intake.Intake
	// MaxEventBytes is the largest item Data one intake log message can
	// carry beside its envelope: a larger event must be rejected (and
	// counted) before it is submitted.
	MaxEventBytes int
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	Now           func() time.Time
}

// Stop stops an adapter: it stops taking input, waits (bounded by ctx) for
// what it took to be submitted, and releases its sockets.
type Stop func(ctx context.Context) error

// Metrics are the counters every adapter keeps, labelled by adapter (and
// listener: udp, tcp, tls, http ...):
//
//	reflex_ingest_received_total{adapter,listener}         messages read off the wire
//	reflex_ingest_accepted_total{adapter,listener}         events durable on the intake log
//	reflex_ingest_rejected_total{adapter,listener,reason}  messages refused (too_large, parse, auth, ...)
//	reflex_ingest_dropped_total{adapter,listener,reason}   messages lost for want of room (intake_full, socket)
//
// Reasons are short snake_case words from a fixed set per adapter, never
// text from the input.
type Metrics struct {
	Received *prometheus.CounterVec
	Accepted *prometheus.CounterVec
	Rejected *prometheus.CounterVec
	Dropped  *prometheus.CounterVec
}

// NewMetrics registers the adapters' counters with reg (shared by every
// adapter: the second call returns the same counters).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_ingest_received_total",
			Help: "Messages an adapter read off the wire (a syslog line, an SNMP datagram, a mail, an alert), by adapter and listener.",
		}, []string{"adapter", "listener"}),
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_ingest_accepted_total",
			Help: "Events an adapter submitted that the intake log acknowledged, by adapter and listener.",
		}, []string{"adapter", "listener"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_ingest_rejected_total",
			Help: "Messages an adapter refused, by adapter, listener and reason (too_large, parse, auth, community, recipient ...).",
		}, []string{"adapter", "listener", "reason"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_ingest_dropped_total",
			Help: "Messages an adapter lost for want of room, by adapter, listener and reason (intake_full, socket: the kernel's receive buffer overflowed).",
		}, []string{"adapter", "listener", "reason"}),
	}
	for _, c := range []**prometheus.CounterVec{&m.Received, &m.Accepted, &m.Rejected, &m.Dropped} {
		if err := promutil.Register(reg, c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
