package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// Defaults of Options.
const (
	DefaultMaxSeries = 100000
	DefaultTick      = 5 * time.Second
)

// staleNaN is the bit pattern of Prometheus' stale marker: the sample a
// scraper writes when a series disappears.
const staleNaN = 0x7ff0000000000002

// Observer scores samples for anomalies (*monitor.Monitor): host is the
// series' host, name its identity (metric name and labels).
type Observer interface {
	Observe(host, name string, at time.Time, v float64)
}

// Options configure a Store. Submitter is required.
type Options struct {
	// Config holds the rules and checks (nil: none).
	Config *Config
	// MaxSeries bounds the series held (default 100000): samples of new
	// series beyond it are dropped and counted.
	MaxSeries int
	// Submitter takes the alert events (a Blocking intake submitter).
	Submitter Submitter
	// Observer, if set, scores the samples for anomalies.
	Observer Observer
	// Source is the raw events' source system (default "metrics").
	Source string
	// Tick is the interval of the staleness sweep and of firing pending
	// alerts whose series went quiet (default 5s).
	Tick time.Duration
	// HTTPClient runs the checks' queries (default: one with no
	// redirects; each query has its check's timeout).
	HTTPClient HTTPDoer
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// series is one series held.
type series struct {
	labels Labels
	name   string // labels.String(), for the observer
	host   string
	last   Point
	rules  []ruleState
	anom   bool // feeds the observer
}

type ruleState struct {
	rule *Rule
	st   alertState
}

// Store holds the series of ingested samples, evaluates the metric rules
// on each sample and runs the checks. Its methods are safe for concurrent
// use. Start it, and Stop it to flush the alert events it holds.
type Store struct {
	o      Options
	log    *slog.Logger
	byName map[string][]*Rule
	send   *sender
	checks []*checker

	mu      sync.Mutex
	series  map[string]*series
	stopped bool

	cancel     context.CancelFunc
	sendCancel context.CancelFunc
	wg         sync.WaitGroup

	met storeMetrics
}

type storeMetrics struct {
	series      prometheus.Gauge
	evaluations *prometheus.CounterVec
	checkRuns   *prometheus.CounterVec
}

// New answers a Store.
func New(o Options) (*Store, error) {
	if o.Submitter == nil {
		return nil, errors.New("metrics: Options.Submitter is required")
	}
	if o.Config == nil {
		o.Config = &Config{}
		if err := o.Config.Validate(); err != nil {
			return nil, err
		}
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	if o.Source == "" {
		o.Source = "metrics"
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = newHTTPClient()
	}
	s := &Store{o: o, log: o.Logger, byName: map[string][]*Rule{}, series: map[string]*series{}}
	for i := range o.Config.Rules {
		r := &o.Config.Rules[i]
		s.byName[r.Metric] = append(s.byName[r.Metric], r)
	}
	s.met = storeMetrics{
		series: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reflex_metric_series", Help: "Series of ingested samples the metrics store holds (bounded by --metric-max-series)."}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_metric_rule_evaluations_total", Help: "Evaluations of a metric rule on a sample of a matching series, by rule.",
		}, []string{"rule"}),
		checkRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_metric_check_runs_total", Help: "Runs of a metric check's PromQL query, by check and outcome (ok, error).",
		}, []string{"check", "outcome"}),
	}
	send := &sender{
		sub: o.Submitter, log: o.Logger, q: make(chan Notice, queueSize), source: o.Source,
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_metric_alert_events_total", Help: "Alert events of metric rules and checks the intake log acknowledged, by kind (rule, check) and status (firing, resolved).",
		}, []string{"kind", "status"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reflex_metric_alert_events_dropped_total", Help: "Alert events of metric rules and checks lost, by kind and reason (queue_full, intake).",
		}, []string{"kind", "reason"}),
	}
	s.send = send
	if err := promutil.Register(o.Registerer, &s.met.series); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	for _, c := range []**prometheus.CounterVec{&s.met.evaluations, &s.met.checkRuns, &send.submitted, &send.dropped} {
		if err := promutil.Register(o.Registerer, c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	for i := range o.Config.Checks {
		s.checks = append(s.checks, newChecker(s, &o.Config.Checks[i]))
	}
	return s, nil
}

// Start runs the alert event sender, the staleness sweep and the checks
// until Stop.
func (s *Store) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	sendCtx, sendCancel := context.WithCancel(context.Background())
	s.sendCancel = sendCancel
	s.send.wg.Add(1)
	go s.send.run(sendCtx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.o.Tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Tick()
			}
		}
	}()
	for _, c := range s.checks {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.loop(ctx)
		}()
	}
}

// Stop stops the checks and the sweep, refuses further samples and waits
// (bounded by ctx) for the queued alert events to be submitted.
func (s *Store) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	if s.cancel == nil { // never started
		return nil
	}
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	close(s.send.q) // no enqueue after stopped (both under mu)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.send.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.sendCancel()
		return nil
	case <-ctx.Done():
		s.sendCancel()
		return fmt.Errorf("metrics: stop: %d alert events not submitted: %w", len(s.send.q), ctx.Err())
	}
}

// Append takes a batch of samples: each updates its series (created when
// there is room), is scored by the observer and evaluated by the rules of
// its metric. It answers ErrBusy, taking nothing, while the alert events
// queue is nearly full.
func (s *Store) Append(batch []Series) (Result, error) {
	type obs struct {
		host, name string
		p          Point
	}
	var observe []obs
	var res Result
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return res, ErrStopped
	}
	if s.send.busy() {
		s.mu.Unlock()
		return res, ErrBusy
	}
	now := s.o.Now()
	for _, b := range batch {
		if len(b.Points) == 0 {
			continue
		}
		key := b.Labels.key()
		se := s.series[key]
		if se == nil {
			if len(s.series) >= s.o.MaxSeries {
				res.Dropped += len(b.Points)
				continue
			}
			se = s.newSeries(b.Labels)
			s.series[key] = se
		}
		for _, p := range b.Points {
			res.Accepted++
			if p.At.After(now) {
				p.At = now
			}
			if !se.last.At.IsZero() && p.At.Before(se.last.At) {
				continue // out of order: kept out of the rules and the detector
			}
			se.last = p
			if math.Float64bits(p.Value) == staleNaN {
				s.staleLocked(key, se, p.At)
				break
			}
			if se.anom && !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
				observe = append(observe, obs{se.host, se.name, p})
			}
			for i := range se.rules {
				s.evaluate(se, &se.rules[i], p)
			}
		}
	}
	s.met.series.Set(float64(len(s.series)))
	s.mu.Unlock()
	if s.o.Observer != nil {
		for _, o := range observe {
			s.o.Observer.Observe(o.host, o.name, o.p.At, o.p.Value)
		}
	}
	return res, nil
}

func (s *Store) newSeries(ls Labels) *series {
	ls = append(Labels(nil), ls...)
	name := ls.Name()
	se := &series{labels: ls, name: ls.String(), host: hostOf(ls, DefaultHostLabel)}
	for _, r := range s.byName[name] {
		if matches(ls, r.Labels) {
			se.rules = append(se.rules, ruleState{rule: r})
		}
	}
	se.anom = s.feedsAnomaly(name)
	return se
}

func matches(ls Labels, want map[string]string) bool {
	for k, v := range want {
		if ls.Get(k) != v {
			return false
		}
	}
	return true
}

// counterSuffixes mark the metrics whose raw values only grow.
var counterSuffixes = []string{"_total", "_count", "_sum", "_bucket", "_created"}

func (s *Store) feedsAnomaly(name string) bool {
	a := s.o.Config.Anomaly
	if s.o.Observer == nil || a.Disabled {
		return false
	}
	if len(a.Metrics) > 0 {
		for _, m := range a.Metrics {
			if m == name {
				return true
			}
		}
		return false
	}
	for _, suf := range counterSuffixes {
		if strings.HasSuffix(name, suf) {
			return false
		}
	}
	return true
}

// evaluate steps one rule's state on a sample.
func (s *Store) evaluate(se *series, rs *ruleState, p Point) {
	r := rs.rule
	s.met.evaluations.WithLabelValues(r.Name).Inc()
	fire, resolve := rs.st.step(r.Holds(p.Value), p.At, time.Duration(r.For))
	switch {
	case fire:
		s.send.enqueue(notice(KindRule, r.Name, &r.Alerting, r.Condition, se.labels, event.AlertFiring, &rs.st, p.At, p.Value))
	case resolve:
		n := notice(KindRule, r.Name, &r.Alerting, r.Condition, se.labels, event.AlertResolved, &rs.st, p.At, p.Value)
		n.Reason = ReasonCleared
		s.send.enqueue(n)
	}
}

// staleLocked resolves the series' firing alerts and forgets it.
func (s *Store) staleLocked(key string, se *series, at time.Time) {
	for i := range se.rules {
		rs := &se.rules[i]
		if rs.st.firing {
			n := notice(KindRule, rs.rule.Name, &rs.rule.Alerting, rs.rule.Condition, se.labels, event.AlertResolved, &rs.st, at, se.last.Value)
			n.Reason = ReasonStale
			s.send.enqueue(n)
		}
	}
	delete(s.series, key)
}

// Tick forgets the series without a sample for stale_after (resolving
// their firing alerts) and fires the pending alerts whose condition has
// held for their "for" by the clock while their series went quiet.
func (s *Store) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := s.o.Now()
	staleBefore := now.Add(-time.Duration(s.o.Config.StaleAfter))
	for key, se := range s.series {
		if se.last.At.Before(staleBefore) {
			s.staleLocked(key, se, now)
			continue
		}
		for i := range se.rules {
			rs := &se.rules[i]
			r := rs.rule
			if rs.st.firing || rs.st.since.IsZero() || now.Sub(rs.st.since) < time.Duration(r.For) {
				continue
			}
			rs.st.firing, rs.st.firedAt = true, now
			s.send.enqueue(notice(KindRule, r.Name, &r.Alerting, r.Condition, se.labels, event.AlertFiring, &rs.st, now, se.last.Value))
		}
	}
	s.met.series.Set(float64(len(s.series)))
}

// Len answers the number of series held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}
