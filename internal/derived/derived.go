// Package derived lets reflex's own components raise events: a log
// template never seen before on a host (new_log_pattern), an anomaly in an
// event rate or a metric (anomaly). A derived event goes through the
// intake log and the whole pipeline like any other, with source type and
// source "reflex", so that it is stored, correlated, visible to trigger
// rules and notified. Emitting never blocks the caller: events are
// coalesced by a dropping intake submitter, each event type is rate
// limited, and what does not fit is dropped and counted.
package derived

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/intake"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Source is the source type and source system of derived events.
const Source = event.SourceReflex

// Event types of derived events.
const (
	TypeNewLogPattern = "new_log_pattern"
	TypeAnomaly       = "anomaly"
)

// Event is a derived event. It becomes a webhook-format payload
// (webhook.Payload) with source "reflex".
type Event struct {
	Type     string
	Severity event.Severity
	Host     string
	Service  string
	// Message is required; Title defaults to it.
	Message string
	Title   string
	// Metadata goes to event_data.metadata; it must marshal to a JSON
	// object (numbers finite).
	Metadata map[string]any
	Tags     []string
	// At is when it happened (default: now).
	At time.Time
}

// Sink takes derived events. *Emitter implements it; components take a
// Sink so that their tests can record what they emit.
type Sink interface {
	// Emit queues e and reports whether it was taken (false: rate
	// limited, the queue was full, or the emitter is closed).
	Emit(e Event) bool
}

// Discard is a Sink that drops everything.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Event) bool { return false }

// Defaults of Options.
const (
	DefaultRate  = 10 // events per second per event type
	DefaultBurst = 100
)

// Options configure an Emitter. Submitter is required.
type Options struct {
	// Submitter publishes the events; it should be a dropping one
	// (intake.Dropping), so that Emit never waits.
	Submitter *intake.Submitter
	// Rate and Burst limit each event type (defaults 10/s, 100).
	Rate  float64
	Burst int
	// Now is the clock (default time.Now).
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Emitter emits derived events through the intake log.
type Emitter struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	limiters map[string]*rate.Limiter

	emitted *prometheus.CounterVec
	dropped *prometheus.CounterVec
}

var _ Sink = (*Emitter)(nil)

// New returns an Emitter.
func New(opts Options) (*Emitter, error) {
	if opts.Submitter == nil {
		return nil, errors.New("derived: no submitter")
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emitter{opts: opts, log: opts.Logger, limiters: map[string]*rate.Limiter{}}
	e.emitted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_derived_events_emitted_total",
		Help: "Derived events (raised by reflex itself) taken for the intake log, by event type.",
	}, []string{"event_type"})
	e.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reflex_derived_events_dropped_total",
		Help: "Derived events dropped, by event type and reason (rate_limited, full, closed, invalid).",
	}, []string{"event_type", "reason"})
	if err := promutil.Register(opts.Registerer, &e.emitted); err != nil {
		return nil, err
	}
	if err := promutil.Register(opts.Registerer, &e.dropped); err != nil {
		return nil, err
	}
	return e, nil
}

// Emit queues ev for the intake log; see Sink.
func (e *Emitter) Emit(ev Event) bool {
	if ev.Type == "" || strings.TrimSpace(ev.Message) == "" {
		e.drop(ev.Type, "invalid")
		return false
	}
	if !e.limiter(ev.Type).AllowN(e.opts.Now(), 1) {
		e.drop(ev.Type, "rate_limited")
		return false
	}
	data, err := payload(ev, e.opts.Now())
	if err != nil {
		e.drop(ev.Type, "invalid")
		e.log.Warn("derived event not emitted", "event_type", ev.Type, "err", err)
		return false
	}
	host := strings.ToLower(strings.TrimSpace(ev.Host))
	item := intake.Item{SourceSystem: string(Source), Severity: ev.Severity, Data: data, Host: host}
	err = e.opts.Submitter.Enqueue(context.Background(), Source, []intake.Item{item}, func(_ []int64, err error) {
		if err != nil {
			e.drop(ev.Type, "full")
		}
	})
	switch {
	case err == nil:
		e.emitted.WithLabelValues(ev.Type).Inc()
		return true
	case errors.Is(err, intake.ErrClosed):
		e.drop(ev.Type, "closed")
	default:
		e.drop(ev.Type, "full")
	}
	return false
}

func (e *Emitter) drop(typ, reason string) {
	if typ == "" {
		typ = "unknown"
	}
	e.dropped.WithLabelValues(typ, reason).Inc()
}

func (e *Emitter) limiter(typ string) *rate.Limiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.limiters[typ]
	if !ok {
		l = rate.NewLimiter(rate.Limit(e.opts.Rate), e.opts.Burst)
		e.limiters[typ] = l
	}
	return l
}

// payload is ev as a webhook payload.
func payload(ev Event, now time.Time) ([]byte, error) {
	at := ev.At
	if at.IsZero() {
		at = now
	}
	sev := ev.Severity
	if sev == "" {
		sev = event.Info
	}
	p := map[string]any{
		"source":     string(Source),
		"event_type": ev.Type,
		"severity":   string(sev),
		"message":    ev.Message,
		"timestamp":  at.UTC().Format(time.RFC3339Nano),
	}
	if ev.Host != "" {
		p["host"] = ev.Host
	}
	if ev.Service != "" {
		p["service"] = ev.Service
	}
	if ev.Title != "" {
		p["title"] = ev.Title
	}
	if len(ev.Metadata) > 0 {
		p["metadata"] = ev.Metadata
	}
	if len(ev.Tags) > 0 {
		p["tags"] = ev.Tags
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("derived: %w", err)
	}
	return b, nil
}
