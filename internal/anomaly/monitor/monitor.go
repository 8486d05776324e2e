// Package monitor runs anomaly detectors on the series that reflex derives
// from its processed events: the event rate per host, per service and per
// event type (a count per fixed interval; an interval without events is a
// zero), every number in event_data.metadata per host and key, and the
// samples of ingested metric series that the metrics path passes to
// Observe (each series a series of its own). A point
// whose score crosses the threshold raises an anomaly event through a
// derived.Sink.
//
// Time is event time: a count goes to the interval of the event's
// occurred_at (clamped to the monitor's clock), intervals close when an
// event of a later interval arrives or the clock passes them, and a late
// event counts in the interval still open. The series are bounded (the
// least recently seen goes first) and each holds one anomaly.Detector.
// Redeliveries are skipped by the consumer's Recent set only: a restart
// forgets it, so a replay after a restart may count an event twice.
package monitor

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflex-ops/reflex/internal/anomaly"
	"github.com/reflex-ops/reflex/internal/derived"
	"github.com/reflex-ops/reflex/internal/event"
	"github.com/reflex-ops/reflex/internal/processed"
	"github.com/reflex-ops/reflex/internal/promutil"
)

// ConsumerName is the monitor's durable consumer on the processed stream.
const ConsumerName = "anomaly"

// Defaults of Options.
const (
	DefaultInterval  = time.Minute
	DefaultThreshold = 0.8
	DefaultMaxSeries = 10000
	DefaultQuiet     = 5
	// maxCatchUp bounds the intervals one advance of the clock closes per
	// series; a longer silence is skipped rather than scored as zeros.
	maxCatchUp = 120
)

// Options configure a Monitor. Sink is required.
type Options struct {
	// Sink takes the anomaly events.
	Sink derived.Sink
	// Interval is the width of a rate series' point (default 1m).
	Interval time.Duration
	// Threshold is the score at or above which a point raises an anomaly
	// event (default 0.8, the detector's detection level tuned on NAB).
	Threshold float64
	// MaxSeries bounds the series tracked (default 10000).
	MaxSeries int
	// Quiet is how many points below the threshold a series needs after
	// an anomaly before it may raise another (default 5).
	Quiet int
	// Detector configures every series' detector (its DetectAt is set to
	// Threshold).
	Detector anomaly.Options
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives logs (nil: none).
	Logger *slog.Logger
	// Registerer registers the metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// RateState is a host's event-rate series at its last closed interval.
type RateState struct {
	// Interval is the width of a point.
	Interval time.Duration
	// Current is the events counted in the interval.
	Current float64
	// ExpectedLow and ExpectedHigh are the expected range of the count.
	ExpectedLow, ExpectedHigh float64
	// Score is the anomaly score of the interval, in [0,1].
	Score float64
	// At is the start of the interval.
	At time.Time
	// Points is how many points the series has scored (it starts afresh
	// at a restart): a young series' expected range is a poor baseline.
	Points int
}

// series is one tracked series.
type series struct {
	key     string
	rate    bool
	host    string
	service string
	det     *anomaly.Detector
	count   float64   // events in the open interval (rate series)
	last    RateState // the last closed point
	alert   bool      // raised and not yet quiet
	quiet   int       // points below the threshold since
	sample  bool      // an ingested metric series (Observe)
	elem    *list.Element
}

// Monitor derives series from processed records and scores them. Its
// methods are safe for concurrent use.
type Monitor struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	series map[string]*series
	lru    *list.List // front: most recently seen
	open   time.Time  // start of the open interval; zero before the first event
	// samples is how many series are ingested metric series, bounded by
	// MaxSeries/2 so that they never crowd out the event series.
	samples int

	met metrics
}

type metrics struct {
	series  prometheus.Gauge
	points  prometheus.Counter
	emitted prometheus.Counter
	dropped prometheus.Counter
	evicted prometheus.Counter
	skipped prometheus.Counter
}

// New answers a Monitor.
func New(o Options) (*Monitor, error) {
	if o.Sink == nil {
		return nil, errors.New("monitor: Options.Sink is required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Threshold <= 0 || o.Threshold > 1 {
		o.Threshold = DefaultThreshold
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Detector.DetectAt = o.Threshold
	m := &Monitor{o: o, log: o.Logger, series: map[string]*series{}, lru: list.New()}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.met = metrics{
		series:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "reflex_anomaly_series", Help: "Series the anomaly monitor tracks (event rates per host, service and type; metadata numbers per host and key)."}),
		points:  prometheus.NewCounter(prometheus.CounterOpts{Name: "reflex_anomaly_points_scored_total", Help: "Points the anomaly monitor scored."}),
		emitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "reflex_anomaly_events_emitted_total", Help: "Anomaly events the monitor raised."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "reflex_anomaly_events_dropped_total", Help: "Anomaly events the derived-event emitter did not take (rate limited or full)."}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "reflex_anomaly_series_evicted_total", Help: "Series dropped, least recently seen first, to stay within --anomaly-max-series."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "reflex_anomaly_samples_skipped_total", Help: "Samples of ingested metric series not scored because metric series fill their half of --anomaly-max-series."}),
	}
	for _, c := range []*prometheus.Counter{&m.met.points, &m.met.emitted, &m.met.dropped, &m.met.evicted, &m.met.skipped} {
		if err := promutil.Register(o.Registerer, c); err != nil {
			return nil, fmt.Errorf("monitor: %w", err)
		}
	}
	if err := promutil.Register(o.Registerer, &m.met.series); err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return m, nil
}

// Handle counts a batch of processed records into the series. It is a
// processed.Handler; it never fails. Derived events (source type reflex)
// are not counted, so that anomaly events do not feed the rates.
func (m *Monitor) Handle(_ context.Context, recs []processed.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	for _, r := range recs {
		ev := r.Event
		if ev == nil || ev.SourceType == event.SourceReflex {
			continue
		}
		at := ev.OccurredAt
		if r.Kind == processed.KindRepeat && !r.LastSeenAt.IsZero() {
			at = r.LastSeenAt // ev is the earlier event it was folded into
		}
		if at.IsZero() || at.After(now) {
			at = now
		}
		m.advance(at)
		if ev.SourceHost != "" {
			m.rate("rate:host:"+ev.SourceHost, ev.SourceHost, "").count++
		}
		if ev.SourceService != "" {
			m.rate("rate:service:"+ev.SourceService, "", ev.SourceService).count++
		}
		if ev.EventType != "" {
			m.rate("rate:type:"+ev.EventType, "", "").count++
		}
		m.metrics(ev, at)
	}
	return nil
}

// Tick closes the intervals that ended before the clock's now minus one
// interval (the lateness allowed to events in flight).
func (m *Monitor) Tick() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.open.IsZero() {
		m.advance(m.o.Now().Add(-m.o.Interval))
	}
}

// Run ticks every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Tick()
		}
	}
}

// Rate answers the host's event-rate series at its last closed interval.
func (m *Monitor) Rate(host string) (RateState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.series["rate:host:"+host]
	if !ok || s.last.At.IsZero() {
		return RateState{}, false
	}
	return s.last, true
}

// advance moves the open interval to the one holding at, closing (and
// scoring) the ones before it in every rate series.
func (m *Monitor) advance(at time.Time) {
	start := at.Truncate(m.o.Interval)
	if m.open.IsZero() {
		m.open = start
		return
	}
	if !start.After(m.open) {
		return
	}
	steps := int(start.Sub(m.open) / m.o.Interval)
	for _, s := range m.series {
		if !s.rate {
			continue
		}
		for k := range min(steps, maxCatchUp) {
			iv := m.open.Add(time.Duration(k) * m.o.Interval)
			if steps > maxCatchUp {
				iv = start.Add(-time.Duration(maxCatchUp-k) * m.o.Interval)
			}
			m.score(s, iv, s.count)
			s.count = 0
		}
	}
	m.open = start
}

// rate answers the rate series key, creating it (and evicting the least
// recently seen series when full).
func (m *Monitor) rate(key, host, service string) *series {
	s := m.get(key)
	s.rate, s.host, s.service = true, host, service
	return s
}

func (m *Monitor) get(key string) *series {
	if s, ok := m.series[key]; ok {
		m.lru.MoveToFront(s.elem)
		return s
	}
	for len(m.series) >= m.o.MaxSeries {
		old := m.lru.Remove(m.lru.Back()).(*series)
		delete(m.series, old.key)
		if old.sample {
			m.samples--
		}
		m.met.evicted.Inc()
	}
	s := &series{key: key, det: anomaly.New(m.o.Detector)}
	s.elem = m.lru.PushFront(s)
	m.series[key] = s
	m.met.series.Set(float64(len(m.series)))
	return s
}

// metrics scores every number of the event's metadata as a point of the
// series metric:<host>:<key>.
func (m *Monitor) metrics(ev *event.Event, at time.Time) {
	md, _ := ev.Data["metadata"].(map[string]any)
	for k, raw := range md {
		v, ok := number(raw)
		if !ok {
			continue
		}
		s := m.get("metric:" + ev.SourceHost + ":" + k)
		s.host, s.service = ev.SourceHost, ev.SourceService
		m.score(s, at, v)
	}
}

// Observe scores a sample of an ingested metric series (the metrics path:
// Prometheus remote write, InfluxDB line protocol) as a point of the
// series sample:<host>:<name>, as a metadata number is, at the sample's
// time (clamped to the clock); name identifies the series (its metric name
// and labels). Samples of one series must come in time order. A new
// metric series is tracked only while metric series hold less than half
// of MaxSeries; beyond that its samples are skipped and counted.
func (m *Monitor) Observe(host, name string, at time.Time, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := "sample:" + host + ":" + name
	s, ok := m.series[key]
	if !ok {
		if m.samples >= max(m.o.MaxSeries/2, 1) {
			m.met.skipped.Inc()
			return
		}
		s = m.get(key)
		s.sample, s.host = true, host
		m.samples++
	} else {
		m.lru.MoveToFront(s.elem)
	}
	if now := m.o.Now(); at.IsZero() || at.After(now) {
		at = now
	}
	m.score(s, at, v)
}

// number answers a metadata value as a finite float64.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, false
		}
	case float64:
		f = x
	case int64:
		f = float64(x)
	case int:
		f = float64(x)
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// score scores one point of s and raises an anomaly event when it crosses
// the threshold and the series was quiet.
func (m *Monitor) score(s *series, at time.Time, v float64) {
	p := s.det.Update(at, v)
	if s.rate { // a count is never negative
		p.Low, p.High = max(p.Low, 0), max(p.High, 0)
	}
	m.met.points.Inc()
	s.last = RateState{Interval: m.o.Interval, Current: v, ExpectedLow: p.Low, ExpectedHigh: p.High, Score: p.Score, At: at, Points: s.last.Points + 1}
	if p.Score < m.o.Threshold {
		if s.alert {
			s.quiet++
			if s.quiet >= m.o.Quiet {
				s.alert = false
			}
		}
		return
	}
	s.quiet = 0
	if s.alert {
		return
	}
	s.alert = true
	m.emit(s, at, v, p)
}

func (m *Monitor) emit(s *series, at time.Time, v float64, p anomaly.Point) {
	sev := event.Medium
	if p.Score >= 0.95 {
		sev = event.High
	}
	what := "value"
	interval := ""
	if s.rate {
		what = "event rate"
		interval = m.o.Interval.String()
	}
	dir := "above"
	if v < p.Low {
		dir = "below"
	}
	msg := fmt.Sprintf("anomalous %s on %s: %s, %s the expected %s to %s (score %.2f)",
		what, s.key, fmtNum(v), dir, fmtNum(p.Low), fmtNum(p.High), p.Score)
	md := map[string]any{
		"anomaly_score": round(p.Score, 4),
		"expected_low":  round(p.Low, 4),
		"expected_high": round(p.High, 4),
		"value":         v,
		"series":        s.key,
		"at":            at.UTC().Format(time.RFC3339),
	}
	if interval != "" {
		md["interval"] = interval
	}
	ok := m.o.Sink.Emit(derived.Event{
		Type: derived.TypeAnomaly, Severity: sev, Host: s.host, Service: s.service,
		Message: msg, Title: "Anomaly in " + s.key, Metadata: md, At: at,
	})
	if ok {
		m.met.emitted.Inc()
	} else {
		m.met.dropped.Inc()
	}
	m.log.Debug("anomaly", "series", s.key, "score", p.Score, "value", v, "emitted", ok)
}

func fmtNum(v float64) string { return strconv.FormatFloat(round(v, 2), 'f', -1, 64) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
